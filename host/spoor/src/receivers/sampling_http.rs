//! Sampling strategies over HTTP, as Jaeger serves them to clients' remote samplers:
//!
//! - the agent port (5778, [`sampling_http_router`]): `GET /sampling?service=X` in proto-JSON
//!   (what jaeger-client and the OTel Jaeger remote sampler read) and `GET /?service=X` in the
//!   legacy Thrift-JSON with `strategyType` as a number;
//! - the collector's Thrift HTTP port (14268, [`api_sampling_router`]):
//!   `GET /api/sampling?service=X` in proto-JSON.
//!
//! A missing or repeated `service` is 400 with Jaeger's message; an agent that cannot reach the
//! collector and has no earlier answer for the service answers 503 naming the collector.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue, StatusCode};

use crate::sampling::StrategyProvider;

/// The agent port's proto-JSON path.
pub const SAMPLING_PATH: &str = "/sampling";
/// The agent port's legacy path.
pub const LEGACY_PATH: &str = "/";
/// The collector port's path.
pub const API_SAMPLING_PATH: &str = "/api/sampling";

/// Jaeger's answer to a missing or repeated `service` parameter.
pub const SERVICE_PARAM_MESSAGE: &str = "'service' parameter must be provided once";

/// Which JSON a route answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// jsonpb, enum names.
    Proto,
    /// Thrift 0.9.2 JSON, enum numbers.
    Legacy,
}

/// The agent port's routes: `/sampling` and `/`.
pub fn sampling_http_router(provider: StrategyProvider) -> Router {
    Router::new()
        .route(SAMPLING_PATH, get(proto_json))
        .route(LEGACY_PATH, get(legacy_json))
        .with_state(provider)
}

/// The collector port's route, to merge into the Jaeger Thrift HTTP router.
pub fn api_sampling_router(provider: StrategyProvider) -> Router {
    Router::new()
        .route(API_SAMPLING_PATH, get(proto_json))
        .with_state(provider)
}

/// A plain-text error as Go's `http.Error` writes it.
fn text_error(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, format!("{message}\n")).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

type Params = Query<Vec<(String, String)>>;

async fn proto_json(st: State<StrategyProvider>, q: Params) -> Response {
    serve(st, q, Shape::Proto).await
}

async fn legacy_json(st: State<StrategyProvider>, q: Params) -> Response {
    serve(st, q, Shape::Legacy).await
}

async fn serve(
    State(provider): State<StrategyProvider>,
    Query(params): Params,
    shape: Shape,
) -> Response {
    let mut services = params.iter().filter(|(k, _)| k == "service");
    let service = match (services.next(), services.next()) {
        (Some((_, s)), None) => s,
        _ => return text_error(StatusCode::BAD_REQUEST, SERVICE_PARAM_MESSAGE),
    };
    let strategy = match provider.strategy(service).await {
        Ok(s) => s,
        Err(e) => return text_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let json = match shape {
        Shape::Proto => spoor_jaeger::sampling::to_proto_json(&strategy),
        Shape::Legacy => match spoor_jaeger::sampling::to_legacy_json(&strategy) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(service, error = %e, "cannot render the legacy sampling JSON");
                return text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot marshall to JSON: {e}"),
                );
            }
        },
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use spoor_core::sampling::StrategyResponse;
    use tower::ServiceExt;

    use super::*;
    use crate::sampling::{CollectorStrategies, StrategySource};

    /// Service `a` samples everything, `r` 42 traces per second, `big` a rate the legacy
    /// int16 cannot carry, the others 0.25.
    struct PerService;

    impl StrategySource for PerService {
        fn strategy(&self, service: &str) -> StrategyResponse {
            match service {
                "a" => StrategyResponse::probabilistic(1.0),
                "r" => StrategyResponse::rate_limiting(42),
                "big" => StrategyResponse::rate_limiting(40_000),
                _ => StrategyResponse::probabilistic(0.25),
            }
        }
    }

    async fn get_from(router: Router, uri: &str) -> (StatusCode, Option<String>, String) {
        let req = http::Request::get(uri).body(Body::empty()).unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    const JSON: Option<&str> = Some("application/json");
    const TEXT: Option<&str> = Some("text/plain; charset=utf-8");
    const ONCE: &str = "'service' parameter must be provided once\n";

    /// `(router, request, status, content type, body)`
    #[tokio::test]
    async fn answers_as_jaeger_does() {
        let local = StrategyProvider::Local(Arc::new(PerService));
        let agent = || sampling_http_router(local.clone());
        let collector = || api_sampling_router(local.clone());
        let cases: Vec<(Router, &str, StatusCode, Option<&str>, &str)> = vec![
            (agent(), "/sampling?service=a", StatusCode::OK, JSON, r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":1}}"#),
            (agent(), "/?service=r", StatusCode::OK, JSON, r#"{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":42}}"#),
            (agent(), "/sampling?service=r", StatusCode::OK, JSON, r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":42}}"#),
            (agent(), "/sampling?service=other%20one&x=1", StatusCode::OK, JSON, r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.25}}"#),
            (agent(), "/sampling", StatusCode::BAD_REQUEST, TEXT, ONCE),
            (agent(), "/?service=a&service=a", StatusCode::BAD_REQUEST, TEXT, ONCE),
            (agent(), "/?service=big", StatusCode::INTERNAL_SERVER_ERROR, TEXT, "cannot marshall to JSON: maxTracesPerSecond 40000 is higher than the legacy int16 allows\n"),
            (agent(), "/sampling?service=big", StatusCode::OK, JSON, r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":40000}}"#),
            (collector(), "/api/sampling?service=a", StatusCode::OK, JSON, r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":1}}"#),
            (collector(), "/api/sampling?service=", StatusCode::OK, JSON, r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.25}}"#),
            (collector(), "/api/sampling?services=a", StatusCode::BAD_REQUEST, TEXT, ONCE),
            (collector(), "/sampling?service=a", StatusCode::NOT_FOUND, None, ""),
        ];
        for (router, uri, status, ct, body) in cases {
            let got = get_from(router, uri).await;
            assert_eq!(
                (got.0, got.1.as_deref(), got.2.as_str()),
                (status, ct, body),
                "{uri}"
            );
        }
        let post = http::Request::post("/sampling?service=a")
            .body(Body::empty())
            .unwrap();
        let resp = agent().oneshot(post).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn agent_without_collector_is_503_naming_it() {
        // a port nothing listens on
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let proxy = CollectorStrategies::new(&endpoint, Duration::from_secs(2)).unwrap();
        let router = sampling_http_router(StrategyProvider::Collector(Arc::new(proxy)));
        let (status, ct, body) = get_from(router, "/sampling?service=a").await;
        assert_eq!(
            (status, ct.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, TEXT)
        );
        assert!(
            body.starts_with(&format!(
                "collector error: cannot get the sampling strategy of service \"a\" from collector {endpoint}: "
            )),
            "{body}"
        );
    }
}
