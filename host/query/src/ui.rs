//! The web UI's side of the query server: `GET /api/ui-config` (the UI options JSON) and the
//! static files of the built UI (`www/dist`), with `index.html` for every other non-API path
//! so the single-page app can route in the browser.
//!
//! Files are read from disk on each request (the UI is a few files; the OS caches them), so a
//! rebuilt UI is served without a restart. Only plain relative paths are served: a path with
//! `..`, `.`, a backslash, a NUL or a percent escape never reaches the file system.
//!
//! Under a base path (`--query.base-path /jaeger`) the router is nested under the prefix and
//! `index.html`'s `<base href="/">` is answered as `<base href="/jaeger/">`, so the UI's
//! relative asset URLs and its API calls resolve under the prefix.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

use crate::AppState;

/// Why a `query.base-path` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasePathError {
    /// The path is not absolute.
    #[error("invalid query.base-path {0:?}: must start with /")]
    NotAbsolute(String),
    /// A segment is `.`, `..` or empty, or has a character outside `A-Z a-z 0-9 - . _ ~`.
    #[error("invalid query.base-path {0:?}: segments may only use A-Z a-z 0-9 - . _ ~ and may not be . or ..")]
    BadSegment(String),
}

/// Normalises a base path: `""` and `"/"` are the root (`""`), otherwise `/a/b` without a
/// trailing slash. Only unreserved URL characters are allowed, so the prefix needs no escaping
/// in a URL or in HTML.
pub fn parse_base_path(raw: &str) -> Result<String, BasePathError> {
    let t = raw.trim();
    if t.is_empty() || t == "/" {
        return Ok(String::new());
    }
    if !t.starts_with('/') {
        return Err(BasePathError::NotAbsolute(raw.to_string()));
    }
    let body = t.trim_end_matches('/');
    let ok = body[1..].split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    });
    if ok {
        Ok(body.to_string())
    } else {
        Err(BasePathError::BadSegment(raw.to_string()))
    }
}

/// Routes a request under the base path to `routes` with the prefix removed (`/jaeger` and
/// `/jaeger/` both reach `/`); outside it, `/` is redirected to the UI and the rest is 404.
pub(crate) async fn under_base(
    base: String,
    routes: axum::Router,
    mut req: axum::extract::Request,
) -> Response {
    let path = req.uri().path();
    let rest = match path.strip_prefix(base.as_str()) {
        Some("") => "/",
        Some(r) if r.starts_with('/') => r,
        _ => return outside_base(&base, path),
    };
    let rewritten = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    match rewritten.parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad path\n"),
    }
    match tower::ServiceExt::oneshot(routes, req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn outside_base(base: &str, path: &str) -> Response {
    if path != "/" {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let mut resp = plain(StatusCode::FOUND, "");
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `index.html` with its `<base href="/">` pointing at the base path (unchanged at the root).
fn with_base(bytes: Vec<u8>, base: &str) -> Vec<u8> {
    const MARK: &[u8] = b"<base href=\"/\"";
    if base.is_empty() {
        return bytes;
    }
    match bytes.windows(MARK.len()).position(|w| w == MARK) {
        Some(at) => {
            let mut out = Vec::with_capacity(bytes.len() + base.len());
            out.extend_from_slice(&bytes[..at]);
            out.extend_from_slice(format!("<base href=\"{base}/\"").as_bytes());
            out.extend_from_slice(&bytes[at + MARK.len()..]);
            out
        }
        None => bytes,
    }
}

/// `GET /api/ui-config`: the configured UI options, `{}` when none were given.
pub(crate) async fn ui_config(State(state): State<AppState>) -> Response {
    let body = match &state.cfg.ui_config {
        Some(v) => v.to_string(),
        None => "{}".to_string(),
    };
    crate::json_response(body)
}

/// Serves a file of the UI directory, or `index.html` for an unknown path that names no file
/// type (a client-side route such as `/trace/abc`). Unknown `/api/…` paths stay 404.
pub(crate) async fn static_file(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
) -> Response {
    let Some(root) = state.cfg.static_files.clone() else {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let Some(rel) = relative_path(path) else {
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    };
    let file = if rel.as_os_str().is_empty() {
        None
    } else {
        Some(root.join(&rel))
    };
    let head = method == Method::HEAD;
    if let Some(f) = file {
        if let Some(bytes) = read(f.clone()).await {
            let bytes = if rel == Path::new("index.html") {
                with_base(bytes, &state.cfg.base_path)
            } else {
                bytes
            };
            return file_response(&f, bytes, head);
        }
        // A missing asset (`/assets/x.js`) is a 404, not the HTML page under a script's name.
        if rel.extension().is_some() {
            return plain(StatusCode::NOT_FOUND, "404 page not found\n");
        }
    }
    let index = root.join("index.html");
    match read(index.clone()).await {
        Some(bytes) => file_response(&index, with_base(bytes, &state.cfg.base_path), head),
        None => plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// The request path as a relative path of plain segments, or `None` when a segment could
/// escape the directory or needs decoding.
fn relative_path(path: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.contains(['\\', '\0', '%', ':']) || seg.starts_with('.')
        {
            return None;
        }
        rel.push(seg);
    }
    Some(rel)
}

/// Reads a regular file on the blocking pool; `None` when it is missing or not a file.
async fn read(path: PathBuf) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() {
            return None;
        }
        std::fs::read(&path).ok()
    })
    .await
    .ok()
    .flatten()
}

/// The content type of a UI file, by extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file_response(path: &Path, bytes: Vec<u8>, head: bool) -> Response {
    let len = bytes.len();
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Vite puts content-hashed names under assets/; everything else may change on rebuild.
    let hashed = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|d| d == "assets");
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use spoor_store::memory::MemoryStore;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, QueryConfig};

    /// A fresh directory holding a small built UI, inside a temporary directory that also holds
    /// a secret next to it (for the path-traversal checks); both go when the guard drops.
    fn ui_dir() -> (tempfile::TempDir, PathBuf) {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("ui");
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(
            dir.join("index.html"),
            "<!doctype html><title>spoor</title>",
        )
        .unwrap();
        std::fs::write(dir.join("assets/app-1a2b.js"), "console.log(1)").unwrap();
        std::fs::write(dir.join("assets/app-1a2b.css"), "body{}").unwrap();
        std::fs::write(dir.join("assets/spoor_wasm_bg-9z.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("favicon.svg"), "<svg/>").unwrap();
        std::fs::write(outer.path().join("spoor-secret.txt"), "secret").unwrap();
        (outer, dir)
    }

    fn app(static_files: Option<PathBuf>, ui_config: Option<serde_json::Value>) -> axum::Router {
        let store = Arc::new(MemoryStore::new(100));
        router(
            store,
            QueryConfig {
                static_files,
                ui_config,
                ..QueryConfig::default()
            },
        )
    }

    async fn get(app: &axum::Router, method: &str, uri: &str) -> (StatusCode, String, String) {
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn serves_files_with_their_content_types() {
        let (_tmp, ui) = ui_dir();
        let app = app(Some(ui), None);
        let cases = [
            (
                "/",
                "text/html; charset=utf-8",
                "<!doctype html><title>spoor</title>",
            ),
            (
                "/index.html",
                "text/html; charset=utf-8",
                "<!doctype html><title>spoor</title>",
            ),
            (
                "/assets/app-1a2b.js",
                "text/javascript; charset=utf-8",
                "console.log(1)",
            ),
            ("/assets/app-1a2b.css", "text/css; charset=utf-8", "body{}"),
            (
                "/assets/spoor_wasm_bg-9z.wasm",
                "application/wasm",
                "\0asm\u{1}\0\0\0",
            ),
            ("/favicon.svg", "image/svg+xml", "<svg/>"),
        ];
        for (uri, ct, body) in cases {
            assert_eq!(
                get(&app, "GET", uri).await,
                (StatusCode::OK, ct.to_string(), body.to_string()),
                "{uri}"
            );
        }
        let (status, ct, body) = get(&app, "HEAD", "/assets/app-1a2b.js").await;
        assert_eq!(
            (status, ct.as_str(), body.as_str()),
            (StatusCode::OK, "text/javascript; charset=utf-8", "")
        );
    }

    #[tokio::test]
    async fn unknown_routes_get_the_index_but_missing_assets_and_api_paths_do_not() {
        let (_tmp, ui) = ui_dir();
        let app = app(Some(ui), None);
        for uri in [
            "/search",
            "/trace/5b8efff798038103d269b633813fc60c",
            "/deps?x=1",
            "/a/b/c",
        ] {
            let (status, ct, body) = get(&app, "GET", uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(ct, "text/html; charset=utf-8", "{uri}");
            assert!(body.contains("<title>spoor</title>"), "{uri}");
        }
        for uri in ["/assets/gone-123.js", "/api/nope", "/api"] {
            let (status, _, body) = get(&app, "GET", uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(!body.contains("<title>"), "{uri}");
        }
        // The API still answers next to the files.
        let (status, ct, body) = get(&app, "GET", "/api/services").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
        assert!(body.starts_with("{\"data\":"), "{body}");
        let (status, _, _) = get(&app, "POST", "/index.html").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn paths_cannot_leave_the_directory() {
        let (_tmp, ui) = ui_dir();
        let app = app(Some(ui), None);
        for uri in [
            "/../spoor-secret.txt",
            "/assets/../../spoor-secret.txt",
            "/%2e%2e/spoor-secret.txt",
            "/assets/..%2f..%2fspoor-secret.txt",
            "/.hidden",
        ] {
            let (status, _, body) = get(&app, "GET", uri).await;
            assert_ne!(status, StatusCode::OK, "{uri}");
            assert!(!body.contains("secret"), "{uri}");
        }
        assert_eq!(relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("//a//b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/a/../b"), None);
        assert_eq!(relative_path("/C:/x"), None);
    }

    #[tokio::test]
    async fn without_a_directory_no_files_are_served() {
        let app = app(None, None);
        let (status, _, _) = get(&app, "GET", "/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&app, "GET", "/search").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn ui_config_is_the_configured_json_or_empty() {
        let (status, ct, body) = get(&app(None, None), "GET", "/api/ui-config").await;
        assert_eq!(
            (status, ct.as_str(), body.as_str()),
            (StatusCode::OK, "application/json", "{}")
        );
        let cfg = serde_json::json!({
            "dependencies": {"menuEnabled": false},
            "menu": [{"label": "Docs", "url": "https://example.com/docs"}],
            "linkPatterns": [{"type": "tags", "key": "user.id", "url": "https://users/#{user.id}"}]
        });
        let (status, _, body) = get(&app(None, Some(cfg.clone())), "GET", "/api/ui-config").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            cfg
        );
    }

    #[test]
    fn base_paths_are_normalised_or_refused() {
        let cases: [(&str, Result<&str, &str>); 10] = [
            ("", Ok("")),
            ("/", Ok("")),
            ("/jaeger", Ok("/jaeger")),
            ("/jaeger/", Ok("/jaeger")),
            (" /a/b-c_d.e~/ ", Ok("/a/b-c_d.e~")),
            (
                "jaeger",
                Err("invalid query.base-path \"jaeger\": must start with /"),
            ),
            ("/a//b", Err("bad")),
            ("/a/../b", Err("bad")),
            ("/a b", Err("bad")),
            ("/\"><script>", Err("bad")),
        ];
        for (raw, want) in cases {
            let got = parse_base_path(raw);
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{raw:?}"),
                (Err("bad"), Err(e @ BasePathError::BadSegment(_))) => {
                    assert!(e.to_string().contains(&format!("{raw:?}")), "{e}")
                }
                (Err(w), Err(e)) if w != "bad" => assert_eq!(e.to_string(), w),
                (w, g) => panic!("{raw:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[tokio::test]
    async fn everything_is_served_under_the_base_path() {
        let (_tmp, dir) = ui_dir();
        std::fs::write(
            dir.join("index.html"),
            "<!doctype html><base href=\"/\" /><title>spoor</title><script src=\"./assets/app-1a2b.js\"></script>",
        )
        .unwrap();
        let store = Arc::new(MemoryStore::new(100));
        let app = router(
            store,
            QueryConfig {
                static_files: Some(dir.clone()),
                base_path: "/jaeger".into(),
                ..QueryConfig::default()
            },
        );
        let index = "<!doctype html><base href=\"/jaeger/\" /><title>spoor</title><script src=\"./assets/app-1a2b.js\"></script>";
        let html = "text/html; charset=utf-8";
        // (uri, status, content type, body)
        let cases = [
            ("/jaeger/", StatusCode::OK, html, index),
            ("/jaeger", StatusCode::OK, html, index),
            ("/jaeger/index.html", StatusCode::OK, html, index),
            ("/jaeger/search", StatusCode::OK, html, index),
            (
                "/jaeger/trace/5b8efff798038103d269b633813fc60c",
                StatusCode::OK,
                html,
                index,
            ),
            (
                "/jaeger/assets/app-1a2b.js",
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                "console.log(1)",
            ),
            (
                "/jaeger/api/services",
                StatusCode::OK,
                "application/json",
                "{\"data\":[],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}",
            ),
            (
                "/jaeger/api/ui-config",
                StatusCode::OK,
                "application/json",
                "{}",
            ),
            (
                "/jaeger/api/nope",
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            ),
            (
                "/api/services",
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            ),
            (
                "/search",
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            ),
            (
                "/jaegerx/api/services",
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            ),
            ("/", StatusCode::FOUND, "text/plain; charset=utf-8", ""),
        ];
        for (uri, status, ct, body) in cases {
            assert_eq!(
                get(&app, "GET", uri).await,
                (status, ct.to_string(), body.to_string()),
                "{uri}"
            );
        }
        let resp = app
            .clone()
            .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.headers()[header::LOCATION], "/jaeger/");
        // At the root the page is served as built.
        let root = app_with_index(&dir);
        let (status, _, body) = get(&root, "GET", "/search").await;
        assert_eq!(
            (status, body.contains("<base href=\"/\" />")),
            (StatusCode::OK, true)
        );
    }

    fn app_with_index(dir: &Path) -> axum::Router {
        app(Some(dir.to_path_buf()), None)
    }
}
