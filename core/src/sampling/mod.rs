//! Sampling: every decision the agent, collector, edge worker and plugins make about which traces
//! to keep, in one place so they decide identically for the same trace.
//!
//! - [`strategy`]: the strategy model served to clients (Jaeger's `SamplingStrategyResponse`).
//! - [`consistent`]: OpenTelemetry consistent probability sampling (`ot=th:` / `ot=rv:`).
//! - [`ratelimit`]: Jaeger's credit-balance rate limiter and the rate-limiting sampler.
//! - [`sampler`]: Jaeger's client samplers, built from a strategy ([`Sampler::from_strategy`]).
//! - [`file`]: Jaeger's strategies file ([`parse_strategies`], [`Strategies::strategy_for`]).
//! - [`adaptive`]: Jaeger's adaptive sampling (per-operation probabilities from root-span counts).
//!
//! Nothing here reads a clock or draws a random number: time and the trace id are passed in.

pub mod adaptive;
pub mod consistent;
pub mod file;
pub mod ratelimit;
pub mod sampler;
pub mod strategy;

pub use adaptive::{Adaptive, AdaptiveConfig, AdaptiveConfigError};
pub use consistent::{should_sample, Threshold, ThresholdError, CONSISTENT_VECTORS};
pub use file::{parse_strategies, Strategies, StrategiesError};
pub use ratelimit::{RateLimiter, RateLimitingSampler};
pub use sampler::{
    Decision, GuaranteedThroughputSampler, PerOperationSampler, ProbabilisticSampler, Sampler,
    SamplerType, DEFAULT_MAX_OPERATIONS,
};
pub use strategy::{
    OperationStrategy, PerOperationStrategies, ProbabilisticStrategy, RateLimitingStrategy,
    StrategyResponse,
};
