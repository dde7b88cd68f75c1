//! Jaeger's trace JSON (what the query API's `/api/traces` answers, and what Jaeger UI exports)
//! read back into Spoor's span model, for the browser module and the daemon's CLI.
//!
//! Accepted shapes: `{"data": [trace, …]}`, a bare trace object `{"traceID", "spans",
//! "processes"}`, and an array of trace objects. A span's fields are those of Jaeger's
//! `uimodel`: `traceID`, `spanID`, `operationName`, `references`, `startTime` and `duration`
//! (microseconds), `tags`, `logs`, `processID` (or an inline `process`), `warnings`, `flags`.
//!
//! Each span is turned into an `api_v2` span and mapped by [`convert::proto_batch`], so tags
//! come back as fields exactly as the OpenTelemetry translator maps them forward (`span.kind`,
//! `error` / `otel.status_code` / `otel.status_description`, `w3c.tracestate`,
//! `otel.scope.*`, a log's `event` field, `CHILD_OF` / `FOLLOWS_FROM` references), which undoes
//! what Spoor's Jaeger writer (`spoor-query`) adds.
//!
//! A malformed span is rejected with a problem naming its JSON path
//! (`data[0].spans[3].spanID: …`); the other spans are kept. Only a body that is not JSON or
//! not one of the shapes above fails as a whole.
//!
//! [`decode_json`] reads a body in one pass into typed structs that borrow its strings (no
//! `serde_json::Value` tree: a 100,000-span file is ~44 MB) and keeps each span's raw text. A
//! span the typed reader cannot take exactly as the `Value` reader would (a wrong type, a bad
//! id, a missing field, an unusual tag value) is re-read from its text by the `Value` reader,
//! so its problem names the same path with the same words; anything off above the spans (a
//! bad shape, a duplicate key, JSON the strict path refuses) re-reads the whole body the
//! `Value` way. Both readers end in the same [`convert::proto_batch`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use spoor_core::{Decoded, SpanId, TraceId};

use crate::{convert, proto};

/// Why a body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonInError {
    /// The body is not JSON.
    #[error("malformed json at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The body is JSON but not Jaeger trace JSON.
    #[error("{path}: {message}")]
    Shape {
        /// JSON path of the offending value (`$` for the whole body).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Decodes a Jaeger JSON body into spans (see the module doc for the accepted shapes).
pub fn decode_json(body: &[u8]) -> Result<Decoded, JsonInError> {
    // The typed fast path skips fields it does not know without checking their UTF-8, so a
    // body that is not text would be accepted there and refused by the `Value` reader (found
    // by fuzzing); only text goes the fast way.
    if std::str::from_utf8(body).is_ok() {
        if let Some(decoded) = fast::decode(body) {
            return Ok(decoded);
        }
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| JsonInError::Json {
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or("")
            .to_string(),
    })?;
    decode_value(&v)
}

/// Decodes an already parsed Jaeger JSON document.
pub fn decode_value(v: &Value) -> Result<Decoded, JsonInError> {
    let mut out = Decoded::default();
    match v {
        Value::Object(o) if o.contains_key("data") => match &o["data"] {
            Value::Null => {}
            Value::Array(traces) => {
                for (i, t) in traces.iter().enumerate() {
                    read_trace(t, &format!("data[{i}]"), &mut out)?;
                }
            }
            other => {
                return Err(shape(
                    "data",
                    format!("expected an array, got {}", kind(other)),
                ))
            }
        },
        Value::Object(o) if o.contains_key("spans") => read_trace(v, "", &mut out)?,
        Value::Array(traces) => {
            for (i, t) in traces.iter().enumerate() {
                read_trace(t, &format!("[{i}]"), &mut out)?;
            }
        }
        Value::Object(_) => {
            return Err(shape(
                "$",
                "expected an object with \"data\" (a query API response) or \"spans\" (a trace)"
                    .to_string(),
            ))
        }
        other => {
            return Err(shape(
                "$",
                format!(
                    "expected an object or an array of traces, got {}",
                    kind(other)
                ),
            ))
        }
    }
    Ok(out)
}

fn shape(path: &str, message: String) -> JsonInError {
    JsonInError::Shape {
        path: path.to_string(),
        message,
    }
}

/// The JSON type of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `prefix.key`, or `key` at the root.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A problem with a value: its path and what is wrong.
type Problem = (String, String);

fn problem(path: String, message: impl Into<String>) -> Problem {
    (path, message.into())
}

/// Reads one trace object, appending its spans (and its rejected spans' problems) to `out`.
/// Fails only when the trace is not an object or its `spans` is not an array.
fn read_trace(t: &Value, path: &str, out: &mut Decoded) -> Result<(), JsonInError> {
    let Value::Object(t) = t else {
        return Err(shape(
            if path.is_empty() { "$" } else { path },
            format!("expected a trace object, got {}", kind(t)),
        ));
    };
    let trace_id = match t.get("traceID") {
        None | Some(Value::Null) => None,
        Some(v) => match hex_trace_id(v) {
            Ok(id) => Some(id),
            Err(m) => return Err(shape(&join(path, "traceID"), m)),
        },
    };
    let spans_path = join(path, "spans");
    let spans = match t.get("spans") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(s)) => s,
        Some(other) => {
            return Err(shape(
                &spans_path,
                format!("expected an array, got {}", kind(other)),
            ))
        }
    };

    // Processes: id -> (process, its problem if it could not be read).
    let mut processes: Processes = HashMap::new();
    match t.get("processes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ps)) => {
            for (id, p) in ps {
                let p_path = join(&join(path, "processes"), id);
                processes.insert(id.clone(), read_process(p, &p_path));
            }
        }
        Some(other) => {
            return Err(shape(
                &join(path, "processes"),
                format!("expected an object, got {}", kind(other)),
            ))
        }
    }

    // Spans grouped by process (one api_v2 batch each, so they share one resource), keeping
    // their positions to restore the input order afterwards.
    let mut groups: Groups = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let s_path = format!("{spans_path}[{i}]");
        match read_span(s, &s_path, trace_id, &processes) {
            Ok((key, process, span)) => {
                let g = *group_of.entry(key).or_insert_with(|| {
                    groups.push((process, Vec::new(), Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push(i);
                groups[g].2.push(span);
            }
            Err((p, m)) => {
                out.rejected += 1;
                out.problems.push(format!("{p}: {m}"));
            }
        }
    }
    emit(groups, spans.len(), &spans_path, out);
    Ok(())
}

/// Spans grouped by process: the process, the spans' positions in the trace, the spans.
type Groups = Vec<(proto::Process, Vec<usize>, Vec<proto::Span>)>;

/// A trace's processes by id, each read or with the problem that kept it from being read.
type Processes = HashMap<String, Result<proto::Process, Problem>>;

/// Converts each group as one api_v2 batch (so its spans share one resource) and appends the
/// spans to `out` in input order (`count` spans were read, some of them maybe rejected).
fn emit(groups: Groups, count: usize, spans_path: &str, out: &mut Decoded) {
    let mut slots: Vec<Option<spoor_core::Span>> = vec![None; count];
    for (process, positions, group) in groups {
        let decoded = convert::proto_batch(&proto::Batch {
            spans: group,
            process: Some(process),
        });
        out.rejected += decoded.rejected;
        out.problems.extend(
            decoded
                .problems
                .into_iter()
                .map(|p| format!("{spans_path}: {p}")),
        );
        if decoded.rejected == 0 {
            for (pos, span) in positions.into_iter().zip(decoded.spans) {
                slots[pos] = Some(span);
            }
        } else {
            out.spans.extend(decoded.spans);
        }
    }
    out.spans.extend(slots.into_iter().flatten());
}

fn read_process(p: &Value, path: &str) -> Result<proto::Process, Problem> {
    let Value::Object(po) = p else {
        return Err(problem(
            path.to_string(),
            format!("expected a process object, got {}", kind(p)),
        ));
    };
    let service_name = match po.get("serviceName") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(problem(
                join(path, "serviceName"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    Ok(proto::Process {
        service_name,
        tags: read_tags(p, "tags", path)?,
    })
}

/// Reads one span: its process key (to group by), its process and the api_v2 span.
fn read_span(
    s: &Value,
    path: &str,
    trace_id: Option<TraceId>,
    processes: &Processes,
) -> Result<(String, proto::Process, proto::Span), Problem> {
    let Value::Object(o) = s else {
        return Err(problem(
            path.to_string(),
            format!("expected a span object, got {}", kind(s)),
        ));
    };
    let tid = match o.get("traceID") {
        None | Some(Value::Null) => trace_id.ok_or_else(|| {
            problem(
                join(path, "traceID"),
                "is missing and the trace has no traceID",
            )
        })?,
        Some(v) => hex_trace_id(v).map_err(|m| problem(join(path, "traceID"), m))?,
    };
    let span_id = match o.get("spanID") {
        None | Some(Value::Null) => return Err(problem(join(path, "spanID"), "is missing")),
        Some(v) => hex_span_id(v).map_err(|m| problem(join(path, "spanID"), m))?,
    };
    let operation_name = match o.get("operationName") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(problem(
                join(path, "operationName"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    let start_nanos = micros(o.get("startTime"), &join(path, "startTime"), true)?;
    let duration_nanos = micros(o.get("duration"), &join(path, "duration"), false)?;
    let flags = match o.get("flags") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|f| u32::try_from(f).ok())
            .ok_or_else(|| {
                problem(
                    join(path, "flags"),
                    format!("expected an unsigned 32-bit integer, got {v}"),
                )
            })?,
    };

    let mut references = Vec::new();
    let refs_path = join(path, "references");
    match o.get("references") {
        None | Some(Value::Null) => {}
        Some(Value::Array(refs)) => {
            for (j, r) in refs.iter().enumerate() {
                references.push(read_ref(r, &format!("{refs_path}[{j}]"), tid)?);
            }
        }
        Some(other) => {
            return Err(problem(
                refs_path,
                format!("expected an array, got {}", kind(other)),
            ))
        }
    }
    // Older exports carry `parentSpanID` instead of a CHILD_OF reference.
    if let Some(v) = o.get("parentSpanID").filter(|v| !v.is_null()) {
        let parent = hex_span_id(v).map_err(|m| problem(join(path, "parentSpanID"), m))?;
        let has_parent_ref = references
            .iter()
            .any(|r| r.ref_type == proto::SpanRefType::ChildOf as i32);
        if !parent.is_zero() && !has_parent_ref {
            references.insert(
                0,
                proto::SpanRef {
                    trace_id: tid.to_bytes().to_vec(),
                    span_id: parent.to_bytes().to_vec(),
                    ref_type: proto::SpanRefType::ChildOf as i32,
                },
            );
        }
    }

    let mut logs = Vec::new();
    let logs_path = join(path, "logs");
    match o.get("logs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ls)) => {
            for (j, l) in ls.iter().enumerate() {
                let l_path = format!("{logs_path}[{j}]");
                let Value::Object(lo) = l else {
                    return Err(problem(
                        l_path,
                        format!("expected a log object, got {}", kind(l)),
                    ));
                };
                let ts = micros(lo.get("timestamp"), &join(&l_path, "timestamp"), true)?;
                logs.push(proto::Log {
                    timestamp: Some(timestamp(ts)),
                    fields: read_tags(l, "fields", &l_path)?,
                });
            }
        }
        Some(other) => {
            return Err(problem(
                logs_path,
                format!("expected an array, got {}", kind(other)),
            ))
        }
    }

    let mut warnings = read_strings(o.get("warnings"), &join(path, "warnings"))?;
    let (key, process) = match (o.get("processID"), o.get("process")) {
        (_, Some(p)) if p.is_object() => {
            let process = read_process(p, &join(path, "process"))?;
            (
                format!("inline:{}", serde_json::to_string(p).unwrap_or_default()),
                process,
            )
        }
        (Some(Value::String(id)), _) => match processes.get(id.as_str()) {
            Some(Ok(p)) => (format!("id:{id}"), p.clone()),
            Some(Err((p, m))) => return Err(problem(p.clone(), m.clone())),
            None => {
                warnings.push(format!("unknown processID {id:?}"));
                (String::from("none"), proto::Process::default())
            }
        },
        (None | Some(Value::Null), _) => (String::from("none"), proto::Process::default()),
        (Some(other), _) => {
            return Err(problem(
                join(path, "processID"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };

    let span = proto::Span {
        trace_id: tid.to_bytes().to_vec(),
        span_id: span_id.to_bytes().to_vec(),
        operation_name,
        references,
        flags,
        start_time: Some(timestamp(start_nanos)),
        duration: Some(proto::Duration {
            seconds: (duration_nanos / 1_000_000_000) as i64,
            nanos: (duration_nanos % 1_000_000_000) as i32,
        }),
        tags: read_tags(s, "tags", path)?,
        logs,
        process: None,
        process_id: String::new(),
        warnings,
    };
    Ok((key, process, span))
}

fn read_ref(r: &Value, path: &str, span_trace: TraceId) -> Result<proto::SpanRef, Problem> {
    let Value::Object(o) = r else {
        return Err(problem(
            path.to_string(),
            format!("expected a reference object, got {}", kind(r)),
        ));
    };
    let ref_type = match o.get("refType") {
        None | Some(Value::Null) => proto::SpanRefType::ChildOf,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("CHILD_OF") => proto::SpanRefType::ChildOf,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("FOLLOWS_FROM") => {
            proto::SpanRefType::FollowsFrom
        }
        Some(other) => {
            return Err(problem(
                join(path, "refType"),
                format!("expected \"CHILD_OF\" or \"FOLLOWS_FROM\", got {other}"),
            ))
        }
    };
    let trace_id = match o.get("traceID") {
        None | Some(Value::Null) => span_trace,
        Some(v) => hex_trace_id(v).map_err(|m| problem(join(path, "traceID"), m))?,
    };
    let span_id = match o.get("spanID") {
        None | Some(Value::Null) => return Err(problem(join(path, "spanID"), "is missing")),
        Some(v) => hex_span_id(v).map_err(|m| problem(join(path, "spanID"), m))?,
    };
    Ok(proto::SpanRef {
        trace_id: trace_id.to_bytes().to_vec(),
        span_id: span_id.to_bytes().to_vec(),
        ref_type: ref_type as i32,
    })
}

fn timestamp(nanos: u64) -> proto::Timestamp {
    proto::Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

/// A microsecond count (integer or fractional) as nanoseconds; `required` fields must be
/// present.
fn micros(v: Option<&Value>, path: &str, required: bool) -> Result<u64, Problem> {
    let v = match v {
        None | Some(Value::Null) if required => {
            return Err(problem(path.to_string(), "is missing"))
        }
        None | Some(Value::Null) => return Ok(0),
        Some(v) => v,
    };
    if let Some(us) = v.as_u64() {
        return us.checked_mul(1000).ok_or_else(|| {
            problem(
                path.to_string(),
                format!("{us} microseconds is out of range"),
            )
        });
    }
    match v.as_f64() {
        Some(us) if us >= 0.0 && us * 1000.0 < u64::MAX as f64 => Ok((us * 1000.0).round() as u64),
        _ => Err(problem(
            path.to_string(),
            format!("expected a non-negative number of microseconds, got {v}"),
        )),
    }
}

fn hex_trace_id(v: &Value) -> Result<TraceId, String> {
    match v {
        Value::String(s) => TraceId::parse_hex(s)
            .map_err(|e| format!("expected 1 to 32 hex digits, got {s:?} ({e})")),
        other => Err(format!("expected a hex string, got {}", kind(other))),
    }
}

fn hex_span_id(v: &Value) -> Result<SpanId, String> {
    match v {
        Value::String(s) => SpanId::parse_hex(s)
            .map_err(|e| format!("expected 1 to 16 hex digits, got {s:?} ({e})")),
        other => Err(format!("expected a hex string, got {}", kind(other))),
    }
}

fn read_strings(v: Option<&Value>, path: &str) -> Result<Vec<String>, Problem> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Value::String(s) => Ok(s.clone()),
                other => Err(problem(
                    format!("{path}[{i}]"),
                    format!("expected a string, got {}", kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(problem(
            path.to_string(),
            format!("expected an array of strings, got {}", kind(other)),
        )),
    }
}

/// Reads the tag array `obj[field]` (absent or `null` is empty).
fn read_tags(obj: &Value, field: &str, path: &str) -> Result<Vec<proto::KeyValue>, Problem> {
    let tags_path = join(path, field);
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(tags)) => tags
            .iter()
            .enumerate()
            .map(|(i, t)| read_tag(t, &format!("{tags_path}[{i}]")))
            .collect(),
        Some(other) => Err(problem(
            tags_path,
            format!("expected an array, got {}", kind(other)),
        )),
    }
}

/// One `{"key", "type", "value"}` tag. The type is optional (then the JSON type decides);
/// `int64` values may be strings (Jaeger writes those beyond 2^53 so), `binary` is base64.
fn read_tag(t: &Value, path: &str) -> Result<proto::KeyValue, Problem> {
    let Value::Object(o) = t else {
        return Err(problem(
            path.to_string(),
            format!("expected a tag object, got {}", kind(t)),
        ));
    };
    let key = match o.get("key") {
        Some(Value::String(k)) => k.clone(),
        Some(other) => {
            return Err(problem(
                join(path, "key"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
        None => return Err(problem(join(path, "key"), "is missing")),
    };
    let value = o.get("value").unwrap_or(&Value::Null);
    let ty = match o.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(ty)) => Some(ty.to_ascii_lowercase()),
        Some(other) => {
            return Err(problem(
                join(path, "type"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    let mut kv = proto::KeyValue {
        key,
        ..Default::default()
    };
    let bad = |what: &str| problem(join(path, "value"), format!("expected {what}, got {value}"));
    let ty = ty.unwrap_or_else(|| {
        match value {
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
            Value::Number(_) => "float64",
            _ => "string",
        }
        .to_string()
    });
    match ty.as_str() {
        "string" => {
            kv.v_type = proto::ValueType::String as i32;
            kv.v_str = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
        }
        "bool" => {
            kv.v_type = proto::ValueType::Bool as i32;
            kv.v_bool = match value {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" => true,
                Value::String(s) if s == "false" => false,
                _ => return Err(bad("a boolean")),
            };
        }
        "int64" => {
            kv.v_type = proto::ValueType::Int64 as i32;
            kv.v_int64 = match value {
                Value::Number(n) => n.as_i64().ok_or_else(|| bad("a 64-bit integer"))?,
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| bad("a 64-bit integer"))?,
                _ => return Err(bad("a 64-bit integer")),
            };
        }
        "float64" => {
            kv.v_type = proto::ValueType::Float64 as i32;
            kv.v_float64 = match value {
                Value::Number(n) => n.as_f64().ok_or_else(|| bad("a number"))?,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| bad("a number"))?,
                _ => return Err(bad("a number")),
            };
        }
        "binary" => {
            kv.v_type = proto::ValueType::Binary as i32;
            kv.v_binary = match value {
                Value::String(s) => base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| bad("base64 text"))?,
                _ => return Err(bad("base64 text")),
            };
        }
        other => {
            return Err(problem(
                join(path, "type"),
                format!("expected one of string, bool, int64, float64, binary, got {other:?}"),
            ))
        }
    }
    Ok(kv)
}

/// The typed reader of [`decode_json`]: borrowed strings, one pass over the body, a `Value`
/// re-read only for what it cannot take exactly as the `Value` reader would.
mod fast {
    use super::*;

    /// Reads `body`; `None` when the whole body must be re-read the `Value` way (not JSON, not
    /// one of the shapes, a duplicate key above the spans, a bad trace id, …), which also gives
    /// the exact error.
    pub(super) fn decode(body: &[u8]) -> Option<Decoded> {
        let doc: Doc = serde_json::from_slice(body).ok()?;
        let mut out = Decoded::default();
        match doc {
            Doc::Traces { traces, in_data } => {
                for (i, t) in traces.into_iter().enumerate() {
                    let path = if in_data {
                        format!("data[{i}]")
                    } else {
                        format!("[{i}]")
                    };
                    read_trace(t, &path, &mut out)?;
                }
            }
            Doc::Trace(t) => read_trace(t, "", &mut out)?,
        }
        Some(out)
    }

    /// A string, borrowed from the body unless it had escapes.
    struct Str<'a>(Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Str<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Borrowed(s)))
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(s.to_string())))
                }
                fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(s)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// A JSON number as `serde_json::Number` holds it, or a string or boolean (tag values).
    /// Arrays and objects are refused (the span is then re-read the `Value` way).
    enum Scalar<'a> {
        U64(u64),
        I64(i64),
        F64(f64),
        Bool(bool),
        Str(Str<'a>),
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a number, a string or a boolean")
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::U64(v))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                    // serde_json stores non-negative integers as u64
                    Ok(match u64::try_from(v) {
                        Ok(u) => Scalar::U64(u),
                        Err(_) => Scalar::I64(v),
                    })
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::F64(v))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Bool(v))
                }
                fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Str(Cow::Borrowed(s))))
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Str(Cow::Owned(s.to_string()))))
                }
                fn visit_string<E: de::Error>(self, s: String) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Str(Cow::Owned(s))))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// The document: the traces of `{"data": […]}` (`null` is none) or of a bare array, or one
    /// bare trace object.
    enum Doc<'a> {
        Traces {
            traces: Vec<Trace<'a>>,
            in_data: bool,
        },
        Trace(Trace<'a>),
    }

    impl<'de> Deserialize<'de> for Doc<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Doc<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("jaeger trace json")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
                    let mut traces = Vec::new();
                    while let Some(t) = seq.next_element()? {
                        traces.push(t);
                    }
                    Ok(Doc::Traces {
                        traces,
                        in_data: false,
                    })
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
                    // `data` wins over a trace's own keys, as in the `Value` reader
                    let mut data: Option<Option<Vec<Trace<'de>>>> = None;
                    let mut trace = TraceFields::default();
                    while let Some(key) = map.next_key::<Str<'de>>()? {
                        match key.0.as_ref() {
                            "data" if data.is_none() => data = Some(map.next_value()?),
                            "data" => return Err(de::Error::duplicate_field("data")),
                            k => trace.field(k, &mut map)?,
                        }
                    }
                    match (data, trace.spans.is_some()) {
                        (Some(traces), _) => Ok(Doc::Traces {
                            traces: traces.unwrap_or_default(),
                            in_data: true,
                        }),
                        (None, true) => Ok(Doc::Trace(trace.finish())),
                        (None, false) => Err(de::Error::missing_field("data")),
                    }
                }
            }
            d.deserialize_any(V)
        }
    }

    /// One trace object: its id, its spans' raw text, its processes' raw text by id.
    struct Trace<'a> {
        trace_id: Option<Str<'a>>,
        spans: Vec<&'a RawValue>,
        processes: HashMap<String, &'a RawValue>,
    }

    /// A trace's fields as they are read, `Some` once seen (`Some(None)` for `null`).
    #[derive(Default)]
    struct TraceFields<'a> {
        trace_id: Option<Option<Str<'a>>>,
        spans: Option<Option<Vec<&'a RawValue>>>,
        processes: Option<Option<HashMap<String, &'a RawValue>>>,
    }

    impl<'de> TraceFields<'de> {
        /// Reads the value of `key`, skipping keys a trace does not have.
        fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
            fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
                slot: &mut Option<Option<T>>,
                key: &'static str,
                map: &mut A,
            ) -> Result<(), A::Error> {
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(key));
                }
                *slot = Some(map.next_value()?);
                Ok(())
            }
            match key {
                "traceID" => once(&mut self.trace_id, "traceID", map),
                "spans" => once(&mut self.spans, "spans", map),
                "processes" => once(&mut self.processes, "processes", map),
                _ => map.next_value::<IgnoredAny>().map(|_| ()),
            }
        }

        fn finish(self) -> Trace<'de> {
            Trace {
                trace_id: self.trace_id.flatten(),
                spans: self.spans.flatten().unwrap_or_default(),
                processes: self.processes.flatten().unwrap_or_default(),
            }
        }
    }

    impl<'de> Deserialize<'de> for Trace<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Trace<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a trace object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Trace<'de>, A::Error> {
                    let mut trace = TraceFields::default();
                    while let Some(key) = map.next_key::<Str<'de>>()? {
                        trace.field(key.0.as_ref(), &mut map)?;
                    }
                    Ok(trace.finish())
                }
            }
            d.deserialize_map(V)
        }
    }

    #[derive(Deserialize)]
    struct JSpan<'a> {
        #[serde(rename = "traceID", borrow, default)]
        trace_id: Option<Str<'a>>,
        #[serde(rename = "spanID", borrow, default)]
        span_id: Option<Str<'a>>,
        #[serde(rename = "operationName", borrow, default)]
        operation_name: Option<Str<'a>>,
        #[serde(borrow, default)]
        references: Option<Vec<JRef<'a>>>,
        #[serde(rename = "parentSpanID", borrow, default)]
        parent_span_id: Option<Str<'a>>,
        #[serde(rename = "startTime", borrow, default)]
        start_time: Option<Scalar<'a>>,
        #[serde(borrow, default)]
        duration: Option<Scalar<'a>>,
        #[serde(borrow, default)]
        flags: Option<Scalar<'a>>,
        #[serde(borrow, default)]
        tags: Option<Vec<JTag<'a>>>,
        #[serde(borrow, default)]
        logs: Option<Vec<JLog<'a>>>,
        #[serde(rename = "processID", borrow, default)]
        process_id: Option<Str<'a>>,
        #[serde(borrow, default)]
        process: Option<&'a RawValue>,
        #[serde(borrow, default)]
        warnings: Option<Vec<Str<'a>>>,
    }

    #[derive(Deserialize)]
    struct JRef<'a> {
        #[serde(rename = "refType", borrow, default)]
        ref_type: Option<Str<'a>>,
        #[serde(rename = "traceID", borrow, default)]
        trace_id: Option<Str<'a>>,
        #[serde(rename = "spanID", borrow, default)]
        span_id: Option<Str<'a>>,
    }

    #[derive(Deserialize)]
    struct JLog<'a> {
        #[serde(borrow, default)]
        timestamp: Option<Scalar<'a>>,
        #[serde(borrow, default)]
        fields: Option<Vec<JTag<'a>>>,
    }

    #[derive(Deserialize)]
    struct JTag<'a> {
        #[serde(borrow)]
        key: Str<'a>,
        #[serde(rename = "type", borrow, default)]
        ty: Option<Str<'a>>,
        #[serde(borrow, default)]
        value: Option<Scalar<'a>>,
    }

    #[derive(Deserialize)]
    struct JProcess<'a> {
        #[serde(rename = "serviceName", borrow, default)]
        service_name: Option<Str<'a>>,
        #[serde(borrow, default)]
        tags: Option<Vec<JTag<'a>>>,
    }

    /// Reads one trace into `out`; `None` sends the whole body to the `Value` reader.
    fn read_trace(t: Trace<'_>, path: &str, out: &mut Decoded) -> Option<()> {
        let trace_id = match &t.trace_id {
            None => None,
            Some(s) => Some(TraceId::parse_hex(&s.0).ok()?),
        };
        let spans_path = join(path, "spans");
        let mut processes: Processes = HashMap::with_capacity(t.processes.len());
        for (id, raw) in t.processes {
            let process = match serde_json::from_str::<JProcess>(raw.get())
                .ok()
                .and_then(|p| process(&p))
            {
                Some(p) => Ok(p),
                None => {
                    let v: Value = serde_json::from_str(raw.get()).ok()?;
                    read_process(&v, &join(&join(path, "processes"), &id))
                }
            };
            processes.insert(id, process);
        }

        let mut groups: Groups = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut key = String::new();
        for (i, raw) in t.spans.iter().enumerate() {
            let fast = serde_json::from_str::<JSpan>(raw.get())
                .ok()
                .and_then(|s| span(s, trace_id, &processes, &mut key));
            let (process, span) = match fast {
                Some(read) => read,
                None => {
                    let v: Value = serde_json::from_str(raw.get()).ok()?;
                    match super::read_span(&v, &format!("{spans_path}[{i}]"), trace_id, &processes)
                    {
                        Ok((k, p, s)) => {
                            key = k;
                            (Some(p), s)
                        }
                        Err((p, m)) => {
                            out.rejected += 1;
                            out.problems.push(format!("{p}: {m}"));
                            continue;
                        }
                    }
                }
            };
            let g = match group_of.get(key.as_str()) {
                Some(g) => *g,
                None => {
                    let process = process.unwrap_or_else(|| {
                        // a span of a known, readable process
                        let id = key.strip_prefix("id:").unwrap_or_default();
                        match processes.get(id) {
                            Some(Ok(p)) => p.clone(),
                            _ => proto::Process::default(),
                        }
                    });
                    groups.push((process, Vec::new(), Vec::new()));
                    group_of.insert(key.clone(), groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[g].1.push(i);
            groups[g].2.push(span);
        }
        emit(groups, t.spans.len(), &spans_path, out);
        Some(())
    }

    /// One span as the `Value` reader reads it, with its group key in `key` and its process
    /// when the key alone does not name it (`None` for a `processID` found in `processes`);
    /// `None` when the span must be re-read the `Value` way.
    fn span(
        s: JSpan<'_>,
        trace_id: Option<TraceId>,
        processes: &Processes,
        key: &mut String,
    ) -> Option<(Option<proto::Process>, proto::Span)> {
        let tid = match &s.trace_id {
            None => trace_id?,
            Some(t) => TraceId::parse_hex(&t.0).ok()?,
        };
        let span_id = SpanId::parse_hex(&s.span_id?.0).ok()?;
        let start_nanos = micros(s.start_time.as_ref(), true)?;
        let duration_nanos = micros(s.duration.as_ref(), false)?;
        let flags = match s.flags {
            None => 0,
            Some(Scalar::U64(f)) => u32::try_from(f).ok()?,
            Some(_) => return None,
        };
        let mut references = Vec::with_capacity(s.references.as_ref().map_or(0, Vec::len));
        for r in s.references.iter().flatten() {
            let ref_type = match &r.ref_type {
                None => proto::SpanRefType::ChildOf,
                Some(t) if t.0.eq_ignore_ascii_case("CHILD_OF") => proto::SpanRefType::ChildOf,
                Some(t) if t.0.eq_ignore_ascii_case("FOLLOWS_FROM") => {
                    proto::SpanRefType::FollowsFrom
                }
                Some(_) => return None,
            };
            let ref_trace = match &r.trace_id {
                None => tid,
                Some(t) => TraceId::parse_hex(&t.0).ok()?,
            };
            let ref_span = SpanId::parse_hex(&r.span_id.as_ref()?.0).ok()?;
            references.push(proto::SpanRef {
                trace_id: ref_trace.to_bytes().to_vec(),
                span_id: ref_span.to_bytes().to_vec(),
                ref_type: ref_type as i32,
            });
        }
        if let Some(p) = &s.parent_span_id {
            let parent = SpanId::parse_hex(&p.0).ok()?;
            let has_parent_ref = references
                .iter()
                .any(|r| r.ref_type == proto::SpanRefType::ChildOf as i32);
            if !parent.is_zero() && !has_parent_ref {
                references.insert(
                    0,
                    proto::SpanRef {
                        trace_id: tid.to_bytes().to_vec(),
                        span_id: parent.to_bytes().to_vec(),
                        ref_type: proto::SpanRefType::ChildOf as i32,
                    },
                );
            }
        }
        let mut logs = Vec::with_capacity(s.logs.as_ref().map_or(0, Vec::len));
        for l in s.logs.iter().flatten() {
            logs.push(proto::Log {
                timestamp: Some(timestamp(micros(l.timestamp.as_ref(), true)?)),
                fields: tags(l.fields.as_deref())?,
            });
        }
        let mut warnings: Vec<String> = s
            .warnings
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.0.into_owned())
            .collect();
        key.clear();
        let process = match (s.process, &s.process_id) {
            (Some(p), _) if p.get().starts_with('{') => {
                let v: Value = serde_json::from_str(p.get()).ok()?;
                let process = read_process(&v, "").ok()?;
                key.push_str("inline:");
                key.push_str(&serde_json::to_string(&v).unwrap_or_default());
                Some(process)
            }
            (_, Some(id)) => match processes.get(id.0.as_ref()) {
                Some(Ok(_)) => {
                    key.push_str("id:");
                    key.push_str(&id.0);
                    None
                }
                Some(Err(_)) => return None,
                None => {
                    warnings.push(format!("unknown processID {:?}", id.0));
                    key.push_str("none");
                    Some(proto::Process::default())
                }
            },
            (_, None) => {
                key.push_str("none");
                Some(proto::Process::default())
            }
        };
        let span = proto::Span {
            trace_id: tid.to_bytes().to_vec(),
            span_id: span_id.to_bytes().to_vec(),
            operation_name: s
                .operation_name
                .map(|o| o.0.into_owned())
                .unwrap_or_default(),
            references,
            flags,
            start_time: Some(timestamp(start_nanos)),
            duration: Some(proto::Duration {
                seconds: (duration_nanos / 1_000_000_000) as i64,
                nanos: (duration_nanos % 1_000_000_000) as i32,
            }),
            tags: tags(s.tags.as_deref())?,
            logs,
            process: None,
            process_id: String::new(),
            warnings,
        };
        Some((process, span))
    }

    fn process(p: &JProcess<'_>) -> Option<proto::Process> {
        Some(proto::Process {
            service_name: p
                .service_name
                .as_ref()
                .map(|s| s.0.to_string())
                .unwrap_or_default(),
            tags: tags(p.tags.as_deref())?,
        })
    }

    /// As [`super::micros`] for a value it accepts.
    fn micros(v: Option<&Scalar<'_>>, required: bool) -> Option<u64> {
        match v {
            None if required => None,
            None => Some(0),
            Some(Scalar::U64(us)) => us.checked_mul(1000),
            Some(Scalar::I64(us)) => nanos_of_float(*us as f64),
            Some(Scalar::F64(us)) => nanos_of_float(*us),
            Some(_) => None,
        }
    }

    fn nanos_of_float(us: f64) -> Option<u64> {
        (us >= 0.0 && us * 1000.0 < u64::MAX as f64).then(|| (us * 1000.0).round() as u64)
    }

    fn tags(t: Option<&[JTag<'_>]>) -> Option<Vec<proto::KeyValue>> {
        t.unwrap_or_default().iter().map(tag).collect()
    }

    /// As [`super::read_tag`] for a tag it accepts.
    fn tag(t: &JTag<'_>) -> Option<proto::KeyValue> {
        let mut kv = proto::KeyValue {
            key: t.key.0.to_string(),
            ..Default::default()
        };
        let value = t.value.as_ref();
        let is = |name: &str| match &t.ty {
            Some(ty) => ty.0.eq_ignore_ascii_case(name),
            None => {
                let inferred = match value {
                    Some(Scalar::Bool(_)) => "bool",
                    Some(Scalar::U64(_) | Scalar::I64(_)) => "int64",
                    Some(Scalar::F64(_)) => "float64",
                    _ => "string",
                };
                inferred == name
            }
        };
        if is("string") {
            kv.v_type = proto::ValueType::String as i32;
            kv.v_str = match value {
                Some(Scalar::Str(s)) => s.0.to_string(),
                None => String::new(),
                // numbers and booleans become their JSON text: leave that to the Value reader
                Some(_) => return None,
            };
        } else if is("bool") {
            kv.v_type = proto::ValueType::Bool as i32;
            kv.v_bool = match value {
                Some(Scalar::Bool(b)) => *b,
                Some(Scalar::Str(s)) if s.0 == "true" => true,
                Some(Scalar::Str(s)) if s.0 == "false" => false,
                _ => return None,
            };
        } else if is("int64") {
            kv.v_type = proto::ValueType::Int64 as i32;
            kv.v_int64 = match value {
                Some(Scalar::U64(u)) => i64::try_from(*u).ok()?,
                Some(Scalar::I64(i)) => *i,
                Some(Scalar::Str(s)) => s.0.trim().parse::<i64>().ok()?,
                _ => return None,
            };
        } else if is("float64") {
            kv.v_type = proto::ValueType::Float64 as i32;
            kv.v_float64 = match value {
                Some(Scalar::U64(u)) => *u as f64,
                Some(Scalar::I64(i)) => *i as f64,
                Some(Scalar::F64(f)) => *f,
                Some(Scalar::Str(s)) => s.0.trim().parse::<f64>().ok()?,
                _ => return None,
            };
        } else if is("binary") {
            kv.v_type = proto::ValueType::Binary as i32;
            kv.v_binary = match value {
                Some(Scalar::Str(s)) => base64::engine::general_purpose::STANDARD
                    .decode(s.0.as_bytes())
                    .ok()?,
                _ => return None,
            };
        } else {
            return None;
        }
        Some(kv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a decode gives, with which spans share one resource (`Arc` identity).
    fn outcome(d: Result<Decoded, JsonInError>) -> Result<(Decoded, Vec<usize>), JsonInError> {
        d.map(|d| {
            let sharing = d
                .spans
                .iter()
                .map(|s| {
                    d.spans
                        .iter()
                        .position(|o| std::sync::Arc::ptr_eq(&o.resource, &s.resource))
                        .unwrap_or(usize::MAX)
                })
                .collect();
            (d, sharing)
        })
    }

    /// The slow reader: the whole body as a `Value`, then `decode_value`.
    fn by_value(body: &str) -> Result<Decoded, JsonInError> {
        match serde_json::from_str::<Value>(body) {
            Ok(v) => decode_value(&v),
            Err(e) => Err(JsonInError::Json {
                line: e.line(),
                column: e.column(),
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or("")
                    .to_string(),
            }),
        }
    }

    #[test]
    fn a_body_that_is_not_text_is_refused_even_in_an_unknown_field() {
        let body = b"{\"spans\":[],\"x\":\"\xf9\"}";
        let err = decode_json(body).unwrap_err().to_string();
        assert!(err.contains("invalid unicode"), "{err}");
        assert!(decode_json(br#"{"spans":[],"x":"\u00e9"}"#).is_ok());
    }

    #[test]
    fn typed_reader_reads_exactly_as_the_value_reader() {
        let span = |extra: &str| {
            format!(
                r#"{{"traceID":"abc","spanID":"1","operationName":"op","startTime":1767225600000000,"duration":5{extra}}}"#
            )
        };
        let tag = |t: &str| span(&format!(r#","tags":[{t}]"#));
        let mut spans = vec![
            span(""),
            span(r#","processID":"p1""#),
            span(r#","processID":"p2""#),
            span(r#","processID":"nope""#),
            span(r#","processID":"bad""#),
            span(r#","processID":null"#),
            span(r#","processID":7"#),
            span(r#","process":{"serviceName":"inline","tags":[{"key":"a","value":1}]}"#),
            span(r#","process":{"tags":[{"value":1,"key":"a"}],"serviceName":"inline"}"#),
            span(r#","process":"p1","processID":"p1""#),
            span(r#","process":{"serviceName":5}"#),
            span(
                r#","references":[{"refType":"follows_from","traceID":"ab","spanID":"2"},{"refType":"CHILD_OF","spanID":"3"}]"#,
            ),
            span(r#","references":[{"refType":"SIBLING","spanID":"2"}]"#),
            span(r#","references":[{"traceID":"ab"}]"#),
            span(r#","references":null,"parentSpanID":"9""#),
            span(r#","parentSpanID":"0""#),
            span(r#","parentSpanID":"zz""#),
            span(r#","parentSpanID":"9","references":[{"refType":"CHILD_OF","spanID":"3"}]"#),
            span(r#","flags":1"#),
            span(r#","flags":1.0"#),
            span(r#","flags":4294967296"#),
            span(r#","flags":-1"#),
            span(r#","duration":2.5"#),
            span(r#","duration":-2"#),
            span(r#","duration":"5""#),
            span(r#","duration":18446744073709551615"#),
            span(r#","warnings":["w1","w\u00e9"]"#),
            span(r#","warnings":[1]"#),
            span(r#","warnings":"w""#),
            span(r#","operationName":"dup""#),
            span(r#","operationName":null"#),
            span(r#","operationName":"esc\"aped\n""#),
            span(
                r#","logs":[{"timestamp":1767225600000001,"fields":[{"key":"event","value":"boom"}]}]"#,
            ),
            span(r#","logs":[{"fields":[]}]"#),
            span(r#","logs":[5]"#),
            span(r#","logs":{}"#),
            span(r#","tags":null"#),
            span(r#","tags":{}"#),
            span(r#","unknown":{"deep":[1,{"x":null}]}"#),
            r#"{"spanID":"5","startTime":1,"traceID":null}"#.to_string(),
            r#"{"traceID":"1","spanID":"zz","startTime":1}"#.to_string(),
            r#"{"traceID":"1","startTime":1}"#.to_string(),
            r#"{"traceID":"1","spanID":"2"}"#.to_string(),
            r#"{"traceID":"x1","spanID":"2","startTime":1}"#.to_string(),
            "17".to_string(),
            "null".to_string(),
        ];
        for t in [
            r#"{"key":"s","type":"string","value":"v"}"#,
            r#"{"key":"s","type":"STRING","value":"v"}"#,
            r#"{"key":"s","type":"string","value":null}"#,
            r#"{"key":"s","type":"string"}"#,
            r#"{"key":"s","type":"string","value":12}"#,
            r#"{"key":"s","type":"string","value":1.5}"#,
            r#"{"key":"s","type":"string","value":[1,"a"]}"#,
            r#"{"key":"s","type":"string","value":{"a":1}}"#,
            r#"{"key":"b","type":"bool","value":true}"#,
            r#"{"key":"b","type":"bool","value":"false"}"#,
            r#"{"key":"b","type":"bool","value":"yes"}"#,
            r#"{"key":"i","type":"int64","value":-3}"#,
            r#"{"key":"i","type":"int64","value":"9007199254740993"}"#,
            r#"{"key":"i","type":"int64","value":" 42 "}"#,
            r#"{"key":"i","type":"int64","value":9223372036854775808}"#,
            r#"{"key":"i","type":"int64","value":1.5}"#,
            r#"{"key":"i","type":"int64","value":"x"}"#,
            r#"{"key":"f","type":"float64","value":0.25}"#,
            r#"{"key":"f","type":"float64","value":3}"#,
            r#"{"key":"f","type":"float64","value":-3}"#,
            r#"{"key":"f","type":"float64","value":"1e3"}"#,
            r#"{"key":"f","type":"float64","value":true}"#,
            r#"{"key":"x","type":"binary","value":"AAEC/w=="}"#,
            r#"{"key":"x","type":"binary","value":"!!"}"#,
            r#"{"key":"x","type":"blob","value":"a"}"#,
            r#"{"key":"x","type":7,"value":"a"}"#,
            r#"{"key":"u","value":true}"#,
            r#"{"key":"u","value":18446744073709551615}"#,
            r#"{"key":"u","value":-1}"#,
            r#"{"key":"u","value":2.5}"#,
            r#"{"key":"u","value":"s"}"#,
            r#"{"key":"u"}"#,
            r#"{"key":"span.kind","value":"server"},{"key":"error","value":true},{"key":"otel.status_description","value":"bad"}"#,
            r#"{"key":"w3c.tracestate","value":"a=b"},{"key":"otel.scope.name","value":"lib"}"#,
            r#"{"value":1}"#,
            r#"{"key":null,"value":1}"#,
            r#"{"key":"k","key":"k2","value":1}"#,
            r#"5"#,
        ] {
            spans.push(tag(t));
        }
        let processes = r#"{"p1":{"serviceName":"one","tags":[{"key":"host","value":"h"}]},"p2":{"serviceName":"two"},"bad":{"serviceName":"b","tags":[{"key":"n","type":"int64","value":"x"}]}}"#;
        let all = spans.join(",");
        let mut bodies = vec![
            format!(r#"{{"data":[{{"traceID":"abc","spans":[{all}],"processes":{processes}}}]}}"#),
            format!(r#"[{{"spans":[{all}],"processes":{processes}}},{{"spans":[]}}]"#),
            format!(
                r#"{{"spans":[{all}],"processes":{processes},"traceID":"abc","warnings":null}}"#
            ),
            format!(r#"{{"total":1,"data":[{{"traceID":"abc","spans":[{all}]}}],"spans":5}}"#),
            format!(
                r#"{{"data":[{{"traceID":"abc","spans":[{all}],"processes":{processes},"processes":{{}}}}]}}"#
            ),
            format!(r#"{{"data":[{{"traceID":"abc","spans":[{all}],"processes":5}}]}}"#),
            format!(r#"{{"data":[{{"traceID":"abc","spans":[{all}]}}],"data":null}}"#),
            format!(r#"{{"data":[{{"traceID":"zz","spans":[{all}]}}]}}"#),
            format!(r#"{{"data":[{{"traceID":"1","spans":[{all},{{"startTime":1e999}}]}}]}}"#),
            format!(r#"{{"data":[{{"traceID":"1","spans":[{all}]}}]}} x"#),
        ];
        for other in [
            r#"{"data":null}"#,
            r#"{"data":{}}"#,
            r#"{"data":[5]}"#,
            r#"{"data":[{"spans":5}]}"#,
            r#"{"data":[{"spans":null,"traceID":"1"}]}"#,
            r#"{"spans":[1]}"#,
            r#"{"foo":1}"#,
            r#"[]"#,
            r#""text""#,
            "{\"data\": [",
            "",
        ] {
            bodies.push(other.to_string());
        }
        for body in &bodies {
            assert_eq!(
                outcome(decode_json(body.as_bytes())),
                outcome(by_value(body)),
                "{body}"
            );
        }
        // the typed reader took the first three bodies itself (re-reading single spans), and
        // left the others with duplicate or malformed keys above the spans to the Value reader
        let typed: Vec<bool> = bodies[..10]
            .iter()
            .map(|b| fast::decode(b.as_bytes()).is_some())
            .collect();
        assert_eq!(
            typed,
            [true, true, true, false, false, false, false, false, false, false]
        );
        // the cases above are not all rejected: most spans are read
        let d = decode_json(bodies[0].as_bytes()).unwrap();
        assert!(d.spans.len() > 40 && d.rejected > 20, "{d:?}");
    }
}
