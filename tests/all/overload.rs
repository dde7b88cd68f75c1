//! Overload soak: measure how many spans per second the daemon accepts into sled, then offer
//! three times that for `SPOOR_SOAK_SECS` seconds (8 by default; `make soak` runs 60). Resident
//! memory must stay under `--memory.limit-mib`, excess must be refused with 429 and a
//! `Retry-After`, the admin health check must say healthy and queries must keep answering
//! throughout, and every trace acknowledged must be stored afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spoor_core::{Resource, Span, SpanId, TraceId};
use spoor_tests::{http, metric_value, Daemon};

const SPANS_PER_TRACE: u64 = 50;
/// Resident memory the daemon is given (`--memory.limit-mib`); checked against the peak.
const MEMORY_LIMIT_MIB: u64 = 160;
/// How long a query or health check may take and still count as answering.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// Senders of the capacity measurement (as fast as they can) and of the overload (paced).
const CAPACITY_SENDERS: u64 = 4;
const OVERLOAD_SENDERS: u64 = 24;
/// Placeholder trace id, replaced in the encoded request by each request's own.
const TRACE_SLOT: u128 = 0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a;

/// Placeholder start time (2029), replaced by the time of sending: searches see traces in
/// the order they came, as from real services.
const START_SLOT: u64 = 0x1a2b_3c4d_5e6f_7a8b;
/// Span duration in the template.
const DURATION: u64 = 1_000;

/// One OTLP/protobuf request of a [`SPANS_PER_TRACE`]-span trace with the placeholder id,
/// encoded once with the places of its placeholders, so the senders spend their time sending,
/// not encoding or searching (protobuf, so that the daemon's refusals are cheap and three times
/// its capacity can be offered from this machine).
struct Template {
    body: Vec<u8>,
    ids: Vec<usize>,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

fn template() -> Template {
    let resource = std::sync::Arc::new(Resource {
        service_name: "overload".into(),
        ..Default::default()
    });
    let spans: Vec<Span> = (1..=SPANS_PER_TRACE)
        .map(|s| Span {
            trace_id: TraceId(TRACE_SLOT),
            span_id: SpanId(s),
            parent_span_id: (s > 1).then(|| SpanId(s - 1)),
            name: format!("op{s}"),
            start_unix_nanos: START_SLOT,
            duration_nanos: DURATION as i64,
            resource: resource.clone(),
            ..Default::default()
        })
        .collect();
    let body = spoor_otlp::encode_proto(&spans);
    let t = Template {
        ids: positions(&body, &TRACE_SLOT.to_be_bytes()),
        starts: positions(&body, &START_SLOT.to_le_bytes()),
        ends: positions(&body, &(START_SLOT + DURATION).to_le_bytes()),
        body,
    };
    let n = SPANS_PER_TRACE as usize;
    assert_eq!(
        (t.ids.len(), t.starts.len(), t.ends.len()),
        (n, n, n),
        "every placeholder found"
    );
    t
}

/// The template with every placeholder trace id replaced by `trace` (32 hex digits) and the
/// placeholder start and end times (fixed64 in OTLP) by `now` and `now + DURATION`.
fn request_for(t: &Template, trace: &str, now: u64) -> Vec<u8> {
    let id = u128::from_str_radix(trace, 16).expect("hex trace id");
    let mut body = t.body.clone();
    for (at, with) in [
        (&t.ids, &id.to_be_bytes()[..]),
        (&t.starts, &now.to_le_bytes()[..]),
        (&t.ends, &(now + DURATION).to_le_bytes()[..]),
    ] {
        for &i in at {
            body[i..i + with.len()].copy_from_slice(with);
        }
    }
    body
}

/// Where `pattern` occurs in `bytes` (not overlapping).
fn positions(bytes: &[u8], pattern: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + pattern.len() <= bytes.len() {
        if &bytes[i..i + pattern.len()] == pattern {
            out.push(i);
            i += pattern.len();
        } else {
            i += 1;
        }
    }
    out
}

fn soak_secs() -> u64 {
    std::env::var("SPOOR_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(8)
}

/// What the senders saw.
#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<String>>,
    offered: AtomicU64,
    refused: AtomicU64,
    refused_without_hint: AtomicU64,
    /// Answers that were neither 200 nor a retryable refusal, and failed connections.
    unexpected: Mutex<Vec<String>>,
}

impl Tally {
    fn send(&self, port: u16, template: &Template, trace: String) {
        self.offered.fetch_add(1, Relaxed);
        let body = request_for(template, &trace, spoor_tests::now_nanos());
        match http(
            port,
            "POST",
            "/v1/traces",
            &[("Content-Type", "application/x-protobuf")],
            &body,
        ) {
            Ok(r) if r.status == 200 => self.acked.lock().unwrap().push(trace),
            Ok(r) if r.status == 429 || r.status == 503 => {
                self.refused.fetch_add(1, Relaxed);
                if r.header("retry-after").is_none() {
                    self.refused_without_hint.fetch_add(1, Relaxed);
                }
            }
            Ok(r) => self.unexpected.lock().unwrap().push(format!(
                "{} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
            Err(e) => self.unexpected.lock().unwrap().push(e.to_string()),
        }
    }
}

fn trace_id(sender: u64, i: u64) -> String {
    format!("{:016x}{:016x}", 0x50a6_0000 + sender, i + 1)
}

fn vm_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A tiny xorshift generator for the sample of traces checked after a long run.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn three_times_capacity_is_refused_with_a_hint_while_memory_queries_and_health_hold() {
    let dir = tempfile::tempdir().unwrap();
    let limit = MEMORY_LIMIT_MIB.to_string();
    let d = Daemon::start(&[
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "100000d",
        "--pipeline.queue-bytes",
        "1048576",
        "--memory.limit-mib",
        &limit,
    ])
    .unwrap();
    let pid = d.pid().unwrap();
    let ports = d.ports;
    let template = Arc::new(template());

    // Phase 1: capacity, as fast as the senders can go.
    let measure = Duration::from_secs(3);
    let capacity_tally = Arc::new(Tally::default());
    let started = Instant::now();
    let senders: Vec<_> = (0..CAPACITY_SENDERS)
        .map(|s| {
            let (tally, template) = (capacity_tally.clone(), template.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while started.elapsed() < measure {
                    tally.send(ports.http, &template, trace_id(s, i));
                    i += 1;
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let capacity_rps =
        capacity_tally.acked.lock().unwrap().len() as f64 / started.elapsed().as_secs_f64();
    assert!(capacity_rps > 0.0, "nothing accepted:\n{}", d.log_text());

    // Phase 2: three times that, paced, while memory, health and queries are watched.
    let secs = soak_secs();
    let run = Duration::from_secs(secs);
    let target_rps = 3.0 * capacity_rps;
    let interval = Duration::from_secs_f64(OVERLOAD_SENDERS as f64 / target_rps);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let senders: Vec<_> = (0..OVERLOAD_SENDERS)
        .map(|s| {
            let (tally, template, stop) = (tally.clone(), template.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut next =
                    Instant::now() + interval.mul_f64(s as f64 / OVERLOAD_SENDERS as f64);
                let mut i = 0;
                while !stop.load(Relaxed) {
                    let wait = next.saturating_duration_since(Instant::now());
                    std::thread::sleep(wait);
                    // 1,000,000 ids per sender and phase: disjoint from phase 1's.
                    tally.send(ports.http, &template, trace_id(s, 1_000_000 + i));
                    i += 1;
                    // Behind schedule (a slow answer): catch up, but never in a burst.
                    next = (next + interval).max(Instant::now() - interval);
                }
            })
        })
        .collect();
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Relaxed) {
                if let Some(rss) = vm_rss_bytes(pid) {
                    peak.fetch_max(rss, Relaxed);
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    // A trace acknowledged in phase 1, written long since (with periodic durability the
    // newest acknowledged ones may still wait in a batch).
    let known = capacity_tally.acked.lock().unwrap()[0].clone();
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answered = 0u64;
            let mut failures = Vec::new();
            while !stop.load(Relaxed) {
                let checks = [
                    (ports.admin, "/".to_string()),
                    (ports.query, "/api/services".to_string()),
                    (
                        ports.query,
                        "/api/traces?service=overload&limit=20&lookback=1h".to_string(),
                    ),
                    (ports.query, format!("/api/traces/{known}")),
                ];
                for (port, path) in checks {
                    let asked = Instant::now();
                    match http(port, "GET", &path, &[], b"") {
                        Ok(r) if r.status == 200 && asked.elapsed() <= ANSWER_BOUND => {
                            answered += 1
                        }
                        Ok(r) => failures.push(format!(
                            "GET {path}: {} after {:?}: {}",
                            r.status,
                            asked.elapsed(),
                            String::from_utf8_lossy(&r.body)
                        )),
                        Err(e) => failures.push(format!("GET {path}: {e}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (answered, failures)
        })
    };
    std::thread::sleep(run);
    stop.store(true, Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = sampler.join().unwrap();
    let (answered, failures) = watcher.join().unwrap();

    let offered = tally.offered.load(Relaxed);
    let refused = tally.refused.load(Relaxed);
    let acked: Vec<String> = tally.acked.lock().unwrap().clone();
    let peak = peak_rss.load(Relaxed);
    eprintln!(
        "overload: capacity {:.0} spans/s ({capacity_rps:.1} traces/s of {SPANS_PER_TRACE} spans); \
         offered {:.0} spans/s for {elapsed:.1} s ({:.1}x capacity): {} acked, {refused} refused; \
         peak RSS {} MiB of a {MEMORY_LIMIT_MIB} MiB limit ({samples} samples); {answered} queries \
         and health checks answered",
        capacity_rps * SPANS_PER_TRACE as f64,
        offered as f64 * SPANS_PER_TRACE as f64 / elapsed,
        offered as f64 / elapsed / capacity_rps,
        acked.len(),
        peak >> 20,
    );
    let unexpected = tally.unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "{} answers were neither 200 nor a retryable refusal, e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(3)]
    );
    assert!(refused > 0, "three times capacity was never refused");
    assert!(
        offered as f64 / elapsed >= 1.5 * capacity_rps,
        "the senders could not even offer 1.5 times capacity: no overload to speak of"
    );
    assert_eq!(
        tally.refused_without_hint.load(Relaxed),
        0,
        "refusals without Retry-After"
    );
    assert!(samples > 0, "resident memory was never sampled");
    assert!(
        peak <= MEMORY_LIMIT_MIB << 20,
        "peak RSS {} MiB over the {MEMORY_LIMIT_MIB} MiB limit",
        peak >> 20
    );
    assert!(
        failures.is_empty(),
        "queries or health did not answer: {failures:?}"
    );
    assert!(answered > 0, "no query was asked");

    // Everything acknowledged is stored: all of it in a short run, a random 2,000 and the
    // stored-span count in a long one.
    let all_acked: Vec<String> = capacity_tally
        .acked
        .lock()
        .unwrap()
        .iter()
        .chain(acked.iter())
        .cloned()
        .collect();
    let acked_spans = all_acked.len() as u64 * SPANS_PER_TRACE;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let written = metric_value(&d.metrics_text(), "spoor_pipeline_spans_written_total")
            .unwrap_or(0.0) as u64;
        if written >= acked_spans {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{written} spans written, {acked_spans} acknowledged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let checked: Vec<&String> = if all_acked.len() <= 10_000 {
        all_acked.iter().collect()
    } else {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..2_000)
            .map(|_| &all_acked[(xorshift(&mut x) % all_acked.len() as u64) as usize])
            .collect()
    };
    let mut missing: Vec<&String> = Vec::new();
    for ids in checked.chunks(100) {
        let query: Vec<String> = ids.iter().map(|t| format!("traceID={t}")).collect();
        let (status, v) = d
            .get_json(&format!("/api/traces?{}", query.join("&")))
            .unwrap();
        assert_eq!(status, 200, "{v}");
        let found: std::collections::HashMap<&str, usize> = v["data"]
            .as_array()
            .map(|traces| {
                traces
                    .iter()
                    .filter_map(|t| Some((t["traceID"].as_str()?, t["spans"].as_array()?.len())))
                    .collect()
            })
            .unwrap_or_default();
        missing.extend(
            ids.iter()
                .filter(|t| found.get(t.as_str()) != Some(&(SPANS_PER_TRACE as usize))),
        );
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces checked are incomplete, e.g. {:?}",
        missing.len(),
        checked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "overload: {} acknowledged traces, {} checked span for span, all stored",
        all_acked.len(),
        checked.len()
    );
}
