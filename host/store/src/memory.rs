//! An in-memory [`TraceStore`] bounded by a number of traces: when full it evicts the trace
//! written first (oldest by first write), like Jaeger's memory storage with `max_traces`.
//!
//! Reads take a shared lock and run concurrently; writes take the exclusive lock briefly.
//! Nothing survives a restart, `flush` does nothing, and `expire_before` drops no spans (there
//! are no time partitions; capacity is the only bound) and returns 0.
//!
//! RED span metrics live in their own map, bounded too: at most `max_red_points` points
//! ([`DEFAULT_MAX_RED_POINTS`] unless set with [`MemoryStore::with_max_red_points`]); beyond it
//! the points of the oldest buckets are dropped first. `expire_before` drops the buckets that
//! ended by the cutoff.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashMap;
use parking_lot::RwLock;
use spoor_core::red::{LatencyHistogram, RedPoint};
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};

use crate::{
    match_key, merge_links, rank, red_bucket_selected, sort_red_points, StoreResult, StoreStats,
    TraceStore,
};

/// Most RED points a [`MemoryStore`] keeps unless told otherwise (a day of one-minute buckets
/// for about 70 (service, operation, kind) keys).
pub const DEFAULT_MAX_RED_POINTS: usize = 100_000;

/// A bounded in-memory store.
pub struct MemoryStore {
    max_traces: usize,
    max_red_points: usize,
    inner: RwLock<Inner>,
    /// RED points, oldest bucket first (separate from `inner` so span writes do not wait).
    red: RwLock<BTreeMap<RedKey, RedValue>>,
    spans_written: AtomicU64,
    traces_evicted: AtomicU64,
}

/// (bucket start, service, operation, kind, bucket length)
type RedKey = (u64, String, String, SpanKind, u64);
/// (calls, errors, latencies)
type RedValue = (u64, u64, LatencyHistogram);

#[derive(Default)]
struct Inner {
    traces: HashMap<TraceId, Vec<Span>>,
    /// Trace ids in order of their first write; the front is evicted first.
    order: VecDeque<TraceId>,
    /// service -> operation -> kinds seen
    operations: BTreeMap<String, BTreeMap<String, BTreeSet<SpanKind>>>,
    /// bucket start -> (parent, child) -> calls
    dependencies: BTreeMap<u64, BTreeMap<(String, String), u64>>,
}

impl MemoryStore {
    /// A store holding at most `max_traces` traces (0 is treated as 1).
    pub fn new(max_traces: usize) -> Self {
        MemoryStore {
            max_traces: max_traces.max(1),
            max_red_points: DEFAULT_MAX_RED_POINTS,
            inner: RwLock::new(Inner::default()),
            red: RwLock::new(BTreeMap::new()),
            spans_written: AtomicU64::new(0),
            traces_evicted: AtomicU64::new(0),
        }
    }

    /// Keeps at most `max` RED points (0 is treated as 1); the oldest buckets go first.
    pub fn with_max_red_points(mut self, max: usize) -> Self {
        self.max_red_points = max.max(1);
        self
    }
}

impl TraceStore for MemoryStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        let mut inner = self.inner.write();
        let inner = &mut *inner;
        for s in spans {
            match inner.traces.get_mut(&s.trace_id) {
                Some(v) => v.push(s.clone()),
                None => {
                    inner.traces.insert(s.trace_id, vec![s.clone()]);
                    inner.order.push_back(s.trace_id);
                }
            }
            // Look names up by reference; allocate only for new ones.
            let known = inner
                .operations
                .get(s.service())
                .and_then(|ops| ops.get(&s.name))
                .is_some_and(|k| k.contains(&s.kind));
            if !known {
                inner
                    .operations
                    .entry(s.service().to_owned())
                    .or_default()
                    .entry(s.name.clone())
                    .or_default()
                    .insert(s.kind);
            }
        }
        while inner.traces.len() > self.max_traces {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if inner.traces.remove(&oldest).is_some() {
                self.traces_evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.spans_written
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_dependencies(
        &self,
        bucket_start_nanos: u64,
        links: &[DependencyLink],
    ) -> StoreResult<()> {
        let mut inner = self.inner.write();
        let bucket = inner.dependencies.entry(bucket_start_nanos).or_default();
        for l in links {
            *bucket
                .entry((l.parent.clone(), l.child.clone()))
                .or_default() += l.call_count;
        }
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        let inner = self.inner.read();
        Ok(inner.traces.get(&id).map(|spans| Trace {
            trace_id: id,
            spans: spans.clone(),
        }))
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        Ok(self.inner.read().operations.keys().cloned().collect())
    }

    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        let inner = self.inner.read();
        let Some(ops) = inner.operations.get(service) else {
            return Ok(Vec::new());
        };
        Ok(ops
            .iter()
            .flat_map(|(name, kinds)| kinds.iter().map(move |k| (name, *k)))
            .filter(|(_, k)| kind.is_none_or(|want| want == *k))
            .map(|(name, span_kind)| Operation {
                name: name.clone(),
                span_kind,
            })
            .collect())
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        let inner = self.inner.read();
        let found = inner
            .traces
            .iter()
            .filter_map(|(id, spans)| match_key(query, spans).map(|k| (k, *id)))
            .collect();
        Ok(rank(found, query))
    }

    fn dependencies(
        &self,
        end_nanos: u64,
        lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        let inner = self.inner.read();
        let window = (
            Bound::Excluded(end_nanos.saturating_sub(lookback_nanos)),
            Bound::Included(end_nanos),
        );
        let links = inner
            .dependencies
            .range(window)
            .flat_map(|(_, pairs)| pairs.iter())
            .map(|((parent, child), n)| DependencyLink {
                parent: parent.clone(),
                child: child.clone(),
                call_count: *n,
            });
        Ok(merge_links(links))
    }

    fn write_span_metrics(&self, points: &[RedPoint]) -> StoreResult<()> {
        let mut red = self.red.write();
        for p in points {
            let key = (
                p.bucket_start_nanos,
                p.service.clone(),
                p.operation.clone(),
                p.kind,
                p.bucket_nanos,
            );
            let (calls, errors, histogram) = red.entry(key).or_default();
            *calls = calls.saturating_add(p.calls);
            *errors = errors.saturating_add(p.errors);
            histogram.merge(&p.histogram);
        }
        while red.len() > self.max_red_points {
            red.pop_first();
        }
        Ok(())
    }

    fn span_metrics(
        &self,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        let red = self.red.read();
        let mut out: Vec<RedPoint> = red
            .iter()
            .take_while(|((start, ..), _)| *start <= end_nanos)
            .filter(|((start, service, _, _, len), _)| {
                red_bucket_selected(service, *start, *len, services, (start_nanos, end_nanos))
            })
            .map(
                |((start, service, operation, kind, len), (calls, errors, histogram))| RedPoint {
                    service: service.clone(),
                    operation: operation.clone(),
                    kind: *kind,
                    bucket_start_nanos: *start,
                    bucket_nanos: *len,
                    calls: *calls,
                    errors: *errors,
                    histogram: histogram.clone(),
                },
            )
            .collect();
        sort_red_points(&mut out);
        Ok(out)
    }

    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        self.red
            .write()
            .retain(|(start, .., len), _| start.saturating_add(*len) > cutoff_nanos);
        // link buckets (core's width) that ended by the cutoff
        let keep_from = cutoff_nanos.saturating_sub(spoor_core::deps::DEFAULT_BUCKET_NANOS);
        let mut inner = self.inner.write();
        let kept = inner.dependencies.split_off(&keep_from.saturating_add(1));
        inner.dependencies = kept;
        Ok(0)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.spans_written.load(Ordering::Relaxed),
            traces: self.inner.read().traces.len() as u64,
            traces_evicted: self.traces_evicted.load(Ordering::Relaxed),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn span(trace: u128, service: &str) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: spoor_core::SpanId(trace as u64),
            name: "op".into(),
            resource: Arc::new(spoor_core::Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn evicts_the_trace_written_first() {
        let store = MemoryStore::new(2);
        store.write_spans(&[span(1, "a"), span(2, "a")]).unwrap();
        // A later span of trace 1 does not make it younger: eviction is by first write.
        store.write_spans(&[span(1, "a")]).unwrap();
        store.write_spans(&[span(3, "b")]).unwrap();
        assert!(store.get_trace(TraceId(1)).unwrap().is_none());
        assert_eq!(
            store.get_trace(TraceId(2)).unwrap().map(|t| t.spans.len()),
            Some(1)
        );
        assert_eq!(
            store.get_trace(TraceId(3)).unwrap().map(|t| t.spans.len()),
            Some(1)
        );
        let stats = store.stats();
        assert_eq!(
            (stats.traces, stats.traces_evicted, stats.spans_written),
            (2, 1, 4)
        );
        // The operation index keeps what was seen, as Jaeger's does.
        assert_eq!(
            store.services().unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn retention_expires_link_buckets_that_ended() {
        use spoor_core::deps::DEFAULT_BUCKET_NANOS as MIN;
        let store = MemoryStore::new(1);
        let link = |n| DependencyLink {
            parent: "a".into(),
            child: "b".into(),
            call_count: n,
        };
        let t0 = 1_000 * MIN;
        for (bucket, n) in [(t0, 1), (t0 + MIN, 2), (t0 + 2 * MIN, 4)] {
            store.write_dependencies(bucket, &[link(n)]).unwrap();
        }
        // the bucket at t0 + MIN ends at the cutoff; the one at t0 + 2 MIN is still open
        store.expire_before(t0 + 2 * MIN).unwrap();
        assert_eq!(
            store.dependencies(t0 + 3 * MIN, 10 * MIN).unwrap(),
            [link(4)]
        );
    }

    #[test]
    fn red_points_are_bounded_oldest_bucket_first() {
        let store = MemoryStore::new(1).with_max_red_points(2);
        let point = |service: &str, start: u64| RedPoint {
            service: service.into(),
            operation: "op".into(),
            kind: SpanKind::Server,
            bucket_start_nanos: start,
            bucket_nanos: 10,
            calls: 1,
            errors: 0,
            histogram: LatencyHistogram::new(),
        };
        store
            .write_span_metrics(&[point("late", 30), point("early", 10), point("mid", 20)])
            .unwrap();
        // A merge into a kept point does not grow the map.
        store.write_span_metrics(&[point("late", 30)]).unwrap();
        let kept: Vec<(String, u64, u64)> = store
            .span_metrics(&[], 0, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|p| (p.service, p.bucket_start_nanos, p.calls))
            .collect();
        assert_eq!(
            kept,
            vec![("late".to_string(), 30, 2), ("mid".to_string(), 20, 1)]
        );
    }
}
