//! Jaeger's api_v3 over HTTP (grpc-gateway JSON): services, operations, traces as OTLP/JSON
//! `{"result":{"resourceSpans":[…]}}`, and trace summaries.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use spoor_core::query::TraceQuery;
use spoor_core::{SpanKind, Trace};

use crate::json::Json;
use crate::params::{self, go_parse_duration, go_quote, parse_rfc3339, ParamError, Params};
use crate::{blocking, error_response, json_response, prepare_trace, ApiError, AppState};

/// Jaeger's default search depth when `query.searchDepth` is absent.
const DEFAULT_SEARCH_DEPTH: usize = 100;

/// The one place a v3 error becomes a response: grpc-gateway's
/// `{"error":{"httpCode":N,"message":"…"}}` (Jaeger leaves `grpcCode` at 0, so it is omitted).
fn error(err: ApiError) -> Response {
    let status = err.status();
    let message = match &err {
        ApiError::NotFound => "No traces found".to_string(),
        other => other.to_string(),
    };
    let body = Json::obj([(
        "error",
        Json::obj([
            ("httpCode", Json::UInt(u64::from(status.as_u16()))),
            ("message", Json::Str(message)),
        ]),
    )]);
    error_response(status, body.render())
}

fn respond(r: Result<String, ApiError>) -> Response {
    match r {
        Ok(body) => json_response(body),
        Err(e) => error(e),
    }
}

/// protojson omits empty repeated fields: `{}` instead of `{"field":[]}`.
fn repeated(field: &str, items: Vec<Json>) -> String {
    if items.is_empty() {
        "{}".to_string()
    } else {
        Json::obj([(field, Json::Arr(items))]).render()
    }
}

/// `GET /api/v3/services`
pub(crate) async fn services(State(state): State<AppState>) -> Response {
    respond(
        blocking(&state, |s| s.services())
            .await
            .map(|svcs| repeated("services", svcs.into_iter().map(Json::Str).collect())),
    )
}

/// `GET /api/v3/operations?service=&spanKind=` (`span_kind` accepted as an alias).
pub(crate) async fn operations(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let service = p.get("service").unwrap_or("").to_string();
    let kind = match p.get_either("spanKind", "span_kind") {
        None => None,
        Some((k, name)) => match SpanKind::from_jaeger_str(k) {
            Some(kind) => Some(kind),
            None => {
                let detail = format!("unsupported span kind {}", go_quote(k));
                return error(
                    ParamError::Malformed {
                        param: name,
                        detail,
                    }
                    .into(),
                );
            }
        },
    };
    respond(
        blocking(&state, move |s| s.operations(&service, kind))
            .await
            .map(|ops| {
                let items = ops
                    .into_iter()
                    .map(|o| {
                        // Jaeger's v3 gateway reports operations without a kind as "internal".
                        let kind = match o.span_kind {
                            SpanKind::Unspecified => "internal",
                            k => k.as_jaeger_str(),
                        };
                        let mut fields = Vec::new();
                        if !o.name.is_empty() {
                            fields.push(("name", Json::Str(o.name)));
                        }
                        fields.push(("spanKind", Json::str(kind)));
                        Json::obj(fields)
                    })
                    .collect();
                repeated("operations", items)
            }),
    )
}

fn malformed(param: &'static str) -> impl Fn(String) -> ParamError {
    move |detail| ParamError::Malformed { param, detail }
}

/// Parses the `query.*` parameters of a v3 search (camelCase names, snake_case aliases); the
/// window is shortened to `max_lookback` (by moving its start) and the depth capped at
/// `max_limit`.
pub(crate) fn parse_find(
    p: &Params,
    max_limit: usize,
    max_lookback: Option<std::time::Duration>,
) -> Result<TraceQuery, ParamError> {
    let mut q = TraceQuery {
        service: p
            .get_either("query.serviceName", "query.service_name")
            .map(|(v, _)| v.to_string()),
        operation: p
            .get_either("query.operationName", "query.operation_name")
            .map(|(v, _)| v.to_string()),
        ..TraceQuery::default()
    };
    if let Some(attrs) = p.get("query.attributes") {
        let map: BTreeMap<String, String> = serde_json::from_str(attrs)
            .map_err(|e| malformed("query.attributes")(e.to_string()))?;
        q.tags = map.into_iter().collect();
    }
    let min = p.get_either("query.startTimeMin", "query.start_time_min");
    let max = p.get_either("query.startTimeMax", "query.start_time_max");
    let (Some((min, min_name)), Some((max, max_name))) = (min, max) else {
        return Err(ParamError::TimeWindowRequired);
    };
    q.start_min_nanos = parse_rfc3339(min).map_err(malformed(min_name))?;
    q.start_max_nanos = parse_rfc3339(max).map_err(malformed(max_name))?;
    if q.start_min_nanos >= q.start_max_nanos {
        return Err(ParamError::TimeWindowEmpty);
    }
    if let Some(max) = max_lookback {
        let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        q.start_min_nanos = q.start_min_nanos.max(q.start_max_nanos.saturating_sub(max));
    }
    let depth = p
        .get_either("query.searchDepth", "query.search_depth")
        .or_else(|| p.get("query.num_traces").map(|v| (v, "query.num_traces")));
    q.limit = match depth {
        None => DEFAULT_SEARCH_DEPTH,
        Some((v, name)) => {
            let n = params::go_parse_i64(v)
                .map_err(|e| malformed(name)(e.replace("strconv.ParseInt", "strconv.Atoi")))?;
            if n <= 0 {
                DEFAULT_SEARCH_DEPTH
            } else {
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        }
    }
    .min(max_limit.max(1));
    if let Some((d, name)) = p.get_either("query.durationMin", "query.duration_min") {
        q.duration_min_nanos =
            Some(go_parse_duration(d).map_err(malformed(name))?.max(0) as u64).filter(|d| *d > 0);
    }
    if let Some((d, name)) = p.get_either("query.durationMax", "query.duration_max") {
        q.duration_max_nanos =
            Some(go_parse_duration(d).map_err(malformed(name))?.max(0) as u64).filter(|d| *d > 0);
    }
    Ok(q)
}

/// OTLP/JSON of the traces, wrapped as grpc-gateway wraps a stream message.
fn result_body(traces: Vec<Trace>, max_spans: usize) -> Result<String, ApiError> {
    let traces: Vec<Trace> = traces.into_iter().filter(|t| !t.spans.is_empty()).collect();
    if traces.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut spans = Vec::new();
    for mut t in traces {
        prepare_trace(&mut t, max_spans);
        spans.append(&mut t.spans);
    }
    let otlp = spoor_otlp::json::encode_traces_data(&spans);
    Ok(format!("{{\"result\":{otlp}}}"))
}

/// `GET /api/v3/traces/{trace_id}[?startTime=&endTime=]`
pub(crate) async fn get_trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let parsed = (|| -> Result<_, ParamError> {
        let id = params::parse_trace_id(&id).map_err(malformed("trace_id"))?;
        let start = p
            .get_either("startTime", "start_time")
            .map(|(v, n)| parse_rfc3339(v).map_err(malformed(n)))
            .transpose()?;
        let end = p
            .get_either("endTime", "end_time")
            .map(|(v, n)| parse_rfc3339(v).map_err(malformed(n)))
            .transpose()?;
        Ok((id, start, end))
    })();
    let (id, start, end) = match parsed {
        Ok(v) => v,
        Err(e) => return error(e.into()),
    };
    let max_spans = state.cfg.max_spans_per_trace;
    let found = blocking(&state, move |s| s.get_trace(id)).await;
    respond(found.and_then(|t| {
        // The time window is a hint for stores that partition by time; Spoor's stores find a
        // trace by id alone, so a trace is only dropped when none of its spans is in the window.
        let t = t.filter(|t| {
            t.spans.iter().any(|s| {
                start.is_none_or(|st| s.end_unix_nanos() >= st)
                    && end.is_none_or(|en| s.start_unix_nanos <= en)
            })
        });
        result_body(t.into_iter().collect(), max_spans)
    }))
}

/// `GET /api/v3/traces?query.…`
pub(crate) async fn find_traces(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let query = match parse_find(&p, state.cfg.max_limit, state.cfg.max_lookback) {
        Ok(q) => q,
        Err(e) => return error(e.into()),
    };
    let max_spans = state.cfg.max_spans_per_trace;
    respond(
        blocking(&state, move |s| s.find_traces(&query))
            .await
            .and_then(|ts| result_body(ts, max_spans)),
    )
}

/// One trace summary, in api_v3's `TraceSummary` JSON (protojson: zero values omitted, 64-bit
/// integers as strings).
pub(crate) fn summary_json(trace: &Trace) -> Json {
    let mut fields: Vec<(&str, Json)> =
        vec![("traceId", Json::Str(trace.trace_id.to_hex().to_string()))];
    if let Some(root) = trace.root() {
        if !root.service().is_empty() {
            fields.push(("rootServiceName", Json::str(root.service())));
        }
        if !root.name.is_empty() {
            fields.push(("rootOperationName", Json::str(root.name.as_str())));
        }
    }
    let start = trace.start_unix_nanos();
    let end = trace
        .spans
        .iter()
        .map(|s| s.end_unix_nanos())
        .max()
        .unwrap_or(0);
    if start != 0 {
        fields.push(("minStartTimeUnixNano", Json::Str(start.to_string())));
    }
    if end != 0 {
        fields.push(("maxEndTimeUnixNano", Json::Str(end.to_string())));
    }
    let ids: std::collections::HashSet<_> = trace.spans.iter().map(|s| s.span_id).collect();
    let errors = trace.spans.iter().filter(|s| s.is_error()).count();
    let orphans = trace
        .spans
        .iter()
        .filter(|s| s.parent_span_id.is_some_and(|p| !ids.contains(&p)))
        .count();
    for (name, n) in [
        ("spanCount", trace.spans.len()),
        ("errorSpanCount", errors),
        ("orphanSpanCount", orphans),
    ] {
        if n != 0 {
            fields.push((name, Json::UInt(n as u64)));
        }
    }
    let mut services: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &trace.spans {
        let e = services.entry(s.service()).or_default();
        e.0 += 1;
        e.1 += usize::from(s.is_error());
    }
    if !services.is_empty() {
        let items = services
            .into_iter()
            .map(|(name, (spans, errors))| {
                let mut f = vec![
                    ("name", Json::str(name)),
                    ("spanCount", Json::UInt(spans as u64)),
                ];
                if errors != 0 {
                    f.push(("errorSpanCount", Json::UInt(errors as u64)));
                }
                Json::obj(f)
            })
            .collect();
        fields.push(("services", Json::Arr(items)));
    }
    Json::obj(fields)
}

/// `GET /api/v3/trace-summaries?query.…`: one summary per matching trace, newest first.
pub(crate) async fn trace_summaries(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let query = match parse_find(&p, state.cfg.max_limit, state.cfg.max_lookback) {
        Ok(q) => q,
        Err(e) => return error(e.into()),
    };
    respond(
        blocking(&state, move |s| s.find_traces(&query))
            .await
            .map(|ts| {
                let items = ts
                    .into_iter()
                    .filter(|t| !t.spans.is_empty())
                    .map(|mut t| {
                        spoor_core::skew::adjust_clock_skew(&mut t);
                        summary_json(&t)
                    })
                    .collect();
                repeated("summaries", items)
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<TraceQuery, String> {
        parse_find(&Params::parse(Some(q)), 1500, None).map_err(|e| e.to_string())
    }

    const WINDOW: &str =
        "query.start_time_min=2026-11-25T09:00:00Z&query.start_time_max=2026-11-25T10:00:00Z";

    #[test]
    fn find_parameters() {
        let q = parse(&format!(
            "{WINDOW}&query.service_name=a&query.operation_name=op&query.attributes=%7B%22k%22%3A%22v%22%7D&query.duration_min=1s&query.duration_max=2.5s&query.search_depth=5"
        ))
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("a"));
        assert_eq!(q.operation.as_deref(), Some("op"));
        assert_eq!(q.tags, vec![("k".to_string(), "v".to_string())]);
        assert_eq!(
            (q.duration_min_nanos, q.duration_max_nanos),
            (Some(1_000_000_000), Some(2_500_000_000))
        );
        assert_eq!(q.limit, 5);
        assert_eq!(q.start_max_nanos - q.start_min_nanos, 3_600_000_000_000);
        let camel = parse("query.startTimeMin=2026-11-25T09:00:00Z&query.startTimeMax=2026-11-25T10:00:00Z&query.serviceName=b").unwrap();
        assert_eq!(
            (camel.service.as_deref(), camel.limit),
            (Some("b"), DEFAULT_SEARCH_DEPTH)
        );
    }

    #[test]
    fn max_lookback_and_limit_cap_a_search() {
        let p = Params::parse(Some(&format!("{WINDOW}&query.search_depth=900")));
        let q = parse_find(&p, 50, Some(std::time::Duration::from_secs(600))).unwrap();
        assert_eq!(q.limit, 50);
        assert_eq!(q.start_max_nanos - q.start_min_nanos, 600_000_000_000);
        let q = parse_find(&p, 1500, Some(std::time::Duration::from_secs(7200))).unwrap();
        assert_eq!(q.start_max_nanos - q.start_min_nanos, 3_600_000_000_000);
    }

    #[test]
    fn find_errors_name_the_parameter() {
        let cases: Vec<(String, &str)> = vec![
            ("query.service_name=a".into(), "query.startTimeMin and query.startTimeMax are required"),
            (
                "query.start_time_min=yesterday&query.start_time_max=2026-11-25T10:00:00Z".into(),
                r#"malformed parameter query.start_time_min: parsing time "yesterday": not an RFC 3339 time"#,
            ),
            (
                "query.start_time_min=2026-11-25T10:00:00Z&query.start_time_max=2026-11-25T09:00:00Z".into(),
                "query.startTimeMin must be before query.startTimeMax",
            ),
            (format!("{WINDOW}&query.duration_min=1"), r#"malformed parameter query.duration_min: time: missing unit in duration "1""#),
            (format!("{WINDOW}&query.search_depth=x"), r#"malformed parameter query.search_depth: strconv.Atoi: parsing "x": invalid syntax"#),
        ];
        for (q, want) in cases {
            assert_eq!(parse(&q).unwrap_err(), want, "{q}");
        }
        let err = parse(&format!("{WINDOW}&query.attributes=nope")).unwrap_err();
        assert!(
            err.starts_with("malformed parameter query.attributes: "),
            "{err}"
        );
    }
}
