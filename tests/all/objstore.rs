//! History in object storage (#10) end to end, on a real 3-node Garage cluster (S3-compatible,
//! replication factor 3) started here:
//! - the whole cluster, fed by the load generator and by a sender that records every
//!   acknowledged trace: 3 NATS nodes, two collectors, two ingesters sealing 2-second partitions
//!   to Garage, one query node over both ingesters and the bucket. Every acknowledged trace is
//!   found through the query node while partitions move from the ingesters to Garage, while
//!   one Garage node and one ingester are SIGKILLed mid-stream, and after they restart; then a
//!   query node over the bucket alone finds all of them (the data lives only in object storage),
//!   and the compactor merges the two ingesters' blocks without losing a span; every trace of
//!   the load generator (regenerated from its seed) is found whole there too, and that node
//!   answers the dependency graph and the span metrics (from the aggregate objects) exactly as
//!   the query node over the ingesters does;
//! - the storage conformance suite over sealed blocks in Garage, through both tiers and through
//!   the bucket alone;
//! - tenancy: each tenant's blocks and aggregate objects in its own prefix.
//!
//! Skipped (the reason printed) only when `garage` or `nats-server` is not installed; `make
//! tools` installs both.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use spoor_tests::{http, metric_value, Daemon, Garage, Ports};

use crate::tenancy::{bearer, check_isolation, get, send_all, wait_stored, Creds, A, B};

const SPANS: u64 = 3;
/// Spans the load generator sends (20-span traces) and its seed.
const LOADGEN_SPANS: u64 = 10_000;
const LOADGEN_SEED: u64 = 7;

/// `spoor-loadgen`, built next to the daemon (`make e2e` builds both).
fn loadgen_bin() -> std::path::PathBuf {
    let bin = spoor_tests::spoor_bin().with_file_name("spoor-loadgen");
    assert!(
        bin.exists(),
        "{} not found: cargo build -p spoor-bench --bin spoor-loadgen (make e2e does)",
        bin.display()
    );
    bin
}

fn found_spans(query: &Daemon, trace: &str) -> usize {
    match query.get_json(&format!("/api/traces/{trace}")) {
        Ok((200, v)) => v["data"][0]["spans"].as_array().map_or(0, Vec::len),
        _ => 0,
    }
}

fn converge(query: &Daemon, traces: &[String], timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut missing: Vec<String> = traces.to_vec();
    loop {
        missing.retain(|t| found_spans(query, t) != SPANS as usize);
        if missing.is_empty() || Instant::now() > deadline {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn metric(d: &Daemon, name: &str) -> f64 {
    metric_value(&d.metrics_text(), name).unwrap_or(0.0)
}

/// Sends one trace per request, each starting at the current time (so traces fall into many
/// 2-second partitions), to the collectors in turn; records what was acknowledged.
fn sender(
    collectors: Vec<u16>,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Relaxed) {
            i += 1;
            let trace = format!("{:032x}", 0x0b1e_c700_0000u64 * 0x1_0000 + i * 7919);
            let body = crate::crash::chain_trace_json(
                "archived",
                &trace,
                SPANS,
                spoor_tests::now_nanos(),
                None,
            );
            for attempt in 0..5 {
                let port = collectors[(i as usize + attempt) % collectors.len()];
                match http(
                    port,
                    "POST",
                    "/v1/traces",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                ) {
                    Ok(r) if r.status == 200 => {
                        acked.lock().unwrap().push(trace.clone());
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(200)),
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    })
}

/// Both tenants' fixtures sent to `ingest` and found through `query`; their partitions (one
/// old one per tenant) sealed and dropped by `sealer`, whose data directory `data` holds one
/// folder per tenant; then each tenant sees its own traces only through `query`. The tenants'
/// credentials.
fn send_seal_and_check(
    ingest: &Daemon,
    query: &Daemon,
    sealer: &Daemon,
    data: &std::path::Path,
) -> (Creds, Creds) {
    let (a, b) = (bearer("token-a"), bearer("token-b"));
    send_all(ingest, &a, &b);
    wait_stored(query, &a, &A);
    wait_stored(query, &b, &B);
    wait_until(
        "both tenants' partitions sealed and dropped",
        Duration::from_secs(60),
        || metric(sealer, "spoor_objstore_partitions_dropped_total") >= 2.0,
    );
    assert!(data.join("tenants/a").is_dir() && data.join("tenants/b").is_dir());
    check_isolation(query, &a, &A, &B);
    check_isolation(query, &b, &B, &A);
    (a, b)
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn strings(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The dependency graph and Jaeger's three SPM queries (the Monitor tab) of each of `services`
/// over the `lookback_ms` before `end_ms`, in one-minute steps.
fn aggregate_paths(services: &[&str], end_ms: u64, lookback_ms: u64) -> Vec<String> {
    let mut paths = vec![format!(
        "/api/dependencies?endTs={end_ms}&lookback={lookback_ms}"
    )];
    for s in services {
        let q =
            format!("service={s}&endTs={end_ms}&lookback={lookback_ms}&step=60000&ratePer=60000");
        paths.push(format!("/api/metrics/calls?{q}"));
        paths.push(format!("/api/metrics/errors?{q}"));
        paths.push(format!("/api/metrics/latencies?{q}&quantile=0.95"));
    }
    paths
}

/// `d`'s answers to `paths` (from [`aggregate_paths`]) for `c`, each checked for Jaeger's shape:
/// links with a call count, SPM metric families whose series carry labelled gauge points.
fn aggregate_answers(d: &Daemon, c: &Creds, paths: &[String]) -> Vec<Value> {
    paths
        .iter()
        .map(|p| {
            let (status, v) = get(d.ports.query, p, c);
            assert_eq!(status, 200, "{p}: {v}");
            if p.starts_with("/api/dependencies") {
                for l in v["data"].as_array().unwrap_or_else(|| panic!("{p}: {v}")) {
                    assert!(
                        l["parent"].is_string()
                            && l["child"].is_string()
                            && l["callCount"].as_u64() > Some(0),
                        "{p}: {v}"
                    );
                }
            } else {
                let name = v["name"].as_str().unwrap_or_default();
                assert!(
                    [
                        "service_call_rate",
                        "service_error_rate",
                        "service_latencies"
                    ]
                    .contains(&name)
                        && v["type"] == "GAUGE",
                    "{p}: {v}"
                );
                for series in v["metrics"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{p}: {v}"))
                {
                    assert_eq!(series["labels"][0]["name"], "service_name", "{p}: {v}");
                    for point in series["metricPoints"].as_array().unwrap() {
                        assert!(
                            point["gaugeValue"]["doubleValue"].is_number()
                                && point["timestamp"].is_string(),
                            "{p}: {v}"
                        );
                    }
                }
            }
            v
        })
        .collect()
}

/// How many links and series points the answers hold (so a comparison of empty answers fails).
fn aggregate_count(answers: &[Value]) -> usize {
    answers
        .iter()
        .map(|v| v["data"].as_array().map_or(0, Vec::len) + crate::tenancy::metric_points(v))
        .sum()
}

/// Waits until `d` answers `paths` for `c` exactly as `want` does at that moment (numbers,
/// series, timestamps); returns the answers.
fn wait_same_aggregates(
    what: &str,
    d: &Daemon,
    c: &Creds,
    paths: &[String],
    mut want: impl FnMut() -> Vec<Value>,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let want = want();
        let got = aggregate_answers(d, c, paths);
        if got == want {
            return got;
        }
        if Instant::now() > deadline {
            for ((p, g), w) in paths.iter().zip(&got).zip(&want) {
                if g != w {
                    panic!(
                        "{what}: {p} answers\n{g}\ninstead of\n{w}\n{}",
                        d.log_text()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn traces_move_to_object_storage_and_stay_found_through_failures() {
    let Some(nats) = crate::spanlog::nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    if Garage::binary().is_none() {
        eprintln!("SKIPPED: garage is not installed (make tools installs it)");
        return;
    }
    let mut garage = Garage::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nodes = crate::spanlog::start_cluster(&nats, dir.path());
    let urls = crate::spanlog::client_urls(&nodes);
    let log_args = [
        "--span-log",
        &urls,
        "--span-log.replicas",
        "3",
        "--span-log.partitions",
        "4",
    ];
    let collectors: Vec<Daemon> = (0..2)
        .map(|_| Daemon::start_role("collector", Ports::free(), &log_args).unwrap())
        .collect();
    // ingester a talks to Garage node 0, b to node 1; the query node to node 2
    let ingester = |ports: Ports, parts: &str, name: &str, garage_node: usize, g: &Garage| {
        let data = dir.path().join(name).to_str().unwrap().to_string();
        let mut args: Vec<String> = log_args.iter().map(|s| s.to_string()).collect();
        args.extend(
            [
                "--ingester.partitions",
                parts,
                "--storage",
                "sled",
                "--data-dir",
                &data,
                "--sled.partition",
                "2s",
                "--object-store.seal-after",
                "1s",
                "--object-store.keep-after-upload",
                "3s",
                "--object-store.poll",
                "1s",
                "--retention",
                "100000d",
            ]
            .map(String::from),
        );
        args.extend(g.flags(garage_node, "cluster"));
        Daemon::start_role("ingester", ports, &strings(&args)).unwrap()
    };
    let a = ingester(Ports::free(), "0-1", "a", 0, &garage);
    let b_ports = Ports::free();
    let b = ingester(b_ports, "2-3", "b", 1, &garage);
    let ingesters = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        a.ports.query, b_ports.query
    );
    let mut q_args = vec![
        "--query.ingesters".to_string(),
        ingesters,
        "--object-store.poll".into(),
        "1s".into(),
    ];
    q_args.extend(garage.flags(2, "cluster"));
    let query = Daemon::start_role("query", Ports::free(), &strings(&q_args)).unwrap();

    let mut o_args = vec![
        "--object-store.poll".to_string(),
        "1s".into(),
        "--object-store.compaction".into(),
        "true".into(),
    ];
    o_args.extend(garage.flags(0, "cluster"));
    // a query node over the bucket alone, which also runs the compactor
    let only = Daemon::start_role("query", Ports::free(), &strings(&o_args)).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let send = sender(
        collectors.iter().map(|c| c.ports.http).collect(),
        acked.clone(),
        stop.clone(),
    );
    // the load generator feeds collector 1 over OTLP/gRPC all through: 500 traces of 20 spans
    // spread over the last 20 s (so many land in partitions sealed already)
    let loadgen = std::process::Command::new(loadgen_bin())
        .args(["--protocol", "otlp-grpc", "--endpoint"])
        .arg(format!("http://127.0.0.1:{}", collectors[1].ports.grpc))
        .args([
            "--connections",
            "2",
            "--rate",
            "400",
            "--batch-spans",
            "100",
        ])
        .args([
            "--total-spans",
            &LOADGEN_SPANS.to_string(),
            "--spans-per-trace",
            "20",
        ])
        .args(["--seed", &LOADGEN_SEED.to_string(), "--time-spread", "20s"])
        .args(["--json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start spoor-loadgen");

    // 1. partitions are sealed to Garage and dropped by both ingesters; everything is found
    wait_until(
        "both ingesters sealed and dropped partitions",
        Duration::from_secs(60),
        || {
            metric(&a, "spoor_objstore_partitions_dropped_total") >= 1.0
                && metric(&b, "spoor_objstore_partitions_dropped_total") >= 1.0
        },
    );
    let first: Vec<String> = acked.lock().unwrap().clone();
    assert!(first.len() >= 20, "{} traces acknowledged", first.len());
    let missing = converge(&query, &first, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "acknowledged but not found: {missing:?}\n{}",
        a.log_text()
    );

    // everything acknowledged so far reaches the bucket: the query node over it alone finds it
    let missing = converge(&only, &first, Duration::from_secs(120));
    assert!(
        missing.is_empty(),
        "acknowledged traces not sealed to Garage: {missing:?}\n{}",
        b.log_text()
    );

    // 2. SIGKILL one Garage node and ingester b while the sender keeps going
    garage.kill_node(1);
    b.kill();
    let before = acked.lock().unwrap().len();
    wait_until(
        "traces acknowledged while a garage node and ingester b are down",
        Duration::from_secs(60),
        || acked.lock().unwrap().len() >= before + 30,
    );
    // what ingester a seals reaches Garage through two of three nodes; the traces acknowledged
    // before the kill are in Garage (b's too), so the query node keeps answering for them
    let sealed_before_kill: Vec<String> = first.clone();
    let missing = converge(&query, &sealed_before_kill, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "traces lost while b and a garage node are down: {missing:?}\n{}",
        query.log_text()
    );
    let uploads_a = metric(&a, "spoor_objstore_blocks_uploaded_total");
    wait_until(
        "ingester a keeps sealing with a garage node down",
        Duration::from_secs(30),
        || metric(&a, "spoor_objstore_blocks_uploaded_total") > uploads_a,
    );

    // 3. restart both; every acknowledged trace converges
    garage.start_node(1).unwrap();
    let b = ingester(b_ports, "2-3", "b", 1, &garage);
    let before = acked.lock().unwrap().len();
    wait_until(
        "traces acknowledged after restart",
        Duration::from_secs(60),
        || acked.lock().unwrap().len() >= before + 20,
    );
    stop.store(true, Relaxed);
    send.join().unwrap();
    let out = loadgen.wait_with_output().expect("spoor-loadgen ran");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("loadgen JSON");
    assert_eq!(
        report["spans_accepted"].as_u64(),
        Some(LOADGEN_SPANS),
        "the collectors accept all of the load generator's spans while NATS is up: {report}"
    );
    let all: Vec<String> = acked.lock().unwrap().clone();
    let missing = converge(&query, &all, Duration::from_secs(120));
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces lost: {missing:?}\nb:\n{}",
        missing.len(),
        all.len(),
        b.log_text()
    );

    // 4. everything sealed and dropped: a query node over the bucket alone finds every trace
    wait_until(
        "every partition sealed and dropped",
        Duration::from_secs(60),
        || {
            [&a, &b]
                .iter()
                .all(|d| metric_value(&d.metrics_text(), "spoor_store_partitions") == Some(0.0))
        },
    );
    let missing = converge(&only, &all, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "not found in object storage alone: {missing:?}\n{}",
        only.log_text()
    );
    let (status, found) = only
        .get_json("/api/traces?service=archived&limit=20&lookback=1h")
        .unwrap();
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"].as_array().map(Vec::len), Some(20), "{found}");
    // the dependency graph and the Monitor tab from the aggregate objects alone: what the query
    // node over the ingesters' heads answers, number for number (the window ends in the
    // future, so both see the same steps)
    let paths = aggregate_paths(
        &["frontend", "cart", "archived"],
        spoor_tests::now_nanos() / 1_000_000 + 120_000,
        3_600_000,
    );
    let same = wait_same_aggregates(
        "the bucket alone answers links and span metrics as the heads do",
        &only,
        &vec![],
        &paths,
        || aggregate_answers(&query, &vec![], &paths),
    );
    assert!(
        same[0]["data"].as_array().is_some_and(|l| l.len() >= 3),
        "the load generator's services call each other: {}",
        same[0]
    );
    assert!(aggregate_count(&same[1..]) > 0, "{same:?}");
    assert!(metric(&a, "spoor_objstore_aggregates_uploaded_total") >= 1.0);
    let (_, services) = only.get_json("/api/services").unwrap();
    assert_eq!(
        services["data"],
        serde_json::json!([
            "archived",
            "cart",
            "checkout",
            "currency",
            "email",
            "frontend",
            "payment",
            "recommendation",
            "shipping"
        ]),
        "the sender's service and the load generator's eight"
    );
    // 5. the compactor (on that node) merges blocks of the same partition from a and b
    wait_until(
        "the compactor merged blocks",
        Duration::from_secs(60),
        || metric(&only, "spoor_objstore_blocks_compacted_total") >= 1.0,
    );
    let missing = converge(&only, &all, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "lost by compaction: {missing:?}\n{}",
        only.log_text()
    );
    eprintln!(
        "object storage: {} traces acknowledged, {} blocks uploaded, {} merged by the compactor",
        all.len(),
        metric(&a, "spoor_objstore_blocks_uploaded_total")
            + metric(&b, "spoor_objstore_blocks_uploaded_total"),
        metric(&only, "spoor_objstore_blocks_compacted_total"),
    );
    drop(collectors);
}

#[test]
fn storage_conformance_over_blocks_in_garage() {
    if Garage::binary().is_none() {
        eprintln!("SKIPPED: garage is not installed (make tools installs it)");
        return;
    }
    let garage = Garage::start().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut n = 0;
    // through both tiers, then with every read from the bucket alone (links and span metrics
    // from the aggregate objects)
    for bucket_only in [false, true] {
        spoor_store::conformance::run_all(
            || {
                n += 1;
                let bucket = garage.bucket(n % 3, &format!("conformance-{n}"));
                if bucket_only {
                    spoor_objstore::testing::SealingStore::bucket_only(bucket, rt.handle().clone())
                } else {
                    spoor_objstore::testing::SealingStore::new(bucket, rt.handle().clone())
                }
            },
            spoor_store::conformance::Capabilities { expires: true },
        );
    }
}

#[test]
fn roles_refuse_object_storage_where_it_cannot_work() {
    for (args, want) in [
        (
            vec!["collector", "--object-store.url", "s3://spoor"],
            "is for the ingester, query and all-in-one roles",
        ),
        (
            vec![
                "all-in-one",
                "--object-store.url",
                "s3://spoor",
                "--storage",
                "memory",
            ],
            "needs the sled head",
        ),
        (
            vec!["all-in-one", "--object-store.url", "s3://x"],
            "invalid bucket name \"x\"",
        ),
        (
            vec!["all-in-one", "--object-store.url", "http://spoor"],
            "expected s3://bucket[/prefix]",
        ),
        (
            vec![
                "all-in-one",
                "--object-store.url",
                "s3://spoor",
                "--object-store.node",
                "a b",
            ],
            "invalid object-store.node",
        ),
        (
            vec![
                "all-in-one",
                "--object-store.url",
                "s3://spoor",
                "--object-store.endpoint",
                "127.0.0.1:3900",
            ],
            "invalid object-store.endpoint",
        ),
        (
            vec![
                "query",
                "--object-store.url",
                "s3://spoor",
                "--storage",
                "sled",
            ],
            "no local store",
        ),
    ] {
        let (code, out) = spoor_tests::run_spoor(&args).unwrap();
        assert_ne!(code, 0, "{args:?} must be refused");
        assert!(out.contains(want), "{args:?}: {out}");
    }
}

/// Multi-tenancy over object storage (#9): an all-in-one with bearer tokens seals each
/// tenant's sled head into the tenant's own prefix (`<prefix>/tenants/<tenant>/blocks/` and
/// `aggregates/`); once the local partitions are dropped, the all-in-one (blocks + head) and a
/// query node over the bucket alone keep tenants `a` and `b` apart through every query
/// endpoint, and the bucket node answers each tenant's dependency links and span metrics (from
/// the tenant's aggregate objects) exactly as the all-in-one's head did; a query node without
/// tenancy over the same prefix sees nothing; late spans re-upload a tenant's aggregate object
/// in place; the compactor merges each tenant's blocks within its prefix.
#[test]
fn tenants_have_their_own_prefix_in_object_storage() {
    use crate::tenancy::{headers, names, otlp_json, wait, with, T0_US};
    if Garage::binary().is_none() {
        eprintln!("SKIPPED: garage is not installed (make tools installs it)");
        return;
    }
    let garage = Garage::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tokens = crate::spanlog_tenancy::tokens_of_a_and_b(dir.path());
    let data = dir.path().join("data");
    let mut args: Vec<String> = [
        "--storage",
        "sled",
        "--data-dir",
        data.to_str().unwrap(),
        "--auth.tokens-file",
        &tokens,
        "--span-metrics.bucket",
        "1s",
        "--sled.partition",
        "2s",
        "--object-store.seal-after",
        "1s",
        // longer than a reader's listing interval (poll), as in production (1m over 15s)
        "--object-store.keep-after-upload",
        "3s",
        "--object-store.poll",
        "1s",
        "--retention",
        "100000d",
    ]
    .map(String::from)
    .to_vec();
    args.extend(garage.flags(0, "tenancy"));
    let aio = Daemon::start(&strings(&args)).unwrap();
    let (a, b) = send_seal_and_check(&aio, &aio, &aio, &data);
    // what the head answers for each tenant's links and span metrics (both tenants' services
    // asked: the other's come back empty), two hours around the fixture
    let services: Vec<&str> = A.services.iter().chain(B.services).copied().collect();
    let paths = aggregate_paths(&services, T0_US / 1000 + 3_600_000, 7_200_000);
    let heads: Vec<Vec<Value>> = [&a, &b]
        .iter()
        .map(|c| aggregate_answers(&aio, c, &paths))
        .collect();
    for h in &heads {
        assert!(aggregate_count(&h[1..]) > 0, "{h:?}");
    }

    // the layout: one prefix per tenant, nothing at the root
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bucket = garage.bucket(1, "tenancy");
    assert_eq!(rt.block_on(bucket.tenants()).unwrap(), ["a", "b"]);
    assert!(rt.block_on(bucket.list_blocks()).unwrap().is_empty());
    assert!(rt.block_on(bucket.list_aggregates()).unwrap().is_empty());
    for t in ["a", "b"] {
        assert!(!rt
            .block_on(bucket.tenant(t).list_blocks())
            .unwrap()
            .is_empty());
    }
    // one aggregate object per tenant: the fixture's links and span metrics all fall into one
    // 2-second partition
    let aggregate_objects = |t: &str| rt.block_on(bucket.tenant(t).list_aggregates()).unwrap();
    wait_until(
        "each tenant's aggregates sealed into its prefix",
        Duration::from_secs(30),
        || ["a", "b"].iter().all(|t| aggregate_objects(t).len() == 1),
    );

    // a query node over the bucket alone (and the compactor): each tenant sees its own traces,
    // links and span metrics only, the links and span metrics the all-in-one's head counted
    let mut o_args = vec![
        "--auth.tokens-file".to_string(),
        tokens.clone(),
        "--object-store.poll".into(),
        "1s".into(),
        "--object-store.compaction".into(),
        "true".into(),
        // the fixture's spans are from 2026-01-01: the compactor's retention must keep them
        "--retention".into(),
        "100000d".into(),
    ];
    o_args.extend(garage.flags(1, "tenancy"));
    let only = Daemon::start_role("query", Ports::free(), &strings(&o_args)).unwrap();
    for (c, own) in [(&a, &A), (&b, &B)] {
        wait("the bucket node to list the blocks", &only, || {
            let (status, v) = get(only.ports.query, "/api/services", c);
            status == 200 && names(&v["data"]) == own.services
        });
    }
    for (c, head) in [(&a, &heads[0]), (&b, &heads[1])] {
        wait_same_aggregates(
            "the bucket node answers links and span metrics as the head did",
            &only,
            c,
            &paths,
            || head.clone(),
        );
    }
    check_isolation(&only, &a, &A, &B);
    check_isolation(&only, &b, &B, &A);
    assert_eq!(get(only.ports.query, "/api/services", &vec![]).0, 401);

    // a query node without tenancy over the same prefix finds no tenant's blocks
    let mut p_args = vec!["--object-store.poll".to_string(), "1s".into()];
    p_args.extend(garage.flags(2, "tenancy"));
    let plain = Daemon::start_role("query", Ports::free(), &strings(&p_args)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (status, v) = get(plain.ports.query, "/api/services", &vec![]);
    assert_eq!(
        (status, names(&v["data"])),
        (200, Vec::<String>::new()),
        "{v}"
    );
    assert_eq!(
        aggregate_count(&aggregate_answers(&plain, &vec![], &paths)),
        0,
        "no tenant's links or span metrics"
    );
    let (status, _) = get(
        plain.ports.query,
        &format!("/api/traces/{}", A.traces[0]),
        &vec![],
    );
    assert_eq!(status, 404);
    drop(plain);

    // late spans of each tenant in the same old partition make a second block in its prefix;
    // the compactor merges each tenant's two blocks apart
    let late = [
        (&a, "a0000000000000000000000000000003", "a-late"),
        (&b, "b0000000000000000000000000000003", "b-late"),
    ];
    for (c, trace, service) in late {
        let body = otlp_json(trace, &[(service, "00000000000000c1", "late", None)]);
        let r = aio
            .post_otlp(
                &headers(&with(c, &[("Content-Type", "application/json")])),
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    wait_until(
        "each tenant's blocks merged",
        Duration::from_secs(90),
        || metric(&only, "spoor_objstore_blocks_compacted_total") >= 2.0,
    );
    for (i, (c, trace, service)) in late.iter().enumerate() {
        let (other, other_trace, _) = late[1 - i];
        wait("the late trace through the bucket node", &only, || {
            get(only.ports.query, &format!("/api/traces/{trace}"), c).0 == 200
        });
        let (_, v) = get(only.ports.query, "/api/services", c);
        assert!(names(&v["data"]).contains(&service.to_string()), "{v}");
        assert_eq!(
            get(only.ports.query, &format!("/api/traces/{other_trace}"), c).0,
            404
        );
        assert_eq!(
            get(only.ports.query, &format!("/api/traces/{trace}"), other).0,
            404
        );
    }
    for t in ["a", "b"] {
        let blocks = rt.block_on(bucket.tenant(t).list_blocks()).unwrap();
        assert_eq!(blocks.len(), 1, "tenant {t}: {blocks:?}");
    }
    // the late spans' span metrics re-uploaded each tenant's aggregate object in place: the
    // bucket node answers them as the all-in-one does, and the other tenant sees none
    for (i, (c, _, service)) in late.iter().enumerate() {
        let paths = aggregate_paths(&[service], T0_US / 1000 + 3_600_000, 7_200_000);
        let same = wait_same_aggregates("the late spans' metrics", &only, c, &paths, || {
            aggregate_answers(&aio, c, &paths)
        });
        assert!(aggregate_count(&same[1..]) > 0, "{same:?}");
        let other = late[1 - i].0;
        let theirs = aggregate_answers(&only, other, &paths);
        assert_eq!(aggregate_count(&theirs[1..]), 0, "{theirs:?}");
    }
    for t in ["a", "b"] {
        let objects = aggregate_objects(t);
        assert_eq!(objects.len(), 1, "overwritten, not added: {objects:?}");
    }
}

/// The production layout with tenants: a collector with bearer tokens publishes to the span
/// log, an ingester keeps one sled head per tenant and seals each into the tenant's prefix, and
/// a query node over the ingester and the bucket reads the caller's tenant only: after the
/// ingester dropped the sealed partitions, every query endpoint still shows each tenant all of
/// its own data (traces from the blocks, links and span metrics from the head or the tenant's
/// aggregate objects, whichever is more complete per key) and nothing else.
#[test]
fn tenants_stay_apart_in_the_span_log_cluster_over_object_storage() {
    let Some(nats) = crate::spanlog::nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    if Garage::binary().is_none() {
        eprintln!("SKIPPED: garage is not installed (make tools installs it)");
        return;
    }
    let garage = Garage::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nodes = crate::spanlog::start_cluster(&nats, dir.path());
    let urls = crate::spanlog::client_urls(&nodes);
    let tokens = crate::spanlog_tenancy::tokens_of_a_and_b(dir.path());
    let common = [
        "--span-log",
        &urls,
        "--span-log.replicas",
        "3",
        "--auth.tokens-file",
        &tokens,
        "--span-metrics.bucket",
        "1s",
    ];
    let collector = Daemon::start_role("collector", Ports::free(), &common).unwrap();
    let data = dir.path().join("ingester");
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--ingester.partitions",
            "0-7",
            "--data-dir",
            data.to_str().unwrap(),
            "--sled.partition",
            "2s",
            "--object-store.seal-after",
            "1s",
            "--object-store.keep-after-upload",
            "3s",
            "--object-store.poll",
            "1s",
            "--retention",
            "100000d",
        ]
        .map(String::from),
    );
    args.extend(garage.flags(0, "cluster-tenancy"));
    let ingester = Daemon::start_role("ingester", Ports::free(), &strings(&args)).unwrap();
    let mut q_args = vec![
        "--query.ingesters".to_string(),
        format!("http://127.0.0.1:{}", ingester.ports.query),
        "--auth.tokens-file".into(),
        tokens.clone(),
        "--object-store.poll".into(),
        "1s".into(),
    ];
    q_args.extend(garage.flags(1, "cluster-tenancy"));
    let query = Daemon::start_role("query", Ports::free(), &strings(&q_args)).unwrap();

    send_seal_and_check(&collector, &query, &ingester, &data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bucket = garage.bucket(2, "cluster-tenancy");
    assert_eq!(rt.block_on(bucket.tenants()).unwrap(), ["a", "b"]);
    assert!(rt.block_on(bucket.list_blocks()).unwrap().is_empty());
}
