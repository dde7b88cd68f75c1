//! Jaeger's SPM (Service Performance Monitoring) API behind the UI's Monitor tab:
//! `/api/metrics/{latencies,calls,errors}` answer RED series computed by
//! [`spoor_core::red::series`] from the store's span metrics, as Jaeger's `MetricFamily` proto
//! JSON; `/api/metrics/minstep` gives the smallest step.
//!
//! Parameters and defaults are Jaeger's (`parseMetricsQueryParams`): `service` (repeatable,
//! required), `groupByOperation` (Go `ParseBool`, default false), `spanKind` (repeatable,
//! `unspecified|internal|server|client|producer|consumer` in any case, default `server`),
//! `endTs` (ms since the epoch, default now), `lookback` (ms, default 1 h), `step` (ms, default
//! 5 s), `ratePer` (ms, default 10 min) and, for latencies, `quantile` (required, parsed first).
//! Bad parameters answer 400 in the v1 envelope with Jaeger's wording. Jaeger hands `step`,
//! `ratePer` and `quantile` to Prometheus unchecked and passes its refusals on as 500; here the
//! same queries are refused up front with 400 naming the parameter. Negative durations count
//! as 0 (as `/api/dependencies` does), so a negative step is refused as a zero one.
//!
//! Services are matched exactly; Jaeger's Prometheus reader joins them into a regular
//! expression (`service_name =~ "a|b"`).
//!
//! The body is what Jaeger's `jsonpb` writes: fields in proto order, camelCase names, the enum
//! as its name, empty strings left out, a missing result as `"metrics":[]`, timestamps in RFC
//! 3339 UTC with 0, 3, 6 or 9 fractional digits. Labels come as `service_name`, then
//! `operation` (Jaeger's order is that of a Go map, i.e. unspecified).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use spoor_core::red::{self, Metric, SeriesError, SeriesQuery};
use spoor_core::SpanKind;

use crate::json::Json;
use crate::params::{go_parse_i64, go_quote, ParamError, Params};
use crate::v1::{envelope, error, time_param, unparsable};
use crate::{blocking, json_response, now_nanos, AppState};

const MS: u64 = 1_000_000;
/// Jaeger's default `lookback`: 1 h.
const DEFAULT_LOOKBACK_NANOS: u64 = 3_600_000 * MS;
/// Jaeger's default `step`: 5 s.
const DEFAULT_STEP_NANOS: u64 = 5_000 * MS;
/// Jaeger's default `ratePer`: 10 min.
const DEFAULT_RATE_PER_NANOS: u64 = 600_000 * MS;
/// Jaeger's default `spanKind`.
const DEFAULT_SPAN_KINDS: [SpanKind; 1] = [SpanKind::Server];
/// Smallest step in ms. Series are evaluated at any step, so it is 1 ms, the value Jaeger's
/// Prometheus reader gave.
const MIN_STEP_MS: i64 = 1;

/// What every metrics query shares (Jaeger's `BaseQueryParameters`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BaseQuery {
    pub services: Vec<String>,
    pub group_by_operation: bool,
    pub span_kinds: Vec<SpanKind>,
    pub end_nanos: u64,
    pub lookback_nanos: u64,
    pub step_nanos: u64,
    pub rate_per_nanos: u64,
}

/// Go's `strconv.ParseBool`, with Go's error text.
fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input (hexadecimal floats are refused), with
/// Go's error text.
fn go_parse_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    // Rust's grammar is Go's decimal one: signs, `.5`, `1.`, exponents, `inf`, `NaN`.
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        ));
    }
    Ok(v)
}

/// A duration in milliseconds, `default_nanos` when absent; negative values count as 0.
fn ms_param(p: &Params, name: &'static str, default_nanos: u64) -> Result<u64, ParamError> {
    match p.get(name) {
        None => Ok(default_nanos),
        Some(v) => {
            Ok((go_parse_i64(v).map_err(unparsable(name))?.max(0) as u64).saturating_mul(MS))
        }
    }
}

/// Jaeger's span kind names, in any case; the empty string is refused, as Jaeger does.
fn span_kind(s: &str) -> Result<SpanKind, ParamError> {
    SpanKind::from_jaeger_str(s)
        .filter(|_| !s.is_empty())
        .ok_or_else(|| ParamError::Unparsable {
            param: "spanKind",
            detail: format!("unsupported span kind: '{s}'"),
        })
}

/// Parses the shared parameters in Jaeger's order, so the first bad one is reported.
pub(crate) fn parse_base(p: &Params, now: impl FnOnce() -> u64) -> Result<BaseQuery, ParamError> {
    let services: Vec<String> = p.all("service").into_iter().map(str::to_string).collect();
    if services.is_empty() {
        return Err(ParamError::Unparsable {
            param: "service",
            detail: "please provide at least one service name".into(),
        });
    }
    let group_by_operation = match p.get("groupByOperation") {
        None => false,
        Some(v) => go_parse_bool(v).map_err(unparsable("groupByOperation"))?,
    };
    let kinds = p.all("spanKind");
    let span_kinds = if kinds.is_empty() {
        DEFAULT_SPAN_KINDS.to_vec()
    } else {
        kinds.into_iter().map(span_kind).collect::<Result<_, _>>()?
    };
    let end_nanos = match time_param(p, "endTs", MS)? {
        Some(t) => t,
        None => now(),
    };
    Ok(BaseQuery {
        services,
        group_by_operation,
        span_kinds,
        end_nanos,
        lookback_nanos: ms_param(p, "lookback", DEFAULT_LOOKBACK_NANOS)?,
        step_nanos: ms_param(p, "step", DEFAULT_STEP_NANOS)?,
        rate_per_nanos: ms_param(p, "ratePer", DEFAULT_RATE_PER_NANOS)?,
    })
}

/// A query the series computation refuses, as a 400 naming the parameter.
fn refused(e: SeriesError) -> ParamError {
    let param = match e {
        SeriesError::ZeroStep | SeriesError::TooManyPoints { .. } => "step",
        SeriesError::ZeroRatePer => "ratePer",
        SeriesError::BadQuantile { .. } => "quantile",
    };
    ParamError::Unparsable {
        param,
        detail: e.to_string(),
    }
}

/// A protobuf `Timestamp` as `jsonpb` writes it: RFC 3339 in UTC, the fraction in 0, 3, 6 or 9
/// digits.
fn timestamp(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since the epoch to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        let keep = if frac % 1_000_000 == 0 {
            3
        } else if frac % 1_000 == 0 {
            6
        } else {
            9
        };
        out.push('.');
        out.push_str(&digits[..keep]);
    }
    out.push('Z');
    out
}

/// The `MetricFamily` of one answer.
fn family(metric: Metric, group_by_operation: bool, series: Vec<red::Series>) -> Json {
    let (name, help) = match metric {
        Metric::Latency { quantile } => (
            "service_latencies",
            format!("{quantile:.2}th quantile latency, grouped by service"),
        ),
        Metric::Calls => ("service_call_rate", "calls/sec, grouped by service".into()),
        Metric::Errors => (
            "service_error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service"
                .into(),
        ),
    };
    let (name, help) = if group_by_operation {
        (
            name.replacen("service", "service_operation", 1),
            help + " & operation",
        )
    } else {
        (name.to_string(), help)
    };
    let label = |name: &str, value: String| {
        Json::obj([("name", Json::str(name)), ("value", Json::Str(value))])
    };
    let metrics = series
        .into_iter()
        .map(|s| {
            let mut labels = vec![label("service_name", s.service)];
            if let Some(op) = s.operation {
                labels.push(label("operation", op));
            }
            let points = s
                .points
                .into_iter()
                .map(|(t, v)| {
                    Json::obj([
                        ("gaugeValue", Json::obj([("doubleValue", Json::Float(v))])),
                        ("timestamp", Json::Str(timestamp(t))),
                    ])
                })
                .collect();
            Json::obj([
                ("labels", Json::Arr(labels)),
                ("metricPoints", Json::Arr(points)),
            ])
        })
        .collect();
    Json::obj([
        ("name", Json::Str(name)),
        ("type", Json::str("GAUGE")),
        ("help", Json::Str(help)),
        ("metrics", Json::Arr(metrics)),
    ])
}

/// Parses, reads the store and answers one metrics request; `metric` parses the endpoint's own
/// parameters first, as Jaeger does.
async fn answer(
    state: AppState,
    raw: Option<String>,
    metric: impl FnOnce(&Params) -> Result<Metric, ParamError>,
) -> Response {
    let p = Params::parse(raw.as_deref());
    let parsed = metric(&p).and_then(|metric| {
        let base = parse_base(&p, now_nanos)?;
        let q = SeriesQuery {
            services: base.services.clone(),
            group_by_operation: base.group_by_operation,
            span_kinds: base.span_kinds,
            end_nanos: base.end_nanos,
            lookback_nanos: base.lookback_nanos,
            step_nanos: base.step_nanos,
            rate_per_nanos: base.rate_per_nanos,
            metric,
        };
        // Refuse a degenerate query before reading anything.
        red::series(&[], &q).map_err(refused)?;
        Ok(q)
    });
    let q = match parsed {
        Ok(q) => q,
        Err(e) => return error(e.into()),
    };
    // Buckets ending in the first step's window or later, up to the end.
    let start = q
        .end_nanos
        .saturating_sub(q.lookback_nanos)
        .saturating_sub(q.rate_per_nanos);
    let (services, end) = (q.services.clone(), q.end_nanos);
    let points = match blocking(&state, move |s| s.span_metrics(&services, start, end)).await {
        Ok(points) => points,
        Err(e) => return error(e),
    };
    match red::series(&points, &q) {
        Ok(series) => json_response(family(q.metric, q.group_by_operation, series).render()),
        Err(e) => error(refused(e).into()),
    }
}

/// `GET /api/metrics/latencies?service=…&quantile=…`
pub(crate) async fn latencies(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    answer(state, q, |p| {
        let quantile =
            go_parse_float(p.get("quantile").unwrap_or("")).map_err(unparsable("quantile"))?;
        Ok(Metric::Latency { quantile })
    })
    .await
}

/// `GET /api/metrics/calls?service=…`
pub(crate) async fn calls(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    answer(state, q, |_| Ok(Metric::Calls)).await
}

/// `GET /api/metrics/errors?service=…`
pub(crate) async fn errors(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    answer(state, q, |_| Ok(Metric::Errors)).await
}

/// `GET /api/metrics/minstep`: the smallest step in ms, in the v1 envelope.
pub(crate) async fn min_step() -> Response {
    json_response(envelope(Json::Int(MIN_STEP_MS), 0, Json::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_600_800_000_000_000;

    fn base(q: &str) -> Result<BaseQuery, String> {
        parse_base(&Params::parse(Some(q)), || NOW).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_jaegers() {
        assert_eq!(
            base("service=a"),
            Ok(BaseQuery {
                services: vec!["a".into()],
                group_by_operation: false,
                span_kinds: vec![SpanKind::Server],
                end_nanos: NOW,
                lookback_nanos: 3_600_000 * MS,
                step_nanos: 5_000 * MS,
                rate_per_nanos: 600_000 * MS,
            })
        );
    }

    #[test]
    fn every_parameter_is_read() {
        assert_eq!(
            base(
                "service=a&service=b%20c&groupByOperation=T&spanKind=CLIENT&spanKind=unspecified\
                 &endTs=1000&lookback=20&step=3&ratePer=-4"
            ),
            Ok(BaseQuery {
                services: vec!["a".into(), "b c".into()],
                group_by_operation: true,
                span_kinds: vec![SpanKind::Client, SpanKind::Unspecified],
                end_nanos: 1000 * MS,
                lookback_nanos: 20 * MS,
                step_nanos: 3 * MS,
                rate_per_nanos: 0,
            })
        );
        // An empty service value is a service (Jaeger checks presence only).
        assert_eq!(
            base("service=").map(|b| b.services),
            Ok(vec![String::new()])
        );
    }

    #[test]
    fn the_first_bad_parameter_is_reported_in_jaegers_words() {
        let cases = [
            (
                "groupByOperation=x",
                "unable to parse param 'service': please provide at least one service name",
            ),
            (
                "service=a&groupByOperation=yes&spanKind=x",
                r#"unable to parse param 'groupByOperation': strconv.ParseBool: parsing "yes": invalid syntax"#,
            ),
            (
                "service=a&spanKind=server&spanKind=",
                "unable to parse param 'spanKind': unsupported span kind: ''",
            ),
            (
                "service=a&spanKind=sideways",
                "unable to parse param 'spanKind': unsupported span kind: 'sideways'",
            ),
            (
                "service=a&endTs=now&lookback=x",
                r#"unable to parse param 'endTs': strconv.ParseInt: parsing "now": invalid syntax"#,
            ),
            (
                "service=a&lookback=1h",
                r#"unable to parse param 'lookback': strconv.ParseInt: parsing "1h": invalid syntax"#,
            ),
            (
                "service=a&step=1.5",
                r#"unable to parse param 'step': strconv.ParseInt: parsing "1.5": invalid syntax"#,
            ),
            (
                "service=a&ratePer=99999999999999999999",
                r#"unable to parse param 'ratePer': strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
            ),
        ];
        for (q, want) in cases {
            assert_eq!(base(q).unwrap_err(), want, "{q}");
        }
    }

    #[test]
    fn go_floats_and_bools() {
        for (s, want) in [("0.95", 0.95), (".5", 0.5), ("1e-1", 0.1), ("+1", 1.0)] {
            assert_eq!(go_parse_float(s), Ok(want), "{s}");
        }
        assert!(go_parse_float("NaN").unwrap().is_nan());
        assert_eq!(
            go_parse_float("").unwrap_err(),
            r#"strconv.ParseFloat: parsing "": invalid syntax"#
        );
        assert_eq!(
            go_parse_float("1e400").unwrap_err(),
            r#"strconv.ParseFloat: parsing "1e400": value out of range"#
        );
        assert_eq!(go_parse_bool("1"), Ok(true));
        assert_eq!(go_parse_bool("False"), Ok(false));
        assert!(go_parse_bool("fAlse").is_err());
    }

    #[test]
    fn timestamps_are_jsonpb_rfc3339() {
        for (nanos, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (NOW, "2026-11-25T10:00:00Z"),
            (NOW + 500_000_000, "2026-11-25T10:00:00.500Z"),
            (NOW + 1_000, "2026-11-25T10:00:00.000001Z"),
            (NOW + 1, "2026-11-25T10:00:00.000000001Z"),
            (951_782_400 * 1_000_000_000, "2000-02-29T00:00:00Z"),
            (4_107_542_399 * 1_000_000_000, "2100-02-28T23:59:59Z"),
        ] {
            assert_eq!(timestamp(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn degenerate_queries_name_their_parameter() {
        let q = SeriesQuery {
            services: vec![],
            group_by_operation: false,
            span_kinds: vec![],
            end_nanos: NOW,
            lookback_nanos: 0,
            step_nanos: 0,
            rate_per_nanos: 1,
            metric: Metric::Calls,
        };
        let err = |q: &SeriesQuery| refused(red::series(&[], q).unwrap_err()).to_string();
        assert_eq!(err(&q), "unable to parse param 'step': step must be > 0");
        assert_eq!(
            err(&SeriesQuery {
                step_nanos: 1,
                rate_per_nanos: 0,
                ..q.clone()
            }),
            "unable to parse param 'ratePer': ratePer must be > 0"
        );
        assert_eq!(
            err(&SeriesQuery {
                step_nanos: 1,
                metric: Metric::Latency { quantile: 0.0 },
                ..q.clone()
            }),
            "unable to parse param 'quantile': quantile 0 is not within (0, 1]"
        );
    }
}
