//! The strings view of Spoor's plugin contract 0.2 (world `plugin`, mode `strings`, in
//! `plugins/wit/plugin.wit`): the one definition of the walk order, shared by the host (which
//! builds the view, checks the plugin's patches and applies them in place) and the SDK (which
//! hands plugins a typed [`StringsView`] and runs the same path natively in tests). Both build
//! the view with [`build_with_layout`], check the flat answer as it came ([`check_flat_with`])
//! and apply it with [`apply_flat`], which goes straight to the spans the patches name (the
//! [`Layout`] says where each span's strings are) and reuses the buffers of replaced strings.
//! [`build`], [`check`] and [`apply`] (which walks from the first string) are the simpler
//! forms the others are tested against.
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
    #[inline]
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
    #[inline]
    pub fn len(&self) -> usize {
        self.records.len() / WORDS
    }

    /// Whether the view holds no string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of string `i`, if `i` is in range and its kind word is valid.
    #[inline]
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
        self.whole()?;
        self.ops
            .chunks_exact(WORDS)
            .map(|w| {
                let (index, op, text) = self.read(w)?;
                let op = match op {
                    OP_REPLACE => Op::Replace(text.to_owned()),
                    OP_SET_VALUE => Op::SetValue(text.to_owned()),
                    _ => Op::Remove,
                };
                Ok(Patch { index, op })
            })
            .collect()
    }

    /// Refuses what [`Patches::to_patches`] refuses, with the same messages, without making a
    /// string per patch.
    pub fn validate(&self) -> Result<(), PatchError> {
        self.whole()?;
        self.ops
            .chunks_exact(WORDS)
            .try_for_each(|w| self.read(w).map(drop))
    }

    /// Whole patches only.
    fn whole(&self) -> Result<(), PatchError> {
        if self.ops.len() % WORDS != 0 {
            return Err(PatchError::Malformed(format!(
                "{} op words is not a multiple of {WORDS}",
                self.ops.len()
            )));
        }
        Ok(())
    }

    /// One patch's index, known op word and replacement text.
    fn read<'a>(&'a self, w: &[u32]) -> Result<(u32, u32, &'a str), PatchError> {
        let (index, op, offset, len) = (w[0], w[1], w[2] as usize, w[3] as usize);
        let text = self.text.get(offset..offset.saturating_add(len)).ok_or_else(|| {
            PatchError::Malformed(format!(
                "patch for string {index}: replacement {offset}+{len} is not a slice of the {}-byte text",
                self.text.len()
            ))
        })?;
        if !matches!(op, OP_REPLACE | OP_SET_VALUE | OP_REMOVE) {
            return Err(PatchError::Malformed(format!(
                "patch for string {index}: unknown op {op}"
            )));
        }
        Ok((index, op, text))
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
    /// The index the next string gets.
    fn next(&self) -> u32 {
        (self.records.len() / WORDS) as u32
    }

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
    build_inner(spans, view, None)
}

/// [`build_into`], also recording in `layout` where each span's strings start, so that
/// [`apply_flat`] goes straight to the spans its patches name. On error both are left empty.
pub fn build_with_layout(
    spans: &[Span],
    view: &mut View,
    layout: &mut Layout,
) -> Result<(), TooLarge> {
    build_inner(spans, view, Some(layout))
}

fn build_inner(
    spans: &[Span],
    view: &mut View,
    mut layout: Option<&mut Layout>,
) -> Result<(), TooLarge> {
    view.text.clear();
    view.records.clear();
    if let Some(layout) = layout.as_deref_mut() {
        layout.spans.clear();
        layout.spans.reserve(spans.len());
        layout.len = 0;
    }
    let mut b = Builder {
        text: std::mem::take(&mut view.text),
        records: std::mem::take(&mut view.records),
        too_large: false,
    };
    let mut resources: Seen<u32> = Seen::new();
    let mut scopes: Seen<()> = Seen::new();
    for span in spans {
        let start = b.next();
        let mut first = 0;
        let service = match resources.get(ptr(&span.resource)) {
            Some(service) => service,
            None => {
                let r: &Resource = &span.resource;
                let service = b.push(Kind::Service, &r.service_name, NO_OWNER);
                b.attributes(&r.attributes, service);
                resources.insert(ptr(&span.resource), service);
                first |= FIRST_RESOURCE;
                service
            }
        };
        if scopes.get(ptr(&span.scope)).is_none() {
            let s: &Scope = &span.scope;
            let scope = b.push(Kind::Scope, &s.name, NO_OWNER);
            b.attributes(&s.attributes, scope);
            scopes.insert(ptr(&span.scope), ());
            first |= FIRST_SCOPE;
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
        if let Some(layout) = layout.as_deref_mut() {
            layout.spans.push(SpanAt { start, name, first });
        }
    }
    if b.too_large {
        if let Some(layout) = layout {
            layout.spans.clear();
        }
        return Err(TooLarge {
            bytes: spans.iter().map(text_bytes).sum(),
        });
    }
    if let Some(layout) = layout {
        layout.len = b.next();
    }
    view.text = b.text;
    view.records = b.records;
    Ok(())
}

/// [`SpanAt::first`]: the span is the first of the batch with its resource (whose strings
/// open the span's part of the view).
const FIRST_RESOURCE: u8 = 1;
/// [`SpanAt::first`]: the span is the first with its scope (whose strings follow the
/// resource's, if any, and come before the span name).
const FIRST_SCOPE: u8 = 2;

/// Where one span's strings are in a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SpanAt {
    /// Index of the span's first string: its resource's service or its scope's name when it is
    /// the first span to meet them, else its name.
    start: u32,
    /// Index of the span name.
    name: u32,
    /// [`FIRST_RESOURCE`] and [`FIRST_SCOPE`].
    first: u8,
}

/// Where each span's strings start in a view, recorded by [`build_with_layout`] while it
/// walks: what lets [`apply_flat`] go straight to the spans its patches name (a span's strings
/// run from its start to the next span's) instead of walking the batch from the first string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    spans: Vec<SpanAt>,
    /// Strings in the view.
    len: u32,
}

impl Layout {
    /// An empty layout (of no spans), to build into.
    pub const fn new() -> Layout {
        Layout {
            spans: Vec::new(),
            len: 0,
        }
    }

    /// The layout of the view of `spans`, without building the view (counts strings only).
    pub fn of(spans: &[Span]) -> Layout {
        let mut layout = Layout {
            spans: Vec::with_capacity(spans.len()),
            len: 0,
        };
        let mut resources: Seen<()> = Seen::new();
        let mut scopes: Seen<()> = Seen::new();
        let mut next: u32 = 0;
        for span in spans {
            let start = next;
            let mut first = 0;
            if resources.get(ptr(&span.resource)).is_none() {
                resources.insert(ptr(&span.resource), ());
                next = next.wrapping_add(1 + count_attributes(&span.resource.attributes));
                first |= FIRST_RESOURCE;
            }
            if scopes.get(ptr(&span.scope)).is_none() {
                scopes.insert(ptr(&span.scope), ());
                next = next.wrapping_add(1 + count_attributes(&span.scope.attributes));
                first |= FIRST_SCOPE;
            }
            layout.spans.push(SpanAt {
                start,
                name: next,
                first,
            });
            next = next.wrapping_add(count_span(span));
        }
        layout.len = next;
        layout
    }

    /// How many spans it describes.
    pub fn spans(&self) -> usize {
        self.spans.len()
    }
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

/// [`Patches::to_patches`] and [`check_with`] in one, on the flat form (no string per patch):
/// the same refusals with the same messages, in the same order (the form of every patch first,
/// then order, range, kinds and the cap).
pub fn check_flat_with(
    len: usize,
    kind: impl Fn(u32) -> Option<Kind>,
    patches: &Patches,
    cap: u64,
) -> Result<(), PatchError> {
    patches.validate()?;
    check_ops(len, kind, &patches.ops, cap)
}

/// The second half of [`check_flat_with`], for patches whose form is known to be right (the
/// SDK's own): order, range, kinds, the cap.
fn check_ops(
    len: usize,
    kind: impl Fn(u32) -> Option<Kind>,
    ops: &[u32],
    cap: u64,
) -> Result<(), PatchError> {
    let mut previous: Option<u32> = None;
    let mut bytes: u64 = 0;
    for w in ops.chunks_exact(WORDS) {
        let (index, op, replacement) = (w[0], w[1], u64::from(w[3]));
        if let Some(previous) = previous {
            if index <= previous {
                return Err(PatchError::Order { index, previous });
            }
        }
        previous = Some(index);
        let Some(kind) = kind(index) else {
            return Err(PatchError::OutOfRange { index, len });
        };
        if kind != Kind::Key && op != OP_REPLACE {
            let op = if op == OP_SET_VALUE {
                "set-value"
            } else {
                "remove"
            };
            return Err(PatchError::WrongKind { index, op, kind });
        }
        if op != OP_REMOVE {
            bytes = bytes.saturating_add(replacement);
        }
        if bytes > cap {
            return Err(PatchError::TooLarge { bytes, cap });
        }
    }
    Ok(())
}

/// Applies checked patches to the spans the view was built from, walking the same order from
/// the first string (counting the strings of the spans it steps over). Shared resources and
/// scopes that are patched are copied once and stay shared. Patches that [`check`] would refuse
/// are ignored (never a panic). The host uses [`apply_flat`], which gives the same spans without
/// the walk; this is what the tests and the fuzz target hold it to.
pub fn apply(spans: &mut [Span], patches: Vec<Patch>) {
    if patches.is_empty() {
        return;
    }
    let flat = Patches::from_patches(&patches);
    let mut a = Applier::new(&flat);
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
        let exhausted = a.peek().is_none();
        if exhausted && !replaced_shared {
            break;
        }
        match resources.get(ptr(&span.resource)) {
            Some(i) => span.resource = Arc::clone(&resource_arcs[i].1),
            None => {
                let key = ptr(&span.resource);
                let new = a.resource(&span.resource);
                replaced_shared |= new.is_some();
                let new = new.unwrap_or_else(|| Arc::clone(&span.resource));
                resources.insert(key, resource_arcs.len());
                resource_arcs.push((Arc::clone(&span.resource), Arc::clone(&new)));
                span.resource = new;
            }
        }
        match scopes.get(ptr(&span.scope)) {
            Some(i) => span.scope = Arc::clone(&scope_arcs[i].1),
            None => {
                let key = ptr(&span.scope);
                let new = a.scope(&span.scope);
                replaced_shared |= new.is_some();
                let new = new.unwrap_or_else(|| Arc::clone(&span.scope));
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
        a.span(span);
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

/// Strings of a value in the walk (inlined for the common flat values; nesting recurses).
#[inline]
fn count_value(value: &AnyValue) -> u32 {
    match value {
        AnyValue::Str(_) => 1,
        AnyValue::Array(_) | AnyValue::Map(_) => count_nested(value),
        _ => 0,
    }
}

fn count_nested(value: &AnyValue) -> u32 {
    match value {
        AnyValue::Array(items) => items.iter().map(count_value).sum(),
        AnyValue::Map(attributes) => count_attributes(attributes),
        _ => count_value(value),
    }
}

/// Applies flat patches, checked against the view that [`build_with_layout`] built from these
/// spans (with `layout`), in place: the same result as [`apply`] of the same patches, without a
/// string per patch and without walking the spans no patch names. The layout says where each
/// span's strings are, so only the patched spans' own strings are walked (and the shared
/// resources and scopes that are patched: each is copied once and every span that shares it is
/// pointed at the copy). A replaced string keeps its buffer when the replacement fits it (and
/// the buffer is not much larger), so most patches allocate nothing. Patches that
/// [`check_flat_with`] would refuse are ignored (never a panic); a layout of other spans is
/// replaced by [`Layout::of`] these spans.
pub fn apply_flat(spans: &mut [Span], patches: &Patches, layout: &Layout) {
    if patches.ops.len() < WORDS {
        return;
    }
    if layout.spans.len() != spans.len() {
        return apply_flat(spans, patches, &Layout::of(spans));
    }
    let mut a = Applier::new(patches);
    // Patched shared values: the original (kept alive so that identities stay unique while
    // spans are compared with it) and its patched copy.
    let mut resources: Vec<(Arc<Resource>, Arc<Resource>)> = Vec::new();
    let mut scopes: Vec<(Arc<Scope>, Arc<Scope>)> = Vec::new();
    let mut s = 0;
    while let Some(p) = a.peek() {
        // The span whose strings hold string `p`: the last one starting at or before it.
        // Patches are ascending, so look ahead a little before searching.
        let ahead = &layout.spans[s..];
        let k = match ahead.iter().take(8).position(|at| at.start > p) {
            Some(k) => k,
            None => ahead.partition_point(|at| at.start <= p),
        };
        let Some(k) = k.checked_sub(1) else {
            // Below the current span: only out-of-order patches (unchecked) get here.
            a.skip();
            continue;
        };
        s += k;
        let at = layout.spans[s];
        let end = layout.spans.get(s + 1).map_or(layout.len, |n| n.start);
        let span = &mut spans[s];
        a.next = at.start;
        if at.first & FIRST_RESOURCE != 0 {
            if let Some(new) = a.resource(&span.resource) {
                let old = std::mem::replace(&mut span.resource, Arc::clone(&new));
                resources.push((old, new));
            }
        }
        if at.first & FIRST_SCOPE != 0 {
            if let Some(new) = a.scope(&span.scope) {
                let old = std::mem::replace(&mut span.scope, Arc::clone(&new));
                scopes.push((old, new));
            }
        }
        a.next = at.name;
        if a.peek().is_some_and(|p| p < end) {
            a.span(span);
        }
        // Whatever is left for this span's strings names none of them (unchecked patches).
        while a.peek().is_some_and(|p| p < end) {
            a.skip();
        }
        s += 1;
        if s == layout.spans.len() {
            break;
        }
    }
    if resources.is_empty() && scopes.is_empty() {
        return;
    }
    // Later spans share what their first span had: point them at the patched copies.
    let mut res: Seen<usize> = Seen::new();
    for (i, (old, _)) in resources.iter().enumerate() {
        res.insert(ptr(old), i);
    }
    let mut sco: Seen<usize> = Seen::new();
    for (i, (old, _)) in scopes.iter().enumerate() {
        sco.insert(ptr(old), i);
    }
    for span in spans.iter_mut() {
        if let Some(i) = res.get(ptr(&span.resource)) {
            span.resource = Arc::clone(&resources[i].1);
        }
        if let Some(i) = sco.get(ptr(&span.scope)) {
            span.scope = Arc::clone(&scopes[i].1);
        }
    }
}

/// `s` becomes `text`, in its own buffer when that holds `text` and is not more than twice
/// what it needs (so a long value redacted to a short mask does not keep its memory).
fn set_string(s: &mut String, text: &str) {
    if s.capacity() >= text.len() && s.capacity() <= text.len().max(32) * 2 {
        s.clear();
        s.push_str(text);
    } else {
        *s = text.to_owned();
    }
}

/// Applies flat patches in walk order: `next` is the index of the next string it is shown.
struct Applier<'a> {
    /// Index of the next string of the walk.
    next: u32,
    /// The patches not applied yet.
    ops: &'a [u32],
    text: &'a str,
}

impl<'a> Applier<'a> {
    fn new(patches: &'a Patches) -> Self {
        Applier {
            next: 0,
            ops: &patches.ops,
            text: &patches.text,
        }
    }

    /// A resource met for the first time at `next`: a patched copy, or `None` (no patch falls
    /// in it; it is stepped over).
    fn resource(&mut self, resource: &Resource) -> Option<Arc<Resource>> {
        self.shared(resource, &resource.attributes, |a, r| {
            a.string(&mut r.service_name);
            a.attributes(&mut r.attributes);
        })
    }

    /// [`Applier::resource`] for a scope.
    fn scope(&mut self, scope: &Scope) -> Option<Arc<Scope>> {
        self.shared(scope, &scope.attributes, |a, s| {
            a.string(&mut s.name);
            a.attributes(&mut s.attributes);
        })
    }

    /// A shared value holding one string and `attributes`: `patch` applied to a copy when a
    /// patch falls in it, else stepped over.
    fn shared<T: Clone>(
        &mut self,
        value: &T,
        attributes: &[KeyValue],
        patch: impl FnOnce(&mut Self, &mut T),
    ) -> Option<Arc<T>> {
        let n = 1 + count_attributes(attributes);
        if !self.touches(n) {
            self.next = self.next.wrapping_add(n);
            return None;
        }
        let mut copy = value.clone();
        patch(self, &mut copy);
        Some(Arc::new(copy))
    }

    /// A span's own strings: name, attributes, events, links.
    fn span(&mut self, span: &mut Span) {
        self.string(&mut span.name);
        self.attributes(&mut span.attributes);
        for event in &mut span.events {
            self.string(&mut event.name);
            self.attributes(&mut event.attributes);
        }
        for link in &mut span.links {
            self.string(&mut link.trace_state);
            self.attributes(&mut link.attributes);
        }
    }

    /// The index of the next patch.
    fn peek(&self) -> Option<u32> {
        (self.ops.len() >= WORDS).then(|| self.ops[0])
    }

    /// The index of the next patch at or after the next string: patches left behind name
    /// strings of a value that a set-value replaced, and are dropped.
    fn upcoming(&mut self) -> Option<u32> {
        while self.peek().is_some_and(|p| p < self.next) {
            self.skip();
        }
        self.peek()
    }

    /// Drops the next patch.
    fn skip(&mut self) {
        self.ops = self.ops.get(WORDS..).unwrap_or_default();
    }

    /// Whether a patch falls among the next `n` strings.
    fn touches(&mut self, n: u32) -> bool {
        self.upcoming().is_some_and(|p| p - self.next < n)
    }

    /// The patch for the next string, if any (its op word and text); advances.
    fn take(&mut self) -> Option<(u32, &'a str)> {
        let index = self.next;
        let upcoming = self.upcoming();
        self.next = index.wrapping_add(1);
        if upcoming != Some(index) {
            return None;
        }
        let (op, offset, len) = (self.ops[1], self.ops[2] as usize, self.ops[3] as usize);
        self.skip();
        let text = self.text.get(offset..offset.saturating_add(len))?;
        Some((op, text))
    }

    /// A string that is not a key: only `replace` applies.
    fn string(&mut self, s: &mut String) {
        if let Some((OP_REPLACE, text)) = self.take() {
            set_string(s, text);
        }
    }

    fn attributes(&mut self, attributes: &mut Vec<KeyValue>) {
        let mut removed: Vec<usize> = Vec::new();
        for (at, kv) in attributes.iter_mut().enumerate() {
            let Some(p) = self.upcoming() else {
                break; // nothing left to apply anywhere
            };
            // An attribute no patch names is stepped over in one go.
            let n = 1 + count_value(&kv.value);
            if p - self.next >= n {
                self.next = self.next.wrapping_add(n);
                continue;
            }
            match self.take() {
                Some((OP_REPLACE, text)) => set_string(&mut kv.key, text),
                Some((OP_SET_VALUE, text)) => {
                    // The old value's strings are skipped; the new one is not in the view.
                    self.next = self.next.wrapping_add(count_value(&kv.value));
                    match &mut kv.value {
                        AnyValue::Str(s) => set_string(s, text),
                        other => *other = AnyValue::Str(text.to_owned()),
                    }
                    continue;
                }
                Some((OP_REMOVE, _)) => removed.push(at),
                _ => {}
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
        let text = view.text.as_str();
        let kinds = Kind::ALL.len() as u32;
        for (i, r) in view.records.chunks_exact(WORDS).enumerate() {
            let (offset, len) = (r[0] as usize, r[1] as usize);
            let fits = offset.checked_add(len).is_some_and(|end| {
                end <= text.len() && text.is_char_boundary(offset) && text.is_char_boundary(end)
            });
            if fits && r[2] < kinds && (r[3] == NO_OWNER || (r[3] as usize) < i) {
                continue;
            }
            if !fits {
                return Err(InvalidView(format!(
                    "string {i} ({offset}+{len}) is not a slice of the {}-byte text",
                    text.len()
                )));
            }
            if Kind::from_word(r[2]).is_none() {
                return Err(InvalidView(format!("string {i} has kind {}", r[2])));
            }
            return Err(InvalidView(format!(
                "string {i} has owner {}, not an earlier string",
                r[3]
            )));
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

    /// The four words of string `i`.
    #[inline]
    fn record(&self, i: usize) -> Option<&[u32; WORDS]> {
        self.view
            .records
            .get(i.checked_mul(WORDS)?..)?
            .first_chunk()
    }

    /// The kind of string `i` (`None` when out of range).
    #[inline]
    pub fn kind(&self, i: usize) -> Option<Kind> {
        self.view.kind(i)
    }

    #[inline]
    fn text_of(&self, r: &[u32; WORDS]) -> &str {
        let (offset, len) = (r[0] as usize, r[1] as usize);
        self.view
            .text
            .get(offset..offset.saturating_add(len))
            .unwrap_or("")
    }

    /// The text of string `i` (empty when out of range).
    #[inline]
    pub fn text(&self, i: usize) -> &str {
        self.record(i).map_or("", |r| self.text_of(r))
    }

    /// The string that string `i` belongs to.
    #[inline]
    pub fn owner(&self, i: usize) -> Option<usize> {
        self.record(i)
            .map(|r| r[3])
            .filter(|&o| o != NO_OWNER)
            .map(|o| o as usize)
    }

    /// String `i` as an [`Entry`] (its record read once: the loop of most plugins).
    #[inline]
    pub fn get(&self, i: usize) -> Option<Entry<'_>> {
        let r = self.record(i)?;
        Some(Entry {
            index: i,
            kind: Kind::from_word(r[2])?,
            text: self.text_of(r),
            owner: (r[3] != NO_OWNER).then_some(r[3] as usize),
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
        // Recorded by `patch`: whole, known ops, slices of the text; order and kinds are left.
        let view = &self.view;
        check_ops(
            view.len(),
            |i| view.kind(i as usize),
            &patches.ops,
            u64::MAX,
        )?;
        Ok((self.view, patches))
    }
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
    fn the_view_check_refuses_what_slicing_refuses() {
        let mut rng = Rng(3);
        for round in 0..5000 {
            let text: String = (0..rng.below(6)).map(|_| rng.text()).collect();
            let n = text.len() as u32;
            let records: Vec<u32> = (0..rng.below(5) as u32)
                .flat_map(|i| {
                    let offset = [0, 1, 2, n / 2, n, n + 1, u32::MAX][rng.below(7)];
                    let len = [0, 1, 2, 3, n, u32::MAX][rng.below(6)];
                    let kind = [0, 5, 6, 7, 9][rng.below(5)];
                    let owner = [NO_OWNER, 0, i, i.saturating_sub(1), 99][rng.below(5)];
                    [offset, len, kind, owner]
                })
                .collect();
            let sliced = records.chunks_exact(WORDS).enumerate().all(|(i, r)| {
                let (offset, len) = (r[0] as usize, r[1] as usize);
                offset
                    .checked_add(len)
                    .and_then(|end| text.get(offset..end))
                    .is_some()
                    && Kind::from_word(r[2]).is_some()
                    && (r[3] == NO_OWNER || (r[3] as usize) < i)
            });
            let view = View { text, records };
            assert_eq!(
                StringsView::new(view.clone()).is_ok(),
                sliced,
                "round {round}: {view:?}"
            );
        }
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
            bad("aé", vec![0, 1, 0, NO_OWNER, 0, 2, 0, NO_OWNER]),
            "invalid strings view: string 1 (0+2) is not a slice of the 3-byte text"
        );
        assert_eq!(
            bad("ab", vec![u32::MAX, 2, 0, NO_OWNER]),
            "invalid strings view: string 0 (4294967295+2) is not a slice of the 2-byte text"
        );
        assert_eq!(
            bad("ab", vec![0, 1, 7, NO_OWNER]),
            "invalid strings view: string 0 has kind 7"
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

    /// A small deterministic generator (splitmix64) for the randomised tests below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        /// Text of 0 to 40 bytes, some of it multi-byte.
        fn text(&mut self) -> String {
            let len = self.below(12);
            (0..len)
                .map(|_| ["a", "bc", "é", "日本", "x.y", "", "@", "0123"][self.below(8)])
                .collect()
        }

        fn value(&mut self, depth: usize) -> AnyValue {
            match self.below(if depth > 1 { 3 } else { 5 }) {
                0 | 1 => AnyValue::Str(self.text()),
                2 => AnyValue::Int(self.below(100) as i64),
                3 => AnyValue::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
                _ => AnyValue::Map(self.attributes(depth + 1, 3)),
            }
        }

        fn attributes(&mut self, depth: usize, max: usize) -> Vec<KeyValue> {
            (0..self.below(max + 1))
                .map(|_| KeyValue::new(self.text(), self.value(depth)))
                .collect()
        }
    }

    /// A batch with every kind of string: shared resources and scopes (some met again after
    /// others), nested arrays and maps, events and links, some spans without anything.
    fn random_spans(rng: &mut Rng, n: usize) -> Vec<Span> {
        let resources: Vec<Arc<Resource>> = (0..1 + rng.below(4))
            .map(|_| {
                Arc::new(Resource {
                    service_name: rng.text(),
                    attributes: rng.attributes(0, 3),
                    ..Default::default()
                })
            })
            .collect();
        let scopes: Vec<Arc<Scope>> = (0..1 + rng.below(3))
            .map(|_| {
                Arc::new(Scope {
                    name: rng.text(),
                    attributes: rng.attributes(0, 2),
                    ..Default::default()
                })
            })
            .collect();
        (0..n)
            .map(|i| Span {
                span_id: SpanId(i as u64 + 1),
                name: rng.text(),
                attributes: rng.attributes(0, 6),
                events: (0..rng.below(3))
                    .map(|_| Event {
                        name: rng.text(),
                        attributes: rng.attributes(0, 2),
                        ..Default::default()
                    })
                    .collect(),
                links: (0..rng.below(2))
                    .map(|_| Link {
                        trace_state: rng.text(),
                        attributes: rng.attributes(0, 2),
                        ..Default::default()
                    })
                    .collect(),
                resource: Arc::clone(&resources[rng.below(resources.len())]),
                scope: Arc::clone(&scopes[rng.below(scopes.len())]),
                ..Default::default()
            })
            .collect()
    }

    /// Valid patches for `view`: about `percent` of its strings, each with an op its kind allows.
    fn random_patches(rng: &mut Rng, view: &View, percent: usize) -> Patches {
        let mut flat = Patches::default();
        for i in 0..view.len() {
            if !rng.chance(percent) {
                continue;
            }
            let op = match view.kind(i) {
                Some(Kind::Key) => match rng.below(3) {
                    0 => Op::Replace(rng.text()),
                    1 => Op::SetValue(rng.text()),
                    _ => Op::Remove,
                },
                _ => Op::Replace(rng.text()),
            };
            flat.push(i as u32, &op);
        }
        flat
    }

    /// Which spans share a resource, and which a scope.
    fn sharing(spans: &[Span]) -> Vec<(bool, bool)> {
        let mut pairs = Vec::new();
        for a in spans {
            for b in spans {
                pairs.push((
                    Arc::ptr_eq(&a.resource, &b.resource),
                    Arc::ptr_eq(&a.scope, &b.scope),
                ));
            }
        }
        pairs
    }

    #[test]
    fn addressed_patches_give_what_the_walk_gives_on_random_batches() {
        let mut rng = Rng(7);
        for round in 0..400 {
            let n = 1 + rng.below(30);
            let spans = random_spans(&mut rng, n);
            let mut view = View::default();
            let mut layout = Layout::default();
            build_with_layout(&spans, &mut view, &mut layout).unwrap();
            assert_eq!(view, build(&spans).unwrap(), "round {round}");
            assert_eq!(layout, Layout::of(&spans), "round {round}");
            let percent = [1, 5, 30, 100][round % 4];
            let flat = random_patches(&mut rng, &view, percent);
            check_flat_with(view.len(), |i| view.kind(i as usize), &flat, u64::MAX).unwrap();
            let patches = flat.to_patches().unwrap();
            check(&view, &patches, u64::MAX).unwrap();

            let mut walked = spans.clone();
            apply(&mut walked, patches);
            let mut addressed = spans.clone();
            apply_flat(&mut addressed, &flat, &layout);
            assert_eq!(addressed, walked, "round {round}");
            assert_eq!(sharing(&addressed), sharing(&walked), "round {round}");
            // Another batch's layout (here: none) is not trusted.
            let mut unlaid = spans.clone();
            apply_flat(&mut unlaid, &flat, &Layout::default());
            assert_eq!(unlaid, walked, "round {round}");
        }
    }

    #[test]
    fn a_patch_on_a_shared_resource_or_scope_reaches_every_span_that_shares_it() {
        let mut spans = spans();
        spans.push(Span {
            span_id: SpanId(3),
            ..spans[1].clone()
        });
        let other = Arc::new(Resource {
            service_name: "other".into(),
            ..Default::default()
        });
        spans.push(Span {
            span_id: SpanId(4),
            resource: Arc::clone(&other),
            ..spans[1].clone()
        });
        let mut view = View::default();
        let mut layout = Layout::default();
        build_with_layout(&spans, &mut view, &mut layout).unwrap();
        let mut flat = Patches::default();
        flat.push(2, &Op::Replace("h2".into())); // the shared resource's attribute value
        flat.push(3, &Op::Replace("lib2".into())); // the shared scope's name
        check_flat_with(view.len(), |i| view.kind(i as usize), &flat, u64::MAX).unwrap();
        let original = spans.clone();
        apply_flat(&mut spans, &flat, &layout);
        for s in &spans[..3] {
            assert_eq!(
                s.resource.attributes,
                vec![kv("host", AnyValue::Str("h2".into()))]
            );
            assert_eq!(s.scope.name, "lib2");
            assert!(Arc::ptr_eq(&s.resource, &spans[0].resource));
            assert!(!Arc::ptr_eq(&s.resource, &original[0].resource));
        }
        // The fourth span shares the patched scope but not the resource, which stays as it was.
        assert_eq!(spans[3].scope.name, "lib2");
        assert!(Arc::ptr_eq(&spans[3].resource, &other));
        assert_eq!(spans[0].name, original[0].name);
    }

    #[test]
    fn replacements_reuse_a_buffer_that_fits_and_free_one_far_too_large() {
        let mut s = String::with_capacity(20);
        s.push_str("a@example.com");
        let before = s.as_ptr();
        set_string(&mut s, "[REDACTED:email]"); // grows within the buffer
        assert_eq!((s.as_str(), s.as_ptr()), ("[REDACTED:email]", before));
        set_string(&mut s, "x"); // shrinks within it
        assert_eq!((s.as_str(), s.as_ptr()), ("x", before));
        set_string(&mut s, &"y".repeat(21)); // too long for it: a new one
        assert_eq!(s, "y".repeat(21));
        let mut long = "z".repeat(1000);
        set_string(&mut long, "[REDACTED]"); // a tiny text does not keep 1000 bytes
        assert_eq!(long, "[REDACTED]");
        assert!(long.capacity() < 64, "{}", long.capacity());

        // Through apply_flat: a key's value grows and shrinks, a non-string value becomes one.
        let mut spans = spans();
        let mut view = View::default();
        let mut layout = Layout::default();
        build_with_layout(&spans, &mut view, &mut layout).unwrap();
        let mut flat = Patches::default();
        flat.push(6, &Op::SetValue("a much longer value than jane".into()));
        flat.push(8, &Op::SetValue("3".into()));
        flat.push(22, &Op::SetValue("b".into()));
        apply_flat(&mut spans, &flat, &layout);
        let value = |s: &Span, i: usize| s.attributes[i].value.clone();
        assert_eq!(
            value(&spans[0], 0),
            AnyValue::Str("a much longer value than jane".into())
        );
        assert_eq!(value(&spans[0], 1), AnyValue::Str("3".into()));
        assert_eq!(value(&spans[1], 0), AnyValue::Str("b".into()));
    }

    #[test]
    fn flat_checks_refuse_what_the_patch_checks_refuse_with_the_same_message() {
        let mut rng = Rng(11);
        let view = build(&spans()).unwrap();
        for round in 0..3000 {
            let mut flat = random_patches(&mut rng, &view, 20);
            // Spoil some: any word, a partial patch, a shuffled pair.
            if rng.chance(70) && !flat.ops.is_empty() {
                let at = rng.below(flat.ops.len());
                flat.ops[at] = [0, 1, 2, 3, 7, 23, 24, 25, u32::MAX][rng.below(9)];
            }
            if rng.chance(10) {
                flat.ops.push(1);
            }
            if rng.chance(10) && flat.len() > 1 {
                flat.ops.swap(0, WORDS);
            }
            let cap = [u64::MAX, 10, 0][rng.below(3)];
            let old = flat
                .to_patches()
                .and_then(|p| check(&view, &p, cap))
                .map_err(|e| e.to_string());
            let new = check_flat_with(view.len(), |i| view.kind(i as usize), &flat, cap)
                .map_err(|e| e.to_string());
            assert_eq!(new, old, "round {round}: {flat:?}");
            assert_eq!(
                flat.validate().map_err(|e| e.to_string()),
                flat.to_patches().map(drop).map_err(|e| e.to_string())
            );
            // Unchecked, they are ignored where they make no sense: never a panic.
            let mut spans = spans();
            let layout = Layout::of(&spans);
            apply_flat(&mut spans, &flat, &layout);
        }
    }
}
