//! The Zipkin HTTP receiver (port 9411): `POST /api/v2/spans` with JSON (the default when no
//! content type is sent, as Zipkin does) or proto3 bodies and `POST /api/v1/spans` with JSON,
//! optionally gzip-compressed, answered as the Zipkin server does (202 Accepted with an empty
//! body, 400 with a message naming the problem, 413, 415, 429/503 with `Retry-After`).

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
pub const RECEIVER: &str = "zipkin_http";

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

/// Settings of the Zipkin HTTP receiver.
#[derive(Debug, Clone)]
pub struct ZipkinHttpConfig {
    /// Largest accepted request body in bytes; applies to the body as sent and after gunzip.
    pub max_body_bytes: usize,
}

struct HttpState {
    ingest: Arc<dyn Ingest>,
    cfg: ZipkinHttpConfig,
}

/// The Zipkin collector routes: `POST /api/v2/spans` and `POST /api/v1/spans` (other methods
/// get 405).
pub fn zipkin_http_router(ingest: Arc<dyn Ingest>, cfg: ZipkinHttpConfig) -> Router {
    let st = Arc::new(HttpState { ingest, cfg });
    Router::new()
        .route(
            "/api/v2/spans",
            post(|State(st): State<Arc<HttpState>>, req: Request| post_spans(st, Api::V2, req)),
        )
        .route(
            "/api/v1/spans",
            post(|State(st): State<Arc<HttpState>>, req: Request| post_spans(st, Api::V1, req)),
        )
        .with_state(st)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    V1,
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Protobuf,
}

type Refused = (StatusCode, String);

fn text(status: StatusCode, message: String) -> Response {
    (status, message + "\n").into_response()
}

fn request_format(headers: &HeaderMap, api: Api) -> Result<Format, Refused> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = raw.split(';').next().unwrap_or("").trim();
    if media.is_empty() || media.eq_ignore_ascii_case(JSON) {
        Ok(Format::Json)
    } else if api == Api::V2 && media.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Format::Protobuf)
    } else {
        let expected = match api {
            Api::V2 => format!("{JSON} or {PROTOBUF}"),
            Api::V1 => JSON.to_string(),
        };
        Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {raw:?}, expected {expected}"),
        ))
    }
}

fn is_gzip(headers: &HeaderMap) -> Result<bool, Refused> {
    let mut gzip = false;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for enc in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") {
                if gzip {
                    return Err((
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported content encoding \"gzip, gzip\"".to_string(),
                    ));
                }
                gzip = true;
            } else if !enc.eq_ignore_ascii_case("identity") {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("unsupported content encoding {enc:?}, expected gzip or identity"),
                ));
            }
        }
    }
    Ok(gzip)
}

async fn post_spans(st: Arc<HttpState>, api: Api, req: Request) -> Response {
    // refused before the body is read while the pipeline would refuse any batch
    if let Err(err) = st.ingest.admit(RECEIVER) {
        return text_refusal(&err);
    }
    let batch = match read_request(&st, api, req).await {
        Ok(b) => b,
        Err((status, message)) => {
            st.ingest.bad_request(RECEIVER, &message);
            return text(status, message);
        }
    };
    match st.ingest.ingest(batch).await {
        // Zipkin answers 202 with an empty body; rejected spans are counted and logged by the
        // pipeline, Zipkin clients would not read a message anyway
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(err) => text_refusal(&err),
    }
}

async fn read_request(st: &HttpState, api: Api, req: Request) -> Result<IngestBatch, Refused> {
    let (parts, body) = req.into_parts();
    let format = request_format(&parts.headers, api)?;
    let gzip = is_gzip(&parts.headers)?;
    let body = read_body(&parts.headers, body, st.cfg.max_body_bytes, gzip)
        .await
        .map_err(|e| (e.status, e.message))?;
    let decoded = match (api, format) {
        (Api::V2, Format::Json) => spoor_zipkin::decode_v2_json(&body),
        (Api::V2, Format::Protobuf) => spoor_zipkin::decode_v2_proto(&body),
        (Api::V1, _) => spoor_zipkin::decode_v1_json(&body),
    }
    .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    if decoded.spans.is_empty() && decoded.rejected > 0 {
        // nothing usable: say why, as Zipkin does for a body it cannot read
        return Err((StatusCode::BAD_REQUEST, decoded.problems.join("; ")));
    }
    Ok(IngestBatch::from_decoded(RECEIVER, decoded))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use std::io::Write;
    use std::time::Duration;

    use axum::body::Body;
    use spoor_core::{SpanId, SpanKind, TraceId};
    use spoor_zipkin::{Endpoint, Kind, ZipkinSpan};
    use tower::ServiceExt;

    use super::*;
    use crate::ingest::IngestError;
    use crate::receivers::testing::Recorder;

    const LIMIT: usize = 64 * 1024;

    fn spans() -> Vec<ZipkinSpan> {
        (1..=2)
            .map(|i| ZipkinSpan {
                trace_id: TraceId(0xabc),
                id: SpanId(i),
                parent_id: (i > 1).then_some(SpanId(1)),
                kind: Some(if i == 1 { Kind::Server } else { Kind::Client }),
                name: format!("op{i}"),
                timestamp_us: Some(1_000_000),
                duration_us: Some(10),
                local_endpoint: Some(Endpoint::service("web")),
                ..Default::default()
            })
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    async fn call(
        rec: &Arc<Recorder>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, String) {
        let router = zipkin_http_router(
            rec.clone(),
            ZipkinHttpConfig {
                max_body_bytes: LIMIT,
            },
        );
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// `(path, content type, content encoding, body)`: every accepted form of the same spans.
    #[tokio::test]
    async fn accepts_every_format() {
        let z = spans();
        let v2 = spoor_zipkin::encode_v2_json(&z);
        let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
            ("/api/v2/spans", JSON, "", v2.clone()),
            ("/api/v2/spans", "", "", v2.clone()),
            (
                "/api/v2/spans",
                "application/json; charset=utf-8",
                "gzip",
                gzip(&v2),
            ),
            (
                "/api/v2/spans",
                PROTOBUF,
                "",
                spoor_zipkin::encode_v2_proto(&z),
            ),
            (
                "/api/v2/spans",
                PROTOBUF,
                "gzip",
                gzip(&spoor_zipkin::encode_v2_proto(&z)),
            ),
            ("/api/v1/spans", JSON, "", spoor_zipkin::encode_v1_json(&z)),
            (
                "/api/v1/spans",
                "",
                "identity",
                spoor_zipkin::encode_v1_json(&z),
            ),
        ];
        for (path, ct, enc, body) in cases {
            let rec = Recorder::new();
            let mut headers = vec![];
            if !ct.is_empty() {
                headers.push(("content-type", ct));
            }
            if !enc.is_empty() {
                headers.push(("content-encoding", enc));
            }
            let (s, _, text) = call(&rec, "POST", path, &headers, body).await;
            assert_eq!(
                (s, text.as_str()),
                (StatusCode::ACCEPTED, ""),
                "{path} {ct} {enc}"
            );
            let batches = rec.batches.lock();
            assert_eq!(batches.len(), 1);
            let b = &batches[0];
            assert_eq!(b.receiver, RECEIVER);
            let got: Vec<_> = b
                .spans
                .iter()
                .map(|s| (s.name.as_str(), s.kind, s.service(), s.parent_span_id))
                .collect();
            assert_eq!(
                got,
                [
                    ("op1", SpanKind::Server, "web", None),
                    ("op2", SpanKind::Client, "web", Some(SpanId(1)))
                ],
                "{path} {ct} {enc}"
            );
            assert_eq!(b.spans[0].start_unix_nanos, 1_000_000_000);
            assert_eq!(b.spans[0].duration_nanos, 10_000);
        }
    }

    #[tokio::test]
    async fn partially_bad_batches_keep_the_good_spans() {
        let rec = Recorder::new();
        let body = br#"[
            {"traceId": "0000000000000abc", "id": "0000000000000001", "name": "good"},
            {"traceId": "xyz", "id": "0000000000000002", "name": "bad"}
        ]"#;
        let (s, _, _) = call(&rec, "POST", "/api/v2/spans", &[], body.to_vec()).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let b = &rec.batches.lock()[0];
        assert_eq!((b.spans.len(), b.rejected), (1, 1));
        assert_eq!(
            b.problems,
            ["span 1: traceId \"xyz\": id is not hexadecimal"]
        );
    }

    /// `(path, content type, content encoding, body, status, message)`
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Vec<u8>,
        StatusCode,
        &'static str,
    );

    #[tokio::test]
    async fn refusals_name_the_problem() {
        let v2 = spoor_zipkin::encode_v2_json(&spans());
        let bomb = gzip(&vec![b' '; 4 * LIMIT]);
        assert!(bomb.len() < LIMIT);
        let cases: Vec<Case> = vec![
            ("/api/v2/spans", "text/plain", "", v2.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE,
             "unsupported content type \"text/plain\", expected application/json or application/x-protobuf"),
            ("/api/v1/spans", PROTOBUF, "", v2.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE,
             "unsupported content type \"application/x-protobuf\", expected application/json"),
            ("/api/v2/spans", JSON, "br", v2.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE,
             "unsupported content encoding \"br\", expected gzip or identity"),
            ("/api/v2/spans", JSON, "", vec![b' '; LIMIT + 1], StatusCode::PAYLOAD_TOO_LARGE,
             "request body exceeds the limit of 65536 bytes"),
            ("/api/v2/spans", JSON, "gzip", bomb, StatusCode::PAYLOAD_TOO_LARGE,
             "request body after decompression exceeds the limit of 65536 bytes"),
            ("/api/v2/spans", JSON, "gzip", v2.clone(), StatusCode::BAD_REQUEST,
             "invalid gzip body: invalid gzip header"),
            ("/api/v2/spans", JSON, "", b"[{\"traceId\": ".to_vec(), StatusCode::BAD_REQUEST,
             "malformed json at line 1 column 13: EOF while parsing a value"),
            ("/api/v2/spans", JSON, "", b"{\"spans\": []}".to_vec(), StatusCode::BAD_REQUEST,
             "expected a json array of spans, got an object"),
            ("/api/v2/spans", PROTOBUF, "", vec![0x0a, 0x05, 0x01], StatusCode::BAD_REQUEST,
             "malformed protobuf: "),
            ("/api/v2/spans", JSON, "", br#"[{"traceId": "1", "id": "2", "timestamp": "x"}]"#.to_vec(),
             StatusCode::BAD_REQUEST, "span 0: timestamp is a string, expected a number"),
        ];
        for (path, ct, enc, body, status, message) in cases {
            let rec = Recorder::new();
            let mut headers = vec![("content-type", ct)];
            if !enc.is_empty() {
                headers.push(("content-encoding", enc));
            }
            let (s, _, text) = call(&rec, "POST", path, &headers, body).await;
            assert_eq!(s, status, "{path} {ct} {enc}: {text}");
            assert!(
                text.starts_with(message),
                "{path} {ct} {enc}: got {text:?}, want {message:?}"
            );
            assert!(rec.batches.lock().is_empty());
            assert_eq!(rec.bad.lock().len(), 1);
            assert_eq!(rec.bad.lock()[0].0, RECEIVER);
        }
    }

    /// `(pipeline error, status, Retry-After)`
    #[tokio::test]
    async fn pipeline_refusals() {
        let cases = [
            (
                IngestError::Overloaded {
                    retry_after: Duration::from_millis(1500),
                },
                StatusCode::TOO_MANY_REQUESTS,
                Some("2"),
            ),
            (
                IngestError::ShuttingDown,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("5"),
            ),
            (
                IngestError::Storage("disk full".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("5"),
            ),
        ];
        for (err, status, retry) in cases {
            let rec = Recorder::replying(Err(err.clone()));
            let body = spoor_zipkin::encode_v2_json(&spans());
            let (s, h, text) = call(&rec, "POST", "/api/v2/spans", &[], body).await;
            assert_eq!(s, status, "{err}");
            assert_eq!(
                h.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()),
                retry,
                "{err}"
            );
            assert_eq!(text, format!("{err}\n"));
        }
    }

    #[tokio::test]
    async fn other_methods_and_paths() {
        let rec = Recorder::new();
        let (s, _, _) = call(&rec, "GET", "/api/v2/spans", &[], vec![]).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        let (s, _, _) = call(&rec, "POST", "/api/v3/spans", &[], vec![]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
