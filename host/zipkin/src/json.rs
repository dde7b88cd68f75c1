//! Zipkin v2 JSON (`zipkin2-api.yaml`: an array of spans) read into and written from
//! [`ZipkinSpan`], with field helpers shared by the v1 reader. Every error names the field and
//! the bad value.

use serde_json::{Map, Value};
use spoor_core::{AnyValue, SpanId, TraceId};

use crate::model::{tag_text, Annotation, Endpoint, Kind, ZipkinSpan};

/// A short description of a JSON value's type, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value quoted for an error message, cut to 40 characters.
pub(crate) fn quote(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 40 {
        let mut cut = 40;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Field access on one JSON object; `Null` reads as missing.
pub(crate) struct Obj<'a>(pub &'a Map<String, Value>);

impl<'a> Obj<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("{key} is {}, expected a string", type_name(v))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(format!("{key} is {}, expected a boolean", type_name(v))),
        }
    }

    /// A non-negative integer (microseconds, ports); whole floats are accepted.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(u) = n.as_u64() {
                    return Ok(Some(u));
                }
                match n.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(format!("{key} {n} is not a non-negative integer")),
                }
            }
            Some(v) => Err(format!("{key} is {}, expected a number", type_name(v))),
        }
    }

    pub fn trace_id(&self, key: &str) -> Result<(TraceId, bool), String> {
        let s = self.str(key)?.ok_or_else(|| format!("{key} is missing"))?;
        let id = TraceId::parse_hex(s).map_err(|e| format!("{key} {s:?}: {e}"))?;
        Ok((id, s.len() > 16))
    }

    pub fn span_id(&self, key: &str) -> Result<Option<SpanId>, String> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => SpanId::parse_hex(s)
                .map(Some)
                .map_err(|e| format!("{key} {s:?}: {e}")),
        }
    }

    pub fn endpoint(&self, key: &str) -> Result<Option<Endpoint>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => read_endpoint(&Obj(m))
                .map(Some)
                .map_err(|e| format!("{key}.{e}")),
            Some(v) => Err(format!("{key} is {}, expected an object", type_name(v))),
        }
    }
}

fn read_endpoint(o: &Obj<'_>) -> Result<Endpoint, String> {
    let port = match o.u64("port")? {
        None => 0,
        Some(p) => u16::try_from(p).map_err(|_| format!("port {p} is out of range"))?,
    };
    Ok(Endpoint {
        service_name: o.str("serviceName")?.unwrap_or("").to_string(),
        ipv4: o.str("ipv4")?.filter(|s| !s.is_empty()).map(str::to_string),
        ipv6: o.str("ipv6")?.filter(|s| !s.is_empty()).map(str::to_string),
        port,
    })
}

/// Reads the top level: an array of span objects, each labelled `span N` for messages.
pub(crate) fn span_objects(v: &Value) -> Result<&Vec<Value>, crate::DecodeError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(crate::DecodeError::NotAnArray(type_name(other))),
    }
}

/// Reads one v2 span object.
pub fn read_span(v: &Value) -> Result<ZipkinSpan, String> {
    let Value::Object(m) = v else {
        return Err(format!("is {}, expected an object", type_name(v)));
    };
    let o = Obj(m);
    let (trace_id, trace_id_128) = o.trace_id("traceId")?;
    let id = o.span_id("id")?.ok_or("id is missing")?;
    let kind = match o.str("kind")? {
        None | Some("") => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| format!("kind {k:?} is not a span kind"))?),
    };
    let annotations = match o.get("annotations") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| read_annotation(a).map_err(|e| format!("annotations[{i}] {e}")))
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(format!(
                "annotations is {}, expected an array",
                type_name(v)
            ))
        }
    };
    let tags = match o.get("tags") {
        None => Vec::new(),
        Some(Value::Object(t)) => t
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), AnyValue::Str(s.clone()))),
                // Zipkin's own reader refuses these; being lenient costs nothing
                Value::Bool(_) | Value::Number(_) => Ok((k.clone(), AnyValue::Str(v.to_string()))),
                other => Err(format!(
                    "tags.{k} is {}, expected a string",
                    type_name(other)
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(format!("tags is {}, expected an object", type_name(v))),
    };
    Ok(ZipkinSpan {
        trace_id,
        trace_id_128,
        parent_id: o.span_id("parentId")?,
        id,
        kind,
        name: o.str("name")?.unwrap_or("").to_string(),
        timestamp_us: o.u64("timestamp")?,
        duration_us: o.u64("duration")?,
        local_endpoint: o.endpoint("localEndpoint")?,
        remote_endpoint: o.endpoint("remoteEndpoint")?,
        annotations,
        tags,
        debug: o.bool("debug")?,
        shared: o.bool("shared")?,
    })
}

fn read_annotation(v: &Value) -> Result<Annotation, String> {
    let Value::Object(m) = v else {
        return Err(format!("is {}, expected an object", type_name(v)));
    };
    let o = Obj(m);
    Ok(Annotation {
        timestamp_us: o.u64("timestamp")?.ok_or("timestamp is missing")?,
        value: o.str("value")?.unwrap_or("").to_string(),
    })
}

/// The JSON hex form of a trace id: 16 digits for a 64-bit id, else 32.
pub(crate) fn trace_id_hex(z: &ZipkinSpan) -> String {
    if z.trace_id_128 || z.trace_id.high() != 0 {
        z.trace_id.to_hex().to_string()
    } else {
        SpanId(z.trace_id.low()).to_hex().to_string()
    }
}

pub(crate) fn endpoint_json(e: &Endpoint) -> Value {
    let mut m = Map::new();
    if !e.service_name.is_empty() {
        m.insert("serviceName".into(), e.service_name.clone().into());
    }
    if let Some(ip) = &e.ipv4 {
        m.insert("ipv4".into(), ip.clone().into());
    }
    if let Some(ip) = &e.ipv6 {
        m.insert("ipv6".into(), ip.clone().into());
    }
    if e.port != 0 {
        m.insert("port".into(), e.port.into());
    }
    Value::Object(m)
}

/// One span in v2 JSON, fields in the order Zipkin writes them.
pub fn span_json(z: &ZipkinSpan) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), trace_id_hex(z).into());
    if let Some(p) = z.parent_id {
        m.insert("parentId".into(), p.to_hex().to_string().into());
    }
    m.insert("id".into(), z.id.to_hex().to_string().into());
    if let Some(k) = z.kind {
        m.insert("kind".into(), k.as_str().into());
    }
    if !z.name.is_empty() {
        m.insert("name".into(), z.name.clone().into());
    }
    if let Some(t) = z.timestamp_us {
        m.insert("timestamp".into(), t.into());
    }
    if let Some(d) = z.duration_us {
        m.insert("duration".into(), d.into());
    }
    if let Some(e) = &z.local_endpoint {
        m.insert("localEndpoint".into(), endpoint_json(e));
    }
    if let Some(e) = &z.remote_endpoint {
        m.insert("remoteEndpoint".into(), endpoint_json(e));
    }
    if !z.annotations.is_empty() {
        let annos = z
            .annotations
            .iter()
            .map(|a| serde_json::json!({"timestamp": a.timestamp_us, "value": a.value}))
            .collect();
        m.insert("annotations".into(), Value::Array(annos));
    }
    if !z.tags.is_empty() {
        let tags = z
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(tag_text(v))))
            .collect();
        m.insert("tags".into(), Value::Object(tags));
    }
    if z.debug {
        m.insert("debug".into(), true.into());
    }
    if z.shared {
        m.insert("shared".into(), true.into());
    }
    Value::Object(m)
}
