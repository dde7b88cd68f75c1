//! [`SealingStore`]: a sled head whose `flush` also seals every partition and its aggregates to
//! object storage and drops the partition locally, read through a [`TieredStore`] (head and
//! bucket, or the bucket alone); it lets the storage conformance suite run against object
//! storage (an in-memory one in unit tests, a Garage cluster end to end).

use std::sync::Arc;
use std::time::Duration;

use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};
use spoor_store::embedded::{SledConfig, SledStore};
use spoor_store::{StoreResult, StoreStats, TraceStore};
use tokio::runtime::Handle;

use crate::seal::{seal_once, SealConfig};
use crate::store::{BlockStore, BlockStoreConfig, Bucket, TieredStore};

/// See the module doc. Methods block on `rt`: call them off the runtime.
pub struct SealingStore {
    sled: Arc<SledStore>,
    bucket: Bucket,
    rt: Handle,
    tiered: TieredStore,
    bucket_only: bool,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for SealingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingStore")
    }
}

impl SealingStore {
    /// A fresh sled store in a temporary directory over `bucket` (whose prefix should be new),
    /// read through both tiers.
    pub fn new(bucket: Bucket, rt: Handle) -> Self {
        Self::open(bucket, rt, false)
    }

    /// As [`SealingStore::new`], but every read is answered from the bucket alone (as a query
    /// node over object storage answers): what a flush sealed, dependency links and span
    /// metrics from the aggregate objects.
    pub fn bucket_only(bucket: Bucket, rt: Handle) -> Self {
        Self::open(bucket, rt, true)
    }

    fn open(bucket: Bucket, rt: Handle, bucket_only: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let sled = Arc::new(SledStore::open(SledConfig::new(dir.path())).expect("sled opens"));
        let blocks = Arc::new(BlockStore::new(
            bucket.clone(),
            rt.clone(),
            BlockStoreConfig {
                poll: Duration::from_secs(3600),
            },
        ));
        let head: Arc<dyn TraceStore> = sled.clone();
        SealingStore {
            tiered: TieredStore::new((!bucket_only).then_some(head), blocks, true),
            sled,
            bucket,
            rt,
            bucket_only,
            _dir: dir,
        }
    }

    /// Seals every partition (two rounds: upload, then drop) and lists the bucket again.
    pub fn seal_all(&self) -> StoreResult<()> {
        let cfg = SealConfig {
            node: "conformance".into(),
            seal_after: Duration::ZERO,
            keep_after_upload: Duration::ZERO,
            block_spans: crate::seal::SEAL_SPANS,
        };
        for _ in 0..2 {
            self.rt
                .block_on(seal_once(&self.sled, &self.bucket, &cfg, u64::MAX / 2))?;
        }
        self.tiered.blocks().refresh(true)
    }

    /// The sled head (empty after `seal_all` until the next write).
    pub fn head(&self) -> &Arc<SledStore> {
        &self.sled
    }
}

impl TraceStore for SealingStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        self.sled.write_spans(spans)
    }
    fn write_dependencies(&self, b: u64, links: &[DependencyLink]) -> StoreResult<()> {
        self.sled.write_dependencies(b, links)
    }
    fn flush(&self) -> StoreResult<()> {
        self.sled.flush()?;
        self.seal_all()
    }
    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        self.tiered.get_trace(id)
    }
    fn get_traces(&self, ids: &[TraceId]) -> StoreResult<Vec<Trace>> {
        self.tiered.get_traces(ids)
    }
    fn services(&self) -> StoreResult<Vec<String>> {
        self.tiered.services()
    }
    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        self.tiered.operations(service, kind)
    }
    fn find_trace_ids(&self, q: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        self.tiered.find_trace_ids(q)
    }
    fn dependencies(&self, end: u64, lookback: u64) -> StoreResult<Vec<DependencyLink>> {
        self.tiered.dependencies(end, lookback)
    }
    fn write_span_metrics(&self, points: &[RedPoint]) -> StoreResult<()> {
        self.sled.write_span_metrics(points)
    }
    fn span_metrics(&self, s: &[String], a: u64, b: u64) -> StoreResult<Vec<RedPoint>> {
        self.tiered.span_metrics(s, a, b)
    }
    fn expire_before(&self, cutoff: u64) -> StoreResult<u64> {
        let n = self.tiered.expire_before(cutoff)?;
        if self.bucket_only {
            // the head the reads do not see follows the same retention
            self.sled.expire_before(cutoff)?;
        }
        Ok(n)
    }
    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.sled.stats().spans_written,
            ..self.tiered.stats()
        }
    }
}
