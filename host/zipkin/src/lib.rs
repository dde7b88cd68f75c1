//! Zipkin ingest formats: v2 JSON and v2 proto3 (`POST /api/v2/spans`) and v1 JSON
//! (`POST /api/v1/spans`), decoded into Spoor's span model, plus the matching encoders for
//! tests and the load generator.
//!
//! Decoding never panics on bad input. A body that is not a span list at all is a
//! [`DecodeError`]; a span that is bad on its own (a malformed id, a field of the wrong type)
//! is left out and counted in [`Decoded::rejected`], with a line in [`Decoded::problems`]
//! naming it, while the good spans of the batch are kept.

#![warn(missing_docs)]

pub mod convert;
pub mod json;
pub mod model;
pub mod proto;
pub mod v1;

use prost::Message as _;
use spoor_core::Span;

pub use model::{Annotation, Endpoint, Kind, ZipkinSpan};

/// Why a request body could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
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
    /// The body is JSON but not an array of spans.
    #[error("expected a json array of spans, got {0}")]
    NotAnArray(&'static str),
    /// The body is not a `ListOfSpans` message.
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
}

/// What a request decoded to: the one definition shared by every codec.
pub use spoor_core::Decoded;

fn parse_json(body: &[u8]) -> Result<serde_json::Value, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or("")
            .to_string(),
    })
}

/// Spans read from a body before conversion, each with its label (`span N`), and one line per
/// span that could not be read.
pub type ReadSpans = (Vec<(String, ZipkinSpan)>, Vec<String>);

/// Reads the Zipkin spans of a v2 JSON body (before conversion), with per-span problems.
pub fn read_v2_json(body: &[u8]) -> Result<ReadSpans, DecodeError> {
    let v = parse_json(body)?;
    let mut spans = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in json::span_objects(&v)?.iter().enumerate() {
        match json::read_span(item) {
            Ok(z) => spans.push((format!("span {i}"), z)),
            Err(e) => problems.push(format!("span {i}: {e}")),
        }
    }
    Ok((spans, problems))
}

fn finish(spans: Vec<(String, ZipkinSpan)>, problems: Vec<String>) -> Decoded {
    let mut d = convert::to_spans(spans);
    d.rejected += problems.len();
    let mut all = problems;
    all.append(&mut d.problems);
    d.problems = all;
    d
}

/// Decodes a v2 JSON body (`application/json` on `/api/v2/spans`).
pub fn decode_v2_json(body: &[u8]) -> Result<Decoded, DecodeError> {
    let (spans, problems) = read_v2_json(body)?;
    Ok(finish(spans, problems))
}

/// Decodes a v2 proto3 body (`application/x-protobuf` on `/api/v2/spans`).
pub fn decode_v2_proto(body: &[u8]) -> Result<Decoded, DecodeError> {
    let list =
        proto::ListOfSpans::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let mut spans = Vec::with_capacity(list.spans.len());
    let mut problems = Vec::new();
    for (i, s) in list.spans.into_iter().enumerate() {
        match proto::from_proto(s) {
            Ok(z) => spans.push((format!("span {i}"), z)),
            Err(e) => problems.push(format!("span {i}: {e}")),
        }
    }
    Ok(finish(spans, problems))
}

/// Decodes a v1 JSON body (`/api/v1/spans`); one v1 span may become two spans.
pub fn decode_v1_json(body: &[u8]) -> Result<Decoded, DecodeError> {
    let v = parse_json(body)?;
    let mut spans = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in json::span_objects(&v)?.iter().enumerate() {
        match v1::read_span(item) {
            Ok(zs) => spans.extend(zs.into_iter().map(|z| (format!("span {i}"), z))),
            Err(e) => problems.push(format!("span {i}: {e}")),
        }
    }
    Ok(finish(spans, problems))
}

/// Encodes spans as a v2 JSON body.
pub fn encode_v2_json(spans: &[ZipkinSpan]) -> Vec<u8> {
    let arr: Vec<serde_json::Value> = spans.iter().map(json::span_json).collect();
    serde_json::Value::Array(arr).to_string().into_bytes()
}

/// Encodes spans as a v2 proto3 `ListOfSpans` body.
pub fn encode_v2_proto(spans: &[ZipkinSpan]) -> Vec<u8> {
    proto::ListOfSpans {
        spans: spans.iter().map(proto::to_proto).collect(),
    }
    .encode_to_vec()
}

/// Encodes spans as a v1 JSON body.
pub fn encode_v1_json(spans: &[ZipkinSpan]) -> Vec<u8> {
    let arr: Vec<serde_json::Value> = spans.iter().map(v1::span_json).collect();
    serde_json::Value::Array(arr).to_string().into_bytes()
}

/// The Zipkin form of core spans, for the encoders (see [`convert::from_span`]).
pub fn from_spans(spans: &[Span]) -> Vec<ZipkinSpan> {
    spans.iter().map(convert::from_span).collect()
}
