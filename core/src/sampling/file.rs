//! Jaeger's sampling strategies file (`--sampling.strategies-file`): parsing and the answers of
//! Jaeger's static ("file") strategy provider.
//!
//! The format and the answers follow `internal/sampling/samplingstrategy/file` in Jaeger:
//!
//! ```json
//! { "default_strategy": { "type": "probabilistic", "param": 0.5,
//!                         "operation_strategies": [{ "operation": "op", "type": "probabilistic", "param": 0.2 }] },
//!   "service_strategies": [{ "service": "foo", "type": "ratelimiting", "param": 5 }] }
//! ```
//!
//! - without `default_strategy` the default is probabilistic 0.001 (also for JSON `null`);
//! - a strategy without `operation_strategies` has no per-operation part; with them, the
//!   per-operation default probability is the strategy's own rate when it is probabilistic, and
//!   0.001 when it is rate limiting; operation strategies of type `ratelimiting` are dropped
//!   (Jaeger only supports probabilistic ones and logs a warning); the lower and upper bounds
//!   are 0;
//! - if the default strategy has per-operation strategies, a service without its own inherits
//!   them (with its own rate as default probability when probabilistic), and a service with its
//!   own gets the default's operations it does not list appended after its own;
//! - an unknown service gets the default strategy.
//!
//! Stricter than Jaeger (which logs and falls back to the default): unknown fields, an unknown
//! `type`, a `param` without a `type` (or a `type` without a `param`), a probability outside
//! `[0, 1]`, a rate that is not a whole number in `[0, 2^31 - 1]` (Jaeger truncates), and
//! duplicate services or operations are errors naming the field path. A strategy with neither
//! `type` nor `param` is, as in Jaeger, the default probabilistic 0.001.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::Deserialize;

use super::strategy::{
    OperationStrategy, PerOperationStrategies, ProbabilisticStrategy, RateLimitingStrategy,
    StrategyResponse,
};

/// Jaeger's default sampling probability when nothing else is configured.
pub const DEFAULT_SAMPLING_PROBABILITY: f64 = StrategyResponse::DEFAULT_SAMPLING_PROBABILITY;

/// Why a strategies file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrategiesError {
    /// Not valid JSON for the format (serde_json's message, with line and column).
    Json(String),
    /// A value is invalid; `path` names the field, e.g. `service_strategies[2].param`.
    Invalid {
        /// The field path.
        path: String,
        /// What is wrong, naming the value.
        message: String,
    },
}

impl fmt::Display for StrategiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategiesError::Json(m) => write!(f, "invalid strategies file: {m}"),
            StrategiesError::Invalid { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StrategiesError {}

fn invalid(path: &str, message: String) -> StrategiesError {
    StrategiesError::Invalid {
        path: path.to_string(),
        message,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a strategies object")]
struct RawFile {
    #[serde(default)]
    default_strategy: Option<RawDefault>,
    #[serde(default)]
    service_strategies: Option<Vec<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    param: Option<f64>,
    #[serde(default)]
    operation_strategies: Option<Vec<RawOperation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    service: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    param: Option<f64>,
    #[serde(default)]
    operation_strategies: Option<Vec<RawOperation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    operation: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    param: Option<f64>,
}

/// The parsed strategies: a default and one strategy per listed service.
#[derive(Clone, Debug, PartialEq)]
pub struct Strategies {
    default: StrategyResponse,
    services: BTreeMap<String, StrategyResponse>,
}

impl Default for Strategies {
    /// Jaeger without a strategies file: probabilistic 0.001 for every service.
    fn default() -> Self {
        Strategies {
            default: StrategyResponse::default(),
            services: BTreeMap::new(),
        }
    }
}

impl Strategies {
    /// The strategy for `service`, exactly as Jaeger's static provider answers.
    pub fn strategy_for(&self, service: &str) -> StrategyResponse {
        self.services.get(service).unwrap_or(&self.default).clone()
    }

    /// The strategy for services not listed.
    pub fn default_strategy(&self) -> &StrategyResponse {
        &self.default
    }

    /// The listed services and their strategies, by name.
    pub fn services(&self) -> impl Iterator<Item = (&str, &StrategyResponse)> {
        self.services.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Parses a Jaeger strategies file (JSON).
pub fn parse_strategies(json: &[u8]) -> Result<Strategies, StrategiesError> {
    let raw: Option<RawFile> =
        serde_json::from_slice(json).map_err(|e| StrategiesError::Json(e.to_string()))?;
    let Some(raw) = raw else {
        return Ok(Strategies::default());
    };
    let mut out = Strategies::default();
    if let Some(d) = &raw.default_strategy {
        out.default = service_strategy(
            "default_strategy",
            d.kind.as_deref(),
            d.param,
            d.operation_strategies.as_deref(),
        )?;
    }
    let default_ops = out.default.operations().cloned();
    for (i, s) in raw.service_strategies.iter().flatten().enumerate() {
        let path = format!("service_strategies[{i}]");
        if out.services.contains_key(&s.service) {
            return Err(invalid(
                &format!("{path}.service"),
                format!("duplicate service {:?}", s.service),
            ));
        }
        let mut resp = service_strategy(
            &path,
            s.kind.as_deref(),
            s.param,
            s.operation_strategies.as_deref(),
        )?;
        if let Some(default_ops) = &default_ops {
            inherit(&mut resp, default_ops);
        }
        out.services.insert(s.service.clone(), resp);
    }
    Ok(out)
}

/// Jaeger's inheritance of the default strategy's operation strategies.
fn inherit(resp: &mut StrategyResponse, default_ops: &PerOperationStrategies) {
    let (own_rate, ops) = match resp {
        StrategyResponse::Probabilistic {
            strategy,
            operations,
        } => (Some(strategy.sampling_rate), operations),
        StrategyResponse::RateLimiting { operations, .. } => (None, operations),
    };
    match ops {
        None => {
            let mut inherited = default_ops.clone();
            if let Some(rate) = own_rate {
                inherited.default_sampling_probability = rate;
            }
            *ops = Some(inherited);
        }
        Some(own) => {
            for op in &default_ops.per_operation {
                if !own
                    .per_operation
                    .iter()
                    .any(|o| o.operation == op.operation)
                {
                    own.per_operation.push(op.clone());
                }
            }
        }
    }
}

enum Parsed {
    Probabilistic(f64),
    RateLimiting(i32),
}

fn parse_strategy(
    path: &str,
    kind: Option<&str>,
    param: Option<f64>,
) -> Result<Parsed, StrategiesError> {
    let (kind, param) = match (kind, param) {
        (None, None) => return Ok(Parsed::Probabilistic(DEFAULT_SAMPLING_PROBABILITY)),
        (None, Some(p)) => {
            return Err(invalid(
                &format!("{path}.type"),
                format!("missing; param {p} needs type \"probabilistic\" or \"ratelimiting\""),
            ))
        }
        (Some(k), None) => {
            return Err(invalid(
                &format!("{path}.param"),
                format!("missing for type {k:?}"),
            ))
        }
        (Some(k), Some(p)) => (k, p),
    };
    match kind {
        "probabilistic" => {
            if param.is_nan() || !(0.0..=1.0).contains(&param) {
                return Err(invalid(
                    &format!("{path}.param"),
                    format!("probability {param} is not in [0, 1]"),
                ));
            }
            Ok(Parsed::Probabilistic(param))
        }
        "ratelimiting" => {
            let whole = param.is_finite()
                && (0.0..=f64::from(i32::MAX)).contains(&param)
                && param == f64::from(param as i32);
            if !whole {
                return Err(invalid(
                    &format!("{path}.param"),
                    format!(
                        "max traces per second {param} is not a whole number in [0, {}]",
                        i32::MAX
                    ),
                ));
            }
            Ok(Parsed::RateLimiting(param as i32))
        }
        other => Err(invalid(
            &format!("{path}.type"),
            format!(
                "unknown strategy type {other:?}, expected \"probabilistic\" or \"ratelimiting\""
            ),
        )),
    }
}

fn service_strategy(
    path: &str,
    kind: Option<&str>,
    param: Option<f64>,
    operations: Option<&[RawOperation]>,
) -> Result<StrategyResponse, StrategiesError> {
    let top = parse_strategy(path, kind, param)?;
    let ops = match operations {
        Some(ops) if !ops.is_empty() => {
            let default_sampling_probability = match top {
                Parsed::Probabilistic(p) => p,
                Parsed::RateLimiting(_) => DEFAULT_SAMPLING_PROBABILITY,
            };
            let mut per_operation: Vec<OperationStrategy> = Vec::new();
            for (j, op) in ops.iter().enumerate() {
                let op_path = format!("{path}.operation_strategies[{j}]");
                if per_operation.iter().any(|o| o.operation == op.operation) {
                    return Err(invalid(
                        &format!("{op_path}.operation"),
                        format!("duplicate operation {:?}", op.operation),
                    ));
                }
                match parse_strategy(&op_path, op.kind.as_deref(), op.param)? {
                    Parsed::Probabilistic(p) => per_operation.push(OperationStrategy {
                        operation: op.operation.clone(),
                        probabilistic: ProbabilisticStrategy { sampling_rate: p },
                    }),
                    // Jaeger: operation strategies are probabilistic only; others are dropped.
                    Parsed::RateLimiting(_) => {}
                }
            }
            Some(PerOperationStrategies {
                default_sampling_probability,
                default_lower_bound_traces_per_second: 0.0,
                default_upper_bound_traces_per_second: 0.0,
                per_operation,
            })
        }
        _ => None,
    };
    Ok(match top {
        Parsed::Probabilistic(p) => StrategyResponse::Probabilistic {
            strategy: ProbabilisticStrategy { sampling_rate: p },
            operations: ops,
        },
        Parsed::RateLimiting(n) => StrategyResponse::RateLimiting {
            strategy: RateLimitingStrategy {
                max_traces_per_second: n,
            },
            operations: ops,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jaeger's `fixtures/operation_strategies.json`.
    const JAEGER_OPERATION_STRATEGIES: &str = r#"{
      "default_strategy": {
        "type": "probabilistic", "param": 0.5,
        "operation_strategies": [
          { "operation": "op0", "type": "probabilistic", "param": 0.2 },
          { "operation": "op6", "type": "probabilistic", "param": 0 },
          { "operation": "spam", "type": "ratelimiting", "param": 1 },
          { "operation": "op7", "type": "probabilistic", "param": 1 }
        ]
      },
      "service_strategies": [
        { "service": "foo", "type": "probabilistic", "param": 0.8,
          "operation_strategies": [
            { "operation": "op6", "type": "probabilistic", "param": 0.5 },
            { "operation": "op1", "type": "probabilistic", "param": 0.2 },
            { "operation": "op2", "type": "ratelimiting", "param": 10 }
          ] },
        { "service": "bar", "type": "ratelimiting", "param": 5,
          "operation_strategies": [
            { "operation": "op3", "type": "probabilistic", "param": 0.3 },
            { "operation": "op4", "type": "ratelimiting", "param": 100 },
            { "operation": "op5", "type": "probabilistic", "param": 0.4 }
          ] },
        { "service": "baz", "type": "probabilistic", "param": 0.1 },
        { "service": "qux", "type": "ratelimiting", "param": 3 }
      ]
    }"#;

    fn ops(default: f64, list: &[(&str, f64)]) -> Option<PerOperationStrategies> {
        Some(PerOperationStrategies {
            default_sampling_probability: default,
            default_lower_bound_traces_per_second: 0.0,
            default_upper_bound_traces_per_second: 0.0,
            per_operation: list
                .iter()
                .map(|&(o, p)| OperationStrategy {
                    operation: o.into(),
                    probabilistic: ProbabilisticStrategy { sampling_rate: p },
                })
                .collect(),
        })
    }

    fn prob(p: f64, operations: Option<PerOperationStrategies>) -> StrategyResponse {
        StrategyResponse::Probabilistic {
            strategy: ProbabilisticStrategy { sampling_rate: p },
            operations,
        }
    }

    fn rl(n: i32, operations: Option<PerOperationStrategies>) -> StrategyResponse {
        StrategyResponse::RateLimiting {
            strategy: RateLimitingStrategy {
                max_traces_per_second: n,
            },
            operations,
        }
    }

    #[test]
    fn jaeger_operation_strategies_fixture() {
        let s = parse_strategies(JAEGER_OPERATION_STRATEGIES.as_bytes()).unwrap();
        let default_ops = [("op0", 0.2), ("op6", 0.0), ("op7", 1.0)];
        let cases: &[(&str, StrategyResponse)] = &[
            (
                "foo",
                prob(
                    0.8,
                    ops(
                        0.8,
                        &[("op6", 0.5), ("op1", 0.2), ("op0", 0.2), ("op7", 1.0)],
                    ),
                ),
            ),
            (
                "bar",
                rl(
                    5,
                    ops(
                        0.001,
                        &[
                            ("op3", 0.3),
                            ("op5", 0.4),
                            ("op0", 0.2),
                            ("op6", 0.0),
                            ("op7", 1.0),
                        ],
                    ),
                ),
            ),
            ("baz", prob(0.1, ops(0.1, &default_ops))),
            ("qux", rl(3, ops(0.5, &default_ops))),
            ("unknown", prob(0.5, ops(0.5, &default_ops))),
        ];
        for (service, expected) in cases {
            assert_eq!(&s.strategy_for(service), expected, "{service}");
        }
        assert_eq!(s.services().count(), 4);
    }

    #[test]
    fn simple_files() {
        let cases: &[(&str, &str, StrategyResponse)] = &[
            // Jaeger's fixtures/strategies.json
            (
                r#"{"default_strategy":{"type":"probabilistic","param":0.5},
                    "service_strategies":[{"service":"foo","type":"probabilistic","param":0.8},
                                          {"service":"bar","type":"ratelimiting","param":5}]}"#,
                "bar",
                rl(5, None),
            ),
            (
                r#"{"default_strategy":{"type":"probabilistic","param":0.5}}"#,
                "x",
                prob(0.5, None),
            ),
            // No default: probabilistic 0.001.
            (r#"{"service_strategies":[]}"#, "x", prob(0.001, None)),
            ("{}", "x", prob(0.001, None)),
            ("null", "x", prob(0.001, None)),
            // Jaeger's fixtures/missing-service-types.json: no type means the default 0.001.
            (
                r#"{"default_strategy":{"type":"probabilistic","param":0.5},
                    "service_strategies":[{"service":"foo","operation_strategies":[
                        {"operation":"op1","type":"probabilistic","param":0.2}]}]}"#,
                "foo",
                prob(0.001, ops(0.001, &[("op1", 0.2)])),
            ),
            // Only rate-limiting operations: an empty per-operation list, as in Jaeger.
            (
                r#"{"service_strategies":[{"service":"s","type":"probabilistic","param":0.3,
                    "operation_strategies":[{"operation":"a","type":"ratelimiting","param":2}]}]}"#,
                "s",
                prob(0.3, ops(0.3, &[])),
            ),
        ];
        for (json, service, expected) in cases {
            let s = parse_strategies(json.as_bytes()).unwrap();
            assert_eq!(&s.strategy_for(service), expected, "{json}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"service_strategies":[{"service":"a","type":"probabilistic","param":0.1},
                    {"service":"b","type":"probabilistic","param":0.1},
                    {"service":"c","type":"probabilistic","param":1.5}]}"#,
                "service_strategies[2].param: probability 1.5 is not in [0, 1]",
            ),
            (
                r#"{"default_strategy":{"type":"probabilistc","param":0.1}}"#,
                r#"default_strategy.type: unknown strategy type "probabilistc", expected "probabilistic" or "ratelimiting""#,
            ),
            (
                r#"{"default_strategy":{"type":"ratelimiting","param":2.5}}"#,
                "default_strategy.param: max traces per second 2.5 is not a whole number in [0, 2147483647]",
            ),
            (
                r#"{"default_strategy":{"type":"ratelimiting","param":-1}}"#,
                "default_strategy.param: max traces per second -1 is not a whole number in [0, 2147483647]",
            ),
            (
                r#"{"default_strategy":{"type":"probabilistic"}}"#,
                r#"default_strategy.param: missing for type "probabilistic""#,
            ),
            (
                r#"{"default_strategy":{"param":0.3}}"#,
                r#"default_strategy.type: missing; param 0.3 needs type "probabilistic" or "ratelimiting""#,
            ),
            (
                r#"{"service_strategies":[{"service":"a","type":"probabilistic","param":0.1,
                    "operation_strategies":[{"operation":"x","type":"probabilistic","param":-0.5}]}]}"#,
                "service_strategies[0].operation_strategies[0].param: probability -0.5 is not in [0, 1]",
            ),
            (
                r#"{"service_strategies":[{"service":"a","type":"probabilistic","param":0.1},
                    {"service":"a","type":"probabilistic","param":0.2}]}"#,
                r#"service_strategies[1].service: duplicate service "a""#,
            ),
            (
                r#"{"service_strategies":[{"service":"a","type":"probabilistic","param":0.1,
                    "operation_strategies":[{"operation":"x","type":"probabilistic","param":0.1},
                    {"operation":"x","type":"probabilistic","param":0.2}]}]}"#,
                r#"service_strategies[0].operation_strategies[1].operation: duplicate operation "x""#,
            ),
            (
                "{\n  \"default_stratgy\": {}\n}",
                "invalid strategies file: unknown field `default_stratgy`, expected `default_strategy` or `service_strategies` at line 2 column 19",
            ),
            (
                r#""nonsense""#,
                "invalid strategies file: invalid type: string \"nonsense\", expected a strategies object at line 1 column 10",
            ),
            (
                r#"{"service_strategies":[{"type":"probabilistic","param":0.1}]}"#,
                "invalid strategies file: missing field `service` at line 1 column 59",
            ),
        ];
        for (json, message) in cases {
            let e = parse_strategies(json.as_bytes()).unwrap_err();
            assert_eq!(e.to_string(), *message, "{json}");
        }
    }
}
