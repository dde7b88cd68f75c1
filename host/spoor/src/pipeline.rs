//! The ingest pipeline: validation → bounded queue → batching → store, with dependency links
//! aggregated online and self-metrics at every step.
//!
//! Validation runs in the receiving request (not behind the queue) because OTLP's partial-success
//! reply must say how many spans were rejected. The queue is bounded in *bytes* by a semaphore:
//! a request that does not fit is refused at once with [`IngestError::Overloaded`] (429 /
//! RESOURCE_EXHAUSTED) and counted, so memory stays bounded and nothing is dropped silently.
//! The same refusal is given while the process's resident memory is above the memory
//! limiter's soft limit ([`crate::memlimit`]), whatever the queue holds.
//! One writer task owns the [`Batcher`] and the [`DependencyLinker`]; store calls run on
//! blocking threads. A write that fails is retried with back-off while its queue space stays
//! taken, so a failing disk turns into back-pressure rather than loss. Clients waiting for a
//! durable acknowledgement are answered [`IngestError::Storage`] (503 / UNAVAILABLE with a retry
//! hint) instead of waiting for the disk. While storage is *full*, new requests are refused at
//! once the same way (other failures, such as an agent's collector being away, fill the bounded
//! queue, the agent's buffer, and then get 429); the failing batch is retried until a write
//! succeeds, and then ingest resumes by itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spoor_core::batch::{BatchConfig, Batcher};
use spoor_core::deps::{DependencyLinker, LinkerConfig};
use spoor_core::red::RedAggregator;
use spoor_core::sampling::{Adaptive, Threshold};
use spoor_core::tail::{ExternalPolicies, TailOutput, TailSampler};
use spoor_core::validate::{validate_batch, Limits};
use spoor_core::{AnyValue, Span};
use spoor_plugin_host::{ChainHandle, OnError, PolicyPlugin};
use spoor_store::TraceStore;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::ingest::{Ingest, IngestBatch, IngestError, IngestFuture, IngestOutcome};
use crate::metrics::Metrics;

/// Queue accounting unit: permits are kibibytes of approximate span size.
const PERMIT_BYTES: usize = 1024;

/// Problems listed in a partial-success message before it says "and N more".
const MAX_LISTED_PROBLEMS: usize = 3;

/// Says whether the store can take writes now (see [`PipelineConfig::available`]).
#[derive(Clone)]
pub struct Availability(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Availability")
    }
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Bytes the queue may hold (approximate in-memory span size).
    pub queue_bytes: usize,
    /// When the writer hands a batch to storage.
    pub batch: BatchConfig,
    /// Acknowledge only after the store flushed (durability `sync`).
    pub sync: bool,
    /// Whether the store can take writes now (the span log: connected to NATS); while it says
    /// no, ingest is refused at once as unavailable (503, retryable) instead of queueing.
    pub available: Option<Availability>,
    /// Validation limits.
    pub limits: Limits,
    /// Retry hint given with 429 / RESOURCE_EXHAUSTED.
    pub retry_after: Duration,
    /// Dependency linking.
    pub linker: LinkerConfig,
    /// Whether to derive dependency links at all (the agent leaves them to the collector).
    pub links: bool,
    /// RED span metrics bucket in nanoseconds (`None`: no span metrics).
    pub span_metrics_bucket_nanos: Option<u64>,
    /// Tail sampling (validated settings; `None`: every accepted span is stored).
    pub tail: Option<crate::config::TailSettings>,
    /// The loaded plugin policies of `tail`, in `TailConfig::plugin_sections` order.
    pub tail_plugins: Vec<Arc<PolicyPlugin>>,
    /// Adaptive sampling calculator fed with the root spans received (`None`: off).
    pub adaptive: Option<Arc<parking_lot::Mutex<Adaptive>>>,
    /// Pipeline plugins, run on every accepted request after validation (`None`: none).
    pub plugins: Option<Arc<ChainHandle>>,
    /// The tenant whose spans this pipeline takes, the `tenant` label of its span metrics on
    /// `/metrics` (`None`: no tenancy, no label).
    pub tenant: Option<String>,
}

type Ack = oneshot::Sender<Result<(), String>>;

struct Item {
    spans: Vec<Span>,
    bytes: usize,
    /// Queue space held until the spans are written (`None` for spans released by the tail
    /// sampler, whose queue space was given back when they entered its buffer).
    _permit: Option<OwnedSemaphorePermit>,
    /// Bytes counted in the queue gauge.
    queued_bytes: usize,
    ack: Option<Ack>,
}

enum Msg {
    Item(Item),
    Shutdown,
}

/// Whether storage writes are failing, shared by the writer (which sets and clears it) and
/// the receiving side (which refuses at once while it is set).
#[derive(Default)]
struct StorageHealth {
    failing: AtomicBool,
    /// What clients are told while `failing` (no file paths: those go to the log only).
    reason: parking_lot::Mutex<String>,
}

/// What a client is told when a storage write failed: the cause without file paths or other
/// details of the machine (those are in the log), and whether storage is full (a state that
/// lasts until an operator frees space, so new requests are refused at once rather than queued;
/// other failures, such as an agent's collector being away, keep filling the bounded queue,
/// which is the agent's buffer).
fn client_reason(e: &spoor_store::StoreError) -> (String, bool) {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("no space left on device") || text.contains("os error 28") {
        ("no space left on the storage device".to_string(), true)
    } else if text.contains("os error 122") {
        ("storage quota exceeded".to_string(), true)
    } else {
        ("storage write failed".to_string(), false)
    }
}

/// The running pipeline; receivers hold it as `Arc<dyn Ingest>`.
pub struct Pipeline {
    tx: mpsc::UnboundedSender<Msg>,
    permits: Arc<Semaphore>,
    capacity_permits: usize,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
    cfg: PipelineConfig,
    writer: parking_lot::Mutex<Option<JoinHandle<()>>>,
    health: Arc<StorageHealth>,
}

/// Nanoseconds since the Unix epoch, read once per use by the host (core never reads a clock).
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Pipeline {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(
        store: Arc<dyn TraceStore>,
        metrics: Arc<Metrics>,
        cfg: PipelineConfig,
    ) -> Arc<Pipeline> {
        let capacity_permits = cfg.queue_bytes.div_ceil(PERMIT_BYTES).max(1);
        metrics
            .pipeline
            .queue_capacity_bytes
            .store((capacity_permits * PERMIT_BYTES) as u64, Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let tail = cfg.tail.as_ref().and_then(|t| match TailSampler::new(t) {
            Ok(mut s) => {
                if s.plugin_count() > 0 {
                    s.set_external(Box::new(PluginPolicies {
                        plugins: cfg.tail_plugins.clone(),
                    }));
                }
                Some(s)
            }
            Err(e) => {
                // settings were validated at start-up; this cannot be reached with them
                tracing::error!(error = %e, "tail sampling settings invalid: tail sampling off");
                None
            }
        });
        let health = Arc::new(StorageHealth::default());
        let writer = Writer {
            rx,
            held: VecDeque::new(),
            shutdown_requested: false,
            health: health.clone(),
            store,
            metrics: metrics.clone(),
            batcher: Batcher::new(cfg.batch.clone()),
            linker: DependencyLinker::new(cfg.linker.clone()),
            red: cfg.span_metrics_bucket_nanos.map(RedAggregator::new),
            tail_blocking: tail.as_ref().is_some_and(|t| t.plugin_count() > 0),
            tail,
            adaptive: cfg.adaptive.clone(),
            last_calculation: now_nanos(),
            sync: cfg.sync,
            links: cfg.links,
            shutting_down: false,
            last_links: Instant::now(),
            tenant: cfg.tenant.clone(),
        };
        let handle = tokio::spawn(writer.run());
        Arc::new(Pipeline {
            tx,
            permits: Arc::new(Semaphore::new(capacity_permits)),
            capacity_permits,
            closed: AtomicBool::new(false),
            metrics,
            cfg,
            writer: parking_lot::Mutex::new(Some(handle)),
            health,
        })
    }

    /// Stops accepting, writes everything queued, flushes the store and waits for the writer.
    /// Call after the receivers stopped, so no request is between validation and the queue.
    pub async fn shutdown(&self) {
        self.closed.store(true, Relaxed);
        let _ = self.tx.send(Msg::Shutdown);
        let handle = self.writer.lock().take();
        if let Some(h) = handle {
            if let Err(e) = h.await {
                tracing::error!(error = %e, "pipeline writer ended abnormally");
            }
        }
    }

    async fn ingest_inner(&self, batch: IngestBatch) -> Result<IngestOutcome, IngestError> {
        let counters = self.metrics.receiver(batch.receiver);
        counters.requests.fetch_add(1, Relaxed);
        if self.closed.load(Relaxed) {
            counters
                .spans_refused
                .fetch_add(batch.spans.len() as u64, Relaxed);
            return Err(IngestError::ShuttingDown);
        }
        let validated = validate_batch(batch.spans, &self.cfg.limits);
        let rejected = batch.rejected + validated.rejected;
        let warnings = validated.diagnostics.iter().filter(|d| !d.rejected).count();
        self.metrics
            .pipeline
            .validation_warnings
            .fetch_add(warnings as u64, Relaxed);
        let message = rejection_message(&batch.problems, batch.rejected, &validated.summary());
        counters.spans_rejected.fetch_add(rejected as u64, Relaxed);
        let spans = validated.spans;
        let count = spans.len();
        if count == 0 {
            return Ok(IngestOutcome {
                accepted: 0,
                rejected,
                message,
            });
        }
        if let Some(available) = &self.cfg.available {
            if !(available.0)() {
                counters.spans_refused.fetch_add(count as u64, Relaxed);
                return Err(IngestError::Storage(
                    "the span log is unreachable, retry later".into(),
                ));
            }
        }
        if self.health.failing.load(Relaxed) {
            counters.spans_refused.fetch_add(count as u64, Relaxed);
            return Err(IngestError::Storage(self.health.reason.lock().clone()));
        }
        if self.metrics.memory.refusing() {
            counters.spans_refused.fetch_add(count as u64, Relaxed);
            return Err(IngestError::Overloaded {
                retry_after: self.cfg.retry_after,
            });
        }
        let bytes: usize = spans.iter().map(Span::approx_size).sum();
        // A single request larger than the whole queue may still pass when the queue is empty.
        let wanted = bytes.div_ceil(PERMIT_BYTES).clamp(1, self.capacity_permits);
        let permit = match self.permits.clone().try_acquire_many_owned(wanted as u32) {
            Ok(p) => p,
            Err(_) => {
                counters.spans_refused.fetch_add(count as u64, Relaxed);
                return Err(IngestError::Overloaded {
                    retry_after: self.cfg.retry_after,
                });
            }
        };
        // Plugins run after admission (no work for a refused request) and before the queue;
        // the queue space taken is the size before plugins.
        let (spans, bytes) = match &self.cfg.plugins {
            Some(chain) => {
                let spans = self.run_plugins(chain, spans).await?;
                let bytes = spans.iter().map(Span::approx_size).sum();
                (spans, bytes)
            }
            None => (spans, bytes),
        };
        if spans.is_empty() {
            counters.spans_accepted.fetch_add(count as u64, Relaxed);
            return Ok(IngestOutcome {
                accepted: count,
                rejected,
                message,
            });
        }
        let (ack, done) = if self.cfg.sync {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let item = Item {
            spans,
            bytes,
            _permit: Some(permit),
            queued_bytes: bytes,
            ack,
        };
        if self.tx.send(Msg::Item(item)).is_err() {
            counters.spans_refused.fetch_add(count as u64, Relaxed);
            return Err(IngestError::ShuttingDown);
        }
        self.metrics
            .pipeline
            .queue_bytes
            .fetch_add(bytes as u64, Relaxed);
        if let Some(done) = done {
            match done.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(IngestError::Storage(e)),
                Err(_) => return Err(IngestError::ShuttingDown),
            }
        }
        counters.spans_accepted.fetch_add(count as u64, Relaxed);
        Ok(IngestOutcome {
            accepted: count,
            rejected,
            message,
        })
    }
}

impl Pipeline {
    /// Runs the plugin chain on a blocking thread. Failures are handled by each plugin's policy
    /// inside the chain and only counted and logged here; if the chain itself cannot run, the
    /// request is refused (503, retryable), so nothing the client was told is accepted is lost.
    async fn run_plugins(
        &self,
        chain: &Arc<ChainHandle>,
        spans: Vec<Span>,
    ) -> Result<Vec<Span>, IngestError> {
        let chain = chain.clone();
        let n = spans.len() as u64;
        let out = tokio::task::spawn_blocking(move || chain.process(spans))
            .await
            .map_err(|e| IngestError::Storage(format!("plugin chain failed: {e}")))?;
        for f in &out.errors {
            if f.action == OnError::Drop {
                // the batch was dropped by this plugin's policy (counted as it arrived)
                self.metrics.plugin_spans_dropped.fetch_add(n, Relaxed);
            }
            crate::logging::rate_limited_warn("plugins", &f.to_string());
        }
        Ok(out.spans)
    }
}

impl Ingest for Pipeline {
    fn ingest(&self, batch: IngestBatch) -> IngestFuture<'_> {
        Box::pin(self.ingest_inner(batch))
    }

    fn admit(&self, receiver: &'static str) -> Result<(), IngestError> {
        let refused = if self.closed.load(Relaxed) {
            Some(IngestError::ShuttingDown)
        } else if self
            .cfg
            .available
            .as_ref()
            .is_some_and(|available| !(available.0)())
        {
            Some(IngestError::Storage(
                "the span log is unreachable, retry later".into(),
            ))
        } else if self.health.failing.load(Relaxed) {
            Some(IngestError::Storage(self.health.reason.lock().clone()))
        } else if self.metrics.memory.refusing() || self.permits.available_permits() == 0 {
            Some(IngestError::Overloaded {
                retry_after: self.cfg.retry_after,
            })
        } else {
            None
        };
        match refused {
            None => Ok(()),
            Some(e) => {
                let counters = self.metrics.receiver(receiver);
                counters.requests.fetch_add(1, Relaxed);
                counters.requests_refused.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    fn bad_request(&self, receiver: &'static str, reason: &str) {
        self.metrics
            .receiver(receiver)
            .bad_requests
            .fetch_add(1, Relaxed);
        crate::logging::rate_limited_warn(receiver, reason);
    }
}

/// Joins decode problems and the validation summary into one partial-success message.
fn rejection_message(
    decode_problems: &[String],
    decode_rejected: usize,
    validation: &str,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if decode_rejected > 0 || !decode_problems.is_empty() {
        let mut s = decode_problems
            .iter()
            .take(MAX_LISTED_PROBLEMS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if decode_problems.len() > MAX_LISTED_PROBLEMS {
            s.push_str(&format!(
                "; and {} more",
                decode_problems.len() - MAX_LISTED_PROBLEMS
            ));
        }
        parts.push(s);
    }
    if !validation.is_empty() {
        parts.push(validation.to_string());
    }
    parts.join("; ")
}

/// Counts a root span for adaptive sampling with the probability it was sampled with: Jaeger
/// clients tag roots with `sampler.type` / `sampler.param`; OpenTelemetry samplers write the
/// threshold into the trace state (`ot=th:`). Roots sampled otherwise (rate limiting, always
/// on) say nothing about the probability and are not counted, as in Jaeger.
fn observe_root(adaptive: &mut Adaptive, span: &Span) {
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    };
    let param = match attr("sampler.param") {
        Some(AnyValue::Double(p)) => Some(*p),
        Some(AnyValue::Int(p)) => Some(*p as f64),
        Some(AnyValue::Str(p)) => p.parse().ok(),
        _ => None,
    };
    match (attr("sampler.type"), param) {
        (Some(AnyValue::Str(t)), Some(p)) if t == "probabilistic" => {
            adaptive.record_root(span.service(), &span.name, p)
        }
        (Some(AnyValue::Str(t)), Some(p)) if t == "lowerbound" => {
            adaptive.record_lower_bound_root(span.service(), &span.name, p)
        }
        (Some(_), _) => {}
        (None, _) => {
            if let Some(th) =
                spoor_core::sampling::consistent::trace_state_threshold(&span.trace_state)
            {
                adaptive.record_root(span.service(), &span.name, Threshold::to_probability(th));
            }
        }
    }
}

struct Writer {
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Requests taken off the queue while storage was failing (their clients already told so,
    /// their queue space still held), accepted before anything newer once writes succeed.
    held: VecDeque<Item>,
    /// A shutdown message was taken off the queue while storage was failing.
    shutdown_requested: bool,
    health: Arc<StorageHealth>,
    store: Arc<dyn TraceStore>,
    metrics: Arc<Metrics>,
    batcher: Batcher<Item>,
    linker: DependencyLinker,
    red: Option<RedAggregator>,
    tail: Option<TailSampler>,
    /// Whether the tail sampler calls plugins: then it runs on a blocking thread.
    tail_blocking: bool,
    adaptive: Option<Arc<parking_lot::Mutex<Adaptive>>>,
    last_calculation: u64,
    sync: bool,
    links: bool,
    shutting_down: bool,
    last_links: Instant,
    tenant: Option<String>,
}

/// The tail sampler's plugin policies: each trace handed to the plugin, a failure answered by
/// its `on-error` (pass: sampled, drop: not), counted in the plugin's metrics and logged (rate
/// limited).
struct PluginPolicies {
    plugins: Vec<Arc<PolicyPlugin>>,
}

impl ExternalPolicies for PluginPolicies {
    fn decide(&mut self, index: usize, _trace_id: spoor_core::TraceId, spans: &[Span]) -> bool {
        let Some(plugin) = self.plugins.get(index) else {
            return false;
        };
        let (sampled, failure) = plugin.decide_or_fallback(spans);
        if let Some(f) = failure {
            let outcome = if sampled {
                "trace sampled"
            } else {
                "trace not sampled"
            };
            crate::logging::rate_limited_warn(
                "tail-policy-plugins",
                &format!(
                    "tail sampling policy plugin {:?}: {} ({outcome}, on-error = {})",
                    f.plugin,
                    f.error,
                    f.action.as_str()
                ),
            );
        }
        sampled
    }
}

/// How often dependency counts are written to the store at the latest.
const LINK_FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    async fn run(mut self) {
        let mut links_tick = tokio::time::interval(LINK_FLUSH_EVERY);
        links_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(item) = self.held.pop_front() {
                self.accept(item).await;
                continue;
            }
            if self.shutdown_requested {
                break;
            }
            // Sleep until the batch is due, or (idle) until the next dependency flush.
            let deadline = match (
                self.batcher.deadline_nanos(),
                self.tail.as_ref().and_then(TailSampler::next_deadline),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = match deadline {
                Some(deadline) => Duration::from_nanos(deadline.saturating_sub(now_nanos())),
                None => Duration::MAX,
            };
            let msg = tokio::select! {
                m = self.rx.recv() => m,
                _ = tokio::time::sleep(wait.min(Duration::from_secs(3600))) => {
                    let now = now_nanos();
                    if let Some(out) = self.tail_call(move |t| t.poll(now)).await {
                        self.publish_tail_stats();
                        self.batch_sampled(out.spans).await;
                    }
                    if let Some(batch) = self.batcher.poll(now_nanos()) {
                        self.write(batch).await;
                    }
                    continue;
                }
                _ = links_tick.tick() => {
                    self.write_links(false).await;
                    self.periodic(false).await;
                    continue;
                }
            };
            match msg {
                Some(Msg::Item(item)) => self.accept(item).await,
                Some(Msg::Shutdown) | None => break,
            }
        }
        // Drain: everything that reached the queue is written before exit.
        self.shutting_down = true;
        loop {
            let item = match self.held.pop_front() {
                Some(item) => item,
                None => match self.rx.try_recv() {
                    Ok(Msg::Item(item)) => item,
                    _ => break,
                },
            };
            self.accept(item).await;
        }
        let now = now_nanos();
        if let Some(out) = self.tail_call(move |t| t.flush_all(now)).await {
            self.publish_tail_stats();
            self.batch_sampled(out.spans).await;
        }
        if let Some(batch) = self.batcher.take() {
            self.write(batch).await;
        }
        self.write_links(true).await;
        self.periodic(true).await;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => tracing::info!("pipeline drained and storage flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "final storage flush failed"),
            Err(e) => tracing::error!(error = %e, "final storage flush panicked"),
        }
    }

    /// One queued request: observed for span metrics and adaptive sampling, then either
    /// buffered by the tail sampler (acknowledged and its queue space released at once) or
    /// batched for storage.
    async fn accept(&mut self, mut item: Item) {
        if let Some(red) = &mut self.red {
            for s in &item.spans {
                red.record(s);
            }
        }
        if let Some(adaptive) = &self.adaptive {
            let mut a = adaptive.lock();
            for s in item.spans.iter().filter(|s| s.parent_span_id.is_none()) {
                observe_root(&mut a, s);
            }
        }
        if self.tail.is_some() {
            let spans = std::mem::take(&mut item.spans);
            let now = now_nanos();
            let out = self
                .tail_call(move |t| t.push(spans, now))
                .await
                .unwrap_or_default();
            if let Some(ack) = item.ack.take() {
                let _ = ack.send(Ok(()));
            }
            self.metrics
                .pipeline
                .queue_bytes
                .fetch_sub(item.queued_bytes as u64, Relaxed);
            drop(item);
            self.publish_tail_stats();
            self.batch_sampled(out.spans).await;
            return;
        }
        let (count, bytes) = (item.spans.len(), item.bytes);
        if let Some(batch) = self.batcher.push(item, count, bytes, now_nanos()) {
            self.write(batch).await;
        }
    }

    /// Runs `f` on the tail sampler (`None` without one). A sampler with plugin policies runs
    /// on a blocking thread, since a plugin may take up to its fuel per trace.
    async fn tail_call(
        &mut self,
        f: impl FnOnce(&mut TailSampler) -> TailOutput + Send + 'static,
    ) -> Option<TailOutput> {
        let mut tail = self.tail.take()?;
        if !self.tail_blocking {
            let out = f(&mut tail);
            self.tail = Some(tail);
            return Some(out);
        }
        match tokio::task::spawn_blocking(move || {
            let out = f(&mut tail);
            (tail, out)
        })
        .await
        {
            Ok((tail, out)) => {
                self.tail = Some(tail);
                Some(out)
            }
            Err(e) => {
                // plugin failures are values; only a bug in the sampler itself lands here
                tracing::error!(error = %e, "tail sampler panicked: tail sampling off, spans are stored unsampled");
                None
            }
        }
    }

    /// Batches spans the tail sampler decided to keep.
    async fn batch_sampled(&mut self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        let bytes: usize = spans.iter().map(Span::approx_size).sum();
        let count = spans.len();
        let item = Item {
            spans,
            bytes,
            _permit: None,
            queued_bytes: 0,
            ack: None,
        };
        if let Some(batch) = self.batcher.push(item, count, bytes, now_nanos()) {
            self.write(batch).await;
        }
    }

    fn publish_tail_stats(&self) {
        if let Some(t) = &self.tail {
            self.metrics.tail.publish(&t.stats());
        }
    }

    /// Once a second (and at shutdown): closed span-metric buckets to the store and to
    /// `/metrics`, and the adaptive calculation when its interval passed.
    async fn periodic(&mut self, shutdown: bool) {
        let now = now_nanos();
        if let Some(a) = &self.adaptive {
            let mut a = a.lock();
            let interval = a.config().calculation_interval_seconds * 1_000_000_000;
            if now.saturating_sub(self.last_calculation) >= interval {
                self.last_calculation = now;
                a.calculate(now);
            }
        }
        let Some(red) = &mut self.red else { return };
        let points = if shutdown {
            red.drain_all()
        } else {
            red.drain_before(now)
        };
        if points.is_empty() {
            return;
        }
        self.metrics.spans.add(self.tenant.as_deref(), &points);
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || store.write_span_metrics(&points)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing span metrics failed"),
            Err(e) => tracing::warn!(error = %e, "writing span metrics panicked"),
        }
    }

    async fn write(&mut self, batch: Vec<Item>) {
        let total: usize = batch.iter().map(|i| i.spans.len()).sum();
        let bytes: usize = batch.iter().map(|i| i.queued_bytes).sum();
        let mut spans = Vec::with_capacity(total);
        let mut acks = Vec::new();
        let mut permits = Vec::with_capacity(batch.len());
        for item in batch {
            spans.extend(item.spans);
            acks.extend(item.ack);
            permits.push(item._permit);
        }
        if self.links {
            self.linker.observe(&spans, now_nanos());
        }

        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        let spans = Arc::new(spans);
        loop {
            attempts += 1;
            let store = self.store.clone();
            let sync = self.sync;
            let batch_spans = spans.clone();
            let started = Instant::now();
            let result = tokio::task::spawn_blocking(move || {
                store.write_spans(&batch_spans)?;
                if sync {
                    store.flush()?;
                }
                Ok::<(), spoor_store::StoreError>(())
            })
            .await
            .unwrap_or_else(|e| {
                Err(spoor_store::StoreError::Io(format!(
                    "storage write panicked: {e}"
                )))
            });
            self.metrics
                .pipeline
                .write_micros
                .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            match result {
                Ok(()) => {
                    for ack in acks.drain(..) {
                        let _ = ack.send(Ok(()));
                    }
                    if self.health.failing.swap(false, Relaxed) {
                        tracing::info!(attempts, "storage writes succeed again: ingest resumes");
                    } else if attempts > 1 {
                        tracing::info!(attempts, "storage writes succeed again");
                    }
                    self.metrics.pipeline.batches.fetch_add(1, Relaxed);
                    self.metrics
                        .pipeline
                        .spans_written
                        .fetch_add(total as u64, Relaxed);
                    break;
                }
                Err(e) => {
                    self.metrics.pipeline.write_errors.fetch_add(1, Relaxed);
                    let (reason, full) = client_reason(&e);
                    if full {
                        *self.health.reason.lock() = reason.clone();
                    }
                    if full && !self.health.failing.swap(true, Relaxed) {
                        tracing::error!(error = %e, spans = total, "storage write failed ({reason}): refusing ingest with 503 until a write succeeds");
                    } else if attempts == 1 {
                        tracing::error!(error = %e, spans = total, "storage write failed, retrying");
                    } else {
                        tracing::warn!(error = %e, spans = total, attempt = attempts, "storage write failed, retrying");
                    }
                    // Clients waiting for a durable ack are told now; the write is still retried
                    // so that what they may re-send is at worst stored twice, never lost.
                    for ack in acks.drain(..) {
                        let _ = ack.send(Err(reason.clone()));
                    }
                    if self.shutting_down && attempts >= 10 {
                        self.metrics
                            .pipeline
                            .spans_dropped
                            .fetch_add(total as u64, Relaxed);
                        tracing::error!(error = %e, spans = total, "giving up on a batch at shutdown: storage keeps failing");
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    self.hold_queued(&reason);
                }
            }
        }
        drop(permits);
        self.metrics
            .pipeline
            .queue_bytes
            .fetch_sub(bytes as u64, Relaxed);
        self.write_links(false).await;
    }

    /// While storage fails: takes what waits in the queue, tells clients waiting for a durable
    /// acknowledgement that storage failed (so none hangs until the disk has room again), and
    /// keeps the spans, with their queue space, to write once storage works.
    fn hold_queued(&mut self, reason: &str) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Item(mut item) => {
                    if let Some(ack) = item.ack.take() {
                        let _ = ack.send(Err(reason.to_string()));
                    }
                    self.held.push_back(item);
                }
                Msg::Shutdown => self.shutdown_requested = true,
            }
        }
    }

    /// Writes dependency counts at most once per [`LINK_FLUSH_EVERY`] (always when `force`).
    async fn write_links(&mut self, force: bool) {
        if !force && self.last_links.elapsed() < LINK_FLUSH_EVERY {
            return;
        }
        self.last_links = Instant::now();
        let buckets = self.linker.take_links(now_nanos());
        let stats = self.linker.stats();
        self.metrics
            .pipeline
            .dependency_orphans
            .store(stats.expired_pending + stats.dropped_pending, Relaxed);
        if buckets.is_empty() {
            return;
        }
        let n: u64 = buckets.iter().map(|(_, l)| l.len() as u64).sum();
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || {
            for (bucket, links) in &buckets {
                store.write_dependencies(*bucket, links)?;
            }
            Ok::<(), spoor_store::StoreError>(())
        })
        .await;
        match res {
            Ok(Ok(())) => {
                self.metrics.pipeline.dependency_links.fetch_add(n, Relaxed);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "writing dependency links failed"),
            Err(e) => tracing::warn!(error = %e, "writing dependency links panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Resource, SpanId, TraceId};
    use spoor_store::memory::MemoryStore;

    fn span(t: u128, s: u64, parent: Option<u64>, service: &str) -> Span {
        Span {
            trace_id: TraceId(t),
            span_id: SpanId(s),
            parent_span_id: parent.map(SpanId),
            name: "op".into(),
            start_unix_nanos: now_nanos(),
            duration_nanos: 1000,
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn config(queue_bytes: usize, sync: bool) -> PipelineConfig {
        PipelineConfig {
            queue_bytes,
            batch: BatchConfig {
                max_items: 4,
                max_bytes: 1 << 20,
                max_age_nanos: 5_000_000,
            },
            sync,
            limits: Limits::default(),
            retry_after: Duration::from_secs(1),
            linker: LinkerConfig::default(),
            links: true,
            span_metrics_bucket_nanos: Some(1_000_000_000),
            tail: None,
            tail_plugins: Vec::new(),
            adaptive: None,
            available: None,
            plugins: None,
            tenant: None,
        }
    }

    fn batch(spans: Vec<Span>) -> IngestBatch {
        IngestBatch {
            receiver: "test",
            spans,
            rejected: 0,
            problems: vec![],
        }
    }

    #[tokio::test]
    async fn validates_stores_and_links() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, true));
        let mut bad = span(1, 0, None, "a");
        bad.span_id = SpanId(0);
        let out = p
            .ingest(batch(vec![
                span(1, 1, None, "a"),
                span(1, 2, Some(1), "b"),
                bad,
            ]))
            .await
            .unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 1));
        assert!(out.message.contains("span id"), "{}", out.message);
        // sync: stored when ingest returns
        let t = store.get_trace(TraceId(1)).unwrap().unwrap();
        assert_eq!(t.spans.len(), 2);
        p.shutdown().await;
        let deps = store
            .dependencies(now_nanos() + 120_000_000_000, 3_600_000_000_000)
            .unwrap();
        assert_eq!(deps.len(), 1);
        assert_eq!(
            (
                deps[0].parent.as_str(),
                deps[0].child.as_str(),
                deps[0].call_count
            ),
            ("a", "b", 1)
        );
        assert_eq!(metrics.receiver("test").spans_rejected.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn full_queue_refuses_and_counts() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, false));
        // Hold all queue space so the next request cannot fit.
        let hog = p
            .permits
            .clone()
            .try_acquire_many_owned(p.capacity_permits as u32)
            .unwrap();
        let err = p
            .ingest(batch(vec![span(2, 1, None, "a")]))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Overloaded { .. }));
        assert_eq!(metrics.receiver("test").spans_refused.load(Relaxed), 1);
        // admission says so before any body is read, and counts the request
        assert!(matches!(
            p.admit("test"),
            Err(IngestError::Overloaded { .. })
        ));
        assert_eq!(metrics.receiver("test").requests_refused.load(Relaxed), 1);
        drop(hog);
        assert_eq!(p.admit("test"), Ok(()));
        p.ingest(batch(vec![span(2, 1, None, "a")])).await.unwrap();
        p.shutdown().await;
        assert!(
            store.get_trace(TraceId(2)).unwrap().is_some(),
            "drained at shutdown"
        );
        let err = p
            .ingest(batch(vec![span(3, 1, None, "a")]))
            .await
            .unwrap_err();
        assert_eq!(err, IngestError::ShuttingDown);
        assert_eq!(p.admit("test"), Err(IngestError::ShuttingDown));
    }

    #[tokio::test]
    async fn memory_above_the_soft_limit_refuses_until_it_drops() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, false));
        let limit = crate::memlimit::MemoryLimitConfig {
            limit_bytes: 100 << 20,
            spike_bytes: 20 << 20,
            check_interval: Duration::from_millis(100),
        };
        metrics.memory.observe(90 << 20, &limit);
        let err = p
            .ingest(batch(vec![span(4, 1, None, "a")]))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Overloaded { .. }));
        assert_eq!(metrics.receiver("test").spans_refused.load(Relaxed), 1);
        assert!(
            p.admit("test").is_err(),
            "admission follows the memory limiter"
        );
        metrics.memory.observe(50 << 20, &limit);
        assert_eq!(p.admit("test"), Ok(()));
        p.ingest(batch(vec![span(4, 1, None, "a")])).await.unwrap();
        p.shutdown().await;
        assert!(store.get_trace(TraceId(4)).unwrap().is_some());
    }

    #[tokio::test]
    async fn tail_sampling_keeps_only_traces_a_policy_wants() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let mut cfg = config(1 << 20, false);
        let tail: crate::config::TailSettings = serde_json::from_str(
            r#"{"decision_wait_ms": 50, "policies": [{"name": "errors", "type": "status_code",
                "status_code": {"status_codes": ["ERROR"]}}]}"#,
        )
        .unwrap();
        cfg.tail = Some(tail);
        let p = Pipeline::start(store.clone(), metrics.clone(), cfg);
        let mut failed = span(7, 2, Some(1), "b");
        failed.status.code = spoor_core::StatusCode::Error;
        p.ingest(batch(vec![span(7, 1, None, "a"), span(8, 1, None, "a")]))
            .await
            .unwrap();
        p.ingest(batch(vec![failed])).await.unwrap();
        // wait (generously: shared machines) until both traces are decided and written
        for _ in 0..200 {
            let decided = metrics
                .render()
                .contains("spoor_tail_traces_dropped_total 1\n");
            if decided && store.get_trace(TraceId(7)).unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            store.get_trace(TraceId(7)).unwrap().map(|t| t.spans.len()),
            Some(2)
        );
        assert!(
            store.get_trace(TraceId(8)).unwrap().is_none(),
            "no policy wants trace 8"
        );
        // a late span of the kept trace follows the decision
        p.ingest(batch(vec![span(7, 3, Some(1), "c")]))
            .await
            .unwrap();
        p.shutdown().await;
        assert_eq!(
            store.get_trace(TraceId(7)).unwrap().map(|t| t.spans.len()),
            Some(3)
        );
        let text = metrics.render();
        assert!(
            text.contains("spoor_tail_traces_sampled_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("spoor_tail_traces_dropped_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("spoor_tail_late_spans_sampled_total 1\n"),
            "{text}"
        );
        assert_eq!(metrics.pipeline.queue_bytes.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn span_metrics_reach_the_store_and_prometheus() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, false));
        let mut failed = span(9, 2, Some(1), "a");
        failed.status.code = spoor_core::StatusCode::Error;
        p.ingest(batch(vec![span(9, 1, None, "a"), failed]))
            .await
            .unwrap();
        p.shutdown().await;
        let points = store.span_metrics(&[], 0, u64::MAX).unwrap();
        let calls: u64 = points.iter().map(|p| p.calls).sum();
        let errors: u64 = points.iter().map(|p| p.errors).sum();
        assert_eq!((calls, errors), (2, 1));
        let text = metrics.render();
        assert!(
            text.contains("traces_span_metrics_calls_total{service_name=\"a\",span_name=\"op\",span_kind=\"SPAN_KIND_UNSPECIFIED\",status_code=\"STATUS_CODE_ERROR\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("traces_span_metrics_duration_milliseconds_count{service_name=\"a\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn adaptive_sampling_counts_probabilistic_roots() {
        let store = Arc::new(MemoryStore::new(100));
        let metrics = Arc::new(Metrics::default());
        let adaptive = Arc::new(parking_lot::Mutex::new(
            Adaptive::new(spoor_core::sampling::AdaptiveConfig::default()).unwrap(),
        ));
        let mut cfg = config(1 << 20, false);
        cfg.adaptive = Some(adaptive.clone());
        let p = Pipeline::start(store.clone(), metrics.clone(), cfg);
        let mut roots = Vec::new();
        for i in 0..30u128 {
            let mut s = span(100 + i, 1, None, "svc");
            s.attributes.push(spoor_core::KeyValue {
                key: "sampler.type".into(),
                value: AnyValue::Str("probabilistic".into()),
            });
            s.attributes.push(spoor_core::KeyValue {
                key: "sampler.param".into(),
                value: AnyValue::Double(0.5),
            });
            roots.push(s);
        }
        p.ingest(batch(roots)).await.unwrap();
        p.shutdown().await;
        let mut a = adaptive.lock();
        a.calculate(now_nanos() + 61_000_000_000);
        assert!(a.qps("svc", "op").unwrap() > 0.0, "roots were counted");
        let strategy = a.strategy_for("svc");
        let ops = strategy.operations().expect("per-operation strategies");
        assert!(ops.per_operation.iter().any(|o| o.operation == "op"));
    }

    /// A memory store whose writes fail while `full` is set: like a full disk, or with
    /// another error when `error` is given.
    struct FullDisk {
        inner: MemoryStore,
        full: AtomicBool,
        error: Option<&'static str>,
    }

    impl TraceStore for FullDisk {
        fn write_spans(&self, spans: &[Span]) -> spoor_store::StoreResult<()> {
            if self.full.load(Relaxed) {
                return Err(spoor_store::StoreError::Io(
                    self.error.unwrap_or("cannot append to block file /data/blocks/p1.blk: No space left on device (os error 28)").into(),
                ));
            }
            self.inner.write_spans(spans)
        }
        fn write_dependencies(
            &self,
            bucket: u64,
            links: &[spoor_core::model::DependencyLink],
        ) -> spoor_store::StoreResult<()> {
            self.inner.write_dependencies(bucket, links)
        }
        fn flush(&self) -> spoor_store::StoreResult<()> {
            self.inner.flush()
        }
        fn get_trace(&self, id: TraceId) -> spoor_store::StoreResult<Option<spoor_core::Trace>> {
            self.inner.get_trace(id)
        }
        fn services(&self) -> spoor_store::StoreResult<Vec<String>> {
            self.inner.services()
        }
        fn operations(
            &self,
            service: &str,
            kind: Option<spoor_core::SpanKind>,
        ) -> spoor_store::StoreResult<Vec<spoor_core::Operation>> {
            self.inner.operations(service, kind)
        }
        fn find_trace_ids(
            &self,
            query: &spoor_core::query::TraceQuery,
        ) -> spoor_store::StoreResult<Vec<TraceId>> {
            self.inner.find_trace_ids(query)
        }
        fn dependencies(
            &self,
            end: u64,
            lookback: u64,
        ) -> spoor_store::StoreResult<Vec<spoor_core::model::DependencyLink>> {
            self.inner.dependencies(end, lookback)
        }
        fn write_span_metrics(
            &self,
            points: &[spoor_core::red::RedPoint],
        ) -> spoor_store::StoreResult<()> {
            self.inner.write_span_metrics(points)
        }
        fn span_metrics(
            &self,
            services: &[String],
            start: u64,
            end: u64,
        ) -> spoor_store::StoreResult<Vec<spoor_core::red::RedPoint>> {
            self.inner.span_metrics(services, start, end)
        }
        fn expire_before(&self, cutoff: u64) -> spoor_store::StoreResult<u64> {
            self.inner.expire_before(cutoff)
        }
        fn stats(&self) -> spoor_store::StoreStats {
            self.inner.stats()
        }
    }

    #[tokio::test]
    async fn full_disk_refuses_at_once_answers_waiters_and_resumes_when_writes_succeed() {
        let store = Arc::new(FullDisk {
            inner: MemoryStore::new(100),
            full: AtomicBool::new(true),
            error: None,
        });
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, true));
        // Several clients wait for a durable ack while the disk is full: each is answered.
        let waiting: Vec<_> = (10..14u128)
            .map(|t| {
                let p = p.clone();
                tokio::spawn(async move { p.ingest(batch(vec![span(t, 1, None, "a")])).await })
            })
            .collect();
        for task in waiting {
            assert_eq!(
                task.await.unwrap().unwrap_err(),
                IngestError::Storage("no space left on the storage device".into())
            );
        }
        // Later requests are refused at once, with no file path in what the client sees.
        let err = p
            .ingest(batch(vec![span(20, 1, None, "a")]))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            IngestError::Storage("no space left on the storage device".into())
        );
        assert!(metrics.pipeline.write_errors.load(Relaxed) >= 1);
        assert_eq!(metrics.receiver("test").spans_refused.load(Relaxed), 1);
        // Space returns: the writer's retry succeeds and ingest resumes without a restart.
        store.full.store(false, Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match p.ingest(batch(vec![span(30, 1, None, "a")])).await {
                Ok(out) => {
                    assert_eq!(out.accepted, 1);
                    break;
                }
                Err(IngestError::Storage(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("ingest did not resume: {e}"),
            }
        }
        // What the refused-while-waiting clients sent was kept and written after all.
        for t in [10u128, 11, 12, 13, 30] {
            assert!(store.get_trace(TraceId(t)).unwrap().is_some(), "trace {t}");
        }
        assert!(store.get_trace(TraceId(20)).unwrap().is_none());
        p.shutdown().await;
    }

    /// An agent whose collector is away keeps buffering in its bounded queue (no fast refusal:
    /// that is only for a full disk), and what it buffered is written once writes succeed.
    #[tokio::test]
    async fn other_write_failures_keep_buffering_in_the_queue() {
        let store = Arc::new(FullDisk {
            inner: MemoryStore::new(100),
            full: AtomicBool::new(true),
            error: Some("export to http://collector:4317 failed: connection refused"),
        });
        let metrics = Arc::new(Metrics::default());
        let p = Pipeline::start(store.clone(), metrics.clone(), config(1 << 20, false));
        for t in 40..44u128 {
            p.ingest(batch(vec![span(t, 1, None, "a")])).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while metrics.pipeline.write_errors.load(Relaxed) == 0 {
            assert!(Instant::now() < deadline, "the write never failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        p.ingest(batch(vec![span(44, 1, None, "a")])).await.unwrap();
        store.full.store(false, Relaxed);
        p.shutdown().await;
        for t in 40..45u128 {
            assert!(store.get_trace(TraceId(t)).unwrap().is_some(), "trace {t}");
        }
    }
}
