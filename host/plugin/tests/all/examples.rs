//! The example plugins (`make plugins` -> target/plugins/<name>.wasm) replayed through
//! wasmtime on the golden cases their author left in plugins/examples/<name>/tests/golden:
//! `config.json`, `input.json`, and `expected.json` or `expected-error.txt` (the refusal as
//! `invalid-config: ...` / `failed: ...`), through `run_file` as `spoor plugin run` does.

use std::path::Path;

use spoor_core::Span;
use spoor_plugin_host::{check, run_any_file, LoadError, PluginError, RunError, RunOutput};

use crate::support::{example, root};

/// Runs every case of one example; returns the differences, one line per failing case.
fn replay(name: &str) -> Vec<String> {
    let wasm = example(name);
    let meta = check(&wasm).unwrap_or_else(|e| panic!("{e}"));
    let dir = root()
        .join("plugins/examples")
        .join(name)
        .join("tests/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let read = |file: &str| std::fs::read_to_string(case.join(file)).ok();
        let config = read("config.json").expect("config.json");
        // Cases that fail in `configure` need no input.
        let input: Vec<Span> = read("input.json")
            .map(|text| serde_json::from_str(&text).unwrap())
            .unwrap_or_default();
        let outcome = run_any_file(&wasm, &config, &meta.capabilities, input);
        let label = case.strip_prefix(root()).unwrap_or(case).display();
        match (outcome, read("expected.json"), read("expected-error.txt")) {
            (Ok(RunOutput::Spans(spans)), Some(expected), _) => {
                let expected: Vec<Span> = serde_json::from_str(&expected).unwrap();
                if spans != expected {
                    failures.push(format!("{label}: output differs from expected.json"));
                }
            }
            // A policy: `[{"trace_id": hex, "sampled": bool}]` in trace order.
            (Ok(RunOutput::Verdicts(verdicts)), Some(expected), _) => {
                let expected: Vec<serde_json::Value> = serde_json::from_str(&expected).unwrap();
                let expected: Vec<(String, bool)> = expected
                    .iter()
                    .map(|v| {
                        (
                            v["trace_id"].as_str().unwrap().to_string(),
                            v["sampled"].as_bool().unwrap(),
                        )
                    })
                    .collect();
                let actual: Vec<(String, bool)> = verdicts
                    .iter()
                    .map(|(id, v)| (id.to_string(), *v))
                    .collect();
                if actual != expected {
                    failures.push(format!(
                        "{label}: verdicts {actual:?} differ from expected.json {expected:?}"
                    ));
                }
            }
            (Err(RunError::Plugin { error, .. }), _, Some(expected))
            | (Err(RunError::Load(LoadError::Configure { error, .. })), _, Some(expected)) => {
                compare_refusal(&label, &error, &expected, &mut failures)
            }
            (Ok(_), _, _) => failures.push(format!("{label}: expected an error, got a batch")),
            (Err(e), _, _) => failures.push(format!("{label}: {e}")),
        }
    }
    failures
}

fn compare_refusal(
    label: &impl std::fmt::Display,
    error: &PluginError,
    expected: &str,
    failures: &mut Vec<String>,
) {
    match error {
        PluginError::Refused(message) if message == expected.trim_end() => {}
        other => failures.push(format!(
            "{label}: expected `{}`, got `{other}`",
            expected.trim_end()
        )),
    }
}

fn assert_golden(name: &str) {
    let failures = replay(name);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn slo_policy_matches_its_golden_cases() {
    assert_golden("slo");
}

#[test]
fn redact_matches_its_golden_cases() {
    assert_golden("redact");
}

#[test]
fn drop_matches_its_golden_cases() {
    assert_golden("drop");
}

#[test]
fn rename_matches_its_golden_cases() {
    assert_golden("rename");
}

#[test]
fn golden_cases_exist_for_every_example() {
    for name in ["redact", "drop", "rename"] {
        let dir = root()
            .join("plugins/examples")
            .join(name)
            .join("tests/golden");
        assert!(Path::new(&dir).is_dir(), "{} is missing", dir.display());
    }
}
