//! Head samplers as the Jaeger clients define them, driven by a [`StrategyResponse`]: the decision
//! a tracer (or the edge worker, or a plugin) makes when a root span starts.
//!
//! Follows jaeger-client-go (`sampler.go`, `sampler_remote.go`):
//!
//! - **probabilistic** keeps a trace with the strategy's rate — here through the OpenTelemetry
//!   consistent threshold ([`super::consistent`]), so every participant agrees on the trace;
//!   the rate is clamped to `[0, 1]` (NaN counts as 0), as Jaeger clamps it;
//! - **rate limiting** keeps at most N traces per second ([`RateLimitingSampler`]);
//! - **guaranteed throughput** ([`GuaranteedThroughputSampler`], Jaeger's
//!   `GuaranteedThroughputProbabilisticSampler`) keeps a trace if the probabilistic sampler does
//!   (and then still charges the lower-bound limiter), otherwise if the lower-bound limiter of
//!   `lower_bound` traces per second has credit; the second case is tagged `lowerbound`;
//! - **per operation** ([`PerOperationSampler`], Jaeger's adaptive sampler) keeps one guaranteed
//!   throughput sampler per operation: listed operations get their own probability, new ones the
//!   default probability with the default lower bound, until `max_operations` (Jaeger's 2000)
//!   are tracked; beyond that, unknown operations use the plain default probabilistic sampler.
//!
//! [`Sampler::from_strategy`] picks the kind as the Jaeger remote sampler does: per-operation
//! strategies when present (whatever the top-level type), else the top-level strategy.
//! [`Sampler::update`] applies a refreshed strategy in place, keeping rate-limiter balances.
//! Every [`Decision`] carries the Jaeger tags `sampler.type` and `sampler.param`, and the
//! threshold to write as `ot=th:` when the trace was kept probabilistically.

use alloc::string::String;
use core::fmt;

use hashbrown::HashMap;

use super::consistent::{self, Threshold};
use super::ratelimit::RateLimitingSampler;
use super::strategy::{PerOperationStrategies, StrategyResponse};
use crate::model::TraceId;

/// Jaeger clients' default bound on the operations a per-operation sampler tracks.
pub const DEFAULT_MAX_OPERATIONS: usize = 2000;

/// The Jaeger tag key of the sampler type.
pub const SAMPLER_TYPE_TAG: &str = "sampler.type";
/// The Jaeger tag key of the sampler parameter.
pub const SAMPLER_PARAM_TAG: &str = "sampler.param";

/// Which sampler decided (the value of Jaeger's `sampler.type` tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplerType {
    /// `probabilistic`; the param is the probability.
    Probabilistic,
    /// `ratelimiting`; the param is the traces per second.
    RateLimiting,
    /// `lowerbound`: kept by the guaranteed-throughput lower bound; the param is the probability.
    LowerBound,
}

impl SamplerType {
    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplerType::Probabilistic => "probabilistic",
            SamplerType::RateLimiting => "ratelimiting",
            SamplerType::LowerBound => "lowerbound",
        }
    }
}

impl fmt::Display for SamplerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sampling decision with the tags Jaeger attaches to a sampled root span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Whether the trace is kept.
    pub sampled: bool,
    /// `sampler.type`.
    pub sampler_type: SamplerType,
    /// `sampler.param`: the probability, or the traces per second for rate limiting.
    pub param: f64,
    /// The consistent threshold to record as `ot=th:` when kept probabilistically; `None`
    /// otherwise (a non-probabilistic decision must erase `th`).
    pub threshold: Option<Threshold>,
}

fn clamp_probability(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Keeps a trace with a fixed probability, decided by the consistent threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbabilisticSampler {
    rate: f64,
    threshold: Threshold,
}

impl ProbabilisticSampler {
    /// A sampler for `rate`, clamped to `[0, 1]` (NaN counts as 0).
    pub fn new(rate: f64) -> Self {
        let rate = clamp_probability(rate);
        // The clamped rate is always a valid probability.
        let threshold = Threshold::from_probability(rate).unwrap_or(Threshold::NEVER);
        ProbabilisticSampler { rate, threshold }
    }

    /// The configured rate (`sampler.param`).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The consistent threshold applied.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The decision for a trace; does not allocate.
    pub fn sample(&self, trace_id: TraceId, trace_state: &str) -> Decision {
        let sampled = consistent::sample(self.threshold, trace_id, trace_state);
        Decision {
            sampled,
            sampler_type: SamplerType::Probabilistic,
            param: self.rate,
            threshold: if sampled { Some(self.threshold) } else { None },
        }
    }
}

/// Jaeger's `GuaranteedThroughputProbabilisticSampler`: a probability plus a lower bound of
/// traces per second.
#[derive(Clone, Debug, PartialEq)]
pub struct GuaranteedThroughputSampler {
    probabilistic: ProbabilisticSampler,
    lower_bound: RateLimitingSampler,
    lower_bound_rate: f64,
}

impl GuaranteedThroughputSampler {
    /// `rate` probability with at least `lower_bound` traces per second.
    pub fn new(lower_bound: f64, rate: f64) -> Self {
        GuaranteedThroughputSampler {
            probabilistic: ProbabilisticSampler::new(rate),
            lower_bound: RateLimitingSampler::new(lower_bound),
            lower_bound_rate: lower_bound,
        }
    }

    /// The probability.
    pub fn rate(&self) -> f64 {
        self.probabilistic.rate()
    }

    /// The decision: probabilistic first (charging the lower bound too), then the lower bound.
    pub fn sample(&mut self, trace_id: TraceId, trace_state: &str, now_nanos: u64) -> Decision {
        let d = self.probabilistic.sample(trace_id, trace_state);
        if d.sampled {
            self.lower_bound.is_sampled(now_nanos);
            return d;
        }
        Decision {
            sampled: self.lower_bound.is_sampled(now_nanos),
            sampler_type: SamplerType::LowerBound,
            param: self.probabilistic.rate(),
            threshold: None,
        }
    }

    /// Jaeger's `update`: a new probability keeps the limiter; a new lower bound replaces it.
    pub fn update(&mut self, lower_bound: f64, rate: f64) {
        if clamp_probability(rate) != self.probabilistic.rate() {
            self.probabilistic = ProbabilisticSampler::new(rate);
        }
        if lower_bound != self.lower_bound_rate {
            self.lower_bound = RateLimitingSampler::new(lower_bound);
            self.lower_bound_rate = lower_bound;
        }
    }
}

/// Jaeger's per-operation ("adaptive") client sampler.
#[derive(Clone, Debug)]
pub struct PerOperationSampler {
    samplers: HashMap<String, GuaranteedThroughputSampler>,
    default: ProbabilisticSampler,
    lower_bound: f64,
    max_operations: usize,
}

impl PerOperationSampler {
    /// From per-operation strategies, tracking at most `max_operations` operations created on
    /// the fly (the listed operations are always kept, as in Jaeger).
    pub fn new(strategies: &PerOperationStrategies, max_operations: usize) -> Self {
        let lower_bound = strategies.default_lower_bound_traces_per_second;
        let samplers = strategies
            .per_operation
            .iter()
            .map(|op| {
                (
                    op.operation.clone(),
                    GuaranteedThroughputSampler::new(lower_bound, op.probabilistic.sampling_rate),
                )
            })
            .collect();
        PerOperationSampler {
            samplers,
            default: ProbabilisticSampler::new(strategies.default_sampling_probability),
            lower_bound,
            max_operations,
        }
    }

    /// Number of operations with their own sampler.
    pub fn operations(&self) -> usize {
        self.samplers.len()
    }

    /// The decision for a root span of `operation`. Allocates only the first time an operation
    /// is seen (below the bound).
    pub fn sample(
        &mut self,
        trace_id: TraceId,
        trace_state: &str,
        operation: &str,
        now_nanos: u64,
    ) -> Decision {
        if let Some(s) = self.samplers.get_mut(operation) {
            return s.sample(trace_id, trace_state, now_nanos);
        }
        if self.samplers.len() >= self.max_operations {
            return self.default.sample(trace_id, trace_state);
        }
        let mut s = GuaranteedThroughputSampler::new(self.lower_bound, self.default.rate());
        let decision = s.sample(trace_id, trace_state, now_nanos);
        self.samplers.insert(String::from(operation), s);
        decision
    }

    /// Jaeger's `update`: listed operations are updated or added, others keep their sampler;
    /// the default probability and lower bound are replaced.
    pub fn update(&mut self, strategies: &PerOperationStrategies) {
        let lower_bound = strategies.default_lower_bound_traces_per_second;
        for op in &strategies.per_operation {
            let rate = op.probabilistic.sampling_rate;
            match self.samplers.get_mut(op.operation.as_str()) {
                Some(s) => s.update(lower_bound, rate),
                None => {
                    self.samplers.insert(
                        op.operation.clone(),
                        GuaranteedThroughputSampler::new(lower_bound, rate),
                    );
                }
            }
        }
        self.lower_bound = lower_bound;
        if clamp_probability(strategies.default_sampling_probability) != self.default.rate() {
            self.default = ProbabilisticSampler::new(strategies.default_sampling_probability);
        }
    }
}

/// The sampler a strategy calls for.
#[derive(Clone, Debug)]
pub enum Sampler {
    /// A fixed probability.
    Probabilistic(ProbabilisticSampler),
    /// At most N traces per second.
    RateLimiting(RateLimitingSampler),
    /// Per-operation probabilities with a lower bound.
    PerOperation(PerOperationSampler),
}

impl Sampler {
    /// The sampler for a strategy, with Jaeger's default bound of 2000 operations.
    pub fn from_strategy(strategy: &StrategyResponse) -> Self {
        Self::from_strategy_with_max_operations(strategy, DEFAULT_MAX_OPERATIONS)
    }

    /// The sampler for a strategy, tracking at most `max_operations` operations.
    pub fn from_strategy_with_max_operations(
        strategy: &StrategyResponse,
        max_operations: usize,
    ) -> Self {
        if let Some(ops) = strategy.operations() {
            return Sampler::PerOperation(PerOperationSampler::new(ops, max_operations));
        }
        match strategy {
            StrategyResponse::Probabilistic { strategy, .. } => {
                Sampler::Probabilistic(ProbabilisticSampler::new(strategy.sampling_rate))
            }
            StrategyResponse::RateLimiting { strategy, .. } => Sampler::RateLimiting(
                RateLimitingSampler::new(f64::from(strategy.max_traces_per_second)),
            ),
        }
    }

    /// Applies a refreshed strategy as the Jaeger remote sampler does: a per-operation sampler
    /// is updated in place, a rate limiter keeps its pro-rated balance, otherwise the sampler is
    /// replaced.
    pub fn update(&mut self, strategy: &StrategyResponse, now_nanos: u64) {
        match (&mut *self, strategy.operations(), strategy) {
            (Sampler::PerOperation(s), Some(ops), _) => s.update(ops),
            (Sampler::RateLimiting(s), None, StrategyResponse::RateLimiting { strategy, .. }) => {
                s.update(f64::from(strategy.max_traces_per_second), now_nanos)
            }
            _ => {
                let max = match self {
                    Sampler::PerOperation(s) => s.max_operations,
                    _ => DEFAULT_MAX_OPERATIONS,
                };
                *self = Self::from_strategy_with_max_operations(strategy, max);
            }
        }
    }

    /// The decision for a root span. Does not allocate except the first time a per-operation
    /// sampler sees an operation.
    pub fn sample(
        &mut self,
        trace_id: TraceId,
        trace_state: &str,
        operation: &str,
        now_nanos: u64,
    ) -> Decision {
        match self {
            Sampler::Probabilistic(s) => s.sample(trace_id, trace_state),
            Sampler::RateLimiting(s) => s.sample(now_nanos),
            Sampler::PerOperation(s) => s.sample(trace_id, trace_state, operation, now_nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::strategy::{OperationStrategy, ProbabilisticStrategy};
    use alloc::string::ToString;
    use alloc::vec::Vec;

    const SEC: u64 = 1_000_000_000;
    /// Randomness 0: dropped by every probability below 1.
    const LOW: TraceId = TraceId(0);
    /// Randomness 2^56 - 1: kept by every probability above 0.
    const HIGH: TraceId = TraceId(0x00ff_ffff_ffff_ffff);

    fn per_op(default: f64, lower_bound: f64, ops: &[(&str, f64)]) -> StrategyResponse {
        StrategyResponse::Probabilistic {
            strategy: ProbabilisticStrategy {
                sampling_rate: default,
            },
            operations: Some(PerOperationStrategies {
                default_sampling_probability: default,
                default_lower_bound_traces_per_second: lower_bound,
                default_upper_bound_traces_per_second: 0.0,
                per_operation: ops
                    .iter()
                    .map(|&(op, p)| OperationStrategy {
                        operation: op.into(),
                        probabilistic: ProbabilisticStrategy { sampling_rate: p },
                    })
                    .collect(),
            }),
        }
    }

    fn d(sampled: bool, t: SamplerType, param: f64) -> (bool, SamplerType, f64) {
        (sampled, t, param)
    }

    fn short(x: Decision) -> (bool, SamplerType, f64) {
        (x.sampled, x.sampler_type, x.param)
    }

    #[test]
    fn probabilistic() {
        let mut s = Sampler::from_strategy(&StrategyResponse::probabilistic(0.5));
        let x = s.sample(TraceId(0x0080_0000_0000_0000), "", "op", 0);
        assert_eq!(short(x), d(true, SamplerType::Probabilistic, 0.5));
        assert_eq!(x.threshold.unwrap().encode().unwrap().as_str(), "8");
        let x = s.sample(TraceId(0x007f_ffff_ffff_ffff), "", "op", 0);
        assert_eq!((x.sampled, x.threshold), (false, None));
        // The rate is clamped as Jaeger does.
        for (rate, clamped) in [(1.5, 1.0), (-1.0, 0.0), (f64::NAN, 0.0)] {
            assert_eq!(ProbabilisticSampler::new(rate).rate(), clamped);
        }
        assert!(!ProbabilisticSampler::new(f64::NAN).sample(HIGH, "").sampled);
    }

    #[test]
    fn rate_limiting() {
        let mut s = Sampler::from_strategy(&StrategyResponse::rate_limiting(2));
        let got: Vec<_> = (0..4)
            .map(|_| short(s.sample(HIGH, "", "op", SEC)))
            .collect();
        let rl = SamplerType::RateLimiting;
        assert_eq!(
            got,
            [
                d(true, rl, 2.0),
                d(true, rl, 2.0),
                d(false, rl, 2.0),
                d(false, rl, 2.0)
            ]
        );
        assert!(s.sample(HIGH, "", "op", SEC + SEC / 2).sampled);
        // A negative rate from the network samples nothing after the first trace of the bucket.
        let mut s = Sampler::from_strategy(&StrategyResponse::rate_limiting(-5));
        assert!(s.sample(HIGH, "", "op", 0).sampled);
        assert!(!s.sample(HIGH, "", "op", 100 * SEC).sampled);
    }

    #[test]
    fn guaranteed_throughput_consumes_the_lower_bound_like_jaeger() {
        // 1 trace/s lower bound, probability 0.5.
        let mut s = GuaranteedThroughputSampler::new(1.0, 0.5);
        let steps = [
            (HIGH, 0, d(true, SamplerType::Probabilistic, 0.5)), // also spends the lower bound
            (LOW, 0, d(false, SamplerType::LowerBound, 0.5)),    // lower bound already spent
            (LOW, SEC, d(true, SamplerType::LowerBound, 0.5)),   // refilled after 1 s
            (LOW, SEC, d(false, SamplerType::LowerBound, 0.5)),
            (HIGH, SEC, d(true, SamplerType::Probabilistic, 0.5)),
        ];
        for (i, (id, now, want)) in steps.into_iter().enumerate() {
            assert_eq!(short(s.sample(id, "", now)), want, "step {i}");
        }
        let x = GuaranteedThroughputSampler::new(1.0, 0.5).sample(LOW, "", 0);
        assert_eq!(x.threshold, None);
    }

    #[test]
    fn per_operation() {
        let strategy = per_op(0.001, 1.0, &[("GET /a", 1.0), ("GET /b", 0.0)]);
        let mut s = Sampler::from_strategy_with_max_operations(&strategy, 3);
        let p = SamplerType::Probabilistic;
        let lb = SamplerType::LowerBound;
        let steps = [
            ("GET /a", LOW, 0, d(true, p, 1.0)),
            ("GET /b", HIGH, 0, d(true, lb, 0.0)), // p = 0, lower bound 1/s
            ("GET /b", HIGH, 0, d(false, lb, 0.0)),
            ("new", LOW, 0, d(true, lb, 0.001)), // third op: default rate + lower bound
            ("new", LOW, 0, d(false, lb, 0.001)),
            ("new", HIGH, 0, d(true, p, 0.001)),
            ("beyond", LOW, 0, d(false, p, 0.001)), // over the bound: plain default
            ("beyond", LOW, 0, d(false, p, 0.001)),
            ("beyond", HIGH, 0, d(true, p, 0.001)),
        ];
        for (i, (op, id, now, want)) in steps.into_iter().enumerate() {
            assert_eq!(short(s.sample(id, "", op, now)), want, "step {i}: {op}");
        }
        match &s {
            Sampler::PerOperation(p) => assert_eq!(p.operations(), 3),
            other => panic!("not per-operation: {other:?}"),
        }
    }

    #[test]
    fn operation_strategies_win_over_the_top_level_type() {
        let mut strategy = per_op(0.0, 0.0, &[("op", 1.0)]);
        if let StrategyResponse::Probabilistic { operations, .. } = &strategy {
            strategy = StrategyResponse::RateLimiting {
                strategy: crate::sampling::strategy::RateLimitingStrategy {
                    max_traces_per_second: 0,
                },
                operations: operations.clone(),
            };
        }
        let mut s = Sampler::from_strategy(&strategy);
        assert_eq!(
            short(s.sample(LOW, "", "op", 0)),
            d(true, SamplerType::Probabilistic, 1.0)
        );
    }

    #[test]
    fn update_keeps_state_like_the_remote_sampler() {
        let mut s = Sampler::from_strategy(&per_op(0.001, 1.0, &[("a", 0.0)]));
        assert!(s.sample(HIGH, "", "a", 0).sampled); // lower bound spent
                                                     // New probability for "a", same lower bound: the spent limiter is kept.
        s.update(&per_op(0.001, 1.0, &[("a", 0.0), ("b", 1.0)]), 0);
        assert!(!s.sample(HIGH, "", "a", 0).sampled);
        assert!(s.sample(LOW, "", "b", 0).sampled);
        // Switching kind replaces the sampler.
        s.update(&StrategyResponse::probabilistic(1.0), 0);
        assert!(matches!(s, Sampler::Probabilistic(_)));
        s.update(&StrategyResponse::rate_limiting(1), 0);
        assert!(s.sample(LOW, "", "x", 0).sampled);
        s.update(&StrategyResponse::rate_limiting(2), 0);
        // Balance pro-rated: 0 of 1 becomes 0 of 2; half a second earns one trace at 2/s.
        assert!(!s.sample(LOW, "", "x", 0).sampled);
        assert!(s.sample(LOW, "", "x", SEC / 2).sampled);
        assert_eq!(SamplerType::LowerBound.to_string(), "lowerbound");
    }
}
