//! The Zipkin v2 span model, the common form of every wire format: v2 JSON and proto3 decode
//! straight into it, v1 JSON spans are converted into it (one v1 span may become a client and a
//! shared server span), and the encoders write it back out.

use spoor_core::{AnyValue, SpanId, TraceId};

/// Zipkin's span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The client side of an RPC.
    Client,
    /// The server side of an RPC.
    Server,
    /// The sender of a message.
    Producer,
    /// The receiver of a message.
    Consumer,
}

impl Kind {
    /// The JSON spelling (`CLIENT`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "CLIENT",
            Kind::Server => "SERVER",
            Kind::Producer => "PRODUCER",
            Kind::Consumer => "CONSUMER",
        }
    }

    /// Parses the JSON spelling (case-insensitive, as Zipkin's reader).
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Client, Kind::Server, Kind::Producer, Kind::Consumer]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The `zipkin.proto3.Span.Kind` number.
    pub fn to_proto(self) -> i32 {
        match self {
            Kind::Client => 1,
            Kind::Server => 2,
            Kind::Producer => 3,
            Kind::Consumer => 4,
        }
    }

    /// From the proto number; 0 and unknown numbers are no kind.
    pub fn from_proto(v: i32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Client),
            2 => Some(Kind::Server),
            3 => Some(Kind::Producer),
            4 => Some(Kind::Consumer),
            _ => None,
        }
    }
}

/// A network endpoint: the service and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// Service name (empty when not given).
    pub service_name: String,
    /// IPv4 address in dotted form, as sent.
    pub ipv4: Option<String>,
    /// IPv6 address in text form, as sent.
    pub ipv6: Option<String>,
    /// Port, 0 when not given.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint with only a service name.
    pub fn service(name: impl Into<String>) -> Endpoint {
        Endpoint {
            service_name: name.into(),
            ..Default::default()
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.service_name.is_empty() && self.ipv4.is_none() && self.ipv6.is_none() && self.port == 0
    }
}

/// A timestamped note on a span.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Annotation {
    /// Microseconds since the epoch.
    pub timestamp_us: u64,
    /// The note.
    pub value: String,
}

/// One Zipkin v2 span.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ZipkinSpan {
    /// Trace id; 64-bit ids have the high half zero.
    pub trace_id: TraceId,
    /// Whether the id was sent as 128 bits (32 hex digits / 16 bytes).
    pub trace_id_128: bool,
    /// The parent, `None` for a root span.
    pub parent_id: Option<SpanId>,
    /// This span's id.
    pub id: SpanId,
    /// The kind, `None` for a local span.
    pub kind: Option<Kind>,
    /// Operation name.
    pub name: String,
    /// Start in microseconds since the epoch (`None` when not sent).
    pub timestamp_us: Option<u64>,
    /// Duration in microseconds (`None` when not sent).
    pub duration_us: Option<u64>,
    /// The service that recorded the span.
    pub local_endpoint: Option<Endpoint>,
    /// The other side of an RPC or message.
    pub remote_endpoint: Option<Endpoint>,
    /// Timestamped notes.
    pub annotations: Vec<Annotation>,
    /// Tags in wire order. v2 tags are always strings; v1 binary annotations keep their type.
    pub tags: Vec<(String, AnyValue)>,
    /// Whether the span was force-sampled (`X-B3-Flags: 1`).
    pub debug: bool,
    /// Whether the span shares its id with the client span of the same RPC (B3 joined spans).
    pub shared: bool,
}

impl ZipkinSpan {
    /// The service name of the local endpoint, `""` when none.
    pub fn service(&self) -> &str {
        self.local_endpoint
            .as_ref()
            .map(|e| e.service_name.as_str())
            .unwrap_or("")
    }
}

/// A tag value in the text form Zipkin v2 uses for every tag.
pub fn tag_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Str(s) => s.clone(),
        AnyValue::Bool(b) => b.to_string(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        AnyValue::Array(_) | AnyValue::Map(_) => to_json(v).to_string(),
    }
}

/// A value as plain JSON (bytes as lowercase hex).
fn to_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AnyValue::Str(s) => J::String(s.clone()),
        AnyValue::Bool(b) => J::Bool(*b),
        AnyValue::Int(i) => J::from(*i),
        AnyValue::Double(d) => J::from(*d),
        AnyValue::Bytes(_) => J::String(tag_text(v)),
        AnyValue::Array(items) => J::Array(items.iter().map(to_json).collect()),
        AnyValue::Map(kvs) => J::Object(
            kvs.iter()
                .map(|kv| (kv.key.clone(), to_json(&kv.value)))
                .collect(),
        ),
    }
}
