//! Trace-context propagation headers: parsing and formatting of W3C `traceparent` /
//! `tracestate`, B3 single (`b3`) and multi (`X-B3-*`), and Jaeger `uber-trace-id`.
//!
//! Follows the W3C Trace Context recommendation (version `00`; a higher version is parsed by its
//! first 55 characters when the next one is `-` or the value ends there, `ff` is invalid),
//! openzipkin/b3-propagation, and Jaeger's client wire format. Every parser is total: any input
//! gives a value or a [`PropagationError`] naming the header and the bad value, never a panic.
//! Formatting always writes the canonical form (W3C version `00`, lowercase hex).
//!
//! [`PROPAGATION_VECTORS`], [`TRACESTATE_VECTORS`] and [`B3_MULTI_VECTORS`] are shared test
//! tables: every target that embeds this logic (daemon, wasm, edge worker) runs the same rows.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::model::{SpanId, TraceId};

/// `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";
/// B3 single header name.
pub const B3_SINGLE: &str = "b3";
/// B3 multi header names, in the order of [`B3Multi`]'s fields.
pub const B3_TRACE_ID: &str = "x-b3-traceid";
/// B3 multi span id header.
pub const B3_SPAN_ID: &str = "x-b3-spanid";
/// B3 multi parent span id header.
pub const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// B3 multi sampling decision header.
pub const B3_SAMPLED: &str = "x-b3-sampled";
/// B3 multi debug flag header.
pub const B3_FLAGS: &str = "x-b3-flags";
/// Jaeger header name.
pub const UBER_TRACE_ID: &str = "uber-trace-id";

/// Largest number of `tracestate` list members.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Longest piece of a bad header value quoted in an error message.
const QUOTE_MAX: usize = 64;

/// W3C trace flag: the caller may have recorded the trace.
pub const FLAG_SAMPLED: u8 = 0x01;
/// Jaeger flag: debug (forces sampling).
pub const JAEGER_FLAG_DEBUG: u8 = 0x02;

/// Why a propagation header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropagationError {
    /// The header value is empty (or only blanks).
    Empty {
        /// The header.
        header: &'static str,
    },
    /// The value does not have the header's shape (field count, separators, length).
    Malformed {
        /// The header.
        header: &'static str,
        /// The value, cut to 64 characters.
        value: String,
    },
    /// One field has the wrong length or characters.
    Field {
        /// The header.
        header: &'static str,
        /// Which field ("trace id", "span id", "flags", …).
        field: &'static str,
        /// The field's text, cut to 64 characters.
        value: String,
        /// What was expected, e.g. "32 lowercase hex digits".
        expected: &'static str,
    },
    /// An id is all zeros, which every format reserves as invalid.
    ZeroId {
        /// The header.
        header: &'static str,
        /// Which id.
        field: &'static str,
    },
    /// A header that must not appear without another one (B3 multi span id without trace id, …).
    Missing {
        /// The header that was required.
        header: &'static str,
    },
    /// `tracestate` has more than [`MAX_TRACESTATE_MEMBERS`] members.
    TooManyMembers(usize),
    /// A `tracestate` member has a key that breaks the key grammar.
    StateKey(String),
    /// A `tracestate` member has a value that breaks the value grammar.
    StateValue {
        /// The member's key.
        key: String,
        /// The value, cut to 64 characters.
        value: String,
    },
    /// A `tracestate` member has no `=`.
    StateMember(String),
    /// A `tracestate` key appears twice.
    DuplicateKey(String),
}

impl fmt::Display for PropagationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropagationError::Empty { header } => write!(f, "{header} header is empty"),
            PropagationError::Malformed { header, value } => {
                write!(f, "{header} header {value:?} is malformed")
            }
            PropagationError::Field {
                header,
                field,
                value,
                expected,
            } => write!(f, "{header} {field} {value:?} is not {expected}"),
            PropagationError::ZeroId { header, field } => {
                write!(f, "{header} {field} is all zeros")
            }
            PropagationError::Missing { header } => write!(f, "{header} header is missing"),
            PropagationError::TooManyMembers(n) => write!(
                f,
                "tracestate has {n} members, more than {MAX_TRACESTATE_MEMBERS}"
            ),
            PropagationError::StateKey(k) => write!(f, "tracestate key {k:?} is invalid"),
            PropagationError::StateValue { key, value } => {
                write!(f, "tracestate value {value:?} of key {key:?} is invalid")
            }
            PropagationError::StateMember(m) => {
                write!(f, "tracestate member {m:?} has no '='")
            }
            PropagationError::DuplicateKey(k) => write!(f, "tracestate key {k:?} appears twice"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PropagationError {}

/// At most [`QUOTE_MAX`] characters of `s`, cut on a character boundary.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => String::from(&s[..i]),
        None => String::from(s),
    }
}

fn malformed(header: &'static str, value: &str) -> PropagationError {
    PropagationError::Malformed {
        header,
        value: quote(value),
    }
}

fn field(
    header: &'static str,
    name: &'static str,
    value: &str,
    expected: &'static str,
) -> PropagationError {
    PropagationError::Field {
        header,
        field: name,
        value: quote(value),
        expected,
    }
}

fn hex_digit(b: u8, upper_ok: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if upper_ok => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads `s` as hex of length in `min..=max` (`upper_ok` allows `A-F`).
fn hex(s: &str, min: usize, max: usize, upper_ok: bool) -> Option<u128> {
    if s.len() < min || s.len() > max || max > 32 {
        return None;
    }
    let mut v: u128 = 0;
    for b in s.bytes() {
        v = (v << 4) | u128::from(hex_digit(b, upper_ok)?);
    }
    Some(v)
}

/// A trace context as every format carries it: the ids and the sampling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace id (a 64-bit B3 or Jaeger id has zero high bits).
    pub trace_id: TraceId,
    /// The caller's span id (W3C calls it parent-id).
    pub span_id: SpanId,
    /// The caller's parent span id, when the format carries one (B3, Jaeger).
    pub parent_span_id: Option<SpanId>,
    /// The sampling decision: `None` when deferred to the receiver.
    pub sampled: Option<bool>,
    /// Debug: the trace must be kept (B3 `d` / `X-B3-Flags: 1`, Jaeger flag 2). Implies sampled.
    pub debug: bool,
}

/// A parsed `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The version read (formatting always writes `00`).
    pub version: u8,
    /// The trace id.
    pub trace_id: TraceId,
    /// The caller's span id.
    pub parent_id: SpanId,
    /// The 8 trace flags; bit 0 is [`FLAG_SAMPLED`]. Unknown bits are kept as read.
    pub flags: u8,
}

impl TraceParent {
    /// Whether the caller may have recorded the trace.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// As a format-independent context.
    pub fn context(&self) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: self.parent_id,
            parent_span_id: None,
            sampled: Some(self.sampled()),
            debug: false,
        }
    }
}

/// Parses a `traceparent` value (`00-{32 hex}-{16 hex}-{2 hex}`, lowercase only).
pub fn parse_traceparent(value: &str) -> Result<TraceParent, PropagationError> {
    const H: &str = TRACEPARENT;
    let v = value.trim_matches(|c| c == ' ' || c == '\t');
    if v.is_empty() {
        return Err(PropagationError::Empty { header: H });
    }
    let b = v.as_bytes();
    let version = match (b.len() >= 3 && b[2] == b'-').then(|| hex(&v[..2], 2, 2, false)) {
        Some(Some(n)) => n as u8,
        Some(None) => return Err(field(H, "version", &v[..2], "2 lowercase hex digits")),
        None => return Err(malformed(H, v)),
    };
    if version == 0xff {
        return Err(field(
            H,
            "version",
            "ff",
            "a valid version (ff is forbidden)",
        ));
    }
    // Version 00 is exactly 55 characters; a higher version may append `-`-prefixed fields.
    let fits = if version == 0 {
        b.len() == 55
    } else {
        b.len() == 55 || (b.len() > 55 && b[55] == b'-')
    };
    if !fits || b[35] != b'-' || b[52] != b'-' {
        return Err(malformed(H, v));
    }
    let trace = &v[3..35];
    let parent = &v[36..52];
    let flags = &v[53..55];
    let trace_id = hex(trace, 32, 32, false)
        .map(TraceId)
        .ok_or_else(|| field(H, "trace id", trace, "32 lowercase hex digits"))?;
    let parent_id = hex(parent, 16, 16, false)
        .map(|n| SpanId(n as u64))
        .ok_or_else(|| field(H, "parent id", parent, "16 lowercase hex digits"))?;
    let flags = hex(flags, 2, 2, false)
        .map(|n| n as u8)
        .ok_or_else(|| field(H, "flags", flags, "2 lowercase hex digits"))?;
    if trace_id.is_zero() {
        return Err(PropagationError::ZeroId {
            header: H,
            field: "trace id",
        });
    }
    if parent_id.is_zero() {
        return Err(PropagationError::ZeroId {
            header: H,
            field: "parent id",
        });
    }
    Ok(TraceParent {
        version,
        trace_id,
        parent_id,
        flags,
    })
}

/// Formats a `traceparent` at version `00`, with the flags as read (a version-00 receiver
/// ignores the bits it does not know).
pub fn format_traceparent(tp: &TraceParent) -> String {
    format!(
        "00-{}-{}-{:02x}",
        tp.trace_id.to_hex().as_str(),
        tp.parent_id.to_hex().as_str(),
        tp.flags
    )
}

/// `traceparent` for a context from any format (sampled flag from `sampled`/`debug`).
pub fn context_to_traceparent(ctx: &SpanContext) -> String {
    let sampled = ctx.debug || ctx.sampled == Some(true);
    format_traceparent(&TraceParent {
        version: 0,
        trace_id: ctx.trace_id,
        parent_id: ctx.span_id,
        flags: if sampled { FLAG_SAMPLED } else { 0 },
    })
}

/// A parsed `tracestate`: list members in order, keys unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    /// `(key, value)` pairs, leftmost (most recently updated) first.
    pub members: Vec<(String, String)>,
}

impl TraceState {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// `simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, or
/// `tenant-id "@" system-id` with a 1-241 character tenant (starting with lcalpha or DIGIT) and a
/// 1-14 character system id (starting with lcalpha).
fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    match k.split_once('@') {
        None => {
            !b.is_empty()
                && b.len() <= 256
                && b[0].is_ascii_lowercase()
                && b.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            !t.is_empty()
                && t.len() <= 241
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| key_char(c))
                && !s.is_empty()
                && s.len() <= 14
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| key_char(c))
        }
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII except `,` and `=`, spaces only inside.
fn valid_value(v: &str) -> bool {
    let b = v.as_bytes();
    let nblk = |c: u8| (0x21..=0x7e).contains(&c) && c != b',' && c != b'=';
    !b.is_empty()
        && b.len() <= 256
        && nblk(b[b.len() - 1])
        && b.iter().all(|&c| c == b' ' || nblk(c))
}

/// Parses a `tracestate` value. Empty list members (`a=1,,b=2`) and blanks around members are
/// allowed; more than 32 members, a bad key or value, or a duplicate key refuse the whole header.
pub fn parse_tracestate(value: &str) -> Result<TraceState, PropagationError> {
    let mut members: Vec<(String, String)> = Vec::new();
    for raw in value.split(',') {
        let m = raw.trim_matches(|c| c == ' ' || c == '\t');
        if m.is_empty() {
            continue;
        }
        if members.len() == MAX_TRACESTATE_MEMBERS {
            let n = value
                .split(',')
                .filter(|m| !m.trim_matches(|c| c == ' ' || c == '\t').is_empty())
                .count();
            return Err(PropagationError::TooManyMembers(n));
        }
        let (k, v) = m
            .split_once('=')
            .ok_or_else(|| PropagationError::StateMember(quote(m)))?;
        if !valid_key(k) {
            return Err(PropagationError::StateKey(quote(k)));
        }
        if !valid_value(v) {
            return Err(PropagationError::StateValue {
                key: String::from(k),
                value: quote(v),
            });
        }
        if members.iter().any(|(seen, _)| seen == k) {
            return Err(PropagationError::DuplicateKey(String::from(k)));
        }
        members.push((String::from(k), String::from(v)));
    }
    Ok(TraceState { members })
}

/// Formats a trace state as `k1=v1,k2=v2` (no blanks).
pub fn format_tracestate(ts: &TraceState) -> String {
    let mut out = String::new();
    for (i, (k, v)) in ts.members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn b3_trace_id(header: &'static str, s: &str) -> Result<TraceId, PropagationError> {
    if s.len() != 16 && s.len() != 32 {
        return Err(field(
            header,
            "trace id",
            s,
            "16 or 32 lowercase hex digits",
        ));
    }
    let id = hex(s, 16, 32, false)
        .map(TraceId)
        .ok_or_else(|| field(header, "trace id", s, "16 or 32 lowercase hex digits"))?;
    if id.is_zero() {
        return Err(PropagationError::ZeroId {
            header,
            field: "trace id",
        });
    }
    Ok(id)
}

fn b3_span_id(
    header: &'static str,
    name: &'static str,
    s: &str,
) -> Result<SpanId, PropagationError> {
    let id = hex(s, 16, 16, false)
        .map(|n| SpanId(n as u64))
        .ok_or_else(|| field(header, name, s, "16 lowercase hex digits"))?;
    if id.is_zero() {
        return Err(PropagationError::ZeroId {
            header,
            field: name,
        });
    }
    Ok(id)
}

/// What a B3 header carries: a full context, or only a sampling decision (`b3: 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3 {
    /// Ids and (maybe) a decision.
    Context(SpanContext),
    /// Only a decision: `sampled` false for `0`, true for `1`; `debug` for `d`.
    DecisionOnly {
        /// The decision.
        sampled: bool,
        /// Debug (implies sampled).
        debug: bool,
    },
}

impl B3 {
    /// The context, when ids were sent.
    pub fn context(&self) -> Option<SpanContext> {
        match self {
            B3::Context(c) => Some(*c),
            B3::DecisionOnly { .. } => None,
        }
    }
}

/// `0`, `1` or `d` -> (sampled, debug).
fn b3_state(s: &str) -> Option<(bool, bool)> {
    match s {
        "0" => Some((false, false)),
        "1" => Some((true, false)),
        "d" => Some((true, true)),
        _ => None,
    }
}

/// Parses a B3 single header: `{trace}-{span}[-{0|1|d}[-{parent}]]`, or only `0`, `1` or `d`.
pub fn parse_b3_single(value: &str) -> Result<B3, PropagationError> {
    const H: &str = B3_SINGLE;
    let v = value.trim_matches(|c| c == ' ' || c == '\t');
    if v.is_empty() {
        return Err(PropagationError::Empty { header: H });
    }
    if let Some((sampled, debug)) = b3_state(v) {
        return Ok(B3::DecisionOnly { sampled, debug });
    }
    let mut parts = v.split('-');
    let (trace, span) = match (parts.next(), parts.next()) {
        (Some(t), Some(s)) => (t, s),
        _ => return Err(malformed(H, v)),
    };
    let state = parts.next();
    let parent = parts.next();
    if parts.next().is_some() {
        return Err(malformed(H, v));
    }
    let trace_id = b3_trace_id(H, trace)?;
    let span_id = b3_span_id(H, "span id", span)?;
    let (sampled, debug) = match state {
        None => (None, false),
        Some(s) => match b3_state(s) {
            Some((sampled, debug)) => (Some(sampled), debug),
            None => return Err(field(H, "sampling state", s, "0, 1 or d")),
        },
    };
    let parent_span_id = parent
        .map(|p| b3_span_id(H, "parent span id", p))
        .transpose()?;
    Ok(B3::Context(SpanContext {
        trace_id,
        span_id,
        parent_span_id,
        sampled,
        debug,
    }))
}

fn b3_trace_hex(id: TraceId) -> String {
    if id.high() == 0 {
        format!("{:016x}", id.low())
    } else {
        String::from(id.to_hex().as_str())
    }
}

fn b3_state_str(sampled: Option<bool>, debug: bool) -> Option<&'static str> {
    match (debug, sampled) {
        (true, _) => Some("d"),
        (false, Some(true)) => Some("1"),
        (false, Some(false)) => Some("0"),
        (false, None) => None,
    }
}

/// Formats a B3 single header. A 64-bit trace id (zero high bits) is written as 16 digits. A
/// parent span id needs a sampling state before it, so without a decision it is left out.
pub fn format_b3_single(b3: &B3) -> String {
    match b3 {
        B3::DecisionOnly { sampled, debug } => {
            String::from(b3_state_str(Some(*sampled), *debug).unwrap_or("0"))
        }
        B3::Context(c) => {
            let mut out = format!(
                "{}-{}",
                b3_trace_hex(c.trace_id),
                c.span_id.to_hex().as_str()
            );
            if let Some(state) = b3_state_str(c.sampled, c.debug) {
                out.push('-');
                out.push_str(state);
                if let Some(p) = c.parent_span_id {
                    out.push('-');
                    out.push_str(p.to_hex().as_str());
                }
            }
            out
        }
    }
}

/// The five B3 multi header values of a request (`None` when absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct B3Multi<'a> {
    /// `X-B3-TraceId`.
    pub trace_id: Option<&'a str>,
    /// `X-B3-SpanId`.
    pub span_id: Option<&'a str>,
    /// `X-B3-ParentSpanId`.
    pub parent_span_id: Option<&'a str>,
    /// `X-B3-Sampled`.
    pub sampled: Option<&'a str>,
    /// `X-B3-Flags`.
    pub flags: Option<&'a str>,
}

/// Parses B3 multi headers. `Ok(None)` when none is present. `X-B3-Sampled` accepts `1`/`0`
/// and, as the B3 specification asks of receivers, the legacy `true`/`false`; `X-B3-Flags: 1`
/// is debug. Trace and span id must come together; a parent needs both.
pub fn parse_b3_multi(h: &B3Multi<'_>) -> Result<Option<B3>, PropagationError> {
    fn trim(o: Option<&str>) -> Option<&str> {
        o.map(|s| s.trim_matches(|c| c == ' ' || c == '\t'))
    }
    let (trace, span, parent) = (trim(h.trace_id), trim(h.span_id), trim(h.parent_span_id));
    let sampled = match trim(h.sampled) {
        None => None,
        Some("1") | Some("true") => Some(true),
        Some("0") | Some("false") => Some(false),
        Some(s) => return Err(field(B3_SAMPLED, "value", s, "1, 0, true or false")),
    };
    let debug = match trim(h.flags) {
        None | Some("0") => false,
        Some("1") => true,
        Some(s) => return Err(field(B3_FLAGS, "value", s, "1 or 0")),
    };
    let (trace, span) = match (trace, span) {
        (Some(t), Some(s)) => (t, s),
        (None, None) if parent.is_none() => {
            return Ok(match (sampled, debug) {
                (None, false) => None,
                (s, d) => Some(B3::DecisionOnly {
                    sampled: d || s.unwrap_or(false),
                    debug: d,
                }),
            });
        }
        (None, _) => {
            return Err(PropagationError::Missing {
                header: B3_TRACE_ID,
            })
        }
        (Some(_), None) => return Err(PropagationError::Missing { header: B3_SPAN_ID }),
    };
    let trace_id = b3_trace_id(B3_TRACE_ID, trace)?;
    let span_id = b3_span_id(B3_SPAN_ID, "span id", span)?;
    let parent_span_id = parent
        .map(|p| b3_span_id(B3_PARENT_SPAN_ID, "parent span id", p))
        .transpose()?;
    Ok(Some(B3::Context(SpanContext {
        trace_id,
        span_id,
        parent_span_id,
        sampled: if debug { Some(true) } else { sampled },
        debug,
    })))
}

/// Formats B3 multi headers as `(lowercase name, value)` pairs; debug is sent as `X-B3-Flags: 1`
/// without `X-B3-Sampled` (debug implies it).
pub fn format_b3_multi(b3: &B3) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let (sampled, debug) = match b3 {
        B3::DecisionOnly { sampled, debug } => (Some(*sampled), *debug),
        B3::Context(c) => {
            out.push((B3_TRACE_ID, b3_trace_hex(c.trace_id)));
            out.push((B3_SPAN_ID, String::from(c.span_id.to_hex().as_str())));
            if let Some(p) = c.parent_span_id {
                out.push((B3_PARENT_SPAN_ID, String::from(p.to_hex().as_str())));
            }
            (c.sampled, c.debug)
        }
    };
    if debug {
        out.push((B3_FLAGS, String::from("1")));
    } else if let Some(s) = sampled {
        out.push((B3_SAMPLED, String::from(if s { "1" } else { "0" })));
    }
    out
}

/// A parsed `uber-trace-id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JaegerContext {
    /// The ids and decision (`sampled` is always `Some`: flag bit 0).
    pub context: SpanContext,
    /// The flags byte as sent (1 sampled, 2 debug, 8 firehose).
    pub flags: u8,
}

/// Parses `uber-trace-id`: `{trace}:{span}:{parent}:{flags}`, hex of any case with leading zeros
/// optional (trace 1-32 digits, span and parent 1-16, flags 1-2), parent `0` meaning none. The
/// URL-encoded form with `%3A` separators is accepted too.
pub fn parse_uber_trace_id(value: &str) -> Result<JaegerContext, PropagationError> {
    const H: &str = UBER_TRACE_ID;
    let v = value.trim_matches(|c| c == ' ' || c == '\t');
    if v.is_empty() {
        return Err(PropagationError::Empty { header: H });
    }
    let decoded;
    let v = if v.contains('%') {
        decoded = v.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        v
    };
    let mut parts = v.split(':');
    let (trace, span, parent, flags) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(t), Some(s), Some(p), Some(f), None) => (t, s, p, f),
        _ => return Err(malformed(H, v)),
    };
    let trace_id = hex(trace, 1, 32, true)
        .map(TraceId)
        .ok_or_else(|| field(H, "trace id", trace, "1 to 32 hex digits"))?;
    let span_id = hex(span, 1, 16, true)
        .map(|n| SpanId(n as u64))
        .ok_or_else(|| field(H, "span id", span, "1 to 16 hex digits"))?;
    let parent = hex(parent, 1, 16, true)
        .map(|n| SpanId(n as u64))
        .ok_or_else(|| field(H, "parent span id", parent, "1 to 16 hex digits"))?;
    let flags = hex(flags, 1, 2, true)
        .map(|n| n as u8)
        .ok_or_else(|| field(H, "flags", flags, "1 or 2 hex digits"))?;
    if trace_id.is_zero() {
        return Err(PropagationError::ZeroId {
            header: H,
            field: "trace id",
        });
    }
    if span_id.is_zero() {
        return Err(PropagationError::ZeroId {
            header: H,
            field: "span id",
        });
    }
    let debug = flags & JAEGER_FLAG_DEBUG != 0;
    Ok(JaegerContext {
        context: SpanContext {
            trace_id,
            span_id,
            parent_span_id: (!parent.is_zero()).then_some(parent),
            sampled: Some(flags & FLAG_SAMPLED != 0),
            debug,
        },
        flags,
    })
}

/// Formats `uber-trace-id` as Jaeger clients do: a 64-bit trace id as 16 digits, a 128-bit one as
/// 32, the span id as 16, parent `0` when none, flags in hex without padding.
pub fn format_uber_trace_id(j: &JaegerContext) -> String {
    let c = &j.context;
    let parent = match c.parent_span_id {
        Some(p) => String::from(p.to_hex().as_str()),
        None => String::from("0"),
    };
    format!(
        "{}:{}:{}:{:x}",
        b3_trace_hex(c.trace_id),
        c.span_id.to_hex().as_str(),
        parent,
        j.flags
    )
}

/// Which single-value header a [`PropagationVector`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// W3C `traceparent`.
    TraceParent,
    /// B3 single `b3`.
    B3Single,
    /// Jaeger `uber-trace-id`.
    UberTraceId,
}

/// The expected outcome of a vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expect {
    /// Parses to this context and formats back to `canonical`.
    Ok {
        /// Trace id.
        trace_id: u128,
        /// Span id.
        span_id: u64,
        /// Parent span id, 0 for none.
        parent_span_id: u64,
        /// Decision.
        sampled: Option<bool>,
        /// Debug.
        debug: bool,
        /// What the formatter writes for the parsed value.
        canonical: &'static str,
    },
    /// B3 decision only (`b3: 0` / `1` / `d`), formatting back to `canonical`.
    Decision {
        /// The decision.
        sampled: bool,
        /// Debug.
        debug: bool,
        /// What the formatter writes.
        canonical: &'static str,
    },
    /// Refused with exactly this message.
    Err(&'static str),
}

/// One row of the shared propagation table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PropagationVector {
    /// The header.
    pub format: Format,
    /// The header value.
    pub input: &'static str,
    /// What parsing gives.
    pub expect: Expect,
}

const fn ok(
    format: Format,
    input: &'static str,
    ids: (u128, u64, u64),
    sampled: Option<bool>,
    debug: bool,
    canonical: &'static str,
) -> PropagationVector {
    PropagationVector {
        format,
        input,
        expect: Expect::Ok {
            trace_id: ids.0,
            span_id: ids.1,
            parent_span_id: ids.2,
            sampled,
            debug,
            canonical,
        },
    }
}

const fn err(format: Format, input: &'static str, message: &'static str) -> PropagationVector {
    PropagationVector {
        format,
        input,
        expect: Expect::Err(message),
    }
}

const fn decision(input: &'static str, sampled: bool, debug: bool) -> PropagationVector {
    PropagationVector {
        format: Format::B3Single,
        input,
        expect: Expect::Decision {
            sampled,
            debug,
            canonical: input,
        },
    }
}

const W3C_TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const W3C_SPAN: u64 = 0x00f067aa0ba902b7;
const B3_TRACE: u128 = 0x80f198ee56343ba864fe8b2a57d3eff7;
const B3_SPAN: u64 = 0xe457b5a2e4d86bd1;
const B3_PARENT: u64 = 0x05e3ac9a4f6e3b90;

const W: Format = Format::TraceParent;
const B: Format = Format::B3Single;
const J: Format = Format::UberTraceId;

/// The table every target runs for `traceparent`, `b3` and `uber-trace-id`.
#[rustfmt::skip]
pub const PROPAGATION_VECTORS: &[PropagationVector] = &[
    // W3C: the specification's examples, sampled and not.
    ok(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", (W3C_TRACE, W3C_SPAN, 0), Some(true), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ok(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", (W3C_TRACE, W3C_SPAN, 0), Some(false), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    // Unknown flag bits are kept; only bit 0 is the decision.
    ok(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", (W3C_TRACE, W3C_SPAN, 0), Some(false), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"),
    // Surrounding blanks are optional whitespace.
    ok(W, " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t", (W3C_TRACE, W3C_SPAN, 0), Some(true), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    // A future version: the first 55 characters are read, extra fields after '-' ignored, and it
    // is re-sent as version 00.
    ok(W, "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
        (W3C_TRACE, W3C_SPAN, 0), Some(true), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ok(W, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", (W3C_TRACE, W3C_SPAN, 0), Some(true), false,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"),
    err(W, "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what",
        "traceparent header \"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what\" is malformed"),
    // Version 00 must be exactly 55 characters.
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "traceparent header \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra\" is malformed"),
    err(W, "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "traceparent version \"ff\" is not a valid version (ff is forbidden)"),
    err(W, "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "traceparent version \"0g\" is not 2 lowercase hex digits"),
    err(W, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "traceparent trace id is all zeros"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "traceparent parent id is all zeros"),
    err(W, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "traceparent trace id \"4BF92F3577B34DA6A3CE929D0E0E4736\" is not 32 lowercase hex digits"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        "traceparent parent id \"00f067aa0ba902bz\" is not 16 lowercase hex digits"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "traceparent flags \"0x\" is not 2 lowercase hex digits"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "traceparent header \"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01\" is malformed"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "traceparent header \"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01\" is malformed"),
    err(W, "", "traceparent header is empty"),
    err(W, "00", "traceparent header \"00\" is malformed"),
    // Multi-byte characters never split a field or panic.
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        "traceparent header \"00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01\" is malformed"),
    err(W, "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        "traceparent trace id \"4bf92f3577b34da6a3ce929d0e0e47é\" is not 32 lowercase hex digits"),
    // B3 single: the specification's examples.
    ok(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", (B3_TRACE, B3_SPAN, B3_PARENT),
        Some(true), false, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
    ok(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1", (B3_TRACE, B3_SPAN, 0), None, false,
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"),
    ok(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0", (B3_TRACE, B3_SPAN, 0), Some(false), false,
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"),
    ok(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d", (B3_TRACE, B3_SPAN, 0), Some(true), true,
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d"),
    // A 64-bit trace id stays 64-bit.
    ok(B, "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1", (0x64fe8b2a57d3eff7, B3_SPAN, 0), Some(true), false,
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
    decision("0", false, false),
    decision("1", true, false),
    decision("d", true, true),
    err(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x",
        "b3 sampling state \"x\" is not 0, 1 or d"),
    err(B, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-1",
        "b3 header \"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e\" is malformed"),
    err(B, "80f198ee56343ba864fe8b2a57d3eff-e457b5a2e4d86bd1-1",
        "b3 trace id \"80f198ee56343ba864fe8b2a57d3eff\" is not 16 or 32 lowercase hex digits"),
    err(B, "80f198ee56343ba8-e457b5a2e4d86bd-1", "b3 span id \"e457b5a2e4d86bd\" is not 16 lowercase hex digits"),
    err(B, "0000000000000000-e457b5a2e4d86bd1-1", "b3 trace id is all zeros"),
    err(B, "80f198ee56343ba8-0000000000000000", "b3 span id is all zeros"),
    err(B, "80f198ee56343ba8-e457b5a2e4d86bd1-1-0000000000000000", "b3 parent span id is all zeros"),
    err(B, "80f198ee56343ba8", "b3 header \"80f198ee56343ba8\" is malformed"),
    err(B, "true", "b3 header \"true\" is malformed"),
    err(B, " ", "b3 header is empty"),
    // Jaeger: padded and unpadded hex, upper case, URL-encoded separators.
    ok(J, "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1", (W3C_TRACE, W3C_SPAN, 0), Some(true), false,
        "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"),
    ok(J, "abc:def:12:3", (0xabc, 0xdef, 0x12), Some(true), true,
        "0000000000000abc:0000000000000def:0000000000000012:3"),
    ok(J, "ABC%3Adef%3a0%3A0", (0xabc, 0xdef, 0), Some(false), false, "0000000000000abc:0000000000000def:0:0"),
    ok(J, "a3ce929d0e0e4736:00f067aa0ba902b7:05e3ac9a4f6e3b90:01", (0xa3ce929d0e0e4736, W3C_SPAN, B3_PARENT),
        Some(true), false, "a3ce929d0e0e4736:00f067aa0ba902b7:05e3ac9a4f6e3b90:1"),
    err(J, "0:def:0:1", "uber-trace-id trace id is all zeros"),
    err(J, "abc:0:0:1", "uber-trace-id span id is all zeros"),
    err(J, "abc:def:0", "uber-trace-id header \"abc:def:0\" is malformed"),
    err(J, "abc:def:0:1:2", "uber-trace-id header \"abc:def:0:1:2\" is malformed"),
    err(J, "abc:xyz:0:1", "uber-trace-id span id \"xyz\" is not 1 to 16 hex digits"),
    err(J, "4bf92f3577b34da6a3ce929d0e0e47360:def:0:1",
        "uber-trace-id trace id \"4bf92f3577b34da6a3ce929d0e0e47360\" is not 1 to 32 hex digits"),
    err(J, "abc:def:0:100", "uber-trace-id flags \"100\" is not 1 or 2 hex digits"),
    err(J, "abc:def::1", "uber-trace-id parent span id \"\" is not 1 to 16 hex digits"),
    err(J, "", "uber-trace-id header is empty"),
];

/// One row of the `tracestate` table: input, and the canonical form or the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceStateVector {
    /// The header value.
    pub input: &'static str,
    /// `Ok(canonical)` or `Err(message)`.
    pub expect: Result<&'static str, &'static str>,
}

const fn ts(input: &'static str, expect: Result<&'static str, &'static str>) -> TraceStateVector {
    TraceStateVector { input, expect }
}

/// The `tracestate` table every target runs.
#[rustfmt::skip]
pub const TRACESTATE_VECTORS: &[TraceStateVector] = &[
    ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", Ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")),
    // Optional blanks and empty members are dropped.
    ts(" rojo=1 ,\t,congo=2,", Ok("rojo=1,congo=2")),
    ts("", Ok("")),
    ts("ot=th:c;rv:0123456789abcd", Ok("ot=th:c;rv:0123456789abcd")),
    // Multi-tenant keys; values may contain inner spaces.
    ts("fw529a3039@dt=a b", Ok("fw529a3039@dt=a b")),
    ts("0tenant@sys=1", Ok("0tenant@sys=1")),
    ts("tenant@0sys=1", Err("tracestate key \"tenant@0sys\" is invalid")),
    ts("tenant@systemiswaytoolong=1", Err("tracestate key \"tenant@systemiswaytoolong\" is invalid")),
    ts("Rojo=1", Err("tracestate key \"Rojo\" is invalid")),
    ts("1abc=1", Err("tracestate key \"1abc\" is invalid")),
    ts("rojo=a=b", Err("tracestate value \"a=b\" of key \"rojo\" is invalid")),
    ts("rojo=", Err("tracestate value \"\" of key \"rojo\" is invalid")),
    ts("rojo=x\u{7f}", Err("tracestate value \"x\\u{7f}\" of key \"rojo\" is invalid")),
    ts("rojo", Err("tracestate member \"rojo\" has no '='")),
    ts("rojo=1,rojo=2", Err("tracestate key \"rojo\" appears twice")),
    // 32 members are allowed, 33 are not.
    ts("a0=0,a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,b0=0,b1=1,b2=2,b3=3,b4=4,b5=5,b6=6,b7=7,b8=8,b9=9,\
c0=0,c1=1,c2=2,c3=3,c4=4,c5=5,c6=6,c7=7,c8=8,c9=9,d0=0,d1=1",
        Ok("a0=0,a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,b0=0,b1=1,b2=2,b3=3,b4=4,b5=5,b6=6,b7=7,b8=8,b9=9,\
c0=0,c1=1,c2=2,c3=3,c4=4,c5=5,c6=6,c7=7,c8=8,c9=9,d0=0,d1=1")),
    ts("a0=0,a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,b0=0,b1=1,b2=2,b3=3,b4=4,b5=5,b6=6,b7=7,b8=8,b9=9,\
c0=0,c1=1,c2=2,c3=3,c4=4,c5=5,c6=6,c7=7,c8=8,c9=9,d0=0,d1=1,d2=2",
        Err("tracestate has 33 members, more than 32")),
];

/// One row of the B3 multi table: the five header values and the expected `b3` single form of
/// the result (`Ok("")` when no header was present) or the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct B3MultiVector {
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled`, `X-B3-Flags`.
    pub headers: [Option<&'static str>; 5],
    /// `Ok(b3 single form)` or `Err(message)`.
    pub expect: Result<&'static str, &'static str>,
}

const fn bm(
    headers: [Option<&'static str>; 5],
    expect: Result<&'static str, &'static str>,
) -> B3MultiVector {
    B3MultiVector { headers, expect }
}

/// The B3 multi table every target runs.
#[rustfmt::skip]
pub const B3_MULTI_VECTORS: &[B3MultiVector] = &[
    bm([Some("80f198ee56343ba864fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), Some("05e3ac9a4f6e3b90"), Some("1"), None],
        Ok("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, Some("true"), None],
        Ok("64fe8b2a57d3eff7-e457b5a2e4d86bd1-1")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, Some("false"), None],
        Ok("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, None, Some("1")],
        Ok("64fe8b2a57d3eff7-e457b5a2e4d86bd1-d")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, None, None], Ok("64fe8b2a57d3eff7-e457b5a2e4d86bd1")),
    bm([None, None, None, Some("0"), None], Ok("0")),
    bm([None, None, None, None, Some("1")], Ok("d")),
    bm([None, None, None, None, None], Ok("")),
    bm([None, Some("e457b5a2e4d86bd1"), None, Some("1"), None], Err("x-b3-traceid header is missing")),
    bm([Some("64fe8b2a57d3eff7"), None, None, Some("1"), None], Err("x-b3-spanid header is missing")),
    bm([None, None, Some("05e3ac9a4f6e3b90"), None, None], Err("x-b3-traceid header is missing")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, Some("yes"), None],
        Err("x-b3-sampled value \"yes\" is not 1, 0, true or false")),
    bm([Some("64fe8b2a57d3eff7"), Some("e457b5a2e4d86bd1"), None, None, Some("2")],
        Err("x-b3-flags value \"2\" is not 1 or 0")),
    bm([Some("64FE8B2A57D3EFF7"), Some("e457b5a2e4d86bd1"), None, None, None],
        Err("x-b3-traceid trace id \"64FE8B2A57D3EFF7\" is not 16 or 32 lowercase hex digits")),
];

/// The first propagation context found in a request's headers, in order of preference:
/// `traceparent`, `b3`, B3 multi, `uber-trace-id`. `header` looks a header up by lowercase name.
/// A present but invalid header is reported, not skipped, so a client learns what was wrong.
pub fn extract(
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(&'static str, SpanContext)>, PropagationError> {
    if let Some(v) = header(TRACEPARENT) {
        return parse_traceparent(&v).map(|tp| Some((TRACEPARENT, tp.context())));
    }
    let from_b3 = |b3: B3| match b3 {
        B3::Context(c) => Some((B3_SINGLE, c)),
        // A decision without ids is not a context.
        B3::DecisionOnly { .. } => None,
    };
    if let Some(v) = header(B3_SINGLE) {
        return parse_b3_single(&v).map(from_b3);
    }
    let multi = [
        header(B3_TRACE_ID),
        header(B3_SPAN_ID),
        header(B3_PARENT_SPAN_ID),
        header(B3_SAMPLED),
        header(B3_FLAGS),
    ];
    if multi.iter().any(Option::is_some) {
        let m = B3Multi {
            trace_id: multi[0].as_deref(),
            span_id: multi[1].as_deref(),
            parent_span_id: multi[2].as_deref(),
            sampled: multi[3].as_deref(),
            flags: multi[4].as_deref(),
        };
        return parse_b3_multi(&m).map(|o| o.and_then(from_b3));
    }
    if let Some(v) = header(UBER_TRACE_ID) {
        return parse_uber_trace_id(&v).map(|j| Some((UBER_TRACE_ID, j.context)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn run(v: &PropagationVector) -> Result<(SpanContext, String), (B3, String, String)> {
        // Ok: context + canonical; Err side carries decision-only B3 or an error message.
        let res: Result<(Option<SpanContext>, B3, String), PropagationError> = match v.format {
            Format::TraceParent => parse_traceparent(v.input).map(|tp| {
                let c = tp.context();
                (Some(c), B3::Context(c), format_traceparent(&tp))
            }),
            Format::B3Single => {
                parse_b3_single(v.input).map(|b| (b.context(), b, format_b3_single(&b)))
            }
            Format::UberTraceId => parse_uber_trace_id(v.input).map(|j| {
                (
                    Some(j.context),
                    B3::Context(j.context),
                    format_uber_trace_id(&j),
                )
            }),
        };
        match res {
            Ok((Some(c), _, s)) => Ok((c, s)),
            Ok((None, b, s)) => Err((b, s, String::new())),
            Err(e) => Err((
                B3::DecisionOnly {
                    sampled: false,
                    debug: false,
                },
                String::new(),
                e.to_string(),
            )),
        }
    }

    #[test]
    fn propagation_vectors() {
        for v in PROPAGATION_VECTORS {
            match (v.expect, run(v)) {
                (
                    Expect::Ok {
                        trace_id,
                        span_id,
                        parent_span_id,
                        sampled,
                        debug,
                        canonical,
                    },
                    Ok((c, s)),
                ) => {
                    let want = SpanContext {
                        trace_id: TraceId(trace_id),
                        span_id: SpanId(span_id),
                        parent_span_id: (parent_span_id != 0).then_some(SpanId(parent_span_id)),
                        sampled,
                        debug,
                    };
                    assert_eq!(c, want, "{:?}", v.input);
                    assert_eq!(s, canonical, "{:?}", v.input);
                }
                (
                    Expect::Decision {
                        sampled,
                        debug,
                        canonical,
                    },
                    Err((b, s, e)),
                ) if e.is_empty() => {
                    assert_eq!(b, B3::DecisionOnly { sampled, debug }, "{:?}", v.input);
                    assert_eq!(s, canonical, "{:?}", v.input);
                }
                (Expect::Err(msg), Err((_, _, e))) => assert_eq!(e, msg, "{:?}", v.input),
                (want, got) => panic!("{:?}: want {want:?}, got {got:?}", v.input),
            }
        }
    }

    #[test]
    fn canonical_forms_parse_to_the_same_context() {
        for v in PROPAGATION_VECTORS {
            if let Expect::Ok { canonical, .. } = v.expect {
                let again = PropagationVector {
                    input: canonical,
                    ..*v
                };
                assert_eq!(run(v).ok(), run(&again).ok(), "{canonical:?}");
            }
        }
    }

    #[test]
    fn tracestate_vectors() {
        for v in TRACESTATE_VECTORS {
            let got = parse_tracestate(v.input)
                .map(|t| format_tracestate(&t))
                .map_err(|e| e.to_string());
            match (v.expect, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{:?}", v.input),
                (Err(want), Err(got)) => assert_eq!(got, want, "{:?}", v.input),
                (want, got) => panic!("{:?}: want {want:?}, got {got:?}", v.input),
            }
        }
    }

    #[test]
    fn b3_multi_vectors() {
        for v in B3_MULTI_VECTORS {
            let [t, s, p, sa, f] = v.headers;
            let h = B3Multi {
                trace_id: t,
                span_id: s,
                parent_span_id: p,
                sampled: sa,
                flags: f,
            };
            let got = parse_b3_multi(&h)
                .map(|o| o.map(|b| format_b3_single(&b)).unwrap_or_default())
                .map_err(|e| e.to_string());
            match (v.expect, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{:?}", v.headers),
                (Err(want), Err(got)) => assert_eq!(got, want, "{:?}", v.headers),
                (want, got) => panic!("{:?}: want {want:?}, got {got:?}", v.headers),
            }
            // What format_b3_multi writes parses back to the same thing.
            if let Ok(Some(b)) = parse_b3_multi(&h) {
                let out = format_b3_multi(&b);
                let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
                let back = B3Multi {
                    trace_id: get(B3_TRACE_ID),
                    span_id: get(B3_SPAN_ID),
                    parent_span_id: get(B3_PARENT_SPAN_ID),
                    sampled: get(B3_SAMPLED),
                    flags: get(B3_FLAGS),
                };
                assert_eq!(parse_b3_multi(&back), Ok(Some(b)), "{:?}", v.headers);
            }
        }
    }

    #[test]
    fn extract_prefers_traceparent_and_reports_bad_headers() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = headers(&[
            ("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]);
        let (name, c) = extract(&both).unwrap().unwrap();
        assert_eq!((name, c.trace_id), (TRACEPARENT, TraceId(W3C_TRACE)));
        let jaeger = headers(&[("uber-trace-id", "abc:def:0:2")]);
        let (name, c) = extract(&jaeger).unwrap().unwrap();
        assert_eq!(
            (name, c.debug, c.sampled),
            (UBER_TRACE_ID, true, Some(false))
        );
        let bad = headers(&[("x-b3-traceid", "zz"), ("x-b3-spanid", "e457b5a2e4d86bd1")]);
        assert_eq!(
            extract(&bad).unwrap_err().to_string(),
            "x-b3-traceid trace id \"zz\" is not 16 or 32 lowercase hex digits"
        );
        assert_eq!(extract(&headers(&[("b3", "1")])), Ok(None));
        assert_eq!(extract(&headers(&[])), Ok(None));
    }

    #[test]
    fn context_converts_to_traceparent() {
        let j = parse_uber_trace_id("abc:def:0:2").unwrap();
        assert_eq!(
            context_to_traceparent(&j.context),
            "00-00000000000000000000000000000abc-0000000000000def-01"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every header parser over every prefix of awkward inputs: no panic, and long values
        // are quoted cut to 64 characters.
        let inputs = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
            "-:-:%3A%3a%%--::,,==@@",
            "\u{0}\u{ffff}-\u{10ffff}",
        ];
        for s in inputs {
            for (i, _) in s.char_indices() {
                let p = &s[..i];
                let _ = parse_traceparent(p);
                let _ = parse_b3_single(p);
                let _ = parse_uber_trace_id(p);
                let _ = parse_tracestate(p);
            }
        }
        let long = "é".repeat(200);
        let e = parse_b3_single(&long).unwrap_err().to_string();
        assert_eq!(e, format!("b3 header {:?} is malformed", "é".repeat(64)));
    }
}
