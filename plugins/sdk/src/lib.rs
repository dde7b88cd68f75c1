//! The Rust SDK for Spoor pipeline plugins: implement [`Plugin`], call [`export_plugin!`], build
//! for `wasm32-wasip2`, and the result is a component that fulfils the contract in
//! `plugins/wit/plugin.wit` (world `spoor:plugin/plugin@0.2.1`). A plugin that only rewrites
//! strings (redaction, renaming) implements [`StringsPlugin`] instead and is exported with
//! [`export_strings_plugin!`]: it sees a flat [`StringsView`] of the batch's strings and records
//! patches, so neither side decodes or encodes spans (see the README's "strings mode").
//!
//! ```
//! use spoor_plugin_sdk::{AnyValue, Batch, Error, Plugin};
//!
//! /// Tags every span with the deployment it passed through.
//! struct Tag {
//!     value: String,
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct TagConfig {
//!     value: String,
//! }
//!
//! impl Plugin for Tag {
//!     const NAME: &'static str = "tag";
//!     const VERSION: &'static str = "0.1.0";
//!     type Config = TagConfig;
//!
//!     fn configure(config: TagConfig) -> Result<Self, Error> {
//!         if config.value.is_empty() {
//!             return Err(Error::invalid_config("value", "must not be empty"));
//!         }
//!         Ok(Tag { value: config.value })
//!     }
//!
//!     fn process(&mut self, batch: &mut Batch) -> Result<(), Error> {
//!         for span in batch.iter_mut() {
//!             span.attributes.push(spoor_plugin_sdk::KeyValue::new(
//!                 "deployment",
//!                 AnyValue::Str(self.value.clone()),
//!             ));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! spoor_plugin_sdk::export_plugin!(Tag);
//!
//! // Natively, the same plugin runs through the same decode/process/encode path:
//! let out = spoor_plugin_sdk::testing::run::<Tag>(r#"{"value": "eu-1"}"#, &[Default::default()])
//!     .unwrap();
//! assert_eq!(out[0].attributes[0].key, "deployment");
//! ```
//!
//! What the SDK does for the plugin: it answers `metadata` from the trait's constants, parses
//! the JSON configuration into [`Plugin::Config`] (errors become `plugin-error::invalid-config`
//! naming the path of the offending field), keeps the configured plugin between calls, decodes
//! each batch (Spoor's block encoding, [`spoor_core::block`]) into a [`Batch`] of [`Span`]s,
//! calls [`Plugin::process`] and encodes the result. A batch the plugin only read (never
//! borrowed mutably) is handed back as the very bytes that came in, without re-encoding.
//!
//! A [`StringsPlugin`] runs in strings mode: the host sends the batch's strings view
//! (`process-strings`), the SDK checks it, calls [`StringsPlugin::rewrite`] and hands back the
//! patches in order. Its `process` export (and [`testing`]) runs the same rewrite through
//! [`Strings`], which builds the view from decoded spans and applies the patches with the code
//! the host uses ([`strings`]).
//!
//! A tail-sampling policy (world `spoor:plugin/policy`) implements [`Policy`] and is exported
//! with [`export_policy!`]: the daemon's tail sampler hands it each trace's spans once the
//! trace's decision wait is over and combines its yes or no with the other policies of
//! `[sampling.tail]`.
//!
//! The component glue (wit-bindgen) exists only when compiling for `wasm32`; natively the SDK is
//! plain Rust so that plugin logic is unit-tested with `cargo test` through [`testing`].

// The generated component glue names this crate by its package name, also from inside it.
extern crate self as spoor_plugin_sdk;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::de::DeserializeOwned;

pub mod log;
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use serde;
pub use serde_json;
pub use spoor_core;
pub use spoor_core::{
    find_attr, AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};
pub use spoor_plugin_strings as strings;
pub use spoor_plugin_strings::{Entry, Kind as StringKind, StringsView};

/// Version of the WIT contract this SDK implements (the `spoor:plugin` package version).
pub const CONTRACT_VERSION: &str = "0.2.1";

/// How the host hands a plugin its batches (the WIT `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Whole spans, block-encoded ([`Plugin`]).
    Spans,
    /// The strings view ([`StringsPlugin`]).
    Strings,
}

/// Something a plugin may ask the host for. The operator grants capabilities per plugin; a
/// plugin that asks for one that is not granted is refused at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Real wall and monotonic clocks (`std::time`); without it both read 0.
    Clock,
    /// Real randomness (WASI `random`); without it a fixed, seeded stream.
    Random,
    /// Lines written through [`log`] reach the daemon's log; without it they are dropped.
    Log,
}

/// Why a plugin refused its configuration or a batch: the WIT `plugin-error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `configure` was given settings it cannot use; the message names the field.
    InvalidConfig(String),
    /// `process` could not handle the batch; the message says why.
    Failed(String),
}

impl Error {
    /// A configuration error about `field` (a path such as `rules[2].attribute.key`).
    pub fn invalid_config(field: &str, problem: impl fmt::Display) -> Self {
        Error::InvalidConfig(format!("`{field}`: {problem}"))
    }

    /// A batch could not be processed.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m) | Error::Failed(m) => m,
        }
    }
}

/// Renders as the WIT case name and its message: `invalid-config: ...` or `failed: ...`.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(m) => write!(f, "invalid-config: {m}"),
            Error::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A pipeline plugin. One value of the type is created by [`Plugin::configure`] and then sees
/// every batch, one at a time (a component instance is single-threaded; the host may run
/// several instances of a plugin, each configured the same way, so state kept in `self` is
/// per instance).
pub trait Plugin: Sized + 'static {
    /// Short name, `[a-z0-9-]+` (checked at compile time by [`export_plugin!`]).
    const NAME: &'static str;
    /// The plugin's own version (semver).
    const VERSION: &'static str;
    /// The settings, parsed from the JSON the operator wrote (`{}` when none). Use
    /// `#[serde(deny_unknown_fields)]` so that a misspelt key is an error naming it, or
    /// [`serde_json::Value`] to take anything.
    type Config: DeserializeOwned;

    /// Capabilities the plugin needs; loading fails if the operator did not grant them all.
    fn capabilities() -> &'static [Capability] {
        &[]
    }

    /// Validates the settings and builds the plugin. Errors should be
    /// [`Error::invalid_config`] naming the field.
    fn configure(config: Self::Config) -> Result<Self, Error>;

    /// Transforms one batch in place: edit, add, remove or reorder spans. The batch that is
    /// left replaces the input in the pipeline. An error leaves the handling to the host's
    /// failure policy (pass the batch on unchanged, or drop it).
    fn process(&mut self, batch: &mut Batch) -> Result<(), Error>;
}

/// A plugin that only rewrites strings: services, span and event names, attribute keys and
/// string values (see [`strings`] for what the view holds and in which order). It never sees
/// whole spans, so neither the host nor the plugin decodes or encodes them. Export it with
/// [`export_strings_plugin!`]; test it natively through [`Strings`] (`testing::run::<Strings<P>>`).
pub trait StringsPlugin: Sized + 'static {
    /// Short name, `[a-z0-9-]+` (checked at compile time by [`export_strings_plugin!`]).
    const NAME: &'static str;
    /// The plugin's own version (semver).
    const VERSION: &'static str;
    /// The settings, as for [`Plugin::Config`].
    type Config: DeserializeOwned;

    /// Capabilities the plugin needs.
    fn capabilities() -> &'static [Capability] {
        &[]
    }

    /// Validates the settings and builds the plugin.
    fn configure(config: Self::Config) -> Result<Self, Error>;

    /// Reads the strings of one batch and records changes with [`StringsView::replace`],
    /// [`StringsView::set_value`] and [`StringsView::remove`]. Recording nothing leaves the
    /// batch as it was. An error leaves the handling to the host's failure policy.
    fn rewrite(&mut self, view: &mut StringsView) -> Result<(), Error>;
}

/// A tail-sampling policy (world `spoor:plugin/policy`): one value is made by
/// [`Policy::configure`] and then decides trace after trace (per instance, as [`Plugin`]).
/// Export it with [`export_policy!`]; test it natively with [`testing::decide`].
pub trait Policy: Sized + 'static {
    /// Short name, `[a-z0-9-]+` (checked at compile time by [`export_policy!`]).
    const NAME: &'static str;
    /// The policy's own version (semver).
    const VERSION: &'static str;
    /// The settings, as for [`Plugin::Config`].
    type Config: DeserializeOwned;

    /// Capabilities the policy needs.
    fn capabilities() -> &'static [Capability] {
        &[]
    }

    /// Validates the settings and builds the policy.
    fn configure(config: Self::Config) -> Result<Self, Error>;

    /// Whether to keep the trace: `trace` holds every span the sampler buffered for it (one
    /// trace id; order of arrival). An error leaves the handling to the host's failure policy
    /// (`pass` keeps the trace, `drop` does not).
    fn decide(&mut self, trace: &[Span]) -> Result<bool, Error>;
}

/// Builds a policy from its JSON settings, as the component's `configure` does.
pub fn configure_policy<P: Policy>(json: &str) -> Result<P, Error> {
    P::configure(parse_config(json)?)
}

/// Decides one trace given in Spoor's block encoding, as the component's `decide` does.
pub fn decide_encoded<P: Policy>(policy: &mut P, bytes: &[u8]) -> Result<bool, Error> {
    let spans = spoor_core::block::BlockReader::open(bytes)
        .and_then(|r| r.decode_all())
        .map_err(|e| Error::failed(format!("trace is not a valid block: {e}")))?;
    policy.decide(&spans)
}

/// Exports a [`Policy`] as the component's `metadata`, `configure` and `decide` (world
/// `spoor:plugin/policy`). Invoke once, in the crate's root, with the policy type. Outside
/// `wasm32` it only checks the name.
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        const _: () = ::core::assert!(
            $crate::is_valid_name(<$ty as $crate::Policy>::NAME),
            "a policy name must match [a-z0-9-]+"
        );
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            struct SpoorPolicyExport;
            impl $crate::__private::policy_bindings::Guest for SpoorPolicyExport {
                fn metadata() -> $crate::__private::policy_bindings::PolicyMetadata {
                    $crate::__private::policy_metadata::<$ty>()
                }
                fn configure(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__private::policy_bindings::PluginError>
                {
                    $crate::__private::policy_configure::<$ty>(&config)
                }
                fn decide(
                    trace: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<
                    $crate::__private::policy_bindings::Verdict,
                    $crate::__private::policy_bindings::PluginError,
                > {
                    $crate::__private::policy_decide::<$ty>(trace)
                }
            }
            $crate::__private::policy_bindings::__spoor_export_policy_bindings!(
                SpoorPolicyExport with_types_in $crate::__private::policy_bindings
            );
        };
    };
}

/// A [`StringsPlugin`] run on whole spans: builds the strings view of the batch, calls
/// [`StringsPlugin::rewrite`] and applies the patches with the host's own code. It is the
/// plugin's `process` export and what [`testing`] runs.
#[derive(Debug)]
pub struct Strings<P>(pub P);

impl<P: StringsPlugin> Plugin for Strings<P> {
    const NAME: &'static str = P::NAME;
    const VERSION: &'static str = P::VERSION;
    type Config = P::Config;

    fn capabilities() -> &'static [Capability] {
        P::capabilities()
    }

    fn configure(config: P::Config) -> Result<Self, Error> {
        P::configure(config).map(Strings)
    }

    fn process(&mut self, batch: &mut Batch) -> Result<(), Error> {
        let mut view = strings::View::default();
        let mut layout = strings::Layout::default();
        strings::build_with_layout(&batch.spans, &mut view, &mut layout)
            .map_err(|e| Error::failed(e.to_string()))?;
        let patches = rewrite_view(&mut self.0, view)?;
        if !patches.is_empty() {
            strings::apply_flat(&mut batch.spans, &patches, &layout);
            batch.modified = true;
        }
        Ok(())
    }
}

/// Runs `plugin` on a view from the host, as the component's `process-strings` does: checks
/// the view, calls [`StringsPlugin::rewrite`], and returns the patches in ascending order.
pub fn rewrite_view<P: StringsPlugin>(
    plugin: &mut P,
    view: strings::View,
) -> Result<strings::Patches, Error> {
    let mut view = StringsView::new(view).map_err(|e| Error::failed(e.to_string()))?;
    plugin.rewrite(&mut view)?;
    let (_, patches) = view
        .into_patches()
        .map_err(|e| Error::failed(format!("the plugin's patches: {e}")))?;
    Ok(patches)
}

/// The spans of one batch. Derefs to `Vec<Span>`; tracks whether it was borrowed mutably so an
/// untouched batch goes back to the host as the bytes it came in as.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    spans: Vec<Span>,
    modified: bool,
}

impl Batch {
    /// A batch of these spans, not yet modified.
    pub fn new(spans: Vec<Span>) -> Self {
        Batch {
            spans,
            modified: false,
        }
    }

    /// The spans.
    pub fn into_spans(self) -> Vec<Span> {
        self.spans
    }

    /// Whether the spans were borrowed mutably (and so may have changed).
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// Calls `f` once for every distinct resource of the batch (resources are shared between
    /// spans through `Arc`), on a private copy that then replaces it in every span that shared
    /// it. Use this rather than `Arc::make_mut` per span, which would copy the resource once per
    /// span.
    pub fn for_each_resource(&mut self, f: impl FnMut(&mut Resource)) {
        map_shared(&mut self.spans, |s| &mut s.resource, f);
        self.modified = true;
    }

    /// Like [`Batch::for_each_resource`], for instrumentation scopes.
    pub fn for_each_scope(&mut self, f: impl FnMut(&mut Scope)) {
        map_shared(&mut self.spans, |s| &mut s.scope, f);
        self.modified = true;
    }

    /// Calls `f` on every attribute list of the batch: each span's, each of its events' and
    /// links', and once each distinct resource's and scope's. Nested map values are left to
    /// `f`.
    pub fn for_each_attribute_list(&mut self, mut f: impl FnMut(&mut Vec<KeyValue>)) {
        for span in &mut self.spans {
            f(&mut span.attributes);
            for event in &mut span.events {
                f(&mut event.attributes);
            }
            for link in &mut span.links {
                f(&mut link.attributes);
            }
        }
        self.for_each_resource(|r| f(&mut r.attributes));
        self.for_each_scope(|s| f(&mut s.attributes));
    }
}

/// Applies `f` once per distinct `Arc` (by pointer) reached through `field`, replacing each
/// with one shared new `Arc`.
fn map_shared<T: Clone>(
    spans: &mut [Span],
    field: impl Fn(&mut Span) -> &mut Arc<T>,
    mut f: impl FnMut(&mut T),
) {
    // Few distinct values per batch; the originals are kept alive so their addresses stay
    // unique while the map is in use.
    let mut done: std::collections::BTreeMap<*const T, (Arc<T>, Arc<T>)> = Default::default();
    for span in spans {
        let slot = field(span);
        let key = Arc::as_ptr(slot);
        let new = match done.get(&key) {
            Some((_, new)) => Arc::clone(new),
            None => {
                let mut value = T::clone(slot);
                f(&mut value);
                let new = Arc::new(value);
                done.insert(key, (Arc::clone(slot), Arc::clone(&new)));
                new
            }
        };
        *slot = new;
    }
}

impl Deref for Batch {
    type Target = Vec<Span>;
    fn deref(&self) -> &Vec<Span> {
        &self.spans
    }
}

impl DerefMut for Batch {
    fn deref_mut(&mut self) -> &mut Vec<Span> {
        self.modified = true;
        &mut self.spans
    }
}

/// Whether `name` is a valid plugin name: `[a-z0-9-]+`.
pub const fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !matches!(b[i], b'a'..=b'z' | b'0'..=b'9' | b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// Parses plugin settings: `""` counts as `{}`; an error names the path of the offending field.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, Error> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let mut de = serde_json::Deserializer::from_str(json);
    let config: C = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = without_position(&e.into_inner());
        if path == "." {
            Error::InvalidConfig(inner)
        } else {
            Error::invalid_config(&path, inner)
        }
    })?;
    de.end().map_err(|e| {
        Error::InvalidConfig(format!("after the settings: {}", without_position(&e)))
    })?;
    Ok(config)
}

/// A JSON error's message without serde_json's ` at line L column C`: the path already names
/// the field, and the position would depend on how the host laid out the settings.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// Builds a plugin from its JSON settings, as the component's `configure` does.
pub fn configure<P: Plugin>(json: &str) -> Result<P, Error> {
    P::configure(parse_config(json)?)
}

/// Runs one batch in Spoor's block encoding through `plugin`, as the component's `process`
/// does: decode, [`Plugin::process`], encode (or the input bytes if the batch was not touched).
pub fn process_encoded<P: Plugin>(plugin: &mut P, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
    let spans = spoor_core::block::BlockReader::open(&bytes)
        .and_then(|r| r.decode_all())
        .map_err(|e| Error::failed(format!("batch is not a valid block: {e}")))?;
    let mut batch = Batch::new(spans);
    plugin.process(&mut batch)?;
    if !batch.is_modified() {
        return Ok(bytes);
    }
    Ok(spoor_core::block::encode_block(&batch.spans))
}

/// Exports a [`Plugin`] as the component's `metadata` (mode `spans`), `configure` and
/// `process` (its `process-strings` answers `failed`: the host never calls it for a spans
/// plugin). Invoke once, in the plugin crate's root, with the plugin type. Outside `wasm32` it
/// only checks the name.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        $crate::__export_component!($ty, $ty, Spans);
    };
}

/// Exports a [`StringsPlugin`] as the component's `metadata` (mode `strings`), `configure`,
/// `process-strings` and `process` (through [`Strings`]). Invoke once, in the plugin crate's
/// root, with the plugin type. Outside `wasm32` it only checks the name.
#[macro_export]
macro_rules! export_strings_plugin {
    ($ty:ty) => {
        $crate::__export_component!($ty, $crate::Strings<$ty>, Strings);
    };
}

/// The shared body of [`export_plugin!`] and [`export_strings_plugin!`]: `$plugin` is the type
/// that implements [`Plugin`] (`$ty` itself, or `Strings<$ty>`).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($ty:ty, $plugin:ty, $mode:ident) => {
        const _: () = ::core::assert!(
            $crate::is_valid_name(<$plugin as $crate::Plugin>::NAME),
            "a plugin name must match [a-z0-9-]+"
        );
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            struct SpoorPluginExport;
            impl $crate::__private::Guest for SpoorPluginExport {
                fn metadata() -> $crate::__private::Metadata {
                    $crate::__private::metadata::<$plugin>($crate::Mode::$mode)
                }
                fn configure(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__private::PluginError> {
                    $crate::__private::configure::<$plugin>(&config)
                }
                fn process(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::PluginError>
                {
                    $crate::__private::process::<$plugin>(batch)
                }
                fn process_strings(
                    view: $crate::__private::WitStringsView,
                ) -> ::core::result::Result<
                    $crate::__private::WitPatches,
                    $crate::__private::PluginError,
                > {
                    $crate::__process_strings!($ty, $mode, view)
                }
            }
            $crate::__private::bindings::__spoor_export_bindings!(
                SpoorPluginExport with_types_in $crate::__private::bindings
            );
        };
    };
}

/// `process-strings` per mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __process_strings {
    ($ty:ty, Spans, $view:ident) => {
        $crate::__private::no_strings::<$ty>($view)
    };
    ($ty:ty, Strings, $view:ident) => {
        $crate::__private::process_strings::<$ty>($view)
    };
}

/// Glue used by [`export_plugin!`]; not a public API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::guest::bindings;
    pub use crate::guest::bindings::{Guest, Metadata, PluginError};
    pub use crate::guest::policy_bindings;
    pub use crate::guest::{configure, metadata, no_strings, process, process_strings};
    pub use crate::guest::{policy_configure, policy_decide, policy_metadata};
    pub use crate::guest::{WitPatches, WitStringsView};
    pub use wit_bindgen;
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::block::encode_block;

    fn span(service: &Arc<Resource>, name: &str) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(name.len() as u64),
            name: name.into(),
            resource: Arc::clone(service),
            ..Default::default()
        }
    }

    #[test]
    fn names() {
        assert!(is_valid_name("redact"));
        assert!(is_valid_name("drop-2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Redact"));
        assert!(!is_valid_name("a_b"));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        #[serde(default)]
        keys: Vec<String>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(parse_config::<Cfg>("").is_ok());
        assert!(parse_config::<Cfg>(" {} ").is_ok());
        let e = parse_config::<Cfg>(r#"{"keys": ["a", 3]}"#).unwrap_err();
        assert!(e.message().starts_with("`keys[1]`: invalid type"), "{e}");
        let e = parse_config::<Cfg>(r#"{"inner": {"n": "x"}}"#).unwrap_err();
        assert!(e.message().starts_with("`inner.n`: invalid type"), "{e}");
        let e = parse_config::<Cfg>(r#"{"kyes": []}"#).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("unknown field `kyes`")),
            "{e}"
        );
        let e = parse_config::<Cfg>(r#"{} x"#).unwrap_err();
        assert_eq!(e.message(), "after the settings: trailing characters");
        assert_eq!(
            Error::invalid_config("mode", "unknown").to_string(),
            "invalid-config: `mode`: unknown"
        );
    }

    struct Counter {
        seen: usize,
        rename: bool,
    }

    impl Plugin for Counter {
        const NAME: &'static str = "counter";
        const VERSION: &'static str = "0.1.0";
        type Config = serde_json::Value;
        fn configure(config: serde_json::Value) -> Result<Self, Error> {
            Ok(Counter {
                seen: 0,
                rename: config.get("rename").is_some(),
            })
        }
        fn process(&mut self, batch: &mut Batch) -> Result<(), Error> {
            self.seen += batch.len();
            if self.seen > 3 {
                return Err(Error::failed("too many spans"));
            }
            if self.rename {
                batch.for_each_resource(|r| r.service_name.push_str("-x"));
            }
            Ok(())
        }
    }

    #[test]
    fn untouched_batches_keep_their_bytes() {
        let res = Arc::new(Resource {
            service_name: "svc".into(),
            ..Default::default()
        });
        let input = encode_block(&[span(&res, "a"), span(&res, "bb")]);
        let mut p = configure::<Counter>("{}").unwrap();
        let copy = input.clone();
        let ptr = copy.as_ptr();
        let out = process_encoded(&mut p, copy).unwrap();
        assert_eq!(out.as_ptr(), ptr, "an untouched batch is not re-encoded");
        assert_eq!(out, input);
        // State lives on between batches.
        assert_eq!(
            process_encoded(&mut p, input).unwrap_err(),
            Error::Failed("too many spans".into())
        );
        let e = process_encoded(&mut p, b"nope".to_vec()).unwrap_err();
        assert!(e.message().starts_with("batch is not a valid block"), "{e}");
    }

    #[test]
    fn shared_resources_are_mapped_once_and_stay_shared() {
        let a = Arc::new(Resource {
            service_name: "a".into(),
            ..Default::default()
        });
        let b = Arc::new(Resource {
            service_name: "b".into(),
            ..Default::default()
        });
        let mut batch = Batch::new(vec![span(&a, "1"), span(&b, "22"), span(&a, "333")]);
        let mut calls = 0;
        batch.for_each_resource(|r| {
            calls += 1;
            r.service_name.push('!');
        });
        assert_eq!(calls, 2);
        assert!(batch.is_modified());
        assert_eq!(batch[0].service(), "a!");
        assert_eq!(batch[1].service(), "b!");
        assert!(Arc::ptr_eq(&batch[0].resource, &batch[2].resource));
        assert_eq!(a.service_name, "a", "the original is not mutated");

        let out = testing::run::<Counter>(r#"{"rename": true}"#, &batch.into_spans()).unwrap();
        let services: Vec<&str> = out.iter().map(Span::service).collect();
        assert_eq!(services, ["a!-x", "b!-x", "a!-x"]);
    }

    #[test]
    fn attribute_lists_are_all_visited() {
        let res = Arc::new(Resource {
            attributes: vec![KeyValue::string("host", "h")],
            ..Default::default()
        });
        let mut s = span(&res, "x");
        s.attributes.push(KeyValue::string("k", "v"));
        s.events.push(Event {
            attributes: vec![KeyValue::string("e", "v")],
            ..Default::default()
        });
        s.links.push(Link {
            attributes: vec![KeyValue::string("l", "v")],
            ..Default::default()
        });
        s.scope = Arc::new(Scope {
            attributes: vec![KeyValue::string("s", "v")],
            ..Default::default()
        });
        let mut batch = Batch::new(vec![s.clone(), s]);
        let mut keys = Vec::new();
        batch.for_each_attribute_list(|attrs| keys.extend(attrs.iter().map(|kv| kv.key.clone())));
        assert_eq!(keys, ["k", "e", "l", "k", "e", "l", "host", "s"]);
    }
}
