//! A [`TraceStore`] that accepts every write and keeps nothing, to measure the pipeline without
//! storage cost. It only counts the spans it was given; every read is empty (span metrics
//! included).

use std::sync::atomic::{AtomicU64, Ordering};

use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};

use crate::{StoreResult, StoreStats, TraceStore};

/// Accepts and discards spans, counting them.
#[derive(Default)]
pub struct BlackholeStore {
    spans_written: AtomicU64,
}

impl BlackholeStore {
    /// A new, empty blackhole.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TraceStore for BlackholeStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        self.spans_written
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_dependencies(
        &self,
        _bucket_start_nanos: u64,
        _links: &[DependencyLink],
    ) -> StoreResult<()> {
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, _id: TraceId) -> StoreResult<Option<Trace>> {
        Ok(None)
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn operations(&self, _service: &str, _kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        Ok(Vec::new())
    }

    fn find_trace_ids(&self, _query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(Vec::new())
    }

    fn dependencies(
        &self,
        _end_nanos: u64,
        _lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        Ok(Vec::new())
    }

    fn write_span_metrics(&self, _points: &[RedPoint]) -> StoreResult<()> {
        Ok(())
    }

    fn span_metrics(
        &self,
        _services: &[String],
        _start_nanos: u64,
        _end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        Ok(Vec::new())
    }

    fn expire_before(&self, _cutoff_nanos: u64) -> StoreResult<u64> {
        Ok(0)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.spans_written.load(Ordering::Relaxed),
            ..Default::default()
        }
    }
}
