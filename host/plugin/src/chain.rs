//! The chain of plugins a batch goes through, its counters, and [`ChainHandle`] for reloads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use spoor_core::block::{encode_block, BlockReader};
use spoor_core::Span;

use crate::error::{LoadError, PluginError, PluginErrorKind};
use crate::runtime::{FileStamp, Loaded, WitStringsView};
use crate::spec::{Metadata, Mode, OnError, PluginSpec};

/// Plugins applied in order to every batch.
///
/// **Contract:** `process` is synchronous and may be called from many threads at once (each
/// call takes its own plugin instance); it blocks the calling thread for as long as the
/// plugins run (bounded by each plugin's fuel). It never panics because of a plugin: every
/// failure comes back in [`ChainOutput::errors`] and is counted in [`PluginChain::stats`].
pub struct PluginChain {
    plugins: Vec<Slot>,
}

impl std::fmt::Debug for PluginChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| &p.loaded.spec.name))
            .finish()
    }
}

#[derive(Clone)]
struct Slot {
    loaded: Arc<Loaded>,
    stats: Arc<Counters>,
}

/// What a chain made of a batch.
#[derive(Debug)]
pub struct ChainOutput {
    /// The batch after every plugin (empty when a `drop` plugin failed).
    pub spans: Vec<Span>,
    /// Every failure on the way, in order.
    pub errors: Vec<PluginFailure>,
}

/// One plugin failed on one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginFailure {
    /// The spec name of the plugin.
    pub plugin: String,
    /// What went wrong.
    pub error: PluginError,
    /// What was done with the batch.
    pub action: OnError,
}

impl std::fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = match self.action {
            OnError::Pass => "batch passed on unchanged",
            OnError::Drop => "batch dropped",
        };
        write!(f, "plugin {:?}: {} ({action})", self.plugin, self.error)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) spans_in: AtomicU64,
    pub(crate) spans_out: AtomicU64,
    pub(crate) nanos: AtomicU64,
    pub(crate) failures: [AtomicU64; PluginErrorKind::ALL.len()],
}

/// Counters of one plugin since it was first loaded (they survive reloads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStats {
    /// The spec name.
    pub plugin: String,
    /// Calls of `process`.
    pub calls: u64,
    /// Failed calls per kind, every kind listed (zeros included), in [`PluginErrorKind::ALL`]
    /// order.
    pub failures: Vec<(PluginErrorKind, u64)>,
    /// Spans handed to the plugin.
    pub spans_in: u64,
    /// Spans it returned (failed calls count 0).
    pub spans_out: u64,
    /// Wall time spent in the plugin, including checking its output, in nanoseconds.
    pub nanos: u64,
}

impl PluginStats {
    /// Failed calls of one kind.
    pub fn failures_of(&self, kind: PluginErrorKind) -> u64 {
        self.failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Failed calls of every kind.
    pub fn failures_total(&self) -> u64 {
        self.failures.iter().map(|(_, n)| n).sum()
    }
}

impl Counters {
    /// Counts one call begun at `started` that was handed `spans_in` spans: `Ok(n)` when it
    /// answered with `n` spans, `Err(kind)` when it failed.
    pub(crate) fn record(
        &self,
        started: Instant,
        spans_in: usize,
        out: Result<usize, PluginErrorKind>,
    ) {
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.spans_in.fetch_add(spans_in as u64, Ordering::Relaxed);
        match out {
            Ok(n) => self.spans_out.fetch_add(n as u64, Ordering::Relaxed),
            Err(kind) => self.failures[kind.index()].fetch_add(1, Ordering::Relaxed),
        };
    }

    pub(crate) fn snapshot(&self, plugin: &str) -> PluginStats {
        PluginStats {
            plugin: plugin.to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: PluginErrorKind::ALL
                .iter()
                .map(|&k| (k, self.failures[k.index()].load(Ordering::Relaxed)))
                .collect(),
            spans_in: self.spans_in.load(Ordering::Relaxed),
            spans_out: self.spans_out.load(Ordering::Relaxed),
            nanos: self.nanos.load(Ordering::Relaxed),
        }
    }
}

/// What one plugin did to a batch.
enum Step {
    /// It returned its input byte for byte, or no patch: the batch passes on as it was.
    Unchanged,
    /// A new batch: its encoding and its decoded (so checked) spans.
    Changed(Vec<u8>, Vec<Span>),
    /// A strings plugin's patches were applied to the spans in place.
    Patched,
}

/// A chain holds pipeline plugins only: a policy is refused naming where it belongs.
fn refuse_policy(spec: &PluginSpec, meta: &Metadata) -> Result<(), LoadError> {
    if meta.mode != Mode::Policy {
        return Ok(());
    }
    Err(LoadError::Spec {
        plugin: spec.name.clone(),
        message: format!(
            "{} is a tail-sampling policy plugin (world policy), not a pipeline plugin: use it in [sampling.tail] as a policy of type \"plugin\"",
            spec.path.display()
        ),
    })
}

/// Runs one plugin on an encoded batch and checks its output.
#[allow(clippy::ptr_arg)] // the generated binding takes `&Vec<u8>`
fn run_one(loaded: &Loaded, bytes: &Vec<u8>) -> Result<Step, PluginError> {
    let out = loaded.process(bytes)?;
    if out == *bytes {
        return Ok(Step::Unchanged);
    }
    let spans = BlockReader::open(&out)
        .and_then(|r| r.decode_all())
        .map_err(|e| PluginError::MalformedOutput(e.to_string()))?;
    Ok(Step::Changed(out, spans))
}

/// A thread's strings-view buffers, kept between batches (a batch's view is a few hundred KiB:
/// fresh buffers would be fresh pages every time).
struct ViewBuffers {
    view: WitStringsView,
    layout: spoor_plugin_strings::Layout,
}

impl ViewBuffers {
    const fn new() -> ViewBuffers {
        ViewBuffers {
            view: WitStringsView {
                text: String::new(),
                records: Vec::new(),
            },
            layout: spoor_plugin_strings::Layout::new(),
        }
    }
}

/// Runs one strings-mode plugin on the batch's strings view; its patches, once checked, are
/// applied in place, straight at the strings they name (the view's layout says where each
/// span's strings are). On any failure the spans are untouched.
fn run_strings(loaded: &Loaded, spans: &mut [Span]) -> Result<Step, PluginError> {
    thread_local! {
        static BUFFERS: std::cell::RefCell<ViewBuffers> = const {
            std::cell::RefCell::new(ViewBuffers::new())
        };
    }
    BUFFERS.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let ViewBuffers { view: wit, layout } = &mut *buffers;
        let mut view = spoor_plugin_strings::View {
            text: std::mem::take(&mut wit.text),
            records: std::mem::take(&mut wit.records),
        };
        let built = spoor_plugin_strings::build_with_layout(spans, &mut view, layout);
        wit.text = view.text;
        wit.records = view.records;
        built.map_err(|e| PluginError::InputTooLarge(e.to_string()))?;
        let step = match loaded.process_strings(wit) {
            Ok(patches) if patches.is_empty() => Ok(Step::Unchanged),
            Ok(patches) => {
                spoor_plugin_strings::apply_flat(spans, &patches, layout);
                Ok(Step::Patched)
            }
            Err(e) => Err(e),
        };
        // Do not keep an unusually large view's buffers alive for the thread's lifetime.
        if wit.text.capacity() > 64 << 20 {
            *buffers = ViewBuffers::new();
        }
        step
    })
}

impl PluginChain {
    /// Loads every plugin in order: compiles it, checks its contract version and capabilities,
    /// and configures a first instance. The first failure is returned, naming the plugin and
    /// its file. Spec names must be unique.
    pub fn load(specs: &[PluginSpec]) -> Result<PluginChain, LoadError> {
        Self::load_with(specs, None)
    }

    /// [`PluginChain::load`] of one plugin whose settings are given as JSON text.
    pub(crate) fn load_one_with_text(
        spec: &PluginSpec,
        config_text: &str,
    ) -> Result<PluginChain, LoadError> {
        Self::load_with(std::slice::from_ref(spec), Some(config_text))
    }

    fn load_with(
        specs: &[PluginSpec],
        config_text: Option<&str>,
    ) -> Result<PluginChain, LoadError> {
        let mut plugins: Vec<Slot> = Vec::with_capacity(specs.len());
        for spec in specs {
            if plugins.iter().any(|p| p.loaded.spec.name == spec.name) {
                return Err(LoadError::Spec {
                    plugin: spec.name.clone(),
                    message: format!("name {:?} is used by two plugins", spec.name),
                });
            }
            let loaded = Loaded::load(spec, config_text, |m| refuse_policy(spec, m))?;
            plugins.push(Slot {
                loaded: Arc::new(loaded),
                stats: Arc::default(),
            });
        }
        Ok(PluginChain { plugins })
    }

    /// A chain without plugins: `process` returns the batch as given.
    pub fn empty() -> PluginChain {
        PluginChain {
            plugins: Vec::new(),
        }
    }

    /// No plugins?
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// The specs, in chain order.
    pub fn specs(&self) -> impl Iterator<Item = &PluginSpec> {
        self.plugins.iter().map(|p| &p.loaded.spec)
    }

    /// Each plugin's spec name with what it said about itself, in chain order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &Metadata)> {
        self.plugins
            .iter()
            .map(|p| (p.loaded.spec.name.as_str(), &p.loaded.metadata))
    }

    /// Applies every plugin in order. For spans-mode plugins the batch is encoded once (when
    /// the first one needs it); each plugin's output is decoded to check it, unless it is the
    /// plugin's input byte for byte (then the batch passes on as it was). Strings-mode plugins
    /// get the batch's strings view and their checked patches are applied to the spans in
    /// place (no encoding, no decoding). A failing plugin leaves the batch as it was before it
    /// (`pass`) or drops it and stops the chain (`drop`). Empty batches skip the plugins.
    pub fn process(&self, spans: Vec<Span>) -> ChainOutput {
        let mut errors = Vec::new();
        if self.plugins.is_empty() || spans.is_empty() {
            return ChainOutput { spans, errors };
        }
        let mut current = spans;
        // The block encoding of `current`, once a spans plugin asked for it.
        let mut bytes: Option<Vec<u8>> = None;
        for slot in &self.plugins {
            let started = Instant::now();
            let result = match slot.loaded.metadata.mode {
                Mode::Spans => {
                    let encoded = bytes.get_or_insert_with(|| encode_block(&current));
                    run_one(&slot.loaded, encoded)
                }
                Mode::Strings => run_strings(&slot.loaded, &mut current),
                // refused by `load`; kept total for a chain built another way
                Mode::Policy => Err(PluginError::Refused(
                    "failed: a policy plugin does not transform batches".into(),
                )),
            };
            let out = match &result {
                Ok(Step::Unchanged | Step::Patched) => Ok(current.len()),
                Ok(Step::Changed(_, out_spans)) => Ok(out_spans.len()),
                Err(e) => Err(e.kind()),
            };
            slot.stats.record(started, current.len(), out);
            match result {
                Ok(Step::Unchanged) => {}
                Ok(Step::Changed(out, out_spans)) => {
                    bytes = Some(out);
                    current = out_spans;
                    if current.is_empty() {
                        break;
                    }
                }
                Ok(Step::Patched) => bytes = None,
                Err(error) => {
                    let action = slot.loaded.spec.on_error;
                    errors.push(PluginFailure {
                        plugin: slot.loaded.spec.name.clone(),
                        error,
                        action,
                    });
                    if action == OnError::Drop {
                        current = Vec::new();
                        break;
                    }
                }
            }
        }
        ChainOutput {
            spans: current,
            errors,
        }
    }

    /// Creates, configures and drops one new instance of the plugin at `index` (never one from
    /// the idle pool): what each batch would cost if instances were not kept. For benchmarks.
    #[doc(hidden)]
    pub fn fresh_instance(&self, index: usize) -> Result<(), PluginError> {
        let slot = self
            .plugins
            .get(index)
            .ok_or_else(|| PluginError::Instantiate(format!("no plugin at index {index}")))?;
        slot.loaded.fresh().map(drop)
    }

    /// Counters per plugin, in chain order.
    pub fn stats(&self) -> Vec<PluginStats> {
        self.plugins
            .iter()
            .map(|p| p.stats.snapshot(&p.loaded.spec.name))
            .collect()
    }
}

/// What [`ChainHandle::reload_if_changed`] did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Spec names of the plugins that were reloaded from changed files.
    pub reloaded: Vec<String>,
    /// Plugins whose changed file failed to load; they keep running their previous version.
    /// A file is retried only after it changes again.
    pub errors: Vec<LoadError>,
}

/// A chain that can be swapped while batches run: `process` takes the current chain, so
/// in-flight batches finish on the chain they started with. Send + Sync; share it in an `Arc`.
pub struct ChainHandle {
    current: RwLock<Arc<PluginChain>>,
    /// Files that failed to load on reload, by spec name, so they are not retried until they
    /// change again.
    failed: Mutex<Vec<(String, Option<FileStamp>)>>,
    reload: Mutex<()>,
}

impl std::fmt::Debug for ChainHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChainHandle").field(&self.current()).finish()
    }
}

impl ChainHandle {
    /// Wraps a loaded chain.
    pub fn new(chain: PluginChain) -> ChainHandle {
        ChainHandle {
            current: RwLock::new(Arc::new(chain)),
            failed: Mutex::new(Vec::new()),
            reload: Mutex::new(()),
        }
    }

    /// The chain batches start on now.
    pub fn current(&self) -> Arc<PluginChain> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// [`PluginChain::process`] on the current chain.
    pub fn process(&self, spans: Vec<Span>) -> ChainOutput {
        self.current().process(spans)
    }

    /// [`PluginChain::stats`] of the current chain.
    pub fn stats(&self) -> Vec<PluginStats> {
        self.current().stats()
    }

    /// Replaces the whole chain (e.g. after the config changed).
    pub fn replace(&self, chain: PluginChain) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(chain);
    }

    /// Re-reads the plugin files whose modification time or length changed and swaps in a
    /// chain with the reloaded plugins (counters carry over). A plugin that fails to load
    /// keeps its previous version and is reported. Blocks while compiling; call it from a
    /// background thread (e.g. every few seconds).
    pub fn reload_if_changed(&self) -> ReloadReport {
        let _one_at_a_time = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current();
        let mut report = ReloadReport::default();
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let mut slots = Vec::with_capacity(old.plugins.len());
        for slot in &old.plugins {
            let spec = &slot.loaded.spec;
            let stamp = FileStamp::of(&spec.path);
            let known_bad = failed
                .iter()
                .any(|(name, bad)| *name == spec.name && *bad == stamp);
            if stamp == slot.loaded.stamp || known_bad {
                slots.push(slot.clone());
                continue;
            }
            failed.retain(|(name, _)| *name != spec.name);
            match Loaded::load(spec, None, |m| refuse_policy(spec, m)) {
                Ok(loaded) => {
                    report.reloaded.push(spec.name.clone());
                    slots.push(Slot {
                        loaded: Arc::new(loaded),
                        stats: slot.stats.clone(),
                    });
                }
                Err(e) => {
                    tracing::warn!(plugin = %spec.name, error = %e, "plugin reload failed; keeping the loaded version");
                    failed.push((spec.name.clone(), stamp));
                    report.errors.push(e);
                    slots.push(slot.clone());
                }
            }
        }
        if !report.reloaded.is_empty() {
            self.replace(PluginChain { plugins: slots });
        }
        report
    }
}
