//! Sampling strategies end to end: a strategies file is served byte for byte on every port
//! Jaeger serves it (5778 `/sampling` and `/`, 14268 `/api/sampling`, 14250
//! `SamplingManager/GetSamplingStrategy`); the real Python `jaeger-client` with its remote
//! sampler obeys it (the daemon stores exactly the traces it was told to keep); a changed file
//! is picked up while running, a broken one is refused and counted; and an agent proxies the
//! collector's strategies, remembering them while the collector is away.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use spoor_jaeger::sampling::{
    ProbabilisticSamplingStrategy, SamplingStrategyParameters, SamplingStrategyResponse,
    GET_SAMPLING_STRATEGY_PATH,
};
use spoor_tests::jaeger_json::tag;
use spoor_tests::{http, python, run_client, run_spoor, Daemon, Ports};

const A: &str = "sampled-a";
const B: &str = "sampled-b";

/// A keeps everything, B nothing, everyone else a quarter.
const A1_B0: &str = r#"{
  "service_strategies": [
    {"service": "sampled-a", "type": "probabilistic", "param": 1.0},
    {"service": "sampled-b", "type": "probabilistic", "param": 0.0}
  ],
  "default_strategy": {"type": "probabilistic", "param": 0.25}
}"#;

/// B now keeps everything too.
const A1_B1: &str = r#"{
  "service_strategies": [
    {"service": "sampled-a", "type": "probabilistic", "param": 1.0},
    {"service": "sampled-b", "type": "probabilistic", "param": 1.0}
  ],
  "default_strategy": {"type": "probabilistic", "param": 0.25}
}"#;

/// A probability above 1.
const BROKEN: &str = r#"{
  "service_strategies": [
    {"service": "sampled-b", "type": "probabilistic", "param": 1.5}
  ]
}"#;

/// The field `BROKEN` gets wrong.
const BROKEN_FIELD: &str = "service_strategies[0].param";

/// Replaces the file in one step, so the daemon never reads half of it.
fn write_strategies(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `(status, content type, body)` of a GET.
fn get(port: u16, path: &str) -> (u16, String, String) {
    let r = http(port, "GET", path, &[], b"").unwrap();
    let ct = r.header("content-type").unwrap_or("").to_string();
    (r.status, ct, String::from_utf8_lossy(&r.body).into_owned())
}

fn metric(d: &Daemon, name: &str) -> Option<u64> {
    let body = http(d.ports.admin, "GET", "/metrics", &[], b"").ok()?.body;
    String::from_utf8_lossy(&body).lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

fn wait_until(what: &str, d: &Daemon, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn probabilistic(rate: f64) -> SamplingStrategyResponse {
    SamplingStrategyResponse {
        strategy_type: 0,
        probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
            sampling_rate: rate,
        }),
        ..Default::default()
    }
}

/// `GetSamplingStrategy` over gRPC with a plain tonic client.
fn grpc_strategy(port: u16, service: &str) -> Result<SamplingStrategyResponse, tonic::Status> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.unwrap();
        let codec: tonic_prost::ProstCodec<SamplingStrategyParameters, SamplingStrategyResponse> =
            tonic_prost::ProstCodec::default();
        client
            .unary(
                tonic::Request::new(SamplingStrategyParameters {
                    service_name: service.into(),
                }),
                http::uri::PathAndQuery::from_static(GET_SAMPLING_STRATEGY_PATH),
                codec,
            )
            .await
            .map(tonic::Response::into_inner)
    })
}

const JSON: &str = "application/json";
const PROTO_A: &str =
    r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":1}}"#;
const PROTO_B0: &str =
    r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0}}"#;
const PROTO_OTHER: &str =
    r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.25}}"#;
const LEGACY_A: &str = r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":1}}"#;
const ONCE: &str = "'service' parameter must be provided once\n";

/// What `sample_jaeger.py` reports: `(all trace ids, the ones the client kept, its sampler)`.
fn run_python_client(d: &Daemon, service: &str, n: usize) -> (Vec<String>, Vec<String>, String) {
    let out = run_client(
        &python(),
        &[
            "sample_jaeger.py",
            "127.0.0.1",
            &d.ports.sampling.to_string(),
            &d.ports.jaeger_compact.to_string(),
            service,
            &n.to_string(),
        ],
    )
    .unwrap();
    let ids = |k: &str| -> Vec<String> {
        out[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    (
        ids("trace_ids"),
        ids("sampled"),
        out["sampler"].as_str().unwrap().to_string(),
    )
}

/// Trace ids the query API holds for `service`, sorted.
fn stored(d: &Daemon, service: &str) -> Vec<String> {
    let (status, v) = d
        .get_json(&format!(
            "/api/traces?service={service}&limit=1000&lookback=1h"
        ))
        .unwrap();
    assert_eq!(status, 200, "{v}");
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn wait_stored(d: &Daemon, service: &str, want: &[String]) -> Value {
    let mut want = want.to_vec();
    want.sort();
    d.wait_json(
        &format!("/api/traces?service={service}&limit=1000&lookback=1h"),
        |v| {
            let mut got: Vec<&str> = v["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t["traceID"].as_str()).collect())
                .unwrap_or_default();
            got.sort();
            got == want
                && v["data"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|t| t["spans"].as_array().unwrap().len() == 2))
        },
    )
    .unwrap()
}

#[test]
fn strategies_are_served_obeyed_reloaded_and_kept_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strategies.json");
    write_strategies(&file, A1_B0);
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--sampling.strategies-file",
        file.to_str().unwrap(),
        "--sampling.strategies-reload-interval",
        "100ms",
    ])
    .unwrap();
    let (agent, collector) = (d.ports.sampling, d.ports.jaeger_http);

    // (a) byte for byte on every HTTP port Jaeger serves strategies on
    let cases: [(u16, &str, u16, &str, &str); 9] = [
        (agent, "/sampling?service=sampled-a", 200, JSON, PROTO_A),
        (agent, "/sampling?service=sampled-b", 200, JSON, PROTO_B0),
        (
            agent,
            "/sampling?service=someone-else",
            200,
            JSON,
            PROTO_OTHER,
        ),
        (agent, "/?service=sampled-a", 200, JSON, LEGACY_A),
        (
            collector,
            "/api/sampling?service=sampled-a",
            200,
            JSON,
            PROTO_A,
        ),
        (
            collector,
            "/api/sampling?service=sampled-b",
            200,
            JSON,
            PROTO_B0,
        ),
        (agent, "/sampling", 400, "text/plain; charset=utf-8", ONCE),
        (
            agent,
            "/?service=a&service=b",
            400,
            "text/plain; charset=utf-8",
            ONCE,
        ),
        (collector, "/api/sampling?service=", 200, JSON, PROTO_OTHER),
    ];
    for (port, path, status, ct, body) in cases {
        let got = get(port, path);
        assert_eq!(
            (got.0, got.1.as_str(), got.2.as_str()),
            (status, ct, body),
            "{path}"
        );
    }
    // ... and on the gRPC port, next to CollectorService
    assert_eq!(
        grpc_strategy(d.ports.jaeger_grpc, A).unwrap(),
        probabilistic(1.0)
    );
    assert_eq!(
        grpc_strategy(d.ports.jaeger_grpc, B).unwrap(),
        probabilistic(0.0)
    );

    // (b) the real client obeys: B's traces are dropped by the client, A's all arrive
    let (b_ids, b_kept, b_sampler) = run_python_client(&d, B, 10);
    // the client's initial 0.001 would drop them too: check it applied the fetched 0 (JSON
    // `0`, which Python reads as an int, as from Jaeger)
    assert_eq!(b_sampler, "ProbabilisticSampler(0)");
    assert_eq!((b_ids.len(), b_kept.len()), (10, 0), "{b_sampler}");
    let (a_ids, a_kept, a_sampler) = run_python_client(&d, A, 10);
    assert_eq!(a_sampler, "ProbabilisticSampler(1)");
    assert_eq!(a_kept, a_ids, "{a_sampler}");
    assert_eq!(a_ids.len(), 10);
    let v = wait_stored(&d, A, &a_ids);
    for t in v["data"].as_array().unwrap() {
        let root = t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["operationName"].as_str().unwrap().starts_with("op-"))
            .unwrap();
        assert_eq!(
            tag(root, "sampler.type")["value"],
            "probabilistic",
            "{root}"
        );
        assert_eq!(
            tag(root, "sampler.param")["value"].as_f64(),
            Some(1.0),
            "{root}"
        );
    }
    // B's datagrams went out before A's, on the same path: had any been kept, they are here
    assert_eq!(stored(&d, B), Vec::<String>::new());

    // (c) the file changes: B is kept from now on
    write_strategies(&file, A1_B1);
    wait_until("the changed file was never served", &d, || {
        get(agent, "/sampling?service=sampled-b").2 == PROTO_A
    });
    assert_eq!(get(collector, "/api/sampling?service=sampled-b").2, PROTO_A);
    assert_eq!(
        grpc_strategy(d.ports.jaeger_grpc, B).unwrap(),
        probabilistic(1.0)
    );
    let (b_ids, b_kept, b_sampler) = run_python_client(&d, B, 10);
    assert_eq!(b_kept, b_ids, "{b_sampler}");
    wait_stored(&d, B, &b_ids);
    assert_eq!(
        metric(&d, "spoor_sampling_strategies_reload_failures_total"),
        Some(0)
    );

    // (d) a broken file is refused and counted, the last good one stays in force
    write_strategies(&file, BROKEN);
    wait_until("the broken file was never counted", &d, || {
        metric(&d, "spoor_sampling_strategies_reload_failures_total") == Some(1)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(&d, "spoor_sampling_strategies_reload_failures_total"),
        Some(1)
    );
    assert_eq!(get(agent, "/sampling?service=sampled-b").2, PROTO_A);
    assert_eq!(get(agent, "/sampling?service=sampled-a").2, PROTO_A);
    let log = d.log_text();
    assert!(
        log.contains("invalid sampling strategies file") && log.contains(BROKEN_FIELD),
        "{log}"
    );
    d.stop().unwrap();
}

#[test]
fn a_bad_strategies_file_stops_start_up_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-strategies.json");
    write_strategies(&file, BROKEN);
    let ports = Ports::free();
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let (code, stderr) = run_spoor(&[
        "--storage",
        "memory",
        "--sampling.strategies-file",
        file.to_str().unwrap(),
        "--admin.http.host-port",
        &addr(ports.admin),
        "--sampling.http.host-port",
        &addr(ports.sampling),
    ])
    .unwrap();
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("invalid sampling strategies file")
            && stderr.contains("bad-strategies.json")
            && stderr.contains(BROKEN_FIELD),
        "{stderr}"
    );
}

#[test]
fn agent_proxies_the_collectors_strategies_and_remembers_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strategies.json");
    write_strategies(&file, A1_B0);
    let collector = Daemon::start_role(
        "collector",
        Ports::free(),
        &[
            "--storage",
            "memory",
            "--sampling.strategies-file",
            file.to_str().unwrap(),
        ],
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", collector.ports.jaeger_grpc);
    let agent = Daemon::start_role(
        "agent",
        Ports::free(),
        &[
            "--agent.collector-endpoint",
            &format!("http://127.0.0.1:{}", collector.ports.grpc),
            "--agent.sampling-endpoint",
            &endpoint,
        ],
    )
    .unwrap();
    let port = agent.ports.sampling;
    assert_eq!(
        get(port, "/sampling?service=sampled-a"),
        (200, JSON.into(), PROTO_A.into())
    );
    assert_eq!(
        get(port, "/?service=sampled-b").2,
        r#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0}}"#
    );
    // the collector serves clients through its own ports, not the agent's
    assert!(http(
        collector.ports.sampling,
        "GET",
        "/sampling?service=x",
        &[],
        b""
    )
    .is_err());

    collector.kill();
    // the last good answer per service survives the collector ...
    assert_eq!(
        get(port, "/sampling?service=sampled-a"),
        (200, JSON.into(), PROTO_A.into())
    );
    // ... a service never asked for has none
    let (status, _, body) = get(port, "/sampling?service=sampled-new");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(&format!(
            "collector error: cannot get the sampling strategy of service \"sampled-new\" from collector {endpoint}: "
        )),
        "{body}"
    );
    agent.stop().unwrap();
}
