//! The OTLP/HTTP trace receiver: `POST /v1/traces` with protobuf or JSON bodies, optionally
//! gzip-compressed, answered as the OTLP specification says (same encoding as the request,
//! `google.rpc.Status` error bodies, partial success, 429/503 with `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use prost::Message;
use spoor_otlp::{json, proto};

use super::{export_response, refusal};
use crate::ingest::{Ingest, IngestBatch};
use crate::receivers::read_body;

/// Name of this receiver in metrics and in [`Ingest::bad_request`].
pub const RECEIVER: &str = "otlp_http";

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Settings of the OTLP/HTTP receiver.
#[derive(Debug, Clone)]
pub struct OtlpHttpConfig {
    /// Largest accepted request body in bytes; applies to the body as sent (compressed) and
    /// after gunzip, so a small gzip bomb cannot expand past it.
    pub max_body_bytes: usize,
}

struct HttpState {
    ingest: Arc<dyn Ingest>,
    cfg: OtlpHttpConfig,
}

/// The OTLP/HTTP trace routes: `POST /v1/traces` (other methods get 405).
pub fn otlp_http_router(ingest: Arc<dyn Ingest>, cfg: OtlpHttpConfig) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .with_state(Arc::new(HttpState { ingest, cfg }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }
}

/// The media type of the request, or the unsupported value.
fn request_format(headers: &HeaderMap) -> Result<Format, String> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let raw = raw.unwrap_or_default();
    let media = raw.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Format::Protobuf)
    } else if media.eq_ignore_ascii_case(JSON) {
        Ok(Format::Json)
    } else {
        Err(format!(
            "unsupported content type {raw:?}, expected {PROTOBUF} or {JSON}"
        ))
    }
}

/// Whether the body is gzip-compressed, or the unsupported encoding.
fn is_gzip(headers: &HeaderMap) -> Result<bool, String> {
    let mut gzip = false;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for enc in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") {
                if gzip {
                    return Err("unsupported content encoding \"gzip, gzip\"".to_string());
                }
                gzip = true;
            } else if !enc.eq_ignore_ascii_case("identity") {
                return Err(format!(
                    "unsupported content encoding {enc:?}, expected gzip or identity"
                ));
            }
        }
    }
    Ok(gzip)
}

/// An error reply: plain text when the encoding is unknown, else a `google.rpc.Status`.
fn status_reply(
    format: Option<Format>,
    status: StatusCode,
    rpc_code: i32,
    message: &str,
    retry_after: Option<Duration>,
) -> Response {
    let mut resp = match format {
        None => (status, message.to_string()).into_response(),
        Some(f) => {
            let st = proto::RpcStatus::new(rpc_code, message, retry_after);
            encoded(f, status, st.encode_to_vec(), || {
                json::encode_rpc_status(&st)
            })
        }
    };
    if let Some(d) = retry_after {
        // Whole seconds, rounded up so that a sub-second hint still makes the client wait.
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    resp
}

fn encoded(
    format: Format,
    status: StatusCode,
    proto_bytes: Vec<u8>,
    json: impl FnOnce() -> serde_json::Value,
) -> Response {
    let body = match format {
        Format::Protobuf => proto_bytes,
        Format::Json => json().to_string().into_bytes(),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

/// Why a request was refused before it produced spans.
struct Refused {
    format: Option<Format>,
    status: StatusCode,
    message: String,
}

impl Refused {
    fn new(format: Option<Format>, status: StatusCode, message: String) -> Self {
        Refused {
            format,
            status,
            message,
        }
    }
}

fn refused_reply(format: Option<Format>, err: &crate::ingest::IngestError) -> Response {
    let r = refusal(err);
    let status = StatusCode::from_u16(r.http_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    status_reply(format, status, r.rpc_code, &r.message, r.retry_after)
}

async fn export(State(st): State<Arc<HttpState>>, req: Request) -> Response {
    // refused before the body is read while the pipeline would refuse any batch
    if let Err(err) = st.ingest.admit(RECEIVER) {
        return refused_reply(request_format(req.headers()).ok(), &err);
    }
    match read_request(&st, req).await {
        Ok((format, batch)) => match st.ingest.ingest(batch).await {
            Ok(outcome) => {
                let resp = export_response(&outcome);
                encoded(format, StatusCode::OK, resp.encode_to_vec(), || {
                    json::encode_export_response(&resp)
                })
            }
            Err(err) => refused_reply(Some(format), &err),
        },
        Err(r) => {
            st.ingest.bad_request(RECEIVER, &r.message);
            status_reply(
                r.format,
                r.status,
                proto::rpc_code::INVALID_ARGUMENT,
                &r.message,
                None,
            )
        }
    }
}

/// Checks headers, reads (and gunzips) the body within the limit and decodes it.
async fn read_request(st: &HttpState, req: Request) -> Result<(Format, IngestBatch), Refused> {
    let (parts, body) = req.into_parts();
    let format = request_format(&parts.headers)
        .map_err(|m| Refused::new(None, StatusCode::UNSUPPORTED_MEDIA_TYPE, m))?;
    let f = Some(format);
    let gzip = is_gzip(&parts.headers)
        .map_err(|m| Refused::new(f, StatusCode::UNSUPPORTED_MEDIA_TYPE, m))?;
    let body = read_body(&parts.headers, body, st.cfg.max_body_bytes, gzip)
        .await
        .map_err(|e| Refused::new(f, e.status, e.message))?;
    let decoded = match format {
        Format::Protobuf => spoor_otlp::decode_proto(&body),
        Format::Json => spoor_otlp::decode_json(&body),
    }
    .map_err(|e| Refused::new(f, StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((format, IngestBatch::from_decoded(RECEIVER, decoded)))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use std::io::Write;

    use spoor_core::{Span, SpanId, TraceId};
    use tower::ServiceExt;

    use super::*;
    use crate::ingest::{IngestError, IngestOutcome};
    use crate::receivers::testing::Recorder;

    const LIMIT: usize = 64 * 1024;

    fn span(id: u64) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(id),
            name: format!("op{id}"),
            ..Default::default()
        }
    }

    /// One good span and one with a 7-byte span id.
    fn request_with_a_bad_span() -> proto::ExportTraceServiceRequest {
        let mut req = spoor_otlp::spans_to_request(&[span(1), span(2)]);
        req.resource_spans[1].scope_spans[0].spans[0].span_id.pop();
        req
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: header::HeaderName) -> &str {
            self.headers
                .get(name)
                .map(|v| v.to_str().unwrap())
                .unwrap_or("")
        }
        fn rpc_status(&self) -> proto::RpcStatus {
            proto::RpcStatus::decode(self.body.as_slice()).unwrap()
        }
        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap()
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    async fn call(
        ingest: Arc<Recorder>,
        method: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let router = otlp_http_router(
            ingest,
            OtlpHttpConfig {
                max_body_bytes: LIMIT,
            },
        );
        let mut req = http::Request::builder().method(method).uri("/v1/traces");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    #[tokio::test]
    async fn protobuf_partial_success() {
        let rec = Recorder::new();
        let body = request_with_a_bad_span().encode_to_vec();
        let r = call(rec.clone(), "POST", &[("content-type", PROTOBUF)], body).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header(header::CONTENT_TYPE), PROTOBUF);
        let resp = proto::ExportTraceServiceResponse::decode(r.body.as_slice()).unwrap();
        let ps = resp.partial_success.unwrap();
        assert_eq!(ps.rejected_spans, 1);
        assert_eq!(
            ps.error_message,
            "resource_spans[1].scope_spans[0].spans[0]: span_id is 7 bytes, expected 8"
        );
        let batches = rec.batches.lock();
        assert_eq!(batches.len(), 1);
        assert_eq!(
            (
                batches[0].receiver,
                batches[0].spans.len(),
                batches[0].rejected
            ),
            (RECEIVER, 1, 1)
        );
        assert_eq!(batches[0].spans[0].name, "op1");
    }

    #[tokio::test]
    async fn json_with_charset_full_and_partial_success() {
        let rec = Recorder::new();
        let good = json::encode_traces_data(&[span(1), span(2)])
            .to_string()
            .into_bytes();
        let r = call(
            rec.clone(),
            "POST",
            &[("content-type", "Application/JSON; charset=utf-8")],
            good,
        )
        .await;
        assert_eq!(
            (r.status, r.header(header::CONTENT_TYPE)),
            (StatusCode::OK, JSON)
        );
        assert_eq!(r.json(), serde_json::json!({}));
        assert_eq!(rec.batches.lock()[0].spans.len(), 2);

        let partial = json::encode_request(&request_with_a_bad_span())
            .to_string()
            .into_bytes();
        let r = call(rec.clone(), "POST", &[("content-type", JSON)], partial).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json(),
            serde_json::json!({"partialSuccess": {
                "rejectedSpans": "1",
                "errorMessage": "resource_spans[1].scope_spans[0].spans[0]: span_id is 7 bytes, expected 8"
            }})
        );
    }

    #[tokio::test]
    async fn gzip_bodies_are_decompressed() {
        let rec = Recorder::new();
        let body = gzip(&spoor_otlp::encode_proto(&[span(1), span(2), span(3)]));
        let r = call(
            rec.clone(),
            "POST",
            &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(rec.batches.lock()[0].spans.len(), 3);

        let body = gzip(json::encode_traces_data(&[span(4)]).to_string().as_bytes());
        let r = call(
            rec.clone(),
            "POST",
            &[
                ("content-type", JSON),
                ("content-encoding", "identity, gzip"),
            ],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(rec.batches.lock()[1].spans[0].name, "op4");
    }

    /// `(content type, content encoding, body, status, message in the reply)`
    #[tokio::test]
    async fn refused_requests() {
        let proto_body = spoor_otlp::encode_proto(&[span(1)]);
        let bomb = gzip(&vec![0u8; 4 * LIMIT]);
        assert!(bomb.len() < LIMIT);
        let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
            (
                "text/plain",
                "",
                proto_body.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content type \"text/plain\", expected application/x-protobuf or application/json",
            ),
            (
                "",
                "",
                proto_body.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content type \"\", expected application/x-protobuf or application/json",
            ),
            (
                PROTOBUF,
                "br",
                proto_body.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content encoding \"br\", expected gzip or identity",
            ),
            (
                PROTOBUF,
                "",
                vec![0x0a; LIMIT + 1],
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body exceeds the limit of 65536 bytes",
            ),
            (
                PROTOBUF,
                "gzip",
                bomb,
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body after decompression exceeds the limit of 65536 bytes",
            ),
            (PROTOBUF, "gzip", proto_body.clone(), StatusCode::BAD_REQUEST, "invalid gzip body: invalid gzip header"),
            (
                PROTOBUF,
                "",
                proto_body[..proto_body.len() - 1].to_vec(),
                StatusCode::BAD_REQUEST,
                "malformed protobuf: ",
            ),
            (
                JSON,
                "",
                b"{\"resourceSpans\": 3}".to_vec(),
                StatusCode::BAD_REQUEST,
                "malformed json at line 1 column 19: invalid type: integer `3`, expected a sequence",
            ),
        ];
        for (ct, enc, body, status, message) in cases {
            let rec = Recorder::new();
            let mut headers = vec![];
            if !ct.is_empty() {
                headers.push(("content-type", ct));
            }
            if !enc.is_empty() {
                headers.push(("content-encoding", enc));
            }
            let r = call(rec.clone(), "POST", &headers, body).await;
            assert_eq!(r.status, status, "{ct} {enc}: {}", r.text());
            let got = match r.header(header::CONTENT_TYPE) {
                PROTOBUF => {
                    let st = r.rpc_status();
                    assert_eq!(st.code, proto::rpc_code::INVALID_ARGUMENT);
                    st.message
                }
                JSON => {
                    let v = r.json();
                    assert_eq!(v["code"], proto::rpc_code::INVALID_ARGUMENT);
                    v["message"].as_str().unwrap().to_string()
                }
                _ => r.text(),
            };
            assert!(
                got.starts_with(message),
                "{ct} {enc}: got {got:?}, want {message:?}"
            );
            assert!(rec.batches.lock().is_empty());
            assert_eq!(rec.bad.lock().as_slice(), &[(RECEIVER, got)]);
        }
    }

    #[tokio::test]
    async fn declared_content_length_over_the_limit_is_refused_before_reading() {
        let rec = Recorder::new();
        let len = (LIMIT + 1).to_string();
        let r = call(
            rec,
            "POST",
            &[("content-type", JSON), ("content-length", &len)],
            vec![],
        )
        .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// `(pipeline error, status, Retry-After, rpc code)`
    #[tokio::test]
    async fn pipeline_refusals() {
        let cases = [
            (
                IngestError::Overloaded {
                    retry_after: Duration::from_millis(2500),
                },
                429,
                "3",
                8,
            ),
            (IngestError::ShuttingDown, 503, "5", 14),
            (IngestError::Storage("disk full".into()), 503, "5", 14),
        ];
        for (err, status, retry_after, code) in cases {
            let rec = Recorder::replying(Err(err.clone()));
            let body = spoor_otlp::encode_proto(&[span(1)]);
            let r = call(rec.clone(), "POST", &[("content-type", PROTOBUF)], body).await;
            assert_eq!(r.status.as_u16(), status, "{err}");
            assert_eq!(r.header(header::RETRY_AFTER), retry_after, "{err}");
            let st = r.rpc_status();
            assert_eq!(
                (st.code, st.message.as_str()),
                (code, err.to_string().as_str())
            );
            let has_retry_info = st
                .details
                .iter()
                .any(|d| d.type_url == proto::RETRY_INFO_TYPE_URL);
            assert_eq!(has_retry_info, !retry_after.is_empty(), "{err}");
            assert!(rec.bad.lock().is_empty());

            let body = json::encode_traces_data(&[span(1)])
                .to_string()
                .into_bytes();
            let r = call(rec, "POST", &[("content-type", JSON)], body).await;
            assert_eq!(
                (r.status.as_u16(), r.json()["code"].as_i64()),
                (status, Some(i64::from(code)))
            );
        }
        let rec = Recorder::replying(Ok(IngestOutcome {
            accepted: 0,
            rejected: 1,
            message: "span 0: bad".into(),
        }));
        let r = call(
            rec,
            "POST",
            &[("content-type", PROTOBUF)],
            spoor_otlp::encode_proto(&[span(1)]),
        )
        .await;
        let resp = proto::ExportTraceServiceResponse::decode(r.body.as_slice()).unwrap();
        assert_eq!(
            resp.partial_success,
            Some(proto::ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "span 0: bad".into()
            })
        );
    }

    #[tokio::test]
    async fn refused_before_the_body_is_read_while_admission_fails() {
        let rec = Recorder::new();
        *rec.admit.lock() = Some(IngestError::Overloaded {
            retry_after: Duration::from_secs(2),
        });
        // a body that would be a 400 if it were read: admission answers first
        let r = call(
            rec.clone(),
            "POST",
            &[("content-type", PROTOBUF)],
            b"\xff\xff".to_vec(),
        )
        .await;
        assert_eq!(r.status.as_u16(), 429);
        assert_eq!(r.header(header::RETRY_AFTER), "2");
        assert_eq!(r.rpc_status().code, proto::rpc_code::RESOURCE_EXHAUSTED);
        assert!(rec.batches.lock().is_empty() && rec.bad.lock().is_empty());
        *rec.admit.lock() = None;
        let r = call(
            rec.clone(),
            "POST",
            &[("content-type", PROTOBUF)],
            spoor_otlp::encode_proto(&[span(1)]),
        )
        .await;
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(rec.batches.lock().len(), 1);
    }

    #[tokio::test]
    async fn other_methods_get_405() {
        for method in ["GET", "PUT", "DELETE"] {
            let r = call(
                Recorder::new(),
                method,
                &[("content-type", PROTOBUF)],
                vec![],
            )
            .await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        }
    }
}
