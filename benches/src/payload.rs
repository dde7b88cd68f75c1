//! Wire payloads: the OTLP, Jaeger Thrift and Zipkin protocols, batching generated spans into
//! requests (or UDP datagrams), and the pool of requests encoded before a run starts so that
//! nothing is built on the hot path.

use std::collections::VecDeque;

use bytes::Bytes;
use spoor_core::Span;

use crate::gen::Generator;

/// The largest UDP datagram the Jaeger modes send: the agent's limit (65,000 bytes), so the
/// datagram fits in one IPv4 UDP packet with headers to spare.
pub const MAX_DATAGRAM_BYTES: usize = 65_000;

/// How requests are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP over gRPC (`TraceService/Export`).
    OtlpGrpc,
    /// OTLP over HTTP with a protobuf body.
    OtlpHttpProto,
    /// OTLP over HTTP with a JSON body.
    OtlpHttpJson,
    /// Jaeger `Agent.emitBatch` in Thrift compact over UDP (one batch per datagram).
    JaegerUdpCompact,
    /// Jaeger `Agent.emitBatch` in Thrift binary over UDP (one batch per datagram).
    JaegerUdpBinary,
    /// Jaeger Thrift binary `Batch` over HTTP (`POST /api/traces`).
    JaegerHttp,
    /// Zipkin v2 JSON over HTTP (`POST /api/v2/spans`).
    ZipkinJson,
    /// Zipkin v2 proto3 `ListOfSpans` over HTTP (`POST /api/v2/spans`).
    ZipkinProto,
}

/// Why a payload did not decode (only the tests and the smoke check decode).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// An OTLP body.
    #[error(transparent)]
    Otlp(#[from] spoor_otlp::DecodeError),
    /// A Jaeger Thrift body.
    #[error(transparent)]
    Jaeger(#[from] spoor_jaeger::DecodeError),
    /// A Zipkin body.
    #[error(transparent)]
    Zipkin(#[from] spoor_zipkin::DecodeError),
}

/// What a payload decoded to, with the receiver's own decoder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// Spans that converted.
    pub spans: Vec<Span>,
    /// Spans the decoder dropped.
    pub rejected: usize,
}

impl Protocol {
    /// All protocols.
    pub const ALL: [Protocol; 8] = [
        Protocol::OtlpGrpc,
        Protocol::OtlpHttpProto,
        Protocol::OtlpHttpJson,
        Protocol::JaegerUdpCompact,
        Protocol::JaegerUdpBinary,
        Protocol::JaegerHttp,
        Protocol::ZipkinJson,
        Protocol::ZipkinProto,
    ];

    /// The OTLP protocols, which carry every field of Spoor's span model.
    pub const OTLP: [Protocol; 3] = [
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
            Protocol::JaegerUdpCompact => "jaeger-udp-compact",
            Protocol::JaegerUdpBinary => "jaeger-udp-binary",
            Protocol::JaegerHttp => "jaeger-http",
            Protocol::ZipkinJson => "zipkin-json",
            Protocol::ZipkinProto => "zipkin-proto",
        }
    }

    /// Whether payloads go out as UDP datagrams (no reply, so acceptance is unknown).
    pub fn is_udp(self) -> bool {
        matches!(self, Protocol::JaegerUdpCompact | Protocol::JaegerUdpBinary)
    }

    /// Whether the receiver answers with an OTLP export response (partial success).
    pub fn is_otlp(self) -> bool {
        Protocol::OTLP.contains(&self)
    }

    /// The HTTP content type of a request body (`""` for UDP).
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "application/grpc",
            Protocol::OtlpHttpProto | Protocol::ZipkinProto => "application/x-protobuf",
            Protocol::OtlpHttpJson | Protocol::ZipkinJson => "application/json",
            Protocol::JaegerHttp => "application/x-thrift",
            Protocol::JaegerUdpCompact | Protocol::JaegerUdpBinary => "",
        }
    }

    /// The HTTP path requests go to (`""` for gRPC and UDP).
    pub fn http_path(self) -> &'static str {
        match self {
            Protocol::OtlpHttpProto | Protocol::OtlpHttpJson => "/v1/traces",
            Protocol::JaegerHttp => "/api/traces",
            Protocol::ZipkinJson | Protocol::ZipkinProto => "/api/v2/spans",
            Protocol::OtlpGrpc | Protocol::JaegerUdpCompact | Protocol::JaegerUdpBinary => "",
        }
    }

    /// The endpoint used when none is given.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "http://127.0.0.1:4317",
            Protocol::OtlpHttpProto | Protocol::OtlpHttpJson => "http://127.0.0.1:4318",
            Protocol::JaegerUdpCompact => "127.0.0.1:6831",
            Protocol::JaegerUdpBinary => "127.0.0.1:6832",
            Protocol::JaegerHttp => "http://127.0.0.1:14268/api/traces",
            Protocol::ZipkinJson | Protocol::ZipkinProto => "http://127.0.0.1:9411/api/v2/spans",
        }
    }

    /// Encodes spans as requests: one for OTLP and Zipkin; one per process (resource) for
    /// Jaeger, whose `Batch` holds one process, and for UDP as many datagrams as it takes to
    /// keep each within [`MAX_DATAGRAM_BYTES`] (a single span too large for one is sent alone
    /// anyway, so the receiver's handling of it is measured too).
    pub fn encode(self, spans: &[Span]) -> Vec<Payload> {
        let one = |body: Vec<u8>| {
            vec![Payload {
                body: Bytes::from(body),
                spans: spans.len() as u64,
            }]
        };
        match self {
            Protocol::OtlpGrpc | Protocol::OtlpHttpProto => one(spoor_otlp::encode_proto(spans)),
            Protocol::OtlpHttpJson => one(spoor_otlp::json::encode_traces_data(spans)
                .to_string()
                .into_bytes()),
            Protocol::ZipkinJson => one(spoor_zipkin::encode_v2_json(&spoor_zipkin::from_spans(
                spans,
            ))),
            Protocol::ZipkinProto => one(spoor_zipkin::encode_v2_proto(&spoor_zipkin::from_spans(
                spans,
            ))),
            Protocol::JaegerHttp => spoor_jaeger::convert::spans_to_batches(spans)
                .into_iter()
                .map(|b| Payload {
                    spans: b.spans.len() as u64,
                    body: Bytes::from(spoor_jaeger::encode_http_batch(&b)),
                })
                .collect(),
            Protocol::JaegerUdpCompact | Protocol::JaegerUdpBinary => {
                let thrift = if self == Protocol::JaegerUdpCompact {
                    spoor_jaeger::Protocol::Compact
                } else {
                    spoor_jaeger::Protocol::Binary
                };
                let mut out = Vec::new();
                for b in spoor_jaeger::convert::spans_to_batches(spans) {
                    datagrams(b, thrift, &mut out);
                }
                out
            }
        }
    }

    /// Decodes a body made by [`Protocol::encode`] back into spans, with the decoder the
    /// receiver uses.
    pub fn decode(self, body: &[u8]) -> Result<Decoded, DecodeError> {
        let (spans, rejected) = match self {
            Protocol::OtlpGrpc | Protocol::OtlpHttpProto => {
                let d = spoor_otlp::decode_proto(body)?;
                (d.spans, d.rejected)
            }
            Protocol::OtlpHttpJson => {
                let d = spoor_otlp::decode_json(body)?;
                (d.spans, d.rejected)
            }
            Protocol::JaegerUdpCompact => {
                let d = spoor_jaeger::decode_emit_batch(body, spoor_jaeger::Protocol::Compact)?;
                (d.spans, d.rejected)
            }
            Protocol::JaegerUdpBinary => {
                let d = spoor_jaeger::decode_emit_batch(body, spoor_jaeger::Protocol::Binary)?;
                (d.spans, d.rejected)
            }
            Protocol::JaegerHttp => {
                let d = spoor_jaeger::decode_http_batch(body)?;
                (d.spans, d.rejected)
            }
            Protocol::ZipkinJson => {
                let d = spoor_zipkin::decode_v2_json(body)?;
                (d.spans, d.rejected)
            }
            Protocol::ZipkinProto => {
                let d = spoor_zipkin::decode_v2_proto(body)?;
                (d.spans, d.rejected)
            }
        };
        Ok(Decoded { spans, rejected })
    }
}

/// Encodes one Jaeger batch as `emitBatch` datagrams of at most [`MAX_DATAGRAM_BYTES`],
/// halving the batch until each part fits.
fn datagrams(batch: spoor_jaeger::Batch, thrift: spoor_jaeger::Protocol, out: &mut Vec<Payload>) {
    let body = spoor_jaeger::encode_emit_batch(&batch, thrift, out.len() as i32);
    if body.len() <= MAX_DATAGRAM_BYTES || batch.spans.len() <= 1 {
        out.push(Payload {
            body: Bytes::from(body),
            spans: batch.spans.len() as u64,
        });
        return;
    }
    let mut first = batch;
    let second_spans = first.spans.split_off(first.spans.len() / 2);
    let second = spoor_jaeger::Batch {
        process: first.process.clone(),
        spans: second_spans,
        seq_no: None,
        stats: None,
    };
    datagrams(first, thrift, out);
    datagrams(second, thrift, out);
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
    /// Encodes `target_spans` spans from `gen` in batches of `batch_spans` spans (a batch may
    /// become several requests, see [`Protocol::encode`]), stopping
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
            for p in protocol.encode(&spans) {
                pool.spans += p.spans;
                pool.bytes += p.body.len() as u64;
                pool.payloads.push(p);
            }
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
    use std::collections::BTreeSet;

    use super::*;
    use crate::gen::GenConfig;
    use spoor_core::{SpanId, TraceId};

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

    /// Encode then decode with the receiver's decoder: same span count and the same ids, in
    /// every protocol.
    #[test]
    fn pool_round_trips_in_every_protocol() {
        let want: Vec<(TraceId, SpanId)> = {
            let mut g = gen(7);
            let mut ids: Vec<_> = SpanBatches::new(&mut g, 10, 95)
                .flatten()
                .map(|s| (s.trace_id, s.span_id))
                .collect();
            ids.sort();
            ids
        };
        for protocol in Protocol::ALL {
            let name = protocol.name();
            let mut g = gen(7);
            let pool = Pool::build(&mut g, protocol, 10, 95, u64::MAX);
            // OTLP and Zipkin send a batch as one request; Jaeger one per process (service)
            if protocol.is_otlp() || name.starts_with("zipkin") {
                assert_eq!(pool.payloads.len(), 10, "{name}");
            } else {
                assert!(pool.payloads.len() > 10, "{name}: {}", pool.payloads.len());
            }
            assert_eq!(pool.spans, 95, "{name}");
            assert_eq!(pool.traces, 14, "{name}");
            assert!(!pool.capped);
            let mut got = Vec::new();
            for p in &pool.payloads {
                let d = protocol.decode(&p.body).unwrap();
                assert_eq!(d.rejected, 0, "{name}");
                assert_eq!(d.spans.len() as u64, p.spans, "{name}");
                got.extend(d.spans.iter().map(|s| (s.trace_id, s.span_id)));
            }
            got.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn jaeger_batches_hold_one_service_each() {
        let mut g = gen(20);
        let spans = g.next_trace();
        let services: BTreeSet<&str> = spans.iter().map(|s| s.service()).collect();
        for protocol in [Protocol::JaegerHttp, Protocol::JaegerUdpCompact] {
            let payloads = protocol.encode(&spans);
            assert_eq!(payloads.len(), services.len(), "{}", protocol.name());
            for p in payloads {
                let d = protocol.decode(&p.body).unwrap();
                let got: BTreeSet<&str> = d.spans.iter().map(|s| s.service()).collect();
                assert_eq!(got.len(), 1, "{}", protocol.name());
            }
        }
    }

    #[test]
    fn udp_datagrams_are_split_to_fit() {
        for protocol in [Protocol::JaegerUdpCompact, Protocol::JaegerUdpBinary] {
            let mut g = Generator::new(GenConfig {
                services: 1,
                spans_per_trace: 2000,
                attrs: 16,
                attr_bytes: 64,
                ..GenConfig::default()
            })
            .unwrap();
            let spans = g.next_trace();
            let payloads = protocol.encode(&spans);
            assert!(payloads.len() > 1, "{}", protocol.name());
            let mut n = 0;
            for p in &payloads {
                assert!(p.body.len() <= MAX_DATAGRAM_BYTES, "{}", p.body.len());
                n += protocol.decode(&p.body).unwrap().spans.len();
            }
            assert_eq!(n, 2000, "{}", protocol.name());
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
