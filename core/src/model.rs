//! The span model: the one representation of a span that every receiver produces, every store
//! keeps and every analysis reads.
//!
//! **API boundary.** Plugins receive these types postcard-encoded and the storage block format
//! is derived from them, so a change here is a versioned change ([`MODEL_VERSION`]).
//!
//! Conventions:
//! - times are nanoseconds since the Unix epoch (`u64`), durations nanoseconds (`i64`, so that a
//!   receiver can hand over an end-before-start span and validation can report it; a validated
//!   span always has `duration_nanos >= 0`);
//! - the resource and the instrumentation scope are shared between the spans of a batch through
//!   [`Arc`], so cloning a span does not copy them;
//! - the service name is a field of the [`Resource`], never one of its attributes.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

/// Version of the span model. Bumped on any change that alters the postcard encoding.
pub const MODEL_VERSION: u32 = 1;

/// Service name given to spans whose resource has none, as the OpenTelemetry SDKs do.
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";

/// A 128-bit trace id. The numeric value is the big-endian reading of the 16 wire bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct TraceId(pub u128);

/// A 64-bit span id. The numeric value is the big-endian reading of the 8 wire bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct SpanId(pub u64);

/// Why a hex id could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdParseError {
    /// The string was empty or longer than the id allows.
    Length,
    /// The string held a character that is not a hex digit.
    Digit,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdParseError::Length => f.write_str("id has the wrong length"),
            IdParseError::Digit => f.write_str("id is not hexadecimal"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdParseError {}

fn parse_hex_u128(s: &str, max_len: usize) -> Result<u128, IdParseError> {
    if s.is_empty() || s.len() > max_len {
        return Err(IdParseError::Length);
    }
    let mut v: u128 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(IdParseError::Digit),
        };
        v = (v << 4) | u128::from(d);
    }
    Ok(v)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long).
fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

impl TraceId {
    /// The invalid all-zero id.
    pub const ZERO: TraceId = TraceId(0);

    /// From the 16 wire bytes (big-endian).
    pub fn from_bytes(b: [u8; 16]) -> Self {
        TraceId(u128::from_be_bytes(b))
    }

    /// From a slice that must be exactly 16 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(b).ok().map(Self::from_bytes)
    }

    /// From Jaeger's pair of 64-bit halves.
    pub fn from_high_low(high: u64, low: u64) -> Self {
        TraceId((u128::from(high) << 64) | u128::from(low))
    }

    /// The 16 wire bytes (big-endian).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The high 64 bits (zero for a 64-bit Jaeger or Zipkin id).
    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The low 64 bits.
    pub fn low(self) -> u64 {
        self.0 as u64
    }

    /// Whether this is the invalid all-zero id.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses 1 to 32 hex digits; shorter strings are left-padded with zeros, as Jaeger does.
    pub fn parse_hex(s: &str) -> Result<Self, IdParseError> {
        parse_hex_u128(s, 32).map(TraceId)
    }

    /// The id as 32 lowercase hex digits.
    pub fn to_hex(self) -> HexId<32> {
        let mut out = [0u8; 32];
        write_hex(&self.to_bytes(), &mut out);
        HexId(out)
    }
}

impl SpanId {
    /// The invalid all-zero id.
    pub const ZERO: SpanId = SpanId(0);

    /// From the 8 wire bytes (big-endian).
    pub fn from_bytes(b: [u8; 8]) -> Self {
        SpanId(u64::from_be_bytes(b))
    }

    /// From a slice that must be exactly 8 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 8]>::try_from(b).ok().map(Self::from_bytes)
    }

    /// The 8 wire bytes (big-endian).
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Whether this is the invalid all-zero id.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses 1 to 16 hex digits, left-padded with zeros.
    pub fn parse_hex(s: &str) -> Result<Self, IdParseError> {
        parse_hex_u128(s, 16).map(|v| SpanId(v as u64))
    }

    /// The id as 16 lowercase hex digits.
    pub fn to_hex(self) -> HexId<16> {
        let mut out = [0u8; 16];
        write_hex(&self.to_bytes(), &mut out);
        HexId(out)
    }
}

/// A fixed-size lowercase hex rendering of an id, without allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexId<const N: usize>([u8; N]);

impl<const N: usize> HexId<N> {
    /// The hex digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl<const N: usize> fmt::Display for HexId<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for HexId<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

/// The role of a span in a request, numbered as in OTLP.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[repr(u8)]
pub enum SpanKind {
    /// Not given by the instrumentation.
    #[default]
    Unspecified = 0,
    /// An internal operation.
    Internal = 1,
    /// The server side of a synchronous call.
    Server = 2,
    /// The client side of a synchronous call.
    Client = 3,
    /// The sender of an asynchronous message.
    Producer = 4,
    /// The receiver of an asynchronous message.
    Consumer = 5,
}

impl SpanKind {
    /// All kinds, in wire order.
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// From the OTLP enum number; unknown numbers become `Unspecified`.
    pub fn from_otlp(v: i32) -> Self {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The OTLP enum number.
    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    /// The lowercase name Jaeger uses in `span.kind` tags and the `spanKind` query parameter
    /// (`""` for unspecified).
    pub fn as_jaeger_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses a Jaeger kind name (case-insensitive); `""` and `"unspecified"` give `Unspecified`.
    pub fn from_jaeger_str(s: &str) -> Option<Self> {
        let k = match () {
            _ if s.is_empty() || s.eq_ignore_ascii_case("unspecified") => SpanKind::Unspecified,
            _ if s.eq_ignore_ascii_case("internal") => SpanKind::Internal,
            _ if s.eq_ignore_ascii_case("server") => SpanKind::Server,
            _ if s.eq_ignore_ascii_case("client") => SpanKind::Client,
            _ if s.eq_ignore_ascii_case("producer") => SpanKind::Producer,
            _ if s.eq_ignore_ascii_case("consumer") => SpanKind::Consumer,
            _ => return None,
        };
        Some(k)
    }
}

/// Span status code, numbered as in OTLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[repr(u8)]
pub enum StatusCode {
    /// The default: no status was set.
    #[default]
    Unset = 0,
    /// Explicitly successful.
    Ok = 1,
    /// The operation failed.
    Error = 2,
}

impl StatusCode {
    /// From the OTLP enum number; unknown numbers become `Unset`.
    pub fn from_otlp(v: i32) -> Self {
        match v {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// A span's status.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    /// The code.
    pub code: StatusCode,
    /// A developer-facing message; only meaningful with [`StatusCode::Error`].
    pub message: String,
}

/// A typed attribute value, as OTLP's `AnyValue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AnyValue {
    /// UTF-8 text.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<AnyValue>),
    /// A nested map, kept in order.
    Map(Vec<KeyValue>),
}

impl Default for AnyValue {
    fn default() -> Self {
        AnyValue::Str(String::new())
    }
}

impl AnyValue {
    /// The string value, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AnyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value equals `text` in the textual form tag search uses (Jaeger's
    /// `AsString`: decimal integers, `true`/`false`, lowercase hex for bytes). Arrays and maps
    /// compare as their JSON rendering is not defined here, so they never match.
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            AnyValue::Str(s) => s == text,
            AnyValue::Bool(b) => text == if *b { "true" } else { "false" },
            AnyValue::Int(i) => {
                let mut buf = itoa_buf();
                write_i64(*i, &mut buf) == text
            }
            AnyValue::Double(d) => text.parse::<f64>().map(|t| t == *d).unwrap_or(false),
            AnyValue::Bytes(b) => {
                text.len() == b.len() * 2
                    && b.iter().enumerate().all(|(i, byte)| {
                        let hi = HEX[usize::from(byte >> 4)];
                        let lo = HEX[usize::from(byte & 0xf)];
                        let t = text.as_bytes();
                        t[2 * i].eq_ignore_ascii_case(&hi) && t[2 * i + 1].eq_ignore_ascii_case(&lo)
                    })
            }
            AnyValue::Array(_) | AnyValue::Map(_) => false,
        }
    }

    /// Heap bytes this value owns (not counting its own inline size), including allocator
    /// overhead: used to bound queues in real memory.
    pub fn approx_size(&self) -> usize {
        match self {
            AnyValue::Str(s) => heap_bytes(s.len()),
            AnyValue::Bytes(b) => heap_bytes(b.len()),
            AnyValue::Array(a) => {
                heap_bytes(core::mem::size_of_val(a.as_slice()))
                    + a.iter().map(AnyValue::approx_size).sum::<usize>()
            }
            AnyValue::Map(m) => attrs_heap_bytes(m),
            _ => 0,
        }
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Renders `v` in decimal into `buf`, returning the written text.
fn write_i64(v: i64, buf: &mut [u8; 20]) -> &str {
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("")
}

/// An attribute: a key and a typed value.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct KeyValue {
    /// The attribute key.
    pub key: String,
    /// The attribute value.
    pub value: AnyValue,
}

impl KeyValue {
    /// A key/value pair.
    pub fn new(key: impl Into<String>, value: AnyValue) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    /// A key with a string value.
    pub fn string(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.into(),
            value: AnyValue::Str(value.into()),
        }
    }

    /// Heap bytes this attribute owns (its key and value), including allocator overhead.
    pub fn approx_size(&self) -> usize {
        heap_bytes(self.key.len()) + self.value.approx_size()
    }
}

/// What an allocation of `len` bytes costs: nothing when empty, else the bytes rounded up to
/// the allocator's 16-byte granularity plus 8 bytes of bookkeeping (a fair average for
/// mimalloc's and glibc's small size classes).
fn heap_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.div_ceil(16) * 16 + 8
    }
}

/// Heap bytes of an attribute list: the vector's slots plus what each attribute owns.
fn attrs_heap_bytes(attrs: &[KeyValue]) -> usize {
    heap_bytes(core::mem::size_of_val(attrs))
        + attrs.iter().map(KeyValue::approx_size).sum::<usize>()
}

/// Finds an attribute by key (first match).
pub fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// A timestamped event within a span (Jaeger calls these logs).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, nanoseconds since the epoch.
    pub time_unix_nanos: u64,
    /// The event name.
    pub name: String,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// A link from a span to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Link {
    /// The linked span's trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// W3C trace state of the linked span.
    pub trace_state: String,
    /// Link attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// W3C trace flags of the linked span.
    pub flags: u32,
}

/// What produced a span: the service and its attributes (host, SDK, …).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Resource {
    /// The `service.name` attribute, lifted out because every query needs it.
    pub service_name: String,
    /// All other resource attributes, in the order received.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// The instrumentation library that produced a span.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Scope {
    /// Library name (may be empty).
    pub name: String,
    /// Library version (may be empty).
    pub version: String,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// One span.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Span {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id, unique within the trace.
    pub span_id: SpanId,
    /// The parent span, `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: String,
    /// W3C trace flags (bit 0: sampled) plus OTLP's extra flag bits.
    pub flags: u32,
    /// The operation name.
    pub name: String,
    /// The span kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the epoch.
    pub start_unix_nanos: u64,
    /// Duration in nanoseconds (non-negative once validated).
    pub duration_nanos: i64,
    /// Status.
    pub status: Status,
    /// Span attributes.
    pub attributes: Vec<KeyValue>,
    /// Events (Jaeger logs).
    pub events: Vec<Event>,
    /// Links (Jaeger FOLLOWS_FROM references and extra parents).
    pub links: Vec<Link>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Events the sender dropped.
    pub dropped_events_count: u32,
    /// Links the sender dropped.
    pub dropped_links_count: u32,
    /// The producing service and its attributes, shared between the spans of a batch.
    pub resource: Arc<Resource>,
    /// The instrumentation scope, shared between the spans of a batch.
    pub scope: Arc<Scope>,
    /// Notes added by Spoor while processing the span (truncations, clock-skew adjustments),
    /// shown by the UI as Jaeger shows its span warnings.
    pub warnings: Vec<String>,
}

impl Span {
    /// The producing service's name.
    pub fn service(&self) -> &str {
        &self.resource.service_name
    }

    /// End time, nanoseconds since the epoch (start for a negative duration).
    pub fn end_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
            .saturating_add(self.duration_nanos.max(0) as u64)
    }

    /// Whether the span failed: status `Error`, or a Jaeger-style `error=true` tag.
    pub fn is_error(&self) -> bool {
        // One pass over the attributes (this runs for every span in RED span metrics).
        self.status.code == StatusCode::Error
            || match find_attr(&self.attributes, "error") {
                Some(AnyValue::Bool(b)) => *b,
                Some(AnyValue::Str(s)) => s == "true",
                _ => false,
            }
    }

    /// Memory this span occupies in bytes (its inline size plus everything it owns on the heap,
    /// with allocator overhead), for queue bounds and batch byte limits. The shared resource
    /// and scope are not counted: they belong to the batch.
    pub fn approx_size(&self) -> usize {
        core::mem::size_of::<Span>()
            + heap_bytes(self.name.len())
            + heap_bytes(self.trace_state.len())
            + heap_bytes(self.status.message.len())
            + attrs_heap_bytes(&self.attributes)
            + heap_bytes(core::mem::size_of_val(self.events.as_slice()))
            + self
                .events
                .iter()
                .map(|e| heap_bytes(e.name.len()) + attrs_heap_bytes(&e.attributes))
                .sum::<usize>()
            + heap_bytes(core::mem::size_of_val(self.links.as_slice()))
            + self
                .links
                .iter()
                .map(|l| heap_bytes(l.trace_state.len()) + attrs_heap_bytes(&l.attributes))
                .sum::<usize>()
            + heap_bytes(core::mem::size_of_val(self.warnings.as_slice()))
            + self
                .warnings
                .iter()
                .map(|w| heap_bytes(w.len()))
                .sum::<usize>()
    }
}

/// All stored spans of one trace.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    /// The trace id.
    pub trace_id: TraceId,
    /// Its spans, in no particular order unless a function says otherwise.
    pub spans: Vec<Span>,
}

impl Trace {
    /// Earliest span start, or 0 for an empty trace.
    pub fn start_unix_nanos(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.start_unix_nanos)
            .min()
            .unwrap_or(0)
    }

    /// Latest span end minus earliest span start.
    pub fn duration_nanos(&self) -> u64 {
        let end = self
            .spans
            .iter()
            .map(Span::end_unix_nanos)
            .max()
            .unwrap_or(0);
        end.saturating_sub(self.start_unix_nanos())
    }

    /// The root span: the span without a parent (the earliest if several), else the earliest.
    pub fn root(&self) -> Option<&Span> {
        self.spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .min_by_key(|s| s.start_unix_nanos)
            .or_else(|| self.spans.iter().min_by_key(|s| s.start_unix_nanos))
    }
}

/// An operation of a service, as listed by the query API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Operation {
    /// Operation (span) name.
    pub name: String,
    /// The span kind it was seen with.
    pub span_kind: SpanKind,
}

/// Calls from one service to another, as counted from parent/child spans.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DependencyLink {
    /// The calling (parent span's) service.
    pub parent: String,
    /// The called (child span's) service.
    pub child: String,
    /// Number of parent → child span pairs.
    pub call_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_padding() {
        let t = TraceId::parse_hex("00000000000000000000000000000abc").unwrap();
        assert_eq!(t, TraceId::parse_hex("abc").unwrap());
        assert_eq!(t.to_hex().as_str(), "00000000000000000000000000000abc");
        assert_eq!(t.low(), 0xabc);
        assert_eq!(t.high(), 0);
        let s = SpanId::parse_hex("00F067AA0BA902B7").unwrap();
        assert_eq!(s.to_hex().as_str(), "00f067aa0ba902b7");
        assert_eq!(SpanId::parse_hex(""), Err(IdParseError::Length));
        assert_eq!(
            SpanId::parse_hex("12345678901234567"),
            Err(IdParseError::Length)
        );
        assert_eq!(TraceId::parse_hex("xyz"), Err(IdParseError::Digit));
        let hl = TraceId::from_high_low(1, 2);
        assert_eq!(hl.to_hex().as_str(), "00000000000000010000000000000002");
        assert_eq!(TraceId::from_bytes(hl.to_bytes()), hl);
    }

    #[test]
    fn matches_text_like_jaeger() {
        assert!(AnyValue::Int(-42).matches_text("-42"));
        assert!(AnyValue::Int(i64::MIN).matches_text("-9223372036854775808"));
        assert!(!AnyValue::Int(42).matches_text("42.0"));
        assert!(AnyValue::Bool(true).matches_text("true"));
        assert!(AnyValue::Double(1.5).matches_text("1.5"));
        assert!(AnyValue::Bytes(alloc::vec![0xde, 0xad]).matches_text("DEAD"));
        assert!(!AnyValue::Bytes(alloc::vec![0xde, 0xad]).matches_text("dea"));
        assert!(AnyValue::Str("x".into()).matches_text("x"));
    }

    #[test]
    fn approx_size_counts_heap_with_overhead() {
        let bare = Span::default();
        assert_eq!(bare.approx_size(), core::mem::size_of::<Span>());
        let mut s = Span {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(s.approx_size(), core::mem::size_of::<Span>() + 24);
        s.attributes = alloc::vec![KeyValue::string("k", "0123456789abcdef0")];
        // slot (56 -> 64 + 8) + key (1 -> 16 + 8) + value (17 -> 32 + 8)
        let kv = core::mem::size_of::<KeyValue>().div_ceil(16) * 16 + 8;
        assert_eq!(
            s.approx_size(),
            core::mem::size_of::<Span>() + 24 + kv + 24 + 40
        );
    }

    #[test]
    fn postcard_round_trip() {
        let span = Span {
            trace_id: TraceId(7),
            span_id: SpanId(9),
            name: "GET /".into(),
            attributes: alloc::vec![KeyValue::new("n", AnyValue::Int(3))],
            resource: Arc::new(Resource {
                service_name: "svc".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = postcard::to_allocvec(&span).unwrap();
        let back: Span = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, span);
    }
}
