//! The Jaeger Thrift-over-HTTP receiver: `POST /api/traces` with a binary-protocol `Batch`
//! body (`application/x-thrift` or `application/vnd.apache.thrift.binary`, chunked or not),
//! answered as Jaeger's collector does (202 Accepted, 400 with a message, 413, 429/503 with
//! `Retry-After`).
//!
//! The router carries its own state, so other routes on the same port (the sampling endpoint
//! `GET /api/sampling`) are added with `Router::merge`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{header, HeaderMap, StatusCode};

use super::text_refusal;
use crate::ingest::{Ingest, IngestBatch};
use crate::receivers::read_body;

/// Name of this receiver in metrics and in [`Ingest::bad_request`].
pub const RECEIVER: &str = "jaeger_thrift_http";

/// The path Jaeger clients post batches to.
pub const TRACES_PATH: &str = "/api/traces";

const CONTENT_TYPES: [&str; 2] = [
    "application/x-thrift",
    "application/vnd.apache.thrift.binary",
];

/// Settings of the Jaeger HTTP receiver.
#[derive(Debug, Clone)]
pub struct JaegerHttpConfig {
    /// Largest accepted request body in bytes (413 above it).
    pub max_body_bytes: usize,
}

struct HttpState {
    ingest: Arc<dyn Ingest>,
    cfg: JaegerHttpConfig,
}

/// The Jaeger collector's HTTP routes: `POST /api/traces` (other methods get 405).
pub fn jaeger_http_router(ingest: Arc<dyn Ingest>, cfg: JaegerHttpConfig) -> Router {
    Router::new()
        .route(TRACES_PATH, post(post_traces))
        .with_state(Arc::new(HttpState { ingest, cfg }))
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message + "\n").into_response()
}

fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = raw.split(';').next().unwrap_or("").trim();
    if CONTENT_TYPES.iter().any(|c| media.eq_ignore_ascii_case(c)) {
        Ok(())
    } else {
        Err(format!(
            "unsupported content type {raw:?}, expected {} or {}",
            CONTENT_TYPES[0], CONTENT_TYPES[1]
        ))
    }
}

async fn post_traces(State(st): State<Arc<HttpState>>, req: Request) -> Response {
    // refused before the body is read while the pipeline would refuse any batch
    if let Err(err) = st.ingest.admit(RECEIVER) {
        return text_refusal(&err);
    }
    let batch = match read_request(&st, req).await {
        Ok(b) => b,
        Err((status, message)) => {
            st.ingest.bad_request(RECEIVER, &message);
            return text(status, message);
        }
    };
    match st.ingest.ingest(batch).await {
        Ok(outcome) if outcome.rejected > 0 => text(
            StatusCode::ACCEPTED,
            format!(
                "accepted {} spans, rejected {}: {}",
                outcome.accepted, outcome.rejected, outcome.message
            ),
        ),
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(err) => text_refusal(&err),
    }
}

async fn read_request(st: &HttpState, req: Request) -> Result<IngestBatch, (StatusCode, String)> {
    let (parts, body) = req.into_parts();
    check_content_type(&parts.headers).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let body = read_body(&parts.headers, body, st.cfg.max_body_bytes, false)
        .await
        .map_err(|e| (e.status, e.message))?;
    let decoded = spoor_jaeger::decode_http_batch(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("cannot decode thrift batch: {e}"),
        )
    })?;
    Ok(IngestBatch::from_decoded(RECEIVER, decoded))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use std::time::Duration;

    use axum::body::Body;
    use spoor_jaeger::model::{Batch, Process, Span, Tag};
    use tower::ServiceExt;

    use super::*;
    use crate::ingest::IngestError;
    use crate::receivers::testing::Recorder;

    const LIMIT: usize = 64 * 1024;

    fn batch(n: i64) -> Batch {
        Batch {
            process: Process {
                service_name: "web".into(),
                tags: vec![Tag::string("hostname", "h1")],
            },
            spans: (1..=n)
                .map(|i| Span {
                    trace_id_low: 77,
                    span_id: i,
                    operation_name: format!("op{i}"),
                    start_time: 1_000_000,
                    duration: 5,
                    tags: vec![Tag::string("span.kind", "server")],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn send(
        rec: &Arc<Recorder>,
        req: http::Request<Body>,
    ) -> (StatusCode, HeaderMap, String) {
        let router = jaeger_http_router(
            rec.clone(),
            JaegerHttpConfig {
                max_body_bytes: LIMIT,
            },
        );
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(content_type: &str, body: Body) -> http::Request<Body> {
        http::Request::post(TRACES_PATH)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap()
    }

    /// Posts `data` over a real TCP connection with `Transfer-Encoding: chunked` (7-byte
    /// chunks) and returns the raw status line.
    async fn post_chunked(rec: &Arc<Recorder>, content_type: &str, data: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = jaeger_http_router(
            rec.clone(),
            JaegerHttpConfig {
                max_body_bytes: LIMIT,
            },
        );
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!(
            "POST {TRACES_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for c in data.chunks(7) {
            req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            req.extend_from_slice(c);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        // a refused request may be answered before the whole body was written
        let _ = tcp.write_all(&req).await;
        let mut resp = Vec::new();
        let _ = tcp.read_to_end(&mut resp).await;
        server.abort();
        let text = String::from_utf8_lossy(&resp).into_owned();
        text.lines().next().unwrap_or("").to_string()
    }

    #[tokio::test]
    async fn accepts_both_content_types_and_chunked_bodies() {
        let rec = Recorder::new();
        let body = spoor_jaeger::encode_http_batch(&batch(2));
        let (s, _, _) = send(&rec, post("application/x-thrift", Body::from(body.clone()))).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let status = post_chunked(&rec, "application/vnd.apache.thrift.binary", &body).await;
        assert_eq!(status, "HTTP/1.1 202 Accepted");
        let batches = rec.batches.lock();
        assert_eq!(batches.len(), 2);
        for b in batches.iter() {
            assert_eq!(b.receiver, RECEIVER);
            let names: Vec<_> = b.spans.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["op1", "op2"]);
            assert_eq!(b.spans[0].service(), "web");
            assert_eq!(b.spans[0].kind, spoor_core::SpanKind::Server);
        }
    }

    #[tokio::test]
    async fn refusals_name_the_problem() {
        let good = spoor_jaeger::encode_http_batch(&batch(1));
        let cases: Vec<(&str, Body, StatusCode, &str)> = vec![
            (
                "application/json",
                Body::from(good.clone()),
                StatusCode::BAD_REQUEST,
                "unsupported content type \"application/json\", expected application/x-thrift or application/vnd.apache.thrift.binary\n",
            ),
            (
                "application/x-thrift",
                Body::from(good[..good.len() - 3].to_vec()),
                StatusCode::BAD_REQUEST,
                "cannot decode thrift batch: truncated input at byte 189: field header needs 1 bytes, 0 left\n",
            ),
            (
                "application/x-thrift",
                Body::from(vec![0u8; LIMIT + 1]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body exceeds the limit of 65536 bytes\n",
            ),
        ];
        for (ct, body, status, msg) in cases {
            let rec = Recorder::new();
            let (s, _, text) = send(&rec, post(ct, body)).await;
            assert_eq!((s, text.as_str()), (status, msg));
            assert_eq!(rec.bad.lock().len(), 1);
            assert!(rec.batches.lock().is_empty());
        }
    }

    #[tokio::test]
    async fn overload_is_429_with_retry_after() {
        let rec = Recorder::replying(Err(IngestError::Overloaded {
            retry_after: Duration::from_millis(1500),
        }));
        let body = spoor_jaeger::encode_http_batch(&batch(1));
        let (s, h, text) = send(&rec, post("application/x-thrift", Body::from(body))).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "2");
        assert_eq!(text, "pipeline is full, retry after 1s\n");
        let rec = Recorder::new();
        let big = vec![0u8; LIMIT + 1];
        let status = post_chunked(&rec, "application/x-thrift", &big).await;
        assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
        assert_eq!(rec.bad.lock().len(), 1);
        let get = http::Request::get(TRACES_PATH).body(Body::empty()).unwrap();
        assert_eq!(send(&rec, get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    }
}
