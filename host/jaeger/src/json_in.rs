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

use std::collections::HashMap;

use base64::Engine as _;
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
    let mut processes: HashMap<&str, Result<proto::Process, Problem>> = HashMap::new();
    match t.get("processes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ps)) => {
            for (id, p) in ps {
                let p_path = join(&join(path, "processes"), id);
                processes.insert(id, read_process(p, &p_path));
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
    let mut groups: Vec<(proto::Process, Vec<usize>, Vec<proto::Span>)> = Vec::new();
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
    let mut slots: Vec<Option<spoor_core::Span>> = vec![None; spans.len()];
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
    Ok(())
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
    processes: &HashMap<&str, Result<proto::Process, Problem>>,
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
