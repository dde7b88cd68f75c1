//! The load run against fake receivers on 127.0.0.1: a tonic gRPC server and a minimal
//! HTTP/1.1 server, each refusing one request and rejecting one span of every other, so the
//! run's counters can be checked exactly; and a UDP socket decoding Jaeger datagrams.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use spoor_bench::gen::{GenConfig, Generator};
use spoor_bench::payload::{Pool, Protocol};
use spoor_bench::run::{run, RunConfig, RunReport};
use spoor_otlp::proto::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which request (0-based, in arrival order) the fake servers refuse.
const REFUSED_REQUEST: u64 = 3;

/// What a fake server saw.
#[derive(Debug, Default)]
struct Seen {
    requests: AtomicU64,
    spans: AtomicU64,
}

impl Seen {
    /// Counts a request; returns `None` to refuse it, else the spans to reject (1).
    fn take(&self, spans: usize) -> Option<i64> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        self.spans.fetch_add(spans as u64, Ordering::SeqCst);
        (n != REFUSED_REQUEST).then_some(1)
    }
}

fn partial(rejected: i64) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: "one bad span".into(),
        }),
    }
}

fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

// ---- gRPC -------------------------------------------------------------------------------

#[derive(Clone)]
struct FakeTraceService(Arc<Seen>);

impl tonic::server::NamedService for FakeTraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<ExportTraceServiceRequest> for FakeTraceService {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        std::future::ready(match self.0.take(span_count(request.get_ref())) {
            Some(rejected) => Ok(tonic::Response::new(partial(rejected))),
            None => Err(tonic::Status::resource_exhausted("queue full")),
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for FakeTraceService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let svc = self.clone();
        Box::pin(async move {
            if req.uri().path() != spoor_bench::client::GRPC_EXPORT_PATH {
                return Ok(tonic::Status::unimplemented(req.uri().path().to_string()).into_http());
            }
            let codec = tonic_prost::ProstCodec::<
                ExportTraceServiceResponse,
                ExportTraceServiceRequest,
            >::default();
            Ok(tonic::server::Grpc::new(codec).unary(svc, req).await)
        })
    }
}

async fn grpc_server() -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let svc = FakeTraceService(Arc::clone(&seen));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming),
    );
    (format!("http://{addr}"), seen)
}

// ---- HTTP/1.1 ---------------------------------------------------------------------------

/// Serves keep-alive HTTP/1.1 POSTs of OTLP bodies until the client hangs up.
async fn http_conn(mut sock: TcpStream, seen: Arc<Seen>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let len: usize = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let json = header("content-type:").is_some_and(|v| v.starts_with("application/json"));
        assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
        let decoded = if json {
            spoor_otlp::decode_json(&body)
        } else {
            spoor_otlp::decode_proto(&body)
        };
        let spans = decoded
            .expect("the load generator sends valid bodies")
            .spans
            .len();
        let (status, resp_body, ctype) = match seen.take(spans) {
            None => ("429 Too Many Requests", Vec::new(), "text/plain"),
            Some(r) if json => (
                "200 OK",
                spoor_otlp::json::encode_export_response(&partial(r))
                    .to_string()
                    .into_bytes(),
                "application/json",
            ),
            Some(r) => (
                "200 OK",
                partial(r).encode_to_vec(),
                "application/x-protobuf",
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
            resp_body.len()
        );
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(&resp_body).await.is_err()
        {
            return;
        }
    }
}

async fn http_server() -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(http_conn(sock, Arc::clone(&s)));
        }
    });
    (format!("http://{addr}"), seen)
}

// ---- the runs ---------------------------------------------------------------------------

async fn total_run(protocol: Protocol, endpoint: String) -> RunReport {
    // 10 requests of 10 spans.
    let mut gen = Generator::new(GenConfig {
        spans_per_trace: 5,
        ..GenConfig::default()
    })
    .unwrap();
    let pool = Pool::build(&mut gen, protocol, 10, 100, u64::MAX);
    let cfg = RunConfig {
        protocol,
        endpoint,
        connections: 3,
        rate: None,
        duration: Duration::from_secs(60),
        total_spans: Some(100),
        timeout: Duration::from_secs(10),
        progress: false,
    };
    run(cfg, Arc::new(pool), 10, Duration::ZERO).await.unwrap()
}

fn check_exact(r: &RunReport, seen: &Seen) {
    assert_eq!(r.first_error, None);
    assert_eq!(
        (r.requests, r.requests_refused, r.requests_error),
        (10, 1, 0),
        "requests, refused, failed"
    );
    assert_eq!(
        (
            r.spans_offered,
            r.spans_accepted,
            r.spans_rejected,
            r.spans_refused,
            r.spans_errored
        ),
        (100, 81, 9, 10, 0),
        "offered, accepted, rejected, refused, errored"
    );
    assert_eq!(r.latency.count(), 10);
    assert_eq!(r.pool_wraps(), 0);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 10);
    assert_eq!(seen.spans.load(Ordering::SeqCst), 100);
    let json = r.to_json();
    assert_eq!(json["spans_accepted"], 81);
    assert_eq!(json["requests_ok"], 9);
    assert_eq!(json["pool"]["trace_ids_repeated"], false);
    assert!(json["latency_us"]["p99"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_run_counts_exactly() {
    let (endpoint, seen) = grpc_server().await;
    let r = total_run(Protocol::OtlpGrpc, endpoint).await;
    check_exact(&r, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proto_run_counts_exactly() {
    let (endpoint, seen) = http_server().await;
    let r = total_run(Protocol::OtlpHttpProto, endpoint).await;
    check_exact(&r, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_run_counts_exactly() {
    let (endpoint, seen) = http_server().await;
    let r = total_run(Protocol::OtlpHttpJson, endpoint).await;
    check_exact(&r, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_duration_run_wraps_the_pool() {
    let (endpoint, seen) = http_server().await;
    let mut gen = Generator::new(GenConfig {
        spans_per_trace: 5,
        ..GenConfig::default()
    })
    .unwrap();
    // 2 requests of 10 spans, sent at 200 spans/s for 0.5 s: about 10 requests, so the pool
    // wraps and the report says so.
    let pool = Pool::build(&mut gen, Protocol::OtlpHttpProto, 10, 20, u64::MAX);
    let cfg = RunConfig {
        protocol: Protocol::OtlpHttpProto,
        endpoint,
        connections: 2,
        rate: Some(200.0),
        duration: Duration::from_millis(500),
        total_spans: None,
        timeout: Duration::from_secs(10),
        progress: false,
    };
    let r = run(cfg, Arc::new(pool), 10, Duration::ZERO).await.unwrap();
    assert!(
        (8..=12).contains(&r.requests),
        "requests at 200 spans/s for 0.5 s: {}",
        r.requests
    );
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
    assert!(r.pool_wraps() >= 3);
    assert_eq!(r.to_json()["pool"]["trace_ids_repeated"], true);
    assert_eq!(seen.requests.load(Ordering::SeqCst), r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_receiver_is_an_error_not_a_hang() {
    // Bind and drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err =
        spoor_bench::client::Client::connect(Protocol::OtlpGrpc, &endpoint, Duration::from_secs(2))
            .await
            .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {endpoint}")),
        "{err}"
    );
    let r = total_run(Protocol::OtlpHttpProto, endpoint).await;
    assert_eq!(
        (
            r.requests,
            r.requests_error,
            r.spans_errored,
            r.spans_accepted
        ),
        (10, 10, 100, 0)
    );
    assert!(r.first_error.unwrap().starts_with("http request failed"));
}

/// A UDP socket on 127.0.0.1 that decodes every datagram as a Jaeger `emitBatch` and counts
/// the spans and the trace ids it read.
async fn udp_receiver(thrift: spoor_jaeger::Protocol) -> (String, Arc<Seen>, Arc<AtomicU64>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let endpoint = socket.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let undecodable = Arc::new(AtomicU64::new(0));
    let (s, u) = (Arc::clone(&seen), Arc::clone(&undecodable));
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok(n) = socket.recv(&mut buf).await else {
                return;
            };
            match spoor_jaeger::decode_emit_batch(&buf[..n], thrift) {
                Ok(d) if d.rejected == 0 => {
                    s.take(d.spans.len());
                }
                _ => {
                    u.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    (endpoint, seen, undecodable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_run_reaches_a_socket_receiver() {
    for (protocol, thrift) in [
        (Protocol::JaegerUdpCompact, spoor_jaeger::Protocol::Compact),
        (Protocol::JaegerUdpBinary, spoor_jaeger::Protocol::Binary),
    ] {
        let name = protocol.name();
        let (endpoint, seen, undecodable) = udp_receiver(thrift).await;
        let mut gen = Generator::new(GenConfig {
            spans_per_trace: 5,
            ..GenConfig::default()
        })
        .unwrap();
        let pool = Pool::build(&mut gen, protocol, 10, 100, u64::MAX);
        // Jaeger sends one datagram per service of each batch
        assert!(pool.payloads.len() > 10, "{name}");
        let cfg = RunConfig {
            protocol,
            endpoint: format!("udp://{endpoint}"),
            connections: 2,
            // paced, so the loopback socket buffer never overflows
            rate: Some(5_000.0),
            duration: Duration::from_secs(60),
            total_spans: Some(100),
            timeout: Duration::from_secs(10),
            progress: false,
        };
        let r = run(cfg, Arc::new(pool), 10, Duration::ZERO).await.unwrap();
        assert_eq!(r.first_error, None, "{name}");
        assert_eq!(r.requests as usize, r.pool_requests, "{name}");
        assert_eq!(
            (
                r.spans_offered,
                r.spans_sent_unacknowledged,
                r.spans_accepted
            ),
            (100, 100, 0),
            "{name}: offered, sent, accepted"
        );
        assert!(!r.accepted_known());
        let json = r.to_json();
        assert_eq!(json["spans_accepted"], serde_json::Value::Null, "{name}");
        assert_eq!(json["spans_sent"], 100, "{name}");
        assert!(r.to_table().contains("unknown: UDP has no reply"), "{name}");
        // datagrams are in flight after the last send: wait for the receiver to read them
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.spans.load(Ordering::SeqCst) < 100 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(undecodable.load(Ordering::SeqCst), 0, "{name}");
        assert_eq!(seen.spans.load(Ordering::SeqCst), 100, "{name}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), r.requests, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_endpoint_must_be_host_port() {
    let err = spoor_bench::client::Client::connect(
        Protocol::JaegerUdpCompact,
        "not an address",
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid endpoint \"not an address\": expected host:port"),
        "{err}"
    );
}
