//! Why a plugin could not be loaded ([`LoadError`]) and why one call failed ([`PluginError`]).

use std::path::PathBuf;

use crate::spec::Capability;

/// A plugin could not be loaded. Every variant names the plugin (the spec's name) and, where
/// there is one, the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec itself is invalid (a value out of range, a duplicate name).
    #[error("plugin {plugin:?}: invalid spec: {message}")]
    Spec {
        /// The spec's name.
        plugin: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The file could not be read.
    #[error("plugin {plugin:?}: cannot read {}: {source}", path.display())]
    Read {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a component wasmtime can compile, or it does not fit the
    /// `spoor:plugin/plugin` world (missing exports, imports the host does not provide).
    #[error("plugin {plugin:?}: {} is not a usable spoor:plugin component: {message}", path.display())]
    Invalid {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component was built against an incompatible version of the plugin contract.
    #[error("plugin {plugin:?}: {} was built for spoor:plugin@{found}, this host speaks spoor:plugin@{expected}", path.display())]
    Version {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The version the component imports.
        found: String,
        /// The version this host implements.
        expected: &'static str,
    },
    /// The plugin asks for a capability the operator did not grant.
    #[error("plugin {plugin:?} ({}) asks for capability \"{capability}\", which is not granted (grant = [{}])", path.display(), granted.iter().map(|c| format!("{:?}", c.as_str())).collect::<Vec<_>>().join(", "))]
    CapabilityDenied {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The capability asked for.
        capability: Capability,
        /// What the operator granted.
        granted: Vec<Capability>,
    },
    /// `metadata` failed or returned something unusable, or instantiation failed.
    #[error("plugin {plugin:?} ({}): {message}", path.display())]
    Start {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// `configure` refused the settings or failed.
    #[error("plugin {plugin:?} ({}): configure failed: {error}", path.display())]
    Configure {
        /// The spec's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The plugin's refusal or the trap.
        error: PluginError,
    },
    /// The runtime itself could not be set up (e.g. no address space for the pooling
    /// allocator).
    #[error("plugin runtime unavailable: {0}")]
    Engine(String),
}

impl LoadError {
    /// The spec name of the plugin that failed (empty for [`LoadError::Engine`]).
    pub fn plugin(&self) -> &str {
        match self {
            LoadError::Spec { plugin, .. }
            | LoadError::Read { plugin, .. }
            | LoadError::Invalid { plugin, .. }
            | LoadError::Version { plugin, .. }
            | LoadError::CapabilityDenied { plugin, .. }
            | LoadError::Start { plugin, .. }
            | LoadError::Configure { plugin, .. } => plugin,
            LoadError::Engine(_) => "",
        }
    }
}

/// One call of a plugin failed. The failure policy of the plugin (`on-error`) decides what
/// happens to the batch; the error is counted under [`PluginError::kind`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The guest trapped (panic, `unreachable`, out-of-bounds access, stack overflow, exit).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call used up its fuel (an endless or too slow loop).
    #[error("plugin ran out of fuel ({fuel} units per call)")]
    OutOfFuel {
        /// The budget it had.
        fuel: u64,
    },
    /// The guest trapped after the host refused to grow its memory past the cap.
    #[error("plugin ran out of memory (cap {cap_mib} MiB)")]
    OutOfMemory {
        /// The cap in MiB.
        cap_mib: u32,
    },
    /// The output is not a valid batch encoding.
    #[error("plugin returned a malformed batch: {0}")]
    MalformedOutput(String),
    /// The output is larger than the cap.
    #[error("plugin returned {bytes} bytes, over the cap of {cap}")]
    OutputTooLarge {
        /// Size of the output.
        bytes: u64,
        /// The cap for this batch.
        cap: u64,
    },
    /// The plugin refused the batch or the settings: its `plugin-error` as the WIT case name and
    /// the message (`invalid-config: ...`, `failed: ...`).
    #[error("plugin refused: {0}")]
    Refused(String),
    /// No instance could be created for the call (e.g. the instance pool is exhausted).
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// The batch cannot be handed to the plugin (its strings exceed the strings view's `u32`
    /// offsets).
    #[error("batch too large for the plugin: {0}")]
    InputTooLarge(String),
}

/// The kinds of [`PluginError`], for metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginErrorKind {
    /// [`PluginError::Trap`].
    Trap,
    /// [`PluginError::OutOfFuel`].
    OutOfFuel,
    /// [`PluginError::OutOfMemory`].
    OutOfMemory,
    /// [`PluginError::MalformedOutput`].
    MalformedOutput,
    /// [`PluginError::OutputTooLarge`].
    OutputTooLarge,
    /// [`PluginError::Refused`].
    Refused,
    /// [`PluginError::Instantiate`].
    Instantiate,
    /// [`PluginError::InputTooLarge`].
    InputTooLarge,
}

impl PluginErrorKind {
    /// Every kind, in the order of [`PluginErrorKind::index`].
    pub const ALL: [PluginErrorKind; 8] = [
        PluginErrorKind::Trap,
        PluginErrorKind::OutOfFuel,
        PluginErrorKind::OutOfMemory,
        PluginErrorKind::MalformedOutput,
        PluginErrorKind::OutputTooLarge,
        PluginErrorKind::Refused,
        PluginErrorKind::Instantiate,
        PluginErrorKind::InputTooLarge,
    ];

    /// The metrics label: `trap`, `out_of_fuel`, `out_of_memory`, `malformed_output`,
    /// `output_too_large`, `refused`, `instantiate`, `input_too_large`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginErrorKind::Trap => "trap",
            PluginErrorKind::OutOfFuel => "out_of_fuel",
            PluginErrorKind::OutOfMemory => "out_of_memory",
            PluginErrorKind::MalformedOutput => "malformed_output",
            PluginErrorKind::OutputTooLarge => "output_too_large",
            PluginErrorKind::Refused => "refused",
            PluginErrorKind::Instantiate => "instantiate",
            PluginErrorKind::InputTooLarge => "input_too_large",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl PluginError {
    /// The kind, for metrics labels ([`PluginErrorKind::as_str`]).
    pub fn kind(&self) -> PluginErrorKind {
        match self {
            PluginError::Trap(_) => PluginErrorKind::Trap,
            PluginError::OutOfFuel { .. } => PluginErrorKind::OutOfFuel,
            PluginError::OutOfMemory { .. } => PluginErrorKind::OutOfMemory,
            PluginError::MalformedOutput(_) => PluginErrorKind::MalformedOutput,
            PluginError::OutputTooLarge { .. } => PluginErrorKind::OutputTooLarge,
            PluginError::Refused(_) => PluginErrorKind::Refused,
            PluginError::Instantiate(_) => PluginErrorKind::Instantiate,
            PluginError::InputTooLarge(_) => PluginErrorKind::InputTooLarge,
        }
    }
}

/// Why [`crate::run_file`] failed: the plugin did not load, or the call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The call failed.
    #[error("plugin {plugin:?}: {error}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The failure.
        error: PluginError,
    },
}
