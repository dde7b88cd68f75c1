//! Zipkin v1 JSON (`POST /api/v1/spans`): spans with `annotations` (the core annotations
//! `cs`/`sr`/`ss`/`cr`/`ms`/`mr` carry kind and timing) and typed `binaryAnnotations` (`ca`/`sa`/
//! `ma` carry the remote address), converted to v2 spans as Zipkin's `V1SpanConverter` does: a
//! v1 span holding both client and server annotations becomes a client span and a shared
//! server span; a server span without a span timestamp is shared (the client owns it).

use serde_json::{Map, Value};
use spoor_core::AnyValue;

use crate::json::{endpoint_json, trace_id_hex, type_name, Obj};
use crate::model::{tag_text, Annotation, Endpoint, Kind, ZipkinSpan};

struct V1Annotation {
    timestamp_us: u64,
    value: String,
    endpoint: Option<Endpoint>,
}

struct V1Binary {
    key: String,
    value: AnyValue,
    endpoint: Option<Endpoint>,
}

fn read_annotation(v: &Value) -> Result<V1Annotation, String> {
    let Value::Object(m) = v else {
        return Err(format!("is {}, expected an object", type_name(v)));
    };
    let o = Obj(m);
    Ok(V1Annotation {
        timestamp_us: o.u64("timestamp")?.ok_or("timestamp is missing")?,
        value: o.str("value")?.unwrap_or("").to_string(),
        endpoint: o.endpoint("endpoint")?,
    })
}

/// A binary annotation's value, typed by its JSON type or its `type` field.
fn binary_value(value: &Value, ty: Option<&str>) -> Result<AnyValue, String> {
    let ty = ty.unwrap_or("").to_ascii_uppercase();
    let parse_err = |t: &str| format!("value {} is not a valid {t}", crate::json::quote(value));
    Ok(match (value, ty.as_str()) {
        (Value::Bool(b), _) => AnyValue::Bool(*b),
        (Value::Number(n), "DOUBLE") => AnyValue::Double(n.as_f64().unwrap_or_default()),
        (Value::Number(n), _) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or_default()),
        },
        (Value::String(s), "BOOL") => match s.as_str() {
            "true" => AnyValue::Bool(true),
            "false" => AnyValue::Bool(false),
            _ => return Err(parse_err("BOOL")),
        },
        (Value::String(s), "I16" | "I32" | "I64") => {
            AnyValue::Int(s.parse().map_err(|_| parse_err(&ty))?)
        }
        (Value::String(s), "DOUBLE") => AnyValue::Double(s.parse().map_err(|_| parse_err(&ty))?),
        (Value::String(s), _) => AnyValue::Str(s.clone()),
        (v, _) => {
            return Err(format!(
                "value is {}, expected a string, number or boolean",
                type_name(v)
            ))
        }
    })
}

fn read_binary(v: &Value) -> Result<V1Binary, String> {
    let Value::Object(m) = v else {
        return Err(format!("is {}, expected an object", type_name(v)));
    };
    let o = Obj(m);
    let key = o.str("key")?.ok_or("key is missing")?.to_string();
    let value = match o.get("value") {
        None => AnyValue::Str(String::new()),
        Some(v) => binary_value(v, o.str("type")?)?,
    };
    Ok(V1Binary {
        key,
        value,
        endpoint: o.endpoint("endpoint")?,
    })
}

fn array<'a>(o: &Obj<'a>, key: &str) -> Result<&'a [Value], String> {
    match o.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(v) => Err(format!("{key} is {}, expected an array", type_name(v))),
    }
}

fn same_service(a: Option<&Endpoint>, b: Option<&Endpoint>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.service_name == b.service_name,
        _ => false,
    }
}

/// Reads one v1 span object into one or two v2 spans.
pub fn read_span(v: &Value) -> Result<Vec<ZipkinSpan>, String> {
    let Value::Object(m) = v else {
        return Err(format!("is {}, expected an object", type_name(v)));
    };
    let o = Obj(m);
    let (trace_id, trace_id_128) = o.trace_id("traceId")?;
    let annotations = array(&o, "annotations")?
        .iter()
        .enumerate()
        .map(|(i, a)| read_annotation(a).map_err(|e| format!("annotations[{i}] {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let binaries = array(&o, "binaryAnnotations")?
        .iter()
        .enumerate()
        .map(|(i, a)| read_binary(a).map_err(|e| format!("binaryAnnotations[{i}] {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let base = ZipkinSpan {
        trace_id,
        trace_id_128,
        parent_id: o.span_id("parentId")?,
        id: o.span_id("id")?.ok_or("id is missing")?,
        name: o.str("name")?.unwrap_or("").to_string(),
        debug: o.bool("debug")?,
        ..Default::default()
    };
    let timestamp = o.u64("timestamp")?;
    let duration = o.u64("duration")?;
    let core = |name: &str| annotations.iter().find(|a| a.value == name);
    let (cs, cr, sr, ss, ms, mr) = (
        core("cs"),
        core("cr"),
        core("sr"),
        core("ss"),
        core("ms"),
        core("mr"),
    );
    let between = |a: Option<&V1Annotation>, b: Option<&V1Annotation>| match (a, b) {
        (Some(a), Some(b)) => Some(b.timestamp_us.saturating_sub(a.timestamp_us)),
        _ => None,
    };
    let ep = |a: Option<&V1Annotation>, b: Option<&V1Annotation>| {
        a.and_then(|x| x.endpoint.clone())
            .or_else(|| b.and_then(|x| x.endpoint.clone()))
    };
    let mut spans: Vec<ZipkinSpan> = Vec::new();
    let has_client = cs.is_some() || cr.is_some();
    if has_client {
        spans.push(ZipkinSpan {
            kind: Some(Kind::Client),
            local_endpoint: ep(cs, cr),
            timestamp_us: timestamp.or(cs.map(|a| a.timestamp_us)),
            duration_us: if timestamp.is_some() && duration.is_some() {
                duration
            } else {
                between(cs, cr).or(duration)
            },
            ..base.clone()
        });
    }
    if sr.is_some() || ss.is_some() {
        let owns_timestamp = !has_client && timestamp.is_some();
        spans.push(ZipkinSpan {
            kind: Some(Kind::Server),
            local_endpoint: ep(sr, ss),
            timestamp_us: if owns_timestamp {
                timestamp
            } else {
                sr.map(|a| a.timestamp_us)
            },
            duration_us: if owns_timestamp && duration.is_some() {
                duration
            } else {
                between(sr, ss)
            },
            shared: !owns_timestamp,
            ..base.clone()
        });
    }
    for (a, kind) in [(ms, Kind::Producer), (mr, Kind::Consumer)] {
        if let Some(a) = a {
            if spans.is_empty() {
                spans.push(ZipkinSpan {
                    kind: Some(kind),
                    local_endpoint: a.endpoint.clone(),
                    timestamp_us: timestamp.or(Some(a.timestamp_us)),
                    duration_us: duration,
                    ..base.clone()
                });
            }
        }
    }
    if spans.is_empty() {
        // a local span: its endpoint is the "lc" binary annotation's, else the first one given
        let local = binaries
            .iter()
            .find(|b| b.key == "lc")
            .and_then(|b| b.endpoint.clone())
            .or_else(|| annotations.iter().find_map(|a| a.endpoint.clone()))
            .or_else(|| binaries.iter().find_map(|b| b.endpoint.clone()));
        spans.push(ZipkinSpan {
            local_endpoint: local,
            timestamp_us: timestamp.or(annotations.first().map(|a| a.timestamp_us)),
            duration_us: duration,
            ..base.clone()
        });
    }
    // the span an annotation or tag belongs to: the one of the same service, else the first
    let owner = |spans: &[ZipkinSpan], e: Option<&Endpoint>| {
        spans
            .iter()
            .position(|s| same_service(s.local_endpoint.as_ref(), e))
            .unwrap_or(0)
    };
    for a in &annotations {
        if matches!(a.value.as_str(), "cs" | "cr" | "sr" | "ss" | "ms" | "mr") {
            continue;
        }
        let i = owner(&spans, a.endpoint.as_ref());
        spans[i].annotations.push(Annotation {
            timestamp_us: a.timestamp_us,
            value: a.value.clone(),
        });
    }
    for b in binaries {
        let remote_of = match b.key.as_str() {
            "sa" => Some(vec![Kind::Client]),
            "ca" => Some(vec![Kind::Server]),
            "ma" => Some(vec![Kind::Producer, Kind::Consumer]),
            _ => None,
        };
        if let (Some(kinds), AnyValue::Bool(true)) = (&remote_of, &b.value) {
            if let Some(s) = spans
                .iter_mut()
                .find(|s| s.kind.is_some_and(|k| kinds.contains(&k)))
            {
                s.remote_endpoint = b.endpoint.clone();
            }
            continue;
        }
        let i = owner(&spans, b.endpoint.as_ref());
        spans[i].tags.push((b.key, b.value));
    }
    Ok(spans)
}

fn binary_json(key: &str, value: &AnyValue, endpoint: Option<&Endpoint>) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), key.into());
    let (v, ty) = match value {
        AnyValue::Bool(b) => (Value::Bool(*b), Some("BOOL")),
        AnyValue::Int(i) => (Value::from(*i), Some("I64")),
        AnyValue::Double(d) => (Value::from(*d), Some("DOUBLE")),
        other => (Value::String(tag_text(other)), None),
    };
    m.insert("value".into(), v);
    if let Some(t) = ty {
        m.insert("type".into(), t.into());
    }
    if let Some(e) = endpoint {
        m.insert("endpoint".into(), endpoint_json(e));
    }
    Value::Object(m)
}

/// One v2 span in v1 JSON (Zipkin's `V2SpanConverter`): kind and timing become core
/// annotations, the remote endpoint a `ca`/`sa`/`ma` binary annotation, tags typed binary
/// annotations. A shared span leaves the span timestamp to the client.
pub fn span_json(z: &ZipkinSpan) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), trace_id_hex(z).into());
    m.insert("id".into(), z.id.to_hex().to_string().into());
    if let Some(p) = z.parent_id {
        m.insert("parentId".into(), p.to_hex().to_string().into());
    }
    m.insert("name".into(), z.name.clone().into());
    if !z.shared {
        if let Some(t) = z.timestamp_us {
            m.insert("timestamp".into(), t.into());
        }
        if let Some(d) = z.duration_us {
            m.insert("duration".into(), d.into());
        }
    }
    let local = z.local_endpoint.as_ref();
    let anno = |ts: u64, value: &str| {
        let mut a = Map::new();
        a.insert("timestamp".into(), ts.into());
        a.insert("value".into(), value.into());
        if let Some(e) = local {
            a.insert("endpoint".into(), endpoint_json(e));
        }
        Value::Object(a)
    };
    let mut annos = Vec::new();
    let (begin, end, remote_key) = match z.kind {
        Some(Kind::Client) => (Some("cs"), Some("cr"), "sa"),
        Some(Kind::Server) => (Some("sr"), Some("ss"), "ca"),
        Some(Kind::Producer) => (Some("ms"), None, "ma"),
        Some(Kind::Consumer) => (Some("mr"), None, "ma"),
        None => (None, None, ""),
    };
    if let (Some(b), Some(ts)) = (begin, z.timestamp_us) {
        annos.push(anno(ts, b));
        if let (Some(e), Some(d)) = (end, z.duration_us) {
            annos.push(anno(ts.saturating_add(d), e));
        }
    }
    annos.extend(z.annotations.iter().map(|a| anno(a.timestamp_us, &a.value)));
    let mut binaries: Vec<Value> = z
        .tags
        .iter()
        .map(|(k, v)| binary_json(k, v, local))
        .collect();
    if let (Some(r), false) = (&z.remote_endpoint, remote_key.is_empty()) {
        binaries.push(binary_json(remote_key, &AnyValue::Bool(true), Some(r)));
    }
    if z.kind.is_none() && annos.is_empty() && binaries.is_empty() {
        binaries.push(binary_json("lc", &AnyValue::Str(String::new()), local));
    }
    m.insert("annotations".into(), Value::Array(annos));
    m.insert("binaryAnnotations".into(), Value::Array(binaries));
    if z.debug {
        m.insert("debug".into(), true.into());
    }
    Value::Object(m)
}
