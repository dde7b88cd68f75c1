//! The default, embedded backend: compressed per-trace blocks in hourly time partitions on sled.
//!
//! # Layout
//! Partition `p` holds spans whose start lies in `[p * partition, (p + 1) * partition)`; it is
//! three sled trees, so retention drops whole partitions (Jaeger's daily index + index cleaner):
//! - `p{p}.blk`: block sequence number (u64 BE) -> `raw length (u32 LE) ++ zstd(level 1,
//!   encode_block(spans of ONE write_spans call that fall in p))`. Spans of a trace stay together
//!   in one segment of the block; readers decompress a block and decode only the wanted segment.
//! - `p{p}.tid`: trace id (16 B) ++ block seq (u64 BE) -> empty. `get_trace` scans this prefix in
//!   every live partition.
//! - `p{p}.svc`: service id (u32 BE) ++ latest span start of the service in that trace and
//!   block (u64 BE) ++ trace id (16 B) ++ block seq (u64 BE) -> a summary: spread of span starts,
//!   the (operation, kind, min duration, max duration) seen, and a small bloom filter of the
//!   `key=value` texts of span, resource and event attributes. One entry per (trace, service,
//!   block), not per span.
//!
//! Global trees: `strings` (id u32 BE -> service or operation name; cached in memory), `ops`
//! (service id ++ operation id ++ kind -> empty; cached in memory), `deps` (bucket start u64 BE
//! ++ parent id ++ child id -> call count u64 BE, summed by a sled merge operator) and `meta`
//! (the partition length, fixed when the database is created).
//!
//! # Finding traces
//! Candidates come from `p{p}.svc`, newest partition first and, inside a partition, by
//! descending latest start (a k-way merge over the services asked for). A summary that cannot
//! hold a matching span (operation, kind, duration, time window or a tag absent from the bloom
//! filter) is skipped; every other candidate trace is read in full and verified with
//! [`TraceQuery::matches_trace`], so there are no false positives. The scan stops once `limit`
//! verified traces are newer than anything the remaining entries could produce, which keeps
//! the answer exactly the newest-first ranking the contract defines. Tags whose match Jaeger
//! synthesises from span fields (`error`, `span.kind`, `otel.*`, `service.name`) and values
//! whose text form is not unique (doubles, bytes) are never used to skip a candidate.
//!
//! # Corrupt data
//! A block that fails to decompress or decode is logged with `tracing::warn` naming partition
//! and block key and is skipped: `get_trace` returns the spans of the other blocks, and fails
//! with [`StoreError::Corrupt`] only when some block of the trace was unreadable and no span
//! could be read at all. `find_*` skip a candidate whose trace is unreadable. An index summary
//! that cannot be decoded makes its trace a candidate (verification decides), never a miss.
//!
//! # Durability
//! [`Durability::Periodic`]: sled flushes its log at least every 1000 ms on its own.
//! [`Durability::Sync`]: no background flushing; the pipeline calls `flush` (sled's
//! `Db::flush`) before acknowledging a batch. Either way `flush` makes all earlier writes
//! durable.

use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use sled::{Batch, IVec, Tree};
use spoor_core::block::{encode_block_refs, BlockReader};
use spoor_core::{
    AnyValue, DependencyLink, KeyValue, Operation, Span, SpanKind, Trace, TraceId, TraceQuery,
};

use crate::{match_key, merge_links, StoreError, StoreResult, StoreStats, TraceStore};

/// When the store makes writes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// sled flushes its log in the background at least every 1000 ms.
    #[default]
    Periodic,
    /// No background flushing: the pipeline calls [`TraceStore::flush`] before acknowledging.
    Sync,
}

/// Settings of a [`SledStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SledConfig {
    /// Directory of the sled database (created if missing).
    pub path: PathBuf,
    /// How long data is kept; [`SledStore::expire`] drops partitions older than this (72 h).
    pub retention: Duration,
    /// Length of one time partition (1 h). Fixed when the database is created: a database
    /// reopened with another value keeps its own.
    pub partition: Duration,
    /// When writes become durable (periodic).
    pub durability: Durability,
    /// Size of sled's page cache in bytes (64 MiB).
    pub cache_bytes: u64,
}

impl SledConfig {
    /// The defaults (72 h retention, 1 h partitions, periodic durability, 64 MiB cache) at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledConfig {
            path: path.into(),
            retention: Duration::from_secs(72 * 3600),
            partition: Duration::from_secs(3600),
            durability: Durability::Periodic,
            cache_bytes: 64 << 20,
        }
    }
}

/// zstd level for blocks: fast enough for >100k spans/s per core, still ~3-5x smaller.
const ZSTD_LEVEL: i32 = 1;
/// Largest decompressed block accepted (guards allocations against a corrupt length).
const MAX_BLOCK_BYTES: usize = 1 << 30;
/// Decompressed blocks kept for repeated reads (find verifies several traces of one block).
const BLOCK_CACHE_BYTES: usize = 16 << 20;
/// Bloom filter size cap per summary, in bytes.
const MAX_BLOOM_BYTES: usize = 256;
/// Bloom filter probes per item (8 bits per item: about 2.4 % false positives).
const BLOOM_PROBES: u32 = 4;
/// Marker value for attributes whose text form is not unique (doubles, bytes).
const ANY_TEXT: &str = "\u{0}*";
/// Tags whose match can come from span fields instead of attributes.
const SYNTHETIC_TAGS: &[&str] = &[
    "span.kind",
    "error",
    "otel.status_code",
    "otel.status_description",
    "otel.scope.name",
    "otel.scope.version",
    "service.name",
];

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

#[derive(Clone)]
struct Partition {
    blk: Tree,
    tid: Tree,
    svc: Tree,
}

/// Interned service and operation names, mirrored in the `strings` tree.
#[derive(Default)]
struct Strings {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

/// A decompressed block and its (partition, seq).
type CachedBlock = ((u64, u64), Arc<Vec<u8>>);

/// Recently decompressed blocks, by (partition, seq).
#[derive(Default)]
struct BlockCache {
    entries: VecDeque<CachedBlock>,
    bytes: usize,
}

/// The sled-backed store. See the module documentation for the layout.
pub struct SledStore {
    db: sled::Db,
    partition_nanos: u64,
    retention: Duration,
    durability: Durability,
    partitions: RwLock<BTreeMap<u64, Partition>>,
    strings_tree: Tree,
    strings: RwLock<Strings>,
    ops_tree: Tree,
    ops: RwLock<HashSet<(u32, u32, u8)>>,
    deps: Tree,
    next_seq: AtomicU64,
    spans_written: AtomicU64,
    partitions_expired: AtomicU64,
    cache: Mutex<BlockCache>,
}

fn add_u64(_key: &[u8], old: Option<&[u8]>, more: &[u8]) -> Option<Vec<u8>> {
    let read = |b: Option<&[u8]>| {
        b.and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    Some(
        read(old)
            .saturating_add(read(Some(more)))
            .to_be_bytes()
            .to_vec(),
    )
}

fn be_u32(b: &[u8]) -> Option<u32> {
    b.get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
}

fn be_u64(b: &[u8]) -> Option<u64> {
    b.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

impl SledStore {
    /// Opens (or creates) the database at `cfg.path`.
    pub fn open(cfg: SledConfig) -> StoreResult<Self> {
        let configured = u64::try_from(cfg.partition.as_nanos()).unwrap_or(u64::MAX);
        if configured < 1_000_000_000 {
            return Err(StoreError::Io(format!(
                "invalid sled config: partition length {:?} is below 1s",
                cfg.partition
            )));
        }
        let db = sled::Config::new()
            .path(&cfg.path)
            .cache_capacity(cfg.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(match cfg.durability {
                Durability::Periodic => Some(1000),
                Durability::Sync => None,
            })
            .open()
            .map_err(|e| {
                StoreError::Io(format!(
                    "cannot open sled database at {}: {e}",
                    cfg.path.display()
                ))
            })?;

        let meta = db.open_tree("meta").map_err(io)?;
        let partition_nanos = match meta.get(b"partition_nanos").map_err(io)? {
            Some(v) => match be_u64(&v) {
                Some(stored) if stored > 0 => {
                    if stored != configured {
                        tracing::warn!(
                            stored,
                            configured,
                            "sled store keeps the partition length it was created with"
                        );
                    }
                    stored
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        location: "tree meta, key partition_nanos".into(),
                        detail: format!("bad value {v:?}"),
                    })
                }
            },
            None => {
                meta.insert(b"partition_nanos", &configured.to_be_bytes())
                    .map_err(io)?;
                configured
            }
        };

        let strings_tree = db.open_tree("strings").map_err(io)?;
        let mut strings = Strings::default();
        for item in strings_tree.iter() {
            let (k, v) = item.map_err(io)?;
            let (Some(id), Ok(name)) = (be_u32(&k), std::str::from_utf8(&v)) else {
                return Err(StoreError::Corrupt {
                    location: format!("tree strings, key {k:?}"),
                    detail: "bad entry".into(),
                });
            };
            if id as usize != strings.names.len() {
                return Err(StoreError::Corrupt {
                    location: format!("tree strings, key {id}"),
                    detail: "ids are not contiguous".into(),
                });
            }
            strings.ids.insert(name.to_owned(), id);
            strings.names.push(name.to_owned());
        }

        let ops_tree = db.open_tree("ops").map_err(io)?;
        let mut ops = HashSet::new();
        for item in ops_tree.iter() {
            let (k, _) = item.map_err(io)?;
            match (be_u32(&k), k.get(4..).and_then(be_u32), k.get(8)) {
                (Some(s), Some(o), Some(kind)) if k.len() == 9 => {
                    ops.insert((s, o, *kind));
                }
                _ => tracing::warn!(key = ?k, "skipping malformed entry of tree ops"),
            }
        }

        let deps = db.open_tree("deps").map_err(io)?;
        deps.set_merge_operator(add_u64);

        let mut partitions = BTreeMap::new();
        let mut next_seq = 0u64;
        for name in db.tree_names() {
            let Some(p) = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| n.strip_prefix('p'))
                .and_then(|n| n.strip_suffix(".blk"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let part = open_partition(&db, p)?;
            if let Some((k, _)) = part.blk.last().map_err(io)? {
                next_seq = next_seq.max(be_u64(&k).unwrap_or(0).saturating_add(1));
            }
            partitions.insert(p, part);
        }

        Ok(SledStore {
            db,
            partition_nanos,
            retention: cfg.retention,
            durability: cfg.durability,
            partitions: RwLock::new(partitions),
            strings_tree,
            strings: RwLock::new(strings),
            ops_tree,
            ops: RwLock::new(ops),
            deps,
            next_seq: AtomicU64::new(next_seq),
            spans_written: AtomicU64::new(0),
            partitions_expired: AtomicU64::new(0),
            cache: Mutex::new(BlockCache::default()),
        })
    }

    /// Drops the partitions that ended before `now_nanos - retention`; the daemon calls this
    /// periodically. Returns how many partitions were dropped.
    pub fn expire(&self, now_nanos: u64) -> StoreResult<u64> {
        let retention = u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX);
        self.expire_before(now_nanos.saturating_sub(retention))
    }

    /// The durability mode the store was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn intern(&self, name: &str) -> StoreResult<u32> {
        if let Some(id) = self.strings.read().ids.get(name) {
            return Ok(*id);
        }
        let mut s = self.strings.write();
        if let Some(id) = s.ids.get(name) {
            return Ok(*id);
        }
        let id = u32::try_from(s.names.len())
            .map_err(|_| StoreError::Io("more than 2^32 service and operation names".into()))?;
        self.strings_tree
            .insert(id.to_be_bytes(), name.as_bytes())
            .map_err(io)?;
        s.ids.insert(name.to_owned(), id);
        s.names.push(name.to_owned());
        Ok(id)
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        self.strings.read().ids.get(name).copied()
    }

    fn name(&self, id: u32) -> String {
        self.strings
            .read()
            .names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// The partitions, with the ones `needed` created if missing. Held as a read guard for the
    /// whole write so that `expire_before` cannot drop a tree while it is written.
    fn partitions_for(
        &self,
        needed: &[u64],
    ) -> StoreResult<RwLockReadGuard<'_, BTreeMap<u64, Partition>>> {
        let read = self.partitions.read();
        if needed.iter().all(|p| read.contains_key(p)) {
            return Ok(read);
        }
        drop(read);
        let mut write = self.partitions.write();
        for p in needed {
            if !write.contains_key(p) {
                let part = open_partition(&self.db, *p)?;
                write.insert(*p, part);
            }
        }
        Ok(RwLockWriteGuard::downgrade(write))
    }

    fn live_partitions(&self) -> Vec<(u64, Partition)> {
        self.partitions
            .read()
            .iter()
            .map(|(p, part)| (*p, part.clone()))
            .collect()
    }

    fn write_partition(&self, part: &Partition, spans: &[&Span]) -> StoreResult<()> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let raw = encode_block_refs(spans.iter().copied());
        let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL)
            .map_err(|e| StoreError::Io(format!("zstd compression failed: {e}")))?;
        let mut value = Vec::with_capacity(4 + compressed.len());
        value.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        value.extend_from_slice(&compressed);

        // Group by trace, then by service inside the trace.
        let mut traces: HashMap<TraceId, Vec<&Span>> = HashMap::new();
        for s in spans {
            traces.entry(s.trace_id).or_default().push(s);
        }
        let mut tid = Batch::default();
        let mut svc = Batch::default();
        let mut new_ops: Vec<(u32, u32, u8)> = Vec::new();
        let mut resource_ids: HashMap<*const spoor_core::Resource, u32> = HashMap::new();
        for (trace_id, trace_spans) in &traces {
            let mut key = [0u8; 24];
            key[..16].copy_from_slice(&trace_id.to_bytes());
            key[16..].copy_from_slice(&seq.to_be_bytes());
            tid.insert(&key[..], &[][..]);
            let mut summaries: Vec<(u32, Summary)> = Vec::new();
            for s in trace_spans {
                let service = match resource_ids.get(&Arc::as_ptr(&s.resource)) {
                    Some(id) => *id,
                    None => {
                        let id = self.intern(s.service())?;
                        resource_ids.insert(Arc::as_ptr(&s.resource), id);
                        id
                    }
                };
                let op = self.intern(&s.name)?;
                let entry = (service, op, s.kind as u8);
                if !new_ops.contains(&entry) && !self.ops.read().contains(&entry) {
                    new_ops.push(entry);
                }
                let i = match summaries.iter().position(|(id, _)| *id == service) {
                    Some(i) => i,
                    None => {
                        summaries.push((service, Summary::new(s.start_unix_nanos)));
                        summaries.len() - 1
                    }
                };
                summaries[i].1.add(s, op);
            }
            for (service, summary) in summaries {
                let mut key = Vec::with_capacity(36);
                key.extend_from_slice(&service.to_be_bytes());
                key.extend_from_slice(&summary.max_start.to_be_bytes());
                key.extend_from_slice(&trace_id.to_bytes());
                key.extend_from_slice(&seq.to_be_bytes());
                svc.insert(key, summary.encode());
            }
        }
        // Names and operations first, then the block, then the indexes that point at it.
        if !new_ops.is_empty() {
            let mut ops = self.ops.write();
            for (s, o, k) in new_ops {
                if ops.insert((s, o, k)) {
                    let mut key = [0u8; 9];
                    key[..4].copy_from_slice(&s.to_be_bytes());
                    key[4..8].copy_from_slice(&o.to_be_bytes());
                    key[8] = k;
                    self.ops_tree.insert(key, &[][..]).map_err(io)?;
                }
            }
        }
        part.blk.insert(seq.to_be_bytes(), value).map_err(io)?;
        part.tid.apply_batch(tid).map_err(io)?;
        part.svc.apply_batch(svc).map_err(io)?;
        Ok(())
    }

    /// The decompressed block `seq` of partition `p`, from the cache or the tree.
    fn block(&self, p: u64, part: &Partition, seq: u64) -> StoreResult<Option<Arc<Vec<u8>>>> {
        if let Some((_, b)) = self
            .cache
            .lock()
            .entries
            .iter()
            .find(|(k, _)| *k == (p, seq))
        {
            return Ok(Some(b.clone()));
        }
        let Some(value) = part.blk.get(seq.to_be_bytes()).map_err(io)? else {
            return Ok(None);
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            location: format!("partition {p}, block {seq}"),
            detail,
        };
        let raw_len = value
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes);
        let raw_len = match raw_len {
            Some(n) if (n as usize) <= MAX_BLOCK_BYTES => n as usize,
            _ => {
                return Err(corrupt(format!(
                    "bad block length header in {} bytes",
                    value.len()
                )))
            }
        };
        let raw = zstd::bulk::decompress(&value[4..], raw_len)
            .map_err(|e| corrupt(format!("zstd: {e}")))?;
        if raw.len() != raw_len {
            return Err(corrupt(format!(
                "decompressed to {} bytes instead of {raw_len}",
                raw.len()
            )));
        }
        let raw = Arc::new(raw);
        let mut cache = self.cache.lock();
        cache.bytes += raw.len();
        cache.entries.push_back(((p, seq), raw.clone()));
        while cache.bytes > BLOCK_CACHE_BYTES && cache.entries.len() > 1 {
            if let Some((_, old)) = cache.entries.pop_front() {
                cache.bytes -= old.len();
            }
        }
        Ok(Some(raw))
    }

    fn read_trace(
        &self,
        id: TraceId,
        partitions: &[(u64, Partition)],
    ) -> StoreResult<Option<Trace>> {
        let mut spans = Vec::new();
        let mut first_error = None;
        for (p, part) in partitions {
            for item in part.tid.scan_prefix(id.to_bytes()) {
                let (key, _) = item.map_err(io)?;
                let Some(seq) = key.get(16..).and_then(be_u64) else {
                    tracing::warn!(partition = p, key = ?key, "skipping malformed trace index key");
                    continue;
                };
                let decoded = self.block(*p, part, seq).and_then(|b| match b {
                    None => Ok(Vec::new()),
                    Some(bytes) => BlockReader::open(&bytes)
                        .and_then(|r| r.decode_trace(id))
                        .map_err(|e| StoreError::Corrupt {
                            location: format!("partition {p}, block {seq}"),
                            detail: e.to_string(),
                        }),
                });
                match decoded {
                    Ok(mut s) => spans.append(&mut s),
                    Err(e @ StoreError::Corrupt { .. }) => {
                        tracing::warn!(trace_id = %id, error = %e, "skipping unreadable block");
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        match (spans.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            (true, None) => Ok(None),
            (false, _) => Ok(Some(Trace {
                trace_id: id,
                spans,
            })),
        }
    }

    /// The newest matching traces, with their spans.
    fn find(&self, query: &TraceQuery) -> StoreResult<Vec<Trace>> {
        let limit = query.effective_limit();
        let filter = match Filter::new(self, query) {
            Some(f) => f,
            None => return Ok(Vec::new()), // a name the store has never seen
        };
        let services: Vec<u32> = match &query.service {
            Some(name) => match self.lookup(name) {
                Some(id) => vec![id],
                None => return Ok(Vec::new()),
            },
            None => {
                let mut ids: Vec<u32> = self.ops.read().iter().map(|(s, _, _)| *s).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
        };
        let partitions = self.live_partitions();
        // (key, id) of the best `limit` verified traces, smallest on top.
        let mut best: BinaryHeap<std::cmp::Reverse<(u64, TraceId)>> = BinaryHeap::new();
        let mut found: HashMap<TraceId, Trace> = HashMap::new();
        let mut seen: HashSet<TraceId> = HashSet::new();
        'partitions: for (p, part) in partitions.iter().rev() {
            let p_start = p.saturating_mul(self.partition_nanos);
            let p_end = p_start.saturating_add(self.partition_nanos - 1);
            if p_start > query.start_max_nanos || p_end < query.start_min_nanos {
                continue;
            }
            let lo = query.start_min_nanos.max(p_start);
            let mut iters: Vec<std::iter::Peekable<std::iter::Rev<sled::Iter>>> = services
                .iter()
                .map(|s| {
                    let mut from = s.to_be_bytes().to_vec();
                    from.extend_from_slice(&lo.to_be_bytes());
                    let mut to = s.to_be_bytes().to_vec();
                    to.extend_from_slice(&p_end.to_be_bytes());
                    to.extend_from_slice(&[0xff; 24]);
                    part.svc.range(from..=to).rev().peekable()
                })
                .collect();
            loop {
                // The entry with the latest start among the services' iterators.
                let mut pick: Option<(usize, u64)> = None;
                for (i, it) in iters.iter_mut().enumerate() {
                    let start = match it.peek() {
                        None => continue,
                        Some(Err(_)) => u64::MAX,
                        Some(Ok((k, _))) => k.get(4..).and_then(be_u64).unwrap_or(u64::MAX),
                    };
                    if pick.is_none_or(|(_, best_start)| start > best_start) {
                        pick = Some((i, start));
                    }
                }
                let Some((i, max_start)) = pick else { break };
                let Some(item) = iters[i].next() else { break };
                let (key, value) = item.map_err(io)?;
                if best.len() >= limit
                    && best
                        .peek()
                        .is_some_and(|std::cmp::Reverse((k, _))| *k > max_start)
                {
                    break 'partitions;
                }
                let Some(trace_id) = key.get(12..28).and_then(TraceId::from_slice) else {
                    tracing::warn!(partition = p, key = ?key, "skipping malformed service index key");
                    continue;
                };
                if seen.contains(&trace_id) || !filter.may_match(max_start, &value) {
                    continue;
                }
                seen.insert(trace_id);
                let trace = match self.read_trace(trace_id, &partitions) {
                    Ok(Some(t)) => t,
                    Ok(None) => continue,
                    Err(e @ StoreError::Corrupt { .. }) => {
                        tracing::warn!(trace_id = %trace_id, error = %e, "skipping unreadable candidate trace");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(k) = match_key(query, &trace.spans) {
                    best.push(std::cmp::Reverse((k, trace_id)));
                    found.insert(trace_id, trace);
                    if best.len() > limit {
                        if let Some(std::cmp::Reverse((_, dropped))) = best.pop() {
                            found.remove(&dropped);
                        }
                    }
                }
            }
        }
        let mut ranked: Vec<(u64, TraceId)> =
            best.into_iter().map(|std::cmp::Reverse(x)| x).collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ranked
            .into_iter()
            .filter_map(|(_, id)| found.remove(&id))
            .collect())
    }
}

fn open_partition(db: &sled::Db, p: u64) -> StoreResult<Partition> {
    Ok(Partition {
        blk: db.open_tree(format!("p{p}.blk")).map_err(io)?,
        tid: db.open_tree(format!("p{p}.tid")).map_err(io)?,
        svc: db.open_tree(format!("p{p}.svc")).map_err(io)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Index summaries
// ---------------------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// FNV-1a over `key`, a separator and `text`: stable across runs, which the stored filters need.
fn tag_hash(key: &str, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(std::iter::once(0xff)).chain(text.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn bloom_bits(h: u64, m_bits: u64) -> impl Iterator<Item = u64> {
    let h1 = h & 0xffff_ffff;
    let h2 = (h >> 32) | 1;
    (0..u64::from(BLOOM_PROBES)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m_bits)
}

/// What one (trace, service, block) index entry says about its spans.
struct Summary {
    min_start: u64,
    max_start: u64,
    /// (operation id, kind, min duration, max duration)
    ops: Vec<(u32, u8, u64, u64)>,
    hashes: Vec<u64>,
}

impl Summary {
    fn new(start: u64) -> Self {
        Summary {
            min_start: start,
            max_start: start,
            ops: Vec::new(),
            hashes: Vec::new(),
        }
    }

    fn add(&mut self, s: &Span, op: u32) {
        self.min_start = self.min_start.min(s.start_unix_nanos);
        self.max_start = self.max_start.max(s.start_unix_nanos);
        let d = s.duration_nanos.max(0) as u64;
        let kind = s.kind as u8;
        match self
            .ops
            .iter_mut()
            .find(|(o, k, _, _)| *o == op && *k == kind)
        {
            Some(e) => {
                e.2 = e.2.min(d);
                e.3 = e.3.max(d);
            }
            None => self.ops.push((op, kind, d, d)),
        }
        self.add_attrs(&s.attributes);
        self.add_attrs(&s.resource.attributes);
        for e in &s.events {
            self.add_attrs(&e.attributes);
        }
    }

    fn add_attrs(&mut self, attrs: &[KeyValue]) {
        for kv in attrs {
            let h = match &kv.value {
                AnyValue::Str(v) => tag_hash(&kv.key, v),
                AnyValue::Bool(b) => tag_hash(&kv.key, if *b { "true" } else { "false" }),
                AnyValue::Int(i) => tag_hash(&kv.key, &i.to_string()),
                AnyValue::Double(_) | AnyValue::Bytes(_) => tag_hash(&kv.key, ANY_TEXT),
                AnyValue::Array(_) | AnyValue::Map(_) => continue, // never match a tag
            };
            self.hashes.push(h);
        }
    }

    fn encode(mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.ops.len() * 8 + self.hashes.len());
        put_varint(&mut out, self.max_start - self.min_start);
        put_varint(&mut out, self.ops.len() as u64);
        for (op, kind, min, max) in &self.ops {
            put_varint(&mut out, u64::from(*op));
            out.push(*kind);
            put_varint(&mut out, *min);
            put_varint(&mut out, max - min);
        }
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let bytes = self.hashes.len().clamp(1, MAX_BLOOM_BYTES);
        let mut bloom = vec![0u8; if self.hashes.is_empty() { 0 } else { bytes }];
        if !bloom.is_empty() {
            let m = (bloom.len() * 8) as u64;
            for h in &self.hashes {
                for bit in bloom_bits(*h, m) {
                    bloom[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            }
        }
        out.extend_from_slice(&bloom);
        out
    }
}

/// A query turned into ids and hashes, to test summaries without decoding traces.
struct Filter {
    start_min: u64,
    start_max: u64,
    operation: Option<u32>,
    kind: Option<u8>,
    duration_min: u64,
    duration_max: u64,
    /// Per tag: (hash of key=value, hash of key=ANY_TEXT); synthetic tags are left out.
    tags: Vec<(u64, u64)>,
}

impl Filter {
    /// `None` when the query names an operation the store has never seen.
    fn new(store: &SledStore, q: &TraceQuery) -> Option<Self> {
        let operation = match &q.operation {
            Some(name) => Some(store.lookup(name)?),
            None => None,
        };
        Some(Filter {
            start_min: q.start_min_nanos,
            start_max: q.start_max_nanos,
            operation,
            kind: q.span_kind.map(|k| k as u8),
            duration_min: q.duration_min_nanos.unwrap_or(0),
            duration_max: q.duration_max_nanos.unwrap_or(u64::MAX),
            tags: q
                .tags
                .iter()
                .filter(|(k, _)| !SYNTHETIC_TAGS.contains(&k.as_str()))
                .map(|(k, v)| (tag_hash(k, v), tag_hash(k, ANY_TEXT)))
                .collect(),
        })
    }

    /// Whether the summary's spans may hold one matching the query (never a false "no").
    fn may_match(&self, max_start: u64, value: &[u8]) -> bool {
        self.check(max_start, value).unwrap_or(true)
    }

    fn check(&self, max_start: u64, b: &[u8]) -> Option<bool> {
        let mut pos = 0;
        let min_start = max_start.checked_sub(get_varint(b, &mut pos)?)?;
        if min_start > self.start_max || max_start < self.start_min {
            return Some(false);
        }
        let n = get_varint(b, &mut pos)?;
        let mut any_op = false;
        for _ in 0..n {
            let op = u32::try_from(get_varint(b, &mut pos)?).ok()?;
            let kind = *b.get(pos)?;
            pos += 1;
            let min = get_varint(b, &mut pos)?;
            let max = min.checked_add(get_varint(b, &mut pos)?)?;
            any_op |= self.operation.is_none_or(|o| o == op)
                && self.kind.is_none_or(|k| k == kind)
                && max >= self.duration_min
                && min <= self.duration_max;
        }
        if !any_op {
            return Some(false);
        }
        let bloom = b.get(pos..)?;
        if self.tags.is_empty() {
            return Some(true);
        }
        if bloom.is_empty() {
            return Some(false);
        }
        let m = (bloom.len() * 8) as u64;
        let has =
            |h: u64| bloom_bits(h, m).all(|bit| bloom[(bit / 8) as usize] & (1 << (bit % 8)) != 0);
        Some(
            self.tags
                .iter()
                .all(|(exact, any)| has(*exact) || has(*any)),
        )
    }
}

impl TraceStore for SledStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let p0 = spans[0].start_unix_nanos / self.partition_nanos;
        if spans
            .iter()
            .all(|s| s.start_unix_nanos / self.partition_nanos == p0)
        {
            let parts = self.partitions_for(&[p0])?;
            let Some(part) = parts.get(&p0) else {
                return Err(StoreError::Io(format!("partition {p0} vanished")));
            };
            let refs: Vec<&Span> = spans.iter().collect();
            self.write_partition(part, &refs)?;
        } else {
            let mut groups: BTreeMap<u64, Vec<&Span>> = BTreeMap::new();
            for s in spans {
                groups
                    .entry(s.start_unix_nanos / self.partition_nanos)
                    .or_default()
                    .push(s);
            }
            let needed: Vec<u64> = groups.keys().copied().collect();
            let parts = self.partitions_for(&needed)?;
            for (p, group) in &groups {
                let Some(part) = parts.get(p) else {
                    return Err(StoreError::Io(format!("partition {p} vanished")));
                };
                self.write_partition(part, group)?;
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
        for l in links {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&bucket_start_nanos.to_be_bytes());
            key[8..12].copy_from_slice(&self.intern(&l.parent)?.to_be_bytes());
            key[12..].copy_from_slice(&self.intern(&l.child)?.to_be_bytes());
            self.deps
                .merge(key, l.call_count.to_be_bytes())
                .map_err(io)?;
        }
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        self.db.flush().map(|_| ()).map_err(io)
    }

    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        self.read_trace(id, &self.live_partitions())
    }

    fn get_traces(&self, ids: &[TraceId]) -> StoreResult<Vec<Trace>> {
        let partitions = self.live_partitions();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.read_trace(*id, &partitions)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        let ids: HashSet<u32> = self.ops.read().iter().map(|(s, _, _)| *s).collect();
        let mut names: Vec<String> = ids.into_iter().map(|id| self.name(id)).collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        let Some(svc) = self.lookup(service) else {
            return Ok(Vec::new());
        };
        let want = kind.map(|k| k as u8);
        let mut out: Vec<Operation> = self
            .ops
            .read()
            .iter()
            .filter(|(s, _, k)| *s == svc && want.is_none_or(|w| w == *k))
            .filter_map(|(_, o, k)| {
                SpanKind::ALL
                    .get(usize::from(*k))
                    .map(|span_kind| Operation {
                        name: self.name(*o),
                        span_kind: *span_kind,
                    })
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(self.find(query)?.into_iter().map(|t| t.trace_id).collect())
    }

    fn find_traces(&self, query: &TraceQuery) -> StoreResult<Vec<Trace>> {
        self.find(query)
    }

    fn dependencies(
        &self,
        end_nanos: u64,
        lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        if lookback_nanos == 0 {
            return Ok(Vec::new());
        }
        let first = end_nanos.saturating_sub(lookback_nanos).saturating_add(1);
        let range = match end_nanos.checked_add(1) {
            Some(after) => self.deps.range(first.to_be_bytes()..after.to_be_bytes()),
            None => self.deps.range(first.to_be_bytes()..),
        };
        let mut links = Vec::new();
        for item in range {
            let (k, v): (IVec, IVec) = item.map_err(io)?;
            match (
                k.get(8..12).and_then(be_u32),
                k.get(12..16).and_then(be_u32),
                be_u64(&v),
            ) {
                (Some(parent), Some(child), Some(call_count)) => links.push(DependencyLink {
                    parent: self.name(parent),
                    child: self.name(child),
                    call_count,
                }),
                _ => tracing::warn!(key = ?k, "skipping malformed dependency entry"),
            }
        }
        Ok(merge_links(links))
    }

    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        let mut parts = self.partitions.write();
        let old: Vec<u64> = parts
            .keys()
            .copied()
            .filter(|p| {
                p.checked_add(1)
                    .and_then(|n| n.checked_mul(self.partition_nanos))
                    .is_some_and(|end| end <= cutoff_nanos)
            })
            .collect();
        for p in &old {
            for suffix in ["blk", "tid", "svc"] {
                self.db.drop_tree(format!("p{p}.{suffix}")).map_err(io)?;
            }
            parts.remove(p);
        }
        drop(parts);
        let n = old.len() as u64;
        self.partitions_expired.fetch_add(n, Ordering::Relaxed);
        let mut cache = self.cache.lock();
        cache.entries.retain(|((p, _), _)| !old.contains(p));
        cache.bytes = cache.entries.iter().map(|(_, b)| b.len()).sum();
        Ok(n)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.spans_written.load(Ordering::Relaxed),
            traces: 0,
            traces_evicted: 0,
            bytes_on_disk: self.db.size_on_disk().unwrap_or(0),
            partitions: self.partitions.read().len() as u64,
            partitions_expired: self.partitions_expired.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Resource, SpanId, Status, StatusCode};

    fn store(dir: &tempfile::TempDir) -> SledStore {
        SledStore::open(SledConfig::new(dir.path())).unwrap()
    }

    fn span(trace: u128, id: u64, start: u64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            name: "op".into(),
            start_unix_nanos: start,
            duration_nanos: 10,
            attributes: vec![KeyValue::string("k", "v")],
            resource: Arc::new(Resource {
                service_name: "svc".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const T: u64 = 1_700_000_000_000_000_000;

    #[test]
    fn corrupt_block_is_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.write_spans(&[span(1, 1, T), span(2, 9, T)]).unwrap();
        s.write_spans(&[span(1, 2, T + 1)]).unwrap();
        let (p, part) = s.live_partitions().remove(0);
        // Damage the first block (seq 0): trace 1 keeps its span from block 1.
        part.blk
            .insert(0u64.to_be_bytes(), &b"\x10\x00\x00\x00garbage"[..])
            .unwrap();
        s.cache.lock().entries.clear();
        let t = s.get_trace(TraceId(1)).unwrap().unwrap();
        assert_eq!(
            t.spans.iter().map(|s| s.span_id).collect::<Vec<_>>(),
            vec![SpanId(2)]
        );
        // Trace 2 lived only in the damaged block.
        let err = s.get_trace(TraceId(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "stored data is corrupt at partition {p}, block 0: zstd: Src size is incorrect"
            )
        );
        // find skips the unreadable candidate and still answers.
        let q = TraceQuery {
            service: Some("svc".into()),
            ..TraceQuery::between(0, u64::MAX)
        };
        assert_eq!(s.find_trace_ids(&q).unwrap(), vec![TraceId(1)]);
    }

    #[test]
    fn summaries_prune_without_false_negatives() {
        let mut sp = span(1, 1, T);
        sp.kind = SpanKind::Server;
        sp.duration_nanos = 500;
        sp.attributes = vec![
            KeyValue::new("n", AnyValue::Int(-7)),
            KeyValue::new("b", AnyValue::Bool(false)),
            KeyValue::new("d", AnyValue::Double(1.5)),
        ];
        let mut sum = Summary::new(T);
        sum.add(&sp, 3);
        let value = sum.encode();
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.intern("svc").unwrap();
        s.intern("op").unwrap();
        let f = |q: TraceQuery| Filter::new(&s, &q).map(|f| f.may_match(T, &value));
        let base = TraceQuery::between(0, u64::MAX);
        let with_tag = |k: &str, v: &str| TraceQuery {
            tags: vec![(k.into(), v.into())],
            ..base.clone()
        };
        assert_eq!(f(with_tag("n", "-7")), Some(true));
        assert_eq!(f(with_tag("b", "false")), Some(true));
        assert_eq!(
            f(with_tag("d", "1.50")),
            Some(true),
            "doubles are never pruned"
        );
        assert_eq!(f(with_tag("n", "8")), Some(false));
        assert_eq!(
            f(with_tag("error", "true")),
            Some(true),
            "synthetic tags are never pruned"
        );
        assert_eq!(
            f(TraceQuery {
                duration_min_nanos: Some(501),
                ..base.clone()
            }),
            Some(false)
        );
        assert_eq!(
            f(TraceQuery {
                duration_max_nanos: Some(500),
                ..base.clone()
            }),
            Some(true)
        );
        assert_eq!(
            f(TraceQuery {
                span_kind: Some(SpanKind::Client),
                ..base.clone()
            }),
            Some(false)
        );
        assert_eq!(
            f(TraceQuery {
                start_min_nanos: T + 1,
                ..base.clone()
            }),
            Some(false)
        );
        assert_eq!(
            f(TraceQuery {
                operation: Some("never-seen".into()),
                ..base.clone()
            }),
            None
        );
        // Garbage summaries make a candidate, never a miss.
        let filter = Filter::new(&s, &base).unwrap();
        assert!(filter.may_match(T, &[0xff]));
    }

    #[test]
    fn synthetic_tags_cover_span_fields() {
        let mut sp = span(1, 1, T);
        sp.attributes.clear();
        sp.kind = SpanKind::Client;
        sp.status = Status {
            code: StatusCode::Error,
            message: "m".into(),
        };
        sp.scope = Arc::new(spoor_core::Scope {
            name: "n".into(),
            version: "v".into(),
            ..Default::default()
        });
        let cases = [
            ("span.kind", "client"),
            ("error", "true"),
            ("otel.status_code", "ERROR"),
            ("otel.status_description", "m"),
            ("otel.scope.name", "n"),
            ("otel.scope.version", "v"),
            ("service.name", "svc"),
        ];
        for (k, v) in cases {
            assert!(spoor_core::query::span_has_tag(&sp, k, v), "{k}={v}");
            assert!(
                SYNTHETIC_TAGS.contains(&k),
                "{k} must not be pruned by the bloom filter"
            );
        }
    }

    #[test]
    fn partition_length_is_kept_from_creation() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(&dir));
        let mut cfg = SledConfig::new(dir.path());
        cfg.partition = Duration::from_secs(60);
        let s = SledStore::open(cfg).unwrap();
        assert_eq!(s.partition_nanos, 3_600_000_000_000);
        let mut bad = SledConfig::new(dir.path().join("other"));
        bad.partition = Duration::from_millis(10);
        let err = SledStore::open(bad).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("storage i/o failed: invalid sled config: partition length 10ms is below 1s")
        );
    }
}
