//! Tail-sampling policy plugins (world `policy`): verdicts, every failure typed and answered
//! by the plugin's `on-error` (pass keeps the trace, drop does not), the instance pool healing
//! after a trap, and each kind of plugin refused where the other belongs.

use spoor_plugin_host::{
    check, LoadError, Mode, OnError, PluginChain, PluginErrorKind, PluginSpec, PolicyPlugin,
};

use crate::support::{example, hostile, spans};

fn bad(how: &str) -> PluginSpec {
    let mut s = PluginSpec::new(format!("bad-{how}"), hostile("badpolicy"));
    s.config = serde_json::from_str(&format!(r#"{{"how": "{how}"}}"#)).unwrap();
    s
}

#[test]
fn a_policy_answers_per_trace_and_is_counted() {
    let meta = check(&hostile("badpolicy")).unwrap();
    assert_eq!(meta.mode, Mode::Policy);
    for (how, sampled) in [("yes", true), ("no", false)] {
        let p = PolicyPlugin::load(&bad(how)).unwrap();
        let trace = spans(4);
        for _ in 0..3 {
            assert_eq!(p.decide(&trace).unwrap(), sampled);
        }
        let st = p.stats();
        assert_eq!((st.calls, st.spans_in), (3, 12));
        assert_eq!(st.spans_out, if sampled { 12 } else { 0 });
        assert_eq!(st.failures_total(), 0);
    }
}

#[test]
fn failures_are_typed_and_follow_on_error() {
    let cases = [
        ("trap", PluginErrorKind::Trap),
        ("loop", PluginErrorKind::OutOfFuel),
        ("fail", PluginErrorKind::Refused),
        ("bomb", PluginErrorKind::OutOfMemory),
    ];
    for (how, kind) in cases {
        for on_error in [OnError::Pass, OnError::Drop] {
            let mut s = bad(how);
            if how == "loop" {
                s.fuel = 5_000_000;
            }
            s.memory_mib = 16;
            s.on_error = on_error;
            let p = PolicyPlugin::load(&s).unwrap();
            for round in 1..=2u64 {
                let (sampled, failure) = p.decide_or_fallback(&spans(3));
                let failure = failure.expect("a failure is reported");
                assert_eq!(failure.error.kind(), kind, "{how}: {}", failure.error);
                assert_eq!(failure.action, on_error);
                assert_eq!(sampled, on_error == OnError::Pass, "{how} {on_error:?}");
                assert_eq!(p.stats().failures_of(kind), round);
            }
        }
    }
}

#[test]
fn each_kind_of_plugin_is_refused_where_the_other_belongs() {
    let e = PluginChain::load(&[bad("yes")]).unwrap_err();
    assert!(
        matches!(&e, LoadError::Spec { .. }) && e.to_string().contains("[sampling.tail]"),
        "{e}"
    );
    let e = PolicyPlugin::load(&PluginSpec::new("drop", example("drop"))).unwrap_err();
    assert!(e.to_string().contains("list it under [[plugins]]"), "{e}");
}

#[test]
fn the_slo_example_loads_as_a_policy() {
    let mut s = PluginSpec::new("slo", example("slo"));
    s.config = serde_json::from_str(r#"{"default_ms": 1}"#).unwrap();
    let p = PolicyPlugin::load(&s).unwrap();
    assert_eq!(p.metadata().mode, Mode::Policy);
    assert_eq!(p.metadata().name, "slo");
    // Every span of the support batch lasts longer than a millisecond.
    assert!(p.decide(&spans(2)).unwrap());
    let mut s = s.clone();
    s.config = serde_json::from_str(r#"{"default_ms": "fast"}"#).unwrap();
    let e = PolicyPlugin::load(&s).unwrap_err();
    assert!(e.to_string().contains("default_ms"), "{e}");
}

/// `spoor-core`'s consistent-sampling vectors decided inside a plugin (wasm32-wasip2 under
/// wasmtime): a policy plugin that samples with core decides every trace exactly as the table,
/// and so as the daemon, the browser module and the edge collector do.
#[test]
fn a_plugin_decides_the_consistent_sampling_vectors_as_core_does() {
    use spoor_core::sampling::consistent::CONSISTENT_VECTORS;
    use spoor_core::{AnyValue, Span, SpanId, TraceId};

    let p = PolicyPlugin::load(&bad("consistent")).unwrap();
    assert!(CONSISTENT_VECTORS.len() >= 12);
    for v in CONSISTENT_VECTORS {
        let span = Span {
            trace_id: TraceId(v.trace_id),
            span_id: SpanId(1),
            name: "vector".into(),
            trace_state: v.trace_state.into(),
            start_unix_nanos: 1_700_000_000_000_000_000,
            duration_nanos: 1_000,
            attributes: vec![crate::support::kv(
                "test.probability",
                AnyValue::Double(v.probability),
            )],
            ..Span::default()
        };
        assert_eq!(p.decide(&[span]).unwrap(), v.sampled, "{v:?}");
    }
    assert_eq!(p.stats().failures_total(), 0);
}

#[test]
fn a_changed_policy_file_is_reloaded_and_a_broken_one_keeps_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.wasm");
    std::fs::copy(example("slo"), &path).unwrap();
    // `{}` for slo: no latency objective, failed spans keep their trace; trace 0 of `spans`
    // has a failed span. For badpolicy, `{}` never samples.
    let p = PolicyPlugin::load(&PluginSpec::new("p", &path)).unwrap();
    let trace = spans(4);
    assert!(p.decide(&trace).unwrap());
    assert!(!p.reload_if_changed().unwrap(), "an unchanged file");

    std::fs::copy(hostile("badpolicy"), &path).unwrap();
    assert!(p.reload_if_changed().unwrap());
    assert_eq!(p.metadata().name, "badpolicy");
    assert!(!p.decide(&trace).unwrap(), "the new version decides");

    // A broken file is reported once, and the loaded version keeps deciding.
    std::fs::write(&path, b"not a component at all").unwrap();
    let e = p.reload_if_changed().unwrap_err();
    assert_eq!(e.plugin(), "p");
    assert!(
        !p.reload_if_changed().unwrap(),
        "not retried until it changes"
    );
    assert!(!p.decide(&trace).unwrap());
    assert_eq!(p.metadata().name, "badpolicy");

    // A pipeline plugin is refused as a reload too.
    std::fs::copy(example("drop"), &path).unwrap();
    let e = p.reload_if_changed().unwrap_err();
    assert!(e.to_string().contains("list it under [[plugins]]"), "{e}");

    // Counters carry over: one sampled, two not.
    let st = p.stats();
    assert_eq!((st.calls, st.spans_out), (3, 4));
}
