//! Tail-sampling policy plugins (world `policy` of contract 0.2.1): loaded like pipeline
//! plugins, called once per trace by the daemon's tail sampler, and reloaded when their file
//! changes ([`PolicyPlugin::reload_if_changed`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use spoor_core::block::encode_block;
use spoor_core::Span;

use crate::chain::{Counters, PluginFailure, PluginStats};
use crate::error::{LoadError, PluginError};
use crate::runtime::{FileStamp, Loaded};
use crate::spec::{Metadata, Mode, OnError, PluginSpec};

/// A loaded policy plugin: compiled once, a pool of configured instances, and its counters.
///
/// **Contract:** [`PolicyPlugin::decide`] may be called from many threads at once (each call
/// takes its own instance) and blocks for as long as the plugin runs (bounded by its fuel).
/// It never panics because of the plugin. A failure is answered by the spec's `on-error`:
/// `pass` samples the trace (nothing is lost because a policy broke), `drop` does not.
/// [`PolicyPlugin::reload_if_changed`] swaps in a new version of the file while calls run:
/// a call finishes on the version it started with, the next one takes the new version, and
/// the counters carry over.
pub struct PolicyPlugin {
    spec: PluginSpec,
    current: RwLock<Arc<Loaded>>,
    stats: Counters,
    /// The stamp of a changed file that failed to load: not retried until it changes again.
    failed: Mutex<Option<Option<FileStamp>>>,
    reload: Mutex<()>,
}

impl std::fmt::Debug for PolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPlugin")
            .field("name", &self.spec.name)
            .finish()
    }
}

impl PolicyPlugin {
    /// Compiles, checks (contract version, world `policy`, capabilities) and configures the
    /// plugin of `spec`. The first failure is returned, naming the plugin and its file.
    pub fn load(spec: &PluginSpec) -> Result<PolicyPlugin, LoadError> {
        Self::load_with(spec, None)
    }

    pub(crate) fn load_with(
        spec: &PluginSpec,
        config_text: Option<&str>,
    ) -> Result<PolicyPlugin, LoadError> {
        Ok(PolicyPlugin {
            spec: spec.clone(),
            current: RwLock::new(Arc::new(Self::load_policy(spec, config_text)?)),
            stats: Counters::default(),
            failed: Mutex::new(None),
            reload: Mutex::new(()),
        })
    }

    fn load_policy(spec: &PluginSpec, config_text: Option<&str>) -> Result<Loaded, LoadError> {
        Loaded::load(spec, config_text, |meta| {
            if meta.mode == Mode::Policy {
                return Ok(());
            }
            Err(LoadError::Spec {
                plugin: spec.name.clone(),
                message: format!(
                    "{} is a pipeline plugin (mode {}), not a tail-sampling policy (world policy): list it under [[plugins]]",
                    spec.path.display(),
                    meta.mode
                ),
            })
        })
    }

    /// The version calls start on now.
    fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The spec it was loaded with.
    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// What the loaded version of the plugin says about itself.
    pub fn metadata(&self) -> Metadata {
        self.current().metadata.clone()
    }

    /// Re-reads the plugin's file if its modification time or length changed, and swaps the
    /// new version in once it compiled, passed the contract checks (it must still be a policy)
    /// and was configured with the same config: `Ok(true)`. An unchanged file: `Ok(false)`. A
    /// changed file that fails to load keeps the previous version running and is returned as
    /// the error; it is not retried until it changes again (`Ok(false)` meanwhile). Blocks
    /// while compiling: call it from a background thread.
    pub fn reload_if_changed(&self) -> Result<bool, LoadError> {
        let _one_at_a_time = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = FileStamp::of(&self.spec.path);
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if stamp == self.current().stamp || *failed == Some(stamp) {
            return Ok(false);
        }
        match Self::load_policy(&self.spec, None) {
            Ok(loaded) => {
                *failed = None;
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                Ok(true)
            }
            Err(e) => {
                *failed = Some(stamp);
                Err(e)
            }
        }
    }

    /// Asks the plugin about one trace: `Ok(true)` when it samples it. Counted: a call per
    /// trace, its spans in, the spans of sampled traces out, failures by kind.
    pub fn decide(&self, spans: &[Span]) -> Result<bool, PluginError> {
        let started = Instant::now();
        let result = self.current().decide(&encode_block(spans));
        let out = match &result {
            Ok(sampled) => Ok(if *sampled { spans.len() } else { 0 }),
            Err(e) => Err(e.kind()),
        };
        self.stats.record(started, spans.len(), out);
        result
    }

    /// [`PolicyPlugin::decide`] with the failure policy applied: a failure samples the trace
    /// under `on-error = "pass"` and does not under `drop`, and is returned for logging.
    pub fn decide_or_fallback(&self, spans: &[Span]) -> (bool, Option<PluginFailure>) {
        match self.decide(spans) {
            Ok(sampled) => (sampled, None),
            Err(error) => {
                let action = self.spec.on_error;
                let failure = PluginFailure {
                    plugin: self.spec.name.clone(),
                    error,
                    action,
                };
                (action == OnError::Pass, Some(failure))
            }
        }
    }

    /// Counters since loading (`calls`: traces decided; `spans_out`: spans of sampled
    /// traces).
    pub fn stats(&self) -> PluginStats {
        self.stats.snapshot(&self.spec.name)
    }
}
