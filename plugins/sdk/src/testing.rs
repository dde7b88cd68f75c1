//! Running a plugin natively, through the same path the component takes (JSON settings →
//! [`Plugin::configure`]; spans → block encoding → [`crate::process_encoded`] → decoded spans),
//! so plugin logic is unit-tested with `cargo test`, and golden fixtures that the host's tests
//! replay through wasmtime.
//!
//! # Golden fixtures
//!
//! [`check_golden`] reads one folder per case:
//!
//! - `config.json` — the plugin's settings, as `configure` receives them;
//! - `input.json` — the batch: a JSON array of [`Span`]s in the span model's serde form
//!   (`serde_json::from_str::<Vec<spoor_core::Span>>` reads it; trace and span ids are the
//!   numbers of [`spoor_core::TraceId`] and [`spoor_core::SpanId`], resources and scopes are
//!   written out per span);
//! - `expected.json` — the spans the host decodes from the plugin's output, same form, in
//!   output order (the block encoding groups spans per trace, in order of first appearance);
//! - or, instead, `expected-error.txt` — the error `configure` or `process` returns, rendered as
//!   the WIT case name and its message (`invalid-config: ...`, `failed: ...`).
//!
//! `SPOOR_BLESS=1 cargo test` rewrites the expectations.

use std::cell::RefCell;
use std::path::Path;

use spoor_core::block::{encode_block, BlockReader};

use crate::log::Level;
use crate::{Error, Plugin, Policy, Span, TraceId};

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn capture_log(level: Level, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

/// The lines logged on this thread since the last call (natively; empty in the guest, where
/// they go to the host).
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// A configured plugin that keeps its state between batches, as a component instance does.
#[derive(Debug)]
pub struct Instance<P> {
    plugin: P,
}

impl<P: Plugin> Instance<P> {
    /// Configures the plugin from its JSON settings.
    pub fn new(config_json: &str) -> Result<Self, Error> {
        Ok(Instance {
            plugin: crate::configure::<P>(config_json)?,
        })
    }

    /// Runs one batch through the block encoding and the plugin, returning the decoded output.
    pub fn process(&mut self, spans: &[Span]) -> Result<Vec<Span>, Error> {
        let out = crate::process_encoded(&mut self.plugin, encode_block(spans))?;
        BlockReader::open(&out)
            .and_then(|r| r.decode_all())
            .map_err(|e| Error::failed(format!("plugin output is not a valid block: {e}")))
    }

    /// The plugin itself.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }
}

/// Configures `P` with `config_json` and runs one batch through it.
pub fn run<P: Plugin>(config_json: &str, spans: &[Span]) -> Result<Vec<Span>, Error> {
    Instance::<P>::new(config_json)?.process(spans)
}

/// Renders spans as a golden file holds them: pretty JSON of the span model, one newline at the
/// end.
pub fn render(spans: &[Span]) -> String {
    let mut s = serde_json::to_string_pretty(spans).unwrap_or_else(|e| format!("error: {e}"));
    s.push('\n');
    s
}

/// What a golden case produced: the rendered output spans, or the rendered error.
fn run_case<P: Plugin>(case: &Path) -> Result<(&'static str, String), String> {
    let read = |name: &str| {
        std::fs::read_to_string(case.join(name))
            .map_err(|e| format!("{}: {e}", case.join(name).display()))
    };
    let config = read("config.json")?;
    let outcome = match Instance::<P>::new(&config) {
        Err(e) => Err(e),
        Ok(mut instance) => {
            let input: Vec<Span> = serde_json::from_str(&read("input.json")?)
                .map_err(|e| format!("{}: {e}", case.join("input.json").display()))?;
            instance.process(&input)
        }
    };
    Ok(match outcome {
        Ok(spans) => ("expected.json", render(&spans)),
        Err(e) => ("expected-error.txt", format!("{e}\n")),
    })
}

/// Configures the policy `P` with `config_json` and decides each trace of `spans` (grouped by
/// trace id, in order of first appearance) through the block encoding, as the component does:
/// the trace ids with their verdicts.
pub fn decide<P: Policy>(config_json: &str, spans: &[Span]) -> Result<Vec<(TraceId, bool)>, Error> {
    let mut policy = crate::configure_policy::<P>(config_json)?;
    let mut traces: Vec<(TraceId, Vec<Span>)> = Vec::new();
    for span in spans {
        match traces.iter_mut().find(|(id, _)| *id == span.trace_id) {
            Some((_, t)) => t.push(span.clone()),
            None => traces.push((span.trace_id, vec![span.clone()])),
        }
    }
    traces
        .into_iter()
        .map(|(id, t)| Ok((id, crate::decide_encoded(&mut policy, &encode_block(&t))?)))
        .collect()
}

/// Renders verdicts as a policy's golden file holds them: a JSON array of
/// `{"trace_id": "<32 hex digits>", "sampled": true|false}`, one newline at the end.
pub fn render_verdicts(verdicts: &[(TraceId, bool)]) -> String {
    let list: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|(id, sampled)| serde_json::json!({"trace_id": id.to_string(), "sampled": sampled}))
        .collect();
    let mut s = serde_json::to_string_pretty(&list).unwrap_or_else(|e| format!("error: {e}"));
    s.push('\n');
    s
}

/// What a policy's golden case produced: the rendered verdicts, or the rendered error.
fn run_policy_case<P: Policy>(case: &Path) -> Result<(&'static str, String), String> {
    let read = |name: &str| {
        std::fs::read_to_string(case.join(name))
            .map_err(|e| format!("{}: {e}", case.join(name).display()))
    };
    let config = read("config.json")?;
    let input: Vec<Span> = serde_json::from_str(&read("input.json")?)
        .map_err(|e| format!("{}: {e}", case.join("input.json").display()))?;
    Ok(match decide::<P>(&config, &input) {
        Ok(verdicts) => ("expected.json", render_verdicts(&verdicts)),
        Err(e) => ("expected-error.txt", format!("{e}\n")),
    })
}

/// [`check_golden`] for a [`Policy`]: `expected.json` holds the verdict per trace (see
/// [`render_verdicts`]).
pub fn check_golden_policy<P: Policy>(dir: impl AsRef<Path>) {
    check_cases(dir.as_ref(), run_policy_case::<P>);
}

/// Runs every case folder under `dir` (see the module docs) and compares the outcome with its
/// expectation; with `SPOOR_BLESS=1` set, writes the expectations instead. Panics naming every
/// case that differs.
pub fn check_golden<P: Plugin>(dir: impl AsRef<Path>) {
    check_cases(dir.as_ref(), run_case::<P>);
}

fn check_cases(dir: &Path, run_case: impl Fn(&Path) -> Result<(&'static str, String), String>) {
    let bless = std::env::var_os("SPOOR_BLESS").is_some_and(|v| v == "1");
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let (file, actual) = match run_case(case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let path = case.join(file);
        if bless {
            for stale in ["expected.json", "expected-error.txt"] {
                if stale != file {
                    let _ = std::fs::remove_file(case.join(stale));
                }
            }
            std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: differs (SPOOR_BLESS=1 rewrites it)\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e}; the case produced\n{actual}",
                path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
