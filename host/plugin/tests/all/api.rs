//! The API the daemon and the CLI use: specs from TOML, reload, threads, `check`, `run_file`.

use std::sync::Arc;

use spoor_plugin_host::{
    check, run_file, Capability, ChainHandle, LoadError, Mode, OnError, PluginChain, PluginError,
    PluginErrorKind, PluginSpec, RunError, DEFAULT_FUEL, DEFAULT_MEMORY_MIB,
};

use crate::support::{example, hostile, kv, sorted, spans};

#[derive(serde::Deserialize)]
struct File {
    plugins: Vec<PluginSpec>,
}

#[test]
fn spec_from_toml_with_defaults_and_kebab_case_keys() {
    let file: File = toml::from_str(
        r#"
        [[plugins]]
        name = "redact"
        path = "plugins/redact.wasm"

        [[plugins]]
        name = "strict"
        path = "/opt/strict.wasm"
        on-error = "drop"
        grant = ["clock", "log"]
        fuel = 1000
        memory-mib = 8
        max-output-bytes = 4096
        config = { keys = ["a", "b"], nested = { depth = 2 } }
        "#,
    )
    .unwrap();
    let [lax, strict] = &file.plugins[..] else {
        panic!("two plugins")
    };
    assert_eq!(lax, &PluginSpec::new("redact", "plugins/redact.wasm"));
    assert_eq!(lax.on_error, OnError::Pass);
    assert_eq!(lax.fuel, DEFAULT_FUEL);
    assert_eq!(lax.memory_mib, DEFAULT_MEMORY_MIB);
    assert_eq!(lax.config_json(), "{}");
    assert_eq!(strict.on_error, OnError::Drop);
    assert_eq!(strict.grant, vec![Capability::Clock, Capability::Log]);
    assert_eq!((strict.fuel, strict.memory_mib), (1000, 8));
    assert_eq!(strict.output_cap(100), 4096);
    assert_eq!(
        strict.config_json(),
        r#"{"keys":["a","b"],"nested":{"depth":2}}"#
    );
}

#[test]
fn spec_rejects_unknown_keys_and_capabilities_by_name() {
    let err = toml::from_str::<File>("[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\nmemory = 3\n")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown field `memory`"), "{err}");
    let err =
        toml::from_str::<File>("[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\ngrant = [\"net\"]\n")
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("unknown variant `net`"), "{err}");
}

#[test]
fn output_cap_is_relative_with_a_floor_unless_absolute() {
    let mut s = PluginSpec::new("p", "p.wasm");
    assert_eq!(s.output_cap(10), 1 << 20);
    assert_eq!(s.output_cap(1 << 20), 4 << 20);
    s.max_output_ratio = Some(2.0);
    assert_eq!(s.output_cap(1 << 20), 2 << 20);
    s.max_output_bytes = Some(3 << 20);
    assert_eq!(s.output_cap(10 << 20), 3 << 20);
}

#[test]
fn invalid_specs_fail_to_load_naming_the_plugin() {
    let mut s = PluginSpec::new("tiny", hostile("snoop"));
    s.memory_mib = 0;
    let err = PluginChain::load(&[s]).unwrap_err();
    assert!(matches!(err, LoadError::Spec { .. }), "{err}");
    assert!(err.to_string().contains("\"tiny\""), "{err}");
    assert!(err.to_string().contains("memory-mib 0"), "{err}");

    let twice = [
        PluginSpec::new("same", hostile("snoop")),
        PluginSpec::new("same", hostile("snoop")),
    ];
    let err = PluginChain::load(&twice).unwrap_err().to_string();
    assert!(err.contains("used by two plugins"), "{err}");

    let missing = PluginSpec::new("gone", "/nonexistent/gone.wasm");
    let err = PluginChain::load(&[missing]).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/gone.wasm"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let err = PluginChain::load(&[PluginSpec::new("junk", &junk)]).unwrap_err();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    assert_eq!(err.plugin(), "junk");
}

#[test]
fn empty_chain_and_empty_batches_pass_through() {
    let input = spans(5);
    let out = PluginChain::empty().process(input.clone());
    assert_eq!(out.spans, input);
    let chain = PluginChain::load(&[PluginSpec::new("loop", hostile("loop"))]).unwrap();
    let out = chain.process(Vec::new());
    assert!(out.spans.is_empty() && out.errors.is_empty());
    assert_eq!(chain.stats()[0].calls, 0);
}

#[test]
fn many_threads_share_one_chain() {
    let mut greedy = PluginSpec::new("greedy", hostile("greedy"));
    greedy.grant = Capability::ALL.to_vec();
    let mut trap = PluginSpec::new("trap", hostile("trap"));
    trap.on_error = OnError::Pass;
    let chain = Arc::new(
        PluginChain::load(&[greedy, PluginSpec::new("snoop", hostile("snoop")), trap]).unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let chain = chain.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let input = spans(1 + t * 10 + i);
                    let out = chain.process(input.clone());
                    assert_eq!(sorted(out.spans), sorted(input));
                    assert_eq!(out.errors.len(), 1);
                    assert_eq!(out.errors[0].error.kind(), PluginErrorKind::Trap);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = chain.stats();
    let spans_total: u64 = (0..4u64)
        .flat_map(|t| (0..10u64).map(move |i| 1 + t * 10 + i))
        .sum();
    for s in &stats {
        assert_eq!(s.calls, 40, "{s:?}");
        assert_eq!(s.spans_in, spans_total, "{s:?}");
    }
    assert_eq!(stats[1].spans_out, spans_total);
    assert_eq!(stats[2].failures_of(PluginErrorKind::Trap), 40);
    assert!(stats[0].nanos > 0);
}

#[test]
fn reload_swaps_changed_files_and_keeps_the_old_version_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.wasm");
    std::fs::copy(hostile("garbage"), &path).unwrap();
    let handle = ChainHandle::new(PluginChain::load(&[PluginSpec::new("p", &path)]).unwrap());
    let input = spans(6);
    let kind = |h: &ChainHandle| {
        h.process(input.clone())
            .errors
            .first()
            .map(|f| f.error.kind())
    };
    assert_eq!(kind(&handle), Some(PluginErrorKind::MalformedOutput));
    let report = handle.reload_if_changed();
    assert!(report.reloaded.is_empty() && report.errors.is_empty());

    // Batches already holding the old chain finish on it.
    let in_flight = handle.current();
    std::fs::copy(hostile("snoop"), &path).unwrap();
    let report = handle.reload_if_changed();
    assert_eq!(report.reloaded, vec!["p".to_string()]);
    assert!(report.errors.is_empty());
    assert_eq!(kind(&handle), None);
    assert_eq!(
        in_flight.process(input.clone()).errors[0].error.kind(),
        PluginErrorKind::MalformedOutput
    );

    // A broken file is reported once and the loaded version keeps running.
    std::fs::write(&path, b"not a component at all").unwrap();
    let report = handle.reload_if_changed();
    assert!(report.reloaded.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].plugin(), "p");
    assert_eq!(kind(&handle), None);
    let report = handle.reload_if_changed();
    assert!(report.errors.is_empty(), "not retried until it changes");

    // Counters survive reloads: garbage once, snoop twice (+ in_flight's own chain shares
    // the same counters).
    let stats = &handle.stats()[0];
    assert_eq!(stats.calls, 4);
    assert_eq!(stats.failures_of(PluginErrorKind::MalformedOutput), 2);
}

#[test]
fn check_reports_metadata_and_asked_capabilities() {
    let meta = check(&hostile("greedy")).unwrap();
    assert_eq!(meta.name, "hostile-greedy");
    assert_eq!(meta.version, "0.1.0");
    assert_eq!(
        meta.capabilities,
        vec![Capability::Clock, Capability::Random, Capability::Log]
    );
    let err = check(std::path::Path::new("/nonexistent.wasm")).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
}

#[test]
fn run_file_runs_once_and_reports_typed_errors() {
    let input = spans(9);
    let out = run_file(&hostile("snoop"), "{}", &[], input.clone()).unwrap();
    assert_eq!(sorted(out), sorted(input.clone()));
    match run_file(&hostile("trap"), "{}", &[], input.clone()) {
        Err(RunError::Plugin {
            error: PluginError::Trap(message),
            ..
        }) => assert!(message.contains("wasm"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    match run_file(&hostile("greedy"), "{}", &[Capability::Log], input.clone()) {
        Err(RunError::Load(LoadError::CapabilityDenied { capability, .. })) => {
            assert_eq!(capability, Capability::Clock)
        }
        other => panic!("expected a capability error, got {other:?}"),
    }
    assert!(matches!(
        run_file(&hostile("snoop"), "[1]", &[], input),
        Err(RunError::Load(LoadError::Spec { .. }))
    ));
}

#[test]
fn chains_are_shared_between_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<PluginChain>();
    send_sync::<ChainHandle>();
    send_sync::<PluginError>();
    send_sync::<LoadError>();
}

#[test]
fn the_mode_comes_from_the_plugin_and_0_1_plugins_still_load() {
    let modes = [
        (example("redact"), Mode::Strings),
        (example("rename"), Mode::Strings),
        (example("drop"), Mode::Spans),
        (hostile("patchy"), Mode::Strings),
        // Built against plugins/wit/v0.1: contract 0.1, spans mode.
        (hostile("snoop"), Mode::Spans),
    ];
    for (path, mode) in modes {
        let meta = check(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.mode, mode, "{}", path.display());
    }
}

#[test]
fn a_mixed_chain_equals_its_plugins_one_by_one() {
    // rename (strings) -> drop (spans) -> redact (strings): the batch changes form between
    // plugins (spans patched in place, then encoded for drop, then patched again) and the
    // result is what the three single-plugin chains give in turn.
    let one = |name: &str, config: serde_json::Value| {
        let mut s = PluginSpec::new(name, example(name));
        s.config = config.as_object().cloned().unwrap();
        s
    };
    let specs = [
        one(
            "rename",
            serde_json::json!({"services": {"frontend": "Web"}, "lowercase_services": true}),
        ),
        one(
            "drop",
            serde_json::json!({"rules": [{"operation": "op-1"}]}),
        ),
        one("redact", serde_json::json!({"keys": ["user.password"]})),
    ];
    let mut input = spans(24);
    input[3].attributes.push(kv(
        "note",
        spoor_core::AnyValue::Str("mail ann@example.com".into()),
    ));
    let chained = PluginChain::load(&specs).unwrap().process(input.clone());
    assert!(chained.errors.is_empty(), "{:?}", chained.errors);
    let mut stepwise = input;
    for spec in &specs {
        let out = PluginChain::load(std::slice::from_ref(spec))
            .unwrap()
            .process(stepwise);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        stepwise = out.spans;
    }
    assert_eq!(sorted(chained.spans.clone()), sorted(stepwise));
    let out = sorted(chained.spans);
    assert_eq!(out.len(), 16, "drop removed the op-1 spans");
    assert!(out.iter().all(|s| s.name != "op-1"));
    assert!(out.iter().any(|s| s.service() == "web"));
    assert!(out.iter().all(|s| s.service() != "frontend"));
    for s in &out {
        let password = spoor_core::find_attr(&s.attributes, "user.password");
        assert_eq!(
            password,
            Some(&spoor_core::AnyValue::Str("[REDACTED]".into()))
        );
    }
    let note = out
        .iter()
        .find_map(|s| spoor_core::find_attr(&s.attributes, "note"))
        .unwrap();
    assert_eq!(
        note,
        &spoor_core::AnyValue::Str("mail [REDACTED:email]".into())
    );
}
