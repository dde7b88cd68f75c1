//! The component glue, compiled only for `wasm32`: the wit-bindgen bindings of
//! `plugins/wit/plugin.wit` and the functions [`crate::export_plugin!`] wires to the exports.

// wit-bindgen's generated import and export shims are `unsafe` FFI by nature; nothing else in
// this module is.
#![allow(unsafe_code)]

use std::any::Any;
use std::cell::RefCell;

use crate::{Capability, Error, Mode, Plugin, Policy, Strings, StringsPlugin};

/// The generated bindings (world `spoor:plugin/plugin@0.2.1`).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin.wit",
        world: "spoor:plugin/plugin@0.2.1",
        pub_export_macro: true,
        export_macro_name: "__spoor_export_bindings",
        default_bindings_module: "spoor_plugin_sdk::__private::bindings",
        runtime_path: "spoor_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// The generated bindings of the tail-sampling policy world (`spoor:plugin/policy@0.2.1`).
/// Only the imports are linked into every plugin; a crate that invokes
/// [`crate::export_policy!`] adds this world's exports, one that invokes
/// [`crate::export_plugin!`] the other world's.
#[allow(missing_docs, clippy::all)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin.wit",
        world: "spoor:plugin/policy@0.2.1",
        pub_export_macro: true,
        export_macro_name: "__spoor_export_policy_bindings",
        default_bindings_module: "spoor_plugin_sdk::__private::policy_bindings",
        runtime_path: "spoor_plugin_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::spoor::plugin::host;
use bindings::spoor::plugin::types::{Capability as WitCapability, Mode as WitMode};
use bindings::{Metadata, PluginError};

/// The WIT `patches`.
pub use bindings::spoor::plugin::types::Patches as WitPatches;
/// The WIT `strings-view`.
pub use bindings::spoor::plugin::types::StringsView as WitStringsView;

thread_local! {
    /// The configured plugin of this instance (a component instance is single-threaded).
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(m) => PluginError::InvalidConfig(m),
            Error::Failed(m) => PluginError::Failed(m),
        }
    }
}

/// The `metadata` export.
pub fn metadata<P: Plugin>(mode: Mode) -> Metadata {
    Metadata {
        mode: match mode {
            Mode::Spans => WitMode::Spans,
            Mode::Strings => WitMode::Strings,
        },
        name: P::NAME.into(),
        version: P::VERSION.into(),
        capabilities: P::capabilities()
            .iter()
            .map(|c| match c {
                Capability::Clock => WitCapability::Clock,
                Capability::Random => WitCapability::Random,
                Capability::Log => WitCapability::Log,
            })
            .collect(),
    }
}

/// The `configure` export: replaces the instance's plugin with a newly configured one.
pub fn configure<P: Plugin>(config: &str) -> Result<(), PluginError> {
    let plugin = crate::configure::<P>(config)?;
    STATE.with(|s| *s.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

/// The `process` export.
pub fn process<P: Plugin>(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let plugin = state
            .as_mut()
            .and_then(|p| p.downcast_mut::<P>())
            .ok_or_else(|| PluginError::Failed("process called before configure".into()))?;
        Ok(crate::process_encoded(plugin, batch)?)
    })
}

/// The `process-strings` export of a [`StringsPlugin`] (configured as [`Strings`]).
pub fn process_strings<P: StringsPlugin>(view: WitStringsView) -> Result<WitPatches, PluginError> {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let plugin = state
            .as_mut()
            .and_then(|p| p.downcast_mut::<Strings<P>>())
            .ok_or_else(|| PluginError::Failed("process-strings called before configure".into()))?;
        let view = crate::strings::View {
            text: view.text,
            records: view.records,
        };
        let patches = crate::rewrite_view(&mut plugin.0, view)?;
        Ok(WitPatches {
            text: patches.text,
            ops: patches.ops,
        })
    })
}

/// The `metadata` export of a policy.
pub fn policy_metadata<P: Policy>() -> policy_bindings::PolicyMetadata {
    use policy_bindings::spoor::plugin::types::Capability as C;
    policy_bindings::PolicyMetadata {
        name: P::NAME.into(),
        version: P::VERSION.into(),
        capabilities: P::capabilities()
            .iter()
            .map(|c| match c {
                Capability::Clock => C::Clock,
                Capability::Random => C::Random,
                Capability::Log => C::Log,
            })
            .collect(),
    }
}

fn policy_error(e: Error) -> policy_bindings::PluginError {
    match e {
        Error::InvalidConfig(m) => policy_bindings::PluginError::InvalidConfig(m),
        Error::Failed(m) => policy_bindings::PluginError::Failed(m),
    }
}

/// The `configure` export of a policy.
pub fn policy_configure<P: Policy>(config: &str) -> Result<(), policy_bindings::PluginError> {
    let policy = crate::configure_policy::<P>(config).map_err(policy_error)?;
    STATE.with(|s| *s.borrow_mut() = Some(Box::new(policy)));
    Ok(())
}

/// The `decide` export of a policy.
pub fn policy_decide<P: Policy>(
    trace: Vec<u8>,
) -> Result<policy_bindings::Verdict, policy_bindings::PluginError> {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let policy = state
            .as_mut()
            .and_then(|p| p.downcast_mut::<P>())
            .ok_or_else(|| {
                policy_bindings::PluginError::Failed("decide called before configure".into())
            })?;
        match crate::decide_encoded(policy, &trace) {
            Ok(true) => Ok(policy_bindings::Verdict::Sampled),
            Ok(false) => Ok(policy_bindings::Verdict::NotSampled),
            Err(e) => Err(policy_error(e)),
        }
    })
}

/// The `process-strings` export of a spans plugin: the host calls `process` for those.
pub fn no_strings<P: Plugin>(_view: WitStringsView) -> Result<WitPatches, PluginError> {
    Err(PluginError::Failed(format!(
        "plugin {} works on whole spans (mode spans): call process",
        P::NAME
    )))
}

/// Calls the host's `log` import.
pub(crate) fn log(level: crate::log::Level, message: &str) {
    let level = match level {
        crate::log::Level::Debug => host::Level::Debug,
        crate::log::Level::Info => host::Level::Info,
        crate::log::Level::Warn => host::Level::Warn,
        crate::log::Level::Error => host::Level::Error,
    };
    host::log(level, message);
}
