//! Structured logs (text or JSON lines on stderr) and a rate limit for log lines caused by
//! clients, so that a flood of bad requests cannot flood the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Mutex;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is an `EnvFilter` directive such as `info`.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log.level {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install logger: {e}"))
}

/// One warning per receiver per this interval at most; the rest are counted and reported with
/// the next line that gets through.
const INTERVAL: Duration = Duration::from_secs(10);

static LIMITER: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);

/// Logs a warning about a bad client request, at most once per receiver per 10 s.
pub fn rate_limited_warn(receiver: &'static str, reason: &str) {
    let suppressed = {
        let mut guard = LIMITER.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        let now = Instant::now();
        match map.get_mut(receiver) {
            Some((last, skipped)) if now.duration_since(*last) < INTERVAL => {
                *skipped += 1;
                return;
            }
            Some((last, skipped)) => {
                *last = now;
                std::mem::take(skipped)
            }
            None => {
                map.insert(receiver, (now, 0));
                0
            }
        }
    };
    tracing::warn!(receiver, suppressed, "bad request: {reason}");
}
