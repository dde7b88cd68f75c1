//! [`BlockStore`]: the read side of object storage, a read-only [`TraceStore`] over the blocks
//! and the aggregate objects (links, span metrics; see [`crate::aggregates`]) under a prefix;
//! and [`TieredStore`]: a head store (sled, or live ingesters) merged with it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::{Mutex, RwLock};
use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};
use spoor_store::embedded::tracefilter::TraceFilter;
use spoor_store::{match_key, rank, StoreError, StoreResult, StoreStats, TraceStore};
use tokio::runtime::Handle;

use crate::aggregates::{self, AggregateReader, Aggregates, AGGREGATES_DIR};
use crate::block::{self, BlockBody, BlockHead, FrameRef};

/// Decoded block bodies kept per query node (most recently used).
const BODY_CACHE: usize = 32;
/// A listed block's id and index size, and what reading its index gave.
type HeadRead = (String, u64, StoreResult<(BlockHead, BlockBody)>);

/// Index objects read at once when new blocks are listed.
const READ_AHEAD: usize = 16;
/// Decompressed frames kept, in bytes.
const FRAME_CACHE_BYTES: usize = 64 << 20;

/// The folder under a bucket's prefix that holds one folder per tenant:
/// `<prefix>/tenants/<tenant>/blocks/<id>.{data,index}` and
/// `<prefix>/tenants/<tenant>/aggregates/<name>`.
pub const TENANTS_DIR: &str = "tenants";

/// Where the blocks live: a store and a prefix (`<prefix>/blocks/<id>.{data,index}`, and the
/// aggregate objects `<prefix>/aggregates/<name>`).
#[derive(Clone, Debug)]
pub struct Bucket {
    /// The object store.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix of every object name (may be empty).
    pub prefix: String,
}

impl Bucket {
    /// The part of the bucket that holds `tenant`'s blocks (`<prefix>/tenants/<tenant>`), apart
    /// from the blocks of the prefix itself and of every other tenant: a reader, sealer or
    /// compactor over it sees nothing else. The caller passes a checked tenant name (one path
    /// segment, not `.` or `..`).
    pub fn tenant(&self, tenant: &str) -> Bucket {
        Bucket {
            store: self.store.clone(),
            prefix: self.path(&format!("{TENANTS_DIR}/{tenant}")).to_string(),
        }
    }

    /// The tenants that have a folder under `<prefix>/tenants/` (names as found in the bucket;
    /// the caller checks them).
    pub async fn tenants(&self) -> StoreResult<Vec<String>> {
        let dir = self.path(TENANTS_DIR);
        let listed = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| os_err("list", &dir, e))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    fn path(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    /// The data object of block `id`.
    pub fn data_path(&self, id: &str) -> Path {
        self.path(&format!("blocks/{id}.data"))
    }

    /// The index object of block `id`.
    pub fn index_path(&self, id: &str) -> Path {
        self.path(&format!("blocks/{id}.index"))
    }

    /// Every object under `dir` (below the prefix).
    async fn list_dir(&self, dir: &str) -> StoreResult<Vec<object_store::ObjectMeta>> {
        let dir = self.path(dir);
        self.store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| os_err("list", &dir, e))
    }

    /// The ids of every block whose index exists, with the index size.
    pub async fn list_blocks(&self) -> StoreResult<Vec<(String, u64)>> {
        Ok(self
            .list_dir("blocks")
            .await?
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.strip_suffix(".index")?.to_owned();
                Some((name, m.size))
            })
            .collect())
    }

    /// Uploads a built block (data, then index) and confirms both by reading their sizes back.
    pub async fn upload(&self, b: &block::BuiltBlock) -> StoreResult<()> {
        self.put_confirmed(&self.data_path(&b.head.id), &b.data)
            .await?;
        self.put_confirmed(&self.index_path(&b.head.id), &b.index)
            .await
    }

    /// Writes `bytes` at `p` (replacing what was there) and confirms the size by reading it back.
    async fn put_confirmed(&self, p: &Path, bytes: &[u8]) -> StoreResult<()> {
        self.store
            .put(p, bytes.to_vec().into())
            .await
            .map_err(|e| os_err("upload", p, e))?;
        let meta = self
            .store
            .head(p)
            .await
            .map_err(|e| os_err("confirm", p, e))?;
        if meta.size != bytes.len() as u64 {
            return Err(StoreError::Io(format!(
                "object storage holds {} bytes at {p}, {} were uploaded",
                meta.size,
                bytes.len()
            )));
        }
        Ok(())
    }

    async fn delete_object(&self, p: &Path) -> StoreResult<()> {
        match self.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(os_err("delete", p, e)),
        }
    }

    /// Deletes block `id`: the index first, so readers stop seeing it before its data goes.
    pub async fn delete(&self, id: &str) -> StoreResult<()> {
        self.delete_object(&self.index_path(id)).await?;
        self.delete_object(&self.data_path(id)).await
    }

    /// The aggregate object `name` (see [`crate::aggregates`]).
    pub fn aggregates_path(&self, name: &str) -> Path {
        self.path(&format!("{AGGREGATES_DIR}/{name}"))
    }

    /// Every aggregate object: its name and its version (the ETag, else size and time).
    pub async fn list_aggregates(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .list_dir(AGGREGATES_DIR)
            .await?
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_owned();
                Some((name, version_of(&m)))
            })
            .collect())
    }

    /// Uploads aggregate object `name` (an overwrite of its previous version) and confirms it.
    pub async fn upload_aggregates(&self, name: &str, bytes: &[u8]) -> StoreResult<()> {
        self.put_confirmed(&self.aggregates_path(name), bytes).await
    }

    /// Reads and decodes aggregate object `name`: its version, contents and decoded size. On
    /// failure, the version read if the object was read but did not decode.
    pub async fn read_aggregates(
        &self,
        name: &str,
    ) -> Result<(String, Aggregates, usize), (Option<String>, StoreError)> {
        let p = self.aggregates_path(name);
        let got = self
            .store
            .get(&p)
            .await
            .map_err(|e| (None, os_err("read", &p, e)))?;
        let version = version_of(&got.meta);
        let bytes = got
            .bytes()
            .await
            .map_err(|e| (None, os_err("read", &p, e)))?;
        let (a, cost) =
            aggregates::decode(&bytes, p.as_ref()).map_err(|e| (Some(version.clone()), e))?;
        Ok((version, a, cost))
    }

    /// Deletes the aggregate objects whose time partition ended by `cutoff_nanos` (retention;
    /// names that are not aggregate names are left alone); returns how many went.
    pub async fn expire_aggregates(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        let mut n = 0;
        for (name, _) in self.list_aggregates().await? {
            if aggregates::name_range(&name).is_some_and(|(_, end)| end <= cutoff_nanos) {
                self.delete_object(&self.aggregates_path(&name)).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The whole object at `p`.
    async fn get(&self, p: &Path) -> StoreResult<bytes::Bytes> {
        let got = self.store.get(p).await.map_err(|e| os_err("read", p, e))?;
        got.bytes().await.map_err(|e| os_err("read", p, e))
    }

    /// Reads the head and body of block `id` (the whole index object).
    pub async fn read_head(&self, id: &str) -> StoreResult<(BlockHead, BlockBody)> {
        let p = self.index_path(id);
        let bytes = self.get(&p).await?;
        let (head, at) = block::decode_head(&bytes, p.as_ref())?;
        let body = block::decode_body(&bytes[at..], &head, p.as_ref())?;
        Ok((head, body))
    }

    /// Every span of block `id` (compaction).
    pub async fn read_all(&self, id: &str) -> StoreResult<(BlockHead, Vec<Span>)> {
        let (head, body) = self.read_head(id).await?;
        let spans = self.read_spans(id, &body).await?;
        Ok((head, spans))
    }

    /// Every span of block `id`, whose index body is `body` (one GET of the data object).
    pub async fn read_spans(&self, id: &str, body: &BlockBody) -> StoreResult<Vec<Span>> {
        let p = self.data_path(id);
        let data = self.get(&p).await?;
        let mut spans = Vec::new();
        for (i, f) in body.frames.iter().enumerate() {
            let bytes = frame_slice(&data, *f)
                .ok_or_else(|| corrupt(&p, format!("frame {i} runs past the object")))?;
            spans.extend(block::decode_frame(
                bytes,
                *f,
                None,
                &format!("{p}, frame {i}"),
            )?);
        }
        Ok(spans)
    }
}

/// The version of an object as listed or read: its ETag, else its size and time.
fn version_of(m: &object_store::ObjectMeta) -> String {
    m.e_tag.clone().unwrap_or_else(|| {
        format!(
            "{}@{}",
            m.size,
            m.last_modified.timestamp_nanos_opt().unwrap_or(0)
        )
    })
}

fn frame_slice(data: &[u8], f: FrameRef) -> Option<&[u8]> {
    let from = usize::try_from(f.offset).ok()?;
    data.get(from..from.checked_add(f.len as usize)?)
}

fn corrupt(p: &Path, detail: String) -> StoreError {
    StoreError::Corrupt {
        location: p.to_string(),
        detail,
    }
}

/// An object-store error as a store error naming the operation and the object.
pub fn os_err(what: &str, p: &Path, e: object_store::Error) -> StoreError {
    StoreError::Io(format!("object storage: cannot {what} {p}: {e}"))
}

/// Decompressed frames by (block, frame); their total size in front.
type FrameCache = (usize, VecDeque<((String, u32), Arc<Vec<u8>>)>);

struct Known {
    head: Arc<BlockHead>,
    filter: TraceFilter,
    index_bytes: u64,
}

#[derive(Default)]
struct State {
    blocks: BTreeMap<String, Arc<Known>>,
    /// Ids replaced by another known block (compaction): never read.
    replaced: HashSet<String>,
    refreshed: Option<Instant>,
}

impl State {
    fn visible(&self) -> Vec<Arc<Known>> {
        self.blocks
            .iter()
            .filter(|(id, _)| !self.replaced.contains(*id))
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// Settings of a [`BlockStore`].
#[derive(Clone, Debug)]
pub struct BlockStoreConfig {
    /// How old the list of blocks may be before a read lists the bucket again.
    pub poll: Duration,
}

/// A read-only [`TraceStore`] over the blocks in a bucket. Blocks are listed at most every
/// `poll`; heads stay in memory, bodies and frames are cached (bounded). Methods block on
/// object-storage requests through the tokio runtime `rt`, so call them off the runtime (as
/// the [`TraceStore`] contract says, `spawn_blocking`).
pub struct BlockStore {
    bucket: Bucket,
    rt: Handle,
    cfg: BlockStoreConfig,
    state: RwLock<State>,
    refresh_lock: Mutex<()>,
    bodies: Mutex<VecDeque<(String, Arc<BlockBody>)>>,
    frames: Mutex<FrameCache>,
    aggregates: AggregateReader,
    errors: std::sync::atomic::AtomicU64,
    expired: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("prefix", &self.bucket.prefix)
            .finish()
    }
}

impl BlockStore {
    /// A store over `bucket`, doing its requests on `rt`.
    pub fn new(bucket: Bucket, rt: Handle, cfg: BlockStoreConfig) -> Self {
        BlockStore {
            aggregates: AggregateReader::new(cfg.poll),
            bucket,
            rt,
            cfg,
            state: RwLock::new(State::default()),
            refresh_lock: Mutex::new(()),
            bodies: Mutex::new(VecDeque::new()),
            frames: Mutex::new((0, VecDeque::new())),
            errors: Default::default(),
            expired: Default::default(),
        }
    }

    /// Object-storage requests that failed since start (a failed refresh keeps the last list),
    /// unreadable aggregate objects included.
    pub fn errors(&self) -> u64 {
        self.errors.load(std::sync::atomic::Ordering::Relaxed) + self.aggregates.errors()
    }

    /// From now on, hides RED buckets that ended by `cutoff_nanos` (retention applied here
    /// without deleting: a query node; see [`AggregateReader::hide_before`]).
    pub fn hide_aggregates_before(&self, cutoff_nanos: u64) {
        self.aggregates.hide_before(cutoff_nanos);
    }

    /// Lists the aggregate objects again now (tests, and after a deletion).
    pub fn refresh_aggregates(&self) -> StoreResult<()> {
        self.aggregates.refresh(&self.bucket, &self.rt, true)
    }

    /// Number of blocks readers see now (after a refresh if the list is stale).
    pub fn visible_blocks(&self) -> StoreResult<usize> {
        self.refresh(false)?;
        Ok(self.state.read().visible().len())
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Lists the bucket again if the list is older than `poll` (or `force`): new blocks' heads
    /// are read, deleted ones forgotten. An unreadable index is logged and skipped.
    pub fn refresh(&self, force: bool) -> StoreResult<()> {
        let stale = |s: &State| force || s.refreshed.is_none_or(|t| t.elapsed() >= self.cfg.poll);
        if !stale(&self.state.read()) {
            return Ok(());
        }
        let _one = self.refresh_lock.lock();
        if !force && !stale(&self.state.read()) {
            return Ok(());
        }
        let listed = match self.block_on(self.bucket.list_blocks()) {
            Ok(l) => l,
            Err(e) => {
                self.errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if self.state.read().refreshed.is_some() {
                    tracing::warn!(error = %e, "object storage list failed; using the last list");
                    return Ok(());
                }
                return Err(e);
            }
        };
        let known: HashSet<String> = self.state.read().blocks.keys().cloned().collect();
        let mut added = Vec::new();
        // new blocks' indexes, READ_AHEAD requests at a time (a query node starting over
        // thousands of blocks does not read them one by one)
        let new: Vec<(String, u64)> = listed
            .iter()
            .filter(|(id, _)| !known.contains(id))
            .cloned()
            .collect();
        let read: Vec<HeadRead> = self.block_on(async {
            futures_util::stream::iter(new.into_iter().map(|(id, size)| async move {
                let got = self.bucket.read_head(&id).await;
                (id, size, got)
            }))
            .buffer_unordered(READ_AHEAD)
            .collect()
            .await
        });
        for (id, size, got) in read {
            match got {
                Ok((head, body)) => {
                    let Some(filter) = TraceFilter::from_words(&head.bloom) else {
                        continue;
                    };
                    self.remember_body(&id, Arc::new(body));
                    added.push(Arc::new(Known {
                        head: Arc::new(head),
                        filter,
                        index_bytes: size,
                    }));
                }
                Err(e) => {
                    self.errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(block = %id, error = %e, "skipping unreadable block index");
                }
            }
        }
        let listed: HashSet<&String> = listed.iter().map(|(id, _)| id).collect();
        let mut st = self.state.write();
        st.blocks.retain(|id, _| listed.contains(id));
        for k in added {
            st.blocks.insert(k.head.id.clone(), k);
        }
        st.replaced = st
            .blocks
            .values()
            .flat_map(|k| k.head.replaces.iter().cloned())
            .collect();
        st.refreshed = Some(Instant::now());
        Ok(())
    }

    fn remember_body(&self, id: &str, body: Arc<BlockBody>) {
        let mut b = self.bodies.lock();
        b.retain(|(k, _)| k != id);
        b.push_back((id.to_owned(), body));
        while b.len() > BODY_CACHE {
            b.pop_front();
        }
    }

    fn body(&self, id: &str) -> StoreResult<Arc<BlockBody>> {
        if let Some((_, b)) = self.bodies.lock().iter().find(|(k, _)| k == id) {
            return Ok(b.clone());
        }
        let (_, body) = self.block_on(self.bucket.read_head(id))?;
        let body = Arc::new(body);
        self.remember_body(id, body.clone());
        Ok(body)
    }

    /// The decompressed bytes of frame `i` of block `id` (cached; decoded per trace by the
    /// caller, so a read decodes only that trace's segment).
    fn frame(&self, id: &str, body: &BlockBody, i: u32) -> StoreResult<Arc<Vec<u8>>> {
        let key = (id.to_owned(), i);
        if let Some((_, raw)) = self.frames.lock().1.iter().find(|(k, _)| *k == key) {
            return Ok(raw.clone());
        }
        let f = *body
            .frames
            .get(i as usize)
            .ok_or_else(|| StoreError::Corrupt {
                location: format!("block {id}"),
                detail: format!("no frame {i}"),
            })?;
        let p = self.bucket.data_path(id);
        let bytes = self
            .block_on(
                self.bucket
                    .store
                    .get_range(&p, f.offset..f.offset + u64::from(f.len)),
            )
            .map_err(|e| os_err("read", &p, e))?;
        let raw = Arc::new(block::decompress(&bytes, f.raw_len as usize).map_err(|e| {
            StoreError::Corrupt {
                location: format!("{p}, frame {i}"),
                detail: format!("zstd: {e}"),
            }
        })?);
        let mut c = self.frames.lock();
        c.0 += raw.len();
        c.1.push_back((key, raw.clone()));
        while c.0 > FRAME_CACHE_BYTES && c.1.len() > 1 {
            if let Some((_, old)) = c.1.pop_front() {
                c.0 = c.0.saturating_sub(old.len());
            }
        }
        Ok(raw)
    }

    /// The spans of `id` in `blocks`, and the first error of a block that could not be read.
    fn read_trace(
        &self,
        id: TraceId,
        blocks: &[Arc<Known>],
    ) -> (Option<Trace>, Option<StoreError>) {
        let mut spans = Vec::new();
        let mut first_error = None;
        for k in blocks.iter().filter(|k| k.filter.may_contain(id)) {
            let got = self.body(&k.head.id).and_then(|body| match body.find(id) {
                Some(i) => {
                    let frame = body.trace_frame[i];
                    self.frame(&k.head.id, &body, frame).and_then(|raw| {
                        spoor_core::block::BlockReader::open(&raw)
                            .and_then(|r| r.decode_trace(id))
                            .map_err(|e| StoreError::Corrupt {
                                location: format!("block {}, frame {frame}", k.head.id),
                                detail: e.to_string(),
                            })
                    })
                }
                None => Ok(Vec::new()),
            });
            match got {
                Ok(mut s) => spans.append(&mut s),
                Err(e) => {
                    tracing::warn!(block = %k.head.id, trace_id = %id, error = %e, "skipping unreadable block");
                    first_error.get_or_insert(e);
                }
            }
        }
        let trace = (!spans.is_empty()).then_some(Trace {
            trace_id: id,
            spans,
        });
        (trace, first_error)
    }

    /// One trace over the visible blocks. When a block could not be read (most often one the
    /// compactor just replaced and deleted), the bucket is listed again and the trace read once
    /// more; what the second read finds is returned, an error only when it found nothing.
    fn trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        let blocks = self.state.read().visible();
        let (trace, err) = self.read_trace(id, &blocks);
        if err.is_none() {
            return Ok(trace);
        }
        self.refresh(true)?;
        let blocks = self.state.read().visible();
        match self.read_trace(id, &blocks) {
            (Some(t), _) => Ok(Some(t)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Candidates of `q` in block `k`: (upper bound of the trace's match key, trace id).
    fn candidates(
        &self,
        q: &TraceQuery,
        k: &Known,
        out: &mut Vec<(u64, TraceId)>,
    ) -> StoreResult<()> {
        let h = &k.head;
        if h.max_start < q.start_min_nanos || h.min_start > q.start_max_nanos {
            return Ok(());
        }
        if q.duration_min_nanos.is_some_and(|d| h.max_duration < d)
            || q.duration_max_nanos.is_some_and(|d| h.min_duration > d)
        {
            return Ok(());
        }
        let ops: Vec<bool> = h
            .operations
            .iter()
            .map(|(svc, name, kind)| {
                q.service
                    .as_ref()
                    .is_none_or(|s| h.services.get(*svc as usize) == Some(s))
                    && q.operation.as_ref().is_none_or(|o| o == name)
                    && q.span_kind.is_none_or(|sk| sk as u8 == *kind)
            })
            .collect();
        if !ops.iter().any(|b| *b) {
            return Ok(());
        }
        let body = self.body(&h.id)?;
        let probes = spoor_store::embedded::query_tag_probes(q);
        for (t, rows) in body.row_ranges().into_iter().enumerate() {
            if !probes.is_empty() && !body.may_have_tags(t, &probes) {
                continue;
            }
            let mut best = None;
            for r in rows {
                let start = h.min_start.saturating_add(body.row_start[r]);
                let d = body.row_duration[r];
                if ops[body.row_op[r] as usize]
                    && start >= q.start_min_nanos
                    && start <= q.start_max_nanos
                    && q.duration_min_nanos.is_none_or(|m| d >= m)
                    && q.duration_max_nanos.is_none_or(|m| d <= m)
                {
                    best = best.max(Some(start));
                }
            }
            if let Some(b) = best {
                out.push((b, TraceId(u128::from_be_bytes(body.trace_ids[t]))));
            }
        }
        Ok(())
    }

    fn find(&self, q: &TraceQuery) -> StoreResult<Vec<(u64, TraceId)>> {
        self.refresh(false)?;
        let blocks = self.state.read().visible();
        let mut cands = Vec::new();
        for k in &blocks {
            if let Err(e) = self.candidates(q, k, &mut cands) {
                tracing::warn!(block = %k.head.id, error = %e, "skipping unreadable block in a search");
            }
        }
        // one bound per trace (the best over its blocks), newest first
        cands.sort_unstable_by_key(|c| std::cmp::Reverse((c.1, c.0)));
        cands.dedup_by_key(|c| c.1);
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let limit = q.effective_limit();
        let mut found: Vec<(u64, TraceId)> = Vec::new();
        for (bound, id) in cands {
            if found.len() >= limit {
                // found is sorted newest first; stop once no candidate can beat the last kept
                if found.last().is_some_and(|l| bound < l.0) {
                    break;
                }
            }
            let Some(t) = self.trace(id).unwrap_or(None) else {
                continue;
            };
            if let Some(key) = match_key(q, &t.spans) {
                let at = found.partition_point(|f| *f > (key, id));
                found.insert(at, (key, id));
                found.truncate(limit);
            }
        }
        Ok(found)
    }

    fn read_only() -> StoreError {
        StoreError::Io(
            "object storage is read-only here: spans reach it as blocks sealed by an ingester"
                .into(),
        )
    }
}

impl TraceStore for BlockStore {
    fn write_spans(&self, _spans: &[Span]) -> StoreResult<()> {
        Err(Self::read_only())
    }

    fn write_dependencies(&self, _b: u64, _links: &[DependencyLink]) -> StoreResult<()> {
        Err(Self::read_only())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        self.refresh(false)?;
        self.trace(id)
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        self.refresh(false)?;
        let set: BTreeSet<String> = self
            .state
            .read()
            .visible()
            .iter()
            .flat_map(|k| k.head.services.iter().cloned())
            .collect();
        Ok(set.into_iter().collect())
    }

    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        self.refresh(false)?;
        let mut set = BTreeSet::new();
        for k in self.state.read().visible() {
            let Ok(svc) = k
                .head
                .services
                .binary_search_by(|s| s.as_str().cmp(service))
            else {
                continue;
            };
            for (s, name, kd) in &k.head.operations {
                let kd = block::kind_of(*kd);
                if *s as usize == svc && kind.is_none_or(|want| want == kd) {
                    set.insert((name.clone(), kd as u8));
                }
            }
        }
        Ok(set
            .into_iter()
            .map(|(name, k)| Operation {
                name,
                span_kind: block::kind_of(k),
            })
            .collect())
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(self.find(query)?.into_iter().map(|(_, id)| id).collect())
    }

    fn dependencies(&self, end: u64, lookback: u64) -> StoreResult<Vec<DependencyLink>> {
        self.aggregates
            .dependencies(&self.bucket, &self.rt, end, lookback)
    }

    fn write_span_metrics(&self, _points: &[RedPoint]) -> StoreResult<()> {
        Err(Self::read_only())
    }

    fn span_metrics(&self, s: &[String], a: u64, b: u64) -> StoreResult<Vec<RedPoint>> {
        self.aggregates
            .span_metrics(&self.bucket, &self.rt, s, a, b)
    }

    /// Deletes the blocks and the aggregate objects whose partition ended by the cutoff, hides
    /// the RED buckets that did; returns how many blocks went.
    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        self.aggregates.hide_before(cutoff_nanos);
        if self.block_on(self.bucket.expire_aggregates(cutoff_nanos))? > 0 {
            self.aggregates.refresh(&self.bucket, &self.rt, true)?;
        }
        self.refresh(true)?;
        let old: Vec<String> = self
            .state
            .read()
            .blocks
            .values()
            .filter(|k| k.head.window_end <= cutoff_nanos)
            .map(|k| k.head.id.clone())
            .collect();
        for id in &old {
            self.block_on(self.bucket.delete(id))?;
        }
        if !old.is_empty() {
            self.refresh(true)?;
        }
        self.expired
            .fetch_add(old.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(old.len() as u64)
    }

    fn stats(&self) -> StoreStats {
        let st = self.state.read();
        StoreStats {
            spans_written: 0,
            traces: 0,
            traces_evicted: 0,
            bytes_on_disk: st
                .blocks
                .values()
                .map(|k| k.head.data_bytes + k.index_bytes)
                .sum(),
            partitions: st.blocks.len() as u64,
            partitions_expired: self.expired.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// A span's identity for merging tiers: the same span read from the head and from a block
/// counts once (multiset maximum), while a span written twice stays twice.
fn span_key(s: &Span) -> (u64, u64, i64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.name.bytes().chain(s.service().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (s.span_id.0, s.start_unix_nanos, s.duration_nanos, h)
}

/// Merges the spans of one trace read from several tiers: each distinct span appears as often
/// as in the tier that holds it most often (a sealed block is a copy of head blocks until the
/// head drops them).
pub fn merge_tiers(parts: Vec<Vec<Span>>) -> Vec<Span> {
    let mut most: hashbrown::HashMap<(u64, u64, i64, u64), usize> = hashbrown::HashMap::new();
    let mut out = Vec::new();
    for spans in parts {
        let mut here: hashbrown::HashMap<(u64, u64, i64, u64), usize> = hashbrown::HashMap::new();
        for s in spans {
            let k = span_key(&s);
            let n = here.entry(k).or_default();
            *n += 1;
            let m = most.entry(k).or_default();
            if *n > *m {
                *m = *n;
                out.push(s);
            }
        }
    }
    out
}

/// The head (sled, or live ingesters; `None` for object storage alone) merged with the blocks
/// in object storage. Writes go to the head; reads merge both tiers (see [`merge_tiers`]);
/// dependency links and span metrics are, per key, the more complete of the head's and the
/// bucket's aggregate objects, never their sum ([`aggregates::most_complete_red`]); without a
/// head, the bucket's.
pub struct TieredStore {
    head: Option<Arc<dyn TraceStore>>,
    blocks: Arc<BlockStore>,
    expire_blocks: bool,
}

impl std::fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl TieredStore {
    /// `head` over `blocks`. `expire_blocks`: whether `expire_before` also deletes blocks
    /// (true where this node owns the bucket, as an all-in-one; in a cluster the compactor
    /// applies retention to blocks, and query nodes never delete).
    pub fn new(
        head: Option<Arc<dyn TraceStore>>,
        blocks: Arc<BlockStore>,
        expire_blocks: bool,
    ) -> Self {
        TieredStore {
            head,
            blocks,
            expire_blocks,
        }
    }

    /// The block store.
    pub fn blocks(&self) -> &Arc<BlockStore> {
        &self.blocks
    }

    fn head(&self) -> StoreResult<&Arc<dyn TraceStore>> {
        self.head.as_ref().ok_or_else(BlockStore::read_only)
    }
}

impl TraceStore for TieredStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        self.head()?.write_spans(spans)
    }

    fn write_dependencies(&self, b: u64, links: &[DependencyLink]) -> StoreResult<()> {
        self.head()?.write_dependencies(b, links)
    }

    fn flush(&self) -> StoreResult<()> {
        match &self.head {
            Some(h) => h.flush(),
            None => Ok(()),
        }
    }

    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        Ok(self.get_traces(&[id])?.pop())
    }

    fn get_traces(&self, ids: &[TraceId]) -> StoreResult<Vec<Trace>> {
        let mut by_id: BTreeMap<TraceId, Vec<Vec<Span>>> = BTreeMap::new();
        if let Some(h) = &self.head {
            for t in h.get_traces(ids)? {
                by_id.entry(t.trace_id).or_default().push(t.spans);
            }
        }
        for id in ids {
            if let Some(t) = self.blocks.get_trace(*id)? {
                by_id.entry(*id).or_default().push(t.spans);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let parts = by_id.remove(id)?;
                Some(Trace {
                    trace_id: *id,
                    spans: merge_tiers(parts),
                })
            })
            .collect())
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        let mut set: BTreeSet<String> = self.blocks.services()?.into_iter().collect();
        if let Some(h) = &self.head {
            set.extend(h.services()?);
        }
        Ok(set.into_iter().collect())
    }

    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        let mut ops = self.blocks.operations(service, kind)?;
        if let Some(h) = &self.head {
            ops.extend(h.operations(service, kind)?);
        }
        ops.sort_by(|a, b| (&a.name, a.span_kind as u8).cmp(&(&b.name, b.span_kind as u8)));
        ops.dedup();
        Ok(ops)
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        // each tier's newest `limit`, re-ranked on the merged traces: a trace in the true top
        // `limit` has its key in some tier and is within that tier's top `limit`
        let mut ids: Vec<TraceId> = self.blocks.find_trace_ids(query)?;
        if let Some(h) = &self.head {
            ids.extend(h.find_trace_ids(query)?);
        }
        ids.sort_unstable();
        ids.dedup();
        let found = self
            .get_traces(&ids)?
            .into_iter()
            .filter_map(|t| Some((match_key(query, &t.spans)?, t.trace_id)))
            .collect();
        Ok(rank(found, query))
    }

    fn dependencies(&self, end: u64, lookback: u64) -> StoreResult<Vec<DependencyLink>> {
        let blocks = self.blocks.dependencies(end, lookback);
        let Some(h) = &self.head else { return blocks };
        let head = h.dependencies(end, lookback)?;
        match blocks {
            Ok(b) => Ok(aggregates::most_complete_links(head, b)),
            Err(e) => {
                tracing::warn!(error = %e, "dependency links from the head alone: the bucket's aggregates are unreadable");
                Ok(head)
            }
        }
    }

    fn write_span_metrics(&self, points: &[RedPoint]) -> StoreResult<()> {
        self.head()?.write_span_metrics(points)
    }

    fn span_metrics(&self, s: &[String], a: u64, b: u64) -> StoreResult<Vec<RedPoint>> {
        let blocks = self.blocks.span_metrics(s, a, b);
        let Some(h) = &self.head else { return blocks };
        let head = h.span_metrics(s, a, b)?;
        match blocks {
            Ok(b) => Ok(aggregates::most_complete_red(head, b)),
            Err(e) => {
                tracing::warn!(error = %e, "span metrics from the head alone: the bucket's aggregates are unreadable");
                Ok(head)
            }
        }
    }

    fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        let mut n = if self.expire_blocks {
            self.blocks.expire_before(cutoff_nanos)?
        } else {
            // the compactor deletes; RED buckets past the retention are hidden as the head's go
            self.blocks.hide_aggregates_before(cutoff_nanos);
            0
        };
        if let Some(h) = &self.head {
            n += h.expire_before(cutoff_nanos)?;
        }
        Ok(n)
    }

    fn stats(&self) -> StoreStats {
        let mut s = self.head.as_ref().map(|h| h.stats()).unwrap_or_default();
        let b = self.blocks.stats();
        s.bytes_on_disk += b.bytes_on_disk;
        s.partitions_expired += b.partitions_expired;
        s
    }
}

/// Connects to the bucket (no request is made until the first use).
pub fn connect(s: &crate::S3Settings) -> Result<Bucket, String> {
    // reqwest's rustls comes without a bundled provider here: use ring's, as every other TLS
    // client and server of Spoor (a provider installed before is kept)
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let (bucket, prefix) = crate::parse_url(&s.url)?;
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_region(&s.region)
        .with_client_options(
            object_store::ClientOptions::new()
                .with_timeout(s.timeout)
                .with_connect_timeout(Duration::from_secs(5))
                .with_allow_http(true),
        );
    if let Some(e) = &s.endpoint {
        b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
    }
    if let Some(k) = &s.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &s.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    let store = b
        .build()
        .map_err(|e| format!("cannot configure object storage {}: {e}", s.url))?;
    Ok(Bucket {
        store: Arc::new(store),
        prefix,
    })
}
