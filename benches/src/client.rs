//! Export clients that send pre-encoded request bodies: a tonic gRPC client with a pass-through
//! codec, a hyper 1 HTTP/1.1 client, and a UDP socket for Jaeger's agent protocol. Each client
//! holds its own connection (or socket).

use std::time::Duration;

use bytes::{BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use spoor_otlp::proto::ExportTraceServiceResponse;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::payload::Protocol;

/// The gRPC method every OTLP trace exporter calls.
pub const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP/HTTP traces path.
pub const HTTP_TRACES_PATH: &str = "/v1/traces";

/// What became of one export request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server took the request; `rejected` spans of it were refused by a partial success.
    Accepted {
        /// Spans the server reported as rejected.
        rejected: u64,
    },
    /// The server pushed back (HTTP 429, gRPC `RESOURCE_EXHAUSTED`): nothing was taken.
    Refused,
    /// Transport failure or any other error status.
    Error(String),
    /// Sent as a UDP datagram: there is no reply, so whether it was taken is unknown.
    Sent,
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint {endpoint:?}: {detail}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// The gRPC connection could not be opened.
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect {
        /// The endpoint given.
        endpoint: String,
        /// The transport error.
        detail: String,
    },
}

/// A codec whose encoder writes the given bytes verbatim (they are an already encoded
/// `ExportTraceServiceRequest`) and whose decoder reads an `ExportTraceServiceResponse`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PreEncodedCodec;

/// Encoder half of [`PreEncodedCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThroughEncoder;

/// Decoder half of [`PreEncodedCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseDecoder;

impl Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PassThroughEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PassThroughEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl Encoder for PassThroughEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("malformed export response: {e}")))
    }
}

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// One connection to the receiver.
#[derive(Debug)]
pub enum Client {
    /// gRPC over one HTTP/2 connection.
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    /// HTTP (OTLP, Jaeger Thrift or Zipkin) over one kept-alive HTTP/1.1 connection.
    Http {
        /// The client (pool of at most one idle connection).
        client: Box<HttpClient>,
        /// The full URI requests go to.
        uri: http::Uri,
        /// The body's content type.
        content_type: &'static str,
        /// Whether the answer is an OTLP export response (else any 2xx means taken).
        otlp: bool,
    },
    /// One UDP socket connected to the receiver (Jaeger `emitBatch` datagrams).
    Udp(tokio::net::UdpSocket),
}

/// The URI OTLP/HTTP requests go to: `endpoint` itself when it ends in `/v1/traces`, else
/// `endpoint` with that path appended.
pub fn http_traces_uri(endpoint: &str) -> Result<http::Uri, ConnectError> {
    http_uri(endpoint, HTTP_TRACES_PATH)
}

/// The URI HTTP requests go to: `endpoint` itself when it ends in `path`, else `endpoint`
/// with `path` appended.
pub fn http_uri(endpoint: &str, path: &str) -> Result<http::Uri, ConnectError> {
    let trimmed = endpoint.trim_end_matches('/');
    let full = if trimmed.ends_with(path) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{path}")
    };
    let uri: http::Uri =
        full.parse()
            .map_err(|e: http::uri::InvalidUri| ConnectError::Endpoint {
                endpoint: endpoint.to_string(),
                detail: e.to_string(),
            })?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(ConnectError::Endpoint {
            endpoint: endpoint.to_string(),
            detail: "expected http://host:port".into(),
        });
    }
    Ok(uri)
}

impl Client {
    /// Opens a client for `protocol` at `endpoint` (gRPC connects now, HTTP on first use; UDP
    /// binds a local socket and fixes its peer, `host:port` with an optional `udp://`).
    pub async fn connect(
        protocol: Protocol,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        match protocol {
            Protocol::OtlpGrpc => {
                let ep = tonic::transport::Endpoint::from_shared(endpoint.to_string())
                    .map_err(|e| ConnectError::Endpoint {
                        endpoint: endpoint.to_string(),
                        detail: e.to_string(),
                    })?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                let channel = ep.connect().await.map_err(|e| ConnectError::Connect {
                    endpoint: endpoint.to_string(),
                    detail: error_chain(&e),
                })?;
                Ok(Client::Grpc(tonic::client::Grpc::new(channel)))
            }
            Protocol::JaegerUdpCompact | Protocol::JaegerUdpBinary => {
                let peer = endpoint.strip_prefix("udp://").unwrap_or(endpoint);
                let addr = tokio::net::lookup_host(peer)
                    .await
                    .map_err(|e| ConnectError::Endpoint {
                        endpoint: endpoint.to_string(),
                        detail: format!("expected host:port ({e})"),
                    })?
                    .next()
                    .ok_or_else(|| ConnectError::Endpoint {
                        endpoint: endpoint.to_string(),
                        detail: "resolves to no address".into(),
                    })?;
                let local: std::net::SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let connect_err = |e: std::io::Error| ConnectError::Connect {
                    endpoint: endpoint.to_string(),
                    detail: e.to_string(),
                };
                let socket = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(connect_err)?;
                socket.connect(addr).await.map_err(connect_err)?;
                Ok(Client::Udp(socket))
            }
            Protocol::OtlpHttpProto
            | Protocol::OtlpHttpJson
            | Protocol::JaegerHttp
            | Protocol::ZipkinJson
            | Protocol::ZipkinProto => {
                let uri = http_uri(endpoint, protocol.http_path())?;
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(timeout));
                let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build(connector);
                Ok(Client::Http {
                    client: Box::new(client),
                    uri,
                    content_type: protocol.content_type(),
                    otlp: protocol.is_otlp(),
                })
            }
        }
    }

    /// Sends one pre-encoded export request and classifies the answer.
    pub async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Client::Grpc(grpc) => {
                if let Err(e) = grpc.ready().await {
                    return Outcome::Error(format!("grpc channel not ready: {}", error_chain(&e)));
                }
                let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH);
                match grpc
                    .unary(tonic::Request::new(body), path, PreEncodedCodec)
                    .await
                {
                    Ok(resp) => Outcome::Accepted {
                        rejected: rejected_of(resp.get_ref()),
                    },
                    Err(status) => grpc_status_outcome(&status),
                }
            }
            Client::Udp(socket) => match socket.send(&body).await {
                Ok(n) if n == body.len() => Outcome::Sent,
                Ok(n) => Outcome::Error(format!(
                    "udp datagram of {} bytes went out as {n} bytes",
                    body.len()
                )),
                Err(e) => Outcome::Error(format!("udp send failed: {e}")),
            },
            Client::Http {
                client,
                uri,
                content_type,
                otlp,
            } => {
                let req = http::Request::post(uri.clone())
                    .header(http::header::CONTENT_TYPE, *content_type)
                    .body(Full::new(body));
                let req = match req {
                    Ok(r) => r,
                    Err(e) => return Outcome::Error(format!("cannot build request: {e}")),
                };
                let resp = match client.request(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        return Outcome::Error(format!("http request failed: {}", error_chain(&e)))
                    }
                };
                let status = resp.status();
                let is_json = resp
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                let bytes = match resp.into_body().collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(e) => return Outcome::Error(format!("reading response body failed: {e}")),
                };
                if *otlp {
                    http_outcome(status, is_json, &bytes)
                } else {
                    plain_http_outcome(status, &bytes)
                }
            }
        }
    }
}

/// Classifies an OTLP/HTTP response.
pub fn http_outcome(status: http::StatusCode, is_json: bool, body: &[u8]) -> Outcome {
    if status == http::StatusCode::TOO_MANY_REQUESTS {
        return Outcome::Refused;
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Outcome::Error(format!("http status {}: {text}", status.as_u16()));
    }
    let rejected = if body.is_empty() {
        0
    } else if is_json {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) => json_rejected(&v),
            Err(e) => return Outcome::Error(format!("malformed json export response: {e}")),
        }
    } else {
        match ExportTraceServiceResponse::decode(body) {
            Ok(r) => rejected_of(&r),
            Err(e) => return Outcome::Error(format!("malformed protobuf export response: {e}")),
        }
    };
    Outcome::Accepted { rejected }
}

/// Classifies the answer of a receiver without partial success (Jaeger `/api/traces`,
/// Zipkin `/api/v2/spans`, which answer 202): any 2xx took every span.
pub fn plain_http_outcome(status: http::StatusCode, body: &[u8]) -> Outcome {
    if status == http::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Refused
    } else if status.is_success() {
        Outcome::Accepted { rejected: 0 }
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Outcome::Error(format!("http status {}: {text}", status.as_u16()))
    }
}

/// `partialSuccess.rejectedSpans` of a JSON export response (a string or a number; 0 if absent).
fn json_rejected(v: &serde_json::Value) -> u64 {
    let r = &v["partialSuccess"]["rejectedSpans"];
    r.as_u64()
        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn rejected_of(resp: &ExportTraceServiceResponse) -> u64 {
    resp.partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// Classifies a gRPC error status.
pub fn grpc_status_outcome(status: &tonic::Status) -> Outcome {
    match status.code() {
        tonic::Code::ResourceExhausted => Outcome::Refused,
        code => Outcome::Error(format!("grpc status {code:?}: {}", status.message())),
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let text = src.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_otlp::proto::ExportTracePartialSuccess;

    #[test]
    fn http_outcomes() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "bad".into(),
            }),
        }
        .encode_to_vec();
        let ok = http::StatusCode::OK;
        let cases: Vec<(http::StatusCode, bool, &[u8], Outcome)> = vec![
            (ok, false, b"", Outcome::Accepted { rejected: 0 }),
            (ok, false, &partial, Outcome::Accepted { rejected: 3 }),
            (ok, true, b"{}", Outcome::Accepted { rejected: 0 }),
            (
                ok,
                true,
                br#"{"partialSuccess":{"rejectedSpans":"4"}}"#,
                Outcome::Accepted { rejected: 4 },
            ),
            (
                ok,
                true,
                br#"{"partialSuccess":{"rejectedSpans":5}}"#,
                Outcome::Accepted { rejected: 5 },
            ),
            (
                http::StatusCode::TOO_MANY_REQUESTS,
                false,
                b"",
                Outcome::Refused,
            ),
            (
                http::StatusCode::BAD_REQUEST,
                true,
                b"nope",
                Outcome::Error("http status 400: nope".into()),
            ),
        ];
        for (status, json, body, want) in cases {
            assert_eq!(
                http_outcome(status, json, body),
                want,
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(
            matches!(http_outcome(ok, true, b"{", ), Outcome::Error(m) if m.starts_with("malformed json"))
        );
    }

    #[test]
    fn grpc_outcomes() {
        assert_eq!(
            grpc_status_outcome(&tonic::Status::resource_exhausted("full")),
            Outcome::Refused
        );
        assert_eq!(
            grpc_status_outcome(&tonic::Status::unavailable("down")),
            Outcome::Error("grpc status Unavailable: down".into())
        );
    }

    #[test]
    fn plain_http_outcomes() {
        let cases = [
            (202, "", Outcome::Accepted { rejected: 0 }),
            (200, "ok", Outcome::Accepted { rejected: 0 }),
            (429, "", Outcome::Refused),
            (
                400,
                "bad thrift",
                Outcome::Error("http status 400: bad thrift".into()),
            ),
        ];
        for (code, body, want) in cases {
            let status = http::StatusCode::from_u16(code).unwrap();
            assert_eq!(plain_http_outcome(status, body.as_bytes()), want, "{code}");
        }
    }

    #[test]
    fn receiver_uris() {
        let cases = [
            (
                Protocol::JaegerHttp,
                "http://h:14268",
                "http://h:14268/api/traces",
            ),
            (
                Protocol::JaegerHttp,
                "http://h:14268/api/traces",
                "http://h:14268/api/traces",
            ),
            (
                Protocol::ZipkinJson,
                "http://h:9411/",
                "http://h:9411/api/v2/spans",
            ),
            (
                Protocol::ZipkinProto,
                Protocol::ZipkinProto.default_endpoint(),
                "http://127.0.0.1:9411/api/v2/spans",
            ),
        ];
        for (protocol, endpoint, want) in cases {
            let uri = http_uri(endpoint, protocol.http_path()).unwrap();
            assert_eq!(uri.to_string(), want);
        }
    }

    #[test]
    fn traces_uri() {
        let cases = [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            ("http://h:1/v1/traces", "http://h:1/v1/traces"),
            ("http://h:1/otlp", "http://h:1/otlp/v1/traces"),
        ];
        for (endpoint, want) in cases {
            assert_eq!(http_traces_uri(endpoint).unwrap().to_string(), want);
        }
        assert_eq!(
            http_traces_uri("https://h:1").unwrap_err().to_string(),
            "invalid endpoint \"https://h:1\": expected http://host:port"
        );
    }
}
