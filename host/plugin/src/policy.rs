//! Tail-sampling policy plugins (world `policy` of contract 0.2.1): loaded like pipeline
//! plugins, called once per trace by the daemon's tail sampler.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use spoor_core::block::encode_block;
use spoor_core::Span;

use crate::chain::{Counters, PluginFailure, PluginStats};
use crate::error::{LoadError, PluginError};
use crate::runtime::Loaded;
use crate::spec::{Metadata, Mode, OnError, PluginSpec};

/// A loaded policy plugin: compiled once, a pool of configured instances, and its counters.
///
/// **Contract:** [`PolicyPlugin::decide`] may be called from many threads at once (each call
/// takes its own instance) and blocks for as long as the plugin runs (bounded by its fuel).
/// It never panics because of the plugin. A failure is answered by the spec's `on-error`:
/// `pass` samples the trace (nothing is lost because a policy broke), `drop` does not.
pub struct PolicyPlugin {
    loaded: Arc<Loaded>,
    stats: Counters,
}

impl std::fmt::Debug for PolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPlugin")
            .field("name", &self.loaded.spec.name)
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
        let loaded = Loaded::load(spec, config_text, |meta| {
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
        })?;
        Ok(PolicyPlugin {
            loaded: Arc::new(loaded),
            stats: Counters::default(),
        })
    }

    /// The spec it was loaded with.
    pub fn spec(&self) -> &PluginSpec {
        &self.loaded.spec
    }

    /// What the plugin says about itself.
    pub fn metadata(&self) -> &Metadata {
        &self.loaded.metadata
    }

    /// Asks the plugin about one trace: `Ok(true)` when it samples it. Counted: a call per
    /// trace, its spans in, the spans of sampled traces out, failures by kind.
    pub fn decide(&self, spans: &[Span]) -> Result<bool, PluginError> {
        let started = Instant::now();
        let result = self.loaded.decide(&encode_block(spans));
        let stats = &self.stats;
        stats
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats
            .spans_in
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        match &result {
            Ok(true) => {
                stats
                    .spans_out
                    .fetch_add(spans.len() as u64, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(e) => {
                stats.failures[e.kind().index()].fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// [`PolicyPlugin::decide`] with the failure policy applied: a failure samples the trace
    /// under `on-error = "pass"` and does not under `drop`, and is returned for logging.
    pub fn decide_or_fallback(&self, spans: &[Span]) -> (bool, Option<PluginFailure>) {
        match self.decide(spans) {
            Ok(sampled) => (sampled, None),
            Err(error) => {
                let action = self.loaded.spec.on_error;
                let failure = PluginFailure {
                    plugin: self.loaded.spec.name.clone(),
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
        self.stats.snapshot(&self.loaded.spec.name)
    }
}
