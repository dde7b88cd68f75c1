//! Pipeline plugins in the daemon: a redaction plugin from the config file rewrites spans before
//! they are stored; a hostile plugin (infinite loop) is stopped by its fuel limit and its failure
//! policy applies while ingest goes on (`pass`: spans stored unchanged; `drop`: dropped and
//! counted); `spoor plugin check` and `spoor plugin run` work without a daemon.
//!
//! The components come from `make plugins` and `make plugins-hostile` (run by `make test`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use spoor_tests::jaeger_json::tag;
use spoor_tests::{repo_root, run_spoor, Daemon};

fn component(rel: &str) -> PathBuf {
    let p = repo_root().join("target/plugins").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make plugins plugins-hostile` first",
        p.display()
    );
    p
}

fn otlp_body(trace: &str, service: &str, email: &str) -> Value {
    let mut body = otlp_span(trace, service, "POST /signup", 1, false);
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = json!([
        {"key": "user.email", "value": {"stringValue": email}},
        {"key": "user.id", "value": {"stringValue": "u-42"}}
    ]);
    body
}

fn post(d: &Daemon, body: &Value) {
    let r = d
        .post_otlp(
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn config_with(dir: &std::path::Path, plugins: &str) -> PathBuf {
    let path = dir.join("spoor.toml");
    std::fs::write(&path, plugins).unwrap();
    path
}

#[test]
fn a_redaction_plugin_rewrites_spans_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            r#"
[[plugins]]
name = "redact"
path = "{}"
config = {{ keys = ["user.id"], mode = "remove" }}
"#,
            component("redact.wasm").display()
        ),
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    let trace = "5b8efff798038103d269b633813fc60c";
    post(&d, &otlp_body(trace, "signup", "ada@example.com"));
    let v = d
        .wait_json(&format!("/api/traces/{trace}"), |v| {
            v["data"][0].is_object()
        })
        .unwrap();
    let span = &v["data"][0]["spans"][0];
    assert_eq!(
        tag(span, "user.email")["value"],
        "[REDACTED:email]",
        "{span}"
    );
    assert!(
        span["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["key"] != "user.id"),
        "user.id must be removed: {span}"
    );
    let metrics = d.metrics_text();
    assert!(
        metrics.contains("spoor_plugin_calls_total{plugin=\"redact\"} 1"),
        "{metrics}"
    );
    d.stop().unwrap();
}

#[test]
fn a_runaway_plugin_is_stopped_and_its_policy_applies_while_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let looping = component("hostile/loop.wasm");
    // `pass`: the batch goes on unchanged
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[plugins]]\nname = \"spin\"\npath = \"{}\"\nfuel = 10000000\non-error = \"pass\"\n",
            looping.display()
        ),
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    let trace = "6b8efff798038103d269b633813fc60c";
    post(&d, &otlp_body(trace, "spin-pass", "bob@example.com"));
    let v = d
        .wait_json(&format!("/api/traces/{trace}"), |v| {
            v["data"][0].is_object()
        })
        .unwrap();
    assert_eq!(
        tag(&v["data"][0]["spans"][0], "user.email")["value"],
        "bob@example.com"
    );
    let metrics = d.metrics_text();
    assert!(
        metrics.contains("spoor_plugin_failures_total{plugin=\"spin\",kind=\"out_of_fuel\"} 1"),
        "{metrics}"
    );
    d.stop().unwrap();

    // `drop`: the batch is dropped and counted; the daemon keeps serving
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[plugins]]\nname = \"spin\"\npath = \"{}\"\nfuel = 10000000\non-error = \"drop\"\n",
            looping.display()
        ),
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    let trace = "7b8efff798038103d269b633813fc60c";
    post(&d, &otlp_body(trace, "spin-drop", "eve@example.com"));
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = d.get_json(&format!("/api/traces/{trace}")).unwrap();
    assert_eq!(status, 404);
    let metrics = d.metrics_text();
    assert!(
        metrics.contains("spoor_plugin_spans_dropped_total 1\n"),
        "{metrics}"
    );
    let (status, _) = d.get_json("/api/services").unwrap();
    assert_eq!(status, 200);
    d.stop().unwrap();
}

#[test]
fn a_plugin_that_fails_to_load_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[plugins]]\nname = \"redact\"\npath = \"{}\"\nconfig = {{ mode = \"hash\" }}\n",
            component("redact.wasm").display()
        ),
    );
    let (code, stderr) =
        run_spoor(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("redact") && stderr.contains("mode"),
        "{stderr}"
    );
}

#[test]
fn plugin_check_and_run_work_without_a_daemon() {
    let redact = component("redact.wasm");
    let out = std::process::Command::new(spoor_tests::spoor_bin())
        .args(["plugin", "check", redact.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("plugin redact"), "{text}");
    assert!(text.contains("mode strings"), "{text}");
    let drop = component("drop.wasm");
    let out = std::process::Command::new(spoor_tests::spoor_bin())
        .args(["plugin", "check", drop.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("plugin drop") && text.contains("mode spans"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("trace.json");
    std::fs::write(
        &input,
        otlp_body("8b8efff798038103d269b633813fc60c", "cli", "cy@example.com").to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(spoor_tests::spoor_bin())
        .args([
            "plugin",
            "run",
            redact.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--config",
            r#"{"keys": ["user.id"], "mode": "mask"}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let attrs = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
    let text = attrs.to_string();
    assert!(text.contains("[REDACTED:email]"), "{text}");
    assert!(!text.contains("cy@example.com"), "{text}");

    // a file that is not a component is refused with its name
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let out = std::process::Command::new(spoor_tests::spoor_bin())
        .args(["plugin", "check", bogus.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus.wasm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_changed_plugin_file_is_reloaded_and_a_broken_one_keeps_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wasm");
    std::fs::copy(component("redact.wasm"), &live).unwrap();
    let cfg = config_with(
        dir.path(),
        "[[plugins]]\nname = \"live\"\npath = \"live.wasm\"\n",
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    let email_of = |trace: &str, service: &str| {
        post(&d, &otlp_body(trace, service, "dee@example.com"));
        let v = d
            .wait_json(&format!("/api/traces/{trace}"), |v| {
                v["data"][0].is_object()
            })
            .unwrap();
        tag(&v["data"][0]["spans"][0], "user.email")["value"].clone()
    };
    assert_eq!(
        email_of("9b8efff798038103d269b633813fc601", "reload"),
        "[REDACTED:email]"
    );
    // swap in a plugin that returns its input (after a sleep the sandbox cuts short); the
    // daemon picks it up by itself
    let tmp = dir.path().join("next.wasm");
    std::fs::copy(component("hostile/sleepy.wasm"), &tmp).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let mut reloaded = false;
    for i in 0..40u32 {
        let trace = format!("9b8efff798038103d269b633813fc{:03x}", 0x100 + i);
        if email_of(&trace, "reload") == "dee@example.com" {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        reloaded,
        "the changed plugin was not reloaded:\n{}",
        d.log_text()
    );
    // a broken file: the running version stays, the failure is counted
    std::fs::write(&tmp, b"\0asm broken").unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let mut counted = false;
    for _ in 0..40 {
        let m = d.metrics_text();
        if m.contains("spoor_plugin_reload_failures_total 1\n") {
            counted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(counted, "reload failure not counted:\n{}", d.log_text());
    assert_eq!(
        email_of("9b8efff798038103d269b633813fc7ff", "reload"),
        "dee@example.com",
        "the previous (pass-through) version keeps running"
    );
    d.stop().unwrap();
}

/// One OTLP span of `trace` in `service`, `ms` long, with an error status when `error`.
fn otlp_span(trace: &str, service: &str, name: &str, ms: u64, error: bool) -> Value {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace,
            "spanId": "b7ad6b7169203331",
            "name": name,
            "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
            "status": {"code": if error { 2 } else { 0 }}
        }]}]
    }]})
}

#[test]
fn a_policy_plugin_decides_which_traces_the_tail_sampler_keeps() {
    let dir = tempfile::tempdir().unwrap();
    // `slo` keeps traces with a span over its objective or a failed span; `broken` traps on
    // every trace and, with on-error = "drop", never samples: it must not veto or stall.
    let cfg = config_with(
        dir.path(),
        &format!(
            r#"
[sampling.tail]
decision_wait_ms = 300

[[sampling.tail.policies]]
name = "slo"
type = "plugin"
plugin = {{ path = "{}", config = {{ default_ms = 1000, services = {{ checkout = {{ operations = {{ "GET /cart" = 250 }} }} }} }} }}

[[sampling.tail.policies]]
name = "broken"
type = "plugin"
plugin = {{ path = "{}", on-error = "drop", config = {{ how = "trap" }} }}
"#,
            component("slo.wasm").display(),
            component("hostile/badpolicy.wasm").display()
        ),
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    let slow_cart = "5b8efff798038103d269b633813fc601";
    let fast_cart = "5b8efff798038103d269b633813fc602";
    let failed = "5b8efff798038103d269b633813fc603";
    let slow_elsewhere = "5b8efff798038103d269b633813fc604";
    post(
        &d,
        &otlp_span(slow_cart, "checkout", "GET /cart", 300, false),
    );
    post(
        &d,
        &otlp_span(fast_cart, "checkout", "GET /cart", 200, false),
    );
    post(&d, &otlp_span(failed, "checkout", "GET /cart", 1, true));
    // 600 ms: over nothing (the top-level objective is 1000 ms)
    post(
        &d,
        &otlp_span(slow_elsewhere, "search", "query", 600, false),
    );
    for kept in [slow_cart, failed] {
        d.wait_json(&format!("/api/traces/{kept}"), |v| v["data"][0].is_object())
            .unwrap_or_else(|e| panic!("trace {kept} the policy keeps: {e}"));
    }
    // All four were decided (the metrics say so) before the dropped ones are looked for.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = d.metrics_text();
        if m.contains("spoor_tail_traces_dropped_total 2\n") {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sampler never decided both dropped traces:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for dropped in [fast_cart, slow_elsewhere] {
        let (status, _) = d.get_json(&format!("/api/traces/{dropped}")).unwrap();
        assert_eq!(status, 404, "trace {dropped} must not be stored");
    }
    for line in [
        "spoor_tail_traces_sampled_total 2\n",
        "spoor_plugin_calls_total{plugin=\"slo\"} 4\n",
        "spoor_plugin_spans_out_total{plugin=\"slo\"} 2\n",
        "spoor_plugin_failures_total{plugin=\"broken\",kind=\"trap\"} 4\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    // The daemon goes on after four traps.
    let (status, _) = d.get_json("/api/services").unwrap();
    assert_eq!(status, 200);
    d.stop().unwrap();
}

#[test]
fn a_changed_policy_plugin_file_is_reloaded_and_a_broken_one_keeps_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wasm");
    // badpolicy with `{}` never samples; slo with `{}` keeps traces with a failed span
    std::fs::copy(component("hostile/badpolicy.wasm"), &live).unwrap();
    let cfg = config_with(
        dir.path(),
        r#"
[sampling.tail]
decision_wait_ms = 200

[[sampling.tail.policies]]
name = "live"
type = "plugin"
plugin = { path = "live.wasm", config = {} }
"#,
    );
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    // true once the failed trace was stored, false once it was decided and dropped
    let kept = |trace: &str, dropped_before: u64| -> bool {
        post(&d, &otlp_span(trace, "reload", "GET /", 1, true));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _) = d.get_json(&format!("/api/traces/{trace}")).unwrap();
            if status == 200 {
                return true;
            }
            let dropped = format!("spoor_tail_traces_dropped_total {}\n", dropped_before + 1);
            if d.metrics_text().contains(&dropped) {
                return false;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "trace {trace} was never decided:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(!kept("6b8efff798038103d269b633813fc601", 0));
    // swap in slo; the daemon picks it up by itself
    let tmp = dir.path().join("next.wasm");
    std::fs::copy(component("slo.wasm"), &tmp).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let mut dropped = 1;
    let mut reloaded = false;
    for i in 0..40u32 {
        if kept(
            &format!("6b8efff798038103d269b633813fc{:03x}", 0x100 + i),
            dropped,
        ) {
            reloaded = true;
            break;
        }
        dropped += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        reloaded,
        "the changed policy was not reloaded:\n{}",
        d.log_text()
    );
    // a broken file: the running version stays, the failure is counted
    std::fs::write(&tmp, b"\0asm broken").unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !d
        .metrics_text()
        .contains("spoor_plugin_reload_failures_total 1\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "reload failure not counted:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        kept("6b8efff798038103d269b633813fc7ff", dropped),
        "the previous version (slo) keeps deciding"
    );
    assert!(d.log_text().contains("changed plugin failed to load"));
    d.stop().unwrap();
}

#[test]
fn a_pipeline_plugin_as_a_tail_policy_stops_start_up_naming_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "[sampling.tail]\n[[sampling.tail.policies]]\nname = \"p\"\ntype = \"plugin\"\nplugin = {{ path = \"{}\", config = {{ rules = [{{ operation = \"x\" }}] }} }}\n",
            component("drop.wasm").display()
        ),
    );
    let (code, stderr) =
        run_spoor(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("sampling.tail.policies[0]") && stderr.contains("[[plugins]]"),
        "{stderr}"
    );
    // and a policy without its section, or with an unknown key in it, is refused by name
    let cfg = config_with(
        dir.path(),
        "[sampling.tail]\n[[sampling.tail.policies]]\nname = \"p\"\ntype = \"plugin\"\nplugin = { pth = \"x.wasm\" }\n",
    );
    let (code, stderr) =
        run_spoor(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("pth"), "{stderr}");
}
