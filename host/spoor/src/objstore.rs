//! History in object storage (#10), wired into the daemon: the sealer loop (ingester, and an
//! all-in-one on sled: span blocks and the aggregate objects of dependency links and span
//! metrics), the compactor loop (the node with `--object-store.compaction`) and the block store
//! readers use. The format and the logic are `spoor-objstore`'s.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use spoor_objstore::seal::{compact_once, seal_once, CompactConfig, SealConfig};
use spoor_objstore::{BlockStore, BlockStoreConfig, Bucket};
use spoor_store::embedded::SledStore;
use tokio::sync::watch;

use crate::metrics::Metrics;

pub use spoor_config::ObjectStoreSettings;

/// The bucket (no request yet).
pub fn bucket(s: &ObjectStoreSettings) -> anyhow::Result<Bucket> {
    spoor_objstore::connect(&s.s3).map_err(|e| anyhow::anyhow!(e))
}

/// The read side, listing blocks at most every `poll`.
pub fn block_store(bucket: Bucket, s: &ObjectStoreSettings) -> Arc<BlockStore> {
    Arc::new(BlockStore::new(
        bucket,
        tokio::runtime::Handle::current(),
        BlockStoreConfig { poll: s.poll },
    ))
}

/// The sled heads to seal and where each goes, asked anew at every round (one, or one per
/// tenant into the tenant's prefix; tenants created since the last round are included).
pub type Heads = Arc<dyn Fn() -> Vec<(Arc<SledStore>, Bucket)> + Send + Sync>;

/// Seals partitions of every head every `poll` until `stop`; failures are logged, counted and
/// retried at the next round (the partition stays in sled until an upload is confirmed).
pub fn spawn_sealer(
    heads: Heads,
    s: &ObjectStoreSettings,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let cfg = SealConfig {
        node: s.node.clone(),
        seal_after: s.seal_after,
        keep_after_upload: s.keep_after_upload,
        block_spans: spoor_objstore::seal::SEAL_SPANS,
    };
    run_every(s.poll, stop, move || {
        let (heads, cfg, metrics) = (heads(), cfg.clone(), metrics.clone());
        async move {
            for (sled, bucket) in heads {
                match seal_once(&sled, &bucket, &cfg, crate::pipeline::now_nanos()).await {
                    Ok(r) => {
                        let m = &metrics.object_store;
                        m.blocks_uploaded.fetch_add(r.uploaded, Relaxed);
                        m.spans_uploaded.fetch_add(r.spans, Relaxed);
                        m.bytes_uploaded.fetch_add(r.bytes, Relaxed);
                        m.partitions_dropped.fetch_add(r.dropped, Relaxed);
                        m.aggregates_uploaded.fetch_add(r.aggregates, Relaxed);
                        m.aggregate_bytes_uploaded
                            .fetch_add(r.aggregate_bytes, Relaxed);
                    }
                    Err(e) => {
                        metrics.object_store.errors.fetch_add(1, Relaxed);
                        tracing::warn!(prefix = %bucket.prefix, error = %e, "sealing to object storage failed; retrying next round");
                    }
                }
            }
        }
    })
}

/// Runs `round` every `every` (a round that overruns delays the next) until `stop` changes.
fn run_every<F, Fut>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    round: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            round().await;
        }
    })
}

/// Compacts and applies `retention` to blocks every `poll` (at least every 10 s) until `stop`;
/// with `tenants`, in each tenant's prefix found in the bucket (`<prefix>/tenants/<tenant>`),
/// each apart from the others, instead of the prefix itself.
pub fn spawn_compactor(
    bucket: Bucket,
    tenants: bool,
    s: &ObjectStoreSettings,
    retention: Duration,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let cfg = CompactConfig {
        // compaction decodes its inputs: ~400k spans is a few hundred MB at most
        max_spans: 400_000,
        retention,
    };
    run_every(s.poll.max(Duration::from_secs(10)), stop, move || {
        let (bucket, cfg, metrics) = (bucket.clone(), cfg.clone(), metrics.clone());
        async move {
            let buckets = if tenants {
                match tenant_buckets(&bucket).await {
                    Ok(b) => b,
                    Err(e) => {
                        metrics.object_store.errors.fetch_add(1, Relaxed);
                        tracing::warn!(error = %e, "listing tenants for compaction failed; retrying next round");
                        return;
                    }
                }
            } else {
                vec![bucket]
            };
            for bucket in buckets {
                match compact_once(&bucket, &cfg, crate::pipeline::now_nanos()).await {
                    Ok(r) => {
                        let m = &metrics.object_store;
                        m.blocks_compacted.fetch_add(r.merged, Relaxed);
                        m.blocks_deleted
                            .fetch_add(r.inputs_deleted + r.expired, Relaxed);
                        m.aggregates_deleted
                            .fetch_add(r.aggregates_expired, Relaxed);
                    }
                    Err(e) => {
                        metrics.object_store.errors.fetch_add(1, Relaxed);
                        tracing::warn!(prefix = %bucket.prefix, error = %e, "compaction failed; retrying next round");
                    }
                }
            }
        }
    })
}

/// The prefix of every tenant that has one in the bucket; folders that are not tenant names
/// are skipped with a warning.
async fn tenant_buckets(bucket: &Bucket) -> spoor_store::StoreResult<Vec<Bucket>> {
    Ok(bucket
        .tenants()
        .await?
        .into_iter()
        .filter_map(|name| match crate::auth::TenantId::parse(&name) {
            Ok(t) => Some(bucket.tenant(t.as_str())),
            Err(e) => {
                tracing::warn!(prefix = %bucket.prefix, "{e}; not compacted");
                None
            }
        })
        .collect())
}

/// Object-storage counters (rendered only where object storage is configured).
#[derive(Debug, Default)]
pub struct ObjectStoreMetrics {
    /// Whether this node uses object storage.
    pub enabled: std::sync::atomic::AtomicBool,
    /// Blocks sealed and uploaded.
    pub blocks_uploaded: std::sync::atomic::AtomicU64,
    /// Spans in them.
    pub spans_uploaded: std::sync::atomic::AtomicU64,
    /// Bytes uploaded (data and index objects).
    pub bytes_uploaded: std::sync::atomic::AtomicU64,
    /// Local partitions dropped after their upload was confirmed.
    pub partitions_dropped: std::sync::atomic::AtomicU64,
    /// Merged blocks written by the compactor.
    pub blocks_compacted: std::sync::atomic::AtomicU64,
    /// Blocks deleted (compaction inputs and retention).
    pub blocks_deleted: std::sync::atomic::AtomicU64,
    /// Aggregate objects (links and span metrics of a partition and node) uploaded.
    pub aggregates_uploaded: std::sync::atomic::AtomicU64,
    /// Bytes of those.
    pub aggregate_bytes_uploaded: std::sync::atomic::AtomicU64,
    /// Aggregate objects deleted by retention.
    pub aggregates_deleted: std::sync::atomic::AtomicU64,
    /// Sealing or compaction rounds that failed (retried).
    pub errors: std::sync::atomic::AtomicU64,
}

impl ObjectStoreMetrics {
    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        if !self.enabled.load(Relaxed) {
            return;
        }
        for (name, help, v) in [
            (
                "spoor_objstore_blocks_uploaded_total",
                "Blocks sealed and uploaded to object storage.",
                &self.blocks_uploaded,
            ),
            (
                "spoor_objstore_spans_uploaded_total",
                "Spans in blocks uploaded to object storage.",
                &self.spans_uploaded,
            ),
            (
                "spoor_objstore_bytes_uploaded_total",
                "Bytes uploaded to object storage (data and index objects).",
                &self.bytes_uploaded,
            ),
            (
                "spoor_objstore_partitions_dropped_total",
                "Local time partitions dropped after their upload was confirmed.",
                &self.partitions_dropped,
            ),
            (
                "spoor_objstore_blocks_compacted_total",
                "Merged blocks written by the compactor.",
                &self.blocks_compacted,
            ),
            (
                "spoor_objstore_blocks_deleted_total",
                "Blocks deleted (compaction inputs and retention).",
                &self.blocks_deleted,
            ),
            (
                "spoor_objstore_aggregates_uploaded_total",
                "Aggregate objects (dependency links and span metrics of one partition and node) uploaded to object storage.",
                &self.aggregates_uploaded,
            ),
            (
                "spoor_objstore_aggregate_bytes_uploaded_total",
                "Bytes of aggregate objects uploaded to object storage (each rewrite counted).",
                &self.aggregate_bytes_uploaded,
            ),
            (
                "spoor_objstore_aggregates_deleted_total",
                "Aggregate objects deleted by retention.",
                &self.aggregates_deleted,
            ),
            (
                "spoor_objstore_errors_total",
                "Sealing or compaction rounds that failed (retried next round).",
                &self.errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
    }
}
