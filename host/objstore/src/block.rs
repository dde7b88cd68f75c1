//! The object-storage block format: one immutable *data* object and one *index* object per
//! block.
//!
//! # Data object (`<prefix>/blocks/<id>.data`)
//! Frames one after the other. A frame is `zstd(level 3, spoor_core::block::encode_block(spans
//! of whole traces))`: the block codec the sled store writes, so a span is encoded one way
//! everywhere. Traces are sorted by id and cut into frames of about [`FRAME_SPANS`] spans, so
//! reading one trace is one ranged GET of one frame.
//!
//! # Index object (`<prefix>/blocks/<id>.index`)
//! `MAGIC (8) ++ head length (u32 LE) ++ zstd(postcard(BlockHead)) ++ zstd(postcard(BlockBody))`.
//! - The *head* is small and stays in every query node's memory: the block's time and duration
//!   ranges, counts, services, operations, the trace-id bloom filter (16 bits per trace) and
//!   which blocks it replaces (compaction).
//! - The *body* is read (one ranged GET) only when a query needs it: where each frame lies, the
//!   sorted trace ids with their frame, and per span a search row (operation, start, duration),
//!   columnar so that zstd packs it.
//!
//! The index is written after the data; a block exists for readers once its index exists, so
//! a reader never sees an index whose data is missing (except after a deletion, which is
//! reported as a missing object and skipped).

use serde::{Deserialize, Serialize};
use spoor_core::block::{encode_block_refs, BlockReader};
use spoor_core::{Span, SpanKind, TraceId};
use spoor_store::embedded::span_tag_hashes;
use spoor_store::embedded::tracefilter::TraceFilter;
use spoor_store::{StoreError, StoreResult};

/// First bytes of every index object; the digit is the format version.
pub const MAGIC: &[u8; 8] = b"SPOORIX1";
/// Spans per frame (whole traces, so a frame may hold more).
pub const FRAME_SPANS: usize = 2048;
/// zstd level of frames and indexes: objects are written once and read many times.
const ZSTD_LEVEL: i32 = 3;
/// Largest decompressed frame, head or body accepted from storage.
pub const MAX_RAW_BYTES: usize = 1 << 30;

/// What every query node keeps in memory about a block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockHead {
    /// The block id (the object names without extension).
    pub id: String,
    /// Earliest and latest span start, nanoseconds since the epoch.
    pub min_start: u64,
    /// Latest span start.
    pub max_start: u64,
    /// Shortest and longest span duration.
    pub min_duration: u64,
    /// Longest span duration.
    pub max_duration: u64,
    /// Spans in the block.
    pub spans: u64,
    /// Traces in the block.
    pub traces: u64,
    /// Bytes of the data object.
    pub data_bytes: u64,
    /// Service names, sorted.
    pub services: Vec<String>,
    /// (index into `services`, operation name, span kind as u8), sorted.
    pub operations: Vec<(u32, String, u8)>,
    /// The trace-id filter's words ([`TraceFilter::words`]).
    pub bloom: Vec<u32>,
    /// Blocks whose spans this block holds (compaction): readers ignore those.
    pub replaces: Vec<String>,
    /// End of the time partition(s) the block was sealed from: retention deletes the block
    /// once this is at or before the cutoff, as the sled store drops a partition.
    pub window_end: u64,
}

/// Where a frame lies in the data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRef {
    /// Offset in the data object.
    pub offset: u64,
    /// Compressed length.
    pub len: u32,
    /// Decompressed length.
    pub raw_len: u32,
}

/// The part of the index read on demand.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BlockBody {
    /// The frames in data order.
    pub frames: Vec<FrameRef>,
    /// Trace ids, ascending, as 16 big-endian bytes.
    pub trace_ids: Vec<[u8; 16]>,
    /// Per trace: its frame.
    pub trace_frame: Vec<u32>,
    /// Per trace: how many search rows (spans) it has; rows follow trace order.
    pub trace_rows: Vec<u32>,
    /// Per row: index into the head's `operations`.
    pub row_op: Vec<u32>,
    /// Per row: span start minus the head's `min_start`.
    pub row_start: Vec<u64>,
    /// Per row: span duration.
    pub row_duration: Vec<u64>,
    /// Per trace: end offset of its tag filter in `trace_bloom` (the filter of trace `t` is
    /// `trace_bloom[end[t-1]..end[t]]`).
    pub trace_bloom_end: Vec<u32>,
    /// Per trace a bloom filter (8 bits per distinct tag, 3 probes) of
    /// `spoor_store::embedded::span_tag_hashes` over its spans in the block.
    pub trace_bloom: Vec<u8>,
}

impl BlockBody {
    /// The position of `id` in the trace table.
    pub fn find(&self, id: TraceId) -> Option<usize> {
        self.trace_ids.binary_search(&id.0.to_be_bytes()).ok()
    }

    /// The row range of every trace, in trace order.
    pub fn row_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut at = 0usize;
        self.trace_rows
            .iter()
            .map(|n| {
                let r = at..at + *n as usize;
                at = r.end;
                r
            })
            .collect()
    }

    /// Whether trace `t`'s tag filter may hold every probe of `probes` (see
    /// `spoor_store::embedded::query_tag_probes`: the exact text or the key with any text).
    pub fn may_have_tags(&self, t: usize, probes: &[(u64, u64)]) -> bool {
        let from = if t == 0 {
            0
        } else {
            self.trace_bloom_end[t - 1] as usize
        };
        let bits = &self.trace_bloom[from..self.trace_bloom_end[t] as usize];
        probes
            .iter()
            .all(|(kv, any)| bloom_has(bits, *kv) || bloom_has(bits, *any))
    }

    /// Whether the columns agree with each other and with `head` (checked on decode, so
    /// readers can index without bounds surprises).
    fn consistent(&self, head: &BlockHead) -> bool {
        let traces = self.trace_ids.len();
        let rows: u64 = self.trace_rows.iter().map(|n| u64::from(*n)).sum();
        traces == self.trace_frame.len()
            && traces == self.trace_rows.len()
            && self
                .trace_frame
                .iter()
                .all(|f| (*f as usize) < self.frames.len())
            && rows == self.row_op.len() as u64
            && self.row_op.len() == self.row_start.len()
            && self.row_op.len() == self.row_duration.len()
            && self
                .row_op
                .iter()
                .all(|o| (*o as usize) < head.operations.len())
            && self.trace_ids.windows(2).all(|w| w[0] < w[1])
            && self.trace_bloom_end.len() == traces
            && self.trace_bloom_end.windows(2).all(|w| w[0] < w[1])
            && self.trace_bloom_end.first().is_none_or(|f| *f > 0)
            && self.trace_bloom_end.last().map_or(0, |l| *l as usize) == self.trace_bloom.len()
    }
}

/// A block ready to upload.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The data object.
    pub data: Vec<u8>,
    /// The index object.
    pub index: Vec<u8>,
    /// Its head (also inside `index`).
    pub head: BlockHead,
}

const BLOOM_PROBES: u64 = 3;

fn bloom_positions(h: u64, m_bits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m_bits)
}

fn bloom_has(bits: &[u8], h: u64) -> bool {
    let m = bits.len() as u64 * 8;
    m > 0 && bloom_positions(h, m).all(|b| bits[(b / 8) as usize] & (1 << (b % 8)) != 0)
}

/// A filter of `hashes` (deduplicated here): 8 bits each, at least 8 bytes.
fn bloom_of(hashes: &mut Vec<u64>, out: &mut Vec<u8>) {
    hashes.sort_unstable();
    hashes.dedup();
    let bytes = hashes.len().max(8);
    let from = out.len();
    out.resize(from + bytes, 0);
    let bits = &mut out[from..];
    for h in hashes.iter() {
        for b in bloom_positions(*h, bytes as u64 * 8) {
            bits[(b / 8) as usize] |= 1 << (b % 8);
        }
    }
}

fn compress(raw: &[u8]) -> StoreResult<Vec<u8>> {
    zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(|e| StoreError::Io(format!("zstd: {e}")))
}

/// Decompresses `src`, refusing more than `max` bytes.
pub fn decompress(src: &[u8], max: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let d = zstd::stream::read::Decoder::with_buffer(src).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    d.take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > max {
        return Err(format!("decompresses to more than {max} bytes"));
    }
    Ok(out)
}

/// Builds a block named `id` from `spans` (any order, any traces; duplicates are kept).
/// `window_end` is the end of the partition(s) the spans were sealed from.
pub fn build(
    id: &str,
    mut spans: Vec<Span>,
    replaces: Vec<String>,
    window_end: u64,
) -> StoreResult<BuiltBlock> {
    spans.sort_by(|a, b| {
        (a.trace_id, a.start_unix_nanos, a.span_id).cmp(&(
            b.trace_id,
            b.start_unix_nanos,
            b.span_id,
        ))
    });
    let mut services: Vec<String> = spans.iter().map(|s| s.service().to_owned()).collect();
    services.sort_unstable();
    services.dedup();
    let svc_of = |s: &Span| {
        services
            .binary_search_by(|x| x.as_str().cmp(s.service()))
            .unwrap_or(0) as u32
    };
    let mut operations: Vec<(u32, String, u8)> = spans
        .iter()
        .map(|s| (svc_of(s), s.name.clone(), s.kind as u8))
        .collect();
    operations.sort_unstable();
    operations.dedup();
    let min_start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let max_start = spans.iter().map(|s| s.start_unix_nanos).max().unwrap_or(0);
    let dur = |s: &Span| u64::try_from(s.duration_nanos).unwrap_or(0);
    let mut body = BlockBody::default();
    let mut data = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        // a frame: whole traces until FRAME_SPANS spans
        let mut j = i;
        while j < spans.len()
            && (j == i || j - i < FRAME_SPANS || spans[j].trace_id == spans[j - 1].trace_id)
        {
            j += 1;
        }
        let frame_no = body.frames.len() as u32;
        let raw = encode_block_refs(&spans[i..j]);
        let packed = compress(&raw)?;
        body.frames.push(FrameRef {
            offset: data.len() as u64,
            len: u32::try_from(packed.len())
                .map_err(|_| StoreError::Io("frame over 4 GiB".into()))?,
            raw_len: u32::try_from(raw.len())
                .map_err(|_| StoreError::Io("frame over 4 GiB".into()))?,
        });
        data.extend_from_slice(&packed);
        for s in &spans[i..j] {
            if body.trace_ids.last() != Some(&s.trace_id.0.to_be_bytes()) {
                if !body.trace_ids.is_empty() {
                    bloom_of(&mut hashes, &mut body.trace_bloom);
                    body.trace_bloom_end.push(body.trace_bloom.len() as u32);
                    hashes.clear();
                }
                body.trace_ids.push(s.trace_id.0.to_be_bytes());
                body.trace_frame.push(frame_no);
                body.trace_rows.push(0);
            }
            span_tag_hashes(s, &mut hashes);
            if let Some(n) = body.trace_rows.last_mut() {
                *n += 1;
            }
            let op = (svc_of(s), s.name.clone(), s.kind as u8);
            body.row_op
                .push(operations.binary_search(&op).unwrap_or(0) as u32);
            body.row_start.push(s.start_unix_nanos - min_start);
            body.row_duration.push(dur(s));
        }
        i = j;
    }
    if !body.trace_ids.is_empty() {
        bloom_of(&mut hashes, &mut body.trace_bloom);
        body.trace_bloom_end.push(body.trace_bloom.len() as u32);
    }
    let ids: Vec<TraceId> = body
        .trace_ids
        .iter()
        .map(|b| TraceId(u128::from_be_bytes(*b)))
        .collect();
    let head = BlockHead {
        id: id.to_owned(),
        min_start,
        max_start,
        min_duration: spans.iter().map(dur).min().unwrap_or(0),
        max_duration: spans.iter().map(dur).max().unwrap_or(0),
        spans: spans.len() as u64,
        traces: ids.len() as u64,
        data_bytes: data.len() as u64,
        services,
        operations,
        bloom: TraceFilter::new(&ids).words(),
        replaces,
        window_end: window_end.max(max_start.saturating_add(1)),
    };
    let head_z =
        compress(&postcard::to_allocvec(&head).map_err(|e| StoreError::Io(e.to_string()))?)?;
    let body_z =
        compress(&postcard::to_allocvec(&body).map_err(|e| StoreError::Io(e.to_string()))?)?;
    let mut index = Vec::with_capacity(12 + head_z.len() + body_z.len());
    index.extend_from_slice(MAGIC);
    index.extend_from_slice(&(head_z.len() as u32).to_le_bytes());
    index.extend_from_slice(&head_z);
    index.extend_from_slice(&body_z);
    Ok(BuiltBlock { data, index, head })
}

fn corrupt(location: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: location.to_owned(),
        detail: detail.into(),
    }
}

/// Reads the head from the first bytes of an index object (at least `12 + head length`);
/// returns it with the offset where the body starts. `location` names the object in errors.
pub fn decode_head(bytes: &[u8], location: &str) -> StoreResult<(BlockHead, usize)> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(corrupt(location, "not a spoor block index (bad magic)"));
    }
    let head_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let end = 12usize
        .checked_add(head_len)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| {
            corrupt(
                location,
                format!("head of {head_len} bytes runs past the object"),
            )
        })?;
    let raw = decompress(&bytes[12..end], MAX_RAW_BYTES)
        .map_err(|e| corrupt(location, format!("head: zstd: {e}")))?;
    let head: BlockHead =
        postcard::from_bytes(&raw).map_err(|e| corrupt(location, format!("head: {e}")))?;
    if TraceFilter::from_words(&head.bloom).is_none() {
        return Err(corrupt(location, "head: malformed trace-id filter"));
    }
    if head
        .operations
        .iter()
        .any(|(s, _, _)| *s as usize >= head.services.len())
    {
        return Err(corrupt(
            location,
            "head: operation names an unknown service",
        ));
    }
    Ok((head, end))
}

/// Decodes and checks a body read from an index object.
pub fn decode_body(bytes: &[u8], head: &BlockHead, location: &str) -> StoreResult<BlockBody> {
    let raw = decompress(bytes, MAX_RAW_BYTES)
        .map_err(|e| corrupt(location, format!("body: zstd: {e}")))?;
    let body: BlockBody =
        postcard::from_bytes(&raw).map_err(|e| corrupt(location, format!("body: {e}")))?;
    if !body.consistent(head) {
        return Err(corrupt(location, "body: columns disagree"));
    }
    Ok(body)
}

/// Decodes frame bytes (as stored) into the spans of `id`, or all spans for `None`.
pub fn decode_frame(
    packed: &[u8],
    frame: FrameRef,
    id: Option<TraceId>,
    location: &str,
) -> StoreResult<Vec<Span>> {
    let raw = decompress(packed, frame.raw_len as usize)
        .map_err(|e| corrupt(location, format!("zstd: {e}")))?;
    let reader = BlockReader::open(&raw).map_err(|e| corrupt(location, e.to_string()))?;
    match id {
        Some(id) => reader.decode_trace(id),
        None => reader.decode_all(),
    }
    .map_err(|e| corrupt(location, e.to_string()))
}

/// The kind stored in an operations entry.
pub fn kind_of(k: u8) -> SpanKind {
    SpanKind::ALL
        .iter()
        .copied()
        .find(|x| *x as u8 == k)
        .unwrap_or(SpanKind::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Resource, SpanId};
    use std::sync::Arc;

    pub(crate) fn span(trace: u128, id: u64, service: &str, name: &str, start: u64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            name: name.into(),
            start_unix_nanos: start,
            duration_nanos: 1_000,
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_block_round_trips_and_frames_hold_whole_traces() {
        let mut spans = Vec::new();
        for t in 0..300u128 {
            for s in 0..10u64 {
                spans.push(span(
                    t * 7919 + 1,
                    s + 1,
                    if t % 2 == 0 { "a" } else { "b" },
                    "op",
                    1_000_000 + t as u64 * 10 + s,
                ));
            }
        }
        let built = build("b1", spans.clone(), vec![], 0).unwrap();
        let (head, at) = decode_head(&built.index, "b1").unwrap();
        assert_eq!(head.spans, 3000);
        assert_eq!(head.traces, 300);
        assert_eq!(head.services, vec!["a".to_string(), "b".to_string()]);
        let body = decode_body(&built.index[at..], &head, "b1").unwrap();
        assert!(body.frames.len() >= 2, "{} frames", body.frames.len());
        let filter = TraceFilter::from_words(&head.bloom).unwrap();
        for t in [0u128, 17, 299] {
            let id = TraceId(t * 7919 + 1);
            assert!(filter.may_contain(id));
            let i = body.find(id).unwrap();
            let f = body.frames[body.trace_frame[i] as usize];
            let bytes = &built.data[f.offset as usize..f.offset as usize + f.len as usize];
            let got = decode_frame(bytes, f, Some(id), "b1").unwrap();
            assert_eq!(got.len(), 10, "trace {t} is whole in its frame");
        }
        assert_eq!(
            body.row_ranges().iter().map(|r| r.len()).sum::<usize>(),
            3000
        );
    }

    #[test]
    fn trace_tag_filters_hold_every_tag_and_skip_most_others() {
        let mut spans = Vec::new();
        for t in 0..200u128 {
            let mut s = span(t + 1, 1, "a", "op", 10);
            s.attributes = vec![
                spoor_core::KeyValue::string("user", format!("u{t}")),
                spoor_core::KeyValue::new("ratio", spoor_core::AnyValue::Double(0.5)),
            ];
            spans.push(s);
        }
        let built = build("b3", spans, vec![], 0).unwrap();
        let (head, at) = decode_head(&built.index, "b3").unwrap();
        let body = decode_body(&built.index[at..], &head, "b3").unwrap();
        let probes = |k: &str, v: &str| {
            spoor_store::embedded::query_tag_probes(&spoor_core::TraceQuery {
                tags: vec![(k.into(), v.into())],
                ..Default::default()
            })
        };
        let mut false_hits = 0;
        for t in 0..200usize {
            let id = body.find(TraceId(t as u128 + 1)).unwrap();
            assert!(body.may_have_tags(id, &probes("user", &format!("u{t}"))));
            assert!(
                body.may_have_tags(id, &probes("ratio", "0.5")),
                "doubles never skip"
            );
            assert!(
                body.may_have_tags(id, &probes("span.kind", "client")),
                "synthetic tags never skip"
            );
            false_hits += usize::from(body.may_have_tags(id, &probes("user", "nobody")));
        }
        assert!(
            false_hits < 20,
            "{false_hits} of 200 traces kept for an absent tag"
        );
    }

    #[test]
    fn damaged_indexes_are_errors_naming_the_object() {
        let built = build("b2", vec![span(1, 1, "a", "op", 5)], vec![], 0).unwrap();
        for bad in [
            &b"nonsense"[..],
            &built.index[..14],
            b"SPOORIX1\xff\xff\xff\x7f",
        ] {
            let e = decode_head(bad, "blocks/b2.index").unwrap_err().to_string();
            assert!(e.contains("blocks/b2.index"), "{e}");
        }
        let (head, at) = decode_head(&built.index, "b2").unwrap();
        let e = decode_body(&built.index[at..at + 3], &head, "blocks/b2.index").unwrap_err();
        assert!(e.to_string().contains("blocks/b2.index"), "{e}");
    }
}
