//! The memory limiter: refuses ingest while the process's resident memory is above a soft limit,
//! the way the OpenTelemetry Collector's `memory_limiter` processor does with the Go heap.
//!
//! The byte-bounded pipeline queue already bounds what *Spoor* holds; the limiter bounds what
//! the *process* holds, whatever it is spent on (request buffers of many slow clients, the
//! store's caches, allocator slack). A background task samples the resident set size every
//! `check_interval`; while it is at or above `limit - spike`, [`MemoryLimiter::refusing`] is
//! true and the pipeline answers 429 / `RESOURCE_EXHAUSTED` with a retry hint, exactly as for a
//! full queue. The spike headroom covers what can arrive between two checks.
//!
//! The resident set size is read from the `VmRSS` line of `/proc/self/status` (Linux). Where that file does not
//! exist the limiter logs once that it cannot measure and never refuses: the queue bound still
//! holds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::watch;

use crate::metrics::Metrics;

pub use spoor_config::MemoryLimitConfig;

/// The limiter's shared state; the pipeline reads [`MemoryLimiter::refusing`] per request.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    refusing: AtomicBool,
    /// Last sampled resident set size in bytes (0 before the first sample or when unknown).
    pub rss_bytes: AtomicU64,
    /// Largest resident set size sampled since start.
    pub rss_peak_bytes: AtomicU64,
    /// Times the limiter started refusing.
    pub activations: AtomicU64,
}

impl MemoryLimiter {
    /// True while ingest must be refused.
    pub fn refusing(&self) -> bool {
        self.refusing.load(Relaxed)
    }

    /// Records one sample and decides whether to refuse; returns the new state.
    pub fn observe(&self, rss: u64, cfg: &MemoryLimitConfig) -> bool {
        self.rss_bytes.store(rss, Relaxed);
        self.rss_peak_bytes.fetch_max(rss, Relaxed);
        let refuse = cfg.limit_bytes > 0 && rss >= cfg.soft_limit();
        let was = self.refusing.swap(refuse, Relaxed);
        if refuse && !was {
            self.activations.fetch_add(1, Relaxed);
            tracing::warn!(
                rss_mib = rss >> 20,
                soft_limit_mib = cfg.soft_limit() >> 20,
                "memory above the soft limit: refusing ingest until it drops"
            );
        } else if was && !refuse {
            tracing::info!(rss_mib = rss >> 20, "memory below the soft limit again");
        }
        refuse
    }
}

/// Samples the resident set size every `cfg.check_interval` into `metrics.memory` until `stop`
/// turns true. Runs even without a limit, so `/metrics` always shows the process's memory.
pub fn spawn(
    metrics: Arc<Metrics>,
    cfg: MemoryLimitConfig,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match resident_set_bytes() {
                Some(rss) => {
                    metrics.memory.observe(rss, &cfg);
                }
                None if !warned => {
                    warned = true;
                    if cfg.limit_bytes > 0 {
                        tracing::warn!(
                            "cannot read the resident set size on this system: the memory \
                             limiter is inactive (the pipeline queue bound still applies)"
                        );
                    }
                }
                None => {}
            }
        }
    })
}

/// The process's resident set size in bytes, from the `VmRSS` line of `/proc/self/status`
/// (in kB whatever the page size).
pub fn resident_set_bytes() -> Option<u64> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_status(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(limit_mib: u64, spike_mib: u64) -> MemoryLimitConfig {
        MemoryLimitConfig {
            limit_bytes: limit_mib << 20,
            spike_bytes: spike_mib << 20,
            check_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn refuses_above_the_soft_limit_and_recovers_below_it() {
        let l = MemoryLimiter::default();
        let c = cfg(256, 56); // soft limit 200 MiB
        assert!(!l.observe(150 << 20, &c));
        assert!(l.observe(200 << 20, &c));
        assert!(l.refusing());
        assert!(l.observe(230 << 20, &c));
        assert!(!l.observe(199 << 20, &c));
        assert!(!l.refusing());
        assert!(l.observe(210 << 20, &c));
        assert_eq!(l.activations.load(Relaxed), 2);
        assert_eq!(l.rss_peak_bytes.load(Relaxed), 230 << 20);
        assert_eq!(l.rss_bytes.load(Relaxed), 210 << 20);
    }

    #[test]
    fn a_zero_limit_never_refuses() {
        let l = MemoryLimiter::default();
        assert!(!l.observe(u64::MAX, &cfg(0, 0)));
        assert_eq!(l.activations.load(Relaxed), 0);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tspoor\nVmHWM:\t  9000 kB\nVmRSS:\t    1200 kB\nThreads:\t4\n";
        assert_eq!(parse_status(status), Some(1200 * 1024));
        assert_eq!(parse_status("Name:\tspoor\n"), None);
        assert_eq!(parse_status("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        if std::path::Path::new("/proc/self/status").exists() {
            let rss = resident_set_bytes().expect("status readable");
            assert!(rss > 1 << 20, "rss {rss} is implausibly small");
        }
    }
}
