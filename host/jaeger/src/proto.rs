//! Jaeger's `api_v2` protobuf messages (`model.proto`, `collector.proto`), written out by hand
//! with the exact field numbers. `trace_id` / `span_id` are the gogoproto custom types: raw
//! big-endian bytes, 16 and 8 long.

#![allow(missing_docs)]

/// The gRPC service name of the collector.
pub const COLLECTOR_SERVICE: &str = "jaeger.api_v2.CollectorService";
/// The full path of `PostSpans`.
pub const POST_SPANS_PATH: &str = "/jaeger.api_v2.CollectorService/PostSpans";

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `ValueType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum ValueType {
    String = 0,
    Bool = 1,
    Int64 = 2,
    Float64 = 3,
    Binary = 4,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(enumeration = "ValueType", tag = "2")]
    pub v_type: i32,
    #[prost(string, tag = "3")]
    pub v_str: String,
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    #[prost(bytes = "vec", tag = "7")]
    pub v_binary: Vec<u8>,
}

/// `Log`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Log {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}

/// `SpanRefType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SpanRefType {
    ChildOf = 0,
    FollowsFrom = 1,
}

/// `SpanRef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SpanRef {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(enumeration = "SpanRefType", tag = "3")]
    pub ref_type: i32,
}

/// `Process`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Process {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<KeyValue>,
}

/// `Span`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub operation_name: String,
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<SpanRef>,
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub duration: Option<Duration>,
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<KeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<Log>,
    #[prost(message, optional, tag = "10")]
    pub process: Option<Process>,
    #[prost(string, tag = "11")]
    pub process_id: String,
    #[prost(string, repeated, tag = "12")]
    pub warnings: Vec<String>,
}

/// `Batch`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Batch {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    #[prost(message, optional, tag = "2")]
    pub process: Option<Process>,
}

/// `PostSpansRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PostSpansRequest {
    #[prost(message, optional, tag = "1")]
    pub batch: Option<Batch>,
}

/// `PostSpansResponse` (empty).
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct PostSpansResponse {}

impl KeyValue {
    /// A string value.
    pub fn string(key: &str, v: &str) -> Self {
        KeyValue {
            key: key.into(),
            v_type: ValueType::String as i32,
            v_str: v.into(),
            ..Default::default()
        }
    }

    /// A bool value.
    pub fn bool(key: &str, v: bool) -> Self {
        KeyValue {
            key: key.into(),
            v_type: ValueType::Bool as i32,
            v_bool: v,
            ..Default::default()
        }
    }

    /// An int64 value.
    pub fn int64(key: &str, v: i64) -> Self {
        KeyValue {
            key: key.into(),
            v_type: ValueType::Int64 as i32,
            v_int64: v,
            ..Default::default()
        }
    }

    /// A float64 value.
    pub fn float64(key: &str, v: f64) -> Self {
        KeyValue {
            key: key.into(),
            v_type: ValueType::Float64 as i32,
            v_float64: v,
            ..Default::default()
        }
    }

    /// A binary value.
    pub fn binary(key: &str, v: &[u8]) -> Self {
        KeyValue {
            key: key.into(),
            v_type: ValueType::Binary as i32,
            v_binary: v.to_vec(),
            ..Default::default()
        }
    }
}

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub fn from_nanos(n: u64) -> Self {
        Timestamp {
            seconds: (n / 1_000_000_000) as i64,
            nanos: (n % 1_000_000_000) as i32,
        }
    }
}

impl Duration {
    /// From nanoseconds.
    pub fn from_nanos(n: i64) -> Self {
        Duration {
            seconds: n / 1_000_000_000,
            nanos: (n % 1_000_000_000) as i32,
        }
    }
}
