//! Receivers: protocol servers that decode incoming spans and hand them to [`crate::ingest`].
//!
//! This module holds what the OTLP/HTTP and OTLP/gRPC receivers share: the one mapping from
//! [`IngestError`] to HTTP status / gRPC code / retry hint, and the partial-success reply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use spoor_otlp::proto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::ingest::{Ingest, IngestError, IngestOutcome};
use crate::sampling::StrategyProvider;

pub(crate) mod grpc_codec;
pub mod jaeger_grpc;
pub mod jaeger_http;
pub mod jaeger_udp;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod sampling_http;
pub mod zipkin_http;

/// Sockets of every enabled receiver, bound before storage is opened so that a port in use
/// stops start-up at once with the flag to change.
pub struct Listeners {
    otlp_grpc: Option<TcpListener>,
    otlp_http: Option<TcpListener>,
    jaeger_compact: Option<tokio::net::UdpSocket>,
    jaeger_binary: Option<tokio::net::UdpSocket>,
    jaeger_http: Option<TcpListener>,
    jaeger_grpc: Option<TcpListener>,
    zipkin_http: Option<TcpListener>,
    sampling_http: Option<TcpListener>,
}

/// Binds a UDP socket; the error names the address and the flag that sets it.
pub async fn bind_udp(addr: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::bind(addr)
        .await
        .with_context(|| format!("cannot listen on udp {addr} (set --{flag})"))
}

async fn bind_udp_opt(
    addr: Option<SocketAddr>,
    flag: &str,
) -> anyhow::Result<Option<tokio::net::UdpSocket>> {
    match addr {
        Some(a) => bind_udp(a, flag).await.map(Some),
        None => Ok(None),
    }
}

/// Binds a TCP listener; the error names the address and the flag that sets it.
pub async fn bind_tcp(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set --{flag})"))
}

async fn bind_opt(addr: Option<SocketAddr>, flag: &str) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => bind_tcp(a, flag).await.map(Some),
        None => Ok(None),
    }
}

/// The receiver table: every receiver the daemon runs, with the flag that sets its address.
pub async fn bind_all(settings: &Settings) -> anyhow::Result<Listeners> {
    Ok(Listeners {
        otlp_grpc: bind_opt(settings.otlp_grpc, "otlp.grpc.host-port").await?,
        otlp_http: bind_opt(settings.otlp_http, "otlp.http.host-port").await?,
        jaeger_compact: bind_udp_opt(settings.jaeger_compact, "jaeger.thrift-compact.host-port")
            .await?,
        jaeger_binary: bind_udp_opt(settings.jaeger_binary, "jaeger.thrift-binary.host-port")
            .await?,
        jaeger_http: bind_opt(settings.jaeger_http, "jaeger.thrift-http.host-port").await?,
        jaeger_grpc: bind_opt(settings.jaeger_grpc, "jaeger.grpc.host-port").await?,
        zipkin_http: bind_opt(settings.zipkin_http, "zipkin.http.host-port").await?,
        sampling_http: bind_opt(settings.sampling_http, "sampling.http.host-port").await?,
    })
}

/// One line naming every enabled receiver and its address, for the start-up log.
pub fn describe(settings: &Settings) -> String {
    let all = [
        ("otlp_grpc", settings.otlp_grpc),
        ("otlp_http", settings.otlp_http),
        ("jaeger_thrift_compact", settings.jaeger_compact),
        ("jaeger_thrift_binary", settings.jaeger_binary),
        ("jaeger_thrift_http", settings.jaeger_http),
        ("jaeger_grpc", settings.jaeger_grpc),
        ("zipkin_http", settings.zipkin_http),
        ("sampling_http", settings.sampling_http),
    ];
    all.iter()
        .filter_map(|(n, a)| a.map(|a| format!("{n}={a}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Disables Nagle's algorithm on accepted connections: small replies (OTLP acks, API
/// responses) must not wait for the peer's delayed ACK.
pub fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Why a request body could not be read; every HTTP receiver answers with this status and text.
#[derive(Debug)]
pub(crate) struct BodyError {
    /// 413 for a body over the limit, 400 otherwise.
    pub status: http::StatusCode,
    /// What was wrong, for the client.
    pub message: String,
}

/// Reads a request body of at most `max` bytes (checked against `Content-Length` first, then
/// while reading) and, when `gzip`, inflates it to at most `max` bytes: one byte past the limit
/// is read to know it was crossed, so a zip bomb costs at most `max + 1` bytes.
pub(crate) async fn read_body(
    headers: &http::HeaderMap,
    body: axum::body::Body,
    max: usize,
    gzip: bool,
) -> Result<bytes::Bytes, BodyError> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    use std::io::Read;
    let too_large = |after: &str| BodyError {
        status: http::StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body {after}exceeds the limit of {max} bytes"),
    };
    let bad = |message: String| BodyError {
        status: http::StatusCode::BAD_REQUEST,
        message,
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(""));
    }
    let limit = http_limits().body_read_timeout;
    let collected = tokio::time::timeout(limit, Limited::new(body, max).collect());
    let raw = match collected.await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(too_large("")),
        Ok(Err(e)) => return Err(bad(format!("cannot read request body: {e}"))),
        Err(_) => {
            return Err(BodyError {
                status: http::StatusCode::REQUEST_TIMEOUT,
                message: format!("request body not received within {limit:?}"),
            })
        }
    };
    if !gzip {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max));
    flate2::read::GzDecoder::new(&raw[..])
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(too_large("after decompression "));
    }
    Ok(bytes::Bytes::from(out))
}

/// A future that resolves once `rx` turns true (the shutdown signal).
pub fn stopped(
    rx: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Where receivers hand what they decode and ask for strategies.
#[derive(Clone)]
pub enum Target {
    /// No tenancy: today's one pipeline and strategies.
    Single {
        /// The pipeline.
        ingest: Arc<dyn Ingest>,
        /// The strategies.
        sampling: StrategyProvider,
    },
    /// Tenancy: each request goes to the stack of its tenant, resolved by the gate.
    Tenants {
        /// Authentication and the tenants registry.
        gate: Arc<crate::tenants::Gate>,
        /// The pipeline of `--auth.udp-tenant` (`None`: the UDP receivers do not run).
        udp: Option<Arc<dyn Ingest>>,
    },
}

impl Target {
    /// An HTTP router built by `make` over the one pipeline, or over each tenant's.
    pub(crate) fn http(
        &self,
        make: impl Fn(Arc<dyn Ingest>, &StrategyProvider) -> axum::Router + Send + Sync + 'static,
    ) -> axum::Router {
        match self {
            Target::Single { ingest, sampling } => make(ingest.clone(), sampling),
            Target::Tenants { gate, .. } => crate::tenants::tenant_router(
                gate.clone(),
                move |stack| stack.ingest().map(|i| make(i, &stack.sampling)),
                None,
            ),
        }
    }

    /// A gRPC service of the method `make` builds over the one pipeline, or over each
    /// tenant's.
    pub(crate) fn grpc<M: grpc_codec::UnaryMethod>(
        &self,
        make: impl Fn(Arc<dyn Ingest>, &StrategyProvider) -> M + Send + Sync + 'static,
        max_message_bytes: usize,
    ) -> grpc_codec::UnaryServer<M> {
        match self {
            Target::Single { ingest, sampling } => {
                grpc_codec::UnaryServer::new(make(ingest.clone(), sampling), max_message_bytes)
            }
            Target::Tenants { gate, .. } => grpc_codec::UnaryServer::per_tenant(
                gate.clone(),
                move |stack| stack.ingest().map(|i| make(i, &stack.sampling)),
                max_message_bytes,
            ),
        }
    }

    /// Where spans received over Jaeger UDP go (UDP carries no token or header).
    fn udp(&self) -> Option<Arc<dyn Ingest>> {
        match self {
            Target::Single { ingest, .. } => Some(ingest.clone()),
            Target::Tenants { udp, .. } => udp.clone(),
        }
    }
}

/// Starts every bound receiver and sampling endpoint; each task ends after `stop` turns true
/// and its in-flight requests finished.
pub fn serve_all(
    listeners: Listeners,
    settings: &Settings,
    target: &Target,
    stop: &watch::Receiver<bool>,
) -> Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> {
    let mut tasks = Vec::new();
    let max = settings.otlp_max_body_bytes;
    if let Some(l) = listeners.otlp_grpc {
        let cfg = otlp_grpc::OtlpGrpcConfig {
            max_message_bytes: max,
        };
        tasks.push((
            otlp_grpc::RECEIVER,
            tokio::spawn(otlp_grpc::serve_otlp_grpc(
                l,
                target.clone(),
                cfg,
                stopped(stop),
            )),
        ));
    }
    if let Some(l) = listeners.otlp_http {
        let router = target.http(move |ingest, _| {
            otlp_http::otlp_http_router(
                ingest,
                otlp_http::OtlpHttpConfig {
                    max_body_bytes: max,
                },
            )
        });
        tasks.push((
            otlp_http::RECEIVER,
            tokio::spawn(serve_http(l, router, stop)),
        ));
    }
    for (socket, protocol) in [
        (
            listeners.jaeger_compact,
            jaeger_udp::ThriftProtocol::Compact,
        ),
        (listeners.jaeger_binary, jaeger_udp::ThriftProtocol::Binary),
    ] {
        if let (Some(s), Some(ingest)) = (socket, target.udp()) {
            tasks.push((
                protocol.receiver(),
                tokio::spawn(jaeger_udp::serve_jaeger_udp(
                    s,
                    protocol,
                    ingest,
                    stopped(stop),
                )),
            ));
        }
    }
    if let Some(l) = listeners.jaeger_http {
        let router = target.http(move |ingest, sampling| {
            jaeger_http::jaeger_http_router(
                ingest,
                jaeger_http::JaegerHttpConfig {
                    max_body_bytes: max,
                },
            )
            .merge(sampling_http::api_sampling_router(sampling.clone()))
        });
        tasks.push((
            jaeger_http::RECEIVER,
            tokio::spawn(serve_http(l, router, stop)),
        ));
    }
    if let Some(l) = listeners.jaeger_grpc {
        tasks.push((
            jaeger_grpc::RECEIVER,
            tokio::spawn(jaeger_grpc::serve_jaeger_grpc(
                l,
                target.clone(),
                jaeger_grpc::JaegerGrpcConfig {
                    max_message_bytes: max,
                },
                stopped(stop),
            )),
        ));
    }
    if let Some(l) = listeners.zipkin_http {
        let router = target.http(move |ingest, _| {
            zipkin_http::zipkin_http_router(
                ingest,
                zipkin_http::ZipkinHttpConfig {
                    max_body_bytes: max,
                },
            )
        });
        tasks.push((
            zipkin_http::RECEIVER,
            tokio::spawn(serve_http(l, router, stop)),
        ));
    }
    if let Some(l) = listeners.sampling_http {
        let router =
            target.http(|_, sampling| sampling_http::sampling_http_router(sampling.clone()));
        tasks.push(("sampling_http", tokio::spawn(serve_http(l, router, stop))));
    }
    tasks
}

pub use spoor_config::HttpLimits;

static HTTP_LIMITS: std::sync::OnceLock<HttpLimits> = std::sync::OnceLock::new();

/// Sets the limits of every HTTP listener started afterwards (once, at start-up; later calls
/// are ignored).
pub fn set_http_limits(limits: HttpLimits) {
    let _ = HTTP_LIMITS.set(limits);
}

/// The limits in force ([`HttpLimits::default`] unless [`set_http_limits`] was called).
pub fn http_limits() -> HttpLimits {
    HTTP_LIMITS.get().copied().unwrap_or_default()
}

/// Serves an axum router on `listener` (with TCP_NODELAY) until `stop`, with [`HttpLimits`]:
/// HTTP/1.1 and h2c, header read timeout, a connection cap. On `stop` it stops accepting, lets
/// every connection finish its in-flight requests (graceful shutdown) and returns.
pub fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    stop: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    serve_http_tls(listener, router, stop, true)
}

/// [`serve_http`] with the listeners' TLS (if configured) only when `use_tls` (the admin port
/// stays plain, for health checks and scrapers inside the deployment, unless
/// `--admin.http.tls.enabled`).
pub fn serve_http_tls(
    listener: TcpListener,
    router: axum::Router,
    stop: &watch::Receiver<bool>,
    use_tls: bool,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let limits = http_limits();
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let stop = stop.clone();
    async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let mut stopping = std::pin::pin!(stopped(&stop));
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = &mut stopping => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut stopping => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let mut stream = stream;
            no_delay(&mut stream);
            let (builder, router, stop) = (builder.clone(), router.clone(), stop.clone());
            let tls = if use_tls {
                listener_tls().http.clone()
            } else {
                None
            };
            tokio::spawn(async move {
                let svc = TowerToHyperService::new(router);
                match tls {
                    None => serve_connection(&builder, stream, svc, &stop).await,
                    Some(acceptor) => {
                        // The handshake counts against the header read timeout.
                        let handshake = tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        );
                        match handshake.await {
                            Ok(Ok(tls)) => serve_connection(&builder, tls, svc, &stop).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "tls handshake failed"),
                            Err(_) => tracing::debug!("tls handshake timed out"),
                        }
                    }
                }
                drop(permit);
            });
        }
        // Every connection gives its slot back once its last request is answered.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(all)).await;
        Ok(())
    }
}

/// Serves one connection until it ends, or until `stop`, then finishes its in-flight requests.
async fn serve_connection<I>(
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    io: I,
    svc: hyper_util::service::TowerToHyperService<axum::Router>,
    stop: &watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// TLS of the listeners: a rustls acceptor for the HTTP ones, tonic's settings for gRPC.
#[derive(Default)]
pub struct ListenerTls {
    /// For [`serve_http`].
    pub http: Option<tokio_rustls::TlsAcceptor>,
    /// For the gRPC servers.
    pub grpc: Option<tonic::transport::ServerTlsConfig>,
}

static LISTENER_TLS: std::sync::OnceLock<ListenerTls> = std::sync::OnceLock::new();

/// Loads the TLS files (errors name the file) and makes every listener started afterwards
/// use them; `None` keeps plain TCP. Called once at start-up.
pub fn set_listener_tls(files: Option<&crate::tls::ServerTlsFiles>) -> anyhow::Result<()> {
    let tls = match files {
        None => ListenerTls::default(),
        Some(f) => {
            let tls = crate::tls::server_tls(f)?;
            ListenerTls {
                http: Some(tokio_rustls::TlsAcceptor::from(tls.http)),
                grpc: Some(tls.grpc),
            }
        }
    };
    let _ = LISTENER_TLS.set(tls);
    Ok(())
}

/// The listeners' TLS (none unless [`set_listener_tls`] was given files).
pub fn listener_tls() -> &'static ListenerTls {
    LISTENER_TLS.get_or_init(ListenerTls::default)
}

/// A tonic server builder with the listeners' TLS, if any.
pub fn grpc_server_builder() -> anyhow::Result<tonic::transport::Server> {
    let builder = tonic::transport::Server::builder();
    match &listener_tls().grpc {
        None => Ok(builder),
        Some(cfg) => builder
            .tls_config(cfg.clone())
            .map_err(|e| anyhow::anyhow!("grpc tls: {e}")),
    }
}

/// Retry hint sent with "shutting down" refusals, so clients move to another replica or wait
/// for the restart instead of hammering this one.
pub const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Retry hint sent while storage writes fail (a full disk): the pipeline retries its write at
/// least this often, so a client coming back after it finds ingest resumed if space returned.
pub const STORAGE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How a refused batch is reported, for both protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// HTTP status code.
    pub http_status: u16,
    /// `google.rpc.Code` / gRPC status code number.
    pub rpc_code: i32,
    /// Retry hint (`Retry-After` header, `google.rpc.RetryInfo` detail).
    pub retry_after: Option<Duration>,
    /// Message for the client.
    pub message: String,
}

/// The one place where pipeline refusals become protocol status codes.
pub(crate) fn refusal(err: &IngestError) -> Refusal {
    let message = err.to_string();
    match err {
        IngestError::Overloaded { retry_after } => Refusal {
            http_status: 429,
            rpc_code: proto::rpc_code::RESOURCE_EXHAUSTED,
            retry_after: Some(*retry_after),
            message,
        },
        IngestError::ShuttingDown => Refusal {
            http_status: 503,
            rpc_code: proto::rpc_code::UNAVAILABLE,
            retry_after: Some(SHUTDOWN_RETRY_AFTER),
            message,
        },
        IngestError::Storage(_) => Refusal {
            http_status: 503,
            rpc_code: proto::rpc_code::UNAVAILABLE,
            retry_after: Some(STORAGE_RETRY_AFTER),
            message,
        },
    }
}

/// A refusal as a plain-text HTTP reply with `Retry-After` (Jaeger Thrift HTTP, Zipkin).
pub(crate) fn text_refusal(err: &IngestError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = refusal(err);
    let status =
        http::StatusCode::from_u16(r.http_status).unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = (status, r.message + "\n").into_response();
    if let Some(d) = r.retry_after {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(secs.max(1)),
        );
    }
    resp
}

/// A refusal as a gRPC status with `google.rpc.Status` details (code and `RetryInfo`).
pub(crate) fn grpc_refusal(err: &IngestError) -> tonic::Status {
    use prost::Message;
    let r = refusal(err);
    let details = proto::RpcStatus::new(r.rpc_code, r.message.clone(), r.retry_after);
    tonic::Status::with_details(
        tonic::Code::from(r.rpc_code),
        r.message,
        bytes::Bytes::from(details.encode_to_vec()),
    )
}

/// The export reply for an accepted batch: partial success when anything was rejected (or the
/// pipeline has a message for the client), empty otherwise.
pub(crate) fn export_response(outcome: &IngestOutcome) -> proto::ExportTraceServiceResponse {
    let partial = outcome.rejected > 0 || !outcome.message.is_empty();
    proto::ExportTraceServiceResponse {
        partial_success: partial.then(|| proto::ExportTracePartialSuccess {
            rejected_spans: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
            error_message: outcome.message.clone(),
        }),
    }
}

/// A recording [`crate::ingest::Ingest`] for receiver tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::ingest::{Ingest, IngestBatch, IngestError, IngestFuture, IngestOutcome};

    /// Records every batch and bad request; answers with `reply` (or an outcome computed from
    /// the batch when `reply` is `None`: all decoded spans accepted, decode rejections passed on).
    #[derive(Default)]
    pub struct Recorder {
        pub batches: Mutex<Vec<IngestBatch>>,
        pub bad: Mutex<Vec<(&'static str, String)>>,
        pub reply: Mutex<Option<Result<IngestOutcome, IngestError>>>,
        /// What `admit` answers (`None`: admitted).
        pub admit: Mutex<Option<IngestError>>,
    }

    impl Recorder {
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        pub fn replying(reply: Result<IngestOutcome, IngestError>) -> Arc<Self> {
            let r = Self::default();
            *r.reply.lock() = Some(reply);
            Arc::new(r)
        }
    }

    impl Ingest for Recorder {
        fn ingest(&self, batch: IngestBatch) -> IngestFuture<'_> {
            let reply = self.reply.lock().clone().unwrap_or_else(|| {
                Ok(IngestOutcome {
                    accepted: batch.spans.len(),
                    rejected: batch.rejected,
                    message: batch.problems.join("; "),
                })
            });
            self.batches.lock().push(batch);
            Box::pin(async move { reply })
        }

        fn admit(&self, _receiver: &'static str) -> Result<(), IngestError> {
            match self.admit.lock().clone() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }

        fn bad_request(&self, receiver: &'static str, reason: &str) {
            self.bad.lock().push((receiver, reason.to_string()));
        }
    }
}
