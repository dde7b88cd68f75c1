//! Jaeger's v1 query API (`/api/…`): the structured-response envelope
//! `{"data":…,"total":N,"limit":0,"offset":0,"errors":…}` around the UI's trace JSON.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use spoor_core::query::TraceQuery;
use spoor_core::{SpanKind, Trace, TraceId};

use crate::jaeger::{trace_id_str, trace_json};
use crate::json::Json;
use crate::params::{self, go_parse_duration, go_parse_i32, go_parse_i64, ParamError, Params};
use crate::{
    blocking, error_response, json_response, now_nanos, prepare_trace, ApiError, AppState,
};

/// Jaeger's default number of traces when a search gives no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Jaeger's default dependency lookback: 24h.
const DEFAULT_DEPENDENCY_LOOKBACK_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// Jaeger's `structuredResponse`.
pub(crate) fn envelope(data: Json, total: usize, errors: Json) -> String {
    Json::obj([
        ("data", data),
        ("total", Json::UInt(total as u64)),
        ("limit", Json::Int(0)),
        ("offset", Json::Int(0)),
        ("errors", errors),
    ])
    .render()
}

/// The one place a v1 error becomes a response: `{"data":null,…,"errors":[{"code","msg"}]}`.
pub(crate) fn error(err: ApiError) -> Response {
    let status = err.status();
    let body = envelope(
        Json::Null,
        0,
        Json::Arr(vec![Json::obj([
            ("code", Json::UInt(u64::from(status.as_u16()))),
            ("msg", Json::Str(err.to_string())),
        ])]),
    );
    error_response(status, body)
}

/// [`respond`] for a body rendered in pieces (see [`traces_body`]).
fn respond_chunks(r: Result<Vec<String>, ApiError>) -> Response {
    match r {
        Ok(chunks) => crate::json_response_chunks(chunks),
        Err(e) => error(e),
    }
}

fn respond(r: Result<String, ApiError>) -> Response {
    match r {
        Ok(body) => json_response(body),
        Err(e) => error(e),
    }
}

/// `GET /api/services`
pub(crate) async fn services(State(state): State<AppState>) -> Response {
    respond(blocking(&state, |s| s.services()).await.map(|svcs| {
        let n = svcs.len();
        envelope(Json::strs(svcs), n, Json::Null)
    }))
}

/// `GET /api/services/{service}/operations`: unique operation names of any kind.
pub(crate) async fn service_operations(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Response {
    // Jaeger unescapes the path value once more (`url.QueryUnescape`).
    let service = params::percent_decode(&service);
    respond(
        blocking(&state, move |s| s.operations(&service, None))
            .await
            .map(|ops| {
                let mut names: Vec<String> = ops.into_iter().map(|o| o.name).collect();
                names.sort();
                names.dedup();
                let n = names.len();
                // Jaeger returns a nil slice, hence `null`, when there are none.
                envelope(
                    Json::nil_if_empty(names.into_iter().map(Json::Str).collect()),
                    n,
                    Json::Null,
                )
            }),
    )
}

/// Parses Jaeger's `spanKind` parameter (`""` for all kinds).
fn span_kind_param(p: &Params, name: &'static str) -> Result<Option<SpanKind>, ParamError> {
    match p.get(name) {
        None => Ok(None),
        Some(k) => match SpanKind::from_jaeger_str(k) {
            Some(kind) => Ok(Some(kind)),
            None => Err(ParamError::Unparsable {
                param: name,
                detail: format!("unsupported span kind: '{k}'"),
            }),
        },
    }
}

/// `GET /api/operations?service=&spanKind=`
pub(crate) async fn operations(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(service) = p.get("service").map(str::to_string) else {
        return error(ParamError::ServiceRequired.into());
    };
    let kind = match span_kind_param(&p, "spanKind") {
        Ok(k) => k,
        Err(e) => return error(e.into()),
    };
    respond(
        blocking(&state, move |s| s.operations(&service, kind))
            .await
            .map(|ops| {
                let n = ops.len();
                let data = ops
                    .into_iter()
                    .map(|o| {
                        Json::obj([
                            ("name", Json::Str(o.name)),
                            ("spanKind", Json::str(o.span_kind.as_jaeger_str())),
                        ])
                    })
                    .collect();
                envelope(Json::Arr(data), n, Json::Null)
            }),
    )
}

/// What a v1 search asks for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Search {
    /// `traceID=…` given: fetch those traces, ignore every other criterion.
    Ids(Vec<TraceId>),
    /// A search by criteria.
    Query(TraceQuery),
}

pub(crate) fn unparsable(param: &'static str) -> impl Fn(String) -> ParamError {
    move |detail| ParamError::Unparsable { param, detail }
}

/// A time parameter counted in `unit_nanos` since the epoch (negative times clamp to 0).
pub(crate) fn time_param(
    p: &Params,
    name: &'static str,
    unit_nanos: u64,
) -> Result<Option<u64>, ParamError> {
    p.get(name)
        .map(|v| {
            go_parse_i64(v)
                .map(|t| (t.max(0) as u64).saturating_mul(unit_nanos))
                .map_err(unparsable(name))
        })
        .transpose()
}

fn duration_param(p: &Params, name: &'static str) -> Result<Option<u64>, ParamError> {
    p.get(name)
        .map(|v| {
            go_parse_duration(v)
                .map(|d| d.max(0) as u64)
                .map_err(unparsable(name))
        })
        .transpose()
}

/// Parses `/api/traces` parameters, in Jaeger's order, so the first bad one is reported.
pub(crate) fn parse_search(
    p: &Params,
    cfg: &crate::QueryConfig,
    now: u64,
) -> Result<Search, ParamError> {
    let start = time_param(p, "start", 1_000)?;
    let end = time_param(p, "end", 1_000)?.unwrap_or(now);
    let tags = params::parse_tags(&p.all("tag"), &p.all("tags"))?;
    let limit = match p.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match go_parse_i32(v).map_err(unparsable("limit"))? {
            n if n <= 0 => DEFAULT_LIMIT,
            n => n as usize,
        },
    };
    let min = duration_param(p, "minDuration")?;
    let max = duration_param(p, "maxDuration")?;
    let mut ids = Vec::new();
    for id in p.all("traceID") {
        ids.push(params::parse_trace_id(id).map_err(ParamError::TraceIdParam)?);
    }
    let lookback = match p.get("lookback") {
        Some(l) => params::parse_lookback(l)?,
        None => None,
    };
    if !ids.is_empty() {
        return Ok(Search::Ids(ids));
    }
    let service = p.get("service").ok_or(ParamError::ServiceRequired)?;
    if let (Some(min), Some(max)) = (min, max) {
        if min != 0 && max != 0 && max < min {
            return Err(ParamError::MaxBelowMin);
        }
    }
    let default_lookback = u64::try_from(cfg.default_lookback.as_nanos()).unwrap_or(u64::MAX);
    let mut start =
        start.unwrap_or_else(|| end.saturating_sub(lookback.unwrap_or(default_lookback)));
    if let Some(max) = cfg.max_lookback {
        start = start.max(end.saturating_sub(u64::try_from(max.as_nanos()).unwrap_or(u64::MAX)));
    }
    Ok(Search::Query(TraceQuery {
        service: Some(service.to_string()),
        operation: p.get("operation").map(str::to_string),
        span_kind: None,
        tags,
        start_min_nanos: start,
        start_max_nanos: end,
        duration_min_nanos: min.filter(|d| *d > 0),
        duration_max_nanos: max.filter(|d| *d > 0),
        limit: limit.min(cfg.max_limit.max(1)),
    }))
}

/// Spans in a response from which its traces are prepared and rendered on several threads.
const PARALLEL_MIN_SPANS: usize = 4_000;
/// Most threads one response is rendered on.
const MAX_RENDER_THREADS: usize = 4;

/// The `/api/traces` envelope around `traces`, each prepared for display (clock skew, order,
/// span cap). Rendering is most of a large search's time, so it runs here on the blocking pool,
/// and large responses are split into contiguous chunks of traces rendered on scoped threads;
/// the pieces, in order, are the body (sent one after the other, never joined).
fn traces_body(traces: Vec<Trace>, max_spans: usize, errors: &Json) -> Vec<String> {
    let total_spans: usize = traces.iter().map(|t| t.spans.len()).sum();
    let threads = if total_spans >= PARALLEL_MIN_SPANS {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_RENDER_THREADS)
    } else {
        1
    };
    traces_body_on(traces, max_spans, errors, threads)
}

/// [`traces_body`] on at most `threads` threads (this one included).
fn traces_body_on(
    mut traces: Vec<Trace>,
    max_spans: usize,
    errors: &Json,
    threads: usize,
) -> Vec<String> {
    traces.retain(|t| !t.spans.is_empty());
    let hints: Vec<usize> = traces
        .iter()
        .map(|t| trace_json(t, &[]).size_hint())
        .collect();
    let threads = threads.min(traces.len());
    let first_hint = if threads <= 1 {
        hints.iter().sum::<usize>()
    } else {
        0
    };
    let mut out = crate::pool::take(first_hint + traces.len() + 128);
    // Must match `envelope(data, 0, errors)`.
    out.push_str("{\"data\":[");
    let mut pieces = Vec::new();
    if threads <= 1 {
        render_traces(traces, max_spans, &mut out);
    } else {
        let mut chunks = split_by_size(traces, &hints, threads).into_iter();
        let first = chunks.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let rest: Vec<_> = chunks
                .map(|(chunk, hint)| {
                    scope.spawn(move || {
                        let mut buf = crate::pool::take(hint + 1);
                        buf.push(',');
                        render_traces(chunk, max_spans, &mut buf);
                        buf
                    })
                })
                .collect();
            out.reserve(first.1);
            render_traces(first.0, max_spans, &mut out);
            pieces.push(std::mem::take(&mut out));
            for handle in rest {
                match handle.join() {
                    Ok(buf) => pieces.push(buf),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    // Pieces after the first start with the comma that separates them from the one before.
    let mut tail = String::with_capacity(128);
    tail.push_str("],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":");
    tail.push_str(&errors.render());
    tail.push('}');
    if pieces.is_empty() {
        out.push_str(&tail);
        return vec![out];
    }
    pieces.push(tail);
    pieces
}

/// Prepares and appends the traces, comma-separated; drops each once written.
fn render_traces(traces: Vec<Trace>, max_spans: usize, out: &mut String) {
    for (i, mut t) in traces.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let warnings = prepare_trace(&mut t, max_spans);
        trace_json(&t, &warnings).write(out);
    }
}

/// Splits the traces, in order, into at most `n` non-empty chunks of about equal size; each
/// with the sum of its size hints.
fn split_by_size(traces: Vec<Trace>, hints: &[usize], n: usize) -> Vec<(Vec<Trace>, usize)> {
    let total: usize = hints.iter().sum();
    let target = total.div_ceil(n.max(1)).max(1);
    let mut chunks: Vec<(Vec<Trace>, usize)> = Vec::with_capacity(n);
    let mut current: (Vec<Trace>, usize) = (Vec::new(), 0);
    for (t, hint) in traces.into_iter().zip(hints) {
        if current.1 >= target && chunks.len() + 1 < n {
            chunks.push(std::mem::take(&mut current));
        }
        current.0.push(t);
        current.1 += hint;
    }
    if !current.0.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// `GET /api/traces?service=…` or `GET /api/traces?traceID=…&traceID=…`
pub(crate) async fn search(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let search = match parse_search(&p, &state.cfg, now_nanos()) {
        Ok(s) => s,
        Err(e) => return error(e.into()),
    };
    let max_spans = state.cfg.max_spans_per_trace;
    respond_chunks(match search {
        Search::Query(query) => {
            blocking(&state, move |s| {
                let traces = s.find_traces(&query)?;
                Ok(traces_body(traces, max_spans, &Json::Null))
            })
            .await
        }
        Search::Ids(ids) => {
            blocking(&state, move |s| {
                let traces = s.get_traces(&ids)?;
                let missing = ids
                    .iter()
                    .filter(|id| {
                        !traces
                            .iter()
                            .any(|t| t.trace_id == **id && !t.spans.is_empty())
                    })
                    .map(|id| {
                        Json::obj([
                            ("msg", Json::str("trace not found")),
                            ("traceID", Json::Str(trace_id_str(*id))),
                        ])
                    })
                    .collect();
                Ok(traces_body(traces, max_spans, &Json::nil_if_empty(missing)))
            })
            .await
        }
    })
}

/// `GET /api/traces/{traceID}`
pub(crate) async fn get_trace(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let id = match params::parse_trace_id(&id) {
        Ok(id) => id,
        Err(e) => return error(ParamError::TraceIdPath(e).into()),
    };
    let max_spans = state.cfg.max_spans_per_trace;
    let found = blocking(&state, move |s| {
        Ok(match s.get_trace(id)? {
            Some(t) if !t.spans.is_empty() => Some(traces_body(vec![t], max_spans, &Json::Null)),
            _ => None,
        })
    })
    .await;
    respond_chunks(found.and_then(|body| body.ok_or(ApiError::NotFound)))
}

/// `GET /api/dependencies?endTs=&lookback=` (milliseconds; optional `service` filter).
pub(crate) async fn dependencies(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let parsed = (|| -> Result<(u64, u64), ParamError> {
        let end = time_param(&p, "endTs", 1_000_000)?.unwrap_or_else(now_nanos);
        let lookback = match p.get("lookback") {
            None => DEFAULT_DEPENDENCY_LOOKBACK_NANOS,
            Some(v) => (go_parse_i64(v).map_err(unparsable("lookback"))?.max(0) as u64)
                .saturating_mul(1_000_000),
        };
        Ok((end, lookback))
    })();
    let (end, lookback) = match parsed {
        Ok(v) => v,
        Err(e) => return error(e.into()),
    };
    let service = p.get("service").map(str::to_string);
    respond(
        blocking(&state, move |s| s.dependencies(end, lookback))
            .await
            .map(|links| {
                let data = links
                    .into_iter()
                    .filter(|l| {
                        service
                            .as_ref()
                            .is_none_or(|s| &l.parent == s || &l.child == s)
                    })
                    .map(|l| {
                        Json::obj([
                            ("parent", Json::Str(l.parent)),
                            ("child", Json::Str(l.child)),
                            ("callCount", Json::UInt(l.call_count)),
                        ])
                    })
                    .collect();
                envelope(Json::Arr(data), 0, Json::Null)
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryConfig;
    use spoor_core::{AnyValue, KeyValue, Resource, Span, SpanId};
    use std::sync::Arc;
    use std::time::Duration;

    const NOW: u64 = 1_795_600_800_000_000_000; // 2026-11-25T10:00:00Z
    const H: u64 = 3_600_000_000_000;

    fn parse(q: &str) -> Result<Search, String> {
        parse_search(&Params::parse(Some(q)), &QueryConfig::default(), NOW)
            .map_err(|e| e.to_string())
    }

    fn query(q: &str) -> TraceQuery {
        match parse(q) {
            Ok(Search::Query(t)) => t,
            other => panic!("{q}: {other:?}"),
        }
    }

    fn trace(id: u128, spans: usize) -> Trace {
        let resources: Vec<Arc<Resource>> = ["a", "b", "c"]
            .iter()
            .map(|s| {
                Arc::new(Resource {
                    service_name: (*s).into(),
                    attributes: vec![KeyValue::string("host.name", format!("{s}-1"))],
                    dropped_attributes_count: 0,
                })
            })
            .collect();
        let spans = (0..spans as u64)
            .map(|i| Span {
                trace_id: TraceId(id),
                span_id: SpanId(i + 1),
                parent_span_id: (i > 0).then(|| SpanId(i / 2 + 1)),
                name: format!("op <{}>", i % 7),
                // Out of order, so that preparing the trace (sorting) shows.
                start_unix_nanos: NOW + (i * 7919 % 1000) * 1_000_000,
                duration_nanos: 1_000_000,
                attributes: vec![
                    KeyValue::string("k", "v\"w"),
                    KeyValue::new("n", AnyValue::Int(i as i64)),
                ],
                resource: Arc::clone(&resources[i as usize % 3]),
                ..Span::default()
            })
            .collect();
        Trace {
            trace_id: TraceId(id),
            spans,
        }
    }

    /// The `data` array of a body, each trace as its JSON text.
    fn data(body: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).expect("valid JSON");
        v["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn traces_body_is_the_envelope() {
        let missing = Json::Arr(vec![Json::obj([("msg", Json::str("trace not found"))])]);
        for errors in [Json::Null, missing] {
            assert_eq!(
                traces_body(Vec::new(), 0, &errors).concat(),
                envelope(Json::Arr(Vec::new()), 0, errors.clone())
            );
        }
        let body = traces_body(vec![trace(1, 3), Trace::default()], 0, &Json::Null).concat();
        assert!(body.starts_with(r#"{"data":[{"traceID":"0000000000000001","spans":[{"#));
        assert!(
            body.ends_with(r#""warnings":null}],"total":0,"limit":0,"offset":0,"errors":null}"#)
        );
        assert_eq!(data(&body).len(), 1, "empty traces are left out");
    }

    #[test]
    fn parallel_rendering_keeps_order_and_bytes() {
        let traces: Vec<Trace> = [40, 3, 25, 1, 60, 2, 9]
            .iter()
            .enumerate()
            .map(|(i, n)| trace(i as u128 + 1, *n))
            .collect();
        let alone: Vec<String> = traces
            .iter()
            .map(|t| traces_body_on(vec![t.clone()], 30, &Json::Null, 1).concat())
            .collect();
        let one_thread = traces_body_on(traces.clone(), 30, &Json::Null, 1).concat();
        for threads in [2, 3, 4, 7, 16] {
            let body = traces_body_on(traces.clone(), 30, &Json::Null, threads).concat();
            assert_eq!(body, one_thread, "{threads} threads");
        }
        let concatenated: Vec<String> = alone.iter().flat_map(|b| data(b)).collect();
        assert_eq!(data(&one_thread), concatenated);
        // Prepared: sorted by start time, capped at 30 spans with the warning.
        assert!(
            one_thread.contains("trace has 60 spans; only the first 30 by start time are shown")
        );
    }

    #[test]
    fn chunks_are_contiguous_and_balanced() {
        let traces: Vec<Trace> = (1..=6).map(|i| trace(i, 1)).collect();
        let hints = [10, 10, 10, 10, 10, 50];
        let chunks = split_by_size(traces, &hints, 2);
        let ids: Vec<Vec<u128>> = chunks
            .iter()
            .map(|(c, _)| c.iter().map(|t| t.trace_id.0).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2, 3, 4, 5], vec![6]]);
        assert_eq!(chunks.iter().map(|c| c.1).collect::<Vec<_>>(), vec![50, 50]);
        let three = split_by_size((1..=6).map(|i| trace(i, 1)).collect(), &[1; 6], 3);
        assert_eq!(
            three.iter().map(|c| c.0.len()).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        let one: Vec<Trace> = vec![trace(9, 1)];
        assert_eq!(split_by_size(one, &[5], 4).len(), 1);
    }

    #[test]
    fn search_windows() {
        // (query string, start_min, start_max)
        let cases: &[(&str, u64, u64)] = &[
            ("service=a", NOW - H, NOW),
            ("service=a&lookback=2d", NOW - 48 * H, NOW),
            ("service=a&lookback=custom", NOW - H, NOW),
            ("service=a&start=1000&end=5000", 1_000_000, 5_000_000),
            ("service=a&start=1000&lookback=1h", 1_000_000, NOW),
            ("service=a&end=7200000000", H, 2 * H),
        ];
        for (q, min, max) in cases {
            let t = query(q);
            assert_eq!((t.start_min_nanos, t.start_max_nanos), (*min, *max), "{q}");
        }
        let cfg = QueryConfig {
            max_lookback: Some(Duration::from_secs(7200)),
            ..QueryConfig::default()
        };
        match parse_search(&Params::parse(Some("service=a&lookback=7d")), &cfg, NOW) {
            Ok(Search::Query(t)) => assert_eq!(t.start_min_nanos, NOW - 2 * H),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_criteria() {
        let t = query("service=a&operation=GET%20%2F&minDuration=1.2s&maxDuration=5s&limit=7&tag=http.method:GET&tags=%7B%22x%22%3A%22y%22%7D");
        assert_eq!(t.service.as_deref(), Some("a"));
        assert_eq!(t.operation.as_deref(), Some("GET /"));
        assert_eq!(t.duration_min_nanos, Some(1_200_000_000));
        assert_eq!(t.duration_max_nanos, Some(5_000_000_000));
        assert_eq!(t.limit, 7);
        assert_eq!(
            t.tags,
            vec![
                ("http.method".into(), "GET".into()),
                ("x".into(), "y".into())
            ]
        );
        assert_eq!(query("service=a").limit, DEFAULT_LIMIT);
        assert_eq!(query("service=a&limit=99999").limit, 1500);
        assert_eq!(
            parse("traceID=abc&traceID=00000000000000010000000000000002"),
            Ok(Search::Ids(vec![
                TraceId(0xabc),
                TraceId::from_high_low(1, 2)
            ]))
        );
    }

    #[test]
    fn search_errors_name_the_parameter() {
        let cases: &[(&str, &str)] = &[
            ("", "parameter 'service' is required"),
            ("operation=x", "parameter 'service' is required"),
            (
                "service=a&start=yesterday",
                r#"unable to parse param 'start': strconv.ParseInt: parsing "yesterday": invalid syntax"#,
            ),
            (
                "service=a&end=1.5",
                r#"unable to parse param 'end': strconv.ParseInt: parsing "1.5": invalid syntax"#,
            ),
            (
                "service=a&limit=ten",
                r#"unable to parse param 'limit': strconv.ParseInt: parsing "ten": invalid syntax"#,
            ),
            (
                "service=a&minDuration=5",
                r#"unable to parse param 'minDuration': time: missing unit in duration "5""#,
            ),
            (
                "service=a&maxDuration=1x",
                r#"unable to parse param 'maxDuration': time: unknown unit "x" in duration "1x""#,
            ),
            (
                "service=a&minDuration=2s&maxDuration=1s",
                "'maxDuration' should be greater than 'minDuration'",
            ),
            (
                "service=a&tag=novalue",
                "malformed 'tag' parameter, expecting key:value, received: novalue",
            ),
            (
                "traceID=xyz",
                r#"cannot parse traceID param: strconv.ParseUint: parsing "xyz": invalid syntax"#,
            ),
            (
                "service=a&lookback=soon",
                r#"unable to parse param 'lookback': invalid lookback "soon", expecting a duration like 1h or 2d"#,
            ),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q).unwrap_err(), *want, "{q}");
        }
        let err = parse("service=a&tags=%7Bbad").unwrap_err();
        assert!(
            err.starts_with("malformed 'tags' parameter, cannot unmarshal JSON: "),
            "{err}"
        );
    }
}
