//! The sealer (runs in every ingester, and in an all-in-one with object storage) and the
//! compactor (runs on one node).
//!
//! # Sealing
//! A time partition of the sled head is sealed once it ended `seal_after` ago: the blocks of
//! the partition not yet uploaded (sequence numbers above the recorded one) are read, built into
//! one object block named `<partition start, s>-<node>-<seal id, hex>-<last sequence, hex>`
//! (the head's [`SledStore::seal_id`]: a replaced disk, whose sequences restart, never reuses a
//! name), uploaded (data, then index) and confirmed by reading the sizes back; only then is the last sequence recorded
//! durably in sled (`SledStore::mark_sealed`). The partition is dropped locally at a later round
//! at least `keep_after_upload` after the confirmation (so query nodes have listed the new block
//! before the head stops answering for it) and only if no span arrived in it since
//! (`SledStore::drop_if_sealed`, checked under the store's partitions lock). Late spans for a
//! sealed partition land in new sled blocks with higher sequence numbers and are sealed as a
//! block of their own. A crash between upload and record re-uploads the same blocks under the
//! same name (an overwrite), so nothing is lost or doubled.
//!
//! Every round also uploads the aggregates (dependency links, RED points) of each partition
//! whose aggregates changed and that ended `seal_after` ago, as one object per partition and
//! node, overwritten until it converges (see [`crate::aggregates`]).
//!
//! # Compaction and retention
//! Blocks of the same partition start (from any node) are merged into one when there are at
//! least two and together they hold at most `max_spans`; the merged block lists the inputs in
//! `replaces`, so readers ignore the inputs as soon as it exists, and the inputs are deleted
//! after it was confirmed. Retention deletes whole blocks whose latest span started before the
//! cutoff (index first), and the aggregate objects of partitions that ended by it. Aggregate
//! objects are not merged (see [`crate::aggregates`]).

use std::sync::Arc;
use std::time::Duration;

use spoor_store::embedded::SledStore;
use spoor_store::{StoreError, StoreResult, TraceStore};

use crate::aggregates::{self, Aggregates};
use crate::block;
use crate::store::Bucket;

/// Settings of the sealer.
#[derive(Clone, Debug)]
pub struct SealConfig {
    /// This node's name in block ids (letters, digits, '-', '_'; unique per ingester).
    pub node: String,
    /// Seal a partition this long after its end.
    pub seal_after: Duration,
    /// Keep a sealed partition locally this long after its upload was confirmed.
    pub keep_after_upload: Duration,
    /// Most spans per object block ([`SEAL_SPANS`]): a partition is sealed as several blocks.
    pub block_spans: usize,
}

/// What one sealing round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Blocks uploaded.
    pub uploaded: u64,
    /// Spans in them.
    pub spans: u64,
    /// Bytes uploaded (data and index).
    pub bytes: u64,
    /// Local partitions dropped after their upload.
    pub dropped: u64,
    /// Aggregate objects uploaded.
    pub aggregates: u64,
    /// Bytes of those (apart from `bytes`, so that one stays the size of the blocks).
    pub aggregate_bytes: u64,
}

/// Most spans in one sealed object block (about 50-100 MB of decoded spans while it is built).
pub const SEAL_SPANS: usize = 100_000;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One sealing round at `now_nanos`. Sled work runs on blocking threads.
pub async fn seal_once(
    sled: &Arc<SledStore>,
    bucket: &Bucket,
    cfg: &SealConfig,
    now_nanos: u64,
) -> StoreResult<SealReport> {
    let mut report = SealReport::default();
    let len = sled.partition_nanos();
    let parts = sled.partition_numbers();
    // names this head in every object the round uploads (fixed by the first round)
    let s = sled.clone();
    let seal_id = blocking(move || s.seal_id(now_nanos)).await?;
    for p in parts {
        let end = p.saturating_add(1).saturating_mul(len);
        if end.saturating_add(nanos(cfg.seal_after)) > now_nanos {
            continue;
        }
        // one object block per at most `block_spans` spans, so memory stays bounded
        let block_spans = cfg.block_spans.max(1);
        loop {
            let s = sled.clone();
            let sealed = blocking(move || s.sealed_through(p)).await?;
            let s = sled.clone();
            let after = sealed.map(|(seq, _)| seq);
            let blocks = blocking(move || s.partition_blocks(p, after, block_spans)).await?;
            if blocks.is_empty() {
                if let Some((seq, at)) = sealed {
                    if at.saturating_add(nanos(cfg.keep_after_upload)) <= now_nanos {
                        let s = sled.clone();
                        if blocking(move || s.drop_if_sealed(p, seq)).await? {
                            report.dropped += 1;
                            tracing::info!(partition = p, "sealed partition dropped locally");
                        }
                    }
                }
                break;
            }
            let at = (p, end, seal_id);
            seal_blocks(sled, bucket, cfg, at, blocks, now_nanos, &mut report).await?;
        }
    }
    seal_aggregates(sled, bucket, cfg, seal_id, now_nanos, &mut report).await?;
    Ok(report)
}

/// Uploads the aggregates of every partition whose aggregates changed and that ended
/// `seal_after` ago: the head's whole contribution for it, overwriting the previous version;
/// the partition's mark is cleared only if nothing was written since it was read.
async fn seal_aggregates(
    sled: &Arc<SledStore>,
    bucket: &Bucket,
    cfg: &SealConfig,
    seal_id: u64,
    now_nanos: u64,
    report: &mut SealReport,
) -> StoreResult<()> {
    let len = sled.partition_nanos();
    let s = sled.clone();
    let changed = blocking(move || s.aggregates_changed()).await?;
    let ready: Vec<(u64, u64)> = changed
        .into_iter()
        .filter(|(p, _)| {
            p.saturating_add(1)
                .saturating_mul(len)
                .saturating_add(nanos(cfg.seal_after))
                <= now_nanos
        })
        .collect();
    if ready.is_empty() {
        return Ok(());
    }
    // what is uploaded is durable in the head first, so an upload is never more than a
    // restarted head would upload again
    let s = sled.clone();
    blocking(move || s.flush()).await?;
    for (p, count) in ready {
        let start = p.saturating_mul(len);
        let end = start.saturating_add(len);
        let s = sled.clone();
        let bytes = blocking(move || {
            let red = s.span_metrics(&[], start, end - 1)?;
            let links = s.dependency_buckets(start, end)?;
            aggregates::encode(&Aggregates::new(start, end, &red, &links))
        })
        .await?;
        let name = aggregates::object_name(start, end, &cfg.node, seal_id);
        bucket.upload_aggregates(&name, &bytes).await?;
        let s = sled.clone();
        blocking(move || s.mark_aggregates_sealed(p, count)).await?;
        report.aggregates += 1;
        report.aggregate_bytes += bytes.len() as u64;
        tracing::info!(partition = p, object = %name, bytes = bytes.len(), "aggregates sealed to object storage");
    }
    Ok(())
}

/// Builds `blocks` (of partition `p`, ending at `end`, of the head named `seal_id`) into one
/// object block, uploads it and records it.
async fn seal_blocks(
    sled: &Arc<SledStore>,
    bucket: &Bucket,
    cfg: &SealConfig,
    (p, end, seal_id): (u64, u64, u64),
    blocks: Vec<(u64, Vec<spoor_core::Span>)>,
    now_nanos: u64,
    report: &mut SealReport,
) -> StoreResult<()> {
    let len = sled.partition_nanos();
    let last = blocks.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
    let spans: Vec<_> = blocks.into_iter().flat_map(|(_, s)| s).collect();
    let n = spans.len() as u64;
    // The head's seal id is in the name: sequence numbers restart on a replaced disk, and a
    // late block of an old partition must not overwrite what the previous disk sealed.
    let id = format!(
        "{:012}-{}-{seal_id:016x}-{last:016x}",
        (p.saturating_mul(len)) / 1_000_000_000,
        cfg.node
    );
    let built = tokio::task::spawn_blocking(move || block::build(&id, spans, Vec::new(), end))
        .await
        .map_err(|e| StoreError::Io(format!("block build failed: {e}")))??;
    bucket.upload(&built).await?;
    let s = sled.clone();
    blocking(move || s.mark_sealed(p, last, now_nanos)).await?;
    report.uploaded += 1;
    report.spans += n;
    report.bytes += (built.data.len() + built.index.len()) as u64;
    tracing::info!(partition = p, block = %built.head.id, spans = n, bytes = built.data.len() + built.index.len(), "partition sealed to object storage");
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(format!("storage task failed: {e}")))?
}

/// Settings of the compactor.
#[derive(Clone, Debug)]
pub struct CompactConfig {
    /// Merge blocks of one partition start while together they hold at most this many spans.
    pub max_spans: u64,
    /// Delete blocks whose time partition ended longer ago than this.
    pub retention: Duration,
}

/// What one compaction round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Merged blocks written.
    pub merged: u64,
    /// Input blocks deleted after a merge.
    pub inputs_deleted: u64,
    /// Blocks deleted by retention.
    pub expired: u64,
    /// Aggregate objects deleted by retention.
    pub aggregates_expired: u64,
}

/// One compaction and retention round at `now_nanos`.
pub async fn compact_once(
    bucket: &Bucket,
    cfg: &CompactConfig,
    now_nanos: u64,
) -> StoreResult<CompactReport> {
    let mut report = CompactReport::default();
    let cutoff = now_nanos.saturating_sub(nanos(cfg.retention));
    let mut heads = Vec::new();
    let mut bodies = std::collections::HashMap::new();
    for (id, _) in bucket.list_blocks().await? {
        match bucket.read_head(&id).await {
            Ok((h, body)) => {
                bodies.insert(id, body);
                heads.push(h);
            }
            Err(e) => {
                tracing::warn!(block = %id, error = %e, "compactor skips an unreadable block")
            }
        }
    }
    let replaced: std::collections::HashSet<String> = heads
        .iter()
        .flat_map(|h| h.replaces.iter().cloned())
        .collect();
    // inputs of a merge that were not deleted yet (a crash between merge and delete)
    for id in &replaced {
        if heads.iter().any(|h| &h.id == id) {
            bucket.delete(id).await?;
            report.inputs_deleted += 1;
        }
    }
    heads.retain(|h| !replaced.contains(&h.id));
    for h in heads.iter().filter(|h| h.window_end <= cutoff) {
        bucket.delete(&h.id).await?;
        report.expired += 1;
    }
    heads.retain(|h| h.window_end > cutoff);
    report.aggregates_expired = bucket.expire_aggregates(cutoff).await?;
    let mut groups: std::collections::BTreeMap<String, Vec<block::BlockHead>> = Default::default();
    for h in heads {
        let start = h.id.split('-').next().unwrap_or("").to_owned();
        groups.entry(start).or_default().push(h);
    }
    for (start, mut group) in groups {
        group.sort_by_key(|h| h.spans);
        let mut take = Vec::new();
        let mut total = 0u64;
        for h in group {
            if total + h.spans > cfg.max_spans && !take.is_empty() {
                break;
            }
            total += h.spans;
            take.push(h);
        }
        if take.len() < 2 {
            continue;
        }
        let mut spans = Vec::with_capacity(total as usize);
        for h in &take {
            match bodies.get(&h.id) {
                Some(body) => spans.extend(bucket.read_spans(&h.id, body).await?),
                None => spans.extend(bucket.read_all(&h.id).await?.1),
            }
        }
        let mut ids: Vec<String> = take.iter().map(|h| h.id.clone()).collect();
        ids.sort();
        let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
        for b in ids.iter().flat_map(|i| i.bytes().chain([0])) {
            fnv = (fnv ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let id = format!("{start}-compacted-{fnv:016x}");
        let inputs = ids.clone();
        let window_end = take.iter().map(|h| h.window_end).max().unwrap_or(0);
        let built =
            tokio::task::spawn_blocking(move || block::build(&id, spans, inputs, window_end))
                .await
                .map_err(|e| StoreError::Io(format!("block build failed: {e}")))??;
        bucket.upload(&built).await?;
        report.merged += 1;
        for id in &ids {
            bucket.delete(id).await?;
            report.inputs_deleted += 1;
        }
        tracing::info!(block = %built.head.id, inputs = ids.len(), spans = total, "blocks compacted");
    }
    Ok(report)
}
