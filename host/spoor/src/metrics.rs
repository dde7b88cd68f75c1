//! Self-telemetry: counters and gauges the daemon keeps about itself, rendered in the
//! Prometheus text format on the admin port's `/metrics`.
//!
//! Names follow one scheme, `spoor_<component>_<thing>_<unit>_total` for counters and
//! `spoor_<component>_<thing>_<unit>` for gauges, so dashboards can be written once. Counters
//! are plain atomics: the hot path pays one relaxed add per request, never a lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::RwLock;

/// Picks one counter out of a receiver's counters.
type CounterOf = fn(&ReceiverCounters) -> &AtomicU64;

/// Counters kept per receiver.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests refused before producing spans (malformed, wrong type, too large).
    pub bad_requests: AtomicU64,
    /// Spans accepted into the pipeline.
    pub spans_accepted: AtomicU64,
    /// Spans rejected by decoding or validation.
    pub spans_rejected: AtomicU64,
    /// Spans refused because the pipeline was full (client told to retry).
    pub spans_refused: AtomicU64,
}

/// Counters of the pipeline.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Bytes currently queued (gauge).
    pub queue_bytes: AtomicU64,
    /// Queue capacity in bytes (gauge).
    pub queue_capacity_bytes: AtomicU64,
    /// Batches handed to storage.
    pub batches: AtomicU64,
    /// Spans written to storage.
    pub spans_written: AtomicU64,
    /// Failed storage writes (each retried).
    pub write_errors: AtomicU64,
    /// Spans given up on after storage kept failing during shutdown.
    pub spans_dropped: AtomicU64,
    /// Total time spent in storage writes, microseconds.
    pub write_micros: AtomicU64,
    /// Warnings and non-rejecting problems found by validation.
    pub validation_warnings: AtomicU64,
    /// Dependency links written.
    pub dependency_links: AtomicU64,
    /// Children whose parent never arrived in time for dependency linking.
    pub dependency_orphans: AtomicU64,
}

/// Gauges of the store, refreshed from `TraceStore::stats`.
#[derive(Debug, Default)]
pub struct StoreGauges {
    /// Bytes on disk.
    pub bytes_on_disk: AtomicU64,
    /// Traces held (memory store).
    pub traces: AtomicU64,
    /// Traces evicted by capacity.
    pub traces_evicted: AtomicU64,
    /// Partitions held.
    pub partitions: AtomicU64,
    /// Partitions dropped by retention.
    pub partitions_expired: AtomicU64,
}

/// Counters of the sampling strategies.
#[derive(Debug, Default)]
pub struct SamplingCounters {
    /// Reloads of the strategies file refused (bad or unreadable file; the last good one stays).
    pub strategies_reload_failures: AtomicU64,
}

/// All self-metrics of the daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    receivers: RwLock<BTreeMap<&'static str, Arc<ReceiverCounters>>>,
    /// Pipeline counters.
    pub pipeline: PipelineCounters,
    /// Storage gauges, refreshed periodically from `TraceStore::stats`.
    pub store: StoreGauges,
    /// Sampling strategies counters.
    pub sampling: SamplingCounters,
    /// The process memory limiter's state (resident memory, whether ingest is refused).
    pub memory: crate::memlimit::MemoryLimiter,
}

impl Metrics {
    /// The counters of one receiver, created on first use.
    pub fn receiver(&self, name: &'static str) -> Arc<ReceiverCounters> {
        if let Some(c) = self.receivers.read().get(name) {
            return c.clone();
        }
        self.receivers.write().entry(name).or_default().clone()
    }

    /// Renders everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let receivers = self.receivers.read();
        let per_receiver: [(&str, &str, CounterOf); 5] = [
            ("spoor_receiver_requests_total", "Requests received.", |c| {
                &c.requests
            }),
            (
                "spoor_receiver_bad_requests_total",
                "Requests refused as malformed, too large or of the wrong type.",
                |c| &c.bad_requests,
            ),
            (
                "spoor_receiver_spans_accepted_total",
                "Spans accepted into the pipeline.",
                |c| &c.spans_accepted,
            ),
            (
                "spoor_receiver_spans_rejected_total",
                "Spans rejected by decoding or validation.",
                |c| &c.spans_rejected,
            ),
            (
                "spoor_receiver_spans_refused_total",
                "Spans refused because the pipeline was full.",
                |c| &c.spans_refused,
            ),
        ];
        for (name, help, get) in per_receiver {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (receiver, c) in receivers.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{receiver=\"{receiver}\"}} {}",
                    get(c).load(Relaxed)
                );
            }
        }
        let p = &self.pipeline;
        let s = &self.store;
        let m = &self.memory;
        let plain: [(&str, &str, &str, &AtomicU64); 18] = [
            (
                "spoor_process_resident_memory_bytes",
                "gauge",
                "Resident memory of the process at the last memory-limiter check.",
                &m.rss_bytes,
            ),
            (
                "spoor_process_resident_memory_peak_bytes",
                "gauge",
                "Largest resident memory seen by the memory limiter since start.",
                &m.rss_peak_bytes,
            ),
            (
                "spoor_memory_limiter_activations_total",
                "counter",
                "Times resident memory crossed the soft limit and ingest was refused.",
                &m.activations,
            ),
            (
                "spoor_pipeline_queue_bytes",
                "gauge",
                "Bytes waiting in the pipeline queue.",
                &p.queue_bytes,
            ),
            (
                "spoor_pipeline_queue_capacity_bytes",
                "gauge",
                "Capacity of the pipeline queue.",
                &p.queue_capacity_bytes,
            ),
            (
                "spoor_pipeline_batches_total",
                "counter",
                "Batches written to storage.",
                &p.batches,
            ),
            (
                "spoor_pipeline_spans_written_total",
                "counter",
                "Spans written to storage.",
                &p.spans_written,
            ),
            (
                "spoor_pipeline_write_errors_total",
                "counter",
                "Storage writes that failed and were retried.",
                &p.write_errors,
            ),
            (
                "spoor_pipeline_spans_dropped_total",
                "counter",
                "Accepted spans lost because storage failed until shutdown.",
                &p.spans_dropped,
            ),
            (
                "spoor_pipeline_write_micros_total",
                "counter",
                "Time spent writing to storage.",
                &p.write_micros,
            ),
            (
                "spoor_pipeline_validation_warnings_total",
                "counter",
                "Problems validation fixed without rejecting a span.",
                &p.validation_warnings,
            ),
            (
                "spoor_pipeline_dependency_links_total",
                "counter",
                "Dependency link counts written.",
                &p.dependency_links,
            ),
            (
                "spoor_pipeline_dependency_orphans_total",
                "counter",
                "Child spans whose parent never arrived for dependency linking.",
                &p.dependency_orphans,
            ),
            (
                "spoor_store_disk_bytes",
                "gauge",
                "Bytes the store occupies on disk.",
                &s.bytes_on_disk,
            ),
            (
                "spoor_store_traces",
                "gauge",
                "Traces held by the memory store.",
                &s.traces,
            ),
            (
                "spoor_store_traces_evicted_total",
                "counter",
                "Traces evicted by the memory store's capacity.",
                &s.traces_evicted,
            ),
            (
                "spoor_store_partitions",
                "gauge",
                "Time partitions held.",
                &s.partitions,
            ),
            (
                "spoor_store_partitions_expired_total",
                "counter",
                "Partitions dropped by retention.",
                &s.partitions_expired,
            ),
        ];
        for (name, kind, help, v) in plain {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
        let name = "spoor_sampling_strategies_reload_failures_total";
        let _ = writeln!(
            out,
            "# HELP {name} Reloads of the sampling strategies file refused; the last good one stays.\n# TYPE {name} counter\n{name} {}",
            self.sampling.strategies_reload_failures.load(Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.receiver("otlp_http").spans_accepted.fetch_add(3, Relaxed);
        m.receiver("otlp_grpc").requests.fetch_add(1, Relaxed);
        m.pipeline.batches.fetch_add(2, Relaxed);
        let text = m.render();
        assert!(
            text.contains("spoor_receiver_spans_accepted_total{receiver=\"otlp_http\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("spoor_receiver_requests_total{receiver=\"otlp_grpc\"} 1\n"));
        assert!(text.contains(
            "# TYPE spoor_pipeline_batches_total counter\nspoor_pipeline_batches_total 2\n"
        ));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
