//! `zipkin.proto` (package `zipkin.proto3`) as hand-written prost messages, field numbers as in
//! openzipkin/zipkin-api, and their conversion to and from [`ZipkinSpan`].

use std::net::{Ipv4Addr, Ipv6Addr};

use spoor_core::{AnyValue, SpanId, TraceId};

use crate::model::{tag_text, Annotation, Endpoint, Kind, ZipkinSpan};

/// `message ListOfSpans`: the body of `POST /api/v2/spans` with `application/x-protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOfSpans {
    /// The spans.
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

/// `message Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 8 or 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// Empty or 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// `Span.Kind`: 0 unspecified, 1 client, 2 server, 3 producer, 4 consumer.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    /// Operation name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// Start, microseconds since the epoch (0: not sent).
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Duration in microseconds (0: not sent).
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    /// The recording service.
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<ProtoEndpoint>,
    /// The other side.
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<ProtoEndpoint>,
    /// Timestamped notes.
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<ProtoAnnotation>,
    /// `map<string, string> tags`.
    #[prost(map = "string, string", tag = "11")]
    pub tags: std::collections::HashMap<String, String>,
    /// Force-sampled.
    #[prost(bool, tag = "12")]
    pub debug: bool,
    /// Shares its id with the client span.
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

/// `message Endpoint`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoEndpoint {
    /// Service name.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// 4 bytes, or empty.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// 16 bytes, or empty.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    /// Port, 0 when not given.
    #[prost(int32, tag = "4")]
    pub port: i32,
}

/// `message Annotation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAnnotation {
    /// Microseconds since the epoch.
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    /// The note.
    #[prost(string, tag = "2")]
    pub value: String,
}

fn endpoint(e: ProtoEndpoint) -> Result<Endpoint, String> {
    let ipv4 = match e.ipv4.len() {
        0 => None,
        4 => Some(Ipv4Addr::new(e.ipv4[0], e.ipv4[1], e.ipv4[2], e.ipv4[3]).to_string()),
        n => return Err(format!("ipv4 is {n} bytes, expected 4")),
    };
    let ipv6 = match <[u8; 16]>::try_from(e.ipv6.as_slice()) {
        _ if e.ipv6.is_empty() => None,
        Ok(b) => Some(Ipv6Addr::from(b).to_string()),
        Err(_) => return Err(format!("ipv6 is {} bytes, expected 16", e.ipv6.len())),
    };
    let port = u16::try_from(e.port).map_err(|_| format!("port {} is out of range", e.port))?;
    Ok(Endpoint {
        service_name: e.service_name,
        ipv4,
        ipv6,
        port,
    })
}

/// Converts one decoded proto span; the error names the bad field.
pub fn from_proto(s: Span) -> Result<ZipkinSpan, String> {
    let (trace_id, trace_id_128) = match s.trace_id.len() {
        8 => (
            TraceId::from_high_low(0, SpanId::from_slice(&s.trace_id).map_or(0, |i| i.0)),
            false,
        ),
        16 => (TraceId::from_slice(&s.trace_id).unwrap_or_default(), true),
        n => return Err(format!("trace_id is {n} bytes, expected 8 or 16")),
    };
    let id = SpanId::from_slice(&s.id)
        .ok_or_else(|| format!("id is {} bytes, expected 8", s.id.len()))?;
    let parent_id = match s.parent_id.len() {
        0 => None,
        _ => Some(
            SpanId::from_slice(&s.parent_id)
                .ok_or_else(|| format!("parent_id is {} bytes, expected 8", s.parent_id.len()))?,
        ),
    };
    let kind = match s.kind {
        0 => None,
        k => Some(Kind::from_proto(k).ok_or_else(|| format!("kind {k} is not a span kind"))?),
    };
    let local_endpoint = s
        .local_endpoint
        .map(endpoint)
        .transpose()
        .map_err(|e| format!("local_endpoint {e}"))?;
    let remote_endpoint = s
        .remote_endpoint
        .map(endpoint)
        .transpose()
        .map_err(|e| format!("remote_endpoint {e}"))?;
    // the map has no order on the wire that survives decoding: sort for stable output
    let mut tags: Vec<(String, AnyValue)> = s
        .tags
        .into_iter()
        .map(|(k, v)| (k, AnyValue::Str(v)))
        .collect();
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ZipkinSpan {
        trace_id,
        trace_id_128,
        parent_id,
        id,
        kind,
        name: s.name,
        timestamp_us: (s.timestamp != 0).then_some(s.timestamp),
        duration_us: (s.duration != 0).then_some(s.duration),
        local_endpoint,
        remote_endpoint,
        annotations: s
            .annotations
            .into_iter()
            .map(|a| Annotation {
                timestamp_us: a.timestamp,
                value: a.value,
            })
            .collect(),
        tags,
        debug: s.debug,
        shared: s.shared,
    })
}

fn to_endpoint(e: &Endpoint) -> ProtoEndpoint {
    ProtoEndpoint {
        service_name: e.service_name.clone(),
        ipv4: e
            .ipv4
            .as_deref()
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .map(|a| a.octets().to_vec())
            .unwrap_or_default(),
        ipv6: e
            .ipv6
            .as_deref()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .map(|a| a.octets().to_vec())
            .unwrap_or_default(),
        port: i32::from(e.port),
    }
}

/// The proto form of a span (addresses that do not parse are left out).
pub fn to_proto(z: &ZipkinSpan) -> Span {
    Span {
        trace_id: if z.trace_id_128 || z.trace_id.high() != 0 {
            z.trace_id.to_bytes().to_vec()
        } else {
            z.trace_id.low().to_be_bytes().to_vec()
        },
        parent_id: z
            .parent_id
            .map(|p| p.to_bytes().to_vec())
            .unwrap_or_default(),
        id: z.id.to_bytes().to_vec(),
        kind: z.kind.map_or(0, Kind::to_proto),
        name: z.name.clone(),
        timestamp: z.timestamp_us.unwrap_or(0),
        duration: z.duration_us.unwrap_or(0),
        local_endpoint: z.local_endpoint.as_ref().map(to_endpoint),
        remote_endpoint: z.remote_endpoint.as_ref().map(to_endpoint),
        annotations: z
            .annotations
            .iter()
            .map(|a| ProtoAnnotation {
                timestamp: a.timestamp_us,
                value: a.value.clone(),
            })
            .collect(),
        tags: z
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), tag_text(v)))
            .collect(),
        debug: z.debug,
        shared: z.shared,
    }
}
