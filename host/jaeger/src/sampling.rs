//! Jaeger's sampling-strategy wire formats: the `api_v2` protobuf messages of `sampling.proto`
//! (`SamplingManager/GetSamplingStrategy`), written out by hand with the exact field numbers,
//! their conversion from Spoor's [`StrategyResponse`], and the two JSON renderings Jaeger serves
//! byte for byte:
//!
//! - [`to_proto_json`]: what `/sampling` (agent, port 5778) and `/api/sampling` (collector,
//!   port 14268) answer: gogo `jsonpb` with `EmitDefaults`, enum names as strings, camelCase
//!   keys, and the top-level `null` strategies removed (Jaeger's
//!   `SamplingStrategyResponseToJSON`).
//! - [`to_legacy_json`]: what the agent's `/` answers: Go's `encoding/json` of the Thrift
//!   struct with `strategyType` as the Thrift 0.9.2 enum number (Jaeger's
//!   `encodeThriftLegacy`).
//!
//! Numbers and strings are formatted as Go's `encoding/json` formats them (shortest round-trip
//! floats, exponent form below 1e-6 and from 1e21, HTML-safe string escapes), so a client that
//! compares bytes sees no difference from Jaeger.

#![allow(missing_docs)]

use std::fmt::Write as _;

use spoor_core::sampling::{PerOperationStrategies, StrategyResponse};

/// The gRPC service name of the sampling manager.
pub const SAMPLING_MANAGER_SERVICE: &str = "jaeger.api_v2.SamplingManager";
/// The full path of `GetSamplingStrategy`.
pub const GET_SAMPLING_STRATEGY_PATH: &str = "/jaeger.api_v2.SamplingManager/GetSamplingStrategy";

/// `SamplingStrategyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SamplingStrategyType {
    Probabilistic = 0,
    RateLimiting = 1,
}

/// `ProbabilisticSamplingStrategy`.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct ProbabilisticSamplingStrategy {
    #[prost(double, tag = "1")]
    pub sampling_rate: f64,
}

/// `RateLimitingSamplingStrategy`.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct RateLimitingSamplingStrategy {
    #[prost(int32, tag = "1")]
    pub max_traces_per_second: i32,
}

/// `OperationSamplingStrategy`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct OperationSamplingStrategy {
    #[prost(string, tag = "1")]
    pub operation: String,
    #[prost(message, optional, tag = "2")]
    pub probabilistic_sampling: Option<ProbabilisticSamplingStrategy>,
}

/// `PerOperationSamplingStrategies`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PerOperationSamplingStrategies {
    #[prost(double, tag = "1")]
    pub default_sampling_probability: f64,
    #[prost(double, tag = "2")]
    pub default_lower_bound_traces_per_second: f64,
    #[prost(message, repeated, tag = "3")]
    pub per_operation_strategies: Vec<OperationSamplingStrategy>,
    #[prost(double, tag = "4")]
    pub default_upper_bound_traces_per_second: f64,
}

/// `SamplingStrategyResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SamplingStrategyResponse {
    #[prost(enumeration = "SamplingStrategyType", tag = "1")]
    pub strategy_type: i32,
    #[prost(message, optional, tag = "2")]
    pub probabilistic_sampling: Option<ProbabilisticSamplingStrategy>,
    #[prost(message, optional, tag = "3")]
    pub rate_limiting_sampling: Option<RateLimitingSamplingStrategy>,
    #[prost(message, optional, tag = "4")]
    pub operation_sampling: Option<PerOperationSamplingStrategies>,
}

/// `SamplingStrategyParameters`: the request of `GetSamplingStrategy`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct SamplingStrategyParameters {
    #[prost(string, tag = "1")]
    pub service_name: String,
}

impl From<&PerOperationStrategies> for PerOperationSamplingStrategies {
    fn from(p: &PerOperationStrategies) -> Self {
        PerOperationSamplingStrategies {
            default_sampling_probability: p.default_sampling_probability,
            default_lower_bound_traces_per_second: p.default_lower_bound_traces_per_second,
            per_operation_strategies: p
                .per_operation
                .iter()
                .map(|o| OperationSamplingStrategy {
                    operation: o.operation.clone(),
                    probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                        sampling_rate: o.probabilistic.sampling_rate,
                    }),
                })
                .collect(),
            default_upper_bound_traces_per_second: p.default_upper_bound_traces_per_second,
        }
    }
}

impl From<&StrategyResponse> for SamplingStrategyResponse {
    fn from(s: &StrategyResponse) -> Self {
        let operation_sampling = s.operations().map(PerOperationSamplingStrategies::from);
        match s {
            StrategyResponse::Probabilistic { strategy, .. } => SamplingStrategyResponse {
                strategy_type: SamplingStrategyType::Probabilistic as i32,
                probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                    sampling_rate: strategy.sampling_rate,
                }),
                rate_limiting_sampling: None,
                operation_sampling,
            },
            StrategyResponse::RateLimiting { strategy, .. } => SamplingStrategyResponse {
                strategy_type: SamplingStrategyType::RateLimiting as i32,
                probabilistic_sampling: None,
                rate_limiting_sampling: Some(RateLimitingSamplingStrategy {
                    max_traces_per_second: strategy.max_traces_per_second,
                }),
                operation_sampling,
            },
        }
    }
}

/// Why a strategy cannot be rendered in the legacy Thrift-JSON (Jaeger answers these with 500
/// `cannot marshall to JSON`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LegacyJsonError {
    /// Go's `encoding/json` refuses NaN and infinities.
    #[error("{field} is {value}, which JSON cannot carry")]
    NotFinite {
        /// The JSON key.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// The Thrift struct carries the rate as an `i16`.
    #[error("maxTracesPerSecond {0} is higher than the legacy int16 allows")]
    RateTooHigh(i32),
    /// A `strategyType` the Thrift enum does not have.
    #[error("unknown strategyType {0}")]
    UnknownStrategyType(i32),
}

/// The proto-JSON of `/sampling` and `/api/sampling`, byte-identical to Jaeger's
/// `SamplingStrategyResponseToJSON` (see the module docs).
pub fn to_proto_json(r: &SamplingStrategyResponse) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"strategyType\":");
    match SamplingStrategyType::try_from(r.strategy_type) {
        Ok(SamplingStrategyType::Probabilistic) => out.push_str("\"PROBABILISTIC\""),
        Ok(SamplingStrategyType::RateLimiting) => out.push_str("\"RATE_LIMITING\""),
        // jsonpb writes an enum value without a name as a bare number
        Err(_) => {
            let _ = write!(out, "{}", r.strategy_type);
        }
    }
    // EmitDefaults renders absent messages as null; Jaeger then removes the top-level ones.
    if let Some(p) = &r.probabilistic_sampling {
        out.push_str(",\"probabilisticSampling\":");
        probabilistic_json(&mut out, p, Floats::Jsonpb);
    }
    if let Some(rl) = &r.rate_limiting_sampling {
        let _ = write!(
            out,
            ",\"rateLimitingSampling\":{{\"maxTracesPerSecond\":{}}}",
            rl.max_traces_per_second
        );
    }
    if let Some(ops) = &r.operation_sampling {
        out.push_str(",\"operationSampling\":");
        per_operation_json(&mut out, ops, Floats::Jsonpb);
    }
    out.push('}');
    out
}

/// The legacy Thrift-JSON of the agent's `/`, byte-identical to Jaeger's `encodeThriftLegacy`:
/// `strategyType` as a number, absent strategies omitted, the per-operation upper bound always
/// present.
pub fn to_legacy_json(r: &SamplingStrategyResponse) -> Result<String, LegacyJsonError> {
    let mut out = String::with_capacity(128);
    // validate first: Jaeger fails the whole response, it never writes half of one
    let kind = SamplingStrategyType::try_from(r.strategy_type)
        .map_err(|_| LegacyJsonError::UnknownStrategyType(r.strategy_type))?;
    let mut floats = Vec::new();
    if let Some(p) = &r.probabilistic_sampling {
        floats.push(("samplingRate", p.sampling_rate));
    }
    if let Some(rl) = &r.rate_limiting_sampling {
        if rl.max_traces_per_second > i32::from(i16::MAX) {
            return Err(LegacyJsonError::RateTooHigh(rl.max_traces_per_second));
        }
    }
    if let Some(ops) = &r.operation_sampling {
        floats.push((
            "defaultSamplingProbability",
            ops.default_sampling_probability,
        ));
        floats.push((
            "defaultLowerBoundTracesPerSecond",
            ops.default_lower_bound_traces_per_second,
        ));
        floats.push((
            "defaultUpperBoundTracesPerSecond",
            ops.default_upper_bound_traces_per_second,
        ));
        for o in &ops.per_operation_strategies {
            if let Some(p) = &o.probabilistic_sampling {
                floats.push(("samplingRate", p.sampling_rate));
            }
        }
    }
    if let Some((field, value)) = floats.into_iter().find(|(_, v)| !v.is_finite()) {
        return Err(LegacyJsonError::NotFinite { field, value });
    }
    let _ = write!(out, "{{\"strategyType\":{}", kind as i32);
    if let Some(p) = &r.probabilistic_sampling {
        out.push_str(",\"probabilisticSampling\":");
        probabilistic_json(&mut out, p, Floats::Go);
    }
    if let Some(rl) = &r.rate_limiting_sampling {
        // Jaeger's converter narrows with Go's int16() (checked above only against the top)
        let _ = write!(
            out,
            ",\"rateLimitingSampling\":{{\"maxTracesPerSecond\":{}}}",
            rl.max_traces_per_second as i16
        );
    }
    if let Some(ops) = &r.operation_sampling {
        out.push_str(",\"operationSampling\":");
        per_operation_json(&mut out, ops, Floats::Go);
    }
    out.push('}');
    Ok(out)
}

/// How non-finite floats are written: jsonpb quotes them, Go's `encoding/json` fails (the
/// legacy path checks before writing, so `Go` never meets one).
#[derive(Clone, Copy)]
enum Floats {
    Jsonpb,
    Go,
}

fn probabilistic_json(out: &mut String, p: &ProbabilisticSamplingStrategy, f: Floats) {
    out.push_str("{\"samplingRate\":");
    float_json(out, p.sampling_rate, f);
    out.push('}');
}

/// `PerOperationSamplingStrategies` in field order; both encoders write every field (jsonpb by
/// `EmitDefaults`, the Thrift struct because Jaeger's converter always sets the upper bound),
/// an empty list as `[]` and an operation without a probability as `null`.
fn per_operation_json(out: &mut String, p: &PerOperationSamplingStrategies, f: Floats) {
    out.push_str("{\"defaultSamplingProbability\":");
    float_json(out, p.default_sampling_probability, f);
    out.push_str(",\"defaultLowerBoundTracesPerSecond\":");
    float_json(out, p.default_lower_bound_traces_per_second, f);
    out.push_str(",\"perOperationStrategies\":[");
    for (i, o) in p.per_operation_strategies.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"operation\":");
        go_string(out, &o.operation);
        out.push_str(",\"probabilisticSampling\":");
        match &o.probabilistic_sampling {
            Some(s) => probabilistic_json(out, s, f),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str("],\"defaultUpperBoundTracesPerSecond\":");
    float_json(out, p.default_upper_bound_traces_per_second, f);
    out.push('}');
}

fn float_json(out: &mut String, v: f64, f: Floats) {
    match (f, v.is_finite()) {
        (_, true) => go_float(out, v),
        (Floats::Jsonpb, false) if v.is_nan() => out.push_str("\"NaN\""),
        (Floats::Jsonpb, false) if v > 0.0 => out.push_str("\"Infinity\""),
        (Floats::Jsonpb, false) => out.push_str("\"-Infinity\""),
        // unreachable by construction (checked before writing); keep the output valid JSON
        (Floats::Go, false) => out.push_str("null"),
    }
}

/// A finite float as Go's `encoding/json` writes it: the shortest decimal that round-trips,
/// in exponent form (`1e-7`, `1e+21`) below 1e-6 and from 1e21.
fn go_float(out: &mut String, v: f64) {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exp}");
            }
            _ => out.push_str(&e),
        }
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A string as Go's `encoding/json` writes it (HTML-safe: `<`, `>`, `&`, U+2028 and U+2029 as
/// `\u` escapes).
fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use spoor_core::sampling::{OperationStrategy, ProbabilisticStrategy};

    use super::*;

    fn per_op(ops: &[(&str, f64)], lower: f64, upper: f64) -> PerOperationStrategies {
        PerOperationStrategies {
            default_sampling_probability: 0.42,
            default_lower_bound_traces_per_second: lower,
            default_upper_bound_traces_per_second: upper,
            per_operation: ops
                .iter()
                .map(|(op, rate)| OperationStrategy {
                    operation: op.to_string(),
                    probabilistic: ProbabilisticStrategy {
                        sampling_rate: *rate,
                    },
                })
                .collect(),
        }
    }

    /// `(strategy, proto-JSON of /sampling, legacy JSON of /)`; the first three strings are the
    /// expectations of Jaeger's own tests (`internal/sampling/http/handler_test.go`, the
    /// change log of jaeger#8014, `converter/v1/json/sampling_test.go`).
    #[test]
    fn renders_both_json_shapes_byte_for_byte() {
        let cases: Vec<(SamplingStrategyResponse, &str, &str)> = vec![
            (
                (&StrategyResponse::rate_limiting(42)).into(),
                r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":42}}"#,
                r#"{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":42}}"#,
            ),
            (
                (&StrategyResponse::probabilistic(0.5)).into(),
                r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.5}}"#,
                r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0.5}}"#,
            ),
            (
                // Jaeger's operationSampling case: no top-level probability
                SamplingStrategyResponse {
                    operation_sampling: Some(
                        (&per_op(&[("foo", 0.42), ("bar", 0.42)], 2.0, 11.2)).into(),
                    ),
                    ..Default::default()
                },
                r#"{"strategyType":"PROBABILISTIC","operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":2,"perOperationStrategies":[{"operation":"foo","probabilisticSampling":{"samplingRate":0.42}},{"operation":"bar","probabilisticSampling":{"samplingRate":0.42}}],"defaultUpperBoundTracesPerSecond":11.2}}"#,
                r#"{"strategyType":0,"operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":2,"perOperationStrategies":[{"operation":"foo","probabilisticSampling":{"samplingRate":0.42}},{"operation":"bar","probabilisticSampling":{"samplingRate":0.42}}],"defaultUpperBoundTracesPerSecond":11.2}}"#,
            ),
            (
                // Jaeger's default; zeros are written, not omitted
                (&StrategyResponse::default()).into(),
                r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.001}}"#,
                r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0.001}}"#,
            ),
            (
                (&StrategyResponse::probabilistic(0.0)).into(),
                r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0}}"#,
                r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0}}"#,
            ),
            (
                (&StrategyResponse::RateLimiting {
                    strategy: spoor_core::sampling::RateLimitingStrategy {
                        max_traces_per_second: 3,
                    },
                    operations: Some(per_op(&[], 0.0, 0.0)),
                })
                    .into(),
                r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":3},"operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":0,"perOperationStrategies":[],"defaultUpperBoundTracesPerSecond":0}}"#,
                r#"{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":3},"operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":0,"perOperationStrategies":[],"defaultUpperBoundTracesPerSecond":0}}"#,
            ),
            (
                // Go's float and HTML-safe string formatting
                (&StrategyResponse::Probabilistic {
                    strategy: ProbabilisticStrategy {
                        sampling_rate: 1e-7,
                    },
                    operations: Some(per_op(&[("<a&b>\"\u{1}", 1.0)], 1e21, 123456.789)),
                })
                    .into(),
                r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":1e-7},"operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":1e+21,"perOperationStrategies":[{"operation":"\u003ca\u0026b\u003e\"\u0001","probabilisticSampling":{"samplingRate":1}}],"defaultUpperBoundTracesPerSecond":123456.789}}"#,
                r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":1e-7},"operationSampling":{"defaultSamplingProbability":0.42,"defaultLowerBoundTracesPerSecond":1e+21,"perOperationStrategies":[{"operation":"\u003ca\u0026b\u003e\"\u0001","probabilisticSampling":{"samplingRate":1}}],"defaultUpperBoundTracesPerSecond":123456.789}}"#,
            ),
        ];
        for (resp, proto_json, legacy_json) in cases {
            assert_eq!(to_proto_json(&resp), proto_json);
            assert_eq!(to_legacy_json(&resp).as_deref(), Ok(legacy_json));
            // both are valid JSON that Python's json.loads (the jaeger-client) can read
            serde_json::from_str::<serde_json::Value>(proto_json).unwrap();
            serde_json::from_str::<serde_json::Value>(legacy_json).unwrap();
        }
    }

    #[test]
    fn what_only_one_shape_can_carry() {
        let nan: SamplingStrategyResponse = (&StrategyResponse::probabilistic(f64::NAN)).into();
        assert_eq!(
            to_proto_json(&nan),
            r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":"NaN"}}"#
        );
        assert_eq!(
            to_legacy_json(&nan).unwrap_err().to_string(),
            "samplingRate is NaN, which JSON cannot carry"
        );
        let big: SamplingStrategyResponse = (&StrategyResponse::rate_limiting(40_000)).into();
        assert_eq!(
            to_proto_json(&big),
            r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":40000}}"#
        );
        assert_eq!(
            to_legacy_json(&big).unwrap_err().to_string(),
            "maxTracesPerSecond 40000 is higher than the legacy int16 allows"
        );
        let unknown = SamplingStrategyResponse {
            strategy_type: 7,
            ..Default::default()
        };
        assert_eq!(to_proto_json(&unknown), r#"{"strategyType":7}"#);
        assert_eq!(
            to_legacy_json(&unknown),
            Err(LegacyJsonError::UnknownStrategyType(7))
        );
        // an operation without a probability stays null in both (Jaeger strips top-level nulls only)
        let bare_op = SamplingStrategyResponse {
            operation_sampling: Some(PerOperationSamplingStrategies {
                per_operation_strategies: vec![OperationSamplingStrategy {
                    operation: "x".into(),
                    probabilistic_sampling: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            to_proto_json(&bare_op).contains(r#"{"operation":"x","probabilisticSampling":null}"#)
        );
    }

    #[test]
    fn proto_wire_matches_the_field_numbers() {
        let resp: SamplingStrategyResponse = (&StrategyResponse::RateLimiting {
            strategy: spoor_core::sampling::RateLimitingStrategy {
                max_traces_per_second: 5,
            },
            operations: Some(per_op(&[("op", 0.5)], 1.0, 0.0)),
        })
            .into();
        let bytes = resp.encode_to_vec();
        // strategyType=1 (field 1 varint), rateLimitingSampling (field 3) = {maxTracesPerSecond: 5}
        assert_eq!(&bytes[..6], &[0x08, 0x01, 0x1a, 0x02, 0x08, 0x05]);
        assert_eq!(SamplingStrategyResponse::decode(&bytes[..]).unwrap(), resp);
        let params = SamplingStrategyParameters {
            service_name: "svc".into(),
        };
        assert_eq!(params.encode_to_vec(), b"\x0a\x03svc");
    }
}
