//! End-to-end test support: start the real `spoor` binary on free 127.0.0.1 ports, talk HTTP to
//! it, run the real OpenTelemetry clients installed by `make test-clients`, and compare JSON with
//! golden files (`SPOOR_BLESS=1` rewrites them).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The daemon binary: `$SPOOR_BIN`, else `target/debug/spoor` next to this test binary.
pub fn spoor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SPOOR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/all-<hash> -> target/debug/spoor
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(if cfg!(windows) { "spoor.exe" } else { "spoor" });
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p spoor` first (make e2e does)",
        bin.display()
    );
    bin
}

/// Test ports come from 20000-32767, below Linux's ephemeral range (32768-60999): the kernel
/// gives that range to outgoing connections (every client in these tests, the daemon's own
/// forwarders), so a port picked there and released could be taken by one of them before the
/// daemon binds it. Each test process starts at its own offset (by pid) and walks up.
const TEST_PORTS: std::ops::Range<u16> = 20000..32768;

fn next_candidate() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let seed = std::process::id().wrapping_mul(2_654_435_761) % span;
        let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
    TEST_PORTS.start + n as u16
}

/// A free port on 127.0.0.1 for both TCP and UDP (bound, then released for the daemon to take).
pub fn free_port() -> u16 {
    for _ in 0..TEST_PORTS.len() {
        let p = next_candidate();
        let tcp = TcpListener::bind(("127.0.0.1", p));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", p));
        if tcp.is_ok() && udp.is_ok() {
            return p;
        }
    }
    panic!("no free port in {TEST_PORTS:?}")
}

/// Ports of one daemon.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// OTLP/gRPC.
    pub grpc: u16,
    /// OTLP/HTTP.
    pub http: u16,
    /// Query API.
    pub query: u16,
    /// Admin.
    pub admin: u16,
    /// Jaeger Thrift compact over UDP.
    pub jaeger_compact: u16,
    /// Jaeger Thrift binary over UDP.
    pub jaeger_binary: u16,
    /// Jaeger Thrift over HTTP.
    pub jaeger_http: u16,
    /// Jaeger gRPC.
    pub jaeger_grpc: u16,
    /// Zipkin HTTP.
    pub zipkin: u16,
    /// Sampling strategies over HTTP (the agent port, 5778 by default).
    pub sampling: u16,
}

impl Ports {
    /// Fresh free ports for every listener.
    pub fn free() -> Ports {
        Ports {
            grpc: free_port(),
            http: free_port(),
            query: free_port(),
            admin: free_port(),
            jaeger_compact: free_udp_port(),
            jaeger_binary: free_udp_port(),
            jaeger_http: free_port(),
            jaeger_grpc: free_port(),
            zipkin: free_port(),
            sampling: free_port(),
        }
    }

    fn args(&self) -> Vec<String> {
        let flag = |name: &str, port: u16| [format!("--{name}"), format!("127.0.0.1:{port}")];
        [
            flag("otlp.grpc.host-port", self.grpc),
            flag("otlp.http.host-port", self.http),
            flag("query.http.host-port", self.query),
            flag("admin.http.host-port", self.admin),
            flag("jaeger.thrift-compact.host-port", self.jaeger_compact),
            flag("jaeger.thrift-binary.host-port", self.jaeger_binary),
            flag("jaeger.thrift-http.host-port", self.jaeger_http),
            flag("jaeger.grpc.host-port", self.jaeger_grpc),
            flag("zipkin.http.host-port", self.zipkin),
            flag("sampling.http.host-port", self.sampling),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Runs `spoor ARGS` to completion and returns its exit code and stderr (for start-up errors).
pub fn run_spoor(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let out = Command::new(spoor_bin())
        .args(args)
        .env_remove("SPOOR_CONFIG")
        .stdin(Stdio::null())
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    free_port()
}

/// A running daemon; stopped (SIGKILL) when dropped if not stopped before.
pub struct Daemon {
    child: Option<Child>,
    /// Its ports.
    pub ports: Ports,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// Keeps the log directory alive.
    _logdir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `spoor all-in-one` with `args` (e.g. `--storage memory`) on fresh ports and waits
    /// until its health check says it is available.
    pub fn start(args: &[&str]) -> anyhow::Result<Daemon> {
        Self::start_on(Ports::free(), args)
    }

    /// Like [`Daemon::start`] on given ports (to restart on the same ones).
    pub fn start_on(ports: Ports, args: &[&str]) -> anyhow::Result<Daemon> {
        Self::start_role("all-in-one", ports, args)
    }

    /// Starts one role (`all-in-one`, `collector`, `query`, `agent`) on given ports.
    pub fn start_role(role: &str, ports: Ports, args: &[&str]) -> anyhow::Result<Daemon> {
        Self::spawn(role, ports, args, false)
    }

    /// Starts `spoor all-in-one` whose admin port speaks TLS (so plain HTTP cannot ask it):
    /// ready when the log says so.
    pub fn start_with_tls_admin(args: &[&str]) -> anyhow::Result<Daemon> {
        Self::spawn("all-in-one", Ports::free(), args, true)
    }

    fn spawn(
        role: &str,
        ports: Ports,
        args: &[&str],
        ready_by_log: bool,
    ) -> anyhow::Result<Daemon> {
        let logdir = tempfile::tempdir()?;
        let log = logdir.path().join("spoor.log");
        let stderr = std::fs::File::create(&log)?;
        let child = Command::new(spoor_bin())
            .arg(role)
            .args(ports.args())
            .args(["--batch.max-age", "20ms"])
            .args(args)
            .env_remove("SPOOR_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawn spoor")?;
        let mut d = Daemon {
            child: Some(child),
            ports,
            log,
            _logdir: logdir,
        };
        d.wait_ready(Duration::from_secs(60), ready_by_log)?;
        Ok(d)
    }

    fn wait_ready(&mut self, timeout: Duration, by_log: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("spoor exited early with {status}:\n{}", self.log_text());
            }
            if by_log {
                if self.log_text().contains("spoor is ready") {
                    return Ok(());
                }
            } else if let Ok(r) = http(self.ports.admin, "GET", "/", &[], b"") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("spoor not ready after {timeout:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's process id (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin port's `/metrics` (Prometheus text).
    pub fn metrics_text(&self) -> String {
        let r = http(self.ports.admin, "GET", "/metrics", &[], b"").expect("GET /metrics");
        String::from_utf8_lossy(&r.body).into_owned()
    }

    /// GET on the query port, body parsed as JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let r = http(self.ports.query, "GET", path, &[], b"")?;
        let v = serde_json::from_slice(&r.body).with_context(|| {
            format!(
                "GET {path} -> {} not JSON: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })?;
        Ok((r.status, v))
    }

    /// POST to the OTLP/HTTP port.
    pub fn post_otlp(&self, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Response> {
        http(self.ports.http, "POST", "/v1/traces", headers, body)
    }

    /// Polls `GET path` on the query port until `ok` accepts the JSON (spans are written in
    /// batches, so they become visible shortly after being acknowledged).
    pub fn wait_json(
        &self,
        path: &str,
        mut ok: impl FnMut(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, v) = self.get_json(path)?;
            if status == 200 && ok(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!(
                    "GET {path} never satisfied the check; last {status}: {v}\nlog:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for exit (graceful shutdown: drain and flush).
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "spoor did not stop within 30s after SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of the sample `series` (name with its labels, as printed, e.g.
/// `spoor_receiver_spans_refused_total{receiver="otlp_http"}`) in Prometheus text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// A header value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A minimal HTTP/1.1 request to 127.0.0.1 (one connection per request, `Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .context("no status")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_text = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).context("short chunk")?);
        b = b.get(size + 2..).context("short chunk")?;
    }
}

/// Compares `actual` with the golden file `tests/golden/NAME.json`; with `SPOOR_BLESS=1` the
/// file is (re)written instead.
pub fn check_golden(name: &str, actual: &serde_json::Value) -> anyhow::Result<()> {
    let path = repo_root()
        .join("tests/golden")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual)? + "\n";
    if std::env::var_os("SPOOR_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir"))?;
        std::fs::write(&path, &text)?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "missing golden file {} (run with SPOOR_BLESS=1)",
            path.display()
        )
    })?;
    if want != text {
        bail!("{} differs from the response (SPOOR_BLESS=1 rewrites it):\n--- want\n{want}\n--- got\n{text}", path.display());
    }
    Ok(())
}

/// Runs a test client script and returns its stdout JSON.
pub fn run_client(program: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_root().join("tests/clients"))
        .output()
        .with_context(|| format!("run {} (did `make test-clients` run?)", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {:?} failed with {}:\nstdout: {}\nstderr: {}",
            program.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    serde_json::from_str(&last).with_context(|| format!("client printed {last:?}"))
}

/// The Python interpreter of the test clients' virtualenv (`make test-clients`).
pub fn python() -> PathBuf {
    repo_root().join("tests/clients/.venv/bin/python")
}

/// Helpers to read the Jaeger JSON of one trace (`data[i]` of `/api/traces`).
pub mod jaeger_json {
    use serde_json::Value;

    /// The span with this operation name (case-insensitive: zipkin-js lowercases names).
    pub fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
        trace["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .find(|s| {
                s["operationName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .unwrap_or_else(|| panic!("no span {name} in {trace}"))
    }

    /// The tag with this key.
    pub fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
        span["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .find(|t| t["key"] == key)
            .unwrap_or_else(|| panic!("no tag {key} in {span}"))
    }

    /// The service name of the span's process.
    pub fn service_of(trace: &Value, span: &Value) -> String {
        let pid = span["processID"].as_str().expect("processID");
        trace["processes"][pid]["serviceName"]
            .as_str()
            .expect("serviceName")
            .to_string()
    }
}

/// One unary gRPC call with prost messages to `127.0.0.1:port` on `path`, with `metadata` as
/// request metadata (keys lowercased): the response message, or the status (a connection that
/// fails is `UNAVAILABLE`). Tests use it to send well-formed requests with any metadata, and
/// deliberately malformed ones (any prost message as the request).
pub fn grpc_unary<Req, Resp>(
    port: u16,
    path: &'static str,
    msg: Req,
    metadata: &[(&str, String)],
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut req = tonic::Request::new(msg);
    for (k, v) in metadata {
        let key = k
            .to_ascii_lowercase()
            .parse::<tonic::metadata::MetadataKey<_>>()
            .map_err(|e| tonic::Status::internal(format!("bad metadata key {k:?}: {e}")))?;
        let value = v
            .parse()
            .map_err(|e| tonic::Status::internal(format!("bad metadata value for {k:?}: {e}")))?;
        req.metadata_mut().insert(key, value);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| tonic::Status::internal(e.to_string()))?
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec: tonic_prost::ProstCodec<Req, Resp> = tonic_prost::ProstCodec::default();
        grpc.unary(req, http::uri::PathAndQuery::from_static(path), codec)
            .await
            .map(|r| r.into_inner())
    })
}

/// Nanoseconds since the Unix epoch: "now" for the traces tests send.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A 3-node Garage cluster (S3-compatible object storage, the `garage` binary from crates.io;
/// `make tools` installs it) on free 127.0.0.1 ports, replication factor 3, with bucket
/// [`Garage::BUCKET`] and one key allowed on it. Nodes can be killed and restarted on the same
/// ports and data.
pub struct Garage {
    /// The S3 API port of each node.
    pub s3: Vec<u16>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    children: Vec<Option<std::process::Child>>,
}

impl Garage {
    /// The bucket created at start.
    pub const BUCKET: &'static str = "spoor";
    /// The access key id allowed on it.
    pub const KEY_ID: &'static str = "GK5b00c0ffee5b00c0ffee5b00";
    /// Its secret.
    pub const SECRET: &'static str =
        "5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00";
    /// The region Garage answers for (its `s3_region`).
    pub const REGION: &'static str = "garage";

    /// The `garage` binary on PATH or in `~/.cargo/bin`, if installed.
    pub fn binary() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(PathBuf::from(home).join(".cargo/bin"));
        }
        dirs.into_iter()
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    }

    fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}.toml"))
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config(0))
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts node `i` (again).
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.dir.path().join(format!("n{i}.log")))?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config(i))
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.s3[i])).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "garage node {i} did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGKILLs node `i`.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the cluster and waits until the bucket answers.
    pub fn start() -> anyhow::Result<Garage> {
        let bin = Self::binary().ok_or_else(|| anyhow::anyhow!("garage is not installed"))?;
        let dir = tempfile::tempdir()?;
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) as u8))
            .collect();
        let mut g = Garage {
            s3: Vec::new(),
            bin,
            dir,
            children: vec![None, None, None],
        };
        let mut rpc = Vec::new();
        for i in 0..3 {
            let (s3, r, admin) = (free_port(), free_port(), free_port());
            g.s3.push(s3);
            rpc.push(r);
            let d = g.dir.path().join(format!("n{i}"));
            std::fs::write(
                g.config(i),
                format!(
                    "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\ndb_engine = \"lmdb\"\nreplication_factor = 3\n\
                     rpc_bind_addr = \"127.0.0.1:{r}\"\nrpc_public_addr = \"127.0.0.1:{r}\"\nrpc_secret = \"{secret}\"\n\
                     [s3_api]\ns3_region = \"{region}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    m = d.join("meta").display(),
                    d = d.join("data").display(),
                    region = Self::REGION,
                ),
            )?;
        }
        for i in 0..3 {
            g.start_node(i)?;
        }
        let mut ids = Vec::new();
        for i in 0..3 {
            let out = Command::new(&g.bin)
                .arg("-c")
                .arg(g.config(i))
                .args(["node", "id", "-q"])
                .output()?;
            ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        for id in &ids[1..] {
            g.cli(&["node", "connect", id])?;
        }
        for id in &ids {
            let short = id.split('@').next().unwrap_or_default().to_string();
            g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &short])?;
        }
        g.cli(&["layout", "apply", "--version", "1"])?;
        g.cli(&["bucket", "create", Self::BUCKET])?;
        g.cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "spoor",
            Self::KEY_ID,
            Self::SECRET,
        ])?;
        g.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            Self::BUCKET,
            "--key",
            "spoor",
        ])?;
        Ok(g)
    }

    /// The daemon flags that point at this cluster (node `node`'s S3 port), under `prefix`.
    pub fn flags(&self, node: usize, prefix: &str) -> Vec<String> {
        vec![
            "--object-store.url".into(),
            format!("s3://{}/{prefix}", Self::BUCKET),
            "--object-store.endpoint".into(),
            format!("http://127.0.0.1:{}", self.s3[node]),
            "--object-store.region".into(),
            Self::REGION.into(),
            "--object-store.access-key-id".into(),
            Self::KEY_ID.into(),
            "--object-store.secret-access-key".into(),
            Self::SECRET.into(),
        ]
    }

    /// The bucket under `prefix` through `node`'s S3 API, as the daemon flags of
    /// [`Garage::flags`] reach it.
    pub fn bucket(&self, node: usize, prefix: &str) -> spoor_objstore::Bucket {
        spoor_objstore::connect(&spoor_objstore::S3Settings {
            url: format!("s3://{}/{prefix}", Self::BUCKET),
            endpoint: Some(format!("http://127.0.0.1:{}", self.s3[node])),
            region: Self::REGION.into(),
            access_key_id: Some(Self::KEY_ID.into()),
            secret_access_key: Some(Self::SECRET.into()),
            timeout: Duration::from_secs(30),
        })
        .expect("garage bucket")
    }

    /// The nodes' logs.
    pub fn logs(&self) -> String {
        (0..3)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("n{i}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill_node(i);
        }
    }
}
