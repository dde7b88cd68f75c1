//! Crash safety under load: with `--durability sync`, the daemon is killed with SIGKILL at 20
//! random moments while three clients keep sending; after every restart on the same data, each
//! span a client was told was accepted (HTTP 200) must be queryable. Requests cut off by the
//! kill got no answer, so they promise nothing either way. With the default `periodic`
//! durability, what a kill loses must have been acknowledged within the stated window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_tests::{http, Daemon};

/// Kills per run: 20, or `SPOOR_CRASH_KILLS` (`make soak` runs more).
fn kills() -> usize {
    std::env::var("SPOOR_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(20)
}
const CLIENTS: u64 = 3;
const SPANS_PER_TRACE: u64 = 3;

/// A small xorshift generator; its seed is printed so a failing run can be replayed with
/// `SPOOR_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One OTLP/JSON request holding one trace of [`SPANS_PER_TRACE`] spans with a 200-byte
/// attribute each.
pub(crate) fn trace_body(trace: &str, now: u64) -> String {
    chain_trace_json(
        "crashy",
        trace,
        SPANS_PER_TRACE,
        now,
        Some(&"x".repeat(200)),
    )
}

/// One OTLP/JSON request holding one trace of `spans` spans of `service`, each the child of the
/// one before, starting just after `now`; with a `payload` attribute when given.
pub(crate) fn chain_trace_json(
    service: &str,
    trace: &str,
    spans: u64,
    now: u64,
    payload: Option<&str>,
) -> String {
    let attrs = payload.map_or(String::new(), |p| {
        format!(r#","attributes":[{{"key":"payload","value":{{"stringValue":"{p}"}}}}]"#)
    });
    let spans: Vec<String> = (1..=spans)
        .map(|s| {
            let parent = if s == 1 {
                String::new()
            } else {
                format!(r#","parentSpanId":"{:016x}""#, s - 1)
            };
            format!(
                r#"{{"traceId":"{trace}","spanId":"{s:016x}"{parent},"name":"op{s}","startTimeUnixNano":"{}","endTimeUnixNano":"{}"{attrs}}}"#,
                now + s,
                now + 1_000 + s,
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

pub(crate) fn stored_spans(d: &Daemon, trace: &str) -> usize {
    match d.get_json(&format!("/api/traces/{trace}")) {
        Ok((200, v)) => v["data"][0]["spans"].as_array().map_or(0, Vec::len),
        _ => 0,
    }
}

#[test]
fn acknowledged_spans_survive_twenty_kill_9_under_load() {
    let seed = std::env::var("SPOOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (SPOOR_CRASH_SEED={seed} replays the kill moments)");
    let mut rng = Rng(seed);
    let kills = kills();
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
    let now = spoor_tests::now_nanos();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut d = Daemon::start(&args).unwrap();
    let ports = d.ports;
    let mut cut_off = 0usize;
    let mut next_trace = 0u64;
    for round in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (stop, acked) = (stop.clone(), acked.clone());
                // Disjoint trace ids per round and client.
                let first = next_trace + c * 1_000_000;
                std::thread::spawn(move || {
                    let mut unanswered = 0usize;
                    let mut i = first;
                    while !stop.load(Ordering::Relaxed) {
                        let trace = format!("{:032x}", 0xc0de_0000_0000u64 + i);
                        i += 1;
                        let body = trace_body(&trace, now);
                        match http(
                            ports.http,
                            "POST",
                            "/v1/traces",
                            &[("Content-Type", "application/json")],
                            body.as_bytes(),
                        ) {
                            Ok(r) if r.status == 200 => acked.lock().unwrap().push(trace),
                            Ok(r) => panic!(
                                "round {round}: POST answered {} {}",
                                r.status,
                                String::from_utf8_lossy(&r.body)
                            ),
                            // The daemon is gone (killed mid-request): no promise was made.
                            Err(_) => {
                                unanswered += 1;
                                break;
                            }
                        }
                    }
                    unanswered
                })
            })
            .collect();
        next_trace += CLIENTS * 1_000_000;
        // A random moment: from right after start-up to well into sustained sending.
        std::thread::sleep(Duration::from_millis(20 + rng.below(480)));
        d.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            cut_off += c.join().expect("client thread");
        }
        d = Daemon::start_on(ports, &args).unwrap();
        // Everything acknowledged so far, across all earlier crashes, is still there.
        let acked_now = acked.lock().unwrap().clone();
        let missing: Vec<&String> = acked_now
            .iter()
            .filter(|t| stored_spans(&d, t) != SPANS_PER_TRACE as usize)
            .collect();
        assert!(
            missing.is_empty(),
            "after kill {} (seed {seed}): {} of {} acknowledged traces incomplete, e.g. {:?}\n{}",
            round + 1,
            missing.len(),
            acked_now.len(),
            &missing[..missing.len().min(5)],
            d.log_text()
        );
        // Start-up found nothing damaged to skip (a crash may only leave unindexed bytes).
        let log = d.log_text();
        assert!(
            !log.contains("corrupt") && !log.contains("unreadable"),
            "after kill {}: {log}",
            round + 1
        );
    }
    let total = acked.lock().unwrap().len();
    eprintln!("{kills} kills: {total} traces acknowledged and found, {cut_off} requests cut off");
    assert!(
        total >= kills * 5,
        "too little load to mean anything: {total} acknowledged traces"
    );
}

/// The window the README and RELIABILITY.md state for `--durability periodic`: block files are
/// synced every second and sled flushes its log every second, so a crash loses at most what
/// was acknowledged in about the last two seconds (plus scheduling slack on a loaded machine).
const PERIODIC_WINDOW: Duration = Duration::from_millis(3_000);

#[test]
fn periodic_durability_loses_only_the_last_moments() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "100000d",
    ];
    let now = spoor_tests::now_nanos();
    let mut d = Daemon::start(&args).unwrap();
    let ports = d.ports;
    let mut worst = Duration::ZERO;
    let mut lost_total = 0usize;
    let mut acked_total = 0usize;
    for round in 0..3u64 {
        // One client sends for 4 s (longer than the window), recording when each was acked.
        let mut acked: Vec<(String, std::time::Instant)> = Vec::new();
        let until = std::time::Instant::now() + Duration::from_millis(4_000);
        let mut i = 0u64;
        while std::time::Instant::now() < until {
            let trace = format!("{:032x}", 0xfeed_0000_0000u64 + round * 1_000_000 + i);
            i += 1;
            let r = http(
                ports.http,
                "POST",
                "/v1/traces",
                &[("Content-Type", "application/json")],
                trace_body(&trace, now).as_bytes(),
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            acked.push((trace, std::time::Instant::now()));
            // A steady trickle: enough to cover the window densely, few enough to check all.
            std::thread::sleep(Duration::from_millis(3));
        }
        let killed = std::time::Instant::now();
        d.kill();
        d = Daemon::start_on(ports, &args).unwrap();
        for (trace, at) in &acked {
            if stored_spans(&d, trace) != SPANS_PER_TRACE as usize {
                lost_total += 1;
                worst = worst.max(killed - *at);
            }
        }
        acked_total += acked.len();
    }
    eprintln!(
        "periodic: {lost_total} of {acked_total} acknowledged traces lost over 3 kills; oldest lost was acknowledged {worst:?} before the kill"
    );
    assert!(
        worst <= PERIODIC_WINDOW,
        "a trace acknowledged {worst:?} before kill -9 was lost (window {PERIODIC_WINDOW:?})"
    );
}
