//! Spoor's storage: the [`TraceStore`] contract every backend implements, and the backends.
//!
//! **API boundary.** The query API, the pipeline and (later) the scale-out store depend only on
//! [`TraceStore`]; a backend is added by implementing it and passing [`conformance`].
//!
//! Backends: [`memory::MemoryStore`] (bounded, evicts oldest traces), [`embedded::SledStore`]
//! (the default: compressed per-trace blocks in time partitions on sled) and
//! [`blackhole::BlackholeStore`] (accepts and discards, to measure the pipeline alone).

use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};

pub mod blackhole;
pub mod conformance;
pub mod embedded;
pub mod memory;

/// What can go wrong in a store. Messages name what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The underlying database or file system failed (disk full, permissions, I/O error).
    #[error("storage i/o failed: {0}")]
    Io(String),
    /// Stored data could not be decoded; `location` names the partition/key or block.
    #[error("stored data is corrupt at {location}: {detail}")]
    Corrupt {
        /// Where the bad data is (partition and key, or block id).
        location: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The store was closed (the daemon is shutting down).
    #[error("storage is closed")]
    Closed,
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Counters a store reports for self-metrics. Every field is a running total or a current size;
/// fields a backend cannot know are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Spans written since start.
    pub spans_written: u64,
    /// Traces currently held (memory) or 0 where counting would cost a scan.
    pub traces: u64,
    /// Traces evicted by a capacity limit since start.
    pub traces_evicted: u64,
    /// Bytes the store occupies on disk (0 for memory stores).
    pub bytes_on_disk: u64,
    /// Time partitions currently held (0 where there are none).
    pub partitions: u64,
    /// Partitions dropped by retention since start.
    pub partitions_expired: u64,
}

/// A trace store.
///
/// # Contract
/// - **Blocking.** Methods may block on disk I/O; async callers run them on a blocking thread
///   (`tokio::task::spawn_blocking`). They never block for a long time on locks held by other
///   methods: reads proceed while writes are going on.
/// - **Concurrency.** All methods may be called concurrently from many threads. Writes are
///   not required to be linearizable with reads: a span becomes visible to readers some time
///   after `write_spans` returns and at the latest when `flush` returns.
/// - **Durability.** `write_spans` returning `Ok` means the spans are accepted and will be
///   readable; they are guaranteed to survive a crash only once a later `flush` returned `Ok`
///   (backends that persist also flush on their own schedule, see each backend).
/// - **Partial traces.** Spans of one trace arrive across many `write_spans` calls, in any
///   order; readers always see the union of what was written. Writing the same span twice is
///   allowed and the span is stored twice (deduplication is the reader's concern, as in Jaeger).
/// - **Ownership.** Returned traces and lists are owned copies; no method returns references
///   into store memory.
/// - **Ordering.** `find_trace_ids` and `find_traces` return the newest matching traces first
///   (by the start of their latest matching span), at most `query.effective_limit()` of them.
///   `services` and `operations` are sorted and free of duplicates.
/// - **Matching.** A trace matches a [`TraceQuery`] exactly when
///   [`TraceQuery::matches_trace`] says so for the spans stored; backends may use indexes to
///   find candidates but must not return a trace for which that is false, nor miss one it
///   finds true within the retention window.
/// - **Span metrics.** RED points ([`RedPoint`]) are keyed by (service, operation, span kind,
///   bucket start, bucket length). `write_span_metrics` merges a point into a stored one of the
///   same key ([`merge_red_point`]: calls and errors summed, histograms merged), so a bucket
///   written twice (a late span re-opened it in the aggregator) reads back as one point.
///   `span_metrics` returns one point per key. Retention (`expire_before`) drops buckets that
///   ended by the cutoff.
pub trait TraceStore: Send + Sync {
    /// Accepts a batch of validated spans (possibly of many traces).
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()>;

    /// Adds dependency-link counts to the time bucket starting at `bucket_start_nanos`
    /// (the pipeline aggregates links online and calls this once per bucket and flush).
    fn write_dependencies(
        &self,
        bucket_start_nanos: u64,
        links: &[DependencyLink],
    ) -> StoreResult<()>;

    /// Makes everything written so far durable (no-op for memory stores).
    fn flush(&self) -> StoreResult<()>;

    /// All spans of one trace, or `None` if no span of it is stored.
    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>>;

    /// Several traces; ids that are not stored are skipped. Order follows `ids`.
    fn get_traces(&self, ids: &[TraceId]) -> StoreResult<Vec<Trace>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.get_trace(*id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Names of all services with stored spans, sorted.
    fn services(&self) -> StoreResult<Vec<String>>;

    /// Operations of a service, optionally only those seen with one span kind; sorted by name
    /// then kind.
    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>>;

    /// Ids of matching traces, newest first, at most the query's limit.
    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>>;

    /// Matching traces with all their spans, newest first, at most the query's limit.
    fn find_traces(&self, query: &TraceQuery) -> StoreResult<Vec<Trace>> {
        let ids = self.find_trace_ids(query)?;
        self.get_traces(&ids)
    }

    /// Dependency links summed over buckets starting in `(end - lookback, end]`, one entry per
    /// (parent, child) pair, sorted.
    fn dependencies(&self, end_nanos: u64, lookback_nanos: u64)
        -> StoreResult<Vec<DependencyLink>>;

    /// Stores closed RED buckets, merging each into a stored point of the same key (see the
    /// contract). The pipeline calls it with what [`spoor_core::red::RedAggregator`] drains.
    fn write_span_metrics(&self, points: &[RedPoint]) -> StoreResult<()>;

    /// The stored RED points of `services` (all services if empty) whose bucket
    /// `[bucket_start, bucket_start + bucket_nanos)` overlaps `[start_nanos, end_nanos]`, one per
    /// key, sorted by service, operation, kind, bucket start and bucket length.
    fn span_metrics(
        &self,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>>;

    /// Drops data that started before `cutoff_nanos` where the backend can do so cheaply
    /// (whole time partitions) and span-metric buckets that ended by `cutoff_nanos`; returns
    /// how many partitions were dropped.
    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64>;

    /// Counters for self-metrics.
    fn stats(&self) -> StoreStats;
}

/// Sums dependency links that name the same (parent, child) pair and sorts them: the one
/// definition of how buckets combine, shared by every backend.
pub fn merge_links(links: impl IntoIterator<Item = DependencyLink>) -> Vec<DependencyLink> {
    let mut map: std::collections::BTreeMap<(String, String), u64> =
        std::collections::BTreeMap::new();
    for l in links {
        *map.entry((l.parent, l.child)).or_default() += l.call_count;
    }
    map.into_iter()
        .map(|((parent, child), call_count)| DependencyLink {
            parent,
            child,
            call_count,
        })
        .collect()
}

/// Adds `more`, a point of the same key, to `into` (calls and errors summed, saturating;
/// histograms merged): how two writes of one RED bucket combine in every backend.
pub fn merge_red_point(into: &mut RedPoint, more: &RedPoint) {
    into.calls = into.calls.saturating_add(more.calls);
    into.errors = into.errors.saturating_add(more.errors);
    into.histogram.merge(&more.histogram);
}

/// Sums RED points of the same key ([`merge_red_point`]) and sorts them as `span_metrics`
/// returns them: how points of one key from several places (ingesters, objects) combine.
pub fn merge_red_points(points: impl IntoIterator<Item = RedPoint>) -> Vec<RedPoint> {
    let mut merged: std::collections::BTreeMap<(String, String, u8, u64, u64), RedPoint> =
        std::collections::BTreeMap::new();
    for p in points {
        let key = (
            p.service.clone(),
            p.operation.clone(),
            p.kind as u8,
            p.bucket_start_nanos,
            p.bucket_nanos,
        );
        match merged.get_mut(&key) {
            Some(into) => merge_red_point(into, &p),
            None => {
                merged.insert(key, p);
            }
        }
    }
    let mut out: Vec<RedPoint> = merged.into_values().collect();
    sort_red_points(&mut out);
    out
}

/// Whether the RED bucket `[bucket_start, bucket_start + bucket_nanos)` of `service` overlaps
/// `[start_nanos, end_nanos]` and its service is asked for (`services` empty: every service):
/// the one selection rule of `span_metrics`.
pub fn red_bucket_selected(
    service: &str,
    bucket_start: u64,
    bucket_nanos: u64,
    services: &[String],
    (start_nanos, end_nanos): (u64, u64),
) -> bool {
    bucket_start <= end_nanos
        && bucket_start.saturating_add(bucket_nanos) > start_nanos
        && (services.is_empty() || services.iter().any(|s| s == service))
}

/// Sorts RED points as `span_metrics` returns them.
pub fn sort_red_points(points: &mut [RedPoint]) {
    points.sort_by(|a, b| {
        (
            &a.service,
            &a.operation,
            a.kind,
            a.bucket_start_nanos,
            a.bucket_nanos,
        )
            .cmp(&(
                &b.service,
                &b.operation,
                b.kind,
                b.bucket_start_nanos,
                b.bucket_nanos,
            ))
    });
}

/// The ordering key of a trace for a query: the start of its latest span that matches every
/// criterion, or `None` when no span matches (so the trace does not match). `find_trace_ids`
/// sorts by this key, newest first; ties are broken by the higher trace id first.
pub fn match_key(query: &TraceQuery, spans: &[Span]) -> Option<u64> {
    spans
        .iter()
        .filter(|s| query.matches_span(s))
        .map(|s| s.start_unix_nanos)
        .max()
}

/// Sorts `(key, trace id)` candidates newest first (ties: higher id first) and keeps the
/// query's limit: the one ordering rule every backend applies.
pub fn rank(mut found: Vec<(u64, TraceId)>, query: &TraceQuery) -> Vec<TraceId> {
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.truncate(query.effective_limit());
    found.into_iter().map(|(_, id)| id).collect()
}
