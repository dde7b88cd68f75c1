//! The default, embedded backend: compressed per-trace blocks in hourly time partitions on sled.
//!
//! # Layout
//! Partition `p` holds spans whose start lies in `[p * partition, (p + 1) * partition)`; it is
//! four sled trees and two files, so retention drops whole partitions (Jaeger's daily index +
//! index cleaner). sled costs ~100 B per entry, so the layout keeps the NUMBER of entries per
//! block small (one block, one directory entry, two entries per service of the block) instead
//! of per trace. sled 0.34 keeps every large log message it writes in memory whatever its cache
//! size: any message over a quarter of its segment (32 KiB here), such as a tree node holding a
//! few large values, becomes a blob file that stays resident (RSS grew 1:1 with bytes written).
//! So every value that grows with the block lives in an append-only file next to sled's, and
//! sled holds a *pointer* to it: offset (u64 LE) ++ length (u32 LE) ++ XXH64 of the bytes (u64
//! LE), 20 B (see `blockfile.rs`):
//! - `blocks/p{p}.blk` (file): the blocks, each `raw length (u32 LE) ++ zstd(level 1,
//!   encode_block(spans of ONE write_spans call that fall in p))`. Spans of a trace stay
//!   together in one segment of the block; readers decompress a block and decode only the
//!   wanted segment.
//! - `blocks/p{p}.idx` (file): per block, in one append, its directory and then the summaries
//!   of each of its services (the values described under `dir` and `svc` below).
//! - `p{p}.blk` (tree): block sequence number (u64 BE) -> pointer to the block in `p{p}.blk`.
//! - `p{p}.dir`: block seq (u64 BE) -> pointer into `p{p}.idx` to `DIR_FORMAT (1) ++` the
//!   block's trace ids (16 B each) in first-appearance order; a trace's place in this list is
//!   its *ordinal* in the block. (At 8,192-span blocks a directory is 7-13 KB, and a sled node
//!   of a few of them was a blob.)
//! - `p{p}.svc`: service id (u32 BE) ++ latest span start of the service in the block (u64 BE)
//!   ++ block seq (u64 BE) -> pointer into `p{p}.idx` to `SVC_FORMAT (1) ++ raw length (u32
//!   LE) ++ zstd(` per trace with spans of that service in the block: ordinal, block latest
//!   start minus the trace's latest start of that service, and a summary: spread of span
//!   starts, the (operation, kind, min duration, max duration) seen, and a small bloom filter
//!   of the `key=value` texts of span, resource and event attributes and of the span status
//!   (`error=true`, `otel.status_code=OK|ERROR`) `)`. One entry per (service, block); these
//!   summaries (~20 B per span) were 95 % of sled's blob bytes in layout 5.
//! - `p{p}.hed`: the same keys as `svc` -> `HEAD_FORMAT (1) ++` the entry's uncompressed
//!   *head*, which describes the whole entry: its earliest span start; per (operation, kind)
//!   the min and max duration and the latest start; the latest start of a span with status
//!   error and with status ok; and a bloom filter of the attribute keys of all its spans (8
//!   bits each, at most 256 B). Small enough to stay in sled (a node of 16 is a few KB), so
//!   searches scan heads without touching the files and read (one positional read each) the
//!   summaries of the few entries they open.
//!
//! Global trees: `strings` (id u32 BE -> service or operation name; cached in memory), `ops`
//! (service id ++ operation id ++ kind -> empty; cached in memory), `deps` (bucket start u64 BE ++
//! parent id ++ child id -> call count u64 BE, summed by a sled merge operator), `red` (see
//! `embedded/red.rs`), `meta` (the partition length, fixed when the database is created, the layout
//! version, 7, a database of another layout being refused at open, and the seal id, see
//! [`SledStore::seal_id`]), `sealed` (partition -> last block sequence uploaded to object storage
//! and when) and `aggregates` (partition u64 BE -> change count u64 BE, summed by a merge operator:
//! the time partitions whose dependency links or RED points were written since they were last
//! uploaded, see [`SledStore::aggregates_changed`]). Retention drops a partition's trees and
//! deletes its block and index files; the aggregates (`deps`, `red`) are global and outlive the
//! partitions of their time range (RED buckets until they ended by the retention cutoff; dependency
//! links are never expired).
//!
//! Measured by `tests/size.rs` (100k spans in 2,000-span batches): 168.6 B/span on disk with
//! the previous per-trace index (layout 1), 66.3 B/span with blocks in sled (layout 2), 66.4
//! B/span with blocks in files (layout 3, files included), 65.7-67.7 B/span with entry heads
//! (layout 5), 56.4 B/span with directories and summaries in index files (layout 6: 38.9 in
//! block files, 15.5 in index files, the rest sled). 2M spans written through the store peaked
//! at 66 MB RSS (183 MB with blocks in sled); 4M spans in 8,192-span batches peaked at 111 MB
//! with layout 5 (80 MB of sled blobs) and 37 MB with layout 6 (no blobs).
//!
//! # Finding a trace, and memory
//! Each partition keeps in memory one split-block bloom filter per block over the block's
//! trace ids, built on write and rebuilt at open from `p{p}.dir`: 16 bits per (trace, block)
//! pair plus 16 B per block, about 0.1 % false positives. `get_trace` asks every block filter
//! of every live partition, confirms a hit with the block's `dir` entry (a small read) and only
//! then decompresses the block and decodes that trace's segment. 10M spans in ~1M traces and
//! ~1,200 blocks of 8,192 spans take ~2-4 MB. All filters together are capped at
//! `MAX_FILTER_BYTES` (64 MiB, ~30M (trace, block) pairs): beyond it the oldest partitions'
//! filters are dropped and lookups there scan the partition's `dir` tree (correct, slower). The
//! other memory is the decompressed-block cache (16 MiB), the interned names and sled's page
//! cache (`cache_bytes`).
//!
//! # Finding traces
//! Candidates come from `p{p}.svc`, newest partition first. Inside a partition, the entries of
//! the services asked for are read by descending block latest start (a k-way merge of reverse
//! range scans of `hed`): a head gives an upper bound on the start of any span of
//! the entry that can match (the latest start of the (operation, kind) groups whose durations
//! fit, lowered by each tag's bound: the latest error or ok start for `error=true` and
//! `otel.status_code`, unbounded if the key bloom may hold the tag's key, no match if neither)
//! or says that nothing in it can match, without decompressing anything. Read heads wait in a
//! heap by that bound and are opened (decompressed) only when it is the highest bound left;
//! an opened entry's traces whose summaries may match go to a heap keyed by their latest start
//! (capped at the entry's bound), and a trace is taken from it only when no unread or
//! unopened entry could hold a later one, so candidates come out newest first across blocks.
//! On data whose blocks each cover the whole time range (every batch holding old and new
//! traces), block latest starts are all about "now" while the heads' bounds are spread out,
//! so most entries are never decompressed. A summary that cannot hold a
//! matching span (operation, kind, duration, time window or a tag absent from the bloom filter)
//! is skipped; every other candidate trace is read in full and verified with
//! [`TraceQuery::matches_trace`], so there are no false positives. The scan stops once `limit`
//! verified traces are newer than anything the remaining entries could produce, which keeps
//! the answer exactly the newest-first ranking the contract defines. Tags whose match Jaeger
//! synthesises from span fields (`span.kind`, `otel.status_description`, `otel.scope.*`,
//! `service.name`; the status behind `error` and `otel.status_code` is in the bloom filter)
//! and values whose text form is not unique (doubles, bytes) are never used to skip a
//! candidate.
//!
//! # Corrupt data
//! A block whose bytes fail the length or checksum check of its `blk` entry (torn by a crash,
//! or damaged) is reported as corrupt at `block file <path>, offset <n>`; one that fails to
//! decompress or decode, at `partition <p>, block <seq>`. Either is logged with `tracing::warn`
//! naming partition and block key and is skipped: `get_trace` returns the spans of the other blocks, and fails
//! with [`StoreError::Corrupt`] only when some block of the trace was unreadable and no span
//! could be read at all. `find_*` skip a candidate whose trace is unreadable. A service entry
//! that cannot be decoded makes every trace of its block a candidate (verification decides),
//! never a miss; a `dir` entry that cannot be decoded is replaced by the block's own directory
//! (and, at open, turns the partition's lookups into `dir` scans that read such blocks). A
//! `dir` or `svc` pointer that is malformed, or whose bytes in `p{p}.idx` fail the length or
//! checksum check (`index file <path>, offset <n>`), is logged with that location, its tree
//! and key, and read as such an undecodable entry.
//!
//! # Durability
//! [`Durability::Periodic`]: sled flushes its log at least every 1000 ms on its own, and a
//! background thread syncs the block and index files written to every 1000 ms,
//! so a crash loses at most about the last two seconds; a sled entry that reached the disk
//! before the file bytes it points at is caught by the checksum and skipped as corrupt.
//! [`Durability::Sync`]: no background flushing; the pipeline calls `flush` before
//! acknowledging a batch. Either way `flush` syncs every block and index file written since
//! the last flush (`File::sync_data`) and then sled's log (`Db::flush`), so all earlier writes
//! are durable and a durable sled entry never points at unsynced bytes.
//!
//! # Disk full
//! sled 0.34 cannot recover from a failed write of its own log: the error becomes a global
//! error that every later operation returns until the database is reopened. So sled must never
//! be the one to hit a full disk. Every write checks the free space of the data directory
//! first and refuses with a `no space left on device` [`StoreError::Io`] naming the directory
//! while less than [`DISK_RESERVE_BYTES`] is free; after the block and index files were appended
//! (which may fail on a full disk by themselves, leaving only unindexed bytes), sled's entries
//! are written only while at least half the reserve is free. Nothing is written in a refused
//! attempt but those unindexed bytes, so a retry after space returned succeeds.

use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use sled::{Batch, IVec, Tree};
use spoor_core::block::{encode_block_refs, BlockReader};
use spoor_core::{
    AnyValue, DependencyLink, KeyValue, Operation, Span, SpanKind, StatusCode, Trace, TraceId,
    TraceQuery,
};

use crate::{match_key, merge_links, StoreError, StoreResult, StoreStats, TraceStore};

mod blockfile;
mod red;
pub mod tracefilter;

pub use blockfile::xxh64;
use blockfile::{BlockFile, BlockRef, DirtyFiles, FileKind};
use tracefilter::TraceFilter;

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
/// sled log segment size (sled's default is 512 KiB). Chosen when blocks were sled values
/// (layout 2: 64 KiB 66.6, 128 KiB 65.2, 256 KiB 74.2, 512 KiB 91.9 B/span by tests/size.rs);
/// kept since the index entries alone fit it well.
const SEGMENT_BYTES: usize = 128 << 10;

/// Free bytes the data directory must have for a write to start (see "Disk full" above): room
/// for sled's log segments (128 KiB each) and index entries, so sled itself never finds the disk
/// full.
pub const DISK_RESERVE_BYTES: u64 = 2 << 20;
/// Largest decompressed block accepted (guards allocations against a corrupt length).
const MAX_BLOCK_BYTES: usize = 1 << 30;
/// Decompressed frames kept for repeated reads (find verifies several traces of one frame).
const BLOCK_CACHE_BYTES: usize = 16 << 20;
/// Spans per frame of a block (a frame may hold more when one trace does). A 20-span-trace
/// block of 8,192 spans compressed to 60.9 B/span whole, 66.0 / 70.1 / 70.9 / 74.0 B/span in
/// frames of 2,048 / 1,024 / 512 / 256 spans; reading one trace decompressed the whole ~800
/// KB block (~1.5 ms), and a search reading 20 traces from 20 blocks missed the block cache
/// every time.
const FRAME_SPANS: usize = 1024;
/// Storage layout written and read by this build (kept in `meta`; 1 had a per-trace index, 2
/// kept the compressed blocks in the `blk` trees, 3 left the span status out of summaries, 4
/// had no entry heads and FNV-1a block checksums, 5 kept the `dir` and `svc` values in sled, 6
/// compressed each block as one zstd frame).
const LAYOUT_VERSION: u8 = 7;
/// Most time block files may go unsynced under [`Durability::Periodic`].
const FILE_SYNC_INTERVAL: Duration = Duration::from_millis(1000);
/// First byte of a block directory value in the index file.
const DIR_FORMAT: u8 = 1;
/// First byte of a service summary value in the index file (layouts 5 and 6 still write 1; the
/// head is in `hed`).
const SVC_FORMAT: u8 = 1;
/// First byte of a `hed` value.
const HEAD_FORMAT: u8 = 1;
/// Most bytes of in-memory trace filters (all partitions); beyond it the oldest partitions'
/// filters are shed and lookups there scan the partition's `dir` tree.
const MAX_FILTER_BYTES: usize = 64 << 20;
/// Bloom filter size cap per summary, in bytes.
const MAX_BLOOM_BYTES: usize = 256;
/// Bloom filter size cap of an entry head (the attribute keys of all its spans), in bytes.
const MAX_HEAD_BLOOM_BYTES: usize = 256;
/// Bloom filter probes per item (8 bits per item: about 2.4 % false positives).
const BLOOM_PROBES: u32 = 4;
/// Marker value for attributes whose text form is not unique (doubles, bytes).
const ANY_TEXT: &str = "\u{0}*";
/// Marker value under which entry heads hash attribute keys.
const KEY_TEXT: &str = "\u{0}key";
/// Tags whose match can come from span fields instead of attributes. `error` and
/// `otel.status_code` are not among them: summaries (layout 4) hash the span status as
/// `error=true` and `otel.status_code=OK|ERROR`, so those tags prune like attributes.
const SYNTHETIC_TAGS: &[&str] = &[
    "span.kind",
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
    file: Arc<BlockFile>,
    /// `blocks/p{p}.idx`: the `dir` and `svc` values that those trees point at.
    idx: Arc<BlockFile>,
    dir: Tree,
    svc: Tree,
    hed: Tree,
    index: Arc<RwLock<TraceIndex>>,
}

/// The in-memory trace-id filters of one partition's blocks.
struct TraceIndex {
    /// (block seq, filter of its trace ids), in write order.
    blocks: Vec<(u64, TraceFilter)>,
    /// False once the filters were shed to stay within the memory cap (or a `dir` entry could
    /// not be read at open): readers then scan the partition's `dir` tree instead.
    complete: bool,
}

impl TraceIndex {
    fn bytes(&self) -> usize {
        self.blocks.iter().map(|(_, f)| f.bytes() + 16).sum()
    }
}

/// A `dir` or `svc` value read through its pointer into the partition's index file.
enum IndexValue {
    /// No entry under the key.
    Missing,
    /// A malformed pointer, or bytes that fail its length or checksum check (logged).
    Unreadable,
    Bytes(Vec<u8>),
}

impl Partition {
    /// The index-file bytes that `ptr`, the value of key `key` in tree `p{p}.{tree}`, points at.
    /// Corrupt pointers and bytes are logged with their location and read as unreadable; only
    /// I/O errors fail.
    fn index_bytes(&self, p: u64, tree: &str, key: &[u8], ptr: &[u8]) -> StoreResult<IndexValue> {
        let Some(at) = BlockRef::decode(ptr) else {
            tracing::warn!(
                partition = p,
                tree,
                key = ?key,
                len = ptr.len(),
                "malformed index file reference"
            );
            return Ok(IndexValue::Unreadable);
        };
        match self.idx.read(at) {
            Ok(bytes) => Ok(IndexValue::Bytes(bytes)),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!(partition = p, tree, key = ?key, error = %e, "unreadable index entry");
                Ok(IndexValue::Unreadable)
            }
            Err(e) => Err(e),
        }
    }

    /// The `dir` value of block `seq`.
    fn dir_value(&self, p: u64, seq: u64) -> StoreResult<IndexValue> {
        let key = seq.to_be_bytes();
        match self.dir.get(key).map_err(io)? {
            Some(ptr) => self.index_bytes(p, "dir", &key, &ptr),
            None => Ok(IndexValue::Missing),
        }
    }

    /// The `svc` value (the summaries) of the service index entry `key`.
    fn svc_value(&self, p: u64, key: &[u8]) -> StoreResult<IndexValue> {
        match self.svc.get(key).map_err(io)? {
            Some(ptr) => self.index_bytes(p, "svc", key, &ptr),
            None => Ok(IndexValue::Missing),
        }
    }
}

/// Interned service and operation names, mirrored in the `strings` tree.
#[derive(Default)]
struct Strings {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

/// zstd decompression with one reusable context per thread (creating a context per block was
/// ~6% of a tag search's CPU).
fn decompress(src: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress(src, capacity),
            None => Err(std::io::Error::other("no zstd context")),
        }
    })
}

/// Trace ids already verified by a search (hashbrown's default hasher: SipHash was ~7 % of a
/// search).
type Seen = hashbrown::HashSet<TraceId>;

/// A decompressed frame and its (partition, block seq, frame).
type CachedBlock = ((u64, u64, u32), Arc<Vec<u8>>);

/// Recently decompressed frames, by (partition, block seq, frame).
#[derive(Default)]
struct BlockCache {
    entries: VecDeque<CachedBlock>,
    bytes: usize,
}

/// The sled-backed store. See the module documentation for the layout.
pub struct SledStore {
    db: sled::Db,
    /// The data directory (free space is checked there before every write).
    path: PathBuf,
    /// `{path}/blocks`: one block file per partition.
    blocks_dir: PathBuf,
    /// Block files appended to since their last sync.
    dirty: Arc<DirtyFiles>,
    partition_nanos: u64,
    retention: Duration,
    durability: Durability,
    partitions: RwLock<BTreeMap<u64, Partition>>,
    strings_tree: Tree,
    strings: RwLock<Strings>,
    ops_tree: Tree,
    ops: RwLock<HashSet<(u32, u32, u8)>>,
    deps: Tree,
    /// RED span metrics (see [`red`]).
    red: red::RedTree,
    /// Partitions whose aggregates changed since their last upload (see the module doc).
    aggregates: Tree,
    next_seq: AtomicU64,
    spans_written: AtomicU64,
    partitions_expired: AtomicU64,
    cache: Mutex<BlockCache>,
    /// Bytes held by all partitions' trace filters.
    filter_bytes: AtomicUsize,
    /// Most bytes of trace filters kept in memory ([`MAX_FILTER_BYTES`]).
    filter_cap: usize,
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

/// Refuses when `available` bytes are under `needed` (see "Disk full" in the module docs).
fn check_room(path: &Path, available: u64, needed: u64) -> StoreResult<()> {
    if available < needed {
        return Err(StoreError::Io(format!(
            "no space left on device: {} has {available} bytes free, under the {needed} kept \
             so the index never finds the disk full",
            path.display()
        )));
    }
    Ok(())
}

impl SledStore {
    /// Refuses a write while the data directory has less than `needed` bytes free. A file system
    /// that cannot say how much is free is not checked.
    fn ensure_room(&self, needed: u64) -> StoreResult<()> {
        match fs2::available_space(&self.path) {
            Ok(available) => check_room(&self.path, available, needed),
            Err(_) => Ok(()),
        }
    }

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
            .segment_size(SEGMENT_BYTES)
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
                meta.insert(b"layout", &[LAYOUT_VERSION]).map_err(io)?;
                configured
            }
        };
        let layout = meta.get(b"layout").map_err(io)?;
        if layout.as_deref() != Some(&[LAYOUT_VERSION][..]) {
            let found = match layout.as_deref() {
                None => "1".to_owned(),
                Some([v]) => v.to_string(),
                Some(other) => format!("{other:?}"),
            };
            return Err(StoreError::Io(format!(
                "sled database at {} uses storage layout {found}, this build reads layout {LAYOUT_VERSION}",
                cfg.path.display()
            )));
        }

        let blocks_dir = cfg.path.join("blocks");
        std::fs::create_dir_all(&blocks_dir).map_err(|e| {
            StoreError::Io(format!(
                "cannot create block directory {}: {e}",
                blocks_dir.display()
            ))
        })?;

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
        let red = red::RedTree::open(&db)?;
        let aggregates = db.open_tree("aggregates").map_err(io)?;
        aggregates.set_merge_operator(add_u64);

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
            let part = open_partition(&db, &blocks_dir, p)?;
            for last in [part.blk.last(), part.dir.last()] {
                if let Some((k, _)) = last.map_err(io)? {
                    next_seq = next_seq.max(be_u64(&k).unwrap_or(0).saturating_add(1));
                }
            }
            load_filters(p, &part)?;
            partitions.insert(p, part);
        }
        let filter_bytes: usize = partitions.values().map(|p| p.index.read().bytes()).sum();

        let dirty = Arc::new(DirtyFiles::default());
        if cfg.durability == Durability::Periodic {
            spawn_file_syncer(Arc::downgrade(&dirty))?;
        }
        let store = SledStore {
            db,
            path: cfg.path.clone(),
            blocks_dir,
            dirty,
            partition_nanos,
            retention: cfg.retention,
            durability: cfg.durability,
            partitions: RwLock::new(partitions),
            strings_tree,
            strings: RwLock::new(strings),
            ops_tree,
            ops: RwLock::new(ops),
            deps,
            red,
            aggregates,
            next_seq: AtomicU64::new(next_seq),
            spans_written: AtomicU64::new(0),
            partitions_expired: AtomicU64::new(0),
            cache: Mutex::new(BlockCache::default()),
            filter_bytes: AtomicUsize::new(filter_bytes),
            filter_cap: MAX_FILTER_BYTES,
        };
        store.shed_filters(&store.partitions.read());
        Ok(store)
    }

    /// Drops the trace filters of the oldest partitions until they fit in three quarters of the
    /// cap; reads of those partitions then scan their `dir` trees.
    fn shed_filters(&self, parts: &BTreeMap<u64, Partition>) {
        if self.filter_bytes.load(Ordering::Relaxed) <= self.filter_cap {
            return;
        }
        for (p, part) in parts {
            if self.filter_bytes.load(Ordering::Relaxed) <= self.filter_cap / 4 * 3 {
                break;
            }
            let mut index = part.index.write();
            if !index.complete {
                continue;
            }
            let freed = index.bytes();
            index.blocks = Vec::new();
            index.complete = false;
            self.filter_bytes.fetch_sub(freed, Ordering::Relaxed);
            tracing::warn!(
                partition = p,
                freed,
                "trace filters exceed their memory cap; trace lookups in this partition scan its index"
            );
        }
    }

    /// Drops the partitions that ended before `now_nanos - retention`; the daemon calls this
    /// periodically. Returns how many partitions were dropped.
    pub fn expire(&self, now_nanos: u64) -> StoreResult<u64> {
        let retention = u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX);
        self.expire_before(now_nanos.saturating_sub(retention))
    }

    /// Entries and logical bytes (keys plus values, before sled's own overhead) per kind of
    /// tree (`blk`, `dir`, `svc`, `hed` summed over partitions, and each global tree), then the
    /// partition files (`file .blk`, `file .idx`: number of files and their bytes), sorted by
    /// kind: a diagnostic for sizing, it reads every entry.
    pub fn tree_sizes(&self) -> StoreResult<Vec<(String, u64, u64)>> {
        let mut kinds: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            let kind = name.rsplit('.').next().unwrap_or(&name).to_owned();
            let tree = self.db.open_tree(&name).map_err(io)?;
            let e = kinds.entry(kind).or_default();
            for item in tree.iter() {
                let (k, v) = item.map_err(io)?;
                e.0 += 1;
                e.1 += (k.len() + v.len()) as u64;
            }
        }
        for part in self.partitions.read().values() {
            for (kind, file) in [("file .blk", &part.file), ("file .idx", &part.idx)] {
                let e = kinds.entry(kind.to_owned()).or_default();
                e.0 += 1;
                e.1 += file.len();
            }
        }
        Ok(kinds.into_iter().map(|(k, (n, b))| (k, n, b)).collect())
    }

    /// Bytes in the block and index files of the live partitions.
    fn block_file_bytes(&self) -> u64 {
        self.partitions
            .read()
            .values()
            .map(|part| part.file.len() + part.idx.len())
            .sum()
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
                let part = open_partition(&self.db, &self.blocks_dir, *p)?;
                write.insert(*p, part);
            }
        }
        Ok(RwLockWriteGuard::downgrade(write))
    }

    /// Drops partition `p`: its trees, its block and index files and its trace filters. The
    /// caller holds the partitions write lock, so no write is in flight into it.
    fn drop_partition(&self, parts: &mut BTreeMap<u64, Partition>, p: u64) -> StoreResult<()> {
        for suffix in ["blk", "dir", "svc", "hed"] {
            self.db.drop_tree(format!("p{p}.{suffix}")).map_err(io)?;
        }
        if let Some(part) = parts.remove(&p) {
            let freed = part.index.read().bytes();
            self.filter_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        for (ext, what) in [("blk", "block"), ("idx", "index")] {
            let path = self.blocks_dir.join(format!("p{p}.{ext}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Io(format!(
                        "cannot delete {what} file {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Ok(())
    }

    /// Length of one time partition in nanoseconds (partition `p` covers
    /// `[p * len, (p + 1) * len)`).
    pub fn partition_nanos(&self) -> u64 {
        self.partition_nanos
    }

    /// The live partitions, oldest first.
    pub fn partition_numbers(&self) -> Vec<u64> {
        self.partitions.read().keys().copied().collect()
    }

    /// Sealing (object storage, `spoor-objstore`): the highest block sequence number of
    /// partition `p` already uploaded and when that upload was confirmed (nanoseconds since the
    /// epoch), or `None` if nothing of `p` was uploaded. Kept in the `sealed` tree across
    /// restarts and after the partition is dropped, so late spans that recreate `p` get higher
    /// numbers and are uploaded as a block of their own.
    pub fn sealed_through(&self, p: u64) -> StoreResult<Option<(u64, u64)>> {
        let tree = self.db.open_tree("sealed").map_err(io)?;
        Ok(tree
            .get(p.to_be_bytes())
            .map_err(io)?
            .and_then(|v| Some((be_u64(&v)?, be_u64(v.get(8..)?)?))))
    }

    /// Records that the blocks of partition `p` up to sequence `seq` are uploaded and the upload
    /// was confirmed at `at_nanos`; durable when this returns.
    pub fn mark_sealed(&self, p: u64, seq: u64, at_nanos: u64) -> StoreResult<()> {
        let tree = self.db.open_tree("sealed").map_err(io)?;
        let mut v = seq.to_be_bytes().to_vec();
        v.extend_from_slice(&at_nanos.to_be_bytes());
        tree.insert(p.to_be_bytes(), v).map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// The blocks of partition `p` with a sequence number above `after` (all blocks for
    /// `None`), each with every span it holds, in sequence order, stopping after the block that
    /// reaches `max_spans` (so a caller holds a bounded number of spans; it asks again after
    /// the last sequence returned). A block that cannot be read fails the call with its
    /// location: sealing must never upload a partial partition and then drop the rest.
    pub fn partition_blocks(
        &self,
        p: u64,
        after: Option<u64>,
        max_spans: usize,
    ) -> StoreResult<Vec<(u64, Vec<Span>)>> {
        let Some(part) = self.partitions.read().get(&p).cloned() else {
            return Ok(Vec::new());
        };
        let from = after.map_or(0, |a| a.saturating_add(1));
        if after == Some(u64::MAX) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut total = 0usize;
        for item in part.blk.range(from.to_be_bytes()..) {
            let (k, _) = item.map_err(io)?;
            let Some(seq) = be_u64(&k) else { continue };
            let frames = self.frames(p, &part, seq)?.unwrap_or_default();
            let mut spans = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                let raw = self.frame(p, seq, &part, i, f.at)?;
                let reader = BlockReader::open(&raw).map_err(|e| StoreError::Corrupt {
                    location: format!("partition {p}, block {seq}, frame {i}"),
                    detail: e.to_string(),
                })?;
                spans.extend(reader.decode_all().map_err(|e| StoreError::Corrupt {
                    location: format!("partition {p}, block {seq}, frame {i}"),
                    detail: e.to_string(),
                })?);
            }
            total += spans.len();
            out.push((seq, spans));
            if total >= max_spans {
                break;
            }
        }
        Ok(out)
    }

    /// Drops partition `p` if it holds no block above `sealed_seq` (everything in it was
    /// uploaded); returns whether it was dropped. Checked and dropped under the partitions write
    /// lock, which every write holds for reading, so a span written concurrently is either in a
    /// block this check sees (and the partition stays) or creates the partition afresh after.
    pub fn drop_if_sealed(&self, p: u64, sealed_seq: u64) -> StoreResult<bool> {
        let mut parts = self.partitions.write();
        let Some(part) = parts.get(&p) else {
            return Ok(false);
        };
        let newer = sealed_seq
            .checked_add(1)
            .map(|from| part.blk.range(from.to_be_bytes()..).next().is_some())
            .unwrap_or(false);
        if newer {
            return Ok(false);
        }
        self.drop_partition(&mut parts, p)?;
        drop(parts);
        let mut cache = self.cache.lock();
        cache.entries.retain(|((q, _, _), _)| *q != p);
        cache.bytes = cache.entries.iter().map(|(_, b)| b.len()).sum();
        Ok(true)
    }

    /// Object storage (`spoor-objstore`): an id of this database for the names of the
    /// objects sealed from it, fixed at the first call, which stores `proposed` (the sealer
    /// passes the time of its first round) durably. A database that starts empty again (a
    /// replaced disk) gets another id, so its objects never overwrite those of the one before.
    pub fn seal_id(&self, proposed: u64) -> StoreResult<u64> {
        let meta = self.db.open_tree("meta").map_err(io)?;
        let stored = meta
            .compare_and_swap(b"seal_id", None::<&[u8]>, Some(&proposed.to_be_bytes()[..]))
            .map_err(io)?;
        match stored {
            Ok(()) => {
                self.db.flush().map_err(io)?;
                Ok(proposed)
            }
            Err(e) => e
                .current
                .as_deref()
                .and_then(be_u64)
                .ok_or_else(|| StoreError::Corrupt {
                    location: "tree meta, key seal_id".into(),
                    detail: format!("bad value {:?}", e.current),
                }),
        }
    }

    /// Runs `write` (of aggregates whose time keys are `starts`) between two marks of their
    /// partitions. The mark before is in the log ahead of the aggregates, so a recovered
    /// aggregate always has its mark; the mark after follows them, so a sealer that read a
    /// change count and then the aggregates either saw this write's aggregates or will find the
    /// count changed when it clears it (and uploads again).
    fn with_aggregate_marks(
        &self,
        starts: impl IntoIterator<Item = u64>,
        write: impl FnOnce() -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut parts: Vec<u64> = starts
            .into_iter()
            .map(|t| t / self.partition_nanos)
            .collect();
        parts.sort_unstable();
        parts.dedup();
        let mark = || {
            for p in &parts {
                self.aggregates
                    .merge(p.to_be_bytes(), 1u64.to_be_bytes())
                    .map_err(io)?;
            }
            Ok::<(), StoreError>(())
        };
        mark()?;
        write()?;
        mark()
    }

    /// Object storage: the partitions whose dependency links (by bucket start) or RED points
    /// (by bucket start) were written since [`SledStore::mark_aggregates_sealed`] last cleared
    /// them, each with its change count, oldest first.
    pub fn aggregates_changed(&self) -> StoreResult<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for item in self.aggregates.iter() {
            let (k, v) = item.map_err(io)?;
            match (be_u64(&k), be_u64(&v)) {
                (Some(p), Some(n)) if k.len() == 8 => out.push((p, n)),
                _ => tracing::warn!(key = ?k, "skipping malformed entry of tree aggregates"),
            }
        }
        Ok(out)
    }

    /// Object storage: clears partition `p`'s mark if its change count is still `count` (the
    /// aggregates read before the upload were all there were); returns whether it was
    /// cleared. A write in between keeps the mark, so the partition is uploaded again.
    pub fn mark_aggregates_sealed(&self, p: u64, count: u64) -> StoreResult<bool> {
        let swapped = self
            .aggregates
            .compare_and_swap(
                p.to_be_bytes(),
                Some(&count.to_be_bytes()[..]),
                None::<&[u8]>,
            )
            .map_err(io)?;
        Ok(swapped.is_ok())
    }

    /// The dependency links of the buckets starting in `[start_nanos, end_nanos)`, per bucket
    /// (ascending), links sorted by (parent, child): what object storage keeps per partition.
    pub fn dependency_buckets(
        &self,
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<(u64, Vec<DependencyLink>)>> {
        let mut out: Vec<(u64, Vec<DependencyLink>)> = Vec::new();
        for item in self
            .deps
            .range(start_nanos.to_be_bytes()..end_nanos.to_be_bytes())
        {
            let (k, v): (IVec, IVec) = item.map_err(io)?;
            match (
                be_u64(&k),
                k.get(8..12).and_then(be_u32),
                k.get(12..16).and_then(be_u32),
                be_u64(&v),
            ) {
                (Some(bucket), Some(parent), Some(child), Some(call_count)) => {
                    let link = DependencyLink {
                        parent: self.name(parent),
                        child: self.name(child),
                        call_count,
                    };
                    match out.last_mut() {
                        Some((b, links)) if *b == bucket => links.push(link),
                        _ => out.push((bucket, vec![link])),
                    }
                }
                _ => tracing::warn!(key = ?k, "skipping malformed dependency entry"),
            }
        }
        for (_, links) in &mut out {
            *links = merge_links(std::mem::take(links));
        }
        Ok(out)
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
        // Group by trace in first-appearance order; a trace's ordinal is its place in `dir`.
        let mut ordinals: HashMap<TraceId, usize> = HashMap::new();
        let mut traces: Vec<(TraceId, Vec<&Span>)> = Vec::new();
        for s in spans {
            let next = traces.len();
            let i = *ordinals.entry(s.trace_id).or_insert(next);
            if i == next {
                traces.push((s.trace_id, Vec::new()));
            }
            traces[i].1.push(s);
        }
        // Frames: runs of whole traces of about FRAME_SPANS spans, each its own block and zstd
        // frame, so reading one trace decompresses one frame, not the whole write.
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut frame_traces: Vec<u32> = Vec::new();
        let mut from = 0;
        while from < traces.len() {
            let mut to = from;
            let mut n = 0;
            while to < traces.len() && (to == from || n + traces[to].1.len() <= FRAME_SPANS) {
                n += traces[to].1.len();
                to += 1;
            }
            let raw =
                encode_block_refs(traces[from..to].iter().flat_map(|(_, t)| t.iter().copied()));
            let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL)
                .map_err(|e| StoreError::Io(format!("zstd compression failed: {e}")))?;
            let mut value = Vec::with_capacity(4 + compressed.len());
            value.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            value.extend_from_slice(&compressed);
            frames.push(value);
            frame_traces.push((to - from) as u32);
            from = to;
        }

        let ids: Vec<TraceId> = traces.iter().map(|(id, _)| *id).collect();
        let mut dir = Vec::with_capacity(1 + 16 * ids.len());
        dir.push(DIR_FORMAT);
        for id in &ids {
            dir.extend_from_slice(&id.to_bytes());
        }

        // Per service: the entry's head and (ordinal, summary) of every trace with spans of
        // that service.
        let mut by_service: BTreeMap<u32, (EntryHead, Vec<(usize, Summary)>)> = BTreeMap::new();
        let mut new_ops: Vec<(u32, u32, u8)> = Vec::new();
        let mut resource_ids: HashMap<*const spoor_core::Resource, u32> = HashMap::new();
        for (ordinal, (_, trace_spans)) in traces.iter().enumerate() {
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
                let (head, list) = by_service.entry(service).or_default();
                if list.last().is_none_or(|(o, _)| *o != ordinal) {
                    list.push((ordinal, Summary::new(s.start_unix_nanos)));
                }
                if let Some((_, summary)) = list.last_mut() {
                    summary.add(s, op, head);
                }
            }
        }
        let mut keys: Vec<[u8; 20]> = Vec::with_capacity(by_service.len());
        let mut hed = Batch::default();
        // The index file gets the directory, then the summaries of each service, in one write.
        let mut idx_values: Vec<Vec<u8>> = Vec::with_capacity(1 + by_service.len());
        idx_values.push(dir);
        for (service, (head, list)) in by_service {
            let block_max = list.iter().map(|(_, s)| s.max_start).max().unwrap_or(0);
            let mut key = [0u8; 20];
            key[..4].copy_from_slice(&service.to_be_bytes());
            key[4..12].copy_from_slice(&block_max.to_be_bytes());
            key[12..].copy_from_slice(&seq.to_be_bytes());
            let (head, summaries) = encode_service_entry(block_max, head, list)?;
            hed.insert(&key[..], head);
            keys.push(key);
            idx_values.push(summaries);
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
        self.ensure_room(DISK_RESERVE_BYTES)?;
        let frame_parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let (frame_refs, fresh) = part.file.append_parts(&frame_parts)?;
        if fresh {
            self.dirty.add(part.file.clone());
        }
        let frame_list: Vec<Frame> = frame_traces
            .into_iter()
            .zip(frame_refs)
            .map(|(traces, at)| Frame { traces, at })
            .collect();
        let parts: Vec<&[u8]> = idx_values.iter().map(Vec::as_slice).collect();
        let (refs, fresh) = part.idx.append_parts(&parts)?;
        if fresh {
            self.dirty.add(part.idx.clone());
        }
        self.ensure_room(DISK_RESERVE_BYTES / 2)?;
        let mut svc = Batch::default();
        for (key, r) in keys.iter().zip(refs.iter().skip(1)) {
            svc.insert(&key[..], &r.encode()[..]);
        }
        part.blk
            .insert(seq.to_be_bytes(), encode_frames(&frame_list))
            .map_err(io)?;
        if let Some(r) = refs.first() {
            part.dir
                .insert(seq.to_be_bytes(), &r.encode()[..])
                .map_err(io)?;
        }
        // Heads before summaries: a head whose summaries are missing makes every trace of
        // its block a candidate, while summaries without a head would never be found.
        part.hed.apply_batch(hed).map_err(io)?;
        part.svc.apply_batch(svc).map_err(io)?;
        let filter = TraceFilter::new(&ids);
        let mut index = part.index.write();
        if index.complete {
            self.filter_bytes
                .fetch_add(filter.bytes() + 16, Ordering::Relaxed);
            index.blocks.push((seq, filter));
        }
        Ok(())
    }
    /// The frames of block `seq` of partition `p` (its `blk` value), `None` if it has none.
    fn frames(&self, p: u64, part: &Partition, seq: u64) -> StoreResult<Option<Vec<Frame>>> {
        let Some(v) = part.blk.get(seq.to_be_bytes()).map_err(io)? else {
            return Ok(None);
        };
        match decode_frames(&v) {
            Some(frames) => Ok(Some(frames)),
            None => Err(StoreError::Corrupt {
                location: format!("partition {p}, block {seq}"),
                detail: format!("bad frame list of {} bytes", v.len()),
            }),
        }
    }

    /// Frame `i` of block `seq` of partition `p`, decompressed, from the cache or the file.
    fn frame(
        &self,
        p: u64,
        seq: u64,
        part: &Partition,
        i: usize,
        at: BlockRef,
    ) -> StoreResult<Arc<Vec<u8>>> {
        let key = (p, seq, i as u32);
        if let Some((_, b)) = self.cache.lock().entries.iter().find(|(k, _)| *k == key) {
            return Ok(b.clone());
        }
        let corrupt = |detail: String| StoreError::Corrupt {
            location: format!("partition {p}, block {seq}, frame {i}"),
            detail,
        };
        let value = part.file.read(at)?;
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
        let raw = decompress(&value[4..], raw_len).map_err(|e| corrupt(format!("zstd: {e}")))?;
        if raw.len() != raw_len {
            return Err(corrupt(format!(
                "decompressed to {} bytes instead of {raw_len}",
                raw.len()
            )));
        }
        let raw = Arc::new(raw);
        let mut cache = self.cache.lock();
        cache.bytes += raw.len();
        cache.entries.push_back((key, raw.clone()));
        while cache.bytes > BLOCK_CACHE_BYTES && cache.entries.len() > 1 {
            if let Some((_, old)) = cache.entries.pop_front() {
                cache.bytes -= old.len();
            }
        }
        Ok(raw)
    }

    /// The blocks of `part` that may hold spans of `id`, each with the trace's ordinal in the
    /// block when its `dir` entry gives it: from the in-memory filters, or from a scan of the
    /// `dir` tree when the partition's filters were shed.
    fn candidate_blocks(
        &self,
        p: u64,
        part: &Partition,
        id: TraceId,
    ) -> StoreResult<Vec<(u64, Option<usize>)>> {
        let index = part.index.read();
        if index.complete {
            let mut seqs = Vec::new();
            for (seq, filter) in &index.blocks {
                if filter.may_contain(id) {
                    seqs.push(*seq);
                }
            }
            drop(index);
            // Confirm with the block's id list: a false positive costs a small read, not a block.
            let mut confirmed = Vec::with_capacity(seqs.len());
            for seq in seqs {
                match part.dir_value(p, seq)? {
                    IndexValue::Bytes(v) => match dir_position(&v, id) {
                        Some(None) => {}
                        Some(Some(o)) => confirmed.push((seq, Some(o))),
                        None => confirmed.push((seq, None)),
                    },
                    _ => confirmed.push((seq, None)),
                }
            }
            return Ok(confirmed);
        }
        drop(index);
        let mut seqs = Vec::new();
        for item in part.dir.iter() {
            let (k, ptr) = item.map_err(io)?;
            let Some(seq) = be_u64(&k).filter(|_| k.len() == 8) else {
                tracing::warn!(partition = p, key = ?k, "skipping malformed block directory key");
                continue;
            };
            match part.index_bytes(p, "dir", &k, &ptr)? {
                IndexValue::Bytes(v) => match dir_position(&v, id) {
                    Some(None) => {}
                    Some(Some(o)) => seqs.push((seq, Some(o))),
                    None => seqs.push((seq, None)),
                },
                _ => seqs.push((seq, None)),
            }
        }
        Ok(seqs)
    }

    /// The spans of `id` in block `seq`: only the frame holding the trace's `ordinal` is
    /// decompressed when the ordinal is known, every frame otherwise.
    fn read_in_block(
        &self,
        p: u64,
        part: &Partition,
        seq: u64,
        id: TraceId,
        ordinal: Option<usize>,
    ) -> StoreResult<Vec<Span>> {
        let Some(frames) = self.frames(p, part, seq)? else {
            return Ok(Vec::new());
        };
        let wanted: Vec<usize> = match ordinal.and_then(|o| frame_of(&frames, o)) {
            Some(i) => vec![i],
            None => (0..frames.len()).collect(),
        };
        let mut spans = Vec::new();
        for i in wanted {
            let bytes = self.frame(p, seq, part, i, frames[i].at)?;
            let mut s = BlockReader::open(&bytes)
                .and_then(|r| r.decode_trace(id))
                .map_err(|e| StoreError::Corrupt {
                    location: format!("partition {p}, block {seq}, frame {i}"),
                    detail: e.to_string(),
                })?;
            spans.append(&mut s);
        }
        Ok(spans)
    }

    fn read_trace(
        &self,
        id: TraceId,
        partitions: &[(u64, Partition)],
    ) -> StoreResult<Option<Trace>> {
        let mut spans = Vec::new();
        let mut first_error = None;
        for (p, part) in partitions {
            for (seq, ordinal) in self.candidate_blocks(*p, part, id)? {
                match self.read_in_block(*p, part, seq, id, ordinal) {
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

    /// The trace ids of block `seq` in `dir` order, and whether they came from `dir` (so that
    /// service-entry ordinals refer to them). Falls back to the block's own directory.
    fn block_ids(
        &self,
        p: u64,
        part: &Partition,
        seq: u64,
    ) -> StoreResult<Option<(Vec<TraceId>, bool)>> {
        match part.dir_value(p, seq)? {
            IndexValue::Bytes(v) => {
                if let Some(ids) = parse_dir(&v) {
                    return Ok(Some((ids, true)));
                }
                tracing::warn!(
                    partition = p,
                    block = seq,
                    "block directory entry is malformed"
                );
            }
            IndexValue::Unreadable => tracing::warn!(
                partition = p,
                block = seq,
                "block directory entry is unreadable; reading the block's own directory"
            ),
            IndexValue::Missing => {}
        }
        // The frames' own directories, in order, are the block's.
        let frames = match self.frames(p, part, seq) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "skipping unreadable block");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut ids = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let opened = self.frame(p, seq, part, i, f.at).and_then(|bytes| {
                BlockReader::open(&bytes)
                    .map(|r| r.trace_ids().collect::<Vec<_>>())
                    .map_err(|e| StoreError::Corrupt {
                        location: format!("partition {p}, block {seq}, frame {i}"),
                        detail: e.to_string(),
                    })
            });
            match opened {
                Ok(mut more) => ids.append(&mut more),
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "skipping unreadable block");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some((ids, false)))
    }

    /// Pushes the traces of one service index entry that may match onto `pending`, keyed by
    /// the start of their latest span of that service in the block, capped at the entry's
    /// `bound` (both bound the start of the trace's matching spans in this entry).
    #[allow(clippy::too_many_arguments)]
    fn open_entry(
        &self,
        p: u64,
        part: &Partition,
        seq: u64,
        block_max: u64,
        bound: u64,
        value: &[u8],
        filter: &Filter,
        seen: &Seen,
        pending: &mut BinaryHeap<(u64, TraceId)>,
    ) -> StoreResult<()> {
        let Some((ids, from_dir)) = self.block_ids(p, part, seq)? else {
            return Ok(());
        };
        let entries = decode_service_entry(block_max, value)
            .filter(|e| from_dir && e.iter().all(|(o, _, _)| *o < ids.len()));
        match entries {
            Some(entries) => {
                for (ordinal, start, summary) in entries {
                    let id = ids[ordinal];
                    if !seen.contains(&id) && filter.may_match(start, summary.as_ref()) {
                        pending.push((start.min(bound), id));
                    }
                }
            }
            None => {
                tracing::warn!(
                    partition = p,
                    block = seq,
                    "service index entry is unreadable; every trace of the block is a candidate"
                );
                for id in ids {
                    if !seen.contains(&id) {
                        pending.push((bound, id));
                    }
                }
            }
        }
        Ok(())
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
        let mut seen = Seen::default();
        let full = |best: &BinaryHeap<std::cmp::Reverse<(u64, TraceId)>>, start: u64| {
            best.len() >= limit
                && best
                    .peek()
                    .is_some_and(|std::cmp::Reverse((k, _))| *k > start)
        };
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
                    to.extend_from_slice(&[0xff; 8]);
                    part.hed.range(from..=to).rev().peekable()
                })
                .collect();
            // Three sources, each ordered by an upper bound on the match keys it can still
            // produce: the unread entries (a range scan per service, bounded by the block's
            // latest start in the key), the entries whose heads were read (bounded by what
            // the head allows, tighter), and the candidate traces of the opened entries. The
            // source with the highest bound goes next, candidates first on a tie, so
            // candidates come out newest first across blocks, and the scan stops once `limit`
            // verified traces beat every bound left.
            let mut heads: BinaryHeap<(u64, u64, u64, [u8; 20])> = BinaryHeap::new();
            let mut pending: BinaryHeap<(u64, TraceId)> = BinaryHeap::new();
            loop {
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
                let scan_top = pick.map(|(_, start)| start);
                let head_top = heads.peek().map(|(bound, ..)| *bound);
                let pending_top = pending.peek().map(|(start, _)| *start);
                let Some(top) = scan_top.max(head_top).max(pending_top) else {
                    break;
                };
                if full(&best, top) {
                    break 'partitions;
                }
                if pending_top == Some(top) {
                    let Some((_, trace_id)) = pending.pop() else {
                        break;
                    };
                    if !seen.insert(trace_id) {
                        continue;
                    }
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
                    continue;
                }
                if head_top == Some(top) {
                    let Some((bound, seq, block_max, key)) = heads.pop() else {
                        break;
                    };
                    // Missing summaries (a crash between the two trees) and damaged ones read
                    // as unreadable: every trace of the block becomes a candidate.
                    let value = match part.svc_value(*p, &key)? {
                        IndexValue::Bytes(v) => v,
                        IndexValue::Missing | IndexValue::Unreadable => Vec::new(),
                    };
                    self.open_entry(
                        *p,
                        part,
                        seq,
                        block_max,
                        bound,
                        &value,
                        &filter,
                        &seen,
                        &mut pending,
                    )?;
                    continue;
                }
                let Some((i, block_max)) = pick else { break };
                let Some(item) = iters[i].next() else { break };
                let (key, head) = item.map_err(io)?;
                let (Some(seq), Ok(key)) = (
                    key.get(12..).filter(|k| k.len() == 8).and_then(be_u64),
                    <[u8; 20]>::try_from(&key[..]),
                ) else {
                    tracing::warn!(partition = p, key = ?key, "skipping malformed service index key");
                    continue;
                };
                if let Some(bound) = filter.entry_bound(block_max, &head) {
                    heads.push((bound, seq, block_max, key));
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

/// Syncs the dirty block files every [`FILE_SYNC_INTERVAL`] until the store is dropped.
fn spawn_file_syncer(dirty: std::sync::Weak<DirtyFiles>) -> StoreResult<()> {
    std::thread::Builder::new()
        .name("spoor-blocksync".into())
        .spawn(move || loop {
            std::thread::sleep(FILE_SYNC_INTERVAL);
            let Some(dirty) = dirty.upgrade() else {
                return;
            };
            // A failure is logged by `sync_all` and retried on the next round.
            let _ = dirty.sync_all();
        })
        .map(|_| ())
        .map_err(|e| StoreError::Io(format!("cannot start the block file sync thread: {e}")))
}

fn open_partition(db: &sled::Db, blocks_dir: &Path, p: u64) -> StoreResult<Partition> {
    Ok(Partition {
        blk: db.open_tree(format!("p{p}.blk")).map_err(io)?,
        file: Arc::new(BlockFile::open(
            blocks_dir.join(format!("p{p}.blk")),
            FileKind::Blocks,
        )?),
        idx: Arc::new(BlockFile::open(
            blocks_dir.join(format!("p{p}.idx")),
            FileKind::Index,
        )?),
        dir: db.open_tree(format!("p{p}.dir")).map_err(io)?,
        svc: db.open_tree(format!("p{p}.svc")).map_err(io)?,
        hed: db.open_tree(format!("p{p}.hed")).map_err(io)?,
        index: Arc::new(RwLock::new(TraceIndex {
            blocks: Vec::new(),
            complete: true,
        })),
    })
}

/// Rebuilds the trace filters of a partition from its `dir` tree (at open).
fn load_filters(p: u64, part: &Partition) -> StoreResult<()> {
    let mut blocks = Vec::new();
    let mut complete = true;
    for item in part.dir.iter() {
        let (k, ptr) = item.map_err(io)?;
        let ids = match part.index_bytes(p, "dir", &k, &ptr)? {
            IndexValue::Bytes(v) => parse_dir(&v),
            IndexValue::Missing | IndexValue::Unreadable => None,
        };
        match (be_u64(&k).filter(|_| k.len() == 8), ids) {
            (Some(seq), Some(ids)) => blocks.push((seq, TraceFilter::new(&ids))),
            _ => {
                tracing::warn!(partition = p, key = ?k, "malformed block directory entry; trace lookups in this partition scan its index");
                complete = false;
            }
        }
    }
    let mut index = part.index.write();
    if complete {
        index.blocks = blocks;
    } else {
        index.blocks = Vec::new();
        index.complete = false;
    }
    Ok(())
}

/// The trace ids of a `dir` value, or `None` if it is malformed.
fn parse_dir(v: &[u8]) -> Option<Vec<TraceId>> {
    let (&format, ids) = v.split_first()?;
    if format != DIR_FORMAT || ids.len() % 16 != 0 {
        return None;
    }
    ids.chunks_exact(16).map(TraceId::from_slice).collect()
}

/// Where a `dir` value lists `id` (its ordinal in the block), `Some(None)` if it does not;
/// `None` if the value is malformed.
fn dir_position(v: &[u8], id: TraceId) -> Option<Option<usize>> {
    let (&format, ids) = v.split_first()?;
    if format != DIR_FORMAT || ids.len() % 16 != 0 {
        return None;
    }
    let want = id.to_bytes();
    Some(ids.chunks_exact(16).position(|c| c == want))
}

/// One frame of a block: a run of `traces` whole traces, in `dir` order, encoded as a block of
/// their own and compressed on their own at `at` in the block file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    traces: u32,
    at: BlockRef,
}

/// Bytes per frame in a `blk` value: trace count (u32 LE) ++ the 20-byte block file pointer.
const FRAME_ENTRY_BYTES: usize = 4 + 20;

/// The `blk` value of a block: its frames in order.
fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::with_capacity(frames.len() * FRAME_ENTRY_BYTES);
    for f in frames {
        v.extend_from_slice(&f.traces.to_le_bytes());
        v.extend_from_slice(&f.at.encode());
    }
    v
}

/// The frames of a `blk` value, or `None` if it is malformed.
fn decode_frames(v: &[u8]) -> Option<Vec<Frame>> {
    if v.is_empty() || v.len() % FRAME_ENTRY_BYTES != 0 {
        return None;
    }
    v.chunks_exact(FRAME_ENTRY_BYTES)
        .map(|c| {
            Some(Frame {
                traces: u32::from_le_bytes(c[..4].try_into().ok()?),
                at: BlockRef::decode(&c[4..])?,
            })
        })
        .collect()
}

/// The frame holding the trace of `ordinal`, `None` if the frames hold fewer traces.
fn frame_of(frames: &[Frame], ordinal: usize) -> Option<usize> {
    let mut first = 0usize;
    for (i, f) in frames.iter().enumerate() {
        first += f.traces as usize;
        if ordinal < first {
            return Some(i);
        }
    }
    None
}

/// Encodes one (service, block) index entry: its `hed` value (`HEAD_FORMAT` and the
/// [`EntryHead`]) and its `svc` value (`SVC_FORMAT`, the raw length of the summaries (u32 LE),
/// then zstd of: count, and per trace its ordinal in `dir`, `block_max` minus its latest
/// start, summary length and the summary).
fn encode_service_entry(
    block_max: u64,
    head: EntryHead,
    list: Vec<(usize, Summary)>,
) -> StoreResult<(Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::with_capacity(list.len() * 32);
    put_varint(&mut raw, list.len() as u64);
    for (ordinal, summary) in list {
        put_varint(&mut raw, ordinal as u64);
        put_varint(&mut raw, block_max - summary.max_start);
        let bytes = summary.encode();
        put_varint(&mut raw, bytes.len() as u64);
        raw.extend_from_slice(&bytes);
    }
    let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL)
        .map_err(|e| StoreError::Io(format!("zstd compression failed: {e}")))?;
    let mut out = Vec::with_capacity(5 + compressed.len());
    out.push(SVC_FORMAT);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&compressed);
    let mut head_bytes = Vec::with_capacity(256);
    head_bytes.push(HEAD_FORMAT);
    head.encode(block_max, &mut head_bytes);
    Ok((head_bytes, out))
}

/// The (ordinal, latest start, summary) triples of a service index entry, or `None` if the
/// entry is malformed.
fn decode_service_entry(block_max: u64, v: &[u8]) -> Option<Vec<(usize, u64, Vec<u8>)>> {
    let (&format, rest) = v.split_first()?;
    if format != SVC_FORMAT {
        return None;
    }
    let raw_len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if raw_len > MAX_BLOCK_BYTES {
        return None;
    }
    let raw = decompress(rest.get(4..)?, raw_len).ok()?;
    let mut pos = 0;
    let n = get_varint(&raw, &mut pos)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let ordinal = usize::try_from(get_varint(&raw, &mut pos)?).ok()?;
        let start = block_max.checked_sub(get_varint(&raw, &mut pos)?)?;
        let len = usize::try_from(get_varint(&raw, &mut pos)?).ok()?;
        let summary = raw.get(pos..pos.checked_add(len)?)?;
        pos += len;
        out.push((ordinal, start, summary.to_vec()));
    }
    (pos == raw.len()).then_some(out)
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

/// The tag hashes of span `s`, appended to `out`: `key=value` of its span, resource and event
/// attributes (doubles and bytes as `key=<any text>`, arrays and maps never), and its status
/// as `error=true` / `otel.status_code=ERROR|OK`. The one definition of what a tag filter over
/// spans holds, shared by the sled summaries and object-storage blocks (`spoor-objstore`).
pub fn span_tag_hashes(s: &Span, out: &mut Vec<u64>) {
    match s.status.code {
        StatusCode::Error => {
            out.push(tag_hash("error", "true"));
            out.push(tag_hash("otel.status_code", "ERROR"));
        }
        StatusCode::Ok => out.push(tag_hash("otel.status_code", "OK")),
        StatusCode::Unset => {}
    }
    let mut add = |attrs: &[KeyValue]| {
        for kv in attrs {
            let h = match &kv.value {
                AnyValue::Str(v) => tag_hash(&kv.key, v),
                AnyValue::Bool(b) => tag_hash(&kv.key, if *b { "true" } else { "false" }),
                AnyValue::Int(i) => tag_hash(&kv.key, &i.to_string()),
                AnyValue::Double(_) | AnyValue::Bytes(_) => tag_hash(&kv.key, ANY_TEXT),
                AnyValue::Array(_) | AnyValue::Map(_) => continue, // never match a tag
            };
            out.push(h);
        }
    };
    add(&s.attributes);
    add(&s.resource.attributes);
    for e in &s.events {
        add(&e.attributes);
    }
}

/// For each tag of `q` a filter over [`span_tag_hashes`] can decide: (hash of `key=value`,
/// hash of `key=<any text>`); a span set holding neither cannot match the query. Tags Jaeger
/// synthesises from span fields are left out (never used to skip).
pub fn query_tag_probes(q: &TraceQuery) -> Vec<(u64, u64)> {
    q.tags
        .iter()
        .filter(|(k, _)| !SYNTHETIC_TAGS.contains(&k.as_str()))
        .map(|(k, v)| (tag_hash(k, v), tag_hash(k, ANY_TEXT)))
        .collect()
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

    /// Adds span `s` (operation id `op`) to the summary and to its entry's `head`.
    fn add(&mut self, s: &Span, op: u32, head: &mut EntryHead) {
        head.add(s, op);
        head.add_keys(s);
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
        span_tag_hashes(s, &mut self.hashes);
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
        out.extend_from_slice(&bloom(&mut self.hashes, MAX_BLOOM_BYTES));
        out
    }
}

/// A bloom filter of 8 bits per distinct hash (at most `cap` bytes; empty without hashes).
fn bloom(hashes: &mut Vec<u64>, cap: usize) -> Vec<u8> {
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.is_empty() {
        return Vec::new();
    }
    let mut bloom = vec![0u8; hashes.len().clamp(1, cap)];
    let m = (bloom.len() * 8) as u64;
    for h in hashes.iter() {
        for bit in bloom_bits(*h, m) {
            bloom[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    bloom
}

/// Whether a bloom filter built by [`bloom`] may hold `h`.
fn bloom_has(bloom: &[u8], h: u64) -> bool {
    if bloom.is_empty() {
        return false;
    }
    let m = (bloom.len() * 8) as u64;
    bloom_bits(h, m).all(|bit| bloom[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

/// What a whole (service, block) index entry says about its spans, stored uncompressed in
/// front of the compressed summaries so that `find` can skip an entry, or rank it below its
/// block's latest start, without decompressing it.
struct EntryHead {
    min_start: u64,
    /// (operation id, kind, min duration, max duration, latest start)
    groups: Vec<(u32, u8, u64, u64, u64)>,
    /// Latest start of a span with status error, and with status ok.
    error_latest: Option<u64>,
    ok_latest: Option<u64>,
    /// Hashes of the attribute keys (span, resource, event) whose values can match a tag.
    attr_keys: Vec<u64>,
}

impl Default for EntryHead {
    fn default() -> Self {
        EntryHead {
            min_start: u64::MAX,
            groups: Vec::new(),
            error_latest: None,
            ok_latest: None,
            attr_keys: Vec::new(),
        }
    }
}

impl EntryHead {
    fn add(&mut self, s: &Span, op: u32) {
        let start = s.start_unix_nanos;
        self.min_start = self.min_start.min(start);
        let d = s.duration_nanos.max(0) as u64;
        let kind = s.kind as u8;
        match self
            .groups
            .iter_mut()
            .find(|(o, k, _, _, _)| *o == op && *k == kind)
        {
            Some(g) => {
                g.2 = g.2.min(d);
                g.3 = g.3.max(d);
                g.4 = g.4.max(start);
            }
            None => self.groups.push((op, kind, d, d, start)),
        }
        let latest = match s.status.code {
            StatusCode::Error => &mut self.error_latest,
            StatusCode::Ok => &mut self.ok_latest,
            StatusCode::Unset => return,
        };
        *latest = Some(latest.map_or(start, |l| l.max(start)));
    }

    /// Records the keys of `s`'s attributes (span, resource, events).
    fn add_keys(&mut self, s: &Span) {
        let events = s.events.iter().flat_map(|e| e.attributes.iter());
        for kv in s
            .attributes
            .iter()
            .chain(&s.resource.attributes)
            .chain(events)
        {
            if !matches!(kv.value, AnyValue::Array(_) | AnyValue::Map(_)) {
                self.attr_keys.push(tag_hash(&kv.key, KEY_TEXT));
            }
        }
    }

    /// Appends, as varints relative to `block_max`: `block_max` minus the earliest start; the
    /// groups (operation, kind, min duration, max minus min, `block_max` minus the latest
    /// start); the latest error and ok starts (0 for none, else `block_max` minus the start,
    /// plus one); then the attribute-key bloom filter's length and bytes.
    fn encode(mut self, block_max: u64, out: &mut Vec<u8>) {
        put_varint(out, block_max.saturating_sub(self.min_start));
        put_varint(out, self.groups.len() as u64);
        for (op, kind, min, max, latest) in &self.groups {
            put_varint(out, u64::from(*op));
            out.push(*kind);
            put_varint(out, *min);
            put_varint(out, max - min);
            put_varint(out, block_max.saturating_sub(*latest));
        }
        for latest in [self.error_latest, self.ok_latest] {
            put_varint(out, latest.map_or(0, |l| block_max.saturating_sub(l) + 1));
        }
        let bloom = bloom(&mut self.attr_keys, MAX_HEAD_BLOOM_BYTES);
        put_varint(out, bloom.len() as u64);
        out.extend_from_slice(&bloom);
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
    /// Per entry of `tags`: the hash of its key for entry heads, and the span status that
    /// also matches it (`error=true`, `otel.status_code=ERROR|OK`), if any.
    tag_heads: Vec<(u64, Option<StatusCode>)>,
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
            tags: query_tag_probes(q),
            tag_heads: q
                .tags
                .iter()
                .filter(|(k, _)| !SYNTHETIC_TAGS.contains(&k.as_str()))
                .map(|(k, v)| {
                    let status = match (k.as_str(), v.as_str()) {
                        ("error", "true") | ("otel.status_code", "ERROR") => {
                            Some(StatusCode::Error)
                        }
                        ("otel.status_code", "OK") => Some(StatusCode::Ok),
                        _ => None,
                    };
                    (tag_hash(k, KEY_TEXT), status)
                })
                .collect(),
        })
    }

    /// An upper bound on the start of any span of the entry (head `head`, latest start
    /// `block_max`) that matches the query, or `None` when no span of it can match. A
    /// malformed head bounds nothing: `Some(block_max)`.
    fn entry_bound(&self, block_max: u64, head: &[u8]) -> Option<u64> {
        self.check_head(block_max, head).unwrap_or(Some(block_max))
    }

    fn check_head(&self, block_max: u64, b: &[u8]) -> Option<Option<u64>> {
        if b.first() != Some(&HEAD_FORMAT) {
            return None;
        }
        let mut pos = 1;
        let min_start = block_max.checked_sub(get_varint(b, &mut pos)?)?;
        let n = get_varint(b, &mut pos)?;
        let mut bound: Option<u64> = None;
        for _ in 0..n {
            let op = u32::try_from(get_varint(b, &mut pos)?).ok()?;
            let kind = *b.get(pos)?;
            pos += 1;
            let min = get_varint(b, &mut pos)?;
            let max = min.checked_add(get_varint(b, &mut pos)?)?;
            let latest = block_max.checked_sub(get_varint(b, &mut pos)?)?;
            if self.operation.is_none_or(|o| o == op)
                && self.kind.is_none_or(|k| k == kind)
                && max >= self.duration_min
                && min <= self.duration_max
            {
                bound = Some(bound.map_or(latest, |b| b.max(latest)));
            }
        }
        let mut status = [None; 2];
        for latest in &mut status {
            *latest = match get_varint(b, &mut pos)? {
                0 => None,
                d => Some(block_max.checked_sub(d - 1)?),
            };
        }
        let len = usize::try_from(get_varint(b, &mut pos)?).ok()?;
        let bloom = b.get(pos..pos.checked_add(len)?)?;
        if pos + len != b.len() {
            return None;
        }
        if min_start > self.start_max {
            return Some(None);
        }
        let Some(mut bound) = bound else {
            return Some(None);
        };
        for (key, by_status) in &self.tag_heads {
            let tag_bound = if bloom_has(bloom, *key) {
                Some(block_max)
            } else {
                match by_status {
                    Some(StatusCode::Error) => status[0],
                    Some(StatusCode::Ok) => status[1],
                    _ => None,
                }
            };
            match tag_bound {
                Some(t) => bound = bound.min(t),
                None => return Some(None),
            }
        }
        let bound = bound.min(self.start_max);
        Some((bound >= self.start_min).then_some(bound))
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
        Some(
            self.tags
                .iter()
                .all(|(exact, any)| bloom_has(bloom, *exact) || bloom_has(bloom, *any)),
        )
    }
}

impl TraceStore for SledStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        self.ensure_room(DISK_RESERVE_BYTES)?;
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
            self.shed_filters(&parts);
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
            self.shed_filters(&parts);
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
        self.ensure_room(DISK_RESERVE_BYTES / 2)?;
        if links.is_empty() {
            return Ok(());
        }
        self.with_aggregate_marks([bucket_start_nanos], || {
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
        })
    }

    fn flush(&self) -> StoreResult<()> {
        // Block bytes first: an index entry made durable never points at unsynced bytes.
        self.dirty.sync_all()?;
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

    fn write_span_metrics(&self, points: &[spoor_core::red::RedPoint]) -> StoreResult<()> {
        self.ensure_room(DISK_RESERVE_BYTES / 2)?;
        self.with_aggregate_marks(points.iter().map(|p| p.bucket_start_nanos), || {
            self.red.write(points)
        })
    }

    fn span_metrics(
        &self,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<spoor_core::red::RedPoint>> {
        self.red.read(services, start_nanos, end_nanos)
    }

    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        self.red.expire_before(cutoff_nanos)?;
        // dependency links of the partitions that ended by the cutoff (as object storage
        // deletes their aggregate objects)
        let len = self.partition_nanos.max(1);
        let limit = (cutoff_nanos / len).saturating_mul(len);
        let old: Vec<IVec> = self
            .deps
            .range(..limit.to_be_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(io)?;
        for k in old {
            self.deps.remove(k).map_err(io)?;
        }
        // marks of partitions that ended by the cutoff: nothing of them is uploaded any more
        for (p, _) in self.aggregates_changed()? {
            let ended = p
                .checked_add(1)
                .and_then(|n| n.checked_mul(self.partition_nanos))
                .is_some_and(|end| end <= cutoff_nanos);
            if ended {
                self.aggregates.remove(p.to_be_bytes()).map_err(io)?;
            }
        }
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
            self.drop_partition(&mut parts, *p)?;
        }
        drop(parts);
        let n = old.len() as u64;
        self.partitions_expired.fetch_add(n, Ordering::Relaxed);
        let mut cache = self.cache.lock();
        cache.entries.retain(|((p, _, _), _)| !old.contains(p));
        cache.bytes = cache.entries.iter().map(|(_, b)| b.len()).sum();
        Ok(n)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.spans_written.load(Ordering::Relaxed),
            traces: 0,
            traces_evicted: 0,
            bytes_on_disk: self
                .db
                .size_on_disk()
                .unwrap_or(0)
                .saturating_add(self.block_file_bytes()),
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

    #[test]
    fn retention_expires_the_links_of_ended_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        const HOUR: u64 = 3_600_000_000_000;
        let link = |n| DependencyLink {
            parent: "a".into(),
            child: "b".into(),
            call_count: n,
        };
        let t0 = 1_000 * HOUR;
        for (bucket, n) in [(t0, 1), (t0 + HOUR - 60_000_000_000, 2), (t0 + HOUR, 4)] {
            s.write_dependencies(bucket, &[link(n)]).unwrap();
        }
        assert_eq!(s.dependencies(t0 + 2 * HOUR, 3 * HOUR).unwrap(), [link(7)]);
        // the cutoff inside the second partition: only the first (ended) one goes
        s.expire_before(t0 + HOUR + 1).unwrap();
        assert_eq!(s.dependencies(t0 + 2 * HOUR, 3 * HOUR).unwrap(), [link(4)]);
        drop(s);
        let s = store(&dir);
        assert_eq!(s.dependencies(t0 + 2 * HOUR, 3 * HOUR).unwrap(), [link(4)]);
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
    fn writes_are_refused_while_the_disk_reserve_is_not_free() {
        let dir = Path::new("/data/spoor");
        // (free bytes, bytes needed, refused)
        let cases = [
            (0, 1, true),
            (999, 1000, true),
            (1000, 1000, false),
            (5 << 20, 2 << 20, false),
        ];
        for (available, needed, refused) in cases {
            let r = check_room(dir, available, needed);
            assert_eq!(r.is_err(), refused, "{available} free, {needed} needed");
            if let Err(e) = r {
                let text = e.to_string();
                assert!(
                    text.contains("no space left on device") && text.contains("/data/spoor"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn corrupt_block_is_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.write_spans(&[span(1, 1, T), span(2, 9, T)]).unwrap();
        s.write_spans(&[span(1, 2, T + 1)]).unwrap();
        s.write_spans(&[span(3, 3, T + 2)]).unwrap();
        let (p, part) = s.live_partitions().remove(0);
        let path = dir.path().join("blocks").join(format!("p{p}.blk"));
        assert_eq!(part.file.path(), path);
        // Damage the bytes of the first block (seq 0, at offset 0 of the block file): trace 1
        // keeps its span from block 1.
        let frames = decode_frames(&part.blk.get(0u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        assert_eq!(frames.len(), 1);
        let at = frames[0].at;
        assert_eq!((at.offset, frames[0].traces), (0, 2));
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.write_all(b"\x10\x00\x00\x00garbage").unwrap();
        }
        s.cache.lock().entries.clear();
        let t = s.get_trace(TraceId(1)).unwrap().unwrap();
        assert_eq!(
            t.spans.iter().map(|s| s.span_id).collect::<Vec<_>>(),
            vec![SpanId(2)]
        );
        // Trace 2 lived only in the damaged block.
        let err = s.get_trace(TraceId(2)).unwrap_err().to_string();
        let prefix = format!(
            "stored data is corrupt at block file {}, offset 0: checksum ",
            path.display()
        );
        let suffix = format!(" of {} bytes, expected {:016x}", at.len, at.checksum);
        assert!(err.starts_with(&prefix) && err.ends_with(&suffix), "{err}");
        // find skips the unreadable candidate and still answers.
        let q = TraceQuery {
            service: Some("svc".into()),
            ..TraceQuery::between(0, u64::MAX)
        };
        assert_eq!(s.find_trace_ids(&q).unwrap(), vec![TraceId(3), TraceId(1)]);
        // Bytes that pass the checksum but do not decompress are named by block.
        let (bad, _) = part.file.append(b"\x10\x00\x00\x00garbage").unwrap();
        let one = |at| encode_frames(&[Frame { traces: 1, at }]);
        part.blk.insert(2u64.to_be_bytes(), one(bad)).unwrap();
        s.cache.lock().entries.clear();
        assert_eq!(
            s.get_trace(TraceId(3)).unwrap_err().to_string(),
            format!(
                "stored data is corrupt at partition {p}, block 2, frame 0: zstd: Src size is incorrect"
            )
        );
        // An index entry pointing past the end of the file (torn by a crash).
        let len = part.file.len();
        let past = BlockRef {
            offset: len - 4,
            len: 100,
            checksum: 0,
        };
        part.blk.insert(2u64.to_be_bytes(), one(past)).unwrap();
        assert_eq!(
            s.get_trace(TraceId(3)).unwrap_err().to_string(),
            format!(
                "stored data is corrupt at block file {}, offset {}: block of 100 bytes ends past the end of the file (4 bytes read)",
                path.display(),
                len - 4
            )
        );
        assert_eq!(s.find_trace_ids(&q).unwrap(), vec![TraceId(1)]);
    }

    #[test]
    fn block_files_are_sized_synced_and_deleted_with_their_partition() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.write_spans(&[span(1, 1, T), span(2, 2, T + 1)]).unwrap();
        let p = T / 3_600_000_000_000;
        let path = dir.path().join("blocks").join(format!("p{p}.blk"));
        let idx_path = dir.path().join("blocks").join(format!("p{p}.idx"));
        let file_len = std::fs::metadata(&path).unwrap().len();
        let idx_len = std::fs::metadata(&idx_path).unwrap().len();
        assert!(file_len > 0 && idx_len > 0);
        // Both files wait for the next sync, which comes before sled's flush.
        assert_eq!(s.dirty.pending(), 2);
        s.flush().unwrap();
        assert_eq!(s.dirty.pending(), 0);
        assert!(s.stats().bytes_on_disk >= file_len + idx_len + s.db.size_on_disk().unwrap());
        assert_eq!(s.expire_before(u64::MAX).unwrap(), 1);
        assert!(!path.exists());
        assert!(!idx_path.exists());
        assert_eq!(s.get_trace(TraceId(1)).unwrap(), None);
        // The partition comes back with fresh files.
        s.write_spans(&[span(3, 3, T)]).unwrap();
        assert_eq!(s.get_trace(TraceId(3)).unwrap().unwrap().spans.len(), 1);
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), vec![TraceId(3)]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() + std::fs::metadata(&idx_path).unwrap().len(),
            s.block_file_bytes()
        );
    }

    fn svc_query() -> TraceQuery {
        TraceQuery {
            service: Some("svc".into()),
            ..TraceQuery::between(0, u64::MAX)
        }
    }

    #[test]
    fn a_large_write_is_framed_and_a_read_decompresses_only_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        // 300 traces of 10 spans in one write: frames of FRAME_SPANS spans of whole traces.
        let spans: Vec<Span> = (0..300u128)
            .flat_map(|t| {
                (0..10u64).map(move |i| span(t + 1, t as u64 * 100 + i + 1, T + t as u64))
            })
            .collect();
        s.write_spans(&spans).unwrap();
        let (p, part) = s.live_partitions().remove(0);
        let frames = decode_frames(&part.blk.get(0u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        let per_frame = (FRAME_SPANS / 10) as u32;
        assert_eq!(frames.len(), 300usize.div_ceil(per_frame as usize));
        assert!(frames[..frames.len() - 1]
            .iter()
            .all(|f| f.traces == per_frame));
        assert_eq!(frames.iter().map(|f| f.traces).sum::<u32>(), 300);
        // The last trace lives in the last frame: only that frame is read and cached.
        s.cache.lock().entries.clear();
        let t = s.get_trace(TraceId(300)).unwrap().unwrap();
        assert_eq!(t.spans.len(), 10);
        let cached: Vec<_> = s.cache.lock().entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(cached, vec![(p, 0, frames.len() as u32 - 1)]);
        for id in [1u128, per_frame as u128, per_frame as u128 + 1, 300] {
            let t = s.get_trace(TraceId(id)).unwrap().unwrap();
            assert_eq!(t.spans.len(), 10, "trace {id}");
            assert!(t.spans.iter().all(|x| x.trace_id == TraceId(id)));
        }
        let q = TraceQuery {
            limit: 300,
            ..svc_query()
        };
        assert_eq!(s.find_trace_ids(&q).unwrap().len(), 300);
        // Without the block's directory entry, every frame's own directory stands in.
        part.dir.remove(0u64.to_be_bytes()).unwrap();
        let found = s.find_trace_ids(&q).unwrap();
        assert_eq!(found.len(), 300);
        assert_eq!(found[0], TraceId(300));
        s.cache.lock().entries.clear();
        assert_eq!(s.get_trace(TraceId(150)).unwrap().unwrap().spans.len(), 10);
        // A malformed frame list is corrupt data, named by block.
        part.blk
            .insert(0u64.to_be_bytes(), &[1u8, 2, 3][..])
            .unwrap();
        assert_eq!(
            s.get_trace(TraceId(150)).unwrap_err().to_string(),
            format!("stored data is corrupt at partition {p}, block 0: bad frame list of 3 bytes")
        );
    }

    #[test]
    fn shed_filters_fall_back_to_scanning_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        s.filter_cap = 100; // one block's filter (32 + 16 bytes) fits, two do not
        s.write_spans(&[span(1, 1, T), span(2, 2, T + 1)]).unwrap();
        assert!(s.live_partitions()[0].1.index.read().complete);
        s.write_spans(&[span(1, 3, T + 2), span(3, 4, T + 3)])
            .unwrap();
        s.write_spans(&[span(1, 5, T + 4)]).unwrap();
        let (_, part) = s.live_partitions().remove(0);
        assert!(!part.index.read().complete);
        assert!(part.index.read().blocks.is_empty());
        assert_eq!(s.filter_bytes.load(Ordering::Relaxed), 0);
        let t = s.get_trace(TraceId(1)).unwrap().unwrap();
        let mut ids: Vec<u64> = t.spans.iter().map(|s| s.span_id.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 3, 5]);
        assert_eq!(s.get_trace(TraceId(9)).unwrap(), None);
        assert_eq!(
            s.find_trace_ids(&svc_query()).unwrap(),
            vec![TraceId(1), TraceId(3), TraceId(2)]
        );
        // Expiry gives the bytes back.
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        s.filter_cap = 1 << 20;
        s.write_spans(&[span(1, 1, T)]).unwrap();
        assert_eq!(s.filter_bytes.load(Ordering::Relaxed), 48);
        assert_eq!(s.expire_before(u64::MAX).unwrap(), 1);
        assert_eq!(s.filter_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn traces_verified_block_by_block_are_complete_and_exact() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let hour = 3_600_000_000_000;
        let slow = |trace, id, start| Span {
            duration_nanos: 1_000,
            ..span(trace, id, start)
        };
        // 1: alone in block 0; 2: in blocks 0 and 1; 3: in block 0 and the next partition;
        // 4: alone in block 0 but too fast.
        s.write_spans(&[
            slow(1, 1, T),
            slow(2, 2, T + 1),
            span(2, 3, T + 2),
            slow(3, 4, T + 3),
            span(4, 5, T + 4),
        ])
        .unwrap();
        s.write_spans(&[span(2, 6, T + 5)]).unwrap();
        s.write_spans(&[span(3, 7, T + hour)]).unwrap();
        let q = TraceQuery {
            duration_min_nanos: Some(500),
            ..svc_query()
        };
        let found: Vec<(u128, usize)> = s
            .find_traces(&q)
            .unwrap()
            .iter()
            .map(|t| (t.trace_id.0, t.spans.len()))
            .collect();
        assert_eq!(found, vec![(3, 2), (2, 3), (1, 1)]);
    }

    #[test]
    fn filters_are_rebuilt_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(&dir);
            s.write_spans(&[span(1, 1, T), span(2, 2, T + 1)]).unwrap();
            s.write_spans(&[span(1, 3, T + 2)]).unwrap();
            s.flush().unwrap();
        }
        let s = store(&dir);
        let (_, part) = s.live_partitions().remove(0);
        let index = part.index.read();
        assert!(index.complete);
        assert_eq!(
            index.blocks.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(index.blocks[1].1.may_contain(TraceId(1)));
        drop(index);
        assert_eq!(s.get_trace(TraceId(1)).unwrap().unwrap().spans.len(), 2);
    }

    #[test]
    fn unreadable_index_entries_make_candidates_not_misses() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.write_spans(&[span(1, 1, T), span(2, 2, T + 1)]).unwrap();
        s.write_spans(&[span(3, 3, T + 2)]).unwrap();
        let (_, part) = s.live_partitions().remove(0);
        // Garbage in every service entry: all traces of the blocks become candidates.
        let keys: Vec<IVec> = part.svc.iter().keys().map(|k| k.unwrap()).collect();
        assert_eq!(keys.len(), 2);
        for k in &keys {
            part.svc.insert(k, &b"\x01garbage"[..]).unwrap();
        }
        assert_eq!(
            s.find_trace_ids(&svc_query()).unwrap(),
            vec![TraceId(3), TraceId(2), TraceId(1)]
        );
        // Garbage heads bound nothing; summaries lost in a crash read as unreadable.
        for k in &keys {
            part.hed.insert(k, &b"\x01garbage"[..]).unwrap();
        }
        part.svc.remove(&keys[0]).unwrap();
        assert_eq!(
            s.find_trace_ids(&svc_query()).unwrap(),
            vec![TraceId(3), TraceId(2), TraceId(1)]
        );
        // A broken block directory as well: the ids come from the block itself.
        part.dir.insert(0u64.to_be_bytes(), &b"\x07"[..]).unwrap();
        assert_eq!(
            s.find_trace_ids(&svc_query()).unwrap(),
            vec![TraceId(3), TraceId(2), TraceId(1)]
        );
        assert_eq!(s.get_trace(TraceId(2)).unwrap().unwrap().spans.len(), 1);
        // Reopened with the broken directory, the partition is scanned instead of filtered.
        drop(part);
        s.flush().unwrap();
        drop(s);
        let s = store(&dir);
        assert!(!s.live_partitions()[0].1.index.read().complete);
        assert_eq!(s.get_trace(TraceId(1)).unwrap().unwrap().spans.len(), 1);
        assert_eq!(s.get_trace(TraceId(3)).unwrap().unwrap().spans.len(), 1);
    }

    #[test]
    fn damaged_index_file_entries_make_candidates_not_misses() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.write_spans(&[span(1, 1, T), span(2, 2, T + 1)]).unwrap();
        s.write_spans(&[span(3, 3, T + 2)]).unwrap();
        s.write_spans(&[span(1, 4, T + 3)]).unwrap();
        s.flush().unwrap();
        let all = vec![TraceId(1), TraceId(3), TraceId(2)];
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), all);
        let (p, part) = s.live_partitions().remove(0);
        let path = dir.path().join("blocks").join(format!("p{p}.idx"));
        let refs = |tree: &Tree| -> Vec<BlockRef> {
            tree.iter()
                .values()
                .map(|v| BlockRef::decode(&v.unwrap()).unwrap())
                .collect()
        };
        // sled holds pointers only: dir and svc values are 20-byte references into the file.
        let (dirs, svcs) = (refs(&part.dir), refs(&part.svc));
        assert_eq!((dirs.len(), svcs.len()), (3, 3));
        assert_eq!(dirs[0].offset, 0, "the directory comes first");
        assert_eq!(svcs[0].offset, u64::from(dirs[0].len));
        let damage = |offset: u64| {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(offset)).unwrap();
            f.write_all(b"\xff\xff").unwrap();
        };
        // Damaged summaries of block 0: its traces become candidates, verification decides.
        damage(svcs[0].offset + 1);
        let err = part.idx.read(svcs[0]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "stored data is corrupt at index file {}, offset {}: checksum ",
                path.display(),
                svcs[0].offset
            )),
            "{err}"
        );
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), all);
        // Summaries torn off the end of the file (a crash before the file was synced).
        let torn = BlockRef {
            offset: part.idx.len() - 2,
            ..svcs[1]
        };
        let key = part.svc.iter().keys().nth(1).unwrap().unwrap();
        part.svc.insert(&key, &torn.encode()[..]).unwrap();
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), all);
        // A damaged directory: lookups read the block itself, nothing is missed.
        damage(dirs[0].offset + 3);
        assert_eq!(s.get_trace(TraceId(2)).unwrap().unwrap().spans.len(), 1);
        assert_eq!(s.get_trace(TraceId(1)).unwrap().unwrap().spans.len(), 2);
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), all);
        // Reopened, the partition with the unreadable directory is scanned instead of filtered.
        drop(part);
        s.flush().unwrap();
        drop(s);
        let s = store(&dir);
        assert!(!s.live_partitions()[0].1.index.read().complete);
        assert_eq!(s.get_trace(TraceId(2)).unwrap().unwrap().spans.len(), 1);
        assert_eq!(s.get_trace(TraceId(1)).unwrap().unwrap().spans.len(), 2);
        assert_eq!(s.get_trace(TraceId(9)).unwrap(), None);
        assert_eq!(s.find_trace_ids(&svc_query()).unwrap(), all);
    }

    #[test]
    fn service_entries_round_trip() {
        let mut head = EntryHead::default();
        let mut a = Summary::new(T);
        a.add(&span(1, 1, T + 5), 1, &mut head);
        let b = Summary::new(T + 9);
        let (head, value) = encode_service_entry(T + 9, head, vec![(0, a), (3, b)]).unwrap();
        assert_eq!(head.first(), Some(&HEAD_FORMAT));
        let got = decode_service_entry(T + 9, &value).unwrap();
        assert_eq!(
            got.iter().map(|(o, s, _)| (*o, *s)).collect::<Vec<_>>(),
            vec![(0, T + 5), (3, T + 9)]
        );
        assert_eq!(decode_service_entry(T + 9, &value[..value.len() - 1]), None);
        assert_eq!(decode_service_entry(3, &value), None, "start before zero");
        assert_eq!(decode_service_entry(T, b"\x02"), None);
    }

    #[test]
    fn databases_of_another_layout_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.db.open_tree("meta").unwrap().remove(b"layout").unwrap();
        s.flush().unwrap();
        drop(s);
        let err = SledStore::open(SledConfig::new(dir.path()))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "storage i/o failed: sled database at {} uses storage layout 1, this build reads layout 7",
                dir.path().display()
            ))
        );
    }

    #[test]
    fn entry_heads_bound_matching_starts() {
        let mut head = EntryHead::default();
        let mk = |id, start, op: &str, dur, code| {
            let mut sp = span(1, id, start);
            sp.name = op.into();
            sp.duration_nanos = dur;
            sp.status.code = code;
            sp
        };
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let spans = [
            mk(1, T + 10, "fast", 5, StatusCode::Error),
            mk(2, T + 20, "slow", 900, StatusCode::Unset),
            mk(3, T + 30, "slow", 100, StatusCode::Ok),
            mk(4, T + 40, "fast", 7, StatusCode::Unset),
        ];
        for sp in &spans {
            head.add(sp, s.intern(&sp.name).unwrap());
            head.add_keys(sp);
        }
        let block_max = T + 40;
        let mut b = vec![HEAD_FORMAT];
        head.encode(block_max, &mut b);
        let bound = |f: fn(&mut TraceQuery)| {
            let mut q = TraceQuery::between(0, u64::MAX);
            f(&mut q);
            Filter::new(&s, &q).unwrap().entry_bound(block_max, &b)
        };
        assert_eq!(bound(|_| {}), Some(T + 40));
        assert_eq!(bound(|q| q.operation = Some("slow".into())), Some(T + 30));
        assert_eq!(bound(|q| q.duration_min_nanos = Some(200)), Some(T + 30));
        assert_eq!(bound(|q| q.duration_min_nanos = Some(901)), None);
        assert_eq!(bound(|q| q.duration_max_nanos = Some(6)), Some(T + 40));
        assert_eq!(bound(|q| q.span_kind = Some(SpanKind::Server)), None);
        fn tag(k: &str, v: &str) -> Vec<(String, String)> {
            vec![(k.to_owned(), v.to_owned())]
        }
        assert_eq!(bound(|q| q.tags = tag("error", "true")), Some(T + 10));
        assert_eq!(
            bound(|q| q.tags = tag("otel.status_code", "ERROR")),
            Some(T + 10)
        );
        assert_eq!(
            bound(|q| q.tags = tag("otel.status_code", "OK")),
            Some(T + 30)
        );
        assert_eq!(bound(|q| q.tags = tag("k", "v")), Some(T + 40));
        assert_eq!(bound(|q| q.tags = tag("k", "w")), Some(T + 40), "keys only");
        assert_eq!(bound(|q| q.tags = tag("j", "v")), None);
        assert_eq!(
            bound(|q| q.tags = vec![("k".into(), "v".into()), ("error".into(), "true".into())]),
            Some(T + 10)
        );
        assert_eq!(
            bound(|q| q.tags = tag("span.kind", "server")),
            Some(T + 40),
            "synthetic tags bound nothing"
        );
        assert_eq!(bound(|q| q.start_max_nanos = T + 25), Some(T + 25));
        assert_eq!(bound(|q| q.start_max_nanos = T + 5), None);
        assert_eq!(
            bound(|q| {
                q.tags = tag("error", "true");
                q.start_min_nanos = T + 11;
            }),
            None
        );
        // A damaged head bounds nothing instead of hiding the entry.
        let f = Filter::new(&s, &TraceQuery::between(0, u64::MAX)).unwrap();
        assert_eq!(f.entry_bound(block_max, &b[..b.len() - 1]), Some(block_max));
        assert_eq!(f.entry_bound(block_max, &[]), Some(block_max));
        b[0] = 7;
        assert_eq!(
            f.entry_bound(block_max, &b),
            Some(block_max),
            "unknown format"
        );
    }

    #[test]
    fn find_matches_a_full_scan_across_many_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let services: Vec<Arc<Resource>> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                Arc::new(Resource {
                    service_name: (*n).into(),
                    ..Default::default()
                })
            })
            .collect();
        let mut all: Vec<Span> = Vec::new();
        for batch in 0..40u64 {
            let mut spans = Vec::new();
            // Every tenth write is large enough to be cut into several frames.
            let n = if batch % 10 == 9 { 2_500 } else { 60 };
            for i in 0..n {
                // Traces recur across batches; starts spread over a wide window per batch.
                let trace = u128::from(next(300) + 1);
                let mut sp = span(trace, batch * 10_000 + i, T + next(1_000_000));
                sp.resource = services[next(3) as usize].clone();
                sp.name = ["x", "y", "z"][next(3) as usize].into();
                sp.duration_nanos = next(1000) as i64;
                sp.status.code = match next(20) {
                    0 => StatusCode::Error,
                    1 => StatusCode::Ok,
                    _ => StatusCode::Unset,
                };
                sp.attributes = vec![KeyValue::string("u", format!("{}", next(50)))];
                spans.push(sp);
            }
            s.write_spans(&spans).unwrap();
            all.extend(spans);
        }
        let mut traces: HashMap<TraceId, Vec<Span>> = HashMap::new();
        for sp in &all {
            traces.entry(sp.trace_id).or_default().push(sp.clone());
        }
        let base = |svc: &str, limit: usize| TraceQuery {
            service: Some(svc.into()),
            limit,
            ..TraceQuery::between(0, u64::MAX)
        };
        let tag = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        let mut queries = Vec::new();
        for (svc, limit) in [("a", 1), ("b", 5), ("c", 20)] {
            queries.push(base(svc, limit));
            queries.push(TraceQuery {
                operation: Some("y".into()),
                duration_min_nanos: Some(900),
                ..base(svc, limit)
            });
            queries.push(TraceQuery {
                tags: tag("error", "true"),
                ..base(svc, limit)
            });
            queries.push(TraceQuery {
                tags: tag("otel.status_code", "OK"),
                start_max_nanos: T + 500_000,
                ..base(svc, limit)
            });
            queries.push(TraceQuery {
                tags: tag("u", "7"),
                operation: Some("z".into()),
                ..base(svc, limit)
            });
        }
        for q in queries {
            let expected = crate::rank(
                traces
                    .iter()
                    .filter_map(|(id, t)| match_key(&q, t).map(|k| (k, *id)))
                    .collect(),
                &q,
            );
            assert!(!expected.is_empty(), "{q:?} finds nothing");
            assert_eq!(s.find_trace_ids(&q).unwrap(), expected, "{q:?}");
        }
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
        sum.add(&sp, 3, &mut EntryHead::default());
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
            f(with_tag("span.kind", "server")),
            Some(true),
            "synthetic tags are never pruned"
        );
        assert_eq!(
            f(with_tag("error", "true")),
            Some(false),
            "no error status, no error attribute"
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
        let mut sum = Summary::new(T);
        let mut head = EntryHead::default();
        sum.add(&sp, 0, &mut head);
        let value = sum.encode();
        let mut head_bytes = vec![HEAD_FORMAT];
        head.encode(T, &mut head_bytes);
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        for (k, v) in cases {
            assert!(spoor_core::query::span_has_tag(&sp, k, v), "{k}={v}");
            let q = TraceQuery {
                tags: vec![(k.into(), v.into())],
                ..TraceQuery::between(0, u64::MAX)
            };
            let filter = Filter::new(&s, &q).unwrap();
            assert!(
                filter.may_match(T, &value),
                "{k}={v} must not be pruned by the bloom filter"
            );
            assert_eq!(
                filter.entry_bound(T, &head_bytes),
                Some(T),
                "{k}={v} must not be pruned by the entry head"
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

    #[test]
    fn aggregate_writes_mark_their_partitions_until_an_upload_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        const H: u64 = 3_600_000_000_000;
        let link = |p: &str, c: &str, n: u64| DependencyLink {
            parent: p.into(),
            child: c.into(),
            call_count: n,
        };
        let red = |start: u64| spoor_core::red::RedPoint {
            service: "a".into(),
            operation: "op".into(),
            kind: SpanKind::Server,
            bucket_start_nanos: start,
            bucket_nanos: 60_000_000_000,
            calls: 1,
            errors: 0,
            histogram: Default::default(),
        };
        assert_eq!(s.aggregates_changed().unwrap(), vec![]);
        s.write_dependencies(10 * H + 5, &[link("a", "b", 2), link("a", "c", 1)])
            .unwrap();
        s.write_dependencies(10 * H + 5, &[link("a", "b", 3)])
            .unwrap();
        s.write_dependencies(11 * H - 1, &[link("b", "c", 1)])
            .unwrap();
        s.write_dependencies(12 * H, &[]).unwrap();
        s.write_span_metrics(&[red(10 * H), red(10 * H + 60), red(12 * H)])
            .unwrap();
        // four writes to partition 10, one to 12 (the empty link write marks nothing), each
        // counted before and after it wrote
        assert_eq!(s.aggregates_changed().unwrap(), vec![(10, 8), (12, 2)]);
        assert_eq!(
            s.dependency_buckets(10 * H, 11 * H).unwrap(),
            vec![
                (10 * H + 5, vec![link("a", "b", 5), link("a", "c", 1)]),
                (11 * H - 1, vec![link("b", "c", 1)]),
            ]
        );
        assert_eq!(s.dependency_buckets(11 * H, 12 * H).unwrap(), vec![]);
        // a write between reading and clearing keeps the mark
        assert!(!s.mark_aggregates_sealed(10, 7).unwrap());
        assert!(s.mark_aggregates_sealed(10, 8).unwrap());
        assert_eq!(s.aggregates_changed().unwrap(), vec![(12, 2)]);
        // retention clears the marks of partitions that ended by the cutoff
        s.write_span_metrics(&[red(10 * H)]).unwrap();
        s.expire_before(11 * H).unwrap();
        assert_eq!(s.aggregates_changed().unwrap(), vec![(12, 2)]);
    }

    #[test]
    fn the_seal_id_is_fixed_by_the_first_call_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(&dir);
            assert_eq!(s.seal_id(7).unwrap(), 7);
            assert_eq!(s.seal_id(8).unwrap(), 7);
        }
        assert_eq!(store(&dir).seal_id(9).unwrap(), 7);
        let other = tempfile::tempdir().unwrap();
        assert_eq!(store(&other).seal_id(9).unwrap(), 9);
    }
}
