//! The span log (#10) end to end: a 3-node NATS JetStream cluster started here, two collectors
//! publishing to it, two ingesters each owning half the partitions, one query node over both.
//! Every acknowledged trace is found through the query node, also after one NATS node and one
//! ingester are SIGKILLed mid-stream and restarted. Skipped (with the reason printed) only when
//! `nats-server` is not installed; `make tools` installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spoor_tests::{free_port, http, Daemon, Ports};

/// Partitions of the stream; the ingesters own 0-3 and 4-7.
const PARTITIONS: u32 = 8;
/// Spans per sent trace.
const SPANS: u64 = 3;

pub(crate) fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// One node of the NATS cluster: its ports and store directory outlive restarts.
pub(crate) struct Node {
    name: String,
    pub(crate) client: u16,
    cluster: u16,
    monitor: u16,
    dir: PathBuf,
    routes: String,
    child: Option<Child>,
}

impl Node {
    /// A node of no cluster, storing under `dir`; start it with [`Node::start_single`].
    fn solo(dir: &Path) -> Node {
        Node {
            name: "solo".into(),
            client: free_port(),
            cluster: free_port(),
            monitor: free_port(),
            dir: dir.to_path_buf(),
            routes: String::new(),
            child: None,
        }
    }

    fn start(&mut self, bin: &Path) {
        let log = std::fs::File::create(self.dir.join(format!("{}.log", self.name))).unwrap();
        let child = Command::new(bin)
            .args(["-js", "-sd"])
            .arg(self.dir.join("store"))
            .args(["-a", "127.0.0.1", "-n", &self.name])
            .args(["-p", &self.client.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .args(["--cluster_name", "spoor-test"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", self.cluster)])
            .args(["--routes", &self.routes])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    /// A single JetStream server (no cluster), on the same ports and store as before.
    fn start_single(&mut self, bin: &Path) {
        self.start_single_with(bin, &[]);
    }

    /// [`Node::start_single`] with more `nats-server` arguments (e.g. TLS).
    fn start_single_with(&mut self, bin: &Path, extra: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{}.log", self.name))).unwrap();
        let child = Command::new(bin)
            .args(["-js", "-sd"])
            .arg(self.dir.join("store"))
            .args(["-a", "127.0.0.1", "-n", &self.name])
            .args(["-p", &self.client.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.client)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nodes' client urls, comma-separated, as `--span-log` takes them.
pub(crate) fn client_urls(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("nats://127.0.0.1:{}", n.client))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn start_cluster(bin: &Path, dir: &Path) -> Vec<Node> {
    let clusters: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let d = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&d).unwrap();
            Node {
                name: format!("n{i}"),
                client: free_port(),
                cluster: clusters[i],
                monitor: free_port(),
                dir: d,
                routes: clusters
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(","),
                child: None,
            }
        })
        .collect();
    for n in &mut nodes {
        n.start(bin);
    }
    // JetStream answers only once the cluster elected a meta leader
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = nodes.iter().any(|n| {
            http(n.monitor, "GET", "/jsz", &[], b"")
                .ok()
                .and_then(|r| r.json().ok())
                .and_then(|v| v["meta_cluster"]["leader"].as_str().map(str::to_string))
                .is_some_and(|l| !l.is_empty())
        });
        if leader {
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "no jetstream meta leader after 30s:\n{}",
            nodes.iter().map(Node::log).collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The partition of a trace, as the daemon computes it: FNV-1a 64 over the 16 id bytes
/// (pinned by the daemon's unit test).
fn partition(trace_hex: &str) -> u32 {
    let id = u128::from_str_radix(trace_hex, 16).unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.to_be_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(PARTITIONS)) as u32
}

/// Spans of `trace` the query API of `query` (a query node or an ingester) returns (0 when not found or not answered).
fn found_spans(query: &Daemon, trace: &str) -> usize {
    match query.get_json(&format!("/api/traces/{trace}")) {
        Ok((200, v)) => v["data"][0]["spans"].as_array().map_or(0, Vec::len),
        _ => 0,
    }
}

pub(crate) fn metric(port: u16, name: &str) -> u64 {
    let body = http(port, "GET", "/metrics", &[], b"")
        .map(|r| r.body)
        .unwrap_or_default();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0)
}

/// Sends one trace per request to the collectors in turn until stopped; records the ids the
/// collectors acknowledged (200). Refusals (503 while the log elects a leader) are retried a
/// few times, then the trace is given up (not acknowledged, so not expected).
fn sender(
    collectors: Vec<u16>,
    acked: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let now = spoor_tests::now_nanos();
        let mut i = 0u64;
        while !stop.load(Relaxed) {
            i += 1;
            let trace = format!("{:032x}", 0x5107_0000_0000u64 * 0x1_0000 + i * 7919);
            let body = crate::crash::chain_trace_json("streamed", &trace, SPANS, now, None);
            for attempt in 0..5 {
                let port = collectors[(i as usize + attempt) % collectors.len()];
                let r = http(
                    port,
                    "POST",
                    "/v1/traces",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
                match r {
                    Ok(r) if r.status == 200 => {
                        acked.lock().unwrap().push(trace.clone());
                        break;
                    }
                    _ => {
                        *refused.lock().unwrap() += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

fn wait_acked(acked: &Mutex<Vec<String>>, at_least: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < at_least {
        assert!(
            Instant::now() < deadline,
            "{what}: fewer than {at_least} traces acknowledged within 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until every trace in `traces` is found whole; returns the ones still missing.
fn converge(query: &Daemon, traces: &[String], timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut missing: Vec<String> = traces.to_vec();
    loop {
        missing.retain(|t| found_spans(query, t) < SPANS as usize);
        if missing.is_empty() || Instant::now() > deadline {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn acknowledged_traces_survive_a_nats_node_and_an_ingester_killed_mid_stream() {
    let Some(bin) = nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(&bin, dir.path());
    let urls = client_urls(&nodes);
    let log_args = ["--span-log", &urls, "--span-log.replicas", "3"];

    let collectors: Vec<Daemon> = (0..2)
        .map(|_| Daemon::start_role("collector", Ports::free(), &log_args).unwrap())
        .collect();
    let ingester = |ports: Ports, parts: &str, data: &Path| {
        let data = data.to_str().unwrap().to_string();
        let mut args: Vec<&str> = log_args.to_vec();
        args.extend([
            "--ingester.partitions",
            parts,
            "--storage",
            "sled",
            "--data-dir",
            &data,
            "--retention",
            "100000d",
        ]);
        Daemon::start_role("ingester", ports, &args).unwrap()
    };
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = ingester(Ports::free(), "0-3", &a_dir);
    let b_ports = Ports::free();
    let b = ingester(b_ports, "4-7", &b_dir);
    let ingesters = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        a.ports.query, b_ports.query
    );
    let query =
        Daemon::start_role("query", Ports::free(), &["--query.ingesters", &ingesters]).unwrap();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let send = sender(
        collectors.iter().map(|c| c.ports.http).collect(),
        acked.clone(),
        refused.clone(),
        stop.clone(),
    );

    // 1. all up: everything acknowledged is found through the query node
    wait_acked(&acked, 30, "all up");
    let first: Vec<String> = acked.lock().unwrap().clone();
    let missing = converge(&query, &first, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "acknowledged but not found: {missing:?}\ningester a:\n{}",
        a.log_text()
    );
    let services = query.get_json("/api/services").unwrap();
    assert_eq!(services.0, 200);
    assert_eq!(services.1["data"], serde_json::json!(["streamed"]));
    // a search merges both ingesters' answers and re-applies the limit
    let (status, found) = query
        .get_json("/api/traces?service=streamed&limit=20&lookback=1h")
        .unwrap();
    assert_eq!(status, 200, "{found}");
    let ids: Vec<String> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 20, "{ids:?}");
    let known = acked.lock().unwrap().clone();
    assert!(
        ids.iter()
            .all(|id| known.iter().any(|k| k.ends_with(id.as_str()))),
        "{ids:?}"
    );
    let halves = ids.iter().map(|id| partition(&format!("{id:0>32}")) < 4);
    assert_eq!(
        halves.collect::<std::collections::BTreeSet<_>>().len(),
        2,
        "both ingesters answer a search"
    );

    // 2. SIGKILL one NATS node and one ingester while the sender keeps going
    nodes[2].kill();
    b.kill();
    let before = acked.lock().unwrap().len();
    wait_acked(&acked, before + 30, "one nats node and ingester b down");
    // queries keep answering for what the live ingester holds
    let now_acked: Vec<String> = acked.lock().unwrap().clone();
    let on_a: Vec<String> = now_acked
        .iter()
        .filter(|t| partition(t) < 4)
        .cloned()
        .collect();
    assert!(
        !on_a.is_empty(),
        "no trace hashed to ingester a's partitions"
    );
    let missing = converge(&query, &on_a, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "ingester a's acknowledged traces not found while b is down: {missing:?}\n{}",
        query.log_text()
    );
    assert!(
        metric(query.ports.admin, "spoor_query_ingester_errors_total") > 0,
        "the query node must count the ingester it could not ask"
    );

    // 3. restart both; every acknowledged trace converges
    nodes[2].start(&bin);
    let b = ingester(b_ports, "4-7", &b_dir);
    let before = acked.lock().unwrap().len();
    wait_acked(&acked, before + 20, "after restart");
    stop.store(true, Relaxed);
    send.join().unwrap();
    let all: Vec<String> = acked.lock().unwrap().clone();
    // messages the killed ingester had fetched but not acked come back after the ack wait (30 s)
    let missing = converge(&query, &all, Duration::from_secs(120));
    let where_: Vec<(String, u32)> = missing.iter().map(|t| (t.clone(), partition(t))).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces lost (trace, partition): {where_:?}\ningester a /metrics:\n{}\ningester b /metrics:\n{}\ningester b:\n{}",
        missing.len(),
        all.len(),
        http(a.ports.admin, "GET", "/metrics", &[], b"").map(|r| String::from_utf8_lossy(&r.body).into_owned()).unwrap_or_default(),
        http(b.ports.admin, "GET", "/metrics", &[], b"").map(|r| String::from_utf8_lossy(&r.body).into_owned()).unwrap_or_default(),
        b.log_text()
    );
    let consumed = metric(a.ports.admin, "spoor_spanlog_consumed_spans_total")
        + metric(b.ports.admin, "spoor_spanlog_consumed_spans_total");
    assert!(
        consumed > 0,
        "the restarted ingesters report what they stored"
    );
    eprintln!(
        "span log: {} traces acknowledged, {} requests refused and retried while a node was down",
        all.len(),
        refused.lock().unwrap()
    );
    drop(collectors);
}

#[test]
fn roles_refuse_span_log_combinations_that_cannot_work() {
    for (args, want) in [
        (
            vec!["ingester", "--ingester.partitions", "0-3"],
            "the ingester role consumes the span log",
        ),
        (
            vec!["ingester", "--span-log", "nats://127.0.0.1:1"],
            "the ingester role needs --ingester.partitions",
        ),
        (
            vec![
                "ingester",
                "--span-log",
                "nats://127.0.0.1:1",
                "--ingester.partitions",
                "0-3",
                "--storage",
                "memory",
            ],
            "use --storage sled, not memory",
        ),
        (
            vec![
                "collector",
                "--span-log",
                "nats://127.0.0.1:1",
                "--data-dir",
                "/tmp/x",
            ],
            "a collector with --span-log stores nothing itself",
        ),
        (
            vec!["all-in-one", "--span-log", "nats://127.0.0.1:1"],
            "--span-log is for the collector (publishes) and ingester (consumes) roles, not all-in-one",
        ),
        (
            vec!["collector", "--query.ingesters", "http://127.0.0.1:1"],
            "--query.ingesters is for the query role only",
        ),
        (
            vec!["ingester", "--span-log", "nats://127.0.0.1:1", "--ingester.partitions", "9"],
            "invalid ingester.partitions \"9\": partition 9 does not exist: span-log.partitions is 8 (0-7)",
        ),
        (
            vec!["collector", "--span-log", "http://127.0.0.1:1"],
            "invalid span-log.url entry \"http://127.0.0.1:1\": expected nats://host:port",
        ),
        (
            vec!["collector", "--span-log", "nats://127.0.0.1:1", "--span-log.stream", "a.b"],
            "invalid span-log.stream \"a.b\": use letters, digits, '-' and '_' only",
        ),
        (
            vec!["query", "--query.ingesters", "ftp://x"],
            "invalid query.ingesters entry \"ftp://x\": expected http://host:port",
        ),
    ] {
        let ports = Ports::free();
        let admin = format!("127.0.0.1:{}", ports.admin);
        let mut full = args.clone();
        full.extend(["--admin.http.host-port", &admin]);
        let (code, stderr) = spoor_tests::run_spoor(&full).unwrap();
        assert_ne!(code, 0, "{args:?} should be refused");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

#[test]
fn collector_refuses_to_start_without_reachable_nats() {
    let port = free_port();
    let [admin, grpc, http] = [0; 3].map(|_| format!("127.0.0.1:{}", free_port()));
    let url = format!("nats://127.0.0.1:{port}");
    let (code, stderr) = spoor_tests::run_spoor(&[
        "collector",
        "--span-log",
        &url,
        "--admin.http.host-port",
        &admin,
        "--receivers",
        "otlp",
        "--otlp.grpc.host-port",
        &grpc,
        "--otlp.http.host-port",
        &http,
    ])
    .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("cannot connect to nats at {url}")),
        "{stderr}"
    );
}

/// Publishes `payload` to `subject` with the plain NATS text protocol (no headers: what a
/// foreign or broken producer would send); returns once the server answered the PING after it.
fn raw_publish(port: u16, subject: &str, payload: &[u8]) {
    raw_publish_with(port, subject, &[], payload)
}

/// Connects with the plain NATS text protocol; the stream and its reader.
fn raw_connect(port: u16) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap(); // INFO
    write!(s, "CONNECT {{\"verbose\":false,\"headers\":true}}\r\n").unwrap();
    (s, r)
}

/// Publishes `payload` with `headers` (HPUB when there are any), as a foreign or broken producer
/// could; returns once the server answered the PING after it.
pub(crate) fn raw_publish_with(port: u16, subject: &str, headers: &[(&str, &str)], payload: &[u8]) {
    use std::io::{BufRead, Write};
    let (mut s, mut r) = raw_connect(port);
    if headers.is_empty() {
        write!(s, "PUB {subject} {}\r\n", payload.len()).unwrap();
    } else {
        let mut h = String::from("NATS/1.0\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        write!(
            s,
            "HPUB {subject} {} {}\r\n{h}",
            h.len(),
            h.len() + payload.len()
        )
        .unwrap();
    }
    s.write_all(payload).unwrap();
    s.write_all(b"\r\nPING\r\n").unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "nats refused: {line}");
        if line.starts_with("PONG") {
            return;
        }
    }
}

/// How many messages of `stream` are on `subject` now (JetStream's stream info, asked with the
/// plain text protocol).
pub(crate) fn messages_on(port: u16, stream: &str, subject: &str) -> u64 {
    use std::io::{BufRead, Read, Write};
    let (mut s, mut r) = raw_connect(port);
    let req = format!(r#"{{"subjects_filter":"{subject}"}}"#);
    write!(
        s,
        "SUB _INBOX.spoor-test 1\r\nPUB $JS.API.STREAM.INFO.{stream} _INBOX.spoor-test {}\r\n{req}\r\n",
        req.len()
    )
    .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "nats refused: {line}");
        if line.starts_with("PING") {
            s.write_all(b"PONG\r\n").unwrap();
        }
        if let Some(rest) = line.strip_prefix("MSG ") {
            let len: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
            let mut body = vec![0; len + 2];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body[..len]).unwrap();
            return v["state"]["subjects"][subject].as_u64().unwrap_or(0);
        }
    }
}

fn post_trace(collector: &Daemon, trace: &str) -> u16 {
    let now = spoor_tests::now_nanos();
    let body = crate::crash::chain_trace_json("single", trace, SPANS, now, None);
    collector
        .post_otlp(&[("Content-Type", "application/json")], body.as_bytes())
        .map_or(0, |r| r.status)
}

/// A trace id (hex) that hashes to partition `p`.
pub(crate) fn trace_in(p: u32, salt: u64) -> String {
    (1..)
        .map(|i: u64| format!("{:032x}", (salt << 32) + i))
        .find(|t| partition(t) == p)
        .unwrap()
}

/// Mutual TLS on every hop between roles of the streaming deployment: NATS requires TLS and
/// client certificates of the test CA (`--tlsverify`), so the collector and the ingester connect
/// with `--span-log.tls.*`; the ingester serves its query port (and so the internal endpoint
/// query nodes call) over TLS and requires a client certificate too. A query node given the CA
/// and a client certificate reads every trace through it; one without a client certificate gets
/// nothing (the handshake is refused, counted as an ingester error) and answers an error; a
/// collector without a client certificate cannot connect to NATS and stops; missing CAs stop
/// start-up naming the option.
#[test]
fn every_hop_between_roles_runs_over_mutual_tls() {
    let Some(bin) = nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = crate::tls::make_certs(dir.path());
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (ca, server_cert, server_key) = (
        path(&certs.ca),
        path(&certs.server.0),
        path(&certs.server.1),
    );
    let (client_cert, client_key) = (path(&certs.client.0), path(&certs.client.1));
    let mut node = Node::solo(dir.path());
    node.start_single_with(
        &bin,
        &[
            "--tls",
            "--tlscert",
            &server_cert,
            "--tlskey",
            &server_key,
            "--tlsverify",
            "--tlscacert",
            &ca,
        ],
    );
    let url = format!("nats://127.0.0.1:{}", node.client);
    // collector and ingester: the span log over mutual TLS
    let span_log = [
        "--span-log",
        url.as_str(),
        "--span-log.tls.ca-file",
        ca.as_str(),
        "--span-log.tls.cert-file",
        client_cert.as_str(),
        "--span-log.tls.key-file",
        client_key.as_str(),
    ];
    let collector = Daemon::start_role("collector", Ports::free(), &span_log).unwrap();
    let data = dir.path().join("ingester");
    let mut args = span_log.to_vec();
    args.extend([
        "--ingester.partitions",
        "0-7",
        "--data-dir",
        data.to_str().unwrap(),
        "--retention",
        "100000d",
        "--tls.cert-file",
        &server_cert,
        "--tls.key-file",
        &server_key,
        "--tls.client-ca-file",
        &ca,
    ]);
    let ingester = Daemon::start_role("ingester", Ports::free(), &args).unwrap();
    let ingester_url = format!("https://127.0.0.1:{}", ingester.ports.query);
    let query = Daemon::start_role(
        "query",
        Ports::free(),
        &[
            "--query.ingesters",
            &ingester_url,
            "--query.ingesters-tls.ca-file",
            &ca,
            "--query.ingesters-tls.cert-file",
            &client_cert,
            "--query.ingesters-tls.key-file",
            &client_key,
        ],
    )
    .unwrap();
    let traces: Vec<String> = (0..4).map(|i| trace_in(i * 2, 7)).collect();
    for t in &traces {
        assert_eq!(post_trace(&collector, t), 200);
    }
    let missing = converge(&query, &traces, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "not found through the mutual-TLS query path: {missing:?}\n{}\n{}",
        query.log_text(),
        ingester.log_text()
    );
    assert_eq!(
        metric(query.ports.admin, "spoor_query_ingester_errors_total"),
        0
    );

    // The CA but no client certificate: the ingester refuses the handshake.
    let stranger = Daemon::start_role(
        "query",
        Ports::free(),
        &[
            "--query.ingesters",
            &ingester_url,
            "--query.ingesters-tls.ca-file",
            &ca,
        ],
    )
    .unwrap();
    let (status, body) = stranger
        .get_json(&format!("/api/traces/{}", traces[0]))
        .unwrap();
    assert!(status >= 500, "{status} {body}");
    assert!(metric(stranger.ports.admin, "spoor_query_ingester_errors_total") >= 1);

    // https:// without a CA to trust, a client certificate without its key, NATS without a
    // client certificate, or TLS to NATS without a CA: start-up stops.
    for (args, want) in [
        (
            vec![
                "collector",
                "--span-log",
                url.as_str(),
                "--span-log.tls.ca-file",
                ca.as_str(),
            ],
            "cannot connect to nats at",
        ),
        (
            vec!["collector", "--span-log", url.as_str()],
            "cannot connect to nats at",
        ),
        (
            vec![
                "collector",
                "--span-log",
                url.as_str(),
                "--span-log.tls.cert-file",
                client_cert.as_str(),
                "--span-log.tls.key-file",
                client_key.as_str(),
            ],
            "span-log.tls.ca-file is needed to connect to NATS over TLS",
        ),
        (
            vec!["query", "--query.ingesters", ingester_url.as_str()],
            "query.ingesters-tls.ca-file is needed to call https:// ingesters",
        ),
        (
            vec![
                "query",
                "--query.ingesters",
                ingester_url.as_str(),
                "--query.ingesters-tls.ca-file",
                ca.as_str(),
                "--query.ingesters-tls.cert-file",
                client_cert.as_str(),
            ],
            "query.ingesters-tls.cert-file and query.ingesters-tls.key-file go together",
        ),
    ] {
        let (code, stderr) = spoor_tests::run_spoor(&args).unwrap();
        assert_ne!(code, 0, "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    stranger.stop().unwrap();
    query.stop().unwrap();
    ingester.stop().unwrap();
    collector.stop().unwrap();
}

#[test]
fn undecodable_messages_go_to_dead_letters_and_an_unreachable_log_answers_503() {
    let Some(bin) = nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::solo(dir.path());
    node.start_single(&bin);
    let url = format!("nats://127.0.0.1:{}", node.client);
    let collector = Daemon::start_role("collector", Ports::free(), &["--span-log", &url]).unwrap();
    let data = dir.path().join("ingester");
    let ingester = Daemon::start_role(
        "ingester",
        Ports::free(),
        &[
            "--span-log",
            &url,
            "--ingester.partitions",
            "0-7",
            "--data-dir",
            data.to_str().unwrap(),
            "--retention",
            "100000d",
        ],
    )
    .unwrap();

    // garbage in partition 0, a message of a tenant (this ingester runs without tenancy: it
    // must not mix it into its one store), then a real trace behind them in the same partition
    raw_publish(node.client, "spoor-spans.p0", b"not a block");
    let tenant_msg = [("Spoor-Encoding", "spoor-block/1"), ("Spoor-Tenant", "a")];
    raw_publish_with(
        node.client,
        "spoor-spans.p0",
        &tenant_msg,
        b"spans of tenant a",
    );
    let behind = trace_in(0, 1);
    assert_eq!(post_trace(&collector, &behind), 200);
    assert!(
        converge(
            &ingester,
            std::slice::from_ref(&behind),
            Duration::from_secs(30)
        )
        .is_empty(),
        "the trace behind a bad message must be stored:\n{}",
        ingester.log_text()
    );
    assert_eq!(
        metric(ingester.ports.admin, "spoor_spanlog_dead_letters_total"),
        2
    );
    assert_eq!(
        metric(
            ingester.ports.admin,
            "spoor_spanlog_tenant_refused_messages_total"
        ),
        1
    );
    let log = ingester.log_text();
    assert!(log.contains("undecodable message sent to spoor-spans.dead-letter"));
    assert!(
        log.contains("but this ingester runs without multi-tenancy"),
        "{log}"
    );
    assert_eq!(
        messages_on(node.client, "spoor-spans", "spoor-spans.dead-letter"),
        2
    );

    // NATS away: ingest is refused as unavailable (retryable), not queued without bound
    node.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    while Instant::now() < deadline {
        status = post_trace(&collector, &trace_in(3, 2));
        if status == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 503, "{}", collector.log_text());

    // NATS back on the same store: ingest resumes and the earlier trace is still there
    node.start_single(&bin);
    let after = trace_in(5, 3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while post_trace(&collector, &after) != 200 {
        assert!(Instant::now() < deadline, "{}", collector.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let missing = converge(
        &ingester,
        &[behind.clone(), after.clone()],
        Duration::from_secs(60),
    );
    assert!(missing.is_empty(), "{missing:?}\n{}", ingester.log_text());
}
