//! The strings view of Spoor's plugin contract 0.2 (world `strings-plugin` in
//! `plugins/wit/plugin.wit`): the one definition of the walk order, shared by the host (which
//! [`build`]s the view, [`check`]s the plugin's patches and [`apply`]s them in place) and the
//! SDK (which hands plugins a typed [`StringsView`] and runs the same path natively in tests).
//!
//! # The walk
//!
//! Spans are visited in batch order. For each span:
//!
//! 1. its resource, the first time that resource (by identity: resources are `Arc`-shared) is
//!    met: the service name ([`Kind::Service`]), then the resource's attributes;
//! 2. its scope, the first time that scope is met: the scope name ([`Kind::Scope`]), then the
//!    scope's attributes;
//! 3. the span name ([`Kind::SpanName`], owned by the resource's service string), then the
//!    span's attributes;
//! 4. each event: its name ([`Kind::EventName`], owned by the span name), then its attributes;
//! 5. each link: its trace state ([`Kind::Link`], owned by the span name), then its attributes.
//!
//! An attribute list is visited in order; each attribute gives its key ([`Kind::Key`], owned
//! by the list's owner: the service, scope, span name, event name or link string) and then its
//! value: a string value gives one [`Kind::Value`] owned by the key; an array gives its
//! elements in order, each as if it were the value (so every string element is a value owned by
//! the key, and arrays of maps nest); a map value gives its attributes as a list owned by the
//! key. Other values give nothing. So a key's value strings and nested keys follow it directly
//! (depth first). Status messages, scope versions and span trace states are not in the view.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use spoor_core::{AnyValue, KeyValue, Resource, Scope, Span};

/// Words per string in [`View::records`]: offset, length, kind, owner.
pub const WORDS: usize = 4;

/// The owner word of strings that have none (services and scope names).
pub const NO_OWNER: u32 = u32::MAX;

/// What a string of the view is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A resource's service name (once per distinct resource).
    Service,
    /// A scope's name (once per distinct scope).
    Scope,
    /// A span's name.
    SpanName,
    /// An event's name.
    EventName,
    /// A link, as its trace state.
    Link,
    /// An attribute key.
    Key,
    /// A string value (or string element of an array value).
    Value,
}

impl Kind {
    /// Every kind, in the order of their numbers.
    pub const ALL: [Kind; 7] = [
        Kind::Service,
        Kind::Scope,
        Kind::SpanName,
        Kind::EventName,
        Kind::Link,
        Kind::Key,
        Kind::Value,
    ];

    /// The kind with this number (the `kind` word), if any.
    pub fn from_word(word: u32) -> Option<Kind> {
        Kind::ALL.get(word as usize).copied()
    }

    /// The `kind` word.
    pub fn word(self) -> u32 {
        self as u32
    }

    /// A name for messages: `service`, `scope name`, `span name`, `event name`, `link`,
    /// `attribute key`, `string value`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Scope => "scope name",
            Kind::SpanName => "span name",
            Kind::EventName => "event name",
            Kind::Link => "link",
            Kind::Key => "attribute key",
            Kind::Value => "string value",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The view as it crosses the boundary (the WIT `strings-view`): all strings in one text, and
/// [`WORDS`] words per string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Every string of the view, back to back.
    pub text: String,
    /// `offset, len, kind, owner` per string.
    pub records: Vec<u32>,
}

impl View {
    /// How many strings the view holds.
    pub fn len(&self) -> usize {
        self.records.len() / WORDS
    }

    /// Whether the view holds no string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of string `i`, if `i` is in range and its kind word is valid.
    pub fn kind(&self, i: usize) -> Option<Kind> {
        self.records
            .get(i * WORDS + 2)
            .and_then(|&w| Kind::from_word(w))
    }
}

/// What a patch does (the WIT `patch-op`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Replace the string (on a key: rename the attribute).
    Replace(String),
    /// Keys only: set the attribute's value to this string.
    SetValue(String),
    /// Keys only: remove the attribute.
    Remove,
}

impl Op {
    /// `replace`, `set-value` or `remove`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Replace(_) => "replace",
            Op::SetValue(_) => "set-value",
            Op::Remove => "remove",
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Op::Replace(s) | Op::SetValue(s) => s.len() as u64,
            Op::Remove => 0,
        }
    }
}

/// One change to string `index` of the view (the WIT `patch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The string's index in the view.
    pub index: u32,
    /// What to do.
    pub op: Op,
}

/// The `op` words of [`Patches`].
const OP_REPLACE: u32 = 0;
const OP_SET_VALUE: u32 = 1;
const OP_REMOVE: u32 = 2;

/// Patches as they cross the boundary (the WIT `patches`): replacement strings back to back in
/// `text`, [`WORDS`] words per patch in `ops` (`index, op, offset, len`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patches {
    /// The replacement strings.
    pub text: String,
    /// `index, op, offset, len` per patch.
    pub ops: Vec<u32>,
}

impl Patches {
    /// How many patches there are (whole ones).
    pub fn len(&self) -> usize {
        self.ops.len() / WORDS
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends one patch.
    pub fn push(&mut self, index: u32, op: &Op) {
        let (word, text) = match op {
            Op::Replace(t) => (OP_REPLACE, t.as_str()),
            Op::SetValue(t) => (OP_SET_VALUE, t.as_str()),
            Op::Remove => (OP_REMOVE, ""),
        };
        self.push_raw(index, word, text);
    }

    fn push_raw(&mut self, index: u32, op: u32, text: &str) {
        let offset = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        self.text.push_str(text);
        self.ops.extend_from_slice(&[index, op, offset, len]);
    }

    /// The flat form of `patches`.
    pub fn from_patches(patches: &[Patch]) -> Patches {
        let mut flat = Patches::default();
        for p in patches {
            flat.push(p.index, &p.op);
        }
        flat
    }

    /// The patches, each with its own string; refuses a partial patch, an unknown op word or a
    /// slice outside `text` or off its character boundaries.
    pub fn to_patches(&self) -> Result<Vec<Patch>, PatchError> {
        if self.ops.len() % WORDS != 0 {
            return Err(PatchError::Malformed(format!(
                "{} op words is not a multiple of {WORDS}",
                self.ops.len()
            )));
        }
        self.ops
            .chunks_exact(WORDS)
            .map(|w| {
                let (index, op, offset, len) = (w[0], w[1], w[2] as usize, w[3] as usize);
                let text = self.text.get(offset..offset.saturating_add(len)).ok_or_else(|| {
                    PatchError::Malformed(format!(
                        "patch for string {index}: replacement {offset}+{len} is not a slice of the {}-byte text",
                        self.text.len()
                    ))
                })?;
                let op = match op {
                    OP_REPLACE => Op::Replace(text.to_owned()),
                    OP_SET_VALUE => Op::SetValue(text.to_owned()),
                    OP_REMOVE => Op::Remove,
                    other => {
                        return Err(PatchError::Malformed(format!(
                            "patch for string {index}: unknown op {other}"
                        )))
                    }
                };
                Ok(Patch { index, op })
            })
            .collect()
    }
}

/// The batch is too large for a view: its strings exceed `u32` offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// Bytes of text the view would hold (at least).
    pub bytes: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the batch's strings take {} bytes, over the strings view's limit of {} bytes",
            self.bytes,
            u32::MAX
        )
    }
}

impl std::error::Error for TooLarge {}

/// Identity of a shared value, for "first time met".
fn ptr<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const () as usize
}

/// First-seen map from `Arc` identity to a number, with a fast path for runs of spans that
/// share one value.
struct Seen<V: Copy> {
    last: Option<(usize, V)>,
    map: HashMap<usize, V>,
}

impl<V: Copy> Seen<V> {
    fn new() -> Self {
        Seen {
            last: None,
            map: HashMap::new(),
        }
    }

    fn get(&mut self, key: usize) -> Option<V> {
        if let Some((k, v)) = self.last {
            if k == key {
                return Some(v);
            }
        }
        let v = *self.map.get(&key)?;
        self.last = Some((key, v));
        Some(v)
    }

    fn insert(&mut self, key: usize, v: V) {
        self.map.insert(key, v);
        self.last = Some((key, v));
    }
}

struct Builder {
    text: String,
    records: Vec<u32>,
    too_large: bool,
}

impl Builder {
    fn push(&mut self, kind: Kind, s: &str, owner: u32) -> u32 {
        let index = (self.records.len() / WORDS) as u32;
        let offset = self.text.len();
        if offset + s.len() > u32::MAX as usize || index == NO_OWNER {
            self.too_large = true;
            return index;
        }
        self.records
            .extend_from_slice(&[offset as u32, s.len() as u32, kind.word(), owner]);
        self.text.push_str(s);
        index
    }

    fn attributes(&mut self, attributes: &[KeyValue], owner: u32) {
        for kv in attributes {
            let key = self.push(Kind::Key, &kv.key, owner);
            self.value(&kv.value, key);
        }
    }

    fn value(&mut self, value: &AnyValue, key: u32) {
        match value {
            AnyValue::Str(s) => {
                self.push(Kind::Value, s, key);
            }
            AnyValue::Array(items) => items.iter().for_each(|v| self.value(v, key)),
            AnyValue::Map(attributes) => self.attributes(attributes, key),
            _ => {}
        }
    }
}

/// The strings view of `spans`, in the walk order of the module docs.
pub fn build(spans: &[Span]) -> Result<View, TooLarge> {
    let mut view = View::default();
    build_into(spans, &mut view)?;
    Ok(view)
}

/// [`build`] into `view`, reusing its buffers (a host building one view per batch keeps them).
/// On error `view` is left empty.
pub fn build_into(spans: &[Span], view: &mut View) -> Result<(), TooLarge> {
    view.text.clear();
    view.records.clear();
    let mut b = Builder {
        text: std::mem::take(&mut view.text),
        records: std::mem::take(&mut view.records),
        too_large: false,
    };
    let mut resources: Seen<u32> = Seen::new();
    let mut scopes: Seen<()> = Seen::new();
    for span in spans {
        let service = match resources.get(ptr(&span.resource)) {
            Some(service) => service,
            None => {
                let r: &Resource = &span.resource;
                let service = b.push(Kind::Service, &r.service_name, NO_OWNER);
                b.attributes(&r.attributes, service);
                resources.insert(ptr(&span.resource), service);
                service
            }
        };
        if scopes.get(ptr(&span.scope)).is_none() {
            let s: &Scope = &span.scope;
            let scope = b.push(Kind::Scope, &s.name, NO_OWNER);
            b.attributes(&s.attributes, scope);
            scopes.insert(ptr(&span.scope), ());
        }
        let name = b.push(Kind::SpanName, &span.name, service);
        b.attributes(&span.attributes, name);
        for event in &span.events {
            let e = b.push(Kind::EventName, &event.name, name);
            b.attributes(&event.attributes, e);
        }
        for link in &span.links {
            let l = b.push(Kind::Link, &link.trace_state, name);
            b.attributes(&link.attributes, l);
        }
    }
    if b.too_large {
        return Err(TooLarge {
            bytes: spans.iter().map(text_bytes).sum(),
        });
    }
    view.text = b.text;
    view.records = b.records;
    Ok(())
}

/// Bytes of text one span would put in a view, counting shared values once per span.
fn text_bytes(span: &Span) -> u64 {
    fn attrs(a: &[KeyValue]) -> u64 {
        a.iter()
            .map(|kv| kv.key.len() as u64 + value(&kv.value))
            .sum()
    }
    fn value(v: &AnyValue) -> u64 {
        match v {
            AnyValue::Str(s) => s.len() as u64,
            AnyValue::Array(items) => items.iter().map(value).sum(),
            AnyValue::Map(a) => attrs(a),
            _ => 0,
        }
    }
    (span.name.len() + span.resource.service_name.len() + span.scope.name.len()) as u64
        + attrs(&span.attributes)
        + attrs(&span.resource.attributes)
        + attrs(&span.scope.attributes)
        + span
            .events
            .iter()
            .map(|e| e.name.len() as u64 + attrs(&e.attributes))
            .sum::<u64>()
        + span
            .links
            .iter()
            .map(|l| l.trace_state.len() as u64 + attrs(&l.attributes))
            .sum::<u64>()
}

/// Why a plugin's patches cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// A patch names a string the view does not hold.
    OutOfRange {
        /// The patch's index.
        index: u32,
        /// Strings in the view.
        len: usize,
    },
    /// Patches are not in strictly ascending order of index.
    Order {
        /// The patch's index.
        index: u32,
        /// The index of the patch before it.
        previous: u32,
    },
    /// The operation does not apply to that kind of string.
    WrongKind {
        /// The patch's index.
        index: u32,
        /// The operation (`set-value`, `remove`).
        op: &'static str,
        /// The string's kind.
        kind: Kind,
    },
    /// The flat form cannot be read (partial patch, unknown op, bad slice).
    Malformed(String),
    /// The replacement strings together are larger than the cap.
    TooLarge {
        /// Bytes of replacement text.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::OutOfRange { index, len } => write!(
                f,
                "patch for string {index}, but the view holds {len} strings"
            ),
            PatchError::Order { index, previous } => write!(
                f,
                "patch for string {index} after one for string {previous}: patches must be in strictly ascending order"
            ),
            PatchError::WrongKind { index, op, kind } => write!(
                f,
                "patch for string {index}: {op} applies to attribute keys, not to a {kind}"
            ),
            PatchError::Malformed(message) => f.write_str(message),
            PatchError::TooLarge { bytes, cap } => write!(
                f,
                "patches carry {bytes} bytes of replacement text, over the cap of {cap}"
            ),
        }
    }
}

impl std::error::Error for PatchError {}

/// Checks `patches` against `view`: indexes in range and strictly ascending, `set-value` and
/// `remove` on attribute keys only, at most `cap` bytes of replacement text in all. The
/// strings themselves are UTF-8 by type (the canonical ABI checks them when they cross).
pub fn check(view: &View, patches: &[Patch], cap: u64) -> Result<(), PatchError> {
    check_with(view.len(), |i| view.kind(i as usize), patches, cap)
}

/// [`check`] for a view held in another type: `len` strings, `kind` of string `i` (`None`
/// when out of range).
pub fn check_with(
    len: usize,
    kind: impl Fn(u32) -> Option<Kind>,
    patches: &[Patch],
    cap: u64,
) -> Result<(), PatchError> {
    let mut previous: Option<u32> = None;
    let mut bytes: u64 = 0;
    for patch in patches {
        let index = patch.index;
        if let Some(previous) = previous {
            if index <= previous {
                return Err(PatchError::Order { index, previous });
            }
        }
        previous = Some(index);
        let Some(kind) = kind(index) else {
            return Err(PatchError::OutOfRange { index, len });
        };
        if kind != Kind::Key && !matches!(patch.op, Op::Replace(_)) {
            return Err(PatchError::WrongKind {
                index,
                op: patch.op.as_str(),
                kind,
            });
        }
        bytes = bytes.saturating_add(patch.op.bytes());
        if bytes > cap {
            return Err(PatchError::TooLarge { bytes, cap });
        }
    }
    Ok(())
}

/// Applies checked patches to the spans the view was built from, walking the same order.
/// Shared resources and scopes that are patched are copied once and stay shared. Patches that
/// [`check`] would refuse are ignored (never a panic).
pub fn apply(spans: &mut [Span], patches: Vec<Patch>) {
    if patches.is_empty() {
        return;
    }
    let mut a = Applier {
        next: 0,
        patches: patches.into_iter().peekable(),
    };
    // Old resource identity -> (the original, kept alive so identities stay unique; its
    // replacement).
    let mut resources: Seen<usize> = Seen::new();
    let mut resource_arcs: Vec<(Arc<Resource>, Arc<Resource>)> = Vec::new();
    let mut scopes: Seen<usize> = Seen::new();
    let mut scope_arcs: Vec<(Arc<Scope>, Arc<Scope>)> = Vec::new();
    // Whether a shared resource or scope was replaced: later spans that share it must still be
    // pointed at the replacement once the patches are used up.
    let mut replaced_shared = false;
    for span in spans {
        let exhausted = a.patches.peek().is_none();
        if exhausted && !replaced_shared {
            break;
        }
        match resources.get(ptr(&span.resource)) {
            Some(i) => span.resource = Arc::clone(&resource_arcs[i].1),
            None => {
                let key = ptr(&span.resource);
                let n = 1 + count_attributes(&span.resource.attributes);
                let new = if a.touches(n) {
                    let mut r = Resource::clone(&span.resource);
                    a.string(&mut r.service_name);
                    a.attributes(&mut r.attributes);
                    replaced_shared = true;
                    Arc::new(r)
                } else {
                    a.next = a.next.wrapping_add(n);
                    Arc::clone(&span.resource)
                };
                resources.insert(key, resource_arcs.len());
                resource_arcs.push((Arc::clone(&span.resource), Arc::clone(&new)));
                span.resource = new;
            }
        }
        match scopes.get(ptr(&span.scope)) {
            Some(i) => span.scope = Arc::clone(&scope_arcs[i].1),
            None => {
                let key = ptr(&span.scope);
                let n = 1 + count_attributes(&span.scope.attributes);
                let new = if a.touches(n) {
                    let mut s = Scope::clone(&span.scope);
                    a.string(&mut s.name);
                    a.attributes(&mut s.attributes);
                    replaced_shared = true;
                    Arc::new(s)
                } else {
                    a.next = a.next.wrapping_add(n);
                    Arc::clone(&span.scope)
                };
                scopes.insert(key, scope_arcs.len());
                scope_arcs.push((Arc::clone(&span.scope), Arc::clone(&new)));
                span.scope = new;
            }
        }
        if exhausted {
            continue;
        }
        let n = count_span(span);
        if !a.touches(n) {
            a.next = a.next.wrapping_add(n);
            continue;
        }
        a.string(&mut span.name);
        a.attributes(&mut span.attributes);
        for event in &mut span.events {
            a.string(&mut event.name);
            a.attributes(&mut event.attributes);
        }
        for link in &mut span.links {
            a.string(&mut link.trace_state);
            a.attributes(&mut link.attributes);
        }
    }
}

/// Strings of a span's own part of the walk (name, attributes, events, links).
fn count_span(span: &Span) -> u32 {
    1 + count_attributes(&span.attributes)
        + span
            .events
            .iter()
            .map(|e| 1 + count_attributes(&e.attributes))
            .sum::<u32>()
        + span
            .links
            .iter()
            .map(|l| 1 + count_attributes(&l.attributes))
            .sum::<u32>()
}

fn count_attributes(attributes: &[KeyValue]) -> u32 {
    attributes.iter().map(|kv| 1 + count_value(&kv.value)).sum()
}

fn count_value(value: &AnyValue) -> u32 {
    match value {
        AnyValue::Str(_) => 1,
        AnyValue::Array(items) => items.iter().map(count_value).sum(),
        AnyValue::Map(attributes) => count_attributes(attributes),
        _ => 0,
    }
}

struct Applier {
    /// Index of the next string of the walk.
    next: u32,
    patches: std::iter::Peekable<std::vec::IntoIter<Patch>>,
}

impl Applier {
    /// Whether a patch falls among the next `n` strings.
    fn touches(&mut self, n: u32) -> bool {
        // Patches left behind name strings of a value that a set-value replaced: drop them, or
        // the one at the head would hide every later patch (a span or shared value is walked
        // only when the head patch falls in it).
        while self.patches.peek().is_some_and(|p| p.index < self.next) {
            self.patches.next();
        }
        self.patches
            .peek()
            .is_some_and(|p| p.index.wrapping_sub(self.next) < n)
    }

    /// The patch for the next string, if any; advances.
    fn take(&mut self) -> Option<Op> {
        let index = self.next;
        self.next = self.next.wrapping_add(1);
        // Skip patches that were left behind (only possible if unchecked).
        while self.patches.peek().is_some_and(|p| p.index < index) {
            self.patches.next();
        }
        if self.patches.peek().is_some_and(|p| p.index == index) {
            return self.patches.next().map(|p| p.op);
        }
        None
    }

    /// A string that is not a key: only `replace` applies.
    fn string(&mut self, s: &mut String) {
        if let Some(Op::Replace(new)) = self.take() {
            *s = new;
        }
    }

    fn attributes(&mut self, attributes: &mut Vec<KeyValue>) {
        // Positions to remove, ascending; allocated only when there is one (most lists are
        // walked without a removal, and this runs for every list of every patched span).
        let mut removed: Vec<usize> = Vec::new();
        for (at, kv) in attributes.iter_mut().enumerate() {
            match self.take() {
                Some(Op::Replace(new)) => kv.key = new,
                Some(Op::SetValue(new)) => {
                    // The old value's strings are skipped; the new one is not in the view.
                    self.next = self.next.wrapping_add(count_value(&kv.value));
                    kv.value = AnyValue::Str(new);
                    continue;
                }
                Some(Op::Remove) => removed.push(at),
                None => {}
            }
            self.value(&mut kv.value);
        }
        if !removed.is_empty() {
            let mut at = 0;
            let mut removed = removed.into_iter().peekable();
            attributes.retain(|_| {
                let keep = removed.next_if_eq(&at).is_none();
                at += 1;
                keep
            });
        }
    }

    fn value(&mut self, value: &mut AnyValue) {
        match value {
            AnyValue::Str(s) => self.string(s),
            AnyValue::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            AnyValue::Map(attributes) => self.attributes(attributes),
            _ => {}
        }
    }
}

/// Why a view from the host cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidView(String);

impl fmt::Display for InvalidView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid strings view: {}", self.0)
    }
}

impl std::error::Error for InvalidView {}

/// One string of a [`StringsView`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its index in the view (what patches name).
    pub index: usize,
    /// What it is.
    pub kind: Kind,
    /// The text.
    pub text: &'a str,
    /// The index of the string it belongs to, if any (see the module docs).
    pub owner: Option<usize>,
}

/// A plugin's typed access to a view: read the strings, record patches. A later patch for the
/// same string replaces an earlier one; [`StringsView::into_patches`] orders them.
#[derive(Clone, Debug)]
pub struct StringsView {
    view: View,
    /// Recorded flat (no allocation per patch).
    patches: Patches,
    sorted: bool,
}

impl StringsView {
    /// Checks a view that crossed the boundary: whole records, every string inside the text
    /// on character boundaries, known kinds, owners before their strings.
    pub fn new(view: View) -> Result<StringsView, InvalidView> {
        if view.records.len() % WORDS != 0 {
            return Err(InvalidView(format!(
                "{} record words is not a multiple of {WORDS}",
                view.records.len()
            )));
        }
        for (i, r) in view.records.chunks_exact(WORDS).enumerate() {
            let (offset, len) = (r[0] as usize, r[1] as usize);
            if view.text.get(offset..offset + len).is_none() {
                return Err(InvalidView(format!(
                    "string {i} ({offset}+{len}) is not a slice of the {}-byte text",
                    view.text.len()
                )));
            }
            if Kind::from_word(r[2]).is_none() {
                return Err(InvalidView(format!("string {i} has kind {}", r[2])));
            }
            if r[3] != NO_OWNER && r[3] as usize >= i {
                return Err(InvalidView(format!(
                    "string {i} has owner {}, not an earlier string",
                    r[3]
                )));
            }
        }
        Ok(StringsView {
            view,
            patches: Patches::default(),
            sorted: true,
        })
    }

    /// How many strings there are.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    fn record(&self, i: usize) -> Option<&[u32]> {
        self.view.records.get(i * WORDS..i * WORDS + WORDS)
    }

    /// The kind of string `i` (`None` when out of range).
    pub fn kind(&self, i: usize) -> Option<Kind> {
        self.view.kind(i)
    }

    /// The text of string `i` (empty when out of range).
    pub fn text(&self, i: usize) -> &str {
        self.record(i)
            .and_then(|r| {
                self.view
                    .text
                    .get(r[0] as usize..r[0] as usize + r[1] as usize)
            })
            .unwrap_or("")
    }

    /// The string that string `i` belongs to.
    pub fn owner(&self, i: usize) -> Option<usize> {
        self.record(i)
            .map(|r| r[3])
            .filter(|&o| o != NO_OWNER)
            .map(|o| o as usize)
    }

    /// String `i` as an [`Entry`].
    pub fn get(&self, i: usize) -> Option<Entry<'_>> {
        Some(Entry {
            index: i,
            kind: self.kind(i)?,
            text: self.text(i),
            owner: self.owner(i),
        })
    }

    /// Every string, in view order.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    fn patch(&mut self, index: usize, op: u32, text: &str) {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        if self
            .patches
            .ops
            .len()
            .checked_sub(WORDS)
            .is_some_and(|last| self.patches.ops[last] >= index)
        {
            self.sorted = false;
        }
        self.patches.push_raw(index, op, text);
    }

    /// Replaces string `i` (on an attribute key: renames the attribute).
    pub fn replace(&mut self, i: usize, text: &str) {
        self.patch(i, OP_REPLACE, text);
    }

    /// Sets the value of the attribute whose key is string `i` to `text`.
    pub fn set_value(&mut self, i: usize, text: &str) {
        self.patch(i, OP_SET_VALUE, text);
    }

    /// Removes the attribute whose key is string `i`.
    pub fn remove(&mut self, i: usize) {
        self.patch(i, OP_REMOVE, "");
    }

    /// The patches recorded so far, in the order they were made.
    pub fn patches(&self) -> &Patches {
        &self.patches
    }

    /// The view it reads.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The patches in ascending order, one per string (the last one made wins), checked
    /// against the view (no size cap: that is the host's).
    pub fn into_patches(self) -> Result<(View, Patches), PatchError> {
        let mut patches = self.patches;
        if !self.sorted {
            // Stable: of several patches for one string the last one made stays last.
            let mut order: Vec<usize> = (0..patches.len()).collect();
            order.sort_by_key(|&j| patches.ops[j * WORDS]);
            let mut ops: Vec<u32> = Vec::with_capacity(patches.ops.len());
            for j in order {
                let words = &patches.ops[j * WORDS..j * WORDS + WORDS];
                match ops.len().checked_sub(WORDS) {
                    Some(last) if ops[last] == words[0] => ops[last..].copy_from_slice(words),
                    _ => ops.extend_from_slice(words),
                }
            }
            patches.ops = ops;
        }
        check_flat(&self.view, &patches)?;
        Ok((self.view, patches))
    }
}

/// [`check`] of flat patches (no size cap), without making a string per patch.
fn check_flat(view: &View, patches: &Patches) -> Result<(), PatchError> {
    let mut previous: Option<u32> = None;
    for w in patches.ops.chunks_exact(WORDS) {
        let index = w[0];
        if let Some(previous) = previous.filter(|&p| index <= p) {
            return Err(PatchError::Order { index, previous });
        }
        previous = Some(index);
        let kind = view.kind(index as usize).ok_or(PatchError::OutOfRange {
            index,
            len: view.len(),
        })?;
        let op = match w[1] {
            OP_REPLACE => "replace",
            OP_SET_VALUE => "set-value",
            OP_REMOVE => "remove",
            other => {
                return Err(PatchError::Malformed(format!(
                    "patch for string {index}: unknown op {other}"
                )))
            }
        };
        if kind != Kind::Key && w[1] != OP_REPLACE {
            return Err(PatchError::WrongKind { index, op, kind });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Event, Link, SpanId, TraceId};

    fn kv(k: &str, v: AnyValue) -> KeyValue {
        KeyValue::new(k, v)
    }

    fn s(v: &str) -> AnyValue {
        AnyValue::Str(v.into())
    }

    /// Two spans sharing a resource and scope, with every kind of string and nesting.
    fn spans() -> Vec<Span> {
        let resource = Arc::new(Resource {
            service_name: "svc".into(),
            attributes: vec![kv("host", s("h1"))],
            ..Default::default()
        });
        let scope = Arc::new(Scope {
            name: "lib".into(),
            attributes: vec![kv("sk", AnyValue::Int(1))],
            ..Default::default()
        });
        let first = Span {
            trace_id: TraceId(1),
            span_id: SpanId(1),
            name: "GET /a".into(),
            attributes: vec![
                kv("user", s("jane")),
                kv("n", AnyValue::Int(3)),
                kv(
                    "list",
                    AnyValue::Array(vec![s("x"), AnyValue::Bool(true), s("y")]),
                ),
                kv("map", AnyValue::Map(vec![kv("inner", s("z"))])),
            ],
            events: vec![Event {
                name: "ev".into(),
                attributes: vec![kv("ek", s("ev-v"))],
                ..Default::default()
            }],
            links: vec![Link {
                trace_state: "ts=1".into(),
                attributes: vec![kv("lk", s("lv"))],
                ..Default::default()
            }],
            resource: Arc::clone(&resource),
            scope: Arc::clone(&scope),
            ..Default::default()
        };
        let second = Span {
            span_id: SpanId(2),
            name: "second".into(),
            attributes: vec![kv("user", s("bob"))],
            resource,
            scope,
            ..Default::default()
        };
        vec![first, second]
    }

    fn rows(view: &View) -> Vec<String> {
        let sv = StringsView::new(view.clone()).unwrap();
        sv.iter()
            .map(|e| {
                let owner = e.owner.map_or("-".to_string(), |o| o.to_string());
                format!("{} {} {:?} <{owner}", e.index, e.kind, e.text)
            })
            .collect()
    }

    #[test]
    fn walk_order_is_as_documented() {
        let view = build(&spans()).unwrap();
        assert_eq!(
            rows(&view),
            [
                "0 service \"svc\" <-",
                "1 attribute key \"host\" <0",
                "2 string value \"h1\" <1",
                "3 scope name \"lib\" <-",
                "4 attribute key \"sk\" <3",
                "5 span name \"GET /a\" <0",
                "6 attribute key \"user\" <5",
                "7 string value \"jane\" <6",
                "8 attribute key \"n\" <5",
                "9 attribute key \"list\" <5",
                "10 string value \"x\" <9",
                "11 string value \"y\" <9",
                "12 attribute key \"map\" <5",
                "13 attribute key \"inner\" <12",
                "14 string value \"z\" <13",
                "15 event name \"ev\" <5",
                "16 attribute key \"ek\" <15",
                "17 string value \"ev-v\" <16",
                "18 link \"ts=1\" <5",
                "19 attribute key \"lk\" <18",
                "20 string value \"lv\" <19",
                "21 span name \"second\" <0",
                "22 attribute key \"user\" <21",
                "23 string value \"bob\" <22",
            ]
        );
    }

    #[test]
    fn replacing_every_string_is_seen_by_the_next_walk() {
        // Apply walks exactly as build does: replace string i with "#i" everywhere and every
        // string of the new view reads "#i".
        let mut spans = spans();
        let view = build(&spans).unwrap();
        let patches: Vec<Patch> = (0..view.len() as u32)
            .map(|i| Patch {
                index: i,
                op: Op::Replace(format!("#{i}")),
            })
            .collect();
        check(&view, &patches, u64::MAX).unwrap();
        apply(&mut spans, patches);
        let again = StringsView::new(build(&spans).unwrap()).unwrap();
        assert_eq!(again.len(), view.len());
        for e in again.iter() {
            assert_eq!(e.text, format!("#{}", e.index));
        }
        assert!(
            Arc::ptr_eq(&spans[0].resource, &spans[1].resource),
            "a patched shared resource stays shared"
        );
        assert_eq!(spans[1].resource.service_name, "#0");
    }

    #[test]
    fn keys_can_be_removed_or_given_a_value() {
        let mut spans = spans();
        let view = build(&spans).unwrap();
        let mut sv = StringsView::new(view).unwrap();
        sv.remove(12); // map
        sv.set_value(9, "[masked]"); // list: its strings are skipped
        sv.replace(14, "never seen"); // inside the removed map: still applied, then removed
        sv.replace(23, "bob?");
        sv.replace(23, "BOB"); // the last patch for a string wins
        sv.set_value(8, "three"); // an int becomes a string
        sv.remove(1); // resource attribute
        let (view, flat) = sv.into_patches().unwrap();
        let patches = flat.to_patches().unwrap();
        assert_eq!(
            Patches::from_patches(&patches).to_patches().unwrap(),
            patches
        );
        assert_eq!(
            patches.iter().map(|p| p.index).collect::<Vec<_>>(),
            [1, 8, 9, 12, 14, 23]
        );
        check(&view, &patches, u64::MAX).unwrap();
        apply(&mut spans, patches);
        assert_eq!(
            spans[0].attributes,
            vec![
                kv("user", s("jane")),
                kv("n", s("three")),
                kv("list", s("[masked]")),
            ]
        );
        assert_eq!(spans[1].attributes, vec![kv("user", s("BOB"))]);
        assert!(spans[1].resource.attributes.is_empty());
        assert_eq!(spans[0].events[0].attributes, vec![kv("ek", s("ev-v"))]);
    }

    #[test]
    fn a_patch_inside_a_replaced_value_does_not_hide_later_patches() {
        // Strings: 0 service, 1 scope, 2 "a", 3 key "m", 4 key "inner", 5 "z" (the last string
        // of the first span), 6 "b". The set-value on 3 replaces the map, so the patch on 5
        // names nothing any more; the second span's name is still patched.
        let first = Span {
            name: "a".into(),
            attributes: vec![kv("m", AnyValue::Map(vec![kv("inner", s("z"))]))],
            ..Default::default()
        };
        let second = Span {
            name: "b".into(),
            ..first.clone()
        };
        let mut spans = vec![first, second];
        let view = build(&spans).unwrap();
        let mut sv = StringsView::new(view).unwrap();
        sv.set_value(3, "[masked]");
        sv.replace(5, "lost");
        sv.replace(6, "renamed");
        let (view, flat) = sv.into_patches().unwrap();
        let patches = flat.to_patches().unwrap();
        check(&view, &patches, u64::MAX).unwrap();
        apply(&mut spans, patches);
        assert_eq!(spans[0].attributes, vec![kv("m", s("[masked]"))]);
        assert_eq!(spans[1].name, "renamed");
    }

    #[test]
    fn several_removals_in_one_list_keep_the_others_in_order() {
        let mut spans = spans();
        let view = build(&spans).unwrap();
        let mut sv = StringsView::new(view).unwrap();
        sv.remove(6); // user
        sv.replace(10, "X"); // list's first item, kept
        sv.remove(12); // map
        let (_, flat) = sv.into_patches().unwrap();
        apply(&mut spans, flat.to_patches().unwrap());
        let keys: Vec<&str> = spans[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["n", "list"]);
        assert_eq!(
            spans[0].attributes[1].value,
            AnyValue::Array(vec![s("X"), AnyValue::Bool(true), s("y")])
        );
    }

    #[test]
    fn a_patched_shared_resource_reaches_every_span_after_the_last_patch() {
        let mut spans = spans();
        spans.push(Span {
            span_id: SpanId(3),
            ..spans[1].clone()
        });
        apply(
            &mut spans,
            vec![Patch {
                index: 0,
                op: Op::Replace("renamed".into()),
            }],
        );
        for s in &spans {
            assert_eq!(s.resource.service_name, "renamed");
            assert!(Arc::ptr_eq(&s.resource, &spans[0].resource));
        }
    }

    #[test]
    fn no_patches_leave_spans_untouched() {
        let original = spans();
        let mut spans = original.clone();
        apply(&mut spans, Vec::new());
        assert_eq!(spans, original);
        assert!(Arc::ptr_eq(&spans[0].resource, &original[0].resource));
        // A patch on the second span only keeps the first span's shared values as they were.
        apply(
            &mut spans,
            vec![Patch {
                index: 21,
                op: Op::Replace("renamed".into()),
            }],
        );
        assert_eq!(spans[1].name, "renamed");
        assert!(Arc::ptr_eq(&spans[1].resource, &original[0].resource));
    }

    #[test]
    fn bad_patches_are_refused_naming_the_problem() {
        let view = build(&spans()).unwrap();
        let p = |index: u32, op: Op| Patch { index, op };
        let err =
            |patches: Vec<Patch>, cap: u64| check(&view, &patches, cap).unwrap_err().to_string();
        assert_eq!(
            err(vec![p(24, Op::Remove)], u64::MAX),
            "patch for string 24, but the view holds 24 strings"
        );
        assert_eq!(
            err(vec![p(u32::MAX, Op::Replace("x".into()))], u64::MAX),
            "patch for string 4294967295, but the view holds 24 strings"
        );
        assert_eq!(
            err(vec![p(6, Op::Remove), p(6, Op::Remove)], u64::MAX),
            "patch for string 6 after one for string 6: patches must be in strictly ascending order"
        );
        assert_eq!(
            err(vec![p(5, Op::Remove)], u64::MAX),
            "patch for string 5: remove applies to attribute keys, not to a span name"
        );
        assert_eq!(
            err(vec![p(7, Op::SetValue("x".into()))], u64::MAX),
            "patch for string 7: set-value applies to attribute keys, not to a string value"
        );
        assert_eq!(
            err(
                vec![
                    p(2, Op::Replace("abc".into())),
                    p(7, Op::Replace("de".into()))
                ],
                4
            ),
            "patches carry 5 bytes of replacement text, over the cap of 4"
        );
        // Unchecked nonsense is ignored by apply, never a panic.
        let mut spans = spans();
        apply(
            &mut spans,
            vec![
                p(9, Op::Replace("k".into())),
                p(3, Op::Remove),
                p(999, Op::Remove),
            ],
        );
        assert_eq!(spans[0].attributes[2].key, "k");
    }

    #[test]
    fn flat_patches_from_elsewhere_are_checked() {
        let bad = |text: &str, ops: Vec<u32>| {
            Patches {
                text: text.into(),
                ops,
            }
            .to_patches()
            .unwrap_err()
            .to_string()
        };
        assert_eq!(bad("", vec![1, 0]), "2 op words is not a multiple of 4");
        assert_eq!(
            bad("ab", vec![3, 0, 1, 5]),
            "patch for string 3: replacement 1+5 is not a slice of the 2-byte text"
        );
        assert_eq!(
            bad("é", vec![3, 1, 0, 1]),
            "patch for string 3: replacement 0+1 is not a slice of the 2-byte text"
        );
        assert_eq!(
            bad("", vec![3, 7, 0, 0]),
            "patch for string 3: unknown op 7"
        );
        let view = build(&spans()).unwrap();
        let mut sv = StringsView::new(view).unwrap();
        sv.remove(5);
        assert_eq!(
            sv.into_patches().unwrap_err().to_string(),
            "patch for string 5: remove applies to attribute keys, not to a span name"
        );
    }

    #[test]
    fn views_from_elsewhere_are_checked() {
        let bad = |text: &str, records: Vec<u32>| {
            StringsView::new(View {
                text: text.into(),
                records,
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad("ab", vec![0, 1, 0]),
            "invalid strings view: 3 record words is not a multiple of 4"
        );
        assert_eq!(
            bad("ab", vec![1, 2, 0, NO_OWNER]),
            "invalid strings view: string 0 (1+2) is not a slice of the 2-byte text"
        );
        assert_eq!(
            bad("é", vec![1, 1, 0, NO_OWNER]),
            "invalid strings view: string 0 (1+1) is not a slice of the 2-byte text"
        );
        assert_eq!(
            bad("ab", vec![0, 1, 9, NO_OWNER]),
            "invalid strings view: string 0 has kind 9"
        );
        assert_eq!(
            bad("ab", vec![0, 1, 5, 0]),
            "invalid strings view: string 0 has owner 0, not an earlier string"
        );
        let sv = StringsView::new(View::default()).unwrap();
        assert!(sv.is_empty());
        assert_eq!(sv.text(3), "");
        assert_eq!(sv.get(0), None);
    }
}
