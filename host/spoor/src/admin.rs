//! The admin port (14269 by default): health at `/` in the shape of Jaeger's health check
//! (`Server available` only once storage is open) and Prometheus metrics at `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// Shared state of the admin endpoints.
#[derive(Clone)]
pub struct Admin {
    /// Set once storage is open and receivers run.
    pub ready: Arc<AtomicBool>,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    started: Instant,
    started_unix_secs: u64,
}

impl Admin {
    /// New admin state, not ready.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let started_unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Admin {
            ready: Arc::new(AtomicBool::new(false)),
            metrics,
            started: Instant::now(),
            started_unix_secs,
        }
    }

    /// The admin router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(health))
            .route("/metrics", get(metrics))
            .with_state(self)
    }
}

async fn health(State(admin): State<Admin>) -> impl IntoResponse {
    let json = if admin.ready.load(Relaxed) {
        let body = serde_json::json!({
            "status": "Server available",
            "upSince": rfc3339(admin.started_unix_secs),
            "uptime": format!("{:.3}s", admin.started.elapsed().as_secs_f64()),
        });
        (StatusCode::OK, body)
    } else {
        let body = serde_json::json!({ "status": "Server not available", "upSince": "0001-01-01T00:00:00Z", "uptime": "0s" });
        (StatusCode::SERVICE_UNAVAILABLE, body)
    };
    (
        json.0,
        [(header::CONTENT_TYPE, "application/json")],
        json.1.to_string(),
    )
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp (civil-from-days, no time-zone database).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_651_199), "2026-11-25T23:59:59Z");
    }
}
