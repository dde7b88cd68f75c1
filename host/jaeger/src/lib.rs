//! Jaeger ingest formats: Thrift compact and binary (`Agent.emitBatch` over UDP, a bare `Batch`
//! over HTTP) and `api_v2` protobuf (`CollectorService/PostSpans`), decoded into Spoor's span
//! model, plus the matching encoders for tests and the load generator.
//!
//! Decoding never panics on bad input: every error names what was wrong and where.

#![warn(missing_docs)]

pub mod convert;
pub mod json_in;
pub mod model;
pub mod proto;
pub mod sampling;
pub mod thrift;

use prost::Message as _;

pub use model::Batch;
pub use thrift::Protocol;

/// The Thrift method name of the agent's Jaeger batch call.
pub const EMIT_BATCH: &str = "emitBatch";

/// Why a payload could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated input at byte {offset}: {what} needs {need} bytes, {left} left")]
    Truncated {
        /// Where the value started.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// What was being read.
        what: String,
        /// Bytes that were left.
        left: usize,
    },
    /// The bytes are not valid Thrift.
    #[error("malformed thrift at byte {offset}: {message}")]
    Malformed {
        /// Where the problem is.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A Jaeger struct field is missing or of the wrong type.
    #[error("field {field} {message}")]
    Field {
        /// `Struct.field`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The Thrift message is not `emitBatch`.
    #[error("unsupported agent method {0:?}, expected \"emitBatch\"")]
    Method(String),
    /// The protobuf message did not decode.
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    /// A `PostSpansRequest` without a batch.
    #[error("PostSpansRequest has no batch")]
    NoBatch,
}

/// What a request decoded to: the one definition shared by every codec.
pub use spoor_core::Decoded;

/// Reads an `Agent.emitBatch` message (one UDP datagram) in `protocol`.
pub fn read_emit_batch(buf: &[u8], protocol: Protocol) -> Result<Batch, DecodeError> {
    let m = thrift::read_message(buf, protocol)?;
    if m.name != EMIT_BATCH {
        return Err(DecodeError::Method(m.name));
    }
    match m.args.iter().rev().find(|(id, _)| *id == 1) {
        Some((_, thrift::TValue::Struct(f))) => Batch::from_fields(f),
        Some((_, v)) => Err(DecodeError::Field {
            field: "emitBatch.batch".to_string(),
            message: format!("has type {}, expected struct", v.ttype().name()),
        }),
        None => Err(DecodeError::Field {
            field: "emitBatch.batch".to_string(),
            message: "is missing".to_string(),
        }),
    }
}

/// Decodes an `Agent.emitBatch` datagram into spans.
pub fn decode_emit_batch(buf: &[u8], protocol: Protocol) -> Result<Decoded, DecodeError> {
    Ok(convert::thrift_batch(&read_emit_batch(buf, protocol)?))
}

/// Decodes the body of `POST /api/traces`: one `Batch` struct in the binary protocol.
pub fn decode_http_batch(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let fields = thrift::read_struct(buf, Protocol::Binary)?;
    Ok(convert::thrift_batch(&Batch::from_fields(&fields)?))
}

/// Decodes an `api_v2` `PostSpansRequest`.
pub fn decode_post_spans(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let req =
        proto::PostSpansRequest::decode(buf).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let batch = req.batch.ok_or(DecodeError::NoBatch)?;
    Ok(convert::proto_batch(&batch))
}

/// Encodes an `Agent.emitBatch` oneway message, as the Jaeger clients send over UDP.
pub fn encode_emit_batch(batch: &Batch, protocol: Protocol, seq_id: i32) -> Vec<u8> {
    let mut w = thrift::Writer::new(protocol);
    w.message(
        EMIT_BATCH,
        thrift::MessageType::Oneway,
        seq_id,
        &[(1, thrift::TValue::Struct(batch.to_fields()))],
    );
    w.finish()
}

/// Encodes a `Batch` struct in the binary protocol, as the HTTP senders POST it.
pub fn encode_http_batch(batch: &Batch) -> Vec<u8> {
    let mut w = thrift::Writer::new(Protocol::Binary);
    w.fields(&batch.to_fields());
    w.finish()
}

/// Encodes a `PostSpansRequest`.
pub fn encode_post_spans(batch: proto::Batch) -> Vec<u8> {
    proto::PostSpansRequest { batch: Some(batch) }.encode_to_vec()
}
