//! The smoke check `make test` runs to keep the harness from rotting: generate a few traces,
//! encode them in all three OTLP protocols (the lossless ones), decode them back, validate and store them, and check
//! every count. Takes well under a second.

use std::collections::{BTreeSet, HashMap};

use spoor_core::validate::{validate_batch, Limits};
use spoor_core::{Span, SpanId, TraceId};
use spoor_store::memory::MemoryStore;
use spoor_store::{StoreError, TraceStore};

use crate::gen::{GenConfig, GenError, Generator};
use crate::payload::{Pool, Protocol};

/// What the smoke check found wrong.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    /// The generator refused the smoke configuration.
    #[error("smoke generator: {0}")]
    Generator(#[from] GenError),
    /// A payload did not decode.
    #[error("smoke {protocol}: payload {index} does not decode: {source}")]
    Decode {
        /// Protocol name.
        protocol: &'static str,
        /// Payload index in the pool.
        index: usize,
        /// The decode error.
        source: crate::payload::DecodeError,
    },
    /// A count differed from what was generated.
    #[error("smoke {what}: expected {expected}, got {got}")]
    Count {
        /// What was counted.
        what: String,
        /// What was generated.
        expected: u64,
        /// What came back.
        got: u64,
    },
    /// The decoded spans differ from the generated ones.
    #[error("smoke {protocol}: decoded spans differ from the generated ones ({detail})")]
    Mismatch {
        /// Protocol name.
        protocol: &'static str,
        /// The first difference.
        detail: String,
    },
    /// The store failed.
    #[error("smoke store: {0}")]
    Store(#[from] StoreError),
}

/// Figures of a passed smoke check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmokeReport {
    /// Traces generated.
    pub traces: u64,
    /// Spans generated.
    pub spans: u64,
    /// `(protocol, requests, encoded bytes)` per protocol.
    pub encoded: Vec<(&'static str, usize, u64)>,
}

fn count(what: impl Into<String>, expected: u64, got: u64) -> Result<(), SmokeError> {
    if expected == got {
        Ok(())
    } else {
        Err(SmokeError::Count {
            what: what.into(),
            expected,
            got,
        })
    }
}

/// Runs the smoke check with the given seed.
pub fn smoke(seed: u64) -> Result<SmokeReport, SmokeError> {
    const TRACES: u64 = 6;
    const PER_TRACE: usize = 25;
    const BATCH: usize = 40;
    let cfg = GenConfig {
        spans_per_trace: PER_TRACE,
        error_rate: 0.2,
        seed,
        ..GenConfig::default()
    };
    let total = TRACES * PER_TRACE as u64;
    let expected: Vec<Span> = {
        let mut g = Generator::new(cfg.clone())?;
        (0..TRACES).flat_map(|_| g.next_trace()).collect()
    };
    let expected_ids: BTreeSet<TraceId> = expected.iter().map(|s| s.trace_id).collect();
    count("distinct trace ids", TRACES, expected_ids.len() as u64)?;
    let mut encoded = Vec::new();
    for protocol in Protocol::OTLP {
        let name = protocol.name();
        let pool = Pool::build(
            &mut Generator::new(cfg.clone())?,
            protocol,
            BATCH,
            total,
            u64::MAX,
        );
        count(format!("{name} pool spans"), total, pool.spans)?;
        count(format!("{name} pool traces"), TRACES, pool.traces)?;
        count(
            format!("{name} requests"),
            total.div_ceil(BATCH as u64),
            pool.payloads.len() as u64,
        )?;
        let mut decoded = Vec::new();
        for (index, p) in pool.payloads.iter().enumerate() {
            let d = protocol
                .decode(&p.body)
                .map_err(|source| SmokeError::Decode {
                    protocol: name,
                    index,
                    source,
                })?;
            count(
                format!("{name} payload {index} rejected spans"),
                0,
                d.rejected as u64,
            )?;
            count(
                format!("{name} payload {index} spans"),
                p.spans,
                d.spans.len() as u64,
            )?;
            decoded.extend(d.spans);
        }
        // Encoding groups spans by resource, so compare by id rather than by position.
        let by_id: HashMap<(TraceId, SpanId), &Span> = decoded
            .iter()
            .map(|s| ((s.trace_id, s.span_id), s))
            .collect();
        count(
            format!("{name} distinct decoded spans"),
            total,
            by_id.len() as u64,
        )?;
        for a in &expected {
            let Some(b) = by_id.get(&(a.trace_id, a.span_id)) else {
                let detail = format!("span {} of trace {} is missing", a.span_id, a.trace_id);
                return Err(SmokeError::Mismatch {
                    protocol: name,
                    detail,
                });
            };
            let same = a.parent_span_id == b.parent_span_id
                && a.name == b.name
                && a.kind == b.kind
                && a.start_unix_nanos == b.start_unix_nanos
                && a.duration_nanos == b.duration_nanos
                && a.attributes == b.attributes
                && a.events == b.events
                && a.status == b.status
                && a.resource == b.resource
                && a.scope == b.scope;
            if !same {
                let detail = format!(
                    "span {} ({}) of trace {} changed",
                    a.span_id, a.name, a.trace_id
                );
                return Err(SmokeError::Mismatch {
                    protocol: name,
                    detail,
                });
            }
        }
        let validated = validate_batch(decoded, &Limits::default());
        count(
            format!("{name} spans rejected by validation"),
            0,
            validated.rejected as u64,
        )?;
        count(
            format!("{name} validation diagnostics"),
            0,
            validated.diagnostics.len() as u64,
        )?;
        let store = MemoryStore::new(100);
        store.write_spans(&validated.spans)?;
        for id in &expected_ids {
            let got = store.get_trace(*id)?.map_or(0, |t| t.spans.len() as u64);
            count(
                format!("{name} stored spans of trace {id}"),
                PER_TRACE as u64,
                got,
            )?;
        }
        encoded.push((name, pool.payloads.len(), pool.bytes));
    }
    Ok(SmokeReport {
        traces: TRACES,
        spans: total,
        encoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_passes_for_several_seeds() {
        for seed in [1, 2, 99] {
            let r = smoke(seed).unwrap();
            assert_eq!((r.traces, r.spans), (6, 150));
            let names: Vec<&str> = r.encoded.iter().map(|e| e.0).collect();
            assert_eq!(names, ["otlp-grpc", "otlp-http-proto", "otlp-http-json"]);
            assert!(r.encoded.iter().all(|e| e.1 == 4 && e.2 > 0));
        }
    }
}
