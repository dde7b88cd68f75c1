//! Service dependency links: which service calls which, counted from parent/child span pairs,
//! with Jaeger memory-store semantics (a pair counts when the parent is in the same trace and
//! the two services differ).
//!
//! [`trace_links`] computes the links of one complete trace. [`DependencyLinker`] counts them
//! incrementally over the stream of ingested spans, in bounded memory, for a daemon that never
//! sees a trace as a whole.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use hashbrown::hash_map::Entry;
use hashbrown::HashMap;

use crate::model::{DependencyLink, Resource, Span, SpanId, Trace, TraceId};

/// Default width of a dependency bucket: one minute.
pub const DEFAULT_BUCKET_NANOS: u64 = 60_000_000_000;

/// Distinct service names a [`DependencyLinker`] tracks; spans of further services are not
/// linked and are counted in [`LinkerStats::untracked_spans`].
pub const MAX_SERVICES: usize = 10_000;

/// Sizing of a [`DependencyLinker`].
///
/// Memory with the defaults, on a 64-bit target: remembered spans about 20 bytes each
/// (a 16-byte hash map entry, control byte and load-factor slack), so 100 000 spans take about
/// 2 MiB; parked children about 250 bytes each including slack, so 10 000
/// take about 2.5 MiB; at most [`MAX_SERVICES`] interned names, about 1.5 MiB for names of 30
/// bytes. About 12 MiB in all, plus the counts accumulated between two
/// [`take_links`](DependencyLinker::take_links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkerConfig {
    /// Width of a time bucket (default [`DEFAULT_BUCKET_NANOS`]); 0 is treated as 1.
    pub bucket_nanos: u64,
    /// Spans whose service is remembered for children arriving later (default 100 000; at
    /// 100 000 spans/s that is one second of traffic, enough for children that arrive after
    /// their parent in the same or the next batch). Eviction is by generation: spans go into a
    /// current set, and when it holds half this number the previous set is dropped whole and the
    /// current one becomes the previous. So at least the most recent half and never more than
    /// this number are remembered, and no span costs a removal.
    pub max_remembered_spans: usize,
    /// Children parked until their parent arrives, oldest dropped first (default 10 000).
    pub max_pending: usize,
    /// How long a parked child waits for its parent before it expires (default 30 s, longer
    /// than the usual 5 s export delay of SDK batch processors).
    pub max_wait_nanos: u64,
}

impl Default for LinkerConfig {
    fn default() -> Self {
        LinkerConfig {
            bucket_nanos: DEFAULT_BUCKET_NANOS,
            max_remembered_spans: 100_000,
            max_pending: 10_000,
            max_wait_nanos: 30_000_000_000,
        }
    }
}

/// Counters of a [`DependencyLinker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkerStats {
    /// Spans currently remembered.
    pub remembered: usize,
    /// Children currently parked, waiting for their parent.
    pub pending: usize,
    /// Parked children dropped because `max_pending` was reached (ever).
    pub dropped_pending: u64,
    /// Parked children whose parent did not arrive within `max_wait` (ever).
    pub expired_pending: u64,
    /// Spans ignored because [`MAX_SERVICES`] services were already tracked (ever).
    pub untracked_spans: u64,
}

/// (trace id high, trace id low, span id): 8-byte aligned, so a map entry stays small.
type Key = (u64, u64, u64);

fn key(t: TraceId, s: SpanId) -> Key {
    (t.high(), t.low(), s.0)
}

/// A remembered span's key: a 64-bit fingerprint of (trace id, span id), so a map entry is 16
/// bytes instead of 32 and needs no hashing (the fingerprint is the hash). Remembering runs for
/// every ingested span and the map is larger than the CPU caches, so its size is its cost.
/// Two spans share a fingerprint with probability ~2^-64 per pair; the worst a collision
/// can do is count one dependency call for the wrong parent service.
fn fingerprint(k: Key) -> u64 {
    // murmur3's 64-bit finaliser over a mix of the three words: a bijection on its input, so
    // nearby ids (1, 2, 3, ...) land far apart.
    let mut x = k.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ k.1.rotate_left(29)
        ^ k.2.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Hashes a fingerprint to itself.
#[derive(Clone, Copy, Default)]
struct FingerprintHasher(u64);

impl core::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed with this hasher; fold anything else in anyway
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Remembered = HashMap<u64, u32, core::hash::BuildHasherDefault<FingerprintHasher>>;

/// A child waiting for its parent.
#[derive(Clone, Copy, Debug)]
struct Child {
    seq: u64,
    service: u32,
    start_unix_nanos: u64,
    parked_at_nanos: u64,
}

/// The children parked under one parent, oldest first. The first is inline so that the
/// common case of a single child does not allocate.
#[derive(Debug)]
struct Group {
    head: Child,
    tail: VecDeque<Child>,
}

impl Group {
    fn holds(&self, seq: u64) -> bool {
        self.head.seq == seq || self.tail.binary_search_by_key(&seq, |c| c.seq).is_ok()
    }
}

/// Counts service-to-service calls over a stream of spans. Not thread-safe by itself; the
/// daemon owns one per pipeline. Reads no clock: every call takes `now_nanos`.
#[derive(Debug)]
pub struct DependencyLinker {
    cfg: LinkerConfig,
    /// Service names, indexed by their interned id.
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Remembered spans and their service, with the insertion order for FIFO eviction.
    remembered: Remembered,
    /// The previous generation of remembered spans (see [`LinkerConfig::max_remembered_spans`]).
    remembered_old: Remembered,
    /// Parked children by parent key, and (parent key, seq) of every parked child in arrival
    /// order; entries of children already linked are stale and skipped.
    parked: HashMap<Key, Group>,
    parked_order: VecDeque<(Key, u64)>,
    pending: usize,
    next_seq: u64,
    /// Counts by (bucket start, parent service, child service).
    counts: HashMap<(u64, u32, u32), u64>,
    /// Interned service of each span of the current `observe` call (reused buffer).
    scratch: Vec<Option<u32>>,
    dropped_pending: u64,
    expired_pending: u64,
    untracked_spans: u64,
}

impl DependencyLinker {
    /// An empty linker.
    pub fn new(cfg: LinkerConfig) -> Self {
        DependencyLinker {
            cfg,
            names: Vec::new(),
            ids: HashMap::new(),
            remembered: Remembered::default(),
            remembered_old: Remembered::default(),
            parked: HashMap::new(),
            parked_order: VecDeque::new(),
            pending: 0,
            next_seq: 0,
            counts: HashMap::new(),
            scratch: Vec::new(),
            dropped_pending: 0,
            expired_pending: 0,
            untracked_spans: 0,
        }
    }

    /// Remembers each span's service (keyed by (trace id, span id)); counts parent→child links
    /// for spans whose parent is known (this batch or earlier); parks children whose parent is
    /// not yet known (bounded; when full, the oldest parked child is dropped and counted) and
    /// links them when the parent arrives.
    pub fn observe(&mut self, spans: &[Span], now_nanos: u64) {
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        // The spans of a batch mostly share a few resources: skip the name lookup for a run
        // of spans with the same resource.
        let mut last: Option<(*const Resource, Option<u32>)> = None;
        for s in spans {
            let ptr = Arc::as_ptr(&s.resource);
            let svc = match last {
                Some((p, svc)) if p == ptr => svc,
                _ => {
                    let svc = self.intern(s.service());
                    last = Some((ptr, svc));
                    svc
                }
            };
            scratch.push(svc);
            let Some(svc) = svc else {
                self.untracked_spans += 1;
                continue;
            };
            let k = key(s.trace_id, s.span_id);
            self.remember(k, svc);
            if !self.parked.is_empty() {
                if let Some(group) = self.parked.remove(&k) {
                    self.pending -= 1 + group.tail.len();
                    self.count(svc, group.head.service, group.head.start_unix_nanos);
                    for c in &group.tail {
                        self.count(svc, c.service, c.start_unix_nanos);
                    }
                }
            }
        }
        for (s, svc) in spans.iter().zip(&scratch) {
            let (Some(svc), Some(parent)) = (*svc, s.parent_span_id) else {
                continue;
            };
            if parent == s.span_id {
                continue;
            }
            let pk = key(s.trace_id, parent);
            let fp = fingerprint(pk);
            match self
                .remembered
                .get(&fp)
                .or_else(|| self.remembered_old.get(&fp))
            {
                Some(&parent_svc) => self.count(parent_svc, svc, s.start_unix_nanos),
                None => self.park(pk, svc, s.start_unix_nanos, now_nanos),
            }
        }
        self.scratch = scratch;
    }

    /// Drains the accumulated counts grouped by bucket start (the bucket of the child span's
    /// start time), buckets ascending and links sorted by (parent, child). First expires parked
    /// children that have waited at least `max_wait`.
    pub fn take_links(&mut self, now_nanos: u64) -> Vec<(u64, Vec<DependencyLink>)> {
        self.expire(now_nanos);
        let mut flat: Vec<(u64, &str, &str, u64)> = self
            .counts
            .drain()
            .map(|((bucket, p, c), n)| {
                (
                    bucket,
                    self.names[p as usize].as_str(),
                    self.names[c as usize].as_str(),
                    n,
                )
            })
            .collect();
        flat.sort_unstable();
        let mut out: Vec<(u64, Vec<DependencyLink>)> = Vec::new();
        for (bucket, parent, child, call_count) in flat {
            let link = DependencyLink {
                parent: String::from(parent),
                child: String::from(child),
                call_count,
            };
            match out.last_mut() {
                Some((b, links)) if *b == bucket => links.push(link),
                _ => out.push((bucket, alloc::vec![link])),
            }
        }
        out
    }

    /// Current counters.
    pub fn stats(&self) -> LinkerStats {
        LinkerStats {
            remembered: self.remembered.len() + self.remembered_old.len(),
            pending: self.pending,
            dropped_pending: self.dropped_pending,
            expired_pending: self.expired_pending,
            untracked_spans: self.untracked_spans,
        }
    }

    fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        if self.names.len() >= MAX_SERVICES {
            return None;
        }
        let id = u32::try_from(self.names.len()).ok()?;
        self.names.push(String::from(name));
        self.ids.insert(String::from(name), id);
        Some(id)
    }

    fn remember(&mut self, k: Key, svc: u32) {
        if self.cfg.max_remembered_spans == 0 {
            return;
        }
        let generation = self.cfg.max_remembered_spans.div_ceil(2);
        if self.remembered.len() >= generation {
            core::mem::swap(&mut self.remembered, &mut self.remembered_old);
            self.remembered.clear();
        }
        // One hash per span: a span seen again may sit in both generations, harmlessly (same
        // key, its latest service wins on lookup because the current generation is read first).
        self.remembered.insert(fingerprint(k), svc);
    }

    fn count(&mut self, parent: u32, child: u32, child_start: u64) {
        if parent == child {
            return;
        }
        let width = self.cfg.bucket_nanos.max(1);
        let bucket = child_start - child_start % width;
        *self.counts.entry((bucket, parent, child)).or_insert(0) += 1;
    }

    fn park(&mut self, parent: Key, service: u32, start_unix_nanos: u64, now_nanos: u64) {
        if self.cfg.max_pending == 0 {
            self.dropped_pending += 1;
            return;
        }
        while self.pending >= self.cfg.max_pending {
            if self.pop_oldest(|_| true).is_none() {
                break;
            }
            self.dropped_pending += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let child = Child {
            seq,
            service,
            start_unix_nanos,
            parked_at_nanos: now_nanos,
        };
        match self.parked.entry(parent) {
            Entry::Occupied(mut e) => e.get_mut().tail.push_back(child),
            Entry::Vacant(e) => {
                e.insert(Group {
                    head: child,
                    tail: VecDeque::new(),
                });
            }
        }
        self.parked_order.push_back((parent, seq));
        self.pending += 1;
        // Linked children leave stale entries behind; keep the order queue proportional to
        // the live ones.
        if self.parked_order.len() > 2 * self.pending + 1024 {
            let parked = &self.parked;
            self.parked_order
                .retain(|(k, seq)| parked.get(k).is_some_and(|g| g.holds(*seq)));
        }
    }

    /// Removes the oldest parked child if `pred` accepts it, skipping stale order entries.
    fn pop_oldest(&mut self, pred: impl Fn(&Child) -> bool) -> Option<Child> {
        while let Some(&(k, seq)) = self.parked_order.front() {
            let Some(group) = self.parked.get_mut(&k) else {
                self.parked_order.pop_front();
                continue;
            };
            if group.head.seq != seq {
                // Stale: that child was linked, and a newer group now waits on the same parent.
                self.parked_order.pop_front();
                continue;
            }
            if !pred(&group.head) {
                return None;
            }
            self.parked_order.pop_front();
            let child = group.head;
            match group.tail.pop_front() {
                Some(next) => group.head = next,
                None => {
                    self.parked.remove(&k);
                }
            }
            self.pending -= 1;
            return Some(child);
        }
        None
    }

    fn expire(&mut self, now_nanos: u64) {
        let max_wait = self.cfg.max_wait_nanos;
        while self
            .pop_oldest(|c| now_nanos.saturating_sub(c.parked_at_nanos) >= max_wait)
            .is_some()
        {
            self.expired_pending += 1;
        }
    }
}

/// Links of one complete trace, Jaeger memory-store semantics: for each span whose parent
/// (the first span with `parent_span_id`) is in the trace and has another service, count
/// parent service → child service. Sorted by (parent, child).
pub fn trace_links(trace: &Trace) -> Vec<DependencyLink> {
    let mut service_of: HashMap<SpanId, &str> = HashMap::with_capacity(trace.spans.len());
    for s in &trace.spans {
        service_of.entry(s.span_id).or_insert(s.service());
    }
    let mut counts: HashMap<(&str, &str), u64> = HashMap::new();
    for s in &trace.spans {
        let Some(parent) = s.parent_span_id else {
            continue;
        };
        let Some(&parent_svc) = service_of.get(&parent) else {
            continue;
        };
        if parent_svc != s.service() {
            *counts.entry((parent_svc, s.service())).or_insert(0) += 1;
        }
    }
    let mut links: Vec<DependencyLink> = counts
        .into_iter()
        .map(|((p, c), n)| DependencyLink {
            parent: String::from(p),
            child: String::from(c),
            call_count: n,
        })
        .collect();
    links.sort_unstable();
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MIN: u64 = DEFAULT_BUCKET_NANOS;

    /// A span: (trace, id, parent or 0, service, start).
    fn s(trace: u128, id: u64, parent: u64, service: &str, start: u64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            parent_span_id: (parent != 0).then_some(SpanId(parent)),
            start_unix_nanos: start,
            duration_nanos: 1,
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn l(parent: &str, child: &str, call_count: u64) -> DependencyLink {
        DependencyLink {
            parent: parent.into(),
            child: child.into(),
            call_count,
        }
    }

    fn cfg(max_remembered_spans: usize, max_pending: usize, max_wait_nanos: u64) -> LinkerConfig {
        LinkerConfig {
            bucket_nanos: MIN,
            max_remembered_spans,
            max_pending,
            max_wait_nanos,
        }
    }

    #[test]
    fn trace_links_like_jaeger_memory_store() {
        // (spans, links)
        let cases: Vec<(Vec<Span>, Vec<DependencyLink>)> = vec![
            (vec![], vec![]),
            (vec![s(1, 1, 0, "a", 0), s(1, 2, 1, "a", 0)], vec![]),
            (
                vec![
                    s(1, 1, 0, "a", 0),
                    s(1, 2, 1, "b", 0),
                    s(1, 3, 1, "b", 0),
                    s(1, 4, 2, "c", 0),
                    s(1, 5, 9, "d", 0),
                ],
                vec![l("a", "b", 2), l("b", "c", 1)],
            ),
            // child before parent in the list; self-parent is same service, never a link
            (
                vec![s(1, 2, 1, "b", 0), s(1, 1, 0, "a", 0), s(1, 3, 3, "c", 0)],
                vec![l("a", "b", 1)],
            ),
        ];
        for (i, (spans, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                trace_links(&Trace {
                    trace_id: TraceId(1),
                    spans
                }),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn same_batch_any_order() {
        let mut lk = DependencyLinker::new(LinkerConfig::default());
        lk.observe(
            &[
                s(1, 2, 1, "b", 5),
                s(1, 1, 0, "a", 0),
                s(1, 3, 2, "b", 6),
                s(1, 4, 2, "c", MIN + 1),
            ],
            0,
        );
        assert_eq!(
            lk.take_links(0),
            vec![(0, vec![l("a", "b", 1)]), (MIN, vec![l("b", "c", 1)])]
        );
        assert_eq!(lk.take_links(0), vec![], "take drains");
        assert_eq!(
            lk.stats(),
            LinkerStats {
                remembered: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn parent_in_earlier_batch_and_parent_later() {
        let mut lk = DependencyLinker::new(LinkerConfig::default());
        lk.observe(&[s(1, 1, 0, "a", 0)], 0);
        lk.observe(&[s(1, 2, 1, "b", 10)], 1);
        // children of span 7 arrive first, across two batches
        lk.observe(
            &[s(2, 8, 7, "db", 2 * MIN), s(2, 9, 7, "db", 2 * MIN + 5)],
            2,
        );
        lk.observe(&[s(2, 10, 7, "cache", 2 * MIN)], 3);
        assert_eq!(lk.stats().pending, 3);
        lk.observe(&[s(2, 7, 0, "api", 0)], 4);
        assert_eq!(lk.stats().pending, 0);
        assert_eq!(
            lk.take_links(5),
            vec![
                (0, vec![l("a", "b", 1)]),
                (2 * MIN, vec![l("api", "cache", 1), l("api", "db", 2)])
            ]
        );
        assert_eq!(lk.stats().expired_pending, 0);
    }

    #[test]
    fn parent_never_arrives_expires() {
        let mut lk = DependencyLinker::new(cfg(100, 100, 1_000));
        lk.observe(&[s(1, 2, 1, "b", 0)], 100);
        lk.observe(&[s(1, 3, 1, "c", 0)], 600);
        // (now, pending after take, expired after take)
        for (now, pending, expired) in [(1_099, 2, 0), (1_100, 1, 1), (1_599, 1, 1), (1_600, 0, 2)]
        {
            assert_eq!(lk.take_links(now), vec![], "now {now}");
            let st = lk.stats();
            assert_eq!(
                (st.pending, st.expired_pending),
                (pending, expired),
                "now {now}"
            );
        }
        // the parent arriving after expiry links nothing
        lk.observe(&[s(1, 1, 0, "a", 0)], 2_000);
        assert_eq!(lk.take_links(2_000), vec![]);
    }

    #[test]
    fn pending_is_bounded_oldest_dropped() {
        let mut lk = DependencyLinker::new(cfg(100, 2, u64::MAX));
        lk.observe(
            &[
                s(1, 11, 1, "x", 0),
                s(1, 12, 2, "y", 0),
                s(1, 13, 3, "z", 0),
            ],
            0,
        );
        assert_eq!((lk.stats().pending, lk.stats().dropped_pending), (2, 1));
        lk.observe(
            &[s(1, 1, 0, "p", 0), s(1, 2, 0, "p", 0), s(1, 3, 0, "p", 0)],
            1,
        );
        assert_eq!(
            lk.take_links(2),
            vec![(0, vec![l("p", "y", 1), l("p", "z", 1)])]
        );
        let mut none = DependencyLinker::new(cfg(100, 0, 10));
        none.observe(&[s(1, 11, 1, "x", 0)], 0);
        assert_eq!((none.stats().pending, none.stats().dropped_pending), (0, 1));
    }

    #[test]
    fn fingerprints_of_nearby_ids_do_not_collide() {
        let mut seen = hashbrown::HashSet::new();
        for t in 0..300u64 {
            for sp in 0..300u64 {
                assert!(seen.insert(fingerprint((t >> 4, t, sp))), "({t}, {sp})");
            }
        }
    }

    #[test]
    fn remembered_is_bounded_by_generations() {
        // Capacity 4: generations of 2; the older generation is dropped whole.
        let mut lk = DependencyLinker::new(cfg(4, 100, u64::MAX));
        let first: Vec<Span> = (1..=5).map(|i| s(1, i, 0, "a", 0)).collect();
        lk.observe(&first, 0);
        // {1,2} dropped when 5 started a generation: {3,4} old, {5} current.
        assert_eq!(lk.stats().remembered, 3);
        // Remembering the two children rolls a generation again ({5,21} old, {24} current):
        // span 1 is gone, so its child parks; span 5 is still known.
        lk.observe(&[s(1, 21, 1, "b", 0), s(1, 24, 5, "b", 0)], 0);
        assert_eq!(lk.stats().pending, 1);
        assert_eq!(lk.take_links(0), vec![(0, vec![l("a", "b", 1)])]);
        for i in 100..10_000 {
            lk.observe(&[s(2, i, 0, "a", 0)], 0);
            assert!(lk.stats().remembered <= 4);
        }
        // The most recent spans are always remembered, also when seen twice.
        lk.observe(&[s(2, 9_999, 0, "a", 0)], 0);
        lk.observe(&[s(2, 50_001, 9_999, "c", 0)], 0);
        assert_eq!(lk.take_links(0), vec![(0, vec![l("a", "c", 1)])]);
    }

    #[test]
    fn stale_order_entries_are_compacted_and_skipped() {
        let mut lk = DependencyLinker::new(cfg(10, 4, 100));
        // one child that never links stays at the front
        lk.observe(&[s(9, 2, 1, "b", 0)], 0);
        for i in 0..5_000u64 {
            let p = 1_000 + i;
            lk.observe(&[s(1, p + 100_000, p, "c", 0)], 1);
            lk.observe(&[s(1, p, 0, "a", 0)], 1);
        }
        assert!(
            lk.parked_order.len() <= 1100,
            "order queue holds {}",
            lk.parked_order.len()
        );
        assert_eq!(lk.stats().pending, 1);
        assert_eq!(lk.take_links(1), vec![(0, vec![l("a", "c", 5_000)])]);
        assert_eq!(lk.take_links(100), vec![]);
        assert_eq!(
            (
                lk.stats().pending,
                lk.stats().expired_pending,
                lk.stats().dropped_pending
            ),
            (0, 1, 0)
        );
    }

    #[test]
    fn stale_entry_before_a_new_group_of_the_same_parent() {
        let mut lk = DependencyLinker::new(cfg(1, 10, 100));
        lk.observe(&[s(5, 2, 1, "x", 0)], 0);
        lk.observe(&[s(5, 1, 0, "w", 0)], 0); // links w -> x, leaves a stale order entry
        lk.observe(&[s(6, 1, 0, "z", 0)], 0); // evicts span 1 of trace 5 from memory
        lk.observe(&[s(5, 3, 1, "y", 0)], 50); // parks again under the same parent key
        assert_eq!(lk.take_links(120), vec![(0, vec![l("w", "x", 1)])]);
        assert_eq!((lk.stats().pending, lk.stats().expired_pending), (1, 0));
        assert_eq!(lk.take_links(150), vec![]);
        assert_eq!((lk.stats().pending, lk.stats().expired_pending), (0, 1));
    }

    #[test]
    fn buckets_use_child_start() {
        let mut lk = DependencyLinker::new(LinkerConfig {
            bucket_nanos: 10,
            ..LinkerConfig::default()
        });
        lk.observe(
            &[
                s(1, 1, 0, "a", 0),
                s(1, 2, 1, "b", 9),
                s(1, 3, 1, "b", 10),
                s(1, 4, 1, "b", 19),
                s(1, 5, 1, "c", 25),
            ],
            0,
        );
        assert_eq!(
            lk.take_links(0),
            vec![
                (0, vec![l("a", "b", 1)]),
                (10, vec![l("a", "b", 2)]),
                (20, vec![l("a", "c", 1)])
            ]
        );
        let mut zero = DependencyLinker::new(LinkerConfig {
            bucket_nanos: 0,
            ..LinkerConfig::default()
        });
        zero.observe(&[s(1, 1, 0, "a", 0), s(1, 2, 1, "b", 7)], 0);
        assert_eq!(zero.take_links(0), vec![(7, vec![l("a", "b", 1)])]);
    }

    #[test]
    fn service_table_is_bounded() {
        let mut lk = DependencyLinker::new(LinkerConfig::default());
        let spans: Vec<Span> = (0..MAX_SERVICES as u64 + 5)
            .map(|i| s(1, i + 1, 0, &alloc::format!("svc{i}"), 0))
            .collect();
        lk.observe(&spans, 0);
        assert_eq!(lk.stats().untracked_spans, 5);
        assert_eq!(lk.stats().remembered, MAX_SERVICES);
    }
}
