//! The hostile guests of plugins/tests: each failure is typed, counted and handled by policy,
//! the process keeps running, and with `pass` the batch comes out unchanged.

use spoor_plugin_host::{
    Capability, LoadError, OnError, PluginChain, PluginErrorKind, PluginSpec, PluginStats,
};

use crate::support::{hostile, sorted, spans};

fn spec(name: &str) -> PluginSpec {
    PluginSpec::new(name, hostile(name))
}

/// Runs one hostile plugin (policy `pass`) twice on a batch and checks that the batch comes
/// out exactly as it went in, with one error of `kind` per call, counted.
fn fails_twice_with(spec: PluginSpec, kind: PluginErrorKind) -> PluginStats {
    let chain = PluginChain::load(std::slice::from_ref(&spec)).expect("hostile plugin loads");
    let input = spans(40);
    for round in 1..=2u64 {
        let out = chain.process(input.clone());
        assert_eq!(out.spans, input, "pass keeps the batch exactly");
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        let failure = &out.errors[0];
        assert_eq!(failure.plugin, spec.name);
        assert_eq!(failure.action, OnError::Pass);
        assert_eq!(failure.error.kind(), kind, "{}", failure.error);
        let stats = &chain.stats()[0];
        assert_eq!(stats.calls, round);
        assert_eq!(stats.failures_of(kind), round);
        assert_eq!(stats.failures_total(), round);
        assert_eq!(stats.spans_in, 40 * round);
        assert_eq!(stats.spans_out, 0);
    }
    chain.stats().remove(0)
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    let mut s = spec("loop");
    s.fuel = 20_000_000;
    fails_twice_with(s, PluginErrorKind::OutOfFuel);
}

#[test]
fn endless_loop_with_drop_drops_the_batch() {
    let mut s = spec("loop");
    s.fuel = 5_000_000;
    s.on_error = OnError::Drop;
    let chain = PluginChain::load(&[s, spec("snoop")]).unwrap();
    let out = chain.process(spans(10));
    assert!(out.spans.is_empty());
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].action, OnError::Drop);
    assert_eq!(out.errors[0].error.kind(), PluginErrorKind::OutOfFuel);
    let stats = chain.stats();
    assert_eq!(stats[1].calls, 0, "a dropped batch reaches no later plugin");
}

#[test]
fn memory_bomb_hits_the_cap() {
    let mut s = spec("membomb");
    s.memory_mib = 16;
    let stats = fails_twice_with(s, PluginErrorKind::OutOfMemory);
    assert_eq!(stats.failures_of(PluginErrorKind::Trap), 0);
}

#[test]
fn panic_is_a_trap() {
    fails_twice_with(spec("trap"), PluginErrorKind::Trap);
}

#[test]
fn unreachable_is_a_trap_and_the_chain_goes_on() {
    let mut s = spec("trap");
    s.config.insert(
        "how".into(),
        serde_json::Value::String("unreachable".into()),
    );
    let chain = PluginChain::load(&[s, spec("snoop")]).unwrap();
    let input = spans(12);
    let out = chain.process(input.clone());
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].plugin, "trap");
    assert_eq!(out.errors[0].error.kind(), PluginErrorKind::Trap);
    assert_eq!(
        sorted(out.spans),
        sorted(input),
        "snoop passes the batch on"
    );
    assert_eq!(chain.stats()[1].calls, 1);
    assert_eq!(chain.stats()[1].spans_out, 12);
}

#[test]
fn garbage_output_is_malformed() {
    fails_twice_with(spec("garbage"), PluginErrorKind::MalformedOutput);
}

#[test]
fn oversized_output_is_refused_by_the_cap() {
    fails_twice_with(spec("oversize"), PluginErrorKind::OutputTooLarge);
    // Raising the cap shows that the cap stopped it first; the content (a block followed by
    // junk) is then refused by the block reader, which accepts no bytes after the last segment.
    let mut s = spec("oversize");
    s.max_output_bytes = Some(1 << 30);
    s.memory_mib = 256;
    fails_twice_with(s, PluginErrorKind::MalformedOutput);
    let mut s = spec("oversize");
    s.max_output_bytes = Some(10_000);
    fails_twice_with(s, PluginErrorKind::OutputTooLarge);
}

#[test]
fn ungranted_capability_fails_to_load_naming_both() {
    let mut s = spec("greedy");
    s.grant = vec![Capability::Clock, Capability::Random];
    let err = PluginChain::load(&[s]).unwrap_err();
    match &err {
        LoadError::CapabilityDenied {
            plugin, capability, ..
        } => {
            assert_eq!(plugin, "greedy");
            assert_eq!(*capability, Capability::Log);
        }
        other => panic!("expected CapabilityDenied, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("\"greedy\""), "{message}");
    assert!(message.contains("greedy.wasm"), "{message}");
    assert!(message.contains("\"log\""), "{message}");

    let mut s = spec("greedy");
    s.grant = Capability::ALL.to_vec();
    let chain = PluginChain::load(&[s]).expect("loads with every grant");
    let input = spans(8);
    let out = chain.process(input.clone());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(sorted(out.spans), sorted(input));
}

#[test]
fn no_clock_files_environment_or_arguments_without_grants() {
    let chain = PluginChain::load(&[spec("snoop")]).unwrap();
    let input = spans(16);
    let out = chain.process(input.clone());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(sorted(out.spans), sorted(input));
}

#[test]
fn granted_clock_is_real() {
    // The same probe sees the clock once it is granted, so the test above can fail.
    let mut s = spec("snoop");
    s.grant = vec![Capability::Clock];
    let chain = PluginChain::load(&[s]).unwrap();
    let input = spans(16);
    let out = chain.process(input.clone());
    assert_eq!(out.spans, input);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].error.kind(), PluginErrorKind::Refused);
    let message = out.errors[0].error.to_string();
    assert!(message.contains("wall clock"), "{message}");
    assert!(!message.contains("file"), "{message}");
}

#[test]
fn sleeping_returns_at_once() {
    // Fuel does not run while the host waits, so timers must not really wait. The call runs
    // on its own thread so that a regression fails here instead of hanging for an hour.
    let chain = PluginChain::load(&[spec("sleepy")]).unwrap();
    let input = spans(4);
    let (tx, rx) = std::sync::mpsc::channel();
    let batch = input.clone();
    std::thread::spawn(move || {
        let _ = tx.send(chain.process(batch));
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a sleeping plugin must not hold the thread");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(sorted(out.spans), sorted(input));
}

/// The strings-mode hostile plugin, configured to misbehave `how`.
fn patchy(how: &str) -> PluginSpec {
    let mut s = spec("patchy");
    s.config
        .insert("how".into(), serde_json::Value::String(how.into()));
    s
}

/// Each bad answer of a strings plugin, the typed error it becomes, and what its message says.
#[test]
fn bad_patches_are_refused_by_policy_and_the_batch_passes_unchanged() {
    let cases = [
        (
            "out-of-range",
            PluginErrorKind::MalformedOutput,
            "but the view holds",
        ),
        (
            "unordered",
            PluginErrorKind::MalformedOutput,
            "strictly ascending order",
        ),
        (
            "wrong-kind",
            PluginErrorKind::MalformedOutput,
            "remove applies to attribute keys, not to a span name",
        ),
        ("oversized", PluginErrorKind::OutputTooLarge, "over the cap"),
        ("bad-utf8", PluginErrorKind::MalformedOutput, "utf-8"),
        (
            "bad-slice",
            PluginErrorKind::MalformedOutput,
            "is not a slice of the",
        ),
        ("bad-op", PluginErrorKind::MalformedOutput, "unknown op 9"),
    ];
    for (how, kind, says) in cases {
        let stats = fails_twice_with(patchy(how), kind);
        assert_eq!(stats.failures_total(), 2, "{how}");
        let chain = PluginChain::load(&[patchy(how)]).unwrap();
        let out = chain.process(spans(5));
        let message = out.errors[0].error.to_string();
        assert!(message.contains(says), "{how}: {message}");
    }
}

#[test]
fn a_well_behaved_strings_plugin_patches_in_place_and_keeps_order() {
    // The control for the cases above: the same plugin's valid patches are applied, and the
    // batch keeps its order (no block round trip regroups it).
    let chain = PluginChain::load(&[patchy("valid")]).unwrap();
    let input = spans(10);
    let out = chain.process(input.clone());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let names: Vec<&str> = out.spans.iter().map(|s| s.name.as_str()).collect();
    let expected: Vec<String> = input.iter().map(|s| s.name.to_uppercase()).collect();
    assert_eq!(names, expected);
    let ids: Vec<_> = out.spans.iter().map(|s| s.span_id).collect();
    let input_ids: Vec<_> = input.iter().map(|s| s.span_id).collect();
    assert_eq!(ids, input_ids);
    assert_eq!(chain.stats()[0].spans_out, 10);
}

#[test]
fn bad_patches_with_drop_drop_the_batch_and_stop_the_chain() {
    let mut s = patchy("out-of-range");
    s.on_error = OnError::Drop;
    let chain = PluginChain::load(&[s, spec("snoop")]).unwrap();
    let out = chain.process(spans(6));
    assert!(out.spans.is_empty());
    assert_eq!(out.errors[0].action, OnError::Drop);
    assert_eq!(chain.stats()[1].calls, 0);
}
