//! History in object storage (#10), wired into the daemon: the sealer loop (ingester, and an
//! all-in-one on sled), the compactor loop (the node with `--object-store.compaction`) and the
//! block store readers use. The format and the logic are `spoor-objstore`'s.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use spoor_objstore::seal::{compact_once, seal_once, CompactConfig, SealConfig};
use spoor_objstore::{BlockStore, BlockStoreConfig, Bucket, S3Settings};
use spoor_store::embedded::SledStore;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Validated `object-store.*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStoreSettings {
    /// The bucket and how to reach it.
    pub s3: S3Settings,
    /// Seal a partition this long after it ended.
    pub seal_after: Duration,
    /// Keep a sealed partition locally this long after the upload was confirmed.
    pub keep_after_upload: Duration,
    /// How often readers list blocks and the sealer looks for partitions.
    pub poll: Duration,
    /// This node's name in block ids.
    pub node: String,
    /// Whether this node runs the compactor.
    pub compaction: bool,
}

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

/// Seals partitions every `poll` until `stop`; failures are logged, counted and retried at the
/// next round (the partition stays in sled until an upload is confirmed).
pub fn spawn_sealer(
    sled: Arc<SledStore>,
    bucket: Bucket,
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
        let (sled, bucket, cfg, metrics) =
            (sled.clone(), bucket.clone(), cfg.clone(), metrics.clone());
        async move {
            match seal_once(&sled, &bucket, &cfg, crate::pipeline::now_nanos()).await {
                Ok(r) => {
                    let m = &metrics.object_store;
                    m.blocks_uploaded.fetch_add(r.uploaded, Relaxed);
                    m.spans_uploaded.fetch_add(r.spans, Relaxed);
                    m.bytes_uploaded.fetch_add(r.bytes, Relaxed);
                    m.partitions_dropped.fetch_add(r.dropped, Relaxed);
                }
                Err(e) => {
                    metrics.object_store.errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "sealing to object storage failed; retrying next round");
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

/// Compacts and applies `retention` to blocks every `poll` (at least every 10 s) until `stop`.
pub fn spawn_compactor(
    bucket: Bucket,
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
            match compact_once(&bucket, &cfg, crate::pipeline::now_nanos()).await {
                Ok(r) => {
                    let m = &metrics.object_store;
                    m.blocks_compacted.fetch_add(r.merged, Relaxed);
                    m.blocks_deleted
                        .fetch_add(r.inputs_deleted + r.expired, Relaxed);
                }
                Err(e) => {
                    metrics.object_store.errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "compaction failed; retrying next round");
                }
            }
        }
    })
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
