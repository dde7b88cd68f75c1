//! Dependency links and RED span metrics in object storage: one small *aggregate object* per
//! (time partition, node), so a reader of the bucket alone answers `/api/dependencies` and the
//! SPM API (`/api/metrics/*`), and a node's aggregates outlive its disk.
//!
//! # What an object holds
//! `<prefix>/aggregates/<start s>-<end s>-<node>-<seal id>` holds everything one sled head (one
//! node, one tenant) counted for the time partition `[start, end)` of that head: the RED points
//! whose bucket *starts* in it and the dependency links (per bucket) whose bucket starts in it.
//! Each point and link thus belongs to exactly one partition of its node. The name's seconds are
//! the partition's start rounded down and end rounded up (the object holds both exactly); the
//! seal id is the head's [`SledStore::seal_id`](spoor_store::embedded::SledStore::seal_id), so a
//! head that starts empty again (a replaced disk) writes objects of its own next to the old
//! ones instead of overwriting them.
//!
//! # How it is written: overwritten until it converges
//! The sled head marks a partition whenever links or RED points of its range are written
//! (`SledStore::aggregates_changed`). The sealer ([`crate::seal::seal_once`]) takes every marked
//! partition that ended `seal_after` ago, flushes the head, reads the head's aggregates of that
//! range, uploads them as the object (an overwrite of the previous version: the head keeps its
//! aggregates for the whole retention, see below, so each upload is the node's *whole*
//! contribution so far, never a delta), confirms the size and clears the mark if nothing was
//! written in between. Late spans, late links (a parent arriving after its child) and re-opened
//! RED buckets mark the partition again and it is uploaded again, so each object converges to
//! its node's full contribution. Aggregates are marked and uploaded independently of the span
//! blocks: they outlive the sled partition, which is dropped once sealed.
//!
//! # How it is read
//! A reader ([`AggregateReader`], inside [`crate::BlockStore`]) lists `aggregates/` at most every
//! poll, reads new or changed objects once (16 at a time) and keeps a summary of each (its range
//! and where its RED buckets end) in memory and the decoded objects in a bounded cache. A query
//! sums the objects that can hold an answer: RED points of one key with
//! [`spoor_store::merge_red_points`], links per (parent, child) with [`spoor_store::merge_links`].
//! - **No double counting.** Objects are disjoint: one per (partition, node, seal id), and a
//!   point or link is in the partition of its bucket start. An object is replaced whole by a PUT
//!   (a reader sees one version or the other), and a query reads each object once, so two
//!   versions of one object are never summed. The head and the bucket are never summed either:
//!   a store with a head ([`crate::TieredStore`]) takes per key the more complete of the two
//!   answers (see [`most_complete_red`]), never their sum.
//! - **Tenancy.** Objects live under the tenant's prefix (`<prefix>/tenants/<tenant>/aggregates/`)
//!   like its blocks, written from the tenant's own head and read by a reader over that prefix
//!   only; a tenant never sees another's.
//! - **Retention.** An object is deleted with the blocks of its partition: once its partition
//!   ended by the retention cutoff (the compactor, or an all-in-one's `expire_before`). RED
//!   buckets that ended by the cutoff inside a partition that has not are hidden by readers that
//!   applied it ([`AggregateReader::hide_before`]), as the head drops them.
//! - **Compaction** leaves aggregate objects out: they are few (partitions × nodes) and small,
//!   and merging objects their nodes may still overwrite would lose or double counts.
//! - **Damage.** An object that fails its checksum or does not decode is logged with its key,
//!   counted in the reader's errors and skipped (once per version); the others still answer.
//! - **Older buckets.** A bucket written before aggregate objects existed (or a head's
//!   aggregates from before the upgrade) simply has fewer objects: readers answer what exists.
//!
//! # Why the head's aggregates are complete
//! The sled head keeps RED points until they ended by the retention cutoff and dependency links
//! forever (every backend does: no retention is applied to links); neither is dropped with a
//! sealed partition. So an ingester or all-in-one answers its whole contribution for the
//! retention, and each upload is complete for its node.
//!
//! # Encoding
//! `MAGIC (8, the digit is the format version) ++ zstd(postcard(Aggregates)) ++ XXH64 of
//! everything before (u64 LE)`: names interned once per object, points and links in a stable
//! order (so equal contents give equal bytes). Decoding checks the checksum, the size and that
//! every index and bucket lies inside the object's range.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use spoor_core::red::{LatencyHistogram, RedPoint};
use spoor_core::{DependencyLink, SpanKind};
use spoor_store::embedded::xxh64;
use spoor_store::{
    merge_links, merge_red_points, red_bucket_selected, sort_red_points, StoreError, StoreResult,
};
use tokio::runtime::Handle;

use crate::block::{decompress, MAX_RAW_BYTES};
use crate::store::Bucket;

/// First bytes of every aggregate object; the digit is the format version.
pub const MAGIC: &[u8; 8] = b"SPOORAG1";
/// The folder of aggregate objects under a (tenant's) prefix.
pub const AGGREGATES_DIR: &str = "aggregates";
/// Decoded aggregate objects a reader keeps, in bytes of their decompressed encoding.
const CACHE_BYTES: usize = 32 << 20;
/// Objects read at once.
const READ_AHEAD: usize = 16;
const SEC: u64 = 1_000_000_000;
/// zstd level: objects are small and read more often than written.
const ZSTD_LEVEL: i32 = 3;

/// One RED point, its names as indexes into [`Aggregates`]' names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RedRecord {
    service: u32,
    operation: u32,
    kind: u8,
    bucket_start: u64,
    bucket_nanos: u64,
    calls: u64,
    errors: u64,
    histogram: LatencyHistogram,
}

/// One dependency link of one bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LinkRecord {
    bucket_start: u64,
    parent: u32,
    child: u32,
    calls: u64,
}

/// The contents of one aggregate object: one head's RED points and dependency links whose
/// bucket starts in `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Start of the time partition, nanoseconds since the epoch.
    pub start: u64,
    /// End of the time partition (exclusive).
    pub end: u64,
    names: Vec<String>,
    red: Vec<RedRecord>,
    links: Vec<LinkRecord>,
}

impl Aggregates {
    /// The aggregates of `[start, end)` from `red` points and per-bucket `links`; points and
    /// links whose bucket starts elsewhere are left out (they belong to another partition).
    pub fn new(
        start: u64,
        end: u64,
        red: &[RedPoint],
        links: &[(u64, Vec<DependencyLink>)],
    ) -> Self {
        let inside = |t: u64| (start..end).contains(&t);
        let red: Vec<&RedPoint> = red
            .iter()
            .filter(|p| inside(p.bucket_start_nanos))
            .collect();
        let links: Vec<(u64, &DependencyLink)> = links
            .iter()
            .filter(|(b, _)| inside(*b))
            .flat_map(|(b, l)| l.iter().map(move |l| (*b, l)))
            .collect();
        let names: BTreeSet<&str> = red
            .iter()
            .flat_map(|p| [p.service.as_str(), p.operation.as_str()])
            .chain(
                links
                    .iter()
                    .flat_map(|(_, l)| [l.parent.as_str(), l.child.as_str()]),
            )
            .collect();
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        let id = |n: &str| {
            names
                .binary_search_by(|x| x.as_str().cmp(n))
                .unwrap_or_default() as u32
        };
        let mut red: Vec<RedRecord> = red
            .iter()
            .map(|p| RedRecord {
                service: id(&p.service),
                operation: id(&p.operation),
                kind: p.kind as u8,
                bucket_start: p.bucket_start_nanos,
                bucket_nanos: p.bucket_nanos,
                calls: p.calls,
                errors: p.errors,
                histogram: p.histogram.clone(),
            })
            .collect();
        red.sort_by_key(|r| {
            (
                r.bucket_start,
                r.bucket_nanos,
                r.service,
                r.operation,
                r.kind,
            )
        });
        let mut links: Vec<LinkRecord> = links
            .iter()
            .map(|(b, l)| LinkRecord {
                bucket_start: *b,
                parent: id(&l.parent),
                child: id(&l.child),
                calls: l.call_count,
            })
            .collect();
        links.sort_by_key(|l| (l.bucket_start, l.parent, l.child));
        Aggregates {
            start,
            end,
            names,
            red,
            links,
        }
    }

    fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", String::as_str)
    }

    /// The RED points, ordered by bucket.
    pub fn red_points(&self) -> impl Iterator<Item = RedPoint> + '_ {
        self.red.iter().map(|r| RedPoint {
            service: self.name(r.service).to_owned(),
            operation: self.name(r.operation).to_owned(),
            kind: crate::block::kind_of(r.kind),
            bucket_start_nanos: r.bucket_start,
            bucket_nanos: r.bucket_nanos,
            calls: r.calls,
            errors: r.errors,
            histogram: r.histogram.clone(),
        })
    }

    /// The dependency links with their bucket start, ordered by bucket.
    pub fn links(&self) -> impl Iterator<Item = (u64, DependencyLink)> + '_ {
        self.links.iter().map(|l| {
            (
                l.bucket_start,
                DependencyLink {
                    parent: self.name(l.parent).to_owned(),
                    child: self.name(l.child).to_owned(),
                    call_count: l.calls,
                },
            )
        })
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.red.is_empty() && self.links.is_empty()
    }

    fn summary(&self) -> Summary {
        Summary {
            start: self.start,
            end: self.end,
            red_until: self
                .red
                .iter()
                .map(|r| r.bucket_start.saturating_add(r.bucket_nanos))
                .max(),
            links: !self.links.is_empty(),
        }
    }

    /// Whether every index and bucket lies where it must (checked on decode).
    fn consistent(&self) -> bool {
        let n = self.names.len();
        let inside = |t: u64| (self.start..self.end).contains(&t);
        self.start < self.end
            && self.red.iter().all(|r| {
                (r.service as usize) < n
                    && (r.operation as usize) < n
                    && usize::from(r.kind) < SpanKind::ALL.len()
                    && inside(r.bucket_start)
                    && r.bucket_nanos > 0
            })
            && self.links.iter().all(|l| {
                (l.parent as usize) < n && (l.child as usize) < n && inside(l.bucket_start)
            })
    }
}

/// Encodes an aggregate object (see the module doc).
pub fn encode(a: &Aggregates) -> StoreResult<Vec<u8>> {
    let raw = postcard::to_allocvec(a).map_err(|e| StoreError::Io(e.to_string()))?;
    let packed =
        zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| StoreError::Io(format!("zstd: {e}")))?;
    let mut out = Vec::with_capacity(MAGIC.len() + packed.len() + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&packed);
    let sum = xxh64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

fn corrupt(location: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: location.to_owned(),
        detail: detail.into(),
    }
}

/// Decodes and checks an aggregate object; `location` names it in errors. Returns the
/// aggregates and the size of their decompressed encoding.
pub fn decode(bytes: &[u8], location: &str) -> StoreResult<(Aggregates, usize)> {
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            location,
            "not a spoor aggregate object (bad magic)",
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut want = [0u8; 8];
    want.copy_from_slice(sum);
    let (want, got) = (u64::from_le_bytes(want), xxh64(body));
    if want != got {
        return Err(corrupt(
            location,
            format!(
                "checksum {got:016x} of {} bytes, {want:016x} stored",
                body.len()
            ),
        ));
    }
    let raw = decompress(&body[MAGIC.len()..], MAX_RAW_BYTES)
        .map_err(|e| corrupt(location, format!("zstd: {e}")))?;
    let a: Aggregates = postcard::from_bytes(&raw).map_err(|e| corrupt(location, e.to_string()))?;
    if !a.consistent() {
        return Err(corrupt(
            location,
            "names or buckets outside the object's range",
        ));
    }
    Ok((a, raw.len()))
}

/// The object name of the aggregates of `[start, end)` sealed by `node` from the head with
/// `seal_id`: `<start s, 12 digits>-<end s rounded up, 12 digits>-<node>-<seal id, hex>`.
pub fn object_name(start: u64, end: u64, node: &str, seal_id: u64) -> String {
    format!(
        "{:012}-{:012}-{node}-{seal_id:016x}",
        start / SEC,
        end.div_ceil(SEC)
    )
}

/// The partition range `[start, end)` in a name made by [`object_name`] (in whole seconds,
/// start rounded down and end up), or `None` for a name that is not one.
pub fn name_range(name: &str) -> Option<(u64, u64)> {
    let mut parts = name.splitn(3, '-');
    let start: u64 = parts.next()?.parse().ok()?;
    let end: u64 = parts.next()?.parse().ok()?;
    parts.next().filter(|rest| !rest.is_empty())?;
    Some((start.checked_mul(SEC)?, end.checked_mul(SEC)?))
}

/// What a reader keeps in memory of a readable object.
#[derive(Clone, Copy, Debug)]
struct Summary {
    start: u64,
    end: u64,
    /// Latest end of a RED bucket in it (`None`: no points).
    red_until: Option<u64>,
    links: bool,
}

/// One listed object: its version (ETag, or size and time) and its summary, `None` when this
/// version could not be read (reported once).
struct Listed {
    version: String,
    summary: Option<Summary>,
}

#[derive(Default)]
struct Listing {
    objects: BTreeMap<String, Listed>,
    refreshed: Option<Instant>,
}

/// (name, version, decoded object, cost in bytes), most recently used last.
type Cache = (usize, VecDeque<(String, String, Arc<Aggregates>, usize)>);

/// The read side of aggregate objects under one prefix (see the module doc). Methods block on
/// object-storage requests through the runtime passed in: call them off the runtime.
pub struct AggregateReader {
    poll: Duration,
    listing: RwLock<Listing>,
    refresh_lock: Mutex<()>,
    cache: Mutex<Cache>,
    hidden_before: AtomicU64,
    errors: AtomicU64,
}

impl AggregateReader {
    /// A reader listing the bucket at most every `poll`.
    pub fn new(poll: Duration) -> Self {
        AggregateReader {
            poll,
            listing: RwLock::new(Listing::default()),
            refresh_lock: Mutex::new(()),
            cache: Mutex::new((0, VecDeque::new())),
            hidden_before: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Object-storage requests that failed and objects that could not be read, since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    /// From now on, hides RED buckets that ended by `cutoff_nanos` (retention applied by this
    /// node; the objects holding them go once their whole partition ended by the cutoff).
    pub fn hide_before(&self, cutoff_nanos: u64) {
        self.hidden_before.fetch_max(cutoff_nanos, Relaxed);
    }

    fn remember(&self, name: &str, version: &str, a: Arc<Aggregates>, cost: usize) {
        let mut c = self.cache.lock();
        if let Some(i) = c.1.iter().position(|(n, ..)| n == name) {
            if let Some((_, _, _, old)) = c.1.remove(i) {
                c.0 -= old;
            }
        }
        c.0 += cost;
        c.1.push_back((name.to_owned(), version.to_owned(), a, cost));
        while c.0 > CACHE_BYTES && c.1.len() > 1 {
            if let Some((_, _, _, old)) = c.1.pop_front() {
                c.0 -= old;
            }
        }
    }

    fn cached(&self, name: &str, version: &str) -> Option<Arc<Aggregates>> {
        let c = self.cache.lock();
        c.1.iter()
            .find(|(n, v, ..)| n == name && v == version)
            .map(|(_, _, a, _)| a.clone())
    }

    /// Reads the objects `names` (their current version), READ_AHEAD at a time; failures are
    /// logged with the object's key and counted, a damaged version is remembered as such.
    fn fetch(&self, bucket: &Bucket, rt: &Handle, names: Vec<String>) -> Vec<Arc<Aggregates>> {
        let got: Vec<_> = rt.block_on(async {
            futures_util::stream::iter(names.into_iter().map(|name| async move {
                let got = bucket.read_aggregates(&name).await;
                (name, got)
            }))
            .buffer_unordered(READ_AHEAD)
            .collect()
            .await
        });
        let mut out = Vec::new();
        for (name, got) in got {
            match got {
                Ok((version, a, cost)) => {
                    let a = Arc::new(a);
                    self.remember(&name, &version, a.clone(), cost);
                    self.listing.write().objects.insert(
                        name,
                        Listed {
                            version,
                            summary: Some(a.summary()),
                        },
                    );
                    out.push(a);
                }
                Err((version, e)) => {
                    self.errors.fetch_add(1, Relaxed);
                    let key = bucket.aggregates_path(&name);
                    tracing::warn!(object = %key, error = %e, "skipping unreadable aggregate object");
                    if let (Some(version), StoreError::Corrupt { .. }) = (version, &e) {
                        self.listing.write().objects.insert(
                            name,
                            Listed {
                                version,
                                summary: None,
                            },
                        );
                    }
                }
            }
        }
        out
    }

    /// Lists the objects again if the list is older than the poll (or `force`); new and
    /// changed objects are read once for their summary.
    pub fn refresh(&self, bucket: &Bucket, rt: &Handle, force: bool) -> StoreResult<()> {
        let stale = |l: &Listing| force || l.refreshed.is_none_or(|t| t.elapsed() >= self.poll);
        if !stale(&self.listing.read()) {
            return Ok(());
        }
        let _one = self.refresh_lock.lock();
        if !force && !stale(&self.listing.read()) {
            return Ok(());
        }
        let listed = match rt.block_on(bucket.list_aggregates()) {
            Ok(l) => l,
            Err(e) => {
                self.errors.fetch_add(1, Relaxed);
                if self.listing.read().refreshed.is_some() {
                    tracing::warn!(error = %e, "object storage list of aggregates failed; using the last list");
                    return Ok(());
                }
                return Err(e);
            }
        };
        let changed: Vec<String> = {
            let l = self.listing.read();
            listed
                .iter()
                .filter(|(name, version)| l.objects.get(name).is_none_or(|o| &o.version != version))
                .map(|(name, _)| name.clone())
                .collect()
        };
        self.fetch(bucket, rt, changed);
        let listed: HashMap<String, String> = listed.into_iter().collect();
        let mut l = self.listing.write();
        l.objects.retain(|name, _| listed.contains_key(name));
        l.refreshed = Some(Instant::now());
        Ok(())
    }

    /// The readable objects whose summary `pick` selects, each in one version.
    fn selected(
        &self,
        bucket: &Bucket,
        rt: &Handle,
        pick: impl Fn(&Summary) -> bool,
    ) -> StoreResult<Vec<Arc<Aggregates>>> {
        self.refresh(bucket, rt, false)?;
        let wanted: Vec<(String, String)> = self
            .listing
            .read()
            .objects
            .iter()
            .filter(|(_, o)| o.summary.as_ref().is_some_and(&pick))
            .map(|(name, o)| (name.clone(), o.version.clone()))
            .collect();
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (name, version) in wanted {
            match self.cached(&name, &version) {
                Some(a) => out.push(a),
                None => missing.push(name),
            }
        }
        out.extend(self.fetch(bucket, rt, missing));
        Ok(out)
    }

    /// RED points of `services` (all if empty) whose bucket overlaps `[start_nanos, end_nanos]`,
    /// summed over every node's object, one per key, sorted as `TraceStore::span_metrics` says.
    pub fn span_metrics(
        &self,
        bucket: &Bucket,
        rt: &Handle,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        let objects = self.selected(bucket, rt, |s| {
            s.start <= end_nanos && s.red_until.is_some_and(|u| u > start_nanos)
        })?;
        let hidden = self.hidden_before.load(Relaxed);
        Ok(merge_red_points(
            objects.iter().flat_map(|a| a.red_points()).filter(|p| {
                p.bucket_end_nanos() > hidden
                    && red_bucket_selected(
                        &p.service,
                        p.bucket_start_nanos,
                        p.bucket_nanos,
                        services,
                        (start_nanos, end_nanos),
                    )
            }),
        ))
    }

    /// Dependency links of the buckets starting in `(end - lookback, end]`, summed over every
    /// node's object per (parent, child), sorted.
    pub fn dependencies(
        &self,
        bucket: &Bucket,
        rt: &Handle,
        end_nanos: u64,
        lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        if lookback_nanos == 0 {
            return Ok(Vec::new());
        }
        let after = end_nanos.saturating_sub(lookback_nanos);
        let objects = self.selected(bucket, rt, |s| {
            s.links && s.start <= end_nanos && s.end > after.saturating_add(1)
        })?;
        Ok(merge_links(
            objects
                .iter()
                .flat_map(|a| a.links())
                .filter(|(b, _)| *b > after && *b <= end_nanos)
                .map(|(_, l)| l),
        ))
    }
}

/// Per key the more complete of a head's and the bucket's RED points: the one with more calls
/// (the head's on a tie). Both count the same spans (the bucket holds what the heads sealed), so
/// neither is added to the other; each is at most the truth, so the larger is the better answer:
/// normally the head's (it has everything, the bucket lags by a sealing round), the bucket's
/// where the head lost its data (a replaced ingester disk) or a head is down. Sorted as
/// `TraceStore::span_metrics` says.
pub fn most_complete_red(head: Vec<RedPoint>, blocks: Vec<RedPoint>) -> Vec<RedPoint> {
    let key = |p: &RedPoint| {
        (
            p.service.clone(),
            p.operation.clone(),
            p.kind as u8,
            p.bucket_start_nanos,
            p.bucket_nanos,
        )
    };
    let mut best: BTreeMap<_, RedPoint> = head.into_iter().map(|p| (key(&p), p)).collect();
    for p in blocks {
        match best.get(&key(&p)) {
            Some(h) if h.calls >= p.calls => {}
            _ => {
                best.insert(key(&p), p);
            }
        }
    }
    let mut out: Vec<RedPoint> = best.into_values().collect();
    sort_red_points(&mut out);
    out
}

/// Per (parent, child) the larger of a head's and the bucket's call counts over the asked range
/// (see [`most_complete_red`]), sorted.
pub fn most_complete_links(
    head: Vec<DependencyLink>,
    blocks: Vec<DependencyLink>,
) -> Vec<DependencyLink> {
    let mut best: BTreeMap<(String, String), u64> = BTreeMap::new();
    for l in head.into_iter().chain(blocks) {
        let n = best.entry((l.parent, l.child)).or_default();
        *n = (*n).max(l.call_count);
    }
    best.into_iter()
        .map(|((parent, child), call_count)| DependencyLink {
            parent,
            child,
            call_count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * SEC;
    const START: u64 = 1_700_000_000 * SEC;

    pub(crate) fn point(service: &str, start: u64, calls: u64) -> RedPoint {
        let mut histogram = LatencyHistogram::new();
        for i in 0..calls {
            histogram.record_nanos((i + 1) * 1_000_000);
        }
        RedPoint {
            service: service.into(),
            operation: "op".into(),
            kind: SpanKind::Server,
            bucket_start_nanos: start,
            bucket_nanos: MIN,
            calls,
            errors: calls / 2,
            histogram,
        }
    }

    pub(crate) fn link(parent: &str, child: &str, call_count: u64) -> DependencyLink {
        DependencyLink {
            parent: parent.into(),
            child: child.into(),
            call_count,
        }
    }

    fn sample() -> Aggregates {
        Aggregates::new(
            START,
            START + 60 * MIN,
            &[
                point("front", START - MIN, 9), // another partition's
                point("front", START, 3),
                point("back", START + MIN, 2),
            ],
            &[
                (START, vec![link("front", "back", 4)]),
                (START + 60 * MIN, vec![link("front", "db", 1)]), // the next partition's
            ],
        )
    }

    #[test]
    fn an_object_round_trips_and_holds_only_its_partition() {
        let a = sample();
        let bytes = encode(&a).unwrap();
        assert_eq!(&bytes[..8], MAGIC);
        let (back, raw) = decode(&bytes, "aggregates/x").unwrap();
        assert_eq!(back, a);
        assert!(raw > 0);
        assert_eq!(
            back.red_points().collect::<Vec<_>>(),
            vec![point("front", START, 3), point("back", START + MIN, 2)]
        );
        assert_eq!(
            back.links().collect::<Vec<_>>(),
            vec![(START, link("front", "back", 4))]
        );
        // equal contents, equal bytes (an unchanged re-upload is the same object)
        assert_eq!(encode(&sample()).unwrap(), bytes);
        let s = back.summary();
        assert_eq!(
            (s.start, s.end, s.red_until, s.links),
            (START, START + 60 * MIN, Some(START + 2 * MIN), true)
        );
    }

    #[test]
    fn damaged_objects_are_errors_naming_the_object() {
        let bytes = encode(&sample()).unwrap();
        let mut flipped = bytes.clone();
        flipped[12] ^= 0x40;
        let mut bad_sum = bytes.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        for (what, bad, want) in [
            ("empty", &b""[..], "bad magic"),
            (
                "other magic",
                &b"SPOORIX1\0\0\0\0\0\0\0\0\0\0"[..],
                "bad magic",
            ),
            ("torn", &bytes[..bytes.len() - 5], "checksum"),
            ("flipped byte", &flipped[..], "checksum"),
            ("bad checksum", &bad_sum[..], "checksum"),
        ] {
            let e = decode(bad, "t/aggregates/x").unwrap_err().to_string();
            assert!(
                e.contains("t/aggregates/x") && e.contains(want),
                "{what}: {e}"
            );
        }
        // a well-formed object whose contents contradict its range
        let mut a = sample();
        a.red[0].bucket_start = a.end;
        let e = decode(&encode(&a).unwrap(), "x").unwrap_err().to_string();
        assert!(e.contains("outside the object's range"), "{e}");
        let mut a = sample();
        a.links[0].child = 99;
        assert!(decode(&encode(&a).unwrap(), "x").is_err());
    }

    #[test]
    fn names_carry_the_partition_range() {
        let name = object_name(START, START + 60 * MIN, "ingester-a_1", 0xabc);
        assert_eq!(
            name,
            "001700000000-001700003600-ingester-a_1-0000000000000abc"
        );
        assert_eq!(name_range(&name), Some((START, START + 60 * MIN)));
        // a partition that is not whole seconds: start rounded down, end up
        let odd = object_name(START + 1, START + SEC + 1, "n", 1);
        assert_eq!(name_range(&odd), Some((START, START + 2 * SEC)));
        for bad in ["", "001700000000", "x-1-n-1", "1-2-", "1-y-n"] {
            assert_eq!(name_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_more_complete_tier_wins_per_key_and_tiers_are_never_added() {
        let head = vec![point("a", START, 5), point("b", START, 1)];
        let blocks = vec![
            point("a", START, 3),
            point("b", START, 4),
            point("c", START, 2),
        ];
        let got = most_complete_red(head, blocks);
        let calls: Vec<(&str, u64)> = got.iter().map(|p| (p.service.as_str(), p.calls)).collect();
        assert_eq!(calls, vec![("a", 5), ("b", 4), ("c", 2)]);
        assert_eq!(
            most_complete_links(
                vec![link("a", "b", 5), link("a", "c", 1)],
                vec![link("a", "b", 3), link("a", "c", 2), link("b", "c", 7)],
            ),
            vec![link("a", "b", 5), link("a", "c", 2), link("b", "c", 7)]
        );
    }
}
