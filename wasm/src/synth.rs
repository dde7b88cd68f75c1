//! Synthetic traces for tests and timings: one trace of `n` spans as Jaeger JSON, a tree with
//! fan-out 4 across 8 services, children inside their parents, every 97th span failed.
//! Deterministic: the same `n` and `seed` give the same bytes.

use std::fmt::Write as _;

/// The Jaeger JSON (`{"data": [trace]}`) of one synthetic trace of `n` spans.
pub fn jaeger_json(n: usize, seed: u64) -> String {
    const FANOUT: usize = 4;
    const SERVICES: usize = 8;
    let trace_id = format!("{:016x}{:016x}", seed | 1, 0x5b8e_fff7_9803_8103u64 ^ seed);
    // (start, duration) in microseconds; a child sits inside its parent.
    let mut times: Vec<(u64, u64)> = Vec::with_capacity(n);
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    let mut out = String::with_capacity(n * 420 + 512);
    let _ = write!(out, "{{\"data\":[{{\"traceID\":\"{trace_id}\",\"spans\":[");
    for k in 0..n {
        let (start, duration) = if k == 0 {
            (1_767_225_600_000_000, 10_000_000)
        } else {
            let (ps, pd) = times[(k - 1) / FANOUT];
            let offset = next() % (pd / 2 + 1);
            let d = next() % ((pd - offset) / 2 + 1) + 1;
            (ps + offset, d.min(pd - offset))
        };
        times.push((start, duration));
        if k > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"traceID\":\"{trace_id}\",\"spanID\":\"{:016x}\",\"operationName\":\"op-{}\",\"references\":[",
            k + 1,
            k % 50
        );
        if k > 0 {
            let _ = write!(
                out,
                "{{\"refType\":\"CHILD_OF\",\"traceID\":\"{trace_id}\",\"spanID\":\"{:016x}\"}}",
                (k - 1) / FANOUT + 1
            );
        }
        let _ = write!(
            out,
            "],\"startTime\":{start},\"duration\":{duration},\"tags\":[{{\"key\":\"span.kind\",\"type\":\"string\",\"value\":\"{}\"}},{{\"key\":\"http.status_code\",\"type\":\"int64\",\"value\":{}}},{{\"key\":\"shard\",\"type\":\"int64\",\"value\":{}}}",
            if k % 2 == 0 { "server" } else { "client" },
            if k % 97 == 96 { 503 } else { 200 },
            k % 16
        );
        if k % 97 == 96 {
            out.push_str(",{\"key\":\"error\",\"type\":\"bool\",\"value\":true}");
        }
        let _ = write!(
            out,
            "],\"logs\":[],\"processID\":\"p{}\",\"warnings\":null}}",
            k % SERVICES + 1
        );
    }
    out.push_str("],\"processes\":{");
    for p in 0..SERVICES {
        if p > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\"p{}\":{{\"serviceName\":\"service-{p}\",\"tags\":[{{\"key\":\"host.name\",\"type\":\"string\",\"value\":\"host-{p}\"}}]}}",
            p + 1
        );
    }
    out.push_str("},\"warnings\":null}]}");
    out
}
