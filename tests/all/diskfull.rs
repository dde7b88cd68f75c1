//! Disk full: the daemon stores on sled (`--durability sync`, so an acknowledgement means
//! stored) on a small tmpfs that fills up. Ingest must then answer with a retryable refusal
//! (503 + Retry-After), keep everything acknowledged before intact, resume by itself once the
//! file system has room again, and start cleanly on the same data afterwards.
//!
//! Mounting needs root (the tests run as root here and in CI); without it, or if the mount
//! fails, the test prints why and returns.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use spoor_tests::{http, metric_value, Daemon, Response};

use crate::crash::{chain_trace_json, stored_spans};

const SPANS_PER_TRACE: u64 = 2;
/// Hex characters of random payload (the same in both spans of a trace): compresses to about
/// half, so each trace takes ~20 KB on disk.
const PAYLOAD_HEX: usize = 40_000;
/// Free space left next to the ballast file: what the daemon fills (less the store's reserve).
const LEFT_FREE: u64 = 4 << 20;

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }

    /// Fills the file system with a ballast file, then gives `leave` bytes of it back.
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let path = self.dir.join("ballast");
        let mut f = std::fs::File::create(&path).expect("create ballast");
        let chunk = vec![0x5a_u8; 256 << 10];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().expect("ballast length").len();
        f.set_len(len.saturating_sub(leave))
            .expect("shrink ballast");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Payloads that do not compress away (an xorshift stream in hex).
struct Noise(u64);

impl Noise {
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            s.push_str(&format!("{:016x}", self.0));
        }
        s.truncate(n);
        s
    }
}

fn send(port: u16, trace: &str, now: u64, noise: &mut Noise) -> Response {
    let body = chain_trace_json(
        "diskfull",
        trace,
        SPANS_PER_TRACE,
        now,
        Some(&noise.hex(PAYLOAD_HEX)),
    );
    http(
        port,
        "POST",
        "/v1/traces",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("the daemon answers (a full disk must not stop it)")
}

fn trace_id(i: u64) -> String {
    format!("{:032x}", 0xd15c_0000_0000u64 + i)
}

/// A refusal a client may retry: 503 or 429 with a Retry-After header.
fn assert_retryable(r: &Response) {
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        matches!(r.status, 503 | 429) && r.header("retry-after").is_some(),
        "refusal is not retryable: {} {:?} {body}",
        r.status,
        r.headers
    );
}

fn assert_all_stored(d: &Daemon, acked: &[String], when: &str) {
    let missing: Vec<&String> = acked
        .iter()
        .filter(|t| stored_spans(d, t) != SPANS_PER_TRACE as usize)
        .collect();
    assert!(
        missing.is_empty(),
        "{when}: {} of {} acknowledged traces incomplete, e.g. {:?}\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        d.log_text()
    );
}

#[test]
fn full_disk_refuses_retryably_keeps_data_and_resumes_when_space_returns() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let fs = match Tmpfs::mount("16m") {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let data = fs.dir.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let args = [
        "--storage",
        "sled",
        "--data-dir",
        &data_arg,
        "--durability",
        "sync",
        "--retention",
        "100000d",
    ];
    let now = spoor_tests::now_nanos();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let d = Daemon::start(&args).unwrap();
    let port = d.ports.http;
    let ballast = fs.fill_leaving(LEFT_FREE);

    // 1. Fill the file system until ingest refuses.
    let mut acked = Vec::new();
    let mut i = 0u64;
    let refusal = loop {
        assert!(i < 2_000, "the disk never filled up:\n{}", d.log_text());
        let trace = trace_id(i);
        i += 1;
        let r = send(port, &trace, now, &mut noise);
        if r.status == 200 {
            acked.push(trace);
        } else {
            break r;
        }
    };
    eprintln!("disk full after {} acknowledged traces", acked.len());
    assert!(acked.len() >= 10, "filled up too soon: {}", acked.len());
    assert_retryable(&refusal);
    let body = String::from_utf8_lossy(&refusal.body).to_string();
    assert!(body.contains("no space left"), "{body}");
    assert!(
        !body.contains(&data_arg),
        "the refusal leaks the data path: {body}"
    );

    // 2. While full: refused at once (not left hanging), retryably, and counted.
    for _ in 0..5 {
        let trace = trace_id(i);
        i += 1;
        let r = send(port, &trace, now, &mut noise);
        assert_retryable(&r);
    }
    let metrics = d.metrics_text();
    assert!(
        refused_all_by_reserve(&d.log_text()),
        "sled itself hit the full disk:\n{}",
        d.log_text()
    );
    let write_errors = metric_value(&metrics, "spoor_pipeline_write_errors_total").unwrap_or(0.0);
    let refused_spans = metric_value(
        &metrics,
        "spoor_receiver_spans_refused_total{receiver=\"otlp_http\"}",
    )
    .unwrap_or(0.0);
    // refused before the body was read (admission) or after decoding: counted either way
    let refused_requests = metric_value(
        &metrics,
        "spoor_receiver_requests_refused_total{receiver=\"otlp_http\"}",
    )
    .unwrap_or(0.0);
    assert!(write_errors >= 1.0, "write errors not counted:\n{metrics}");
    assert!(
        refused_requests + refused_spans / SPANS_PER_TRACE as f64 >= 5.0,
        "refusals not counted:\n{metrics}"
    );
    let log = d.log_text();
    assert!(
        log.contains("no space left on device") && log.contains(&data_arg),
        "the log does not say which path is full:\n{log}"
    );

    // 3. Nothing acknowledged before is damaged.
    assert_all_stored(&d, &acked, "while the disk is full");

    // 4. Space returns: ingest resumes without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trace = trace_id(i);
        i += 1;
        let r = send(port, &trace, now, &mut noise);
        if r.status == 200 {
            acked.push(trace);
            break;
        }
        assert_retryable(&r);
        assert!(
            Instant::now() < deadline,
            "ingest did not resume within 30 s after space returned:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..20 {
        let trace = trace_id(i);
        i += 1;
        let r = send(port, &trace, now, &mut noise);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        acked.push(trace);
    }
    assert_all_stored(&d, &acked, "after space returned");
    assert!(
        d.log_text().contains("ingest resumes"),
        "no log line says ingest resumed"
    );

    // 5. A restart on the same data finds nothing corrupt and everything acknowledged.
    let ports = d.ports;
    let status = d.stop().unwrap();
    assert!(status.success(), "graceful stop failed: {status}");
    let d = Daemon::start_on(ports, &args).unwrap();
    assert_all_stored(&d, &acked, "after a restart");
    let log = d.log_text();
    assert!(
        !log.contains("corrupt") && !log.contains("unreadable"),
        "start-up after a full disk reported damage:\n{log}"
    );
    eprintln!(
        "disk full: {} traces acknowledged in all, all found before and after a restart",
        acked.len()
    );
}

/// Whether every failed write was refused by the store's free-space check (which names the
/// directory) rather than failing inside sled (which would stay failed until a restart).
fn refused_all_by_reserve(log: &str) -> bool {
    !log.contains("IO error")
}
