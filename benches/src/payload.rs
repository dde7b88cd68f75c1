//! Wire payloads: the three OTLP protocols, batching generated spans into requests, and the
//! pool of requests encoded before a run starts so that nothing is built on the hot path.

use std::collections::VecDeque;

use bytes::Bytes;
use spoor_core::Span;

use crate::gen::Generator;

/// How requests are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP over gRPC (`TraceService/Export`).
    OtlpGrpc,
    /// OTLP over HTTP with a protobuf body.
    OtlpHttpProto,
    /// OTLP over HTTP with a JSON body.
    OtlpHttpJson,
}

impl Protocol {
    /// All protocols.
    pub const ALL: [Protocol; 3] = [
        Protocol::OtlpGrpc,
        Protocol::OtlpHttpProto,
        Protocol::OtlpHttpJson,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp-grpc",
            Protocol::OtlpHttpProto => "otlp-http-proto",
            Protocol::OtlpHttpJson => "otlp-http-json",
        }
    }

    /// The HTTP content type of a request body.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "application/grpc",
            Protocol::OtlpHttpProto => "application/x-protobuf",
            Protocol::OtlpHttpJson => "application/json",
        }
    }

    /// The endpoint used when none is given.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "http://127.0.0.1:4317",
            Protocol::OtlpHttpProto | Protocol::OtlpHttpJson => "http://127.0.0.1:4318",
        }
    }

    /// Encodes spans as one export request body (for gRPC: the protobuf message, unframed).
    pub fn encode(self, spans: &[Span]) -> Bytes {
        match self {
            Protocol::OtlpGrpc | Protocol::OtlpHttpProto => {
                Bytes::from(spoor_otlp::encode_proto(spans))
            }
            Protocol::OtlpHttpJson => {
                let value = spoor_otlp::json::encode_traces_data(spans);
                Bytes::from(value.to_string().into_bytes())
            }
        }
    }

    /// Decodes a body made by [`Protocol::encode`] back into spans.
    pub fn decode(self, body: &[u8]) -> Result<spoor_otlp::Decoded, spoor_otlp::DecodeError> {
        match self {
            Protocol::OtlpGrpc | Protocol::OtlpHttpProto => spoor_otlp::decode_proto(body),
            Protocol::OtlpHttpJson => spoor_otlp::decode_json(body),
        }
    }
}

/// Cuts the generator's traces into batches of `batch_spans` spans (the last one may be
/// smaller), `total_spans` spans in all. A trace larger than a batch is split across batches,
/// as SDK exporters do; the last trace may be cut short by `total_spans`.
#[derive(Debug)]
pub struct SpanBatches<'g> {
    gen: &'g mut Generator,
    batch_spans: usize,
    remaining: u64,
    pending: VecDeque<Span>,
    traces: u64,
}

impl<'g> SpanBatches<'g> {
    /// Batches of `batch_spans` (at least 1) from `gen`, `total_spans` spans in all.
    pub fn new(gen: &'g mut Generator, batch_spans: usize, total_spans: u64) -> Self {
        SpanBatches {
            gen,
            batch_spans: batch_spans.max(1),
            remaining: total_spans,
            pending: VecDeque::new(),
            traces: 0,
        }
    }

    /// Traces started so far.
    pub fn traces(&self) -> u64 {
        self.traces
    }
}

impl Iterator for SpanBatches<'_> {
    type Item = Vec<Span>;

    fn next(&mut self) -> Option<Vec<Span>> {
        if self.remaining == 0 {
            return None;
        }
        let want = (self.batch_spans as u64).min(self.remaining) as usize;
        while self.pending.len() < want {
            self.pending.extend(self.gen.next_trace());
            self.traces += 1;
        }
        self.remaining -= want as u64;
        Some(self.pending.drain(..want).collect())
    }
}

/// One pre-encoded export request.
#[derive(Clone, Debug)]
pub struct Payload {
    /// The encoded body.
    pub body: Bytes,
    /// Spans in it.
    pub spans: u64,
}

/// Requests encoded before the clock starts, sent round-robin.
#[derive(Debug, Default)]
pub struct Pool {
    /// The requests.
    pub payloads: Vec<Payload>,
    /// Spans in all requests.
    pub spans: u64,
    /// Traces the spans came from (the last may be incomplete).
    pub traces: u64,
    /// Encoded bytes in all requests.
    pub bytes: u64,
    /// Whether building stopped at the byte cap before `target_spans` was reached.
    pub capped: bool,
}

impl Pool {
    /// Encodes `target_spans` spans from `gen` into requests of `batch_spans` spans, stopping
    /// early (and setting [`Pool::capped`]) once the bodies exceed `max_bytes`.
    pub fn build(
        gen: &mut Generator,
        protocol: Protocol,
        batch_spans: usize,
        target_spans: u64,
        max_bytes: u64,
    ) -> Pool {
        let mut pool = Pool::default();
        let mut batches = SpanBatches::new(gen, batch_spans, target_spans);
        for spans in batches.by_ref() {
            let body = protocol.encode(&spans);
            pool.spans += spans.len() as u64;
            pool.bytes += body.len() as u64;
            pool.payloads.push(Payload {
                body,
                spans: spans.len() as u64,
            });
            if pool.bytes >= max_bytes && pool.spans < target_spans {
                pool.capped = true;
                break;
            }
        }
        pool.traces = batches.traces();
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::GenConfig;

    fn gen(spans_per_trace: usize) -> Generator {
        Generator::new(GenConfig {
            spans_per_trace,
            ..GenConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn batches_cover_exactly_the_total() {
        // (spans per trace, batch, total, expected batch sizes)
        let cases: &[(usize, usize, u64, &[usize])] = &[
            (10, 25, 60, &[25, 25, 10]),
            (100, 30, 100, &[30, 30, 30, 10]),
            (3, 100, 7, &[7]),
            (5, 5, 0, &[]),
        ];
        for &(spt, batch, total, want) in cases {
            let mut g = gen(spt);
            let sizes: Vec<usize> = SpanBatches::new(&mut g, batch, total)
                .map(|b| b.len())
                .collect();
            assert_eq!(sizes, want, "{spt}/{batch}/{total}");
        }
    }

    #[test]
    fn pool_round_trips_in_every_protocol() {
        for protocol in Protocol::ALL {
            let mut g = gen(7);
            let pool = Pool::build(&mut g, protocol, 10, 95, u64::MAX);
            assert_eq!(pool.payloads.len(), 10);
            assert_eq!(pool.spans, 95);
            assert_eq!(pool.traces, 14);
            assert!(!pool.capped);
            let decoded: usize = pool
                .payloads
                .iter()
                .map(|p| {
                    let d = protocol.decode(&p.body).unwrap();
                    assert_eq!(d.rejected, 0);
                    assert_eq!(d.spans.len() as u64, p.spans);
                    d.spans.len()
                })
                .sum();
            assert_eq!(decoded, 95, "{}", protocol.name());
        }
    }

    #[test]
    fn pool_stops_at_the_byte_cap() {
        let mut g = gen(10);
        let pool = Pool::build(&mut g, Protocol::OtlpHttpProto, 10, 10_000, 1);
        assert!(pool.capped);
        assert_eq!(pool.payloads.len(), 1);
        assert_eq!(pool.spans, 10);
    }
}
