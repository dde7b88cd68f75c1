//! The collector's own sampling and span metrics, end to end through the daemon: tail sampling
//! from the config file keeps only the traces a policy wants; RED span metrics are answered by
//! Jaeger's monitor API and exported on `/metrics`; adaptive sampling turns the root spans it
//! receives into per-operation strategies served to clients.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spoor_tests::{http, Daemon};

/// One OTLP/JSON span; `status` 2 = ERROR, 0 = UNSET.
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    name: &str,
    status: u8,
    attrs: Value,
) -> Value {
    let start = spoor_tests::now_nanos() - 5_000_000;
    json!({
        "traceId": trace,
        "spanId": id,
        "parentSpanId": parent.unwrap_or(""),
        "name": name,
        "kind": 2,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + 3_000_000).to_string(),
        "attributes": attrs,
        "status": {"code": status}
    })
}

fn post(d: &Daemon, service: &str, spans: Vec<Value>) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    let r = d
        .post_otlp(
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const KEPT: &str = "0af7651916cd43dd8448eb211c80319c";
const DROPPED: &str = "1af7651916cd43dd8448eb211c80319c";

#[test]
fn tail_sampling_from_the_config_file_keeps_error_traces_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("spoor.toml");
    std::fs::write(
        &cfg,
        r#"
[sampling.tail]
decision_wait_ms = 300
num_traces = 1000

[[sampling.tail.policies]]
name = "errors"
type = "status_code"
status_code = { status_codes = ["ERROR"] }
"#,
    )
    .unwrap();
    let d = Daemon::start(&["--storage", "memory", "--config", cfg.to_str().unwrap()]).unwrap();
    post(
        &d,
        "tail-svc",
        vec![
            span(KEPT, "b7ad6b7169203331", None, "GET /pay", 0, json!([])),
            span(
                KEPT,
                "c7ad6b7169203331",
                Some("b7ad6b7169203331"),
                "charge",
                2,
                json!([]),
            ),
            span(DROPPED, "d7ad6b7169203331", None, "GET /pay", 0, json!([])),
        ],
    );
    let kept = d
        .wait_json(&format!("/api/traces/{KEPT}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 2)
        })
        .unwrap();
    assert_eq!(kept["data"][0]["traceID"], KEPT);
    // both traces were decided in the same poll; give the writer a moment to be sure
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = d.get_json(&format!("/api/traces/{DROPPED}")).unwrap();
    assert_eq!(status, 404, "the trace without an error must not be stored");
    let metrics = d.metrics_text();
    assert!(
        metrics.contains("spoor_tail_traces_sampled_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spoor_tail_traces_dropped_total 1\n"),
        "{metrics}"
    );
    d.stop().unwrap();
}

#[test]
fn a_bad_tail_policy_stops_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("spoor.toml");
    std::fs::write(
        &cfg,
        r#"
[sampling.tail]
[[sampling.tail.policies]]
name = "slow"
type = "latency"
latency = { threshold_ms = 0 }
"#,
    )
    .unwrap();
    let (code, stderr) =
        spoor_tests::run_spoor(&["--storage", "memory", "--config", cfg.to_str().unwrap()])
            .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("sampling.tail") && stderr.contains("threshold_ms"),
        "{stderr}"
    );
}

#[test]
fn span_metrics_answer_the_monitor_api_and_prometheus() {
    let d = Daemon::start(&["--storage", "memory", "--span-metrics.bucket", "1s"]).unwrap();
    let mut spans = Vec::new();
    for i in 0..10u32 {
        let trace = format!("{:032x}", 0xabc000 + i);
        let status = if i < 3 { 2 } else { 0 };
        spans.push(span(
            &trace,
            "a7ad6b7169203331",
            None,
            "GET /cart",
            status,
            json!([]),
        ));
    }
    post(&d, "red-svc", spans);
    let end_ms = spoor_tests::now_nanos() / 1_000_000 + 5_000;
    let calls = format!(
        "/api/metrics/calls?service=red-svc&endTs={end_ms}&lookback=120000&step=1000&ratePer=60000"
    );
    let mut body = Value::Null;
    wait_until(
        "span metrics in the monitor API",
        Duration::from_secs(20),
        || {
            let (status, v) = d.get_json(&calls).unwrap();
            body = v;
            status == 200
                && body["metrics"][0]["metricPoints"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
        },
    );
    assert_eq!(body["name"], "service_call_rate");
    assert_eq!(body["metrics"][0]["labels"][0]["name"], "service_name");
    assert_eq!(body["metrics"][0]["labels"][0]["value"], "red-svc");
    // 10 calls in a 60 s rate window: 10/60 per second at the steps that see the bucket
    let max = body["metrics"][0]["metricPoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["gaugeValue"]["doubleValue"].as_f64())
        .fold(0.0, f64::max);
    assert!((max - 10.0 / 60.0).abs() < 1e-9, "{body}");
    let errors = format!(
        "/api/metrics/errors?service=red-svc&endTs={end_ms}&lookback=120000&step=1000&ratePer=60000"
    );
    let (_, e) = d.get_json(&errors).unwrap();
    let max = e["metrics"][0]["metricPoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["gaugeValue"]["doubleValue"].as_f64())
        .fold(0.0, f64::max);
    assert!((max - 0.3).abs() < 1e-9, "{e}");
    let metrics = d.metrics_text();
    assert!(
        metrics.contains(
            "traces_span_metrics_calls_total{service_name=\"red-svc\",span_name=\"GET /cart\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_ERROR\"} 3"
        ),
        "{metrics}"
    );
    d.stop().unwrap();
}

#[test]
fn adaptive_sampling_serves_probabilities_for_the_operations_it_saw() {
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--sampling.adaptive",
        "true",
        "--sampling.calculation-interval",
        "1s",
    ])
    .unwrap();
    let tags = json!([
        {"key": "sampler.type", "value": {"stringValue": "probabilistic"}},
        {"key": "sampler.param", "value": {"doubleValue": 0.001}}
    ]);
    let mut spans = Vec::new();
    for i in 0..20u32 {
        let trace = format!("{:032x}", 0xdef000 + i);
        spans.push(span(
            &trace,
            "a7ad6b7169203331",
            None,
            "GET /adaptive",
            0,
            tags.clone(),
        ));
    }
    post(&d, "adaptive-svc", spans);
    let mut last = String::new();
    wait_until(
        "an adaptive strategy for GET /adaptive",
        Duration::from_secs(20),
        || {
            let r = http(
                d.ports.sampling,
                "GET",
                "/sampling?service=adaptive-svc",
                &[],
                b"",
            )
            .unwrap();
            last = String::from_utf8_lossy(&r.body).into_owned();
            r.status == 200 && last.contains("\"operation\":\"GET /adaptive\"")
        },
    );
    let v: Value = serde_json::from_str(&last).unwrap();
    let op = &v["operationSampling"]["perOperationStrategies"][0];
    let p = op["probabilisticSampling"]["samplingRate"]
        .as_f64()
        .unwrap();
    // 20 roots at p = 0.001 in one second stand for ~20,000 traces/s: far above the target of
    // 1/s, so the probability must come down from where the client was
    assert!((1e-5..0.001).contains(&p), "{last}");
    d.stop().unwrap();
}
