//! What the operator writes per plugin (`[[plugins]]` in the daemon's config) and what a plugin
//! says about itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Fuel per call when a spec gives none: about half a second of guest code on a current core,
/// enough for a 10,000-span batch through a decode–transform–encode plugin, small enough that an
/// endless loop is cut off quickly.
pub const DEFAULT_FUEL: u64 = 500_000_000;

/// Linear memory cap per plugin instance when a spec gives none, in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 64;

/// Largest `memory-mib` accepted (the pooling allocator reserves this much address space per
/// memory slot).
pub const MAX_MEMORY_MIB: u32 = 4096;

/// Output size cap relative to the input batch's encoded size when a spec gives no cap.
pub const DEFAULT_MAX_OUTPUT_RATIO: f64 = 4.0;

/// The relative cap never goes below this many bytes, so small batches may still grow.
pub const MIN_OUTPUT_CAP_BYTES: u64 = 1 << 20;

/// One plugin in the chain, as configured by the operator. Unknown keys are rejected.
///
/// ```toml
/// [[plugins]]
/// name = "redact"
/// path = "plugins/redact.wasm"
/// on-error = "pass"
/// grant = ["log"]
/// fuel = 500000000
/// memory-mib = 64
/// max-output-ratio = 4.0
/// config = { keys = ["http.url"] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginSpec {
    /// The operator's name for this plugin: labels its metrics and log lines; unique per chain.
    pub name: String,
    /// The component file (`.wasm`). Relative paths are taken as given (relative to the
    /// process's working directory); the daemon resolves them against the config file first.
    pub path: PathBuf,
    /// What happens to a batch when the plugin fails on it (default `pass`).
    #[serde(default)]
    pub on_error: OnError,
    /// Capabilities the operator grants; anything else is denied (default none).
    #[serde(default)]
    pub grant: Vec<Capability>,
    /// Fuel (roughly: wasm instructions) per call; running out fails the call with
    /// `out_of_fuel` (default [`DEFAULT_FUEL`]).
    #[serde(default = "default_fuel")]
    pub fuel: u64,
    /// Linear memory cap per instance in MiB (default [`DEFAULT_MEMORY_MIB`], at most
    /// [`MAX_MEMORY_MIB`]).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    /// Output cap as a multiple of the input batch's encoded size, never below
    /// [`MIN_OUTPUT_CAP_BYTES`] (default [`DEFAULT_MAX_OUTPUT_RATIO`] unless `max-output-bytes`
    /// is given).
    #[serde(default)]
    pub max_output_ratio: Option<f64>,
    /// Output cap in bytes of encoded batch. With both caps, the smaller one applies.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// Settings handed to the plugin's `configure` as JSON text (`{}` when absent).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// The `plugin` section of a tail-sampling policy of type `plugin` in `[sampling.tail]`: a
/// [`PluginSpec`] without its name (the policy's `name` names it) and without output caps (a
/// policy answers yes or no). Unknown keys are rejected.
///
/// ```toml
/// [[sampling.tail.policies]]
/// name = "slo"
/// type = "plugin"
/// plugin = { path = "slo.wasm", on-error = "pass", config = { default_ms = 2000 } }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicySection {
    /// The component file (`.wasm`) of world `spoor:plugin/policy`.
    pub path: PathBuf,
    /// What a failure answers for the trace: `pass` (the default) samples it, `drop` does not.
    #[serde(default)]
    pub on_error: OnError,
    /// Capabilities the operator grants (default none).
    #[serde(default)]
    pub grant: Vec<Capability>,
    /// Fuel per `decide` call (default [`DEFAULT_FUEL`]).
    #[serde(default = "default_fuel")]
    pub fuel: u64,
    /// Linear memory cap per instance in MiB (default [`DEFAULT_MEMORY_MIB`]).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    /// Settings handed to the policy's `configure` as JSON text (`{}` when absent).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

impl PolicySection {
    /// The spec the policy is loaded with, named `name` (the policy's name).
    pub fn to_spec(&self, name: &str) -> PluginSpec {
        let mut spec = PluginSpec::new(name, &self.path);
        spec.on_error = self.on_error;
        spec.grant = self.grant.clone();
        spec.fuel = self.fuel;
        spec.memory_mib = self.memory_mib;
        spec.config = self.config.clone();
        spec
    }
}

fn default_fuel() -> u64 {
    DEFAULT_FUEL
}

fn default_memory_mib() -> u32 {
    DEFAULT_MEMORY_MIB
}

impl PluginSpec {
    /// A spec with every default: no grants, `pass` on error, no settings.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.into(),
            path: path.into(),
            on_error: OnError::default(),
            grant: Vec::new(),
            fuel: DEFAULT_FUEL,
            memory_mib: DEFAULT_MEMORY_MIB,
            max_output_ratio: None,
            max_output_bytes: None,
            config: serde_json::Map::new(),
        }
    }

    /// The output cap in bytes for an input batch of `input_len` encoded bytes.
    pub fn output_cap(&self, input_len: usize) -> u64 {
        let relative = |ratio: f64| {
            let scaled = (input_len as f64 * ratio).min(u64::MAX as f64) as u64;
            scaled.max(MIN_OUTPUT_CAP_BYTES)
        };
        match (self.max_output_ratio, self.max_output_bytes) {
            (Some(ratio), Some(bytes)) => relative(ratio).min(bytes),
            (Some(ratio), None) => relative(ratio),
            (None, Some(bytes)) => bytes,
            (None, None) => relative(DEFAULT_MAX_OUTPUT_RATIO),
        }
    }

    /// Checks values serde cannot: a name, fuel and memory in range, finite positive ratio.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name is empty".into());
        }
        if self.fuel == 0 {
            return Err("fuel must be at least 1".into());
        }
        if self.memory_mib == 0 || self.memory_mib > MAX_MEMORY_MIB {
            return Err(format!(
                "memory-mib {} is out of range 1..={MAX_MEMORY_MIB}",
                self.memory_mib
            ));
        }
        if let Some(ratio) = self.max_output_ratio {
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err(format!(
                    "max-output-ratio {ratio} must be a positive number"
                ));
            }
        }
        if self.max_output_bytes == Some(0) {
            return Err("max-output-bytes must be at least 1".into());
        }
        Ok(())
    }

    /// The settings as the JSON text `configure` receives.
    pub fn config_json(&self) -> String {
        serde_json::Value::Object(self.config.clone()).to_string()
    }
}

/// What a failing plugin does to the batch it failed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The batch continues unchanged, as if the plugin were not there.
    #[default]
    Pass,
    /// The batch is dropped (later plugins do not see it).
    Drop,
}

impl OnError {
    /// `pass` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Pass => "pass",
            OnError::Drop => "drop",
        }
    }
}

/// A capability a plugin may ask for and the operator may grant (the WIT `capability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Real wall and monotonic clocks (otherwise both read 0).
    Clock,
    /// Real randomness (otherwise a fixed, seeded stream).
    Random,
    /// `host.log` lines reach the daemon's log (otherwise they are dropped).
    Log,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 3] = [Capability::Clock, Capability::Random, Capability::Log];

    /// `clock`, `random` or `log`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Clock => "clock",
            Capability::Random => "random",
            Capability::Log => "log",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the host hands a plugin its batches (the WIT `mode`; contract 0.1 plugins are
/// `spans`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `process` on the block-encoded batch.
    #[default]
    Spans,
    /// `process-strings` on the batch's strings view; the host applies the patches.
    Strings,
    /// Not a pipeline plugin: a tail-sampling policy (world `policy`), whose `decide` the tail
    /// sampler calls per trace.
    Policy,
}

impl Mode {
    /// `spans`, `strings` or `policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Spans => "spans",
            Mode::Strings => "strings",
            Mode::Policy => "policy",
        }
    }
}

impl Metadata {
    pub(crate) fn into_policy(mut self) -> Metadata {
        self.mode = Mode::Policy;
        self
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin says about itself (its `metadata` export).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Short name, `[a-z0-9-]+`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Which export the host calls per batch.
    #[serde(default)]
    pub mode: Mode,
    /// Capabilities it asks for.
    pub capabilities: Vec<Capability>,
}
