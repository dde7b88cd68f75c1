//! The web UI's side of the query server: `GET /api/ui-config` (the UI options JSON) and the
//! static files of the built UI (`www/dist`), with `index.html` for every other non-API path
//! so the single-page app can route in the browser.
//!
//! Files are read from disk on each request (the UI is a few files; the OS caches them), so a
//! rebuilt UI is served without a restart. Only plain relative paths are served: a path with
//! `..`, `.`, a backslash, a NUL or a percent escape never reaches the file system.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

use crate::AppState;

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
            return file_response(&f, bytes, head);
        }
        // A missing asset (`/assets/x.js`) is a 404, not the HTML page under a script's name.
        if rel.extension().is_some() {
            return plain(StatusCode::NOT_FOUND, "404 page not found\n");
        }
    }
    let index = root.join("index.html");
    match read(index.clone()).await {
        Some(bytes) => file_response(&index, bytes, head),
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use spoor_store::memory::MemoryStore;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, QueryConfig};

    /// A fresh directory holding a small built UI.
    fn ui_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spoor-query-ui-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
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
        std::fs::write(dir.parent().unwrap().join("spoor-secret.txt"), "secret").unwrap();
        dir
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
        let app = app(Some(ui_dir()), None);
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
        let app = app(Some(ui_dir()), None);
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
        let app = app(Some(ui_dir()), None);
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
}
