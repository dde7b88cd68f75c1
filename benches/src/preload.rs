//! Writing generated spans straight into a store (no network), to fill a store for the query
//! benchmarks and to measure raw store write throughput.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use spoor_store::embedded::{SledConfig, SledStore};
use spoor_store::{StoreResult, TraceStore};

use crate::gen::Generator;
use crate::payload::SpanBatches;

/// What a preload did.
#[derive(Clone, Debug, PartialEq)]
pub struct PreloadReport {
    /// Spans written.
    pub spans: u64,
    /// Traces they came from (the last may be incomplete).
    pub traces: u64,
    /// `write_spans` calls.
    pub batches: u64,
    /// Time spent in `write_spans` and generation, before the flush.
    pub write: Duration,
    /// Time of the final flush.
    pub flush: Duration,
}

impl PreloadReport {
    /// Spans per second over write and flush time.
    pub fn spans_per_sec(&self) -> f64 {
        let s = (self.write + self.flush).as_secs_f64();
        if s > 0.0 {
            self.spans as f64 / s
        } else {
            0.0
        }
    }

    /// The report as one JSON object.
    pub fn to_json(&self, dir: &Path) -> serde_json::Value {
        json!({
            "mode": "preload-sled",
            "path": dir.display().to_string(),
            "spans": self.spans,
            "traces": self.traces,
            "batches": self.batches,
            "write_secs": self.write.as_secs_f64(),
            "flush_secs": self.flush.as_secs_f64(),
            "spans_per_sec": self.spans_per_sec(),
        })
    }
}

/// Writes `total_spans` generated spans into `store` in batches of `batch_spans`, then flushes.
/// Generation time is included in [`PreloadReport::write`] (it is small next to the store's).
pub fn preload(
    store: &dyn TraceStore,
    gen: &mut Generator,
    batch_spans: usize,
    total_spans: u64,
) -> StoreResult<PreloadReport> {
    let start = Instant::now();
    let mut batches = SpanBatches::new(gen, batch_spans, total_spans);
    let (mut spans, mut calls) = (0u64, 0u64);
    for batch in batches.by_ref() {
        store.write_spans(&batch)?;
        spans += batch.len() as u64;
        calls += 1;
    }
    let write = start.elapsed();
    let t = Instant::now();
    store.flush()?;
    Ok(PreloadReport {
        spans,
        traces: batches.traces(),
        batches: calls,
        write,
        flush: t.elapsed(),
    })
}

/// Opens (or creates) a sled store at `dir` with default settings and preloads it.
pub fn preload_sled(
    dir: &Path,
    gen: &mut Generator,
    batch_spans: usize,
    total_spans: u64,
) -> StoreResult<PreloadReport> {
    let store = SledStore::open(SledConfig::new(dir))?;
    preload(&store, gen, batch_spans, total_spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::GenConfig;
    use spoor_core::TraceQuery;
    use spoor_store::memory::MemoryStore;

    #[test]
    fn preload_writes_every_span_readably() {
        let cfg = GenConfig {
            spans_per_trace: 10,
            ..GenConfig::default()
        };
        let mut gen = Generator::new(cfg.clone()).unwrap();
        let store = MemoryStore::new(1000);
        let report = preload(&store, &mut gen, 7, 100).unwrap();
        assert_eq!((report.spans, report.traces, report.batches), (100, 10, 15));
        // The same seed regenerates the same traces: every one is stored whole.
        let mut again = Generator::new(cfg).unwrap();
        for _ in 0..10 {
            let t = again.next_trace();
            let stored = store
                .get_trace(t[0].trace_id)
                .unwrap()
                .expect("trace stored");
            assert_eq!(stored.spans.len(), 10);
        }
        let services = store.services().unwrap();
        assert!(services.contains(&"frontend".to_string()), "{services:?}");
        let found = store.find_trace_ids(&TraceQuery {
            service: Some("frontend".into()),
            ..TraceQuery::between(0, u64::MAX)
        });
        assert!(!found.unwrap().is_empty());
    }

    #[test]
    fn preload_sled_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_764_028_800_000_000_000;
        let cfg = GenConfig {
            spans_per_trace: 5,
            now_nanos: now,
            ..GenConfig::default()
        };
        let mut gen = Generator::new(cfg.clone()).unwrap();
        let report = preload_sled(dir.path(), &mut gen, 8, 50).unwrap();
        assert_eq!(report.spans, 50);
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        let first = Generator::new(cfg).unwrap().next_trace();
        let stored = store
            .get_trace(first[0].trace_id)
            .unwrap()
            .expect("trace stored");
        assert_eq!(stored.spans.len(), 5);
    }
}
