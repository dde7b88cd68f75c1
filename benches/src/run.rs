//! The network load run: worker tasks (one connection each) sending pool requests round-robin,
//! open-loop at a fixed rate or closed-loop as fast as the receiver accepts, with live counters,
//! a progress line and the final report.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Client, ConnectError, Outcome};
use crate::hist::Histogram;
use crate::payload::{Pool, Protocol};

/// Pause after a transport error or error status, so a dead receiver is not spun on.
pub const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Protocol of the pool's payloads.
    pub protocol: Protocol,
    /// Receiver address (`http://host:port`).
    pub endpoint: String,
    /// Worker tasks, each with its own connection.
    pub connections: usize,
    /// Target spans per second over all connections; `None` = as fast as accepted.
    pub rate: Option<f64>,
    /// Stop after this long (ignored when `total_spans` is set).
    pub duration: Duration,
    /// Stop after offering this many spans (exactly, when the pool holds them all; else rounded
    /// up to a whole request).
    pub total_spans: Option<u64>,
    /// Per-request timeout (also the connect timeout).
    pub timeout: Duration,
    /// Draw a progress line on stderr.
    pub progress: bool,
}

/// Counters shared by the workers and the progress line.
#[derive(Debug, Default)]
struct Shared {
    next: AtomicUsize,
    claimed: AtomicU64,
    offered: AtomicU64,
    accepted: AtomicU64,
    sent_unacked: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
    errored: AtomicU64,
    requests: AtomicU64,
    requests_refused: AtomicU64,
    requests_error: AtomicU64,
    bytes: AtomicU64,
}

/// Per-worker results merged at the end.
#[derive(Debug, Default)]
struct WorkerResult {
    latency: Histogram,
    first_error: Option<String>,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct RunReport {
    /// Protocol used.
    pub protocol: Protocol,
    /// Endpoint used.
    pub endpoint: String,
    /// Connections used.
    pub connections: usize,
    /// Target rate, if any.
    pub target_rate: Option<f64>,
    /// Spans per request.
    pub batch_spans: usize,
    /// Wall time of the run (after the pool was built).
    pub elapsed: Duration,
    /// Time spent generating and encoding the pool.
    pub pool_build: Duration,
    /// Requests sent (answered or failed).
    pub requests: u64,
    /// Requests refused (429 / `RESOURCE_EXHAUSTED`).
    pub requests_refused: u64,
    /// Requests that failed otherwise.
    pub requests_error: u64,
    /// Spans in all requests sent.
    pub spans_offered: u64,
    /// Spans the receiver took (offered in successful requests minus partial-success rejects);
    /// always 0 over UDP, where it is unknown (see [`RunReport::accepted_known`]).
    pub spans_accepted: u64,
    /// Spans sent as UDP datagrams without error (no reply tells whether they were taken).
    pub spans_sent_unacknowledged: u64,
    /// Spans rejected by partial success.
    pub spans_rejected: u64,
    /// Spans in refused requests.
    pub spans_refused: u64,
    /// Spans in failed requests.
    pub spans_errored: u64,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// Request latency (nanoseconds), over all requests.
    pub latency: Histogram,
    /// Requests in the pool.
    pub pool_requests: usize,
    /// Spans in the pool.
    pub pool_spans: u64,
    /// Traces in the pool.
    pub pool_traces: u64,
    /// Bytes in the pool.
    pub pool_bytes: u64,
    /// Whether the pool hit its byte cap.
    pub pool_capped: bool,
    /// The first error message seen, if any.
    pub first_error: Option<String>,
}

impl RunReport {
    fn per_sec(&self, n: u64) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            n as f64 / s
        } else {
            0.0
        }
    }

    /// How many times the run went through the whole pool, so that trace ids repeated
    /// (0 = every request was sent at most once).
    pub fn pool_wraps(&self) -> u64 {
        if self.pool_requests == 0 {
            0
        } else {
            self.requests.saturating_sub(1) / self.pool_requests as u64
        }
    }

    /// Whether the receiver told which spans it took (not over UDP: read its metrics instead).
    pub fn accepted_known(&self) -> bool {
        !self.protocol.is_udp()
    }

    /// The report as one JSON object, every figure included; over UDP `spans_accepted` and
    /// `accepted_spans_per_sec` are `null` (unknown) and `spans_sent` counts what went out.
    pub fn to_json(&self) -> serde_json::Value {
        let us = |ns: u64| ns as f64 / 1000.0;
        let known = self.accepted_known();
        json!({
            "mode": "network",
            "protocol": self.protocol.name(),
            "endpoint": self.endpoint,
            "connections": self.connections,
            "batch_spans": self.batch_spans,
            "target_rate_spans_per_sec": self.target_rate,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "pool_build_secs": self.pool_build.as_secs_f64(),
            "requests": self.requests,
            "requests_ok": self.requests - self.requests_refused - self.requests_error,
            "requests_refused": self.requests_refused,
            "requests_error": self.requests_error,
            "spans_offered": self.spans_offered,
            "accepted_known": known,
            "spans_accepted": known.then_some(self.spans_accepted),
            "spans_sent": self.spans_sent_unacknowledged,
            "spans_rejected": self.spans_rejected,
            "spans_refused": self.spans_refused,
            "spans_errored": self.spans_errored,
            "offered_spans_per_sec": self.per_sec(self.spans_offered),
            "accepted_spans_per_sec": known.then(|| self.per_sec(self.spans_accepted)),
            "sent_spans_per_sec": self.per_sec(self.spans_sent_unacknowledged),
            "requests_per_sec": self.per_sec(self.requests),
            "bytes_sent": self.bytes_sent,
            "mib_per_sec": self.per_sec(self.bytes_sent) / (1024.0 * 1024.0),
            "latency_us": {
                "count": self.latency.count(),
                "min": us(self.latency.min()),
                "mean": self.latency.mean() / 1000.0,
                "p50": us(self.latency.quantile(0.50)),
                "p90": us(self.latency.quantile(0.90)),
                "p99": us(self.latency.quantile(0.99)),
                "max": us(self.latency.max()),
            },
            "pool": {
                "requests": self.pool_requests,
                "spans": self.pool_spans,
                "traces": self.pool_traces,
                "bytes": self.pool_bytes,
                "capped": self.pool_capped,
                "wraps": self.pool_wraps(),
                "trace_ids_repeated": self.pool_wraps() > 0,
            },
            "first_error": self.first_error,
        })
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let ms = |ns: u64| format!("{:.3} ms", ns as f64 / 1e6);
        let rate = self
            .target_rate
            .map_or("as fast as accepted".to_string(), |r| {
                format!("{r:.0} spans/s")
            });
        let mut rows: Vec<(&str, String)> = vec![
            (
                "protocol",
                format!("{} -> {}", self.protocol.name(), self.endpoint),
            ),
            ("connections", self.connections.to_string()),
            ("batch", format!("{} spans/request", self.batch_spans)),
            ("target rate", rate),
            (
                "elapsed",
                format!(
                    "{:.2} s (pool built in {:.2} s)",
                    self.elapsed.as_secs_f64(),
                    self.pool_build.as_secs_f64()
                ),
            ),
            (
                "requests",
                format!(
                    "{} ({} refused, {} failed)",
                    self.requests, self.requests_refused, self.requests_error
                ),
            ),
            (
                "spans offered",
                format!(
                    "{} ({:.0}/s)",
                    self.spans_offered,
                    self.per_sec(self.spans_offered)
                ),
            ),
            if self.accepted_known() {
                (
                    "spans accepted",
                    format!(
                        "{} ({:.0}/s)",
                        self.spans_accepted,
                        self.per_sec(self.spans_accepted)
                    ),
                )
            } else {
                (
                    "spans accepted",
                    format!(
                        "unknown: UDP has no reply; {} spans sent ({:.0}/s), see the receiver's \
                         metrics for what it took and dropped",
                        self.spans_sent_unacknowledged,
                        self.per_sec(self.spans_sent_unacknowledged)
                    ),
                )
            },
            ("spans rejected", self.spans_rejected.to_string()),
            ("spans refused", self.spans_refused.to_string()),
            ("spans errored", self.spans_errored.to_string()),
            (
                "bytes sent",
                format!(
                    "{} ({:.1} MiB/s)",
                    self.bytes_sent,
                    self.per_sec(self.bytes_sent) / (1024.0 * 1024.0)
                ),
            ),
            ("latency p50", ms(self.latency.quantile(0.50))),
            ("latency p90", ms(self.latency.quantile(0.90))),
            ("latency p99", ms(self.latency.quantile(0.99))),
            ("latency max", ms(self.latency.max())),
            (
                "pool",
                format!(
                    "{} requests, {} spans, {} traces, {} bytes{}; wrapped {} times{}",
                    self.pool_requests,
                    self.pool_spans,
                    self.pool_traces,
                    self.pool_bytes,
                    if self.pool_capped {
                        " (byte cap hit)"
                    } else {
                        ""
                    },
                    self.pool_wraps(),
                    if self.pool_wraps() > 0 {
                        " (trace ids repeated)"
                    } else {
                        ""
                    }
                ),
            ),
        ];
        if let Some(e) = &self.first_error {
            rows.push(("first error", e.clone()));
        }
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:>15}  {v}\n"));
        }
        out
    }
}

/// Connects every worker, then runs until the duration or span total is reached.
pub async fn run(
    cfg: RunConfig,
    pool: Arc<Pool>,
    batch_spans: usize,
    pool_build: Duration,
) -> Result<RunReport, ConnectError> {
    let connections = cfg.connections.max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Client::connect(cfg.protocol, &cfg.endpoint, cfg.timeout).await?);
    }
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = cfg.total_spans.is_none().then(|| start + cfg.duration);
    let per_task_rate = cfg.rate.map(|r| r / connections as f64);

    let progress = cfg.progress.then(|| {
        let shared = Arc::clone(&shared);
        tokio::spawn(progress_loop(shared, start, cfg.total_spans))
    });

    let mut tasks = Vec::with_capacity(connections);
    for client in clients {
        let shared = Arc::clone(&shared);
        let pool = Arc::clone(&pool);
        let (total, timeout) = (cfg.total_spans, cfg.timeout);
        tasks.push(tokio::spawn(worker(
            client,
            pool,
            shared,
            start,
            deadline,
            total,
            per_task_rate,
            timeout,
        )));
    }
    let mut latency = Histogram::new();
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(r) => {
                latency.merge(&r.latency);
                first_error = first_error.or(r.first_error);
            }
            Err(e) => first_error = first_error.or(Some(format!("worker task failed: {e}"))),
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
        let _ = p.await;
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(RunReport {
        protocol: cfg.protocol,
        endpoint: cfg.endpoint,
        connections,
        target_rate: cfg.rate,
        batch_spans,
        elapsed,
        pool_build,
        requests: g(&shared.requests),
        requests_refused: g(&shared.requests_refused),
        requests_error: g(&shared.requests_error),
        spans_offered: g(&shared.offered),
        spans_accepted: g(&shared.accepted),
        spans_sent_unacknowledged: g(&shared.sent_unacked),
        spans_rejected: g(&shared.rejected),
        spans_refused: g(&shared.refused),
        spans_errored: g(&shared.errored),
        bytes_sent: g(&shared.bytes),
        latency,
        pool_requests: pool.payloads.len(),
        pool_spans: pool.spans,
        pool_traces: pool.traces,
        pool_bytes: pool.bytes,
        pool_capped: pool.capped,
        first_error,
    })
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    mut client: Client,
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    start: Instant,
    deadline: Option<Instant>,
    total: Option<u64>,
    rate: Option<f64>,
    timeout: Duration,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    if pool.payloads.is_empty() {
        return out;
    }
    let tokio_start = tokio::time::Instant::from_std(start);
    let mut sent_spans: u64 = 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed) % pool.payloads.len();
        let p = &pool.payloads[i];
        if let Some(total) = total {
            if shared.claimed.fetch_add(p.spans, Ordering::Relaxed) >= total {
                break;
            }
        }
        if let Some(r) = rate {
            // Open loop: this task's n-th span is due at n / rate seconds after the start.
            let due = tokio_start + Duration::from_secs_f64(sent_spans as f64 / r);
            if deadline.is_some_and(|d| due.into_std() >= d) {
                break;
            }
            tokio::time::sleep_until(due).await;
        }
        sent_spans += p.spans;
        let t0 = Instant::now();
        let outcome = match tokio::time::timeout(timeout, client.send(p.body.clone())).await {
            Ok(o) => o,
            Err(_) => Outcome::Error(format!("request timed out after {timeout:?}")),
        };
        out.latency
            .record(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        shared.requests.fetch_add(1, Ordering::Relaxed);
        shared.offered.fetch_add(p.spans, Ordering::Relaxed);
        shared
            .bytes
            .fetch_add(p.body.len() as u64, Ordering::Relaxed);
        match outcome {
            Outcome::Accepted { rejected } => {
                let rejected = rejected.min(p.spans);
                shared
                    .accepted
                    .fetch_add(p.spans - rejected, Ordering::Relaxed);
                shared.rejected.fetch_add(rejected, Ordering::Relaxed);
            }
            Outcome::Sent => {
                shared.sent_unacked.fetch_add(p.spans, Ordering::Relaxed);
            }
            Outcome::Refused => {
                shared.refused.fetch_add(p.spans, Ordering::Relaxed);
                shared.requests_refused.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Error(msg) => {
                shared.errored.fetch_add(p.spans, Ordering::Relaxed);
                shared.requests_error.fetch_add(1, Ordering::Relaxed);
                out.first_error.get_or_insert(msg);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    out
}

/// Redraws a `\r` status line every 500 ms on a terminal, else prints a plain line every 2 s;
/// runs until aborted.
async fn progress_loop(shared: Arc<Shared>, start: Instant, total: Option<u64>) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let mut last_offered = 0u64;
    let mut last_at = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let offered = shared.offered.load(Ordering::Relaxed);
        let now = Instant::now();
        let inst =
            (offered - last_offered) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-9);
        (last_offered, last_at) = (offered, now);
        let of_total = total.map_or(String::new(), |t| format!("/{t}"));
        let line = format!(
            "{:7.1}s  offered {offered}{of_total}  accepted {}  refused {}  errors {}  {:.0} spans/s",
            start.elapsed().as_secs_f64(),
            shared.accepted.load(Ordering::Relaxed) + shared.sent_unacked.load(Ordering::Relaxed),
            shared.refused.load(Ordering::Relaxed),
            shared.requests_error.load(Ordering::Relaxed),
            inst,
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }
}
