//! OTLP/JSON: the JSON mapping of the OTLP protobuf messages, as the OTLP specification defines it.
//!
//! Encoding follows the spec exactly: lowerCamelCase keys, trace and span ids as lowercase hex
//! (not base64), enums as integers, 64-bit integers as decimal strings, `bytesValue` as base64,
//! default values omitted (except the span's ids, name, kind, times and status).
//!
//! Decoding is lenient where the spec allows receivers to be: snake_case field names, enum names
//! (`"SPAN_KIND_SERVER"`), 64-bit integers as numbers or strings, `null` for defaults, and unknown
//! fields are ignored.

use base64::Engine;
use serde_json::{json, Map, Value};
use spoor_core::Span;

use crate::proto::{self, any_value};
use crate::DecodeError;

/// Parses an OTLP/JSON `ExportTraceServiceRequest` (also the shape of `TracesData`).
pub fn decode_request(body: &[u8]) -> Result<proto::ExportTraceServiceRequest, DecodeError> {
    serde_json::from_slice(body).map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> DecodeError {
    let (line, column) = (e.line(), e.column());
    let text = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    DecodeError::Json {
        line,
        column,
        message,
    }
}

/// Spans as OTLP/JSON `TracesData`: `{"resourceSpans": […]}`, grouped by shared resource and
/// scope as [`crate::spans_to_request`] groups them.
pub fn encode_traces_data(spans: &[Span]) -> Value {
    encode_request(&crate::spans_to_request(spans))
}

/// An export request (or `TracesData`) as OTLP/JSON.
pub fn encode_request(req: &proto::ExportTraceServiceRequest) -> Value {
    json!({ "resourceSpans": req.resource_spans.iter().map(resource_spans).collect::<Vec<_>>() })
}

/// An `ExportTraceServiceResponse` as OTLP/JSON (`{}` on full success).
pub fn encode_export_response(resp: &proto::ExportTraceServiceResponse) -> Value {
    let mut m = Map::new();
    if let Some(ps) = &resp.partial_success {
        let mut p = Map::new();
        if ps.rejected_spans != 0 {
            p.insert(
                "rejectedSpans".into(),
                Value::String(ps.rejected_spans.to_string()),
            );
        }
        if !ps.error_message.is_empty() {
            p.insert(
                "errorMessage".into(),
                Value::String(ps.error_message.clone()),
            );
        }
        m.insert("partialSuccess".into(), Value::Object(p));
    }
    Value::Object(m)
}

/// A `google.rpc.Status` as JSON; a `RetryInfo` detail is rendered with its `@type` and a
/// `retryDelay` duration string, other details with `@type` and base64 `value`.
pub fn encode_rpc_status(st: &proto::RpcStatus) -> Value {
    let details: Vec<Value> = st
        .details
        .iter()
        .map(|any| {
            let retry = (any.type_url == proto::RETRY_INFO_TYPE_URL)
                .then(|| <proto::RetryInfo as prost::Message>::decode(any.value.as_slice()).ok())
                .flatten();
            match retry {
                Some(info) => {
                    let d = info.retry_delay.unwrap_or_default();
                    let delay = if d.nanos == 0 {
                        format!("{}s", d.seconds)
                    } else {
                        format!("{}.{:09}s", d.seconds, d.nanos)
                    };
                    json!({ "@type": any.type_url, "retryDelay": delay })
                }
                None => json!({ "@type": any.type_url, "value": b64(&any.value) }),
            }
        })
        .collect();
    let mut m = Map::new();
    m.insert("code".into(), json!(st.code));
    m.insert("message".into(), json!(st.message));
    if !details.is_empty() {
        m.insert("details".into(), Value::Array(details));
    }
    Value::Object(m)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    s
}

fn resource_spans(rs: &proto::ResourceSpans) -> Value {
    let mut m = Map::new();
    if let Some(r) = &rs.resource {
        let mut rm = Map::new();
        put_attrs(&mut rm, &r.attributes);
        put_u32(
            &mut rm,
            "droppedAttributesCount",
            r.dropped_attributes_count,
        );
        m.insert("resource".into(), Value::Object(rm));
    }
    m.insert(
        "scopeSpans".into(),
        Value::Array(rs.scope_spans.iter().map(scope_spans).collect()),
    );
    if !rs.schema_url.is_empty() {
        m.insert("schemaUrl".into(), json!(rs.schema_url));
    }
    Value::Object(m)
}

fn scope_spans(ss: &proto::ScopeSpans) -> Value {
    let mut m = Map::new();
    if let Some(s) = &ss.scope {
        let mut sm = Map::new();
        if !s.name.is_empty() {
            sm.insert("name".into(), json!(s.name));
        }
        if !s.version.is_empty() {
            sm.insert("version".into(), json!(s.version));
        }
        put_attrs(&mut sm, &s.attributes);
        put_u32(
            &mut sm,
            "droppedAttributesCount",
            s.dropped_attributes_count,
        );
        m.insert("scope".into(), Value::Object(sm));
    }
    m.insert(
        "spans".into(),
        Value::Array(ss.spans.iter().map(span).collect()),
    );
    if !ss.schema_url.is_empty() {
        m.insert("schemaUrl".into(), json!(ss.schema_url));
    }
    Value::Object(m)
}

fn span(s: &proto::Span) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), Value::String(hex(&s.trace_id)));
    m.insert("spanId".into(), Value::String(hex(&s.span_id)));
    if !s.trace_state.is_empty() {
        m.insert("traceState".into(), json!(s.trace_state));
    }
    if !s.parent_span_id.is_empty() {
        m.insert("parentSpanId".into(), Value::String(hex(&s.parent_span_id)));
    }
    put_u32(&mut m, "flags", s.flags);
    m.insert("name".into(), json!(s.name));
    m.insert("kind".into(), json!(s.kind));
    m.insert(
        "startTimeUnixNano".into(),
        Value::String(s.start_time_unix_nano.to_string()),
    );
    m.insert(
        "endTimeUnixNano".into(),
        Value::String(s.end_time_unix_nano.to_string()),
    );
    put_attrs(&mut m, &s.attributes);
    put_u32(&mut m, "droppedAttributesCount", s.dropped_attributes_count);
    if !s.events.is_empty() {
        let events = s
            .events
            .iter()
            .map(|e| {
                let mut em = Map::new();
                em.insert(
                    "timeUnixNano".into(),
                    Value::String(e.time_unix_nano.to_string()),
                );
                em.insert("name".into(), json!(e.name));
                put_attrs(&mut em, &e.attributes);
                put_u32(
                    &mut em,
                    "droppedAttributesCount",
                    e.dropped_attributes_count,
                );
                Value::Object(em)
            })
            .collect();
        m.insert("events".into(), Value::Array(events));
    }
    put_u32(&mut m, "droppedEventsCount", s.dropped_events_count);
    if !s.links.is_empty() {
        let links = s
            .links
            .iter()
            .map(|l| {
                let mut lm = Map::new();
                lm.insert("traceId".into(), Value::String(hex(&l.trace_id)));
                lm.insert("spanId".into(), Value::String(hex(&l.span_id)));
                if !l.trace_state.is_empty() {
                    lm.insert("traceState".into(), json!(l.trace_state));
                }
                put_attrs(&mut lm, &l.attributes);
                put_u32(
                    &mut lm,
                    "droppedAttributesCount",
                    l.dropped_attributes_count,
                );
                put_u32(&mut lm, "flags", l.flags);
                Value::Object(lm)
            })
            .collect();
        m.insert("links".into(), Value::Array(links));
    }
    put_u32(&mut m, "droppedLinksCount", s.dropped_links_count);
    let mut st = Map::new();
    if let Some(status) = &s.status {
        if !status.message.is_empty() {
            st.insert("message".into(), json!(status.message));
        }
        if status.code != 0 {
            st.insert("code".into(), json!(status.code));
        }
    }
    m.insert("status".into(), Value::Object(st));
    Value::Object(m)
}

fn put_u32(m: &mut Map<String, Value>, key: &str, v: u32) {
    if v != 0 {
        m.insert(key.into(), json!(v));
    }
}

fn put_attrs(m: &mut Map<String, Value>, attrs: &[proto::KeyValue]) {
    if !attrs.is_empty() {
        m.insert("attributes".into(), attrs_json(attrs));
    }
}

fn attrs_json(attrs: &[proto::KeyValue]) -> Value {
    Value::Array(
        attrs
            .iter()
            .map(|kv| json!({ "key": kv.key, "value": any_value_json(kv.value.as_ref()) }))
            .collect(),
    )
}

fn any_value_json(v: Option<&proto::AnyValue>) -> Value {
    let Some(v) = v.and_then(|v| v.value.as_ref()) else {
        return Value::Object(Map::new());
    };
    match v {
        any_value::Value::StringValue(s) => json!({ "stringValue": s }),
        any_value::Value::BoolValue(b) => json!({ "boolValue": b }),
        any_value::Value::IntValue(i) => json!({ "intValue": i.to_string() }),
        any_value::Value::DoubleValue(d) => {
            let d = if d.is_nan() {
                json!("NaN")
            } else if d.is_infinite() {
                json!(if *d > 0.0 { "Infinity" } else { "-Infinity" })
            } else {
                json!(d)
            };
            json!({ "doubleValue": d })
        }
        any_value::Value::BytesValue(b) => json!({ "bytesValue": b64(b) }),
        any_value::Value::ArrayValue(a) => {
            let values: Vec<Value> = a.values.iter().map(|v| any_value_json(Some(v))).collect();
            json!({ "arrayValue": { "values": values } })
        }
        any_value::Value::KvlistValue(l) => {
            json!({ "kvlistValue": { "values": attrs_json(&l.values) } })
        }
    }
}

/// serde helpers implementing the lenient OTLP/JSON decoding rules for [`crate::proto`].
pub(crate) mod de {
    use std::fmt;

    use base64::Engine;
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde::Deserialize;

    use crate::proto::{self, any_value};

    /// A repeated field; `null` is empty.
    pub fn seq<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }

    /// A string field; `null` is empty.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
    }

    /// A trace or span id in hex; `""` and `null` are empty.
    pub fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.unwrap_or_default();
        decode_hex(&s).ok_or_else(|| de::Error::custom(format_args!("invalid hex id {s:?}")))
    }

    fn decode_hex(s: &str) -> Option<Vec<u8>> {
        if s.len() % 2 != 0 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        s.as_bytes()
            .chunks_exact(2)
            .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
            .collect()
    }

    /// Which kind of number a [`Num`] visitor expects.
    #[derive(Clone, Copy)]
    enum Want {
        U32,
        U64,
        I64,
        F64,
    }

    /// A number read from a JSON number, a decimal string or `null` (zero).
    enum Num {
        U(u64),
        I(i64),
        F(f64),
    }

    struct NumVisitor(Want);

    impl NumVisitor {
        fn what(&self) -> &'static str {
            match self.0 {
                Want::U32 => "an unsigned 32-bit integer",
                Want::U64 => "an unsigned 64-bit integer",
                Want::I64 => "a signed 64-bit integer",
                Want::F64 => "a number",
            }
        }

        fn check<E: de::Error>(&self, n: Num) -> Result<Num, E> {
            let ok = match (self.0, &n) {
                (Want::F64, _) => true,
                (Want::U32, Num::U(u)) => *u <= u64::from(u32::MAX),
                (Want::U64, Num::U(_)) | (Want::I64, Num::I(_)) => true,
                (Want::I64, Num::U(u)) => i64::try_from(*u).is_ok(),
                _ => false,
            };
            if ok {
                Ok(n)
            } else {
                let shown = match n {
                    Num::U(u) => u.to_string(),
                    Num::I(i) => i.to_string(),
                    Num::F(f) => f.to_string(),
                };
                Err(E::custom(format_args!(
                    "number {shown} is not {}",
                    self.what()
                )))
            }
        }
    }

    impl<'de> Visitor<'de> for NumVisitor {
        type Value = Num;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as a number or a string", self.what())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
            self.check(Num::U(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
            if v >= 0 {
                self.check(Num::U(v.unsigned_abs()))
            } else {
                self.check(Num::I(v))
            }
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
            if matches!(self.0, Want::F64) {
                return Ok(Num::F(v));
            }
            // Integral floats such as 1e3 are allowed by the proto3 JSON mapping.
            if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                return self.visit_u64(v as u64);
            }
            if v.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
                return self.visit_i64(v as i64);
            }
            Err(E::custom(format_args!("number {v} is not {}", self.what())))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Num, E> {
            let bad = || E::custom(format_args!("string {s:?} is not {}", self.what()));
            match self.0 {
                Want::F64 => match s {
                    "NaN" => Ok(Num::F(f64::NAN)),
                    "Infinity" => Ok(Num::F(f64::INFINITY)),
                    "-Infinity" => Ok(Num::F(f64::NEG_INFINITY)),
                    _ => s.parse::<f64>().map(Num::F).map_err(|_| bad()),
                },
                _ => {
                    if let Ok(u) = s.parse::<u64>() {
                        self.visit_u64(u)
                    } else if let Ok(i) = s.parse::<i64>() {
                        self.visit_i64(i)
                    } else {
                        Err(bad())
                    }
                }
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
            Ok(Num::U(0))
        }

        fn visit_none<E: de::Error>(self) -> Result<Num, E> {
            Ok(Num::U(0))
        }
    }

    fn num<'de, D: Deserializer<'de>>(d: D, want: Want) -> Result<Num, D::Error> {
        d.deserialize_any(NumVisitor(want))
    }

    /// A `uint32`/`fixed32` field.
    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        match num(d, Want::U32)? {
            Num::U(u) => Ok(u32::try_from(u).unwrap_or(u32::MAX)),
            _ => Ok(0),
        }
    }

    /// A `fixed64` field.
    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match num(d, Want::U64)? {
            Num::U(u) => Ok(u),
            _ => Ok(0),
        }
    }

    fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match num(d, Want::I64)? {
            Num::U(u) => Ok(i64::try_from(u).unwrap_or(i64::MAX)),
            Num::I(i) => Ok(i),
            Num::F(_) => Ok(0),
        }
    }

    fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match num(d, Want::F64)? {
            Num::U(u) => Ok(u as f64),
            Num::I(i) => Ok(i as f64),
            Num::F(f) => Ok(f),
        }
    }

    /// An enum given as its number or its `.proto` name.
    fn enumeration<'de, D: Deserializer<'de>>(
        d: D,
        what: &'static str,
        by_name: fn(&str) -> Option<i32>,
    ) -> Result<i32, D::Error> {
        struct V(&'static str, fn(&str) -> Option<i32>);
        impl Visitor<'_> for V {
            type Value = i32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a {} number or name", self.0)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
                i32::try_from(v)
                    .map_err(|_| E::custom(format_args!("{} {v} is out of range", self.0)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
                i32::try_from(v)
                    .map_err(|_| E::custom(format_args!("{} {v} is out of range", self.0)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<i32, E> {
                (self.1)(s).ok_or_else(|| E::custom(format_args!("unknown {} {s:?}", self.0)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
                Ok(0)
            }
        }
        d.deserialize_any(V(what, by_name))
    }

    /// The span `kind` enum.
    pub fn span_kind<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        enumeration(d, "span kind", |s| {
            proto::SpanKind::from_str_name(s).map(|k| k as i32)
        })
    }

    /// The status `code` enum.
    pub fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        enumeration(d, "status code", |s| {
            proto::StatusCode::from_str_name(s).map(|k| k as i32)
        })
    }

    macro_rules! with {
        ($name:ident, $f:path, $t:ty) => {
            struct $name($t);
            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    $f(d).map($name)
                }
            }
        };
    }
    with!(I64, i64, i64);
    with!(F64, f64, f64);
    with!(Str, string, String);

    struct B64(Vec<u8>);
    impl<'de> Deserialize<'de> for B64 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.unwrap_or_default();
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(s.as_bytes()).ok())
                .map(B64)
                .ok_or_else(|| de::Error::custom(format_args!("invalid base64 bytes value {s:?}")))
        }
    }

    impl<'de> Deserialize<'de> for proto::AnyValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = proto::AnyValue;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an AnyValue object such as {\"stringValue\": \"x\"}")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<proto::AnyValue, A::Error> {
                    use any_value::Value as X;
                    let mut value = None;
                    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                        value = match key.as_ref() {
                            "stringValue" | "string_value" => {
                                Some(X::StringValue(map.next_value::<Str>()?.0))
                            }
                            "boolValue" | "bool_value" => Some(X::BoolValue(
                                map.next_value::<Option<bool>>()?.unwrap_or_default(),
                            )),
                            "intValue" | "int_value" => {
                                Some(X::IntValue(map.next_value::<I64>()?.0))
                            }
                            "doubleValue" | "double_value" => {
                                Some(X::DoubleValue(map.next_value::<F64>()?.0))
                            }
                            "bytesValue" | "bytes_value" => {
                                Some(X::BytesValue(map.next_value::<B64>()?.0))
                            }
                            "arrayValue" | "array_value" => Some(X::ArrayValue(
                                map.next_value::<Option<proto::ArrayValue>>()?
                                    .unwrap_or_default(),
                            )),
                            "kvlistValue" | "kvlist_value" => Some(X::KvlistValue(
                                map.next_value::<Option<proto::KeyValueList>>()?
                                    .unwrap_or_default(),
                            )),
                            _ => {
                                map.next_value::<IgnoredAny>()?;
                                value
                            }
                        };
                    }
                    Ok(proto::AnyValue { value })
                }
            }
            d.deserialize_map(V)
        }
    }
}
