//! The storage block format: a compact, versioned, self-contained binary encoding of many spans
//! grouped per trace, so that a store can keep one block per write and decode only the trace it
//! was asked for.
//!
//! No compression happens here (the host compresses whole blocks); the format only removes
//! repetition. Layout, every integer an unsigned LEB128 varint unless said otherwise:
//!
//! ```text
//! header     "SPBK" magic (4 bytes), format version (1 byte, BLOCK_FORMAT_VERSION)
//! strings    count, then per string: byte length, UTF-8 bytes
//! resources  count, then per resource: service name (string index), attributes, dropped count
//! scopes     count, then per scope: name (string index), version (string index), attributes,
//!            dropped count
//! directory  trace count, then per trace: trace id (16 bytes big-endian), segment offset
//!            (relative to the end of the directory), segment length, span count, min start,
//!            max end minus min start
//! segments   one per trace, the trace's spans in the order they were given
//! ```
//!
//! Every string of the block (service and operation names, attribute keys, string values, trace
//! states, status messages, event names, scope names and versions, warnings) is interned once in
//! the string table and referred to by index. Resources and scopes are interned once per block
//! (by pointer, then by content) and shared through one [`Arc`] per table entry on decode, so
//! spans of the same resource in a block share one `Arc` again.
//!
//! A span inside a segment: span id (8 bytes big-endian); parent (0 = none, 1 = an explicit
//! 8-byte id follows, `2 + i` = the id of span `i` of the same segment); trace state; flags;
//! name; kind and status code in one byte (`kind | code << 4`); start minus the trace's min
//! start; duration (zigzag); status message; attributes; events (time as a zigzag delta from the
//! span start); links (0 = same trace, 1 = a 16-byte trace id follows); the three dropped
//! counts; resource index; scope index; warnings.
//!
//! Attribute values carry a one-byte tag: string (index), false, true, int (zigzag), double (the
//! 8 IEEE-754 bytes, little-endian, so every bit pattern including NaN payloads round-trips
//! exactly), bytes (length + raw bytes), array (count + values), map (count + key index +
//! value). Nesting deeper than [`MAX_VALUE_DEPTH`] is rejected on decode.
//!
//! Decoding never panics: every length, index and offset is checked and a bad one is reported
//! as a [`BlockError`] naming the byte offset.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;

use crate::model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};

/// Version of the block layout written by [`encode_block`]; [`BlockReader::open`] rejects others.
pub const BLOCK_FORMAT_VERSION: u8 = 1;

/// The four bytes every block starts with.
pub const BLOCK_MAGIC: [u8; 4] = *b"SPBK";

/// Deepest nesting of array/map attribute values accepted on decode.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Why a block could not be read. Offsets are byte offsets from the start of the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The block does not start with [`BLOCK_MAGIC`].
    BadMagic,
    /// The block was written by a format version this code does not read.
    UnsupportedVersion(u8),
    /// The data ended in the middle of `what`.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it started.
        offset: usize,
    },
    /// A varint was longer than 64 bits allow.
    VarintOverflow {
        /// Where it started.
        offset: usize,
    },
    /// A string of the string table is not UTF-8.
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// An index into a table (strings, resources, scopes, spans of a segment) is out of range.
    BadIndex {
        /// Which table.
        table: &'static str,
        /// The index read.
        index: u64,
        /// How many entries the table has.
        len: usize,
        /// Where the index was read.
        offset: usize,
    },
    /// A tag byte (attribute value type, parent or link marker) is unknown.
    BadTag {
        /// What the tag was for.
        what: &'static str,
        /// The value read.
        tag: u64,
        /// Where it was read.
        offset: usize,
    },
    /// A trace's segment lies outside the block.
    SegmentOutOfBounds {
        /// The trace.
        trace_id: TraceId,
        /// Segment start, from the start of the block.
        offset: u64,
        /// Segment length.
        len: u64,
    },
    /// Bytes follow the last trace segment: the block is longer than its directory says (a
    /// plugin appended to its output, or two blocks were glued together).
    TrailingBytes {
        /// Where the unclaimed bytes start.
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// A segment's bytes do not hold exactly the span count the directory gives.
    SegmentMismatch {
        /// The trace.
        trace_id: TraceId,
        /// Where the segment's unread bytes start.
        offset: usize,
    },
    /// Attribute values were nested more deeply than [`MAX_VALUE_DEPTH`].
    TooDeep {
        /// Where the too-deep value starts.
        offset: usize,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::BadMagic => {
                f.write_str("block does not start with the spbk magic at offset 0")
            }
            BlockError::UnsupportedVersion(v) => {
                write!(f, "unsupported block format version {v} at offset 4 (this build reads {BLOCK_FORMAT_VERSION})")
            }
            BlockError::Truncated { what, offset } => {
                write!(f, "block truncated in {what} at offset {offset}")
            }
            BlockError::VarintOverflow { offset } => {
                write!(f, "varint longer than 64 bits at offset {offset}")
            }
            BlockError::InvalidUtf8 { offset } => {
                write!(f, "string is not utf-8 at offset {offset}")
            }
            BlockError::BadIndex {
                table,
                index,
                len,
                offset,
            } => {
                write!(
                    f,
                    "{table} index {index} out of range (table has {len}) at offset {offset}"
                )
            }
            BlockError::BadTag { what, tag, offset } => {
                write!(f, "unknown {what} tag {tag} at offset {offset}")
            }
            BlockError::SegmentOutOfBounds {
                trace_id,
                offset,
                len,
            } => {
                write!(f, "segment of trace {trace_id} at offset {offset} with length {len} lies outside the block")
            }
            BlockError::TrailingBytes { offset, len } => {
                write!(
                    f,
                    "{len} bytes after the last trace segment at offset {offset}"
                )
            }
            BlockError::SegmentMismatch { trace_id, offset } => {
                write!(
                    f,
                    "segment of trace {trace_id} does not match its span count at offset {offset}"
                )
            }
            BlockError::TooDeep { offset } => {
                write!(
                    f,
                    "attribute value nested deeper than {MAX_VALUE_DEPTH} at offset {offset}"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BlockError {}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

const VAL_STR: u8 = 0;
const VAL_FALSE: u8 = 1;
const VAL_TRUE: u8 = 2;
const VAL_INT: u8 = 3;
const VAL_DOUBLE: u8 = 4;
const VAL_BYTES: u8 = 5;
const VAL_ARRAY: u8 = 6;
const VAL_MAP: u8 = 7;

const PARENT_NONE: u64 = 0;
const PARENT_ID: u64 = 1;
const PARENT_INDEX_BASE: u64 = 2;

const LINK_SAME_TRACE: u64 = 0;
const LINK_OTHER_TRACE: u64 = 1;

#[derive(Default)]
struct Encoder<'s> {
    strings: HashMap<&'s str, u32>,
    string_list: Vec<&'s str>,
    resource_by_ptr: HashMap<*const Resource, u32>,
    resource_by_content: HashMap<Vec<u8>, u32>,
    resources: Vec<u8>,
    resource_count: u32,
    scope_by_ptr: HashMap<*const Scope, u32>,
    scope_by_content: HashMap<Vec<u8>, u32>,
    scopes: Vec<u8>,
    scope_count: u32,
}

impl<'s> Encoder<'s> {
    fn string(&mut self, s: &'s str) -> u64 {
        let next = self.string_list.len() as u32;
        let idx = *self.strings.entry(s).or_insert_with(|| next);
        if idx == next {
            self.string_list.push(s);
        }
        u64::from(idx)
    }

    fn put_str(&mut self, out: &mut Vec<u8>, s: &'s str) {
        let i = self.string(s);
        put_varint(out, i);
    }

    fn put_value(&mut self, out: &mut Vec<u8>, v: &'s AnyValue) {
        match v {
            AnyValue::Str(s) => {
                out.push(VAL_STR);
                self.put_str(out, s);
            }
            AnyValue::Bool(false) => out.push(VAL_FALSE),
            AnyValue::Bool(true) => out.push(VAL_TRUE),
            AnyValue::Int(i) => {
                out.push(VAL_INT);
                put_varint(out, zigzag(*i));
            }
            AnyValue::Double(d) => {
                out.push(VAL_DOUBLE);
                out.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            AnyValue::Bytes(b) => {
                out.push(VAL_BYTES);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            AnyValue::Array(items) => {
                out.push(VAL_ARRAY);
                put_varint(out, items.len() as u64);
                for item in items {
                    self.put_value(out, item);
                }
            }
            AnyValue::Map(kvs) => {
                out.push(VAL_MAP);
                self.put_attrs(out, kvs);
            }
        }
    }

    fn put_attrs(&mut self, out: &mut Vec<u8>, attrs: &'s [KeyValue]) {
        put_varint(out, attrs.len() as u64);
        for kv in attrs {
            self.put_str(out, &kv.key);
            self.put_value(out, &kv.value);
        }
    }

    fn resource(&mut self, r: &'s Arc<Resource>) -> u64 {
        if let Some(i) = self.resource_by_ptr.get(&Arc::as_ptr(r)) {
            return u64::from(*i);
        }
        let mut buf = Vec::new();
        self.put_str(&mut buf, &r.service_name);
        self.put_attrs(&mut buf, &r.attributes);
        put_varint(&mut buf, u64::from(r.dropped_attributes_count));
        let idx = match self.resource_by_content.get(&buf) {
            Some(i) => *i,
            None => {
                let i = self.resource_count;
                self.resource_count += 1;
                self.resources.extend_from_slice(&buf);
                self.resource_by_content.insert(buf, i);
                i
            }
        };
        self.resource_by_ptr.insert(Arc::as_ptr(r), idx);
        u64::from(idx)
    }

    fn scope(&mut self, s: &'s Arc<Scope>) -> u64 {
        if let Some(i) = self.scope_by_ptr.get(&Arc::as_ptr(s)) {
            return u64::from(*i);
        }
        let mut buf = Vec::new();
        self.put_str(&mut buf, &s.name);
        self.put_str(&mut buf, &s.version);
        self.put_attrs(&mut buf, &s.attributes);
        put_varint(&mut buf, u64::from(s.dropped_attributes_count));
        let idx = match self.scope_by_content.get(&buf) {
            Some(i) => *i,
            None => {
                let i = self.scope_count;
                self.scope_count += 1;
                self.scopes.extend_from_slice(&buf);
                self.scope_by_content.insert(buf, i);
                i
            }
        };
        self.scope_by_ptr.insert(Arc::as_ptr(s), idx);
        u64::from(idx)
    }

    fn put_span(
        &mut self,
        out: &mut Vec<u8>,
        s: &'s Span,
        min_start: u64,
        index_of: &HashMap<u64, usize>,
    ) {
        out.extend_from_slice(&s.span_id.to_bytes());
        match s.parent_span_id {
            None => put_varint(out, PARENT_NONE),
            Some(p) => match index_of.get(&p.0) {
                Some(i) => put_varint(out, PARENT_INDEX_BASE + *i as u64),
                None => {
                    put_varint(out, PARENT_ID);
                    out.extend_from_slice(&p.to_bytes());
                }
            },
        }
        self.put_str(out, &s.trace_state);
        put_varint(out, u64::from(s.flags));
        self.put_str(out, &s.name);
        out.push((s.kind as u8) | ((s.status.code as u8) << 4));
        put_varint(out, s.start_unix_nanos - min_start);
        put_varint(out, zigzag(s.duration_nanos));
        self.put_str(out, &s.status.message);
        self.put_attrs(out, &s.attributes);
        put_varint(out, s.events.len() as u64);
        for e in &s.events {
            put_varint(
                out,
                zigzag((e.time_unix_nanos as i64).wrapping_sub(s.start_unix_nanos as i64)),
            );
            self.put_str(out, &e.name);
            self.put_attrs(out, &e.attributes);
            put_varint(out, u64::from(e.dropped_attributes_count));
        }
        put_varint(out, s.links.len() as u64);
        for l in &s.links {
            if l.trace_id == s.trace_id {
                put_varint(out, LINK_SAME_TRACE);
            } else {
                put_varint(out, LINK_OTHER_TRACE);
                out.extend_from_slice(&l.trace_id.to_bytes());
            }
            out.extend_from_slice(&l.span_id.to_bytes());
            self.put_str(out, &l.trace_state);
            self.put_attrs(out, &l.attributes);
            put_varint(out, u64::from(l.dropped_attributes_count));
            put_varint(out, u64::from(l.flags));
        }
        put_varint(out, u64::from(s.dropped_attributes_count));
        put_varint(out, u64::from(s.dropped_events_count));
        put_varint(out, u64::from(s.dropped_links_count));
        let r = self.resource(&s.resource);
        put_varint(out, r);
        let sc = self.scope(&s.scope);
        put_varint(out, sc);
        put_varint(out, s.warnings.len() as u64);
        for w in &s.warnings {
            self.put_str(out, w);
        }
    }
}

/// Encodes spans into one block, grouped by trace id. Traces appear in the order of their first
/// span and keep the order of their spans (the grouping is stable).
pub fn encode_block(spans: &[Span]) -> Vec<u8> {
    encode_block_refs(spans.iter())
}

/// [`encode_block`] for spans that are not contiguous in memory (for example the spans of one
/// batch that fall into one time partition).
pub fn encode_block_refs<'s>(spans: impl IntoIterator<Item = &'s Span>) -> Vec<u8> {
    // Group by trace, keeping first-appearance order.
    let mut trace_index: HashMap<TraceId, usize> = HashMap::new();
    let mut groups: Vec<(TraceId, Vec<&'s Span>)> = Vec::new();
    for s in spans {
        let next = groups.len();
        let i = *trace_index.entry(s.trace_id).or_insert(next);
        if i == next {
            groups.push((s.trace_id, Vec::new()));
        }
        groups[i].1.push(s);
    }

    let mut enc = Encoder::default();
    let mut segments = Vec::new();
    let mut directory = Vec::new();
    put_varint(&mut directory, groups.len() as u64);
    let mut index_of: HashMap<u64, usize> = HashMap::new();
    for (trace_id, group) in &groups {
        let min_start = group.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
        let max_end = group
            .iter()
            .map(|s| s.end_unix_nanos())
            .max()
            .unwrap_or(min_start)
            .max(min_start);
        index_of.clear();
        for (i, s) in group.iter().enumerate() {
            index_of.entry(s.span_id.0).or_insert(i);
        }
        let offset = segments.len();
        for s in group {
            enc.put_span(&mut segments, s, min_start, &index_of);
        }
        directory.extend_from_slice(&trace_id.to_bytes());
        put_varint(&mut directory, offset as u64);
        put_varint(&mut directory, (segments.len() - offset) as u64);
        put_varint(&mut directory, group.len() as u64);
        put_varint(&mut directory, min_start);
        put_varint(&mut directory, max_end - min_start);
    }

    let strings_len: usize = enc.string_list.iter().map(|s| s.len() + 2).sum();
    let mut out = Vec::with_capacity(
        5 + strings_len
            + enc.resources.len()
            + enc.scopes.len()
            + directory.len()
            + segments.len()
            + 16,
    );
    out.extend_from_slice(&BLOCK_MAGIC);
    out.push(BLOCK_FORMAT_VERSION);
    put_varint(&mut out, enc.string_list.len() as u64);
    for s in &enc.string_list {
        put_varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    put_varint(&mut out, u64::from(enc.resource_count));
    out.extend_from_slice(&enc.resources);
    put_varint(&mut out, u64::from(enc.scope_count));
    out.extend_from_slice(&enc.scopes);
    out.extend_from_slice(&directory);
    out.extend_from_slice(&segments);
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A cursor over the block; `pos` is always an offset from the start of the block.
struct Cur<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BlockError> {
        let start = self.pos;
        match start.checked_add(n) {
            Some(stop) if stop <= self.end => {
                self.pos = stop;
                Ok(&self.bytes[start..stop])
            }
            _ => Err(BlockError::Truncated {
                what,
                offset: start,
            }),
        }
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, BlockError> {
        Ok(self.take(1, what)?[0])
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, BlockError> {
        let start = self.pos;
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte(what).map_err(|_| BlockError::Truncated {
                what,
                offset: start,
            })?;
            if shift == 63 && b > 1 {
                return Err(BlockError::VarintOverflow { offset: start });
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(BlockError::VarintOverflow { offset: start });
            }
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, BlockError> {
        let start = self.pos;
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| BlockError::VarintOverflow { offset: start })
    }

    fn len(&mut self, what: &'static str) -> Result<usize, BlockError> {
        let start = self.pos;
        let v = self.varint(what)?;
        // A count can never exceed the bytes left: every element takes at least one byte.
        match usize::try_from(v) {
            Ok(n) if n <= self.end - self.pos => Ok(n),
            _ => Err(BlockError::Truncated {
                what,
                offset: start,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BlockError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

#[derive(Clone, Copy)]
struct DirEntry {
    trace_id: TraceId,
    offset: usize,
    len: usize,
    span_count: usize,
    min_start: u64,
    max_end: u64,
}

/// Summary of one trace in a block, from the directory (no segment is decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTrace {
    /// The trace.
    pub trace_id: TraceId,
    /// How many spans of it the block holds.
    pub span_count: usize,
    /// Earliest span start among them.
    pub min_start_unix_nanos: u64,
    /// Latest span end among them.
    pub max_end_unix_nanos: u64,
}

/// A validated view of an encoded block; decodes trace segments on demand.
pub struct BlockReader<'a> {
    bytes: &'a [u8],
    /// Raw string-table entries and their byte offsets; UTF-8 is checked when a string is
    /// decoded, so opening a block (done per candidate trace by searches) stays cheap.
    strings: Vec<(&'a [u8], usize)>,
    resources: Vec<Arc<Resource>>,
    scopes: Vec<Arc<Scope>>,
    directory: Vec<DirEntry>,
}

impl fmt::Debug for BlockReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockReader")
            .field("bytes", &self.bytes.len())
            .field("strings", &self.strings.len())
            .field("traces", &self.directory.len())
            .finish()
    }
}

fn get_index<T: Clone>(table: &[T], name: &'static str, c: &mut Cur<'_>) -> Result<T, BlockError> {
    let offset = c.pos;
    let i = c.varint(name)?;
    usize::try_from(i)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
        .ok_or(BlockError::BadIndex {
            table: name,
            index: i,
            len: table.len(),
            offset,
        })
}

impl<'a> BlockReader<'a> {
    /// Validates the header, string table, resource and scope tables and the trace directory.
    /// Segments are checked to lie inside the block but are decoded only on demand.
    pub fn open(bytes: &'a [u8]) -> Result<Self, BlockError> {
        if bytes.len() < 4 || bytes[..4] != BLOCK_MAGIC {
            return Err(BlockError::BadMagic);
        }
        let mut c = Cur {
            bytes,
            pos: 4,
            end: bytes.len(),
        };
        let version = c.byte("header")?;
        if version != BLOCK_FORMAT_VERSION {
            return Err(BlockError::UnsupportedVersion(version));
        }
        let n = c.len("string table")?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            let len = c.len("string")?;
            let offset = c.pos;
            let raw = c.take(len, "string")?;
            strings.push((raw, offset));
        }
        let mut reader = BlockReader {
            bytes,
            strings,
            resources: Vec::new(),
            scopes: Vec::new(),
            directory: Vec::new(),
        };

        let n = c.len("resource table")?;
        let mut resources = Vec::with_capacity(n);
        for _ in 0..n {
            let service_name = reader.string(&mut c)?;
            let attributes = reader.attrs(&mut c, 0)?;
            let dropped_attributes_count = c.u32("resource")?;
            resources.push(Arc::new(Resource {
                service_name,
                attributes,
                dropped_attributes_count,
            }));
        }
        reader.resources = resources;

        let n = c.len("scope table")?;
        let mut scopes = Vec::with_capacity(n);
        for _ in 0..n {
            let name = reader.string(&mut c)?;
            let version = reader.string(&mut c)?;
            let attributes = reader.attrs(&mut c, 0)?;
            let dropped_attributes_count = c.u32("scope")?;
            scopes.push(Arc::new(Scope {
                name,
                version,
                attributes,
                dropped_attributes_count,
            }));
        }
        reader.scopes = scopes;

        let n = c.len("trace directory")?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let trace_id = TraceId::from_bytes(c.array::<16>("trace directory")?);
            let offset = c.varint("trace directory")?;
            let len = c.varint("trace directory")?;
            let span_count = c.varint("trace directory")?;
            let min_start = c.varint("trace directory")?;
            let spread = c.varint("trace directory")?;
            entries.push((trace_id, offset, len, span_count, min_start, spread));
        }
        let base = c.pos;
        let seg_bytes = (bytes.len() - base) as u64;
        let mut directory = Vec::with_capacity(n);
        let mut claimed = 0u64;
        for (trace_id, offset, len, span_count, min_start, spread) in entries {
            let in_bounds = offset
                .checked_add(len)
                .is_some_and(|stop| stop <= seg_bytes);
            // Every span takes at least 8 bytes, so a larger count cannot be right.
            if !in_bounds || span_count > len / 8 + 1 {
                return Err(BlockError::SegmentOutOfBounds {
                    trace_id,
                    offset: (base as u64).saturating_add(offset),
                    len,
                });
            }
            claimed = claimed.max(offset + len);
            directory.push(DirEntry {
                trace_id,
                offset: base + offset as usize,
                len: len as usize,
                span_count: span_count as usize,
                min_start,
                max_end: min_start.saturating_add(spread),
            });
        }
        if claimed < seg_bytes {
            return Err(BlockError::TrailingBytes {
                offset: base + claimed as usize,
                len: (seg_bytes - claimed) as usize,
            });
        }
        reader.directory = directory;
        Ok(reader)
    }

    /// The trace ids in the block, in the order they were first written.
    pub fn trace_ids(&self) -> impl Iterator<Item = TraceId> + '_ {
        self.directory.iter().map(|d| d.trace_id)
    }

    /// Directory entries (span counts and time ranges) without decoding any segment.
    pub fn traces(&self) -> impl Iterator<Item = BlockTrace> + '_ {
        self.directory.iter().map(|d| BlockTrace {
            trace_id: d.trace_id,
            span_count: d.span_count,
            min_start_unix_nanos: d.min_start,
            max_end_unix_nanos: d.max_end,
        })
    }

    /// The spans of one trace, decoding only its segment; empty when the block has none of it.
    pub fn decode_trace(&self, id: TraceId) -> Result<Vec<Span>, BlockError> {
        match self.directory.iter().find(|d| d.trace_id == id) {
            Some(d) => self.decode_segment(d),
            None => Ok(Vec::new()),
        }
    }

    /// Every span of the block, trace by trace.
    pub fn decode_all(&self) -> Result<Vec<Span>, BlockError> {
        let total: usize = self.directory.iter().map(|d| d.span_count).sum();
        let mut out = Vec::with_capacity(total.min(self.bytes.len() / 8));
        for d in &self.directory {
            out.extend(self.decode_segment(d)?);
        }
        Ok(out)
    }

    fn string(&self, c: &mut Cur<'_>) -> Result<String, BlockError> {
        let (raw, offset) = get_index(&self.strings, "string", c)?;
        core::str::from_utf8(raw)
            .map(String::from)
            .map_err(|_| BlockError::InvalidUtf8 { offset })
    }

    fn attrs(&self, c: &mut Cur<'_>, depth: usize) -> Result<Vec<KeyValue>, BlockError> {
        let n = c.len("attributes")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.string(c)?;
            let value = self.value(c, depth)?;
            out.push(KeyValue { key, value });
        }
        Ok(out)
    }

    fn value(&self, c: &mut Cur<'_>, depth: usize) -> Result<AnyValue, BlockError> {
        let offset = c.pos;
        if depth > MAX_VALUE_DEPTH {
            return Err(BlockError::TooDeep { offset });
        }
        let tag = c.byte("attribute value")?;
        Ok(match tag {
            VAL_STR => AnyValue::Str(self.string(c)?),
            VAL_FALSE => AnyValue::Bool(false),
            VAL_TRUE => AnyValue::Bool(true),
            VAL_INT => AnyValue::Int(unzigzag(c.varint("int value")?)),
            VAL_DOUBLE => AnyValue::Double(f64::from_bits(u64::from_le_bytes(
                c.array::<8>("double value")?,
            ))),
            VAL_BYTES => {
                let n = c.len("bytes value")?;
                AnyValue::Bytes(c.take(n, "bytes value")?.to_vec())
            }
            VAL_ARRAY => {
                let n = c.len("array value")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(c, depth + 1)?);
                }
                AnyValue::Array(items)
            }
            VAL_MAP => AnyValue::Map(self.attrs(c, depth + 1)?),
            other => {
                return Err(BlockError::BadTag {
                    what: "attribute value",
                    tag: u64::from(other),
                    offset,
                })
            }
        })
    }

    fn decode_segment(&self, d: &DirEntry) -> Result<Vec<Span>, BlockError> {
        let mut c = Cur {
            bytes: self.bytes,
            pos: d.offset,
            end: d.offset + d.len,
        };
        let mut spans = Vec::with_capacity(d.span_count);
        // (span index, parent index within the segment, where the index was read)
        let mut parent_refs: Vec<(usize, u64, usize)> = Vec::new();
        for i in 0..d.span_count {
            let span_id = SpanId::from_bytes(c.array::<8>("span id")?);
            let parent_offset = c.pos;
            let parent_span_id = match c.varint("parent")? {
                PARENT_NONE => None,
                PARENT_ID => Some(SpanId::from_bytes(c.array::<8>("parent id")?)),
                p => {
                    parent_refs.push((i, p - PARENT_INDEX_BASE, parent_offset));
                    Some(SpanId::ZERO)
                }
            };
            let trace_state = self.string(&mut c)?;
            let flags = c.u32("flags")?;
            let name = self.string(&mut c)?;
            let kind_offset = c.pos;
            let ks = c.byte("kind")?;
            let kind = match SpanKind::ALL.get(usize::from(ks & 0x0f)) {
                Some(k) => *k,
                None => {
                    return Err(BlockError::BadTag {
                        what: "span kind",
                        tag: u64::from(ks & 0x0f),
                        offset: kind_offset,
                    })
                }
            };
            let code = match ks >> 4 {
                0 => StatusCode::Unset,
                1 => StatusCode::Ok,
                2 => StatusCode::Error,
                other => {
                    return Err(BlockError::BadTag {
                        what: "status code",
                        tag: u64::from(other),
                        offset: kind_offset,
                    })
                }
            };
            let start_unix_nanos = d.min_start.wrapping_add(c.varint("start")?);
            let duration_nanos = unzigzag(c.varint("duration")?);
            let message = self.string(&mut c)?;
            let attributes = self.attrs(&mut c, 0)?;
            let n = c.len("events")?;
            let mut events = Vec::with_capacity(n);
            for _ in 0..n {
                let delta = unzigzag(c.varint("event time")?);
                let time_unix_nanos = start_unix_nanos.wrapping_add(delta as u64);
                let name = self.string(&mut c)?;
                let attributes = self.attrs(&mut c, 0)?;
                let dropped_attributes_count = c.u32("event")?;
                events.push(Event {
                    time_unix_nanos,
                    name,
                    attributes,
                    dropped_attributes_count,
                });
            }
            let n = c.len("links")?;
            let mut links = Vec::with_capacity(n);
            for _ in 0..n {
                let offset = c.pos;
                let trace_id = match c.varint("link")? {
                    LINK_SAME_TRACE => d.trace_id,
                    LINK_OTHER_TRACE => TraceId::from_bytes(c.array::<16>("link trace id")?),
                    tag => {
                        return Err(BlockError::BadTag {
                            what: "link",
                            tag,
                            offset,
                        })
                    }
                };
                let span_id = SpanId::from_bytes(c.array::<8>("link span id")?);
                let trace_state = self.string(&mut c)?;
                let attributes = self.attrs(&mut c, 0)?;
                let dropped_attributes_count = c.u32("link")?;
                let flags = c.u32("link")?;
                links.push(Link {
                    trace_id,
                    span_id,
                    trace_state,
                    attributes,
                    dropped_attributes_count,
                    flags,
                });
            }
            let dropped_attributes_count = c.u32("dropped counts")?;
            let dropped_events_count = c.u32("dropped counts")?;
            let dropped_links_count = c.u32("dropped counts")?;
            let resource = get_index(&self.resources, "resource", &mut c)?;
            let scope = get_index(&self.scopes, "scope", &mut c)?;
            let n = c.len("warnings")?;
            let mut warnings = Vec::with_capacity(n);
            for _ in 0..n {
                warnings.push(self.string(&mut c)?);
            }
            spans.push(Span {
                trace_id: d.trace_id,
                span_id,
                parent_span_id,
                trace_state,
                flags,
                name,
                kind,
                start_unix_nanos,
                duration_nanos,
                status: Status { code, message },
                attributes,
                events,
                links,
                dropped_attributes_count,
                dropped_events_count,
                dropped_links_count,
                resource,
                scope,
                warnings,
            });
        }
        if c.pos != c.end {
            return Err(BlockError::SegmentMismatch {
                trace_id: d.trace_id,
                offset: c.pos,
            });
        }
        for (i, p, offset) in parent_refs {
            let parent = usize::try_from(p)
                .ok()
                .and_then(|p| spans.get(p))
                .map(|s| s.span_id);
            match parent {
                Some(id) => spans[i].parent_span_id = Some(id),
                None => {
                    return Err(BlockError::BadIndex {
                        table: "span",
                        index: p,
                        len: spans.len(),
                        offset,
                    })
                }
            }
        }
        Ok(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn resource(service: &str) -> Arc<Resource> {
        Arc::new(Resource {
            service_name: service.into(),
            attributes: vec![
                KeyValue::string("host.name", "h1"),
                KeyValue::new("pid", AnyValue::Int(42)),
            ],
            dropped_attributes_count: 1,
        })
    }

    fn sample() -> Vec<Span> {
        let ra = resource("frontend");
        let rb = resource("cart");
        let scope = Arc::new(Scope {
            name: "io.opentelemetry.http".into(),
            version: "1.2.3".into(),
            attributes: vec![KeyValue::new("lib.flag", AnyValue::Bool(true))],
            dropped_attributes_count: 0,
        });
        let t1 = TraceId(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let t2 = TraceId(7);
        let base = 1_700_000_000_000_000_000u64;
        vec![
            Span {
                trace_id: t1,
                span_id: SpanId(2),
                parent_span_id: Some(SpanId(1)), // parent comes later in the segment
                trace_state: "k=v".into(),
                flags: 0x301,
                name: "POST /cart".into(),
                kind: SpanKind::Client,
                start_unix_nanos: base + 500,
                duration_nanos: 1_000,
                status: Status {
                    code: StatusCode::Error,
                    message: "boom".into(),
                },
                attributes: vec![
                    KeyValue::new("n", AnyValue::Int(i64::MIN)),
                    KeyValue::new("d", AnyValue::Double(f64::from_bits(0x7ff8_0000_dead_beef))),
                    KeyValue::new("neg0", AnyValue::Double(-0.0)),
                    KeyValue::new("b", AnyValue::Bytes(vec![0, 255, 7])),
                    KeyValue::new(
                        "arr",
                        AnyValue::Array(vec![
                            AnyValue::Str("x".into()),
                            AnyValue::Map(vec![KeyValue::new("m", AnyValue::Bool(false))]),
                        ]),
                    ),
                ],
                events: vec![Event {
                    time_unix_nanos: base, // before the span start
                    name: "retry".into(),
                    attributes: vec![KeyValue::string("attempt", "2")],
                    dropped_attributes_count: 3,
                }],
                links: vec![
                    Link {
                        trace_id: t1,
                        span_id: SpanId(9),
                        trace_state: String::new(),
                        attributes: vec![],
                        dropped_attributes_count: 0,
                        flags: 1,
                    },
                    Link {
                        trace_id: t2,
                        span_id: SpanId(10),
                        trace_state: "a=b".into(),
                        attributes: vec![KeyValue::string("x", "y")],
                        dropped_attributes_count: 2,
                        flags: 0,
                    },
                ],
                dropped_attributes_count: 4,
                dropped_events_count: 5,
                dropped_links_count: 6,
                resource: ra.clone(),
                scope: scope.clone(),
                warnings: vec!["clock skew adjusted".into()],
            },
            Span {
                trace_id: t2,
                span_id: SpanId(u64::MAX),
                parent_span_id: Some(SpanId(12345)), // parent not in the block
                name: "SELECT".into(),
                kind: SpanKind::Internal,
                start_unix_nanos: u64::MAX - 10,
                duration_nanos: -5,
                resource: rb.clone(),
                scope: scope.clone(),
                ..Default::default()
            },
            Span {
                trace_id: t1,
                span_id: SpanId(1),
                name: "GET /checkout".into(),
                kind: SpanKind::Server,
                start_unix_nanos: base,
                duration_nanos: 5_000,
                status: Status {
                    code: StatusCode::Ok,
                    message: String::new(),
                },
                // A separate Arc with the same content as `ra`: interned once.
                resource: resource("frontend"),
                scope,
                ..Default::default()
            },
        ]
    }

    fn assert_same_bits(a: &[Span], b: &[Span]) {
        // Span equality fails on NaN, so compare through the encoding of doubles' bits.
        assert_eq!(a.len(), b.len());
        assert_eq!(alloc::format!("{a:?}"), alloc::format!("{b:?}"));
        assert_eq!(encode_block(a), encode_block(b));
    }

    #[test]
    fn round_trip_is_exact_and_grouped_by_trace() {
        let spans = sample();
        let bytes = encode_block(&spans);
        let r = BlockReader::open(&bytes).unwrap();
        let ids: Vec<TraceId> = r.trace_ids().collect();
        assert_eq!(ids, vec![spans[0].trace_id, spans[1].trace_id]);
        let grouped = vec![spans[0].clone(), spans[2].clone(), spans[1].clone()];
        let all = r.decode_all().unwrap();
        assert_same_bits(&all, &grouped);
        let AnyValue::Double(d) = all[0].attributes[1].value else {
            panic!("not a double")
        };
        assert_eq!(d.to_bits(), 0x7ff8_0000_dead_beef);
        let AnyValue::Double(z) = all[0].attributes[2].value else {
            panic!("not a double")
        };
        assert_eq!(z.to_bits(), (-0.0f64).to_bits());
        // Without NaN, plain equality holds.
        let t2 = r.decode_trace(spans[1].trace_id).unwrap();
        assert_eq!(t2, vec![spans[1].clone()]);
        assert_eq!(r.decode_trace(TraceId(99)).unwrap(), vec![]);
        let info: Vec<BlockTrace> = r.traces().collect();
        assert_eq!(
            info[0],
            BlockTrace {
                trace_id: spans[0].trace_id,
                span_count: 2,
                min_start_unix_nanos: spans[2].start_unix_nanos,
                max_end_unix_nanos: spans[2].start_unix_nanos + 5_000,
            }
        );
    }

    #[test]
    fn resources_and_scopes_share_one_arc_per_block() {
        let bytes = encode_block(&sample());
        let all = BlockReader::open(&bytes).unwrap().decode_all().unwrap();
        assert!(
            Arc::ptr_eq(&all[0].resource, &all[1].resource),
            "equal resources share one arc"
        );
        assert!(!Arc::ptr_eq(&all[0].resource, &all[2].resource));
        assert!(Arc::ptr_eq(&all[0].scope, &all[2].scope));
    }

    #[test]
    fn bytes_after_the_last_segment_are_refused() {
        for spans in [sample(), Vec::new()] {
            let mut bytes = encode_block(&spans);
            assert!(BlockReader::open(&bytes).is_ok());
            let end = bytes.len();
            bytes.extend_from_slice(b"junk");
            match BlockReader::open(&bytes) {
                Err(BlockError::TrailingBytes { offset, len }) => {
                    assert_eq!((offset, len), (end, 4));
                }
                other => panic!("expected TrailingBytes, got {other:?}"),
            }
        }
    }

    #[test]
    fn empty_block() {
        let bytes = encode_block(&[]);
        let r = BlockReader::open(&bytes).unwrap();
        assert_eq!(r.trace_ids().count(), 0);
        assert_eq!(r.decode_all().unwrap(), vec![]);
    }

    #[test]
    fn strings_are_interned_once() {
        let base = sample();
        let many: Vec<Span> = (0..100u64)
            .map(|i| Span {
                span_id: SpanId(1000 + i),
                ..base[2].clone()
            })
            .collect();
        let one = encode_block(&many[..1]).len();
        let hundred = encode_block(&many).len();
        // One span repeated: each extra span costs its id, a few varints and indexes.
        assert!(hundred - one < 99 * 40, "{hundred} bytes for 100 spans");
    }

    #[test]
    fn header_errors_name_the_problem() {
        let bytes = encode_block(&sample());
        assert_eq!(
            BlockReader::open(b"XXXX\x01").unwrap_err(),
            BlockError::BadMagic
        );
        let mut v = bytes.clone();
        v[4] = 9;
        let e = BlockReader::open(&v).unwrap_err();
        assert_eq!(e, BlockError::UnsupportedVersion(9));
        assert_eq!(
            e.to_string(),
            "unsupported block format version 9 at offset 4 (this build reads 1)"
        );
        let e = BlockReader::open(&bytes[..6]).unwrap_err();
        assert_eq!(e.to_string(), "block truncated in string table at offset 5");
    }

    /// A tiny deterministic generator (xorshift), so the test needs no randomness source.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn exercise(bytes: &[u8]) {
        if let Ok(r) = BlockReader::open(bytes) {
            let ids: Vec<TraceId> = r.trace_ids().collect();
            for id in ids {
                let _ = r.decode_trace(id);
            }
            let _ = r.decode_all();
        }
    }

    #[test]
    fn garbage_truncation_and_bit_flips_never_panic() {
        let good = encode_block(&sample());
        for cut in 0..good.len() {
            exercise(&good[..cut]);
            assert!(
                BlockReader::open(&good[..cut])
                    .and_then(|r| r.decode_all())
                    .is_err(),
                "cut at {cut}"
            );
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut v = good.clone();
            let flips = 1 + rng.next() % 4;
            for _ in 0..flips {
                let i = (rng.next() % v.len() as u64) as usize;
                v[i] = rng.next() as u8;
            }
            exercise(&v);
        }
        for _ in 0..5_000 {
            let len = (rng.next() % 200) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 5 && rng.next() % 2 == 0 {
                v[..4].copy_from_slice(&BLOCK_MAGIC);
                v[4] = BLOCK_FORMAT_VERSION;
            }
            exercise(&v);
        }
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut v = AnyValue::Int(1);
        for _ in 0..(MAX_VALUE_DEPTH + 2) {
            v = AnyValue::Array(vec![v]);
        }
        let span = Span {
            attributes: vec![KeyValue::new("deep", v)],
            resource: resource("a"),
            ..Default::default()
        };
        let bytes = encode_block(&[span]);
        let err = BlockReader::open(&bytes).unwrap().decode_all().unwrap_err();
        assert!(matches!(err, BlockError::TooDeep { .. }), "{err}");
    }
}
