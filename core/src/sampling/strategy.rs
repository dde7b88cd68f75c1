//! The sampling strategy a client is told to apply: the model of Jaeger's api_v2
//! `SamplingStrategyResponse` (`sampling.proto`), independent of any wire encoding.
//!
//! The host renders it as proto (gRPC `SamplingManager`), proto-JSON (`/api/sampling`) and the
//! legacy Thrift-JSON of the agent's `/sampling`; the edge worker and plugins use it directly.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Sample each trace with a fixed probability (Jaeger `PROBABILISTIC`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbabilisticStrategy {
    /// Probability in `[0, 1]` that a trace is sampled.
    pub sampling_rate: f64,
}

/// Sample at most this many traces per second (Jaeger `RATE_LIMITING`, a token bucket).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitingStrategy {
    /// Traces per second; Jaeger carries it as an `int32` (fractional rates are not expressible).
    pub max_traces_per_second: i32,
}

/// A probability for one operation (Jaeger `OperationSamplingStrategy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationStrategy {
    /// The operation (span name) of the root span.
    pub operation: String,
    /// Its probability.
    pub probabilistic: ProbabilisticStrategy,
}

/// Per-operation sampling (Jaeger `PerOperationSamplingStrategies`): each operation is sampled
/// with its probability, and at least `default_lower_bound_traces_per_second` traces per second
/// per operation are sampled whatever the probability says (the guaranteed-throughput sampler).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerOperationStrategies {
    /// Probability for operations not listed.
    pub default_sampling_probability: f64,
    /// Guaranteed traces per second per operation.
    pub default_lower_bound_traces_per_second: f64,
    /// Upper bound per operation (0 = none; Jaeger clients ignore it).
    pub default_upper_bound_traces_per_second: f64,
    /// Operations with their own probability.
    pub per_operation: Vec<OperationStrategy>,
}

/// The top-level strategy kind (Jaeger `SamplingStrategyType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyType {
    /// `PROBABILISTIC` (0).
    Probabilistic = 0,
    /// `RATE_LIMITING` (1).
    RateLimiting = 1,
}

/// What a client of service X is told to do: exactly one of probabilistic / rate limiting at
/// the top, optionally with per-operation strategies (which clients prefer when present).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StrategyResponse {
    /// `strategyType: PROBABILISTIC`, optionally with `operationSampling`.
    Probabilistic {
        /// The service-wide probability.
        strategy: ProbabilisticStrategy,
        /// Per-operation strategies, if any.
        operations: Option<PerOperationStrategies>,
    },
    /// `strategyType: RATE_LIMITING`, optionally with `operationSampling`.
    RateLimiting {
        /// The service-wide rate.
        strategy: RateLimitingStrategy,
        /// Per-operation strategies, if any.
        operations: Option<PerOperationStrategies>,
    },
}

impl StrategyResponse {
    /// Jaeger's default when no strategy is configured: probabilistic with rate 0.001.
    pub const DEFAULT_SAMPLING_PROBABILITY: f64 = 0.001;

    /// A plain probabilistic strategy.
    pub fn probabilistic(sampling_rate: f64) -> Self {
        StrategyResponse::Probabilistic {
            strategy: ProbabilisticStrategy { sampling_rate },
            operations: None,
        }
    }

    /// A plain rate-limiting strategy.
    pub fn rate_limiting(max_traces_per_second: i32) -> Self {
        StrategyResponse::RateLimiting {
            strategy: RateLimitingStrategy {
                max_traces_per_second,
            },
            operations: None,
        }
    }

    /// The top-level kind.
    pub fn strategy_type(&self) -> StrategyType {
        match self {
            StrategyResponse::Probabilistic { .. } => StrategyType::Probabilistic,
            StrategyResponse::RateLimiting { .. } => StrategyType::RateLimiting,
        }
    }

    /// The per-operation strategies, if any.
    pub fn operations(&self) -> Option<&PerOperationStrategies> {
        match self {
            StrategyResponse::Probabilistic { operations, .. }
            | StrategyResponse::RateLimiting { operations, .. } => operations.as_ref(),
        }
    }
}

impl Default for StrategyResponse {
    fn default() -> Self {
        StrategyResponse::probabilistic(Self::DEFAULT_SAMPLING_PROBABILITY)
    }
}
