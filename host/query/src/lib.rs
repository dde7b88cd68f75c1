//! Spoor's query HTTP API: Jaeger's `/api/…` (what the Jaeger UI and Grafana's Jaeger data source
//! call, including the Monitor tab's `/api/metrics/…`) and `/api/v3/…` (grpc-gateway JSON with
//! OTLP traces inside), served from a [`TraceStore`].
//!
//! Responses are byte-for-byte what Jaeger's query service sends for the same traces. Store calls
//! block, so they run on tokio's blocking pool. "Now" is read from the system clock here, in the
//! handler layer, and nowhere else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use spoor_core::Trace;
use spoor_store::{StoreError, TraceStore};

pub mod jaeger;
pub mod json;
mod metrics;
pub mod params;
mod ui;
mod v1;
mod v3;

pub use params::ParamError;
pub use ui::{parse_base_path, BasePathError};

/// Settings of the query API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryConfig {
    /// Search window when a v1 search gives neither `start` nor `lookback` (default 1h).
    pub default_lookback: Duration,
    /// Longest search window; a longer one is shortened by moving its start (default none).
    pub max_lookback: Option<Duration>,
    /// Most traces one search returns, whatever `limit` asks for (default 1500).
    pub max_limit: usize,
    /// Most spans returned per trace, earliest first; 0 means unlimited (default 0).
    pub max_spans_per_trace: usize,
    /// Directory of the built web UI (`www/dist`), served for every non-`/api` path with
    /// `index.html` for client-side routes (Jaeger's `--query.static-files`; default none: no
    /// files are served).
    pub static_files: Option<PathBuf>,
    /// The UI options answered by `GET /api/ui-config` (Jaeger's `--query.ui-config` file:
    /// menu links, link patterns, dependencies page on/off, max lookback; default none: `{}`).
    pub ui_config: Option<serde_json::Value>,
    /// Path prefix of the API and the UI (Jaeger's `--query.base-path`), normalised by
    /// [`parse_base_path`]: `""` (default) serves at the root, `"/jaeger"` serves
    /// `/jaeger/api/…` and the UI at `/jaeger/`, with `index.html`'s `<base href>` set to it.
    pub base_path: String,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            default_lookback: Duration::from_secs(3600),
            max_lookback: None,
            max_limit: 1500,
            max_spans_per_trace: 0,
            static_files: None,
            ui_config: None,
            base_path: String::new(),
        }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Arc<dyn TraceStore>,
    pub cfg: Arc<QueryConfig>,
}

/// The query API's routes (v1 under `/api`, SPM under `/api/metrics`, v3 under `/api/v3`,
/// the UI options at `/api/ui-config`) and, when `static_files` is set, the web UI's files;
/// all under `base_path` when it is set (then `/` redirects there and other paths are 404).
pub fn router(store: Arc<dyn TraceStore>, cfg: QueryConfig) -> Router {
    let base = cfg.base_path.clone();
    let state = AppState {
        store,
        cfg: Arc::new(cfg),
    };
    let routes = routes(state);
    if base.is_empty() {
        return routes;
    }
    // Not `Router::nest`: it does not route `/jaeger/` itself. Every request goes through one
    // handler that strips the prefix (or answers a path outside it) and calls the routes.
    Router::new().fallback(move |req: axum::extract::Request| {
        ui::under_base(base.clone(), routes.clone(), req)
    })
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/services", get(v1::services))
        .route(
            "/api/services/{service}/operations",
            get(v1::service_operations),
        )
        .route("/api/operations", get(v1::operations))
        .route("/api/traces", get(v1::search))
        .route("/api/traces/{trace_id}", get(v1::get_trace))
        .route("/api/dependencies", get(v1::dependencies))
        .route("/api/metrics/latencies", get(metrics::latencies))
        .route("/api/metrics/calls", get(metrics::calls))
        .route("/api/metrics/errors", get(metrics::errors))
        .route("/api/metrics/minstep", get(metrics::min_step))
        .route("/api/v3/services", get(v3::services))
        .route("/api/v3/operations", get(v3::operations))
        .route("/api/v3/traces", get(v3::find_traces))
        .route("/api/v3/traces/{trace_id}", get(v3::get_trace))
        .route("/api/v3/trace-summaries", get(v3::trace_summaries))
        .route("/api/ui-config", get(ui::ui_config))
        .fallback(ui::static_file)
        .with_state(state)
}

/// Why a request failed; turned into a status code and body in exactly one place per API.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A bad parameter (400).
    #[error(transparent)]
    BadRequest(#[from] ParamError),
    /// A requested trace is not stored (404). The v3 API words it "No traces found".
    #[error("trace not found")]
    NotFound,
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running a store call panicked or was cancelled (500).
    #[error("query task failed: {0}")]
    Task(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Store(_) | ApiError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn TraceStore) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => r.map_err(|e| {
            tracing::error!(error = %e, "query api: store call failed");
            ApiError::Store(e)
        }),
        Err(e) => {
            tracing::error!(error = %e, "query api: store task failed");
            Err(ApiError::Task(e.to_string()))
        }
    }
}

/// Nanoseconds since the epoch, from the system clock.
pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A `200 application/json` response.
pub(crate) fn json_response(body: String) -> Response {
    with_body(StatusCode::OK, "application/json", body)
}

/// An error response as Go's `http.Error` writes it: the JSON body plus a newline.
pub(crate) fn error_response(status: StatusCode, body: String) -> Response {
    with_body(status, "application/json", body + "\n")
}

/// A `200 application/json` response sent as several pieces, in order, without joining them
/// (each large piece goes back to the buffer pool once sent).
pub(crate) fn json_response_chunks(chunks: Vec<String>) -> Response {
    let frames: std::collections::VecDeque<bytes::Bytes> = chunks
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            if c.capacity() >= pool::MIN_BYTES {
                bytes::Bytes::from_owner(pool::Pooled(c, &pool::GLOBAL))
            } else {
                bytes::Bytes::from(c)
            }
        })
        .collect();
    let mut resp = Response::new(Body::new(Chunks { frames }));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A body of ready pieces with a known total length (sent with `Content-Length`).
struct Chunks {
    frames: std::collections::VecDeque<bytes::Bytes>,
}

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let next = self.frames.pop_front();
        std::task::Poll::Ready(next.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.frames.iter().map(|b| b.len() as u64).sum())
    }
}

fn with_body(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let body = if body.capacity() >= pool::MIN_BYTES {
        Body::from(bytes::Bytes::from_owner(pool::Pooled(body, &pool::GLOBAL)))
    } else {
        Body::from(body)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Prepares a stored trace for display: clock-skew adjustment, spans by start time, and the
/// per-trace span cap. Returns the trace-level warnings.
pub(crate) fn prepare_trace(trace: &mut Trace, max_spans: usize) -> Vec<String> {
    spoor_core::skew::adjust_clock_skew(trace);
    trace.spans.sort_by_key(|s| s.start_unix_nanos);
    let mut warnings = Vec::new();
    if max_spans > 0 && trace.spans.len() > max_spans {
        warnings.push(format!(
            "trace has {} spans; only the first {} by start time are shown",
            trace.spans.len(),
            max_spans
        ));
        trace.spans.truncate(max_spans);
    }
    warnings
}

/// Large response buffers, kept for the next large response once sent: a limit-20 search of
/// 1,000-span traces renders ~11 MB, and a fresh buffer of that size each time cost ~10% of the
/// search's CPU in the kernel zeroing new pages (`clear_page_erms`).
pub(crate) mod pool {
    use std::sync::{Mutex, MutexGuard};

    /// Buffers smaller than this are not worth keeping.
    pub(crate) const MIN_BYTES: usize = 64 << 10;
    /// Most bytes of capacity kept, over all buffers.
    const MAX_POOLED_BYTES: usize = 32 << 20;
    /// Most buffers kept.
    const MAX_BUFFERS: usize = 8;

    /// A bounded list of spare buffers.
    pub(crate) struct Pool {
        free: Mutex<Vec<String>>,
    }

    /// The pool every response uses.
    pub(crate) static GLOBAL: Pool = Pool {
        free: Mutex::new(Vec::new()),
    };

    impl Pool {
        /// The list (a panic while holding it cannot leave it inconsistent).
        fn free(&self) -> MutexGuard<'_, Vec<String>> {
            self.free
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// An empty string with at least `capacity` bytes, reused when one is big enough.
        pub(crate) fn take(&self, capacity: usize) -> String {
            if capacity >= MIN_BYTES {
                let mut free = self.free();
                if let Some(i) = free.iter().position(|b| b.capacity() >= capacity) {
                    let mut b = free.swap_remove(i);
                    b.clear();
                    return b;
                }
            }
            String::with_capacity(capacity)
        }

        /// Gives a buffer back (dropped instead when the pool is full or it is small).
        pub(crate) fn give(&self, buf: String) {
            if buf.capacity() < MIN_BYTES {
                return;
            }
            let mut free = self.free();
            let kept: usize = free.iter().map(String::capacity).sum();
            if free.len() < MAX_BUFFERS && kept + buf.capacity() <= MAX_POOLED_BYTES {
                free.push(buf);
            }
        }
    }

    /// [`Pool::take`] on the global pool.
    pub(crate) fn take(capacity: usize) -> String {
        GLOBAL.take(capacity)
    }

    /// A response body that goes back to its pool once hyper has sent it.
    pub(crate) struct Pooled(pub(crate) String, pub(crate) &'static Pool);

    impl AsRef<[u8]> for Pooled {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }

    impl Drop for Pooled {
        fn drop(&mut self) {
            self.1.give(std::mem::take(&mut self.0));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn large_buffers_come_back_small_ones_do_not() {
            let pool: &'static Pool = Box::leak(Box::new(Pool {
                free: Mutex::new(Vec::new()),
            }));
            let big = pool.take(MIN_BYTES * 2);
            let cap = big.capacity();
            let body = bytes::Bytes::from_owner(Pooled(big + "x", pool));
            assert_eq!(&body[..], b"x");
            assert_eq!(pool.free().len(), 0);
            drop(body);
            let again = pool.take(MIN_BYTES * 2);
            assert_eq!(again.capacity(), cap, "the sent buffer is reused");
            assert!(again.is_empty());
            pool.give(String::with_capacity(10));
            assert_eq!(pool.free().len(), 0, "small buffers are not kept");
            for _ in 0..MAX_BUFFERS + 2 {
                pool.give(String::with_capacity(MIN_BYTES));
            }
            assert_eq!(pool.free().len(), MAX_BUFFERS);
            pool.give(String::with_capacity(MAX_POOLED_BYTES));
            assert_eq!(pool.free().len(), MAX_BUFFERS, "the byte bound holds");
        }
    }
}
