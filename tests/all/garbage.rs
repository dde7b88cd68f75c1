//! Garbage, truncated input and the wrong protocol on every port of a running daemon: each is
//! refused or counted, nothing crashes or stalls, and what was stored before stays readable.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use spoor_tests::{http, Daemon};

use crate::golden::{fixture_json, fixture_request, TRACE_A};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes raw bytes to a TCP port and reads whatever comes back until the peer closes or 2 s
/// pass; the daemon may answer or hang up, but must not stall forever or die.
fn raw_tcp(port: u16, bytes: &[u8]) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

fn metric(d: &Daemon, line_prefix: &str) -> u64 {
    let body = http(d.ports.admin, "GET", "/metrics", &[], b"")
        .unwrap()
        .body;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn every_port_survives_garbage_and_keeps_what_it_stored() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200);
    d.wait_json(&format!("/api/traces/{TRACE_A}"), |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 4)
    })
    .unwrap();
    let p = d.ports;

    // Raw TCP noise and plain HTTP/1 on every TCP port, including the gRPC ones.
    for port in [
        p.grpc,
        p.http,
        p.query,
        p.admin,
        p.jaeger_http,
        p.jaeger_grpc,
        p.zipkin,
    ] {
        for seed in 1..4 {
            raw_tcp(port, &noise(seed, 4096));
        }
        raw_tcp(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        raw_tcp(
            port,
            b"POST /v1/traces HTTP/1.1\r\nContent-Length: 100\r\n\r\ntruncated",
        );
    }

    // Valid HTTP carrying garbage or the wrong protocol to each HTTP receiver.
    let otlp_proto = {
        use prost::Message;
        fixture_request().encode_to_vec()
    };
    let cases: [(u16, &str, &str, Vec<u8>, u16); 6] = [
        (
            p.http,
            "/v1/traces",
            "application/x-protobuf",
            noise(7, 2000),
            400,
        ),
        (
            p.http,
            "/v1/traces",
            "application/json",
            b"[1,2,".to_vec(),
            400,
        ),
        (
            p.http,
            "/v1/traces",
            "application/x-protobuf",
            otlp_proto[..otlp_proto.len() / 2].to_vec(),
            400,
        ),
        (
            p.jaeger_http,
            "/api/traces",
            "application/x-thrift",
            noise(8, 2000),
            400,
        ),
        (
            p.jaeger_http,
            "/api/traces",
            "application/x-thrift",
            otlp_proto.clone(),
            400,
        ),
        (
            p.zipkin,
            "/api/v2/spans",
            "application/json",
            b"{\"not\": \"a list\"}".to_vec(),
            400,
        ),
    ];
    for (port, path, ctype, body, want) in cases {
        let r = http(port, "POST", path, &[("Content-Type", ctype)], &body).unwrap();
        assert_eq!(
            r.status,
            want,
            "{path} on {port}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.body.is_empty(), "{path}: an error names the problem");
    }

    // UDP: noise, truncated and wrong-protocol datagrams, and one at the size limit.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for port in [p.jaeger_compact, p.jaeger_binary] {
        for seed in 10..20 {
            udp.send_to(
                &noise(seed, 1 + (seed as usize * 97) % 3000),
                ("127.0.0.1", port),
            )
            .unwrap();
        }
        udp.send_to(&otlp_proto, ("127.0.0.1", port)).unwrap();
        udp.send_to(&noise(99, 65_000), ("127.0.0.1", port))
            .unwrap();
    }
    // Over the 65,000-byte limit: the largest datagram loopback carries.
    let _ = udp.send_to(&noise(100, 65_507), ("127.0.0.1", p.jaeger_compact));

    // Every undecodable datagram is counted (13 per port; the oversized one may be cut by the
    // kernel before it reaches us, but then it is counted as garbage too).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let compact = metric(
            &d,
            "spoor_receiver_bad_requests_total{receiver=\"jaeger_thrift_compact\"}",
        );
        let binary = metric(
            &d,
            "spoor_receiver_bad_requests_total{receiver=\"jaeger_thrift_binary\"}",
        );
        if compact >= 12 && binary >= 12 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "udp garbage not counted: compact {compact}, binary {binary}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        metric(
            &d,
            "spoor_receiver_bad_requests_total{receiver=\"otlp_http\"}"
        ) >= 3
    );

    // Still healthy, still serving what it had, still ingesting.
    assert_eq!(http(p.admin, "GET", "/", &[], b"").unwrap().status, 200);
    let (status, v) = d.get_json(&format!("/api/traces/{TRACE_A}")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 4);
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200);
    d.wait_json(&format!("/api/traces/{TRACE_A}"), |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 8)
    })
    .unwrap();
}
