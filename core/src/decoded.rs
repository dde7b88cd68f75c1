//! What a wire-format decoder hands on: the spans that decoded, and an account of those it had to
//! reject, so that every receiver (OTLP, Jaeger, Zipkin, …) reports rejections the same way.

use alloc::string::String;
use alloc::vec::Vec;

use crate::model::Span;

/// The spans of one request, plus what was rejected while decoding it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    /// The spans that decoded.
    pub spans: Vec<Span>,
    /// Spans rejected by the decoder (bad id lengths, impossible times, …).
    pub rejected: usize,
    /// One line per rejected span (or dropped link), naming where and why.
    pub problems: Vec<String>,
}
