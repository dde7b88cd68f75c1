//! The roles of the one binary: an agent forwards to a collector (buffering while the
//! collector is away), the collector stores, and the query role reads what it stored; roles
//! that cannot work as configured say why at start-up.

use spoor_tests::{run_spoor, Daemon, Ports};

use crate::golden::{fixture_json, TRACE_A};

fn metric(d: &Daemon, name: &str) -> u64 {
    let body = spoor_tests::http(d.ports.admin, "GET", "/metrics", &[], b"")
        .map(|r| r.body)
        .unwrap_or_default();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn wait_metric(d: &Daemon, name: &str, at_least: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric(d, name) < at_least {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} stayed below {at_least}:\n{}",
            d.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn agent_buffers_then_forwards_to_collector_and_query_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let store = [
        "--storage",
        "sled",
        "--data-dir",
        data,
        "--retention",
        "100000d",
    ];
    let collector_ports = Ports::free();
    let endpoint = format!("http://127.0.0.1:{}", collector_ports.grpc);

    // The agent starts first: the collector is not there yet, so the batch waits in its buffer.
    let agent = Daemon::start_role(
        "agent",
        Ports::free(),
        &["--agent.collector-endpoint", &endpoint],
    )
    .unwrap();
    let r = agent
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    wait_metric(&agent, "spoor_pipeline_write_errors_total", 1);

    let collector = Daemon::start_role("collector", collector_ports, &store).unwrap();
    wait_metric(&collector, "spoor_pipeline_spans_written_total", 4);
    wait_metric(&agent, "spoor_pipeline_spans_written_total", 4);

    // sled is single-process: a query role on the same directory is refused with a reason.
    let (code, err) = run_spoor(&[
        "query",
        "--data-dir",
        data,
        "--admin.http.host-port",
        "127.0.0.1:0",
        "--query.http.host-port",
        "127.0.0.1:0",
    ])
    .unwrap();
    assert_ne!(code, 0);
    assert!(
        err.contains("already open in another spoor process"),
        "{err}"
    );

    assert!(agent.stop().unwrap().success());
    assert!(collector.stop().unwrap().success());
    let query = Daemon::start_role("query", Ports::free(), &store).unwrap();
    let (status, v) = query.get_json(&format!("/api/traces/{TRACE_A}")).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 4);
    let (_, deps) = query
        .get_json("/api/dependencies?endTs=1767226200000&lookback=3600000")
        .unwrap();
    assert!(
        !deps["data"].as_array().unwrap().is_empty(),
        "collector derived links: {deps}"
    );
}

#[test]
fn roles_refuse_configurations_that_cannot_work() {
    let (code, err) = run_spoor(&["agent", "--admin.http.host-port", "127.0.0.1:0"]).unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("--agent.collector-endpoint"), "{err}");
    let (code, err) = run_spoor(&[
        "query",
        "--storage",
        "memory",
        "--admin.http.host-port",
        "127.0.0.1:0",
    ])
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("--storage memory"), "{err}");
}
