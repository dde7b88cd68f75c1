//! Spoor's sandboxed plugin runtime: loads WebAssembly components of the `spoor:plugin` world
//! (`plugins/wit/plugin.wit`, contract 0.2; 0.1 in `plugins/wit/v0.1`) and runs them on span
//! batches.
//!
//! - **Sandbox.** Components run in wasmtime with the pooling allocator, fuel per call, a
//!   memory cap per instance ([`PluginSpec::memory_mib`]) and an output size cap. WASI p2 is
//!   linked because Rust guests import it, but nothing is granted: no files, sockets, name
//!   lookup, environment or arguments; stdout and stderr are discarded; both clocks read 0
//!   unless `clock` is granted; randomness is a fixed stream unless `random` is granted;
//!   `host.log` reaches `tracing` only with `log`. A plugin asking for a capability that was
//!   not granted fails to load.
//! - **Compiled once.** [`PluginChain::load`] compiles each component, links it once
//!   (`InstancePre`) and keeps a small pool of configured instances per plugin; a call takes
//!   one, and an instance that trapped is dropped, never reused.
//! - **Failures are data.** A failing call becomes a [`PluginError`] (with a
//!   [`PluginErrorKind`] for metrics) and the plugin's [`OnError`] policy decides whether the
//!   batch passes unchanged or is dropped.
//! - **Reload.** [`ChainHandle`] swaps chains atomically; in-flight batches finish on the old
//!   one.
//!
//! - **Two modes.** A spans-mode plugin gets the batch as `spoor_core::block::encode_block`
//!   bytes and returns a new encoding, which is decoded and checked. A strings-mode plugin
//!   (contract 0.2) gets the batch's strings view (`spoor_plugin_strings::build`) and returns
//!   patches, which are checked (indexes, kinds, order, the output cap) and applied to the
//!   spans in place: neither side decodes or encodes spans. Contract 0.1 plugins still load
//!   (spans mode).
//! - **Policies.** A component of the `policy` world (contract 0.2.1) is a tail-sampling
//!   policy, not a pipeline plugin: [`PolicyPlugin`] loads it and the daemon's tail sampler
//!   calls its `decide` once per trace with the trace's block encoding. A chain refuses a
//!   policy and a policy slot refuses a pipeline plugin, each naming where the other belongs.

mod chain;
mod error;
mod policy;
mod runtime;
mod spec;

use std::path::Path;

use spoor_core::Span;

pub use chain::{ChainHandle, ChainOutput, PluginChain, PluginFailure, PluginStats, ReloadReport};
pub use error::{LoadError, PluginError, PluginErrorKind, RunError};
pub use policy::PolicyPlugin;
pub use runtime::{CONTRACT_VERSION, OLDER_CONTRACT_VERSIONS};
pub use spec::{
    Capability, Metadata, Mode, OnError, PluginSpec, PolicySection, DEFAULT_FUEL,
    DEFAULT_MAX_OUTPUT_RATIO, DEFAULT_MEMORY_MIB, MAX_MEMORY_MIB, MIN_OUTPUT_CAP_BYTES,
};

/// What the component at `path` says about itself (`spoor plugin check FILE`): compiles it,
/// checks the contract version, instantiates it with every capability available and calls
/// `metadata`. It is not configured.
pub fn check(path: &Path) -> Result<Metadata, LoadError> {
    runtime::check(path)
}

/// What `spoor plugin run` made of a file of traces.
#[derive(Debug)]
pub enum RunOutput {
    /// A pipeline plugin's output batch.
    Spans(Vec<Span>),
    /// A policy plugin's verdict per trace, in the order of each trace's first span.
    Verdicts(Vec<(spoor_core::TraceId, bool)>),
}

/// Loads the component at `path` with the given settings (JSON object text) and grants, and
/// runs it once on `spans` (`spoor plugin run FILE --input traces.json`). Default limits apply.
/// `config_json` must be a JSON object; it reaches `configure` verbatim. A pipeline plugin
/// processes the spans as one batch; a policy plugin decides each trace in turn.
pub fn run_any_file(
    path: &Path,
    config_json: &str,
    grants: &[Capability],
    spans: Vec<Span>,
) -> Result<RunOutput, RunError> {
    let meta = check(path).map_err(RunError::Load)?;
    if meta.mode != Mode::Policy {
        return run_file(path, config_json, grants, spans).map(RunOutput::Spans);
    }
    let spec = run_spec(path, config_json, grants)?;
    let policy = PolicyPlugin::load_with(&spec, Some(config_json))?;
    let mut traces: Vec<(spoor_core::TraceId, Vec<Span>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for span in spans {
        let i = *index.entry(span.trace_id).or_insert_with(|| {
            traces.push((span.trace_id, Vec::new()));
            traces.len() - 1
        });
        traces[i].1.push(span);
    }
    let mut verdicts = Vec::with_capacity(traces.len());
    for (id, spans) in traces {
        match policy.decide(&spans) {
            Ok(sampled) => verdicts.push((id, sampled)),
            Err(error) => {
                return Err(RunError::Plugin {
                    plugin: spec.name.clone(),
                    error,
                })
            }
        }
    }
    Ok(RunOutput::Verdicts(verdicts))
}

/// The spec `spoor plugin run` uses: the file's stem as the name, the given grants and
/// settings, default limits.
fn run_spec(path: &Path, config_json: &str, grants: &[Capability]) -> Result<PluginSpec, RunError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let mut spec = PluginSpec::new(name.clone(), path);
    spec.grant = grants.to_vec();
    spec.config = match serde_json::from_str::<serde_json::Value>(config_json) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => {
            return Err(RunError::Load(LoadError::Spec {
                plugin: name,
                message: format!("config must be a JSON object, not {other}"),
            }))
        }
        Err(e) => {
            return Err(RunError::Load(LoadError::Spec {
                plugin: name,
                message: format!("config is not JSON: {e}"),
            }))
        }
    };
    Ok(spec)
}

/// Loads the component at `path` with the given settings (JSON object text) and grants, and
/// runs it once on `spans` (`spoor plugin run FILE --input traces.json`). Default limits apply.
/// `config_json` must be a JSON object; it reaches `configure` verbatim.
pub fn run_file(
    path: &Path,
    config_json: &str,
    grants: &[Capability],
    spans: Vec<Span>,
) -> Result<Vec<Span>, RunError> {
    let spec = run_spec(path, config_json, grants)?;
    let chain = PluginChain::load_one_with_text(&spec, config_json)?;
    let mut out = chain.process(spans);
    match out.errors.pop() {
        Some(failure) => Err(RunError::Plugin {
            plugin: failure.plugin,
            error: failure.error,
        }),
        None => Ok(out.spans),
    }
}
