//! Jaeger's adaptive sampling: per-(service, operation) probabilities recalculated every interval
//! so that each operation yields about `target_samples_per_second` sampled traces.
//!
//! Follows Jaeger's `internal/sampling/samplingstrategy/adaptive` (aggregator, post-aggregator,
//! `PercentageIncreaseCappedCalculator`, provider), for one process holding the counts in memory:
//!
//! - **aggregation**: [`Adaptive::record_root`] counts a root span sampled probabilistically
//!   and notes the probability it was sampled with (truncated to 6 decimals, at most 10 per
//!   operation); [`Adaptive::record_lower_bound_root`] notes the operation and probability without
//!   counting (Jaeger counts only `probabilistic` roots, not `lowerbound` ones);
//! - **post-aggregation**: [`Adaptive::calculate`] closes the interval into a bucket (the newest
//!   `aggregation_buckets` are kept), turns the newest `buckets_for_calculation` buckets of each
//!   operation into a weighted QPS (weights `i^4`, newest heaviest) and updates its probability:
//!   unchanged when the QPS is within `delta_tolerance` of the target or when the service does
//!   not appear to use the adaptive probability (the probability it reports differs from ours);
//!   doubled when the QPS is 0; otherwise `p * target / qps`, where an increase is capped at
//!   `percentage_increase_cap` (a decrease applies at once); always clamped to
//!   `[min_sampling_probability, 1]`. New operations start at `initial_sampling_probability`;
//!   operations absent from every kept bucket are forgotten;
//! - **provider**: [`Adaptive::strategy_for`] answers a probabilistic strategy whose per-operation
//!   part lists the calculated probabilities, with default probability
//!   `initial_sampling_probability` and lower bound `min_samples_per_second`. Jaeger's response
//!   has no top-level probabilistic part; the model requires one, so it is the initial probability.
//!
//! Not carried over: the leader election and storage of a multi-collector deployment, and the
//! calculation delay (Jaeger lags the window by 2 minutes so that clients polling every minute
//! have picked up the last probabilities; the host decides when to call [`Adaptive::calculate`]).
//! Deviation: Jaeger's post-aggregator constructs its calculator with an increase cap of 1.0
//! (100%), while the calculator's own default is 0.5; the cap here is configurable, default 0.5.
//!
//! Convergence: with constant traffic, `record_root` for every sampled root and one
//! `calculate` per interval, an operation reaches the target within tolerance in at most
//! `ceil(log(target / (initial_probability * rate)) / log(1 + cap)) + 1` intervals when it starts
//! below the target (a few more when it starts sampling nothing, because the probability then
//! doubles), and in one interval when it starts above it; then its probability stays constant.
//! The tests assert at most 20 intervals for 1, 50 and 5000 roots per second.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;
use serde::Deserialize;

use super::strategy::{
    OperationStrategy, PerOperationStrategies, ProbabilisticStrategy, StrategyResponse,
};

/// Largest number of distinct probabilities noted per operation and interval (Jaeger's).
const MAX_PROBABILITIES: usize = 10;

/// Configuration of adaptive sampling; every field has Jaeger's default.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Sampled traces per second wanted per operation (default 1).
    pub target_samples_per_second: f64,
    /// Relative deviation from the target that needs no change (default 0.3).
    pub delta_tolerance: f64,
    /// Length of one calculation interval in seconds (default 60).
    pub calculation_interval_seconds: u64,
    /// Buckets (intervals) of throughput kept (default 10).
    pub aggregation_buckets: usize,
    /// Newest buckets used for the weighted QPS (default 1).
    pub buckets_for_calculation: usize,
    /// Probability of a new operation (default 0.001).
    pub initial_sampling_probability: f64,
    /// Lowest probability ever calculated (default 1e-5).
    pub min_sampling_probability: f64,
    /// Guaranteed traces per second per operation, served as the lower bound (default 1/60).
    pub min_samples_per_second: f64,
    /// Largest relative increase of a probability per interval (default 0.5).
    pub percentage_increase_cap: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            target_samples_per_second: 1.0,
            delta_tolerance: 0.3,
            calculation_interval_seconds: 60,
            aggregation_buckets: 10,
            buckets_for_calculation: 1,
            initial_sampling_probability: 0.001,
            min_sampling_probability: 1e-5,
            min_samples_per_second: 1.0 / 60.0,
            percentage_increase_cap: 0.5,
        }
    }
}

/// An invalid [`AdaptiveConfig`] field, with its value.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveConfigError {
    /// The field name.
    pub field: &'static str,
    /// The refused value.
    pub value: f64,
    /// The accepted range.
    pub expected: &'static str,
}

impl fmt::Display for AdaptiveConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} is not {}", self.field, self.value, self.expected)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AdaptiveConfigError {}

impl AdaptiveConfig {
    /// Checks every field; the first bad one is named.
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        let err = |field, value, expected| {
            Err(AdaptiveConfigError {
                field,
                value,
                expected,
            })
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let probability = |v: f64| v > 0.0 && v <= 1.0;
        if !positive(self.target_samples_per_second) {
            return err(
                "target_samples_per_second",
                self.target_samples_per_second,
                "> 0",
            );
        }
        if !positive(self.delta_tolerance) {
            return err("delta_tolerance", self.delta_tolerance, "> 0");
        }
        if self.calculation_interval_seconds == 0 {
            return err("calculation_interval_seconds", 0.0, ">= 1");
        }
        if self.aggregation_buckets == 0 {
            return err("aggregation_buckets", 0.0, ">= 1");
        }
        if self.buckets_for_calculation == 0 {
            return err("buckets_for_calculation", 0.0, ">= 1");
        }
        if !probability(self.initial_sampling_probability) {
            let v = self.initial_sampling_probability;
            return err("initial_sampling_probability", v, "in (0, 1]");
        }
        if !probability(self.min_sampling_probability) {
            let v = self.min_sampling_probability;
            return err("min_sampling_probability", v, "in (0, 1]");
        }
        if !(self.min_samples_per_second.is_finite() && self.min_samples_per_second >= 0.0) {
            return err(
                "min_samples_per_second",
                self.min_samples_per_second,
                ">= 0",
            );
        }
        if !positive(self.percentage_increase_cap) {
            return err(
                "percentage_increase_cap",
                self.percentage_increase_cap,
                "> 0",
            );
        }
        Ok(())
    }
}

/// Roots counted for one operation in one interval.
#[derive(Clone, Debug, Default)]
struct Throughput {
    count: u64,
    /// Probabilities reported, truncated to 6 decimals (Jaeger's `%.6f` keys).
    probabilities: Vec<u64>,
}

type ServiceOps<T> = HashMap<String, HashMap<String, T>>;

struct Bucket {
    throughput: ServiceOps<Throughput>,
    interval_nanos: u64,
}

#[derive(Clone, Copy)]
struct CacheEntry {
    probability: f64,
    using_adaptive: bool,
}

fn abs(v: f64) -> f64 {
    if v < 0.0 {
        -v
    } else {
        v
    }
}

fn float_equals(a: f64, b: f64) -> bool {
    abs(a - b) < 1e-10
}

/// Jaeger's `TruncateFloat` (`%.6f`), as an integer number of millionths.
fn truncate_key(p: f64) -> u64 {
    if p.is_finite() && p > 0.0 {
        (p * 1e6 + 0.5) as u64
    } else {
        0
    }
}

/// Adaptive sampling state for one process: this interval's counts, past buckets and the
/// current probabilities.
pub struct Adaptive {
    cfg: AdaptiveConfig,
    current: ServiceOps<Throughput>,
    buckets: VecDeque<Bucket>,
    probabilities: BTreeMap<String, BTreeMap<String, f64>>,
    qps: BTreeMap<String, BTreeMap<String, f64>>,
    /// Jaeger's service cache: entry 0 for this calculation, entry 1 for the previous one.
    cache: VecDeque<ServiceOps<CacheEntry>>,
    weights: Vec<f64>,
    last_calculation: Option<u64>,
}

impl fmt::Debug for Adaptive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adaptive")
            .field("cfg", &self.cfg)
            .field("probabilities", &self.probabilities)
            .finish_non_exhaustive()
    }
}

impl Adaptive {
    /// Adaptive sampling with `cfg` (validated with [`AdaptiveConfig::validate`]).
    pub fn new(cfg: AdaptiveConfig) -> Result<Self, AdaptiveConfigError> {
        cfg.validate()?;
        let n = cfg.buckets_for_calculation;
        let mut weights: Vec<f64> = (1..=n).rev().map(|i| (i * i * i * i) as f64).collect();
        let sum: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= sum;
        }
        Ok(Adaptive {
            cfg,
            current: HashMap::new(),
            buckets: VecDeque::new(),
            probabilities: BTreeMap::new(),
            qps: BTreeMap::new(),
            cache: VecDeque::new(),
            weights,
            last_calculation: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.cfg
    }

    fn note(&mut self, service: &str, operation: &str, probability: f64, count: bool) {
        if service.is_empty() || operation.is_empty() {
            return;
        }
        let t = self
            .current
            .entry_ref(service)
            .or_default()
            .entry_ref(operation)
            .or_default();
        let key = truncate_key(probability);
        if t.probabilities.len() < MAX_PROBABILITIES && !t.probabilities.contains(&key) {
            t.probabilities.push(key);
        }
        if count {
            t.count += 1;
        }
    }

    /// Counts a root span of `service`/`operation` sampled probabilistically with
    /// `sampled_probability` (its `sampler.param`). Allocates only for a new operation.
    /// Roots with an empty service or operation are ignored, as in Jaeger.
    pub fn record_root(&mut self, service: &str, operation: &str, sampled_probability: f64) {
        self.note(service, operation, sampled_probability, true);
    }

    /// Notes a root span kept by the lower bound (`sampler.type=lowerbound`): the operation is
    /// known, but the root is not counted.
    pub fn record_lower_bound_root(&mut self, service: &str, operation: &str, probability: f64) {
        self.note(service, operation, probability, false);
    }

    /// Closes the interval ending at `now_nanos` and recalculates every probability. The
    /// interval is the time since the previous call; the configured interval for the first call
    /// or when time did not advance.
    pub fn calculate(&mut self, now_nanos: u64) {
        let configured = self
            .cfg
            .calculation_interval_seconds
            .saturating_mul(1_000_000_000);
        let interval_nanos = match self.last_calculation {
            Some(last) if now_nanos > last => now_nanos - last,
            _ => configured,
        };
        self.last_calculation = Some(now_nanos);
        let throughput = core::mem::take(&mut self.current);
        self.buckets.push_front(Bucket {
            throughput,
            interval_nanos,
        });
        self.buckets.truncate(self.cfg.aggregation_buckets);
        self.cache.push_front(HashMap::new());
        self.cache.truncate(2);

        // Per operation, the QPS of the newest `buckets_for_calculation` buckets holding it.
        let mut all_qps: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
        for bucket in &self.buckets {
            let seconds = bucket.interval_nanos as f64 / 1e9;
            for (svc, ops) in &bucket.throughput {
                for (op, t) in ops {
                    let v = all_qps.entry((svc.as_str(), op.as_str())).or_default();
                    if v.len() < self.cfg.buckets_for_calculation {
                        v.push(t.count as f64 / seconds);
                    }
                }
            }
        }
        let mut probabilities: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        let mut qps_out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        let mut cache_now: ServiceOps<CacheEntry> = HashMap::new();
        for ((svc, op), qps) in &all_qps {
            let weights = &self.weights[..qps.len()];
            let total: f64 = weights.iter().sum();
            let avg: f64 = qps.iter().zip(weights).map(|(q, w)| q * w).sum::<f64>() / total;
            let (p, entry) = self.calculate_probability(svc, op, avg);
            cache_now
                .entry_ref(*svc)
                .or_default()
                .insert(String::from(*op), entry);
            probabilities
                .entry(String::from(*svc))
                .or_default()
                .insert(String::from(*op), p);
            qps_out
                .entry(String::from(*svc))
                .or_default()
                .insert(String::from(*op), avg);
        }
        self.cache[0] = cache_now;
        self.probabilities = probabilities;
        self.qps = qps_out;
    }

    fn calculate_probability(&self, service: &str, operation: &str, qps: f64) -> (f64, CacheEntry) {
        let cfg = &self.cfg;
        let old = self
            .probabilities
            .get(service)
            .and_then(|ops| ops.get(operation))
            .copied()
            .unwrap_or(cfg.initial_sampling_probability);
        let using_adaptive = self.is_using_adaptive(old, service, operation);
        let entry = CacheEntry {
            probability: old,
            using_adaptive,
        };
        let target = cfg.target_samples_per_second;
        if abs(qps - target) / target < cfg.delta_tolerance || !using_adaptive {
            return (old, entry);
        }
        let new = if float_equals(qps, 0.0) {
            old * 2.0
        } else {
            let factor = target / qps;
            let mut p = old * factor;
            if factor > 1.0 && (p - old) / old > cfg.percentage_increase_cap {
                p = old + old * cfg.percentage_increase_cap;
            }
            p
        };
        let clamped = if new > 1.0 {
            1.0
        } else if new < cfg.min_sampling_probability {
            cfg.min_sampling_probability
        } else {
            new
        };
        (clamped, entry)
    }

    fn is_using_adaptive(&self, probability: f64, service: &str, operation: &str) -> bool {
        if float_equals(probability, self.cfg.initial_sampling_probability) {
            return true;
        }
        let latest = self
            .buckets
            .front()
            .and_then(|b| b.throughput.get(service))
            .and_then(|ops| ops.get(operation));
        if let Some(t) = latest {
            return t.probabilities.contains(&truncate_key(probability));
        }
        self.cache
            .get(1)
            .and_then(|c| c.get(service))
            .and_then(|ops| ops.get(operation))
            .map(|e| {
                e.using_adaptive
                    && !float_equals(e.probability, self.cfg.initial_sampling_probability)
            })
            .unwrap_or(false)
    }

    /// The current probability of an operation, if it has been calculated.
    pub fn probability(&self, service: &str, operation: &str) -> Option<f64> {
        self.probabilities.get(service)?.get(operation).copied()
    }

    /// The weighted QPS of sampled roots last calculated for an operation.
    pub fn qps(&self, service: &str, operation: &str) -> Option<f64> {
        self.qps.get(service)?.get(operation).copied()
    }

    /// The strategy served to `service`: its per-operation probabilities (sorted by operation),
    /// or only the defaults for a service without calculated probabilities.
    pub fn strategy_for(&self, service: &str) -> StrategyResponse {
        let per_operation = self
            .probabilities
            .get(service)
            .map(|ops| {
                ops.iter()
                    .map(|(op, &p)| OperationStrategy {
                        operation: op.clone(),
                        probabilistic: ProbabilisticStrategy { sampling_rate: p },
                    })
                    .collect()
            })
            .unwrap_or_default();
        StrategyResponse::Probabilistic {
            strategy: ProbabilisticStrategy {
                sampling_rate: self.cfg.initial_sampling_probability,
            },
            operations: Some(PerOperationStrategies {
                default_sampling_probability: self.cfg.initial_sampling_probability,
                default_lower_bound_traces_per_second: self.cfg.min_samples_per_second,
                default_upper_bound_traces_per_second: 0.0,
                per_operation,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const MINUTE: u64 = 60_000_000_000;
    /// The bound on intervals to converge that the module doc states.
    const CONVERGENCE_INTERVALS: usize = 20;

    /// The probability `service` is told to use for `op`.
    fn served(a: &Adaptive, service: &str, op: &str) -> f64 {
        let s = a.strategy_for(service);
        let ops = s.operations().unwrap();
        ops.per_operation
            .iter()
            .find(|o| o.operation == op)
            .map(|o| o.probabilistic.sampling_rate)
            .unwrap_or(ops.default_sampling_probability)
    }

    /// One interval of `rate` roots/s, each kept with the served probability (the expected
    /// count, rounded), then `calculate`. Returns (probability used, sampled QPS seen). When
    /// the probability keeps none, the client's lower bound (1/60 per second) keeps one root a
    /// minute, tagged `lowerbound`.
    fn step(a: &mut Adaptive, now: &mut u64, rate: f64) -> (f64, f64) {
        let p = served(a, "svc", "op");
        let sampled = (rate * 60.0 * p + 0.5) as u64;
        for _ in 0..sampled {
            a.record_root("svc", "op", p);
        }
        if sampled == 0 && rate * 60.0 >= 1.0 {
            a.record_lower_bound_root("svc", "op", p);
        }
        *now += MINUTE;
        a.calculate(*now);
        (p, sampled as f64 / 60.0)
    }

    fn within_tolerance(qps: f64) -> bool {
        abs(qps - 1.0) < 0.3
    }

    #[test]
    fn converges_and_stays_for_several_rates() {
        for rate in [1.0, 50.0, 5000.0, 20_000.0] {
            let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
            let mut now = 0;
            let mut converged_at = None;
            for i in 0..CONVERGENCE_INTERVALS {
                let (_, qps) = step(&mut a, &mut now, rate);
                if within_tolerance(qps) {
                    converged_at = Some(i);
                    break;
                }
            }
            let at = converged_at.unwrap_or_else(|| panic!("rate {rate} did not converge"));
            let p = served(&a, "svc", "op");
            for _ in 0..30 {
                let (used, qps) = step(&mut a, &mut now, rate);
                assert_eq!(
                    used, p,
                    "rate {rate}: probability moved after interval {at}"
                );
                assert!(within_tolerance(qps), "rate {rate}: qps {qps}");
            }
        }
    }

    #[test]
    fn increase_is_capped_and_decrease_is_immediate() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        let mut now = 0;
        // 50/s at 0.001: 3 sampled per minute, 0.05/s; wants x20, gets +50%.
        let mut ps = vec![];
        for _ in 0..3 {
            step(&mut a, &mut now, 50.0);
            ps.push(served(&a, "svc", "op"));
        }
        for (got, want) in ps.iter().zip([0.0015, 0.00225, 0.003375]) {
            assert!(float_equals(*got, want), "{ps:?}");
        }
        // 5000/s at 0.001: 5/s, straight down to 0.0002.
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        step(&mut a, &mut now, 5000.0);
        assert!(float_equals(served(&a, "svc", "op"), 0.0002));
        assert!(float_equals(a.qps("svc", "op").unwrap(), 5.0));
    }

    #[test]
    fn probability_never_below_the_minimum() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        let mut now = 0;
        for _ in 0..5 {
            step(&mut a, &mut now, 1e8);
            assert_eq!(a.probability("svc", "op"), Some(1e-5));
        }
    }

    #[test]
    fn zero_throughput_doubles_up_to_one() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        let mut now = 0;
        let mut seen = vec![];
        for _ in 0..12 {
            a.record_lower_bound_root("svc", "op", served(&a, "svc", "op"));
            now += MINUTE;
            a.calculate(now);
            seen.push(a.probability("svc", "op").unwrap());
        }
        assert_eq!(seen[..3], [0.002, 0.004, 0.008]);
        assert_eq!(seen[8..], [0.512, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn services_not_using_the_adaptive_probability_are_left_alone() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        let mut now = 0;
        for round in 0..3 {
            // The service samples with a static 0.5 whatever it is told.
            for _ in 0..600 {
                a.record_root("static", "op", 0.5);
            }
            now += MINUTE;
            a.calculate(now);
            // First round: initial probability, assumed adaptive: 10/s -> 0.0001. Then frozen.
            assert!(
                float_equals(a.probability("static", "op").unwrap(), 0.0001),
                "{round}"
            );
        }
    }

    #[test]
    fn operations_are_forgotten_after_the_kept_buckets() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        a.record_root("svc", "old", 0.001);
        a.calculate(MINUTE);
        for i in 2..=10 {
            a.calculate(i * MINUTE);
            assert!(a.probability("svc", "old").is_some(), "interval {i}");
        }
        a.calculate(11 * MINUTE);
        assert_eq!(a.probability("svc", "old"), None);
        // Empty names are ignored, as in Jaeger.
        a.record_root("", "op", 0.001);
        a.record_root("svc", "", 0.001);
        a.calculate(12 * MINUTE);
        assert_eq!(
            a.strategy_for("svc").operations().unwrap().per_operation,
            []
        );
    }

    #[test]
    fn strategy_for_lists_operations_with_the_defaults() {
        let mut a = Adaptive::new(AdaptiveConfig::default()).unwrap();
        for _ in 0..300 {
            a.record_root("svc", "b", 0.001); // 5/s -> 0.0002
        }
        for _ in 0..60 {
            a.record_root("svc", "a", 0.001); // 1/s: within tolerance, stays 0.001
        }
        a.calculate(MINUTE);
        let s = a.strategy_for("svc");
        let ops = s.operations().unwrap();
        assert_eq!(ops.default_sampling_probability, 0.001);
        assert_eq!(ops.default_lower_bound_traces_per_second, 1.0 / 60.0);
        let got: Vec<(&str, f64)> = ops
            .per_operation
            .iter()
            .map(|o| (o.operation.as_str(), o.probabilistic.sampling_rate))
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("a", 0.001));
        assert_eq!(got[1].0, "b");
        assert!(float_equals(got[1].1, 0.0002));
        let other = a.strategy_for("other");
        assert_eq!(other.operations().unwrap().per_operation, []);
        assert_eq!(
            other.strategy_type(),
            super::super::strategy::StrategyType::Probabilistic
        );
    }

    #[test]
    fn weighted_qps_over_several_buckets() {
        let cfg = AdaptiveConfig {
            buckets_for_calculation: 2,
            delta_tolerance: 100.0, // never change: only the QPS is of interest
            ..AdaptiveConfig::default()
        };
        let mut a = Adaptive::new(cfg).unwrap();
        for _ in 0..60 {
            a.record_root("svc", "op", 0.001);
        }
        a.calculate(MINUTE);
        for _ in 0..120 {
            a.record_root("svc", "op", 0.001);
        }
        a.calculate(2 * MINUTE);
        // Weights 2^4 and 1^4, normalised: (16 * 2 + 1 * 1) / 17.
        assert!(float_equals(a.qps("svc", "op").unwrap(), 33.0 / 17.0));
    }

    #[test]
    fn config_defaults_and_errors() {
        let cfg: AdaptiveConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, AdaptiveConfig::default());
        let cfg: AdaptiveConfig =
            serde_json::from_str(r#"{"target_samples_per_second": 2.5}"#).unwrap();
        assert_eq!(cfg.target_samples_per_second, 2.5);
        assert_eq!(cfg.min_sampling_probability, 1e-5);
        let e = serde_json::from_str::<AdaptiveConfig>(r#"{"target_sample_per_second": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unknown field `target_sample_per_second`"),
            "{e}"
        );
        let cases: &[(AdaptiveConfig, &str)] = &[
            (
                AdaptiveConfig {
                    delta_tolerance: -1.0,
                    ..AdaptiveConfig::default()
                },
                "delta_tolerance: -1 is not > 0",
            ),
            (
                AdaptiveConfig {
                    min_sampling_probability: 2.0,
                    ..AdaptiveConfig::default()
                },
                "min_sampling_probability: 2 is not in (0, 1]",
            ),
            (
                AdaptiveConfig {
                    aggregation_buckets: 0,
                    ..AdaptiveConfig::default()
                },
                "aggregation_buckets: 0 is not >= 1",
            ),
        ];
        for (cfg, message) in cases {
            assert_eq!(
                Adaptive::new(cfg.clone()).unwrap_err().to_string(),
                *message
            );
        }
    }
}
