//! Durability of the sled store through the real daemon: a clean restart keeps every span;
//! with `--durability sync`, every acknowledged span survives `kill -9`.

use spoor_tests::Daemon;

use crate::golden::{fixture_json, TRACE_A};

fn span_count(d: &Daemon, trace: &str) -> usize {
    let (status, v) = d.get_json(&format!("/api/traces/{trace}")).unwrap();
    if status != 200 {
        return 0;
    }
    v["data"][0]["spans"].as_array().map_or(0, Vec::len)
}

#[test]
fn clean_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "100000d",
    ];
    let d = Daemon::start(&args).unwrap();
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200);
    let ports = d.ports;
    // Stop right away: the graceful shutdown must drain the queue and flush.
    let status = d.stop().unwrap();
    assert!(status.success(), "{status}");
    let d = Daemon::start_on(ports, &args).unwrap();
    assert_eq!(span_count(&d, TRACE_A), 4, "{}", d.log_text());
    assert_eq!(span_count(&d, "abc"), 1);
}

#[test]
fn sync_durability_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--durability",
        "sync",
        "--retention",
        "100000d",
    ];
    let d = Daemon::start(&args).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut acked = Vec::new();
    for i in 0..40u64 {
        let trace = format!("{:032x}", 0x5000 + i);
        let body = crate::crash::chain_trace_json("durable", &trace, 5, now, None);
        let r = d
            .post_otlp(&[("Content-Type", "application/json")], body.as_bytes())
            .unwrap();
        if r.status == 200 {
            acked.push(trace);
        }
    }
    assert_eq!(
        acked.len(),
        40,
        "every request should be acknowledged:\n{}",
        d.log_text()
    );
    let ports = d.ports;
    d.kill();
    let d = Daemon::start_on(ports, &args).unwrap();
    let missing: Vec<_> = acked.iter().filter(|t| span_count(&d, t) != 5).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost after kill -9: {missing:?}\n{}",
        d.log_text()
    );
}
