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

use parking_lot::{Mutex, RwLock};
use spoor_core::red::{LatencyHistogram, RedPoint};
use spoor_core::tail::TailStats;
use spoor_core::SpanKind;

/// Picks one counter out of a plugin's counters.
type PluginCounterOf = fn(&spoor_plugin_host::PluginStats) -> u64;

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
    /// Requests refused before their body was read (pipeline full, memory, storage; client
    /// told to retry): their spans were never decoded, so they are not in `spans_refused`.
    pub requests_refused: AtomicU64,
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
    /// The tail sampler's counters (all 0 without tail sampling).
    pub tail: TailGauges,
    /// RED span metrics, cumulative since start, in the OTel spanmetrics connector's names.
    pub spans: SpanMetrics,
    /// The plugin chain, whose per-plugin counters are rendered (None without plugins).
    pub plugins: RwLock<Option<Arc<spoor_plugin_host::ChainHandle>>>,
    /// The tail sampler's plugin policies, rendered with the chain's plugins (`calls`: traces
    /// decided; `spans_out`: spans of the traces they sampled).
    pub policy_plugins: RwLock<Vec<Arc<spoor_plugin_host::PolicyPlugin>>>,
    /// Changed plugin files that failed to load (the previous version kept running).
    pub plugin_reload_failures: AtomicU64,
    /// Spans dropped by a plugin's `drop` failure policy.
    pub plugin_spans_dropped: AtomicU64,
    /// The span log's counters (rendered only in the roles that use it).
    pub span_log: crate::spanlog::SpanLogMetrics,
    /// Object storage's counters (rendered only where it is configured).
    pub object_store: crate::objstore::ObjectStoreMetrics,
}

/// The tail sampler's counters and gauges, copied from [`TailStats`] after each step.
#[derive(Debug, Default)]
pub struct TailGauges {
    traces_sampled: AtomicU64,
    traces_dropped: AtomicU64,
    spans_dropped: AtomicU64,
    decided_early: AtomicU64,
    late_spans_sampled: AtomicU64,
    late_spans_dropped: AtomicU64,
    traces_in_flight: AtomicU64,
    bytes_in_flight: AtomicU64,
}

impl TailGauges {
    /// Copies the sampler's current figures.
    pub fn publish(&self, s: &TailStats) {
        self.traces_sampled.store(s.traces_sampled, Relaxed);
        self.traces_dropped.store(s.traces_dropped, Relaxed);
        self.spans_dropped.store(s.spans_dropped, Relaxed);
        self.decided_early.store(s.decided_early, Relaxed);
        self.late_spans_sampled.store(s.late_spans_sampled, Relaxed);
        self.late_spans_dropped.store(s.late_spans_dropped, Relaxed);
        self.traces_in_flight.store(s.traces_in_flight, Relaxed);
        self.bytes_in_flight.store(s.bytes_in_flight, Relaxed);
    }
}

/// Most (service, operation, kind) series exported on `/metrics`; the rest are counted in
/// `spoor_span_metrics_series_dropped_total` (the store keeps them all).
pub const MAX_SPAN_SERIES: usize = 10_000;

/// Latency bucket bounds in milliseconds: the OTel spanmetrics connector's defaults.
pub const SPAN_LATENCY_BOUNDS_MS: [u64; 16] = [
    2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000,
];

#[derive(Debug, Default)]
struct SpanSeries {
    calls: u64,
    errors: u64,
    latency: LatencyHistogram,
}

/// Cumulative RED series per (service, operation, kind), fed with closed buckets.
#[derive(Debug, Default)]
pub struct SpanMetrics {
    /// Keyed by tenant (`""` without tenancy), service, operation, kind.
    series: Mutex<BTreeMap<(String, String, String, SpanKind), SpanSeries>>,
    dropped: AtomicU64,
}

impl SpanMetrics {
    /// Adds closed buckets of `tenant` (`None`: no tenancy, no `tenant` label).
    pub fn add(&self, tenant: Option<&str>, points: &[RedPoint]) {
        let mut series = self.series.lock();
        for p in points {
            let key = (
                tenant.unwrap_or_default().to_string(),
                p.service.clone(),
                p.operation.clone(),
                p.kind,
            );
            if !series.contains_key(&key) && series.len() >= MAX_SPAN_SERIES {
                self.dropped.fetch_add(1, Relaxed);
                continue;
            }
            let s = series.entry(key).or_default();
            s.calls += p.calls;
            s.errors += p.errors;
            s.latency.merge(&p.histogram);
        }
    }

    /// Appends the series in the Prometheus text format, named and labelled as the OTel
    /// Collector's spanmetrics connector names them, so dashboards and Jaeger's Prometheus
    /// metrics store read them unchanged. OK and UNSET statuses are reported together as
    /// `STATUS_CODE_UNSET` (Spoor counts calls and errors).
    fn render(&self, out: &mut String) {
        let series = self.series.lock();
        let calls = "traces_span_metrics_calls_total";
        let dur = "traces_span_metrics_duration_milliseconds";
        let _ = writeln!(
            out,
            "# HELP {calls} Spans received, by service, operation, kind and status.\n# TYPE {calls} counter"
        );
        for ((tenant, service, op, kind), s) in series.iter() {
            let labels = span_labels(tenant, service, op, *kind);
            let _ = writeln!(
                out,
                "{calls}{{{labels},status_code=\"STATUS_CODE_UNSET\"}} {}",
                s.calls - s.errors.min(s.calls)
            );
            let _ = writeln!(
                out,
                "{calls}{{{labels},status_code=\"STATUS_CODE_ERROR\"}} {}",
                s.errors
            );
        }
        let _ = writeln!(
            out,
            "# HELP {dur} Span durations, by service, operation and kind.\n# TYPE {dur} histogram"
        );
        for ((tenant, service, op, kind), s) in series.iter() {
            let labels = span_labels(tenant, service, op, *kind);
            for le in SPAN_LATENCY_BOUNDS_MS {
                let _ = writeln!(
                    out,
                    "{dur}_bucket{{{labels},le=\"{le}\"}} {}",
                    s.latency.count_at_or_below(le * 1_000_000)
                );
            }
            let _ = writeln!(
                out,
                "{dur}_bucket{{{labels},le=\"+Inf\"}} {}",
                s.latency.count()
            );
            let _ = writeln!(
                out,
                "{dur}_sum{{{labels}}} {}",
                s.latency.sum_nanos() as f64 / 1e6
            );
            let _ = writeln!(out, "{dur}_count{{{labels}}} {}", s.latency.count());
        }
        let d = "spoor_span_metrics_series_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {d} Span-metric points not exported because {MAX_SPAN_SERIES} series exist.\n# TYPE {d} counter\n{d} {}",
            self.dropped.load(Relaxed)
        );
    }
}

fn span_labels(tenant: &str, service: &str, op: &str, kind: SpanKind) -> String {
    let tenant = if tenant.is_empty() {
        String::new()
    } else {
        format!("tenant=\"{}\",", escape_label(tenant))
    };
    format!(
        "{tenant}service_name=\"{}\",span_name=\"{}\",span_kind=\"{}\"",
        escape_label(service),
        escape_label(op),
        match kind {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    )
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
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
        let per_receiver: [(&str, &str, CounterOf); 6] = [
            ("spoor_receiver_requests_total", "Requests received.", |c| {
                &c.requests
            }),
            (
                "spoor_receiver_bad_requests_total",
                "Requests refused as malformed, too large or of the wrong type.",
                |c| &c.bad_requests,
            ),
            (
                "spoor_receiver_requests_refused_total",
                "Requests refused before their body was read (pipeline full, memory over the soft limit, storage failing); their spans were never decoded.",
                |c| &c.requests_refused,
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
        let t = &self.tail;
        let tail: [(&str, &str, &str, &AtomicU64); 8] = [
            (
                "spoor_tail_traces_sampled_total",
                "counter",
                "Traces the tail sampler kept.",
                &t.traces_sampled,
            ),
            (
                "spoor_tail_traces_dropped_total",
                "counter",
                "Traces the tail sampler dropped.",
                &t.traces_dropped,
            ),
            (
                "spoor_tail_spans_dropped_total",
                "counter",
                "Spans of dropped traces.",
                &t.spans_dropped,
            ),
            (
                "spoor_tail_decided_early_total",
                "counter",
                "Traces decided before their wait because the buffer was full.",
                &t.decided_early,
            ),
            (
                "spoor_tail_late_spans_sampled_total",
                "counter",
                "Spans that arrived after their trace was kept, stored.",
                &t.late_spans_sampled,
            ),
            (
                "spoor_tail_late_spans_dropped_total",
                "counter",
                "Spans that arrived after their trace was dropped.",
                &t.late_spans_dropped,
            ),
            (
                "spoor_tail_traces_in_flight",
                "gauge",
                "Traces waiting for a tail-sampling decision.",
                &t.traces_in_flight,
            ),
            (
                "spoor_tail_bytes_in_flight",
                "gauge",
                "Bytes of spans waiting for a tail-sampling decision.",
                &t.bytes_in_flight,
            ),
        ];
        for (name, kind, help, v) in tail {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
        self.spans.render(&mut out);
        self.render_plugins(&mut out);
        self.span_log.render(&mut out);
        self.object_store.render(&mut out);
        out
    }

    fn render_plugins(&self, out: &mut String) {
        for (name, help, v) in [
            (
                "spoor_plugin_reload_failures_total",
                "Changed plugin files that failed to load; the previous version kept running.",
                &self.plugin_reload_failures,
            ),
            (
                "spoor_plugin_spans_dropped_total",
                "Spans dropped because a plugin failed with on-error = drop.",
                &self.plugin_spans_dropped,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let mut stats = self
            .plugins
            .read()
            .clone()
            .map(|h| h.stats())
            .unwrap_or_default();
        stats.extend(self.policy_plugins.read().iter().map(|p| p.stats()));
        if stats.is_empty() {
            return;
        }
        let per_plugin: [(&str, &str, PluginCounterOf); 4] = [
            (
                "spoor_plugin_calls_total",
                "Batches a plugin processed.",
                |s| s.calls,
            ),
            (
                "spoor_plugin_spans_in_total",
                "Spans handed to a plugin.",
                |s| s.spans_in,
            ),
            (
                "spoor_plugin_spans_out_total",
                "Spans a plugin returned.",
                |s| s.spans_out,
            ),
            (
                "spoor_plugin_time_nanos_total",
                "Time spent in a plugin.",
                |s| s.nanos,
            ),
        ];
        for (name, help, get) in per_plugin {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in &stats {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\"}} {}",
                    escape_label(&s.plugin),
                    get(s)
                );
            }
        }
        let name = "spoor_plugin_failures_total";
        let _ = writeln!(
            out,
            "# HELP {name} Plugin calls that failed, by kind (trap, out_of_fuel, ...).\n# TYPE {name} counter"
        );
        for s in &stats {
            for (kind, n) in &s.failures {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\",kind=\"{}\"}} {n}",
                    escape_label(&s.plugin),
                    kind.as_str()
                );
            }
        }
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
