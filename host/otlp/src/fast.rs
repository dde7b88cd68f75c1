//! One-pass protobuf decoder: `ExportTraceServiceRequest` bytes straight into core [`Span`]s.
//!
//! It gives exactly what [`crate::request_to_spans`] gives for the prost decode of the same bytes
//! (same spans, rejections and problem texts), without building the intermediate prost structs:
//! ids are borrowed from the input, every string is allocated once, and each `ResourceSpans` /
//! `ScopeSpans` becomes one `Arc<Resource>` / `Arc<Scope>`.
//!
//! Wire rules follow prost: unknown fields of every wire type are skipped (groups included, a
//! stray end-group is an error), a known field with the wrong wire type is an error, a repeated
//! non-repeated field takes the last value (optional messages and the `AnyValue` array/kvlist
//! variants merge), strings must be UTF-8, and nesting deeper than prost's recursion limit of 100
//! is an error rather than a stack overflow. Error texts name what was wrong and the byte offset.
//!
//! To attach the resource and scope to spans in one go, a `ResourceSpans` (`ScopeSpans`) is read
//! in two sweeps over its own top-level fields: the first decodes the resource (scope) and only
//! steps over the nested span lists by their length, the second decodes the spans.

use std::sync::Arc;

use spoor_core::{
    AnyValue, Event, KeyValue, Link, Scope, Span, SpanId, SpanKind, Status, StatusCode,
};

use crate::{DecodeError, Decoded};

/// prost's `RECURSION_LIMIT`: how many nested messages may be entered below the request.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const I32: u8 = 5;

type Result<T> = std::result::Result<T, DecodeError>;

fn malformed(text: String) -> DecodeError {
    DecodeError::Protobuf(text)
}

fn wire_name(wt: u8) -> &'static str {
    match wt {
        VARINT => "varint",
        I64 => "64-bit",
        LEN => "length-delimited",
        START_GROUP => "start-group",
        END_GROUP => "end-group",
        _ => "32-bit",
    }
}

/// Decodes an `ExportTraceServiceRequest` body in one pass.
pub fn decode(body: &[u8]) -> Result<Decoded> {
    let mut out = Decoded::default();
    let mut r = Reader {
        buf: body,
        pos: 0,
        end: body.len(),
    };
    let ctx = RECURSION_LIMIT;
    let mut scratch = Vec::new();
    let mut ri = 0usize;
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        if tag == 1 {
            let sub = r.message(wt, tag, "ExportTraceServiceRequest", at, ctx)?;
            resource_spans(sub, ctx - 1, ri, &mut scratch, &mut out)?;
            ri += 1;
        } else {
            r.skip(wt, tag, ctx, at)?;
        }
    }
    Ok(out)
}

/// A window `[pos, end)` of the request body; offsets in errors are into the whole body.
#[derive(Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn has_more(&self) -> bool {
        self.pos < self.end
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        if self.pos < self.end {
            let b = self.buf[self.pos];
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    #[cold]
    fn varint_slow(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut value = 0u64;
        for count in 0..10 {
            let Some(&b) = self.buf[..self.end].get(self.pos) else {
                return Err(malformed(format!("truncated varint at byte {start}")));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (count * 7);
            if b < 0x80 {
                if count == 9 && b >= 0x02 {
                    return Err(malformed(format!(
                        "varint overflows 64 bits at byte {start}"
                    )));
                }
                return Ok(value);
            }
        }
        Err(malformed(format!(
            "varint longer than 10 bytes at byte {start}"
        )))
    }

    /// Reads a field key: `(tag, wire type, offset of the key)`.
    #[inline(always)]
    fn key(&mut self) -> Result<(u32, u8, usize)> {
        let at = self.pos;
        let key = self.varint()?;
        let wt = (key & 7) as u8;
        let tag = (key >> 3) as u32;
        if key > u64::from(u32::MAX) || wt > 5 || tag == 0 {
            return Err(bad_key(key, at));
        }
        Ok((tag, wt, at))
    }

    #[inline(always)]
    fn expect(wt: u8, want: u8, tag: u32, msg: &str, at: usize) -> Result<()> {
        if wt == want {
            Ok(())
        } else {
            Err(wrong_wire_type(wt, want, tag, msg, at))
        }
    }

    /// Reads a length prefix and returns the window it covers, advancing past it.
    #[inline(always)]
    fn delimited(&mut self, tag: u32, msg: &str, at: usize) -> Result<Reader<'a>> {
        let len = self.varint()?;
        let left = self.end - self.pos;
        if len > left as u64 {
            return Err(too_long(len, left, tag, msg, at));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end: self.pos,
        })
    }

    #[inline(always)]
    fn bytes(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<&'a [u8]> {
        Self::expect(wt, LEN, tag, msg, at)?;
        let sub = self.delimited(tag, msg, at)?;
        Ok(&self.buf[sub.pos..sub.end])
    }

    #[inline(always)]
    fn str(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<&'a str> {
        let b = self.bytes(wt, tag, msg, at)?;
        utf8(b).ok_or_else(|| not_utf8(tag, msg, at))
    }

    #[inline(always)]
    fn string(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<String> {
        self.str(wt, tag, msg, at).map(String::from)
    }

    #[inline(always)]
    fn uint(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<u64> {
        Self::expect(wt, VARINT, tag, msg, at)?;
        self.varint()
    }

    #[inline(always)]
    fn fixed64(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<u64> {
        Self::expect(wt, I64, tag, msg, at)?;
        let b = self.take(8, tag, msg, at)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    #[inline(always)]
    fn fixed32(&mut self, wt: u8, tag: u32, msg: &str, at: usize) -> Result<u32> {
        Self::expect(wt, I32, tag, msg, at)?;
        let b = self.take(4, tag, msg, at)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    #[inline(always)]
    fn take(&mut self, n: usize, tag: u32, msg: &str, at: usize) -> Result<&'a [u8]> {
        if self.end - self.pos < n {
            return Err(truncated(tag, msg, at));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Opens a nested message field; `ctx` is the containing message's remaining depth.
    #[inline(always)]
    fn message(&mut self, wt: u8, tag: u32, msg: &str, at: usize, ctx: u32) -> Result<Reader<'a>> {
        Self::expect(wt, LEN, tag, msg, at)?;
        if ctx == 0 {
            return Err(depth_error(at));
        }
        self.delimited(tag, msg, at)
    }

    /// Skips an unknown field (as prost's `skip_field`, which also counts depth).
    fn skip(&mut self, wt: u8, tag: u32, ctx: u32, at: usize) -> Result<()> {
        if ctx == 0 {
            return Err(depth_error(at));
        }
        match wt {
            VARINT => {
                self.varint()?;
            }
            I64 => {
                self.take(8, tag, "an unknown field", at)?;
            }
            I32 => {
                self.take(4, tag, "an unknown field", at)?;
            }
            LEN => {
                self.delimited(tag, "an unknown field", at)?;
            }
            START_GROUP => loop {
                let (inner, iwt, iat) = self.key()?;
                if iwt == END_GROUP {
                    if inner != tag {
                        return Err(malformed(format!(
                            "end group {inner} at byte {iat} does not close group {tag} opened at byte {at}"
                        )));
                    }
                    break;
                }
                self.skip(iwt, inner, ctx - 1, iat)?;
            },
            _ => {
                return Err(malformed(format!(
                    "unexpected end group {tag} at byte {at}"
                )))
            }
        }
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn bad_key(key: u64, at: usize) -> DecodeError {
    let wt = key & 7;
    malformed(if key > u64::from(u32::MAX) {
        format!("invalid field key {key} at byte {at}")
    } else if wt > 5 {
        format!("invalid wire type {wt} at byte {at}")
    } else {
        format!("invalid field tag 0 at byte {at}")
    })
}

#[cold]
#[inline(never)]
fn wrong_wire_type(wt: u8, want: u8, tag: u32, msg: &str, at: usize) -> DecodeError {
    malformed(format!(
        "field {tag} of {msg} at byte {at} has wire type {}, expected {}",
        wire_name(wt),
        wire_name(want)
    ))
}

#[cold]
#[inline(never)]
fn too_long(len: u64, left: usize, tag: u32, msg: &str, at: usize) -> DecodeError {
    malformed(format!(
        "field {tag} of {msg} at byte {at} is {len} bytes long but only {left} remain"
    ))
}

#[cold]
#[inline(never)]
fn not_utf8(tag: u32, msg: &str, at: usize) -> DecodeError {
    malformed(format!(
        "field {tag} of {msg} at byte {at} is not valid utf-8"
    ))
}

#[cold]
#[inline(never)]
fn truncated(tag: u32, msg: &str, at: usize) -> DecodeError {
    malformed(format!("field {tag} of {msg} at byte {at} is truncated"))
}

#[cold]
#[inline(never)]
fn depth_error(at: usize) -> DecodeError {
    malformed(format!(
        "messages nested deeper than {RECURSION_LIMIT} levels at byte {at}"
    ))
}

/// Decodes one `ResourceSpans`: first its resource (and other non-span fields), then its spans.
fn resource_spans(
    r: Reader<'_>,
    ctx: u32,
    ri: usize,
    scratch: &mut Vec<KeyValue>,
    out: &mut Decoded,
) -> Result<()> {
    const MSG: &str = "ResourceSpans";
    let mut attributes = Vec::new();
    let mut dropped = 0u32;
    let mut first = r;
    while first.has_more() {
        let (tag, wt, at) = first.key()?;
        match tag {
            1 => {
                let sub = first.message(wt, tag, MSG, at, ctx)?;
                resource(sub, ctx - 1, &mut attributes, &mut dropped)?;
            }
            2 => {
                first.message(wt, tag, MSG, at, ctx)?;
            }
            3 => {
                first.str(wt, tag, MSG, at)?;
            }
            _ => first.skip(wt, tag, ctx, at)?,
        }
    }
    let resource = Arc::new(crate::resource_from_parts(attributes, dropped));
    let mut second = r;
    let mut si = 0usize;
    while second.has_more() {
        let (tag, wt, at) = second.key()?;
        if tag == 2 {
            let sub = second.message(wt, tag, MSG, at, ctx)?;
            scope_spans(sub, ctx - 1, (ri, si), &resource, scratch, out)?;
            si += 1;
        } else {
            second.skip(wt, tag, ctx, at)?;
        }
    }
    Ok(())
}

fn resource(
    mut r: Reader<'_>,
    ctx: u32,
    attributes: &mut Vec<KeyValue>,
    dropped: &mut u32,
) -> Result<()> {
    const MSG: &str = "Resource";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                attributes.push(key_value(sub, ctx - 1)?);
            }
            2 => *dropped = r.uint(wt, tag, MSG, at)? as u32,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(())
}

/// Decodes one `ScopeSpans`: first its scope (counting the spans), then its spans.
fn scope_spans(
    r: Reader<'_>,
    ctx: u32,
    (ri, si): (usize, usize),
    resource: &Arc<spoor_core::Resource>,
    scratch: &mut Vec<KeyValue>,
    out: &mut Decoded,
) -> Result<()> {
    const MSG: &str = "ScopeSpans";
    let mut scope = Scope::default();
    let mut count = 0usize;
    let mut first = r;
    while first.has_more() {
        let (tag, wt, at) = first.key()?;
        match tag {
            1 => {
                let sub = first.message(wt, tag, MSG, at, ctx)?;
                instrumentation_scope(sub, ctx - 1, &mut scope)?;
            }
            2 => {
                first.message(wt, tag, MSG, at, ctx)?;
                count += 1;
            }
            3 => {
                first.str(wt, tag, MSG, at)?;
            }
            _ => first.skip(wt, tag, ctx, at)?,
        }
    }
    let scope = Arc::new(scope);
    out.spans.reserve(count);
    let mut second = r;
    let mut pi = 0usize;
    while second.has_more() {
        let (tag, wt, at) = second.key()?;
        if tag == 2 {
            let sub = second.message(wt, tag, MSG, at, ctx)?;
            span(sub, ctx - 1, (ri, si, pi), resource, &scope, scratch, out)?;
            pi += 1;
        } else {
            second.skip(wt, tag, ctx, at)?;
        }
    }
    Ok(())
}

fn instrumentation_scope(mut r: Reader<'_>, ctx: u32, scope: &mut Scope) -> Result<()> {
    const MSG: &str = "InstrumentationScope";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => scope.name = r.string(wt, tag, MSG, at)?,
            2 => scope.version = r.string(wt, tag, MSG, at)?,
            3 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                scope.attributes.push(key_value(sub, ctx - 1)?);
            }
            4 => scope.dropped_attributes_count = r.uint(wt, tag, MSG, at)? as u32,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(())
}

/// Decodes one span and appends it to `out` (or counts it as rejected).
fn span(
    mut r: Reader<'_>,
    ctx: u32,
    (ri, si, pi): (usize, usize, usize),
    resource: &Arc<spoor_core::Resource>,
    scope: &Arc<Scope>,
    attributes: &mut Vec<KeyValue>,
    out: &mut Decoded,
) -> Result<()> {
    const MSG: &str = "Span";
    attributes.clear();
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut parent: &[u8] = &[];
    let mut trace_state = String::new();
    let mut name = String::new();
    let mut flags = 0u32;
    let mut kind = 0i32;
    let mut start = 0u64;
    let mut end = 0u64;
    let mut events = Vec::new();
    let mut links = Vec::new();
    let mut warnings = Vec::new();
    let mut link_index = 0usize;
    let mut dropped_attributes_count = 0u32;
    let mut dropped_events_count = 0u32;
    let mut dropped_links_count = 0u32;
    let mut status_code = 0i32;
    let mut status_message = String::new();
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => trace_id = r.bytes(wt, tag, MSG, at)?,
            2 => span_id = r.bytes(wt, tag, MSG, at)?,
            3 => trace_state = r.string(wt, tag, MSG, at)?,
            4 => parent = r.bytes(wt, tag, MSG, at)?,
            5 => name = r.string(wt, tag, MSG, at)?,
            6 => kind = r.uint(wt, tag, MSG, at)? as i32,
            7 => start = r.fixed64(wt, tag, MSG, at)?,
            8 => end = r.fixed64(wt, tag, MSG, at)?,
            9 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                attributes.push(key_value(sub, ctx - 1)?);
            }
            10 => dropped_attributes_count = r.uint(wt, tag, MSG, at)? as u32,
            11 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                events.push(event(sub, ctx - 1)?);
            }
            12 => dropped_events_count = r.uint(wt, tag, MSG, at)? as u32,
            13 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                match link(sub, ctx - 1)? {
                    Ok(l) => links.push(l),
                    Err(e) => warnings.push(format!("link {link_index} dropped: {e}")),
                }
                link_index += 1;
            }
            14 => dropped_links_count = r.uint(wt, tag, MSG, at)? as u32,
            15 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                status(sub, ctx - 1, &mut status_code, &mut status_message)?;
            }
            16 => flags = r.fixed32(wt, tag, MSG, at)?,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    let ids = crate::trace_id(trace_id, "trace_id").and_then(|t| {
        let s = crate::span_id(span_id, "span_id")?;
        let p = match parent.len() {
            0 => None,
            8 => Some(SpanId::from_slice(parent).unwrap_or_default()).filter(|p| !p.is_zero()),
            n => return Err(format!("parent_span_id is {n} bytes, expected 0 or 8")),
        };
        Ok((t, s, p))
    });
    let (trace_id, span_id, parent_span_id) = match ids {
        Ok(ids) => ids,
        Err(p) => {
            out.rejected += 1;
            out.problems.push(format!(
                "resource_spans[{ri}].scope_spans[{si}].spans[{pi}]: {p}"
            ));
            return Ok(());
        }
    };
    for w in &warnings {
        out.problems.push(format!(
            "resource_spans[{ri}].scope_spans[{si}].spans[{pi}]: {w}"
        ));
    }
    // Collected in a reused buffer, so the span's own list is allocated once, exactly.
    let mut span_attributes = Vec::with_capacity(attributes.len());
    span_attributes.append(attributes);
    let duration = i128::from(end) - i128::from(start);
    let duration_nanos =
        i64::try_from(duration).unwrap_or(if duration < 0 { i64::MIN } else { i64::MAX });
    out.spans.push(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        flags,
        name,
        kind: SpanKind::from_otlp(kind),
        start_unix_nanos: start,
        duration_nanos,
        status: Status {
            code: StatusCode::from_otlp(status_code),
            message: status_message,
        },
        attributes: span_attributes,
        events,
        links,
        dropped_attributes_count,
        dropped_events_count,
        dropped_links_count,
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        warnings,
    });
    Ok(())
}

fn status(mut r: Reader<'_>, ctx: u32, code: &mut i32, message: &mut String) -> Result<()> {
    const MSG: &str = "Status";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            2 => *message = r.string(wt, tag, MSG, at)?,
            3 => *code = r.uint(wt, tag, MSG, at)? as i32,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(())
}

fn event(mut r: Reader<'_>, ctx: u32) -> Result<Event> {
    const MSG: &str = "Span.Event";
    let mut e = Event::default();
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => e.time_unix_nanos = r.fixed64(wt, tag, MSG, at)?,
            2 => e.name = r.string(wt, tag, MSG, at)?,
            3 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                e.attributes.push(key_value(sub, ctx - 1)?);
            }
            4 => e.dropped_attributes_count = r.uint(wt, tag, MSG, at)? as u32,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(e)
}

/// Decodes a link; the inner `Err` says why its ids make it unusable.
fn link(mut r: Reader<'_>, ctx: u32) -> Result<std::result::Result<Link, String>> {
    const MSG: &str = "Span.Link";
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut l = Link::default();
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => trace_id = r.bytes(wt, tag, MSG, at)?,
            2 => span_id = r.bytes(wt, tag, MSG, at)?,
            3 => l.trace_state = r.string(wt, tag, MSG, at)?,
            4 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                l.attributes.push(key_value(sub, ctx - 1)?);
            }
            5 => l.dropped_attributes_count = r.uint(wt, tag, MSG, at)? as u32,
            6 => l.flags = r.fixed32(wt, tag, MSG, at)?,
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    let t = crate::trace_id(trace_id, "trace_id");
    let s = crate::span_id(span_id, "span_id");
    Ok(match (t, s) {
        (Ok(t), Ok(s)) => {
            l.trace_id = t;
            l.span_id = s;
            Ok(l)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    })
}

fn key_value(mut r: Reader<'_>, ctx: u32) -> Result<KeyValue> {
    const MSG: &str = "KeyValue";
    let mut key = String::new();
    let mut value = None;
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => key = r.string(wt, tag, MSG, at)?,
            2 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                any_value(sub, ctx - 1, &mut value)?;
            }
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(KeyValue {
        key,
        value: value.unwrap_or_default(),
    })
}

/// Merges an `AnyValue` message into `value` (`None` is the empty value), as prost merges a
/// oneof: scalars replace, a repeated array or kvlist variant extends the one already there.
fn any_value(mut r: Reader<'_>, ctx: u32, value: &mut Option<AnyValue>) -> Result<()> {
    const MSG: &str = "AnyValue";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        match tag {
            1 => *value = Some(AnyValue::Str(r.string(wt, tag, MSG, at)?)),
            2 => *value = Some(AnyValue::Bool(r.uint(wt, tag, MSG, at)? != 0)),
            3 => *value = Some(AnyValue::Int(r.uint(wt, tag, MSG, at)? as i64)),
            4 => {
                *value = Some(AnyValue::Double(f64::from_bits(
                    r.fixed64(wt, tag, MSG, at)?,
                )))
            }
            5 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                if let Some(AnyValue::Array(items)) = value {
                    array_value(sub, ctx - 1, items)?;
                } else {
                    let mut items = Vec::new();
                    array_value(sub, ctx - 1, &mut items)?;
                    *value = Some(AnyValue::Array(items));
                }
            }
            6 => {
                let sub = r.message(wt, tag, MSG, at, ctx)?;
                if let Some(AnyValue::Map(entries)) = value {
                    kv_list(sub, ctx - 1, entries)?;
                } else {
                    let mut entries = Vec::new();
                    kv_list(sub, ctx - 1, &mut entries)?;
                    *value = Some(AnyValue::Map(entries));
                }
            }
            7 => *value = Some(AnyValue::Bytes(r.bytes(wt, tag, MSG, at)?.to_vec())),
            _ => r.skip(wt, tag, ctx, at)?,
        }
    }
    Ok(())
}

fn array_value(mut r: Reader<'_>, ctx: u32, items: &mut Vec<AnyValue>) -> Result<()> {
    const MSG: &str = "ArrayValue";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        if tag == 1 {
            let sub = r.message(wt, tag, MSG, at, ctx)?;
            let mut v = None;
            any_value(sub, ctx - 1, &mut v)?;
            items.push(v.unwrap_or_default());
        } else {
            r.skip(wt, tag, ctx, at)?;
        }
    }
    Ok(())
}

fn kv_list(mut r: Reader<'_>, ctx: u32, entries: &mut Vec<KeyValue>) -> Result<()> {
    const MSG: &str = "KeyValueList";
    while r.has_more() {
        let (tag, wt, at) = r.key()?;
        if tag == 1 {
            let sub = r.message(wt, tag, MSG, at, ctx)?;
            entries.push(key_value(sub, ctx - 1)?);
        } else {
            r.skip(wt, tag, ctx, at)?;
        }
    }
    Ok(())
}

/// `b` as text if it is UTF-8. Most strings in spans (attribute keys, short values, names) are
/// ASCII, and `[u8]::is_ascii` checks them a word at a time with unaligned loads, where
/// `str::from_utf8` walks a short string that does not start on a word boundary byte by byte
/// (it was ~1,800 instructions per span of the generator's, 13% of decoding, counted with
/// callgrind). Anything else gets the full check.
#[inline(always)]
fn utf8(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        #[allow(unsafe_code)]
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).ok()
}

#[cfg(test)]
mod utf8_tests {
    use super::utf8;

    #[test]
    fn agrees_with_from_utf8_at_every_length_and_offset() {
        let text = "http.route /api/v1/users/{id} — grüße 東京 ok".as_bytes();
        for start in 0..text.len() {
            for end in start..=text.len() {
                let b = &text[start..end];
                assert_eq!(utf8(b), std::str::from_utf8(b).ok(), "{start}..{end}");
            }
        }
        // a high byte in the last word, in the first word, and alone
        for bad in [&b"abcdefgh\xff"[..], b"\x80abcdefghijklmnop", b"\xc3"] {
            assert_eq!(utf8(bad), None);
        }
    }
}
