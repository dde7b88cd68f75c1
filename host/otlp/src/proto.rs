//! Hand-written prost messages for OTLP traces (`opentelemetry.proto.*`) and the `google.rpc`
//! error-detail types, with the field numbers and wire types of the upstream `.proto` files.
//!
//! No protoc is available at build time, so these structs are written out by hand; each carries
//! the upstream message name in its doc line. The serde attributes implement the OTLP/JSON
//! decoding rules (see [`crate::json`]); encoding to JSON goes through [`crate::json`] instead.

use serde::Deserialize;

use crate::json::de;

/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    /// The spans, grouped by resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(alias = "resource_spans", deserialize_with = "de::seq")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    /// Set when part of the request was rejected.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// `opentelemetry.proto.collector.trace.v1.ExportTracePartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    /// Number of rejected spans.
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    /// Why they were rejected.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `opentelemetry.proto.trace.v1.TracesData` (same wire shape as the export request).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracesData {
    /// The spans, grouped by resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(alias = "resource_spans", deserialize_with = "de::seq")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `opentelemetry.proto.trace.v1.ResourceSpans`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceSpans {
    /// The producing resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Spans grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(alias = "scope_spans", deserialize_with = "de::seq")]
    pub scope_spans: Vec<ScopeSpans>,
    /// Schema URL of the resource.
    #[prost(string, tag = "3")]
    #[serde(alias = "schema_url", deserialize_with = "de::string")]
    pub schema_url: String,
}

/// `opentelemetry.proto.trace.v1.ScopeSpans`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeSpans {
    /// The instrumentation scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "de::seq")]
    pub spans: Vec<Span>,
    /// Schema URL of the spans.
    #[prost(string, tag = "3")]
    #[serde(alias = "schema_url", deserialize_with = "de::string")]
    pub schema_url: String,
}

/// `opentelemetry.proto.trace.v1.Span`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Span {
    /// 16-byte trace id.
    #[prost(bytes = "vec", tag = "1")]
    #[serde(alias = "trace_id", deserialize_with = "de::hex_id")]
    pub trace_id: Vec<u8>,
    /// 8-byte span id.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(alias = "span_id", deserialize_with = "de::hex_id")]
    pub span_id: Vec<u8>,
    /// W3C trace state.
    #[prost(string, tag = "3")]
    #[serde(alias = "trace_state", deserialize_with = "de::string")]
    pub trace_state: String,
    /// Parent span id: empty for a root span, else 8 bytes.
    #[prost(bytes = "vec", tag = "4")]
    #[serde(alias = "parent_span_id", deserialize_with = "de::hex_id")]
    pub parent_span_id: Vec<u8>,
    /// W3C trace flags in the low 8 bits.
    #[prost(fixed32, tag = "16")]
    #[serde(deserialize_with = "de::u32")]
    pub flags: u32,
    /// Operation name.
    #[prost(string, tag = "5")]
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// [`SpanKind`] number.
    #[prost(enumeration = "SpanKind", tag = "6")]
    #[serde(deserialize_with = "de::span_kind")]
    pub kind: i32,
    /// Start, nanoseconds since the epoch.
    #[prost(fixed64, tag = "7")]
    #[serde(alias = "start_time_unix_nano", deserialize_with = "de::u64")]
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the epoch.
    #[prost(fixed64, tag = "8")]
    #[serde(alias = "end_time_unix_nano", deserialize_with = "de::u64")]
    pub end_time_unix_nano: u64,
    /// Span attributes.
    #[prost(message, repeated, tag = "9")]
    #[serde(deserialize_with = "de::seq")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    #[prost(uint32, tag = "10")]
    #[serde(alias = "dropped_attributes_count", deserialize_with = "de::u32")]
    pub dropped_attributes_count: u32,
    /// Events.
    #[prost(message, repeated, tag = "11")]
    #[serde(deserialize_with = "de::seq")]
    pub events: Vec<span::Event>,
    /// Events the sender dropped.
    #[prost(uint32, tag = "12")]
    #[serde(alias = "dropped_events_count", deserialize_with = "de::u32")]
    pub dropped_events_count: u32,
    /// Links.
    #[prost(message, repeated, tag = "13")]
    #[serde(deserialize_with = "de::seq")]
    pub links: Vec<span::Link>,
    /// Links the sender dropped.
    #[prost(uint32, tag = "14")]
    #[serde(alias = "dropped_links_count", deserialize_with = "de::u32")]
    pub dropped_links_count: u32,
    /// Status; absent means unset.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

/// Nested messages of [`Span`].
pub mod span {
    use serde::Deserialize;

    use super::KeyValue;
    use crate::json::de;

    /// `opentelemetry.proto.trace.v1.Span.Event`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Event {
        /// When it happened.
        #[prost(fixed64, tag = "1")]
        #[serde(alias = "time_unix_nano", deserialize_with = "de::u64")]
        pub time_unix_nano: u64,
        /// Event name.
        #[prost(string, tag = "2")]
        #[serde(deserialize_with = "de::string")]
        pub name: String,
        /// Event attributes.
        #[prost(message, repeated, tag = "3")]
        #[serde(deserialize_with = "de::seq")]
        pub attributes: Vec<KeyValue>,
        /// Attributes the sender dropped.
        #[prost(uint32, tag = "4")]
        #[serde(alias = "dropped_attributes_count", deserialize_with = "de::u32")]
        pub dropped_attributes_count: u32,
    }

    /// `opentelemetry.proto.trace.v1.Span.Link`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Link {
        /// 16-byte trace id of the linked span.
        #[prost(bytes = "vec", tag = "1")]
        #[serde(alias = "trace_id", deserialize_with = "de::hex_id")]
        pub trace_id: Vec<u8>,
        /// 8-byte id of the linked span.
        #[prost(bytes = "vec", tag = "2")]
        #[serde(alias = "span_id", deserialize_with = "de::hex_id")]
        pub span_id: Vec<u8>,
        /// W3C trace state of the linked span.
        #[prost(string, tag = "3")]
        #[serde(alias = "trace_state", deserialize_with = "de::string")]
        pub trace_state: String,
        /// Link attributes.
        #[prost(message, repeated, tag = "4")]
        #[serde(deserialize_with = "de::seq")]
        pub attributes: Vec<KeyValue>,
        /// Attributes the sender dropped.
        #[prost(uint32, tag = "5")]
        #[serde(alias = "dropped_attributes_count", deserialize_with = "de::u32")]
        pub dropped_attributes_count: u32,
        /// W3C trace flags of the linked span.
        #[prost(fixed32, tag = "6")]
        #[serde(deserialize_with = "de::u32")]
        pub flags: u32,
    }
}

/// `opentelemetry.proto.trace.v1.Span.SpanKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED`.
    Unspecified = 0,
    /// `SPAN_KIND_INTERNAL`.
    Internal = 1,
    /// `SPAN_KIND_SERVER`.
    Server = 2,
    /// `SPAN_KIND_CLIENT`.
    Client = 3,
    /// `SPAN_KIND_PRODUCER`.
    Producer = 4,
    /// `SPAN_KIND_CONSUMER`.
    Consumer = 5,
}

impl SpanKind {
    /// The enum value name used in the `.proto` file (and accepted in OTLP/JSON).
    pub fn as_str_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// Parses a `.proto` enum value name.
    pub fn from_str_name(s: &str) -> Option<Self> {
        [
            SpanKind::Unspecified,
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ]
        .into_iter()
        .find(|k| k.as_str_name() == s)
    }
}

/// `opentelemetry.proto.trace.v1.Status`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    #[serde(deserialize_with = "de::string")]
    pub message: String,
    /// [`StatusCode`] number.
    #[prost(enumeration = "StatusCode", tag = "3")]
    #[serde(deserialize_with = "de::status_code")]
    pub code: i32,
}

/// `opentelemetry.proto.trace.v1.Status.StatusCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET`.
    Unset = 0,
    /// `STATUS_CODE_OK`.
    Ok = 1,
    /// `STATUS_CODE_ERROR`.
    Error = 2,
}

impl StatusCode {
    /// The enum value name used in the `.proto` file (and accepted in OTLP/JSON).
    pub fn as_str_name(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    /// Parses a `.proto` enum value name.
    pub fn from_str_name(s: &str) -> Option<Self> {
        [StatusCode::Unset, StatusCode::Ok, StatusCode::Error]
            .into_iter()
            .find(|c| c.as_str_name() == s)
    }
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resource {
    /// Resource attributes, `service.name` among them.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "de::seq")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    #[prost(uint32, tag = "2")]
    #[serde(alias = "dropped_attributes_count", deserialize_with = "de::u32")]
    pub dropped_attributes_count: u32,
}

/// `opentelemetry.proto.common.v1.InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstrumentationScope {
    /// Library name.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// Library version.
    #[prost(string, tag = "2")]
    #[serde(deserialize_with = "de::string")]
    pub version: String,
    /// Scope attributes.
    #[prost(message, repeated, tag = "3")]
    #[serde(deserialize_with = "de::seq")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    #[prost(uint32, tag = "4")]
    #[serde(alias = "dropped_attributes_count", deserialize_with = "de::u32")]
    pub dropped_attributes_count: u32,
}

/// `opentelemetry.proto.common.v1.KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// Attribute key.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "de::string")]
    pub key: String,
    /// Attribute value; absent means empty.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `opentelemetry.proto.common.v1.AnyValue`. Its JSON form (`{"stringValue": "x"}`, …) is
/// read by a hand-written `Deserialize` in [`crate::json`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; `None` is the empty value.
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

/// The oneof of [`AnyValue`].
pub mod any_value {
    /// `opentelemetry.proto.common.v1.AnyValue.value`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string_value`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `bool_value`.
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        /// `int_value`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
        /// `double_value`.
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        /// `array_value`.
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        /// `kvlist_value`.
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        /// `bytes_value`.
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// `opentelemetry.proto.common.v1.ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct ArrayValue {
    /// The elements.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "de::seq")]
    pub values: Vec<AnyValue>,
}

/// `opentelemetry.proto.common.v1.KeyValueList`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct KeyValueList {
    /// The entries, in order.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "de::seq")]
    pub values: Vec<KeyValue>,
}

/// `google.rpc.Status`: the error body of OTLP/HTTP and the details of a gRPC status.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` number.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details such as [`RetryInfo`].
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how long a throttled client should wait.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<Duration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanosecond part, `0..1_000_000_000`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Type URL of [`RetryInfo`] inside an [`Any`].
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Code` numbers used by the receivers.
pub mod rpc_code {
    /// `INVALID_ARGUMENT`.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// `RESOURCE_EXHAUSTED`.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// `UNAVAILABLE`.
    pub const UNAVAILABLE: i32 = 14;
}

impl RpcStatus {
    /// A status with a [`RetryInfo`] detail when `retry_after` is given.
    pub fn new(
        code: i32,
        message: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        let details = retry_after
            .map(|d| {
                let info = RetryInfo {
                    retry_delay: Some(Duration {
                        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
                    }),
                };
                Any {
                    type_url: RETRY_INFO_TYPE_URL.to_string(),
                    value: prost::Message::encode_to_vec(&info),
                }
            })
            .into_iter()
            .collect();
        RpcStatus {
            code,
            message: message.into(),
            details,
        }
    }
}
