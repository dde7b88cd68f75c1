//! The span log (#10): a replicated NATS JetStream stream between collectors and ingesters,
//! Jaeger's Kafka strategy on an engine that replicates itself.
//!
//! - **Collector side:** [`SpanLogStore`] is a write-only [`TraceStore`] at the end of the
//!   ordinary pipeline. Each batch is grouped by partition (a stable FNV-1a hash of the trace
//!   id, so every span of a trace lands in one partition and one ingester), encoded with
//!   `spoor_core::block` (the header [`ENCODING_HEADER`] names the encoding and its version)
//!   and published to `<stream>.p<N>`; `write_spans` returns only after JetStream's publish
//!   acks, and the pipeline runs in `sync` mode in this role, so a client is answered only after
//!   its spans are replicated. A message id (a hash of subject, tenant and payload) lets
//!   JetStream drop the duplicate when the pipeline retries a batch whose ack was lost.
//! - **Ingester side:** [`run_partition`] drives one durable pull consumer per owned partition
//!   (explicit acks): it fetches messages, decodes them, hands their spans to the ingester's own
//!   pipeline (sync mode: stored and flushed when `ingest` returns) and only then acks. A message
//!   that does not decode is republished to `<stream>.dead-letter` (kept by the stream, read by
//!   no consumer) with the reason in a header, counted, logged and acked, so it never blocks its
//!   partition. A failed store write naks the messages with a delay; they come back.
//! - **Tenants:** a collector with multi-tenancy runs one pipeline per tenant, each ending in a
//!   [`SpanLogStore::for_tenant`] that names the tenant in every message ([`TENANT_HEADER`];
//!   part of the message id). A header, not a subject per tenant: partitions follow trace ids
//!   and ingesters own partitions, so a new tenant needs no new consumer, and tenant names may
//!   contain `.`, NATS's token separator. An ingester with multi-tenancy ([`Sink::Tenants`])
//!   stores each message through its tenant's own pipeline and store; a message without a
//!   tenant, with an invalid or unknown one, or over the tenant limit goes to the dead letters
//!   (counted apart); an ingester without it refuses messages that name a tenant the same way,
//!   rather than mix tenants in one store.
//! - **Stream:** created or updated at start-up by collectors and ingesters alike (subjects
//!   `<stream>.*`, file storage, replicas, `max_age`, `max_bytes`, discard old); the partition
//!   count is written in the stream's description, and a process configured with another count
//!   refuses to start (it would send traces to the wrong ingester).
//!
//! Delivery is at least once: a crash between the store's flush and the ack redelivers the
//! message and the spans are stored twice (the store contract allows it; readers dedupe).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use spoor_core::block::{encode_block_refs, BlockReader, BLOCK_FORMAT_VERSION};
use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};
use spoor_store::{StoreError, StoreResult, StoreStats, TraceStore};
use tokio::sync::watch;

use crate::auth::{Denied, TenantId};
use crate::ingest::{Ingest, IngestBatch, IngestError};
use crate::tenants::Gate;

/// Message header naming the payload's encoding.
pub const ENCODING_HEADER: &str = "Spoor-Encoding";
/// Header of a dead letter: why its message was not stored.
pub const ERROR_HEADER: &str = "Spoor-Error";
/// Header of a dead letter: the subject it was read from.
pub const ORIGIN_HEADER: &str = "Spoor-Origin-Subject";
/// Message header naming the tenant whose spans a message carries (collectors with
/// multi-tenancy set it; ingesters with multi-tenancy require it, those without refuse it).
pub const TENANT_HEADER: &str = "Spoor-Tenant";

/// The encoding this build writes and reads: the block format and its version.
pub fn encoding() -> String {
    format!("spoor-block/{BLOCK_FORMAT_VERSION}")
}

pub use spoor_config::spanlog::SpanLogSettings;

/// The partition of a trace: FNV-1a (64 bit) over the id's 16 big-endian bytes, modulo the
/// partition count. Stable across processes, versions and platforms: collectors and ingesters
/// must agree on it.
pub fn partition_of(id: TraceId, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.0.to_be_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// Subject of partition `p`.
pub fn subject(stream: &str, p: u32) -> String {
    format!("{stream}.p{p}")
}

/// Subject dead letters go to.
pub fn dead_letter_subject(stream: &str) -> String {
    format!("{stream}.dead-letter")
}

/// Durable consumer name of partition `p` (no dots allowed in names).
pub fn durable_name(stream: &str, p: u32) -> String {
    format!("{stream}-p{p}")
}

fn description(partitions: u32) -> String {
    format!("spoor span log: {partitions} partitions by trace id")
}

/// Connects to NATS (any of the URLs; reconnects forever afterwards) and creates or updates the
/// stream. Errors say which server or setting failed.
pub async fn open(cfg: &SpanLogSettings, name: &str) -> anyhow::Result<jetstream::Context> {
    let addrs = cfg
        .urls
        .iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| anyhow::anyhow!("invalid span-log.url {u:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut opts = async_nats::ConnectOptions::new();
    if cfg.tls.ca.is_some()
        || cfg.tls.cert.is_some()
        || cfg.urls.iter().any(|u| u.starts_with("tls://"))
    {
        let tls = crate::tls::client_config(&cfg.tls, "span-log.tls", "connect to NATS over TLS")?;
        opts = opts.require_tls(true).tls_client_config(tls);
    }
    let opts = opts
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("span log: connected to nats"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("span log: disconnected from nats, reconnecting")
                }
                other => tracing::warn!(event = %other, "span log: nats event"),
            }
        });
    let client = async_nats::connect_with_options(addrs, opts)
        .await
        .with_context(|| format!("cannot connect to nats at {}", cfg.urls.join(",")))?;
    let js = jetstream::new(client);
    ensure_stream(&js, cfg).await?;
    Ok(js)
}

async fn ensure_stream(js: &jetstream::Context, cfg: &SpanLogSettings) -> anyhow::Result<()> {
    let want = stream::Config {
        name: cfg.stream.clone(),
        description: Some(description(cfg.partitions)),
        subjects: vec![format!("{}.*", cfg.stream)],
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_age: cfg.max_age,
        max_bytes: cfg.max_bytes,
        discard: stream::DiscardPolicy::Old,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    // Stream creation goes through the meta leader, which a cluster elects in its first
    // seconds: retry for a while before refusing to start.
    let mut last = String::new();
    for _ in 0..30 {
        match js.get_stream(&cfg.stream).await {
            Ok(mut s) => {
                let info = s.info().await.context("cannot read the span-log stream")?;
                let have = info.config.description.clone().unwrap_or_default();
                if have.starts_with("spoor span log") && have != description(cfg.partitions) {
                    anyhow::bail!(
                        "span-log.partitions {} does not match stream {:?} ({have}): every collector and ingester must use the stream's partition count",
                        cfg.partitions,
                        cfg.stream
                    );
                }
                let c = &info.config;
                if c.subjects != want.subjects
                    || c.num_replicas != want.num_replicas
                    || c.max_age != want.max_age
                    || c.max_bytes != want.max_bytes
                    || c.description != want.description
                {
                    match js.update_stream(&want).await {
                        Ok(_) => {
                            tracing::info!(stream = %cfg.stream, replicas = cfg.replicas, "span-log stream updated");
                            return Ok(());
                        }
                        Err(e) => last = format!("cannot update stream {:?}: {e}", cfg.stream),
                    }
                } else {
                    return Ok(());
                }
            }
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                match js.create_stream(want.clone()).await {
                    Ok(_) => {
                        tracing::info!(stream = %cfg.stream, replicas = cfg.replicas, partitions = cfg.partitions, "span-log stream created");
                        return Ok(());
                    }
                    Err(e) => last = format!("cannot create stream {:?}: {e}", cfg.stream),
                }
            }
            Err(e) => last = format!("cannot look up stream {:?}: {e}", cfg.stream),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("{last} (is jetstream enabled on the nats servers, and span-log.replicas {} no more than the cluster's size?)", cfg.replicas)
}

/// Counters of the span log, rendered on `/metrics` once a role uses it.
#[derive(Debug, Default)]
pub struct SpanLogMetrics {
    /// Whether a role uses the span log (nothing is rendered otherwise).
    pub enabled: std::sync::atomic::AtomicBool,
    /// Messages published (collector).
    pub published_messages: AtomicU64,
    /// Spans published (collector).
    pub published_spans: AtomicU64,
    /// Publishes that failed or were not acknowledged (collector; the batch is retried).
    pub publish_errors: AtomicU64,
    /// Spans cut to fit because one span alone was larger than the server's message limit.
    pub spans_too_large: AtomicU64,
    /// Messages consumed and acked after storing (ingester).
    pub consumed_messages: AtomicU64,
    /// Spans stored from the log (ingester).
    pub consumed_spans: AtomicU64,
    /// Messages delivered more than once (ingester).
    pub redeliveries: AtomicU64,
    /// Messages that did not decode, sent to the dead-letter subject (ingester).
    pub dead_letters: AtomicU64,
    /// Store writes that failed; their messages were naked for redelivery (ingester).
    pub store_errors: AtomicU64,
    /// Messages whose tenant was missing, invalid, unknown or over the tenant limit, or that
    /// named a tenant at an ingester without multi-tenancy; sent to the dead-letter subject
    /// (ingester).
    pub tenant_refused: AtomicU64,
    /// Messages in the owned partitions not yet delivered (ingester; gauge).
    pub consumer_lag: AtomicU64,
    /// Messages delivered but not yet acked (ingester; gauge).
    pub ack_pending: AtomicU64,
    /// Ingesters that did not answer a query (query role over ingesters).
    pub query_ingester_errors: Arc<AtomicU64>,
}

impl SpanLogMetrics {
    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        for (name, kind, help, v) in [
            (
                "spoor_spanlog_published_messages_total",
                "counter",
                "Messages published to the span log.",
                &self.published_messages,
            ),
            (
                "spoor_spanlog_published_spans_total",
                "counter",
                "Spans published to the span log.",
                &self.published_spans,
            ),
            (
                "spoor_spanlog_publish_errors_total",
                "counter",
                "Span-log publishes that failed or were not acknowledged (retried).",
                &self.publish_errors,
            ),
            (
                "spoor_spanlog_spans_too_large_total",
                "counter",
                "Spans cut to fit (events, links, attributes; with a warning) because one span alone exceeded the server's message limit.",
                &self.spans_too_large,
            ),
            (
                "spoor_spanlog_consumed_messages_total",
                "counter",
                "Span-log messages stored and acked.",
                &self.consumed_messages,
            ),
            (
                "spoor_spanlog_consumed_spans_total",
                "counter",
                "Spans stored from the span log.",
                &self.consumed_spans,
            ),
            (
                "spoor_spanlog_redeliveries_total",
                "counter",
                "Span-log messages delivered more than once.",
                &self.redeliveries,
            ),
            (
                "spoor_spanlog_dead_letters_total",
                "counter",
                "Span-log messages that did not decode, sent to the dead-letter subject.",
                &self.dead_letters,
            ),
            (
                "spoor_spanlog_store_errors_total",
                "counter",
                "Store writes of span-log messages that failed (messages redelivered).",
                &self.store_errors,
            ),
            (
                "spoor_spanlog_tenant_refused_messages_total",
                "counter",
                "Span-log messages sent to the dead-letter subject because of their tenant (missing, invalid, unknown, over the limit, or present at an ingester without multi-tenancy).",
                &self.tenant_refused,
            ),
            (
                "spoor_spanlog_consumer_lag_messages",
                "gauge",
                "Messages of the owned partitions not yet delivered.",
                &self.consumer_lag,
            ),
            (
                "spoor_spanlog_ack_pending_messages",
                "gauge",
                "Messages delivered but not yet acked.",
                &self.ack_pending,
            ),
            (
                "spoor_query_ingester_errors_total",
                "counter",
                "Ingesters skipped by a query because they did not answer.",
                &*self.query_ingester_errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
    }
}

/// The collector's end of the pipeline: publishes each batch to the span log. See the module
/// docs.
pub struct SpanLogStore {
    js: jetstream::Context,
    tenant: Option<TenantId>,
    stream: String,
    partitions: u32,
    runtime: tokio::runtime::Handle,
    metrics: Arc<crate::metrics::Metrics>,
}

impl SpanLogStore {
    /// A store over an opened span log ([`open`]). Must be created inside the tokio runtime
    /// whose handle it keeps for its blocking calls.
    pub fn new(
        js: jetstream::Context,
        cfg: &SpanLogSettings,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> SpanLogStore {
        SpanLogStore {
            js,
            tenant: None,
            stream: cfg.stream.clone(),
            partitions: cfg.partitions,
            runtime: tokio::runtime::Handle::current(),
            metrics,
        }
    }

    /// The same store for one tenant: every message carries [`TENANT_HEADER`].
    pub fn for_tenant(mut self, tenant: TenantId) -> SpanLogStore {
        self.tenant = Some(tenant);
        self
    }

    /// Whether the client is connected to a NATS server now (ingest refuses with 503 while not).
    pub fn connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    /// Encodes `spans` into messages no larger than `max_payload`, halving a group that is too
    /// large; a single span that alone is too large is cut to fit ([`shrink_to_fit`]) and
    /// counted, never dropped: its client was (or will be) told it is stored.
    fn encode_chunks(&self, spans: &[&Span], max_payload: usize, out: &mut Vec<Bytes>) {
        let bytes = encode_block_refs(spans.iter().copied());
        if bytes.len() <= max_payload {
            out.push(Bytes::from(bytes));
        } else if spans.len() == 1 {
            self.metrics.span_log.spans_too_large.fetch_add(1, Relaxed);
            let (cut, bytes) = shrink_to_fit(spans[0], max_payload);
            tracing::warn!(
                trace_id = %spans[0].trace_id,
                max_payload,
                "span larger than the nats server's max_payload: {cut}"
            );
            out.push(Bytes::from(bytes));
        } else {
            let (a, b) = spans.split_at(spans.len() / 2);
            self.encode_chunks(a, max_payload, out);
            self.encode_chunks(b, max_payload, out);
        }
    }

    async fn publish(&self, spans: &[Span]) -> StoreResult<()> {
        let mut groups: BTreeMap<u32, Vec<&Span>> = BTreeMap::new();
        for s in spans {
            groups
                .entry(partition_of(s.trace_id, self.partitions))
                .or_default()
                .push(s);
        }
        // headroom for the headers and the protocol line
        let max_payload = (self.js.client().server_info().max_payload)
            .saturating_sub(1024)
            .max(64 * 1024);
        let encoding = encoding();
        let mut pending = Vec::new();
        for (p, group) in groups {
            let subj = subject(&self.stream, p);
            let mut chunks = Vec::new();
            self.encode_chunks(&group, max_payload, &mut chunks);
            for payload in chunks {
                let tenant = self.tenant.as_ref().map(TenantId::as_str);
                let id = message_id(&subj, tenant, &payload);
                let mut msg = jetstream::message::PublishMessage::build()
                    .payload(payload)
                    .header(ENCODING_HEADER, encoding.as_str())
                    .message_id(id);
                if let Some(t) = tenant {
                    msg = msg.header(TENANT_HEADER, t);
                }
                let ack = self
                    .js
                    .send_publish(subj.clone(), msg)
                    .await
                    .map_err(|e| self.publish_error(&subj, spans.len(), &e))?;
                pending.push((subj.clone(), ack));
            }
        }
        let n = pending.len() as u64;
        for (subj, ack) in pending {
            ack.await
                .map_err(|e| self.publish_error(&subj, spans.len(), &e))?;
        }
        let m = &self.metrics.span_log;
        m.published_messages.fetch_add(n, Relaxed);
        m.published_spans.fetch_add(spans.len() as u64, Relaxed);
        Ok(())
    }

    fn publish_error(&self, subj: &str, spans: usize, e: &dyn std::fmt::Display) -> StoreError {
        self.metrics.span_log.publish_errors.fetch_add(1, Relaxed);
        StoreError::Io(format!(
            "publishing {spans} spans to span-log subject {subj} failed: {e}"
        ))
    }
}

/// JetStream message id: two FNV-1a hashes (different offsets) of subject, tenant and payload,
/// so a retried publish of the same batch is dropped as a duplicate within the stream's window
/// (and the same spans sent by two tenants are two messages).
fn message_id(subject: &str, tenant: Option<&str>, payload: &[u8]) -> String {
    // without a tenant, the ids of earlier versions (subject and payload only)
    let tenant: &[u8] = tenant.map_or(&[], |t| t.as_bytes());
    let sep: &[u8] = if tenant.is_empty() { &[] } else { &[0] };
    let hash = |seed: u64| {
        let mut h = seed;
        let bytes = subject
            .as_bytes()
            .iter()
            .chain(sep)
            .chain(tenant)
            .chain(sep);
        for b in bytes.chain(payload) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    format!(
        "{:016x}{:016x}-{}",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x8422_2325_cbf2_9ce4),
        payload.len()
    )
}

impl TraceStore for SpanLogStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        // Called on a blocking thread by the pipeline, so blocking on the runtime is allowed.
        self.runtime.block_on(self.publish(spans))
    }

    // Dependency links and span metrics are derived by the ingesters, which see whole traces.
    fn write_dependencies(&self, _bucket: u64, _links: &[DependencyLink]) -> StoreResult<()> {
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, _id: TraceId) -> StoreResult<Option<Trace>> {
        Ok(None)
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn operations(&self, _service: &str, _kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        Ok(Vec::new())
    }

    fn find_trace_ids(&self, _query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(Vec::new())
    }

    fn dependencies(&self, _end: u64, _lookback: u64) -> StoreResult<Vec<DependencyLink>> {
        Ok(Vec::new())
    }

    fn expire_before(&self, _cutoff_nanos: u64) -> StoreResult<u64> {
        Ok(0)
    }

    fn write_span_metrics(&self, _points: &[RedPoint]) -> StoreResult<()> {
        Ok(())
    }

    fn span_metrics(&self, _s: &[String], _start: u64, _end: u64) -> StoreResult<Vec<RedPoint>> {
        Ok(Vec::new())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.metrics.span_log.published_spans.load(Relaxed),
            ..Default::default()
        }
    }
}

/// Messages fetched per pull request.
const FETCH_MAX: usize = 256;
/// How long a pull waits for messages before asking again.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// How long a delivered message may stay unacked before JetStream redelivers it.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often the consumer lag gauges are refreshed.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Creates (or binds to) the durable pull consumer of partition `p`.
pub async fn consumer_for(
    js: &jetstream::Context,
    cfg: &SpanLogSettings,
    p: u32,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let durable = durable_name(&cfg.stream, p);
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        description: Some(format!("spoor ingester, partition {p}")),
        filter_subject: subject(&cfg.stream, p),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        max_ack_pending: (FETCH_MAX * 4) as i64,
        ..Default::default()
    };
    let mut last = String::new();
    for _ in 0..30 {
        match js
            .create_consumer_on_stream(config.clone(), &cfg.stream)
            .await
        {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!(
        "cannot create durable consumer {durable:?} on stream {:?}: {last}",
        cfg.stream
    )
}

/// Where an ingester stores what it consumes.
#[derive(Clone)]
pub enum Sink {
    /// Without multi-tenancy: the ingester's one pipeline. A message naming a tenant is refused
    /// (to the dead letters): storing it here would mix tenants.
    Single(Arc<dyn Ingest>),
    /// With multi-tenancy: each message goes to the pipeline of the tenant its
    /// [`TENANT_HEADER`] names (created on first use, like the all-in-one's). A message without
    /// a tenant, or with one this ingester does not know, is refused (to the dead letters).
    Tenants(Arc<Gate>),
}

impl Sink {
    /// The tenant a message is for, or why it cannot be stored here.
    fn tenant_of(&self, msg: &jetstream::Message) -> Result<Option<TenantId>, String> {
        let named = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(TENANT_HEADER))
            .map(|v| v.as_str());
        match (self, named) {
            (Sink::Single(_), None) => Ok(None),
            (Sink::Single(_), Some(t)) => Err(format!(
                "message of tenant {t:?}, but this ingester runs without multi-tenancy: give it the collectors' auth.* / multi-tenancy.* settings"
            )),
            (Sink::Tenants(_), None) => Err(format!(
                "no {TENANT_HEADER} header, but this ingester runs with multi-tenancy: every collector publishing to the stream must run with it too"
            )),
            (Sink::Tenants(gate), Some(t)) => gate.named(t).map(Some).map_err(|e| e.to_string()),
        }
    }

    /// The pipeline of `tenant` (`None`: the single one).
    async fn ingest(&self, tenant: Option<&TenantId>) -> Result<Arc<dyn Ingest>, Denied> {
        match (self, tenant) {
            (Sink::Single(i), _) => Ok(i.clone()),
            (Sink::Tenants(gate), Some(t)) => {
                gate.tenants.get(t).await?.ingest().ok_or_else(|| {
                    Denied::Unavailable(format!(
                        "tenant {:?} has no pipeline on this role",
                        t.as_str()
                    ))
                })
            }
            (Sink::Tenants(_), None) => {
                Err(Denied::BadTenant(format!("no {TENANT_HEADER} header")))
            }
        }
    }
}

/// Consumes partition `p` into `sink` until `stop` turns true. Never returns early: NATS
/// outages and store failures are retried (logged and counted).
pub async fn run_partition(
    js: jetstream::Context,
    cfg: SpanLogSettings,
    p: u32,
    mut consumer: consumer::Consumer<consumer::pull::Config>,
    sink: Sink,
    metrics: Arc<crate::metrics::Metrics>,
    stop: watch::Receiver<bool>,
) {
    let m = &metrics.span_log;
    let dead = dead_letter_subject(&cfg.stream);
    let want_encoding = encoding();
    let mut last_lag: (u64, u64) = (0, 0);
    let mut lag_at = tokio::time::Instant::now();
    // A fetch is never raced against anything: dropping it mid-way would strand the messages
    // already delivered to it until the ack wait ran out. It ends by itself within FETCH_WAIT,
    // so `stop` is seen between fetches.
    while !*stop.borrow() {
        if lag_at.elapsed() >= LAG_EVERY {
            lag_at = tokio::time::Instant::now();
            if let Ok(info) = consumer.info().await {
                let now = (info.num_pending, info.num_ack_pending as u64);
                m.consumer_lag.fetch_add(now.0, Relaxed);
                m.consumer_lag.fetch_sub(last_lag.0, Relaxed);
                m.ack_pending.fetch_add(now.1, Relaxed);
                m.ack_pending.fetch_sub(last_lag.1, Relaxed);
                last_lag = now;
            }
        }
        let (msgs, failed) = fetch(&consumer).await;
        if !msgs.is_empty() {
            store_messages(&js, &dead, &want_encoding, p, msgs, &sink, m).await;
        }
        if let Some(e) = failed {
            tracing::warn!(partition = p, error = %e, "span log: fetch failed, retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            // the consumer may have been lost with a server: bind again
            if let Ok(c) = consumer_for(&js, &cfg, p).await {
                consumer = c;
            }
        }
    }
    m.consumer_lag.fetch_sub(last_lag.0, Relaxed);
    m.ack_pending.fetch_sub(last_lag.1, Relaxed);
}

/// One pull: the messages received, and the error that ended it early, if any (messages
/// received before an error are still stored and acked).
async fn fetch(
    consumer: &consumer::Consumer<consumer::pull::Config>,
) -> (Vec<jetstream::Message>, Option<String>) {
    let mut batch = match consumer
        .fetch()
        .max_messages(FETCH_MAX)
        .expires(FETCH_WAIT)
        .messages()
        .await
    {
        Ok(b) => b,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        match m {
            Ok(m) => out.push(m),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

/// Stores the spans of fetched messages through the ingester's pipeline (with multi-tenancy,
/// each tenant's through its own) and acks them once stored; undecodable ones and ones with a
/// bad tenant go to the dead-letter subject; on a store failure they are naked with a delay and
/// come back.
async fn store_messages(
    js: &jetstream::Context,
    dead: &str,
    want_encoding: &str,
    p: u32,
    msgs: Vec<jetstream::Message>,
    sink: &Sink,
    m: &SpanLogMetrics,
) {
    let mut groups: BTreeMap<Option<TenantId>, (Vec<Span>, Vec<jetstream::Message>)> =
        BTreeMap::new();
    for msg in msgs {
        if msg.info().map(|i| i.delivered > 1).unwrap_or(false) {
            m.redeliveries.fetch_add(1, Relaxed);
        }
        let tenant = match sink.tenant_of(&msg) {
            Ok(t) => t,
            Err(reason) => {
                m.tenant_refused.fetch_add(1, Relaxed);
                dead_letter(js, dead, &msg, "message with a bad tenant", &reason, m).await;
                continue;
            }
        };
        match decode(&msg, want_encoding) {
            Ok(mut s) => {
                let group = groups.entry(tenant).or_default();
                group.0.append(&mut s);
                group.1.push(msg);
            }
            Err(reason) => dead_letter(js, dead, &msg, "undecodable message", &reason, m).await,
        }
    }
    for (tenant, (spans, good)) in groups {
        let ingest = match sink.ingest(tenant.as_ref()).await {
            Ok(i) => i,
            Err(Denied::Unavailable(e)) => {
                // the tenant's store cannot be opened now: the messages come back
                let e = IngestError::Storage(e);
                nak_all(p, tenant.as_ref(), &good, &e, m).await;
                continue;
            }
            Err(denied) => {
                // over the tenant limit: kept in the dead letters, not dropped
                for msg in &good {
                    m.tenant_refused.fetch_add(1, Relaxed);
                    let reason = denied.to_string();
                    dead_letter(js, dead, msg, "message with a bad tenant", &reason, m).await;
                }
                continue;
            }
        };
        let count = spans.len() as u64;
        let result = ingest
            .ingest(IngestBatch {
                receiver: "span_log",
                spans,
                ..Default::default()
            })
            .await;
        match result {
            Ok(_) => {
                for msg in &good {
                    if let Err(e) = msg.ack().await {
                        // JetStream redelivers after the ack wait: stored twice at worst
                        tracing::warn!(partition = p, error = %e, "span log: ack failed");
                    }
                }
                m.consumed_messages.fetch_add(good.len() as u64, Relaxed);
                m.consumed_spans.fetch_add(count, Relaxed);
            }
            Err(e) => nak_all(p, tenant.as_ref(), &good, &e, m).await,
        }
    }
}

/// A store failure: the messages are naked with a delay (they come back), counted and logged.
async fn nak_all(
    p: u32,
    tenant: Option<&TenantId>,
    msgs: &[jetstream::Message],
    e: &IngestError,
    m: &SpanLogMetrics,
) {
    m.store_errors.fetch_add(1, Relaxed);
    let delay = match e {
        IngestError::Overloaded { retry_after } => *retry_after,
        _ => Duration::from_secs(1),
    };
    let tenant = tenant.map(TenantId::as_str);
    tracing::warn!(partition = p, tenant, error = %e, messages = msgs.len(), "span log: storing failed, messages will be redelivered");
    for msg in msgs {
        let _ = msg.ack_with(jetstream::AckKind::Nak(Some(delay))).await;
    }
    tokio::time::sleep(delay).await;
}

/// The spans of one message, or why it cannot be stored.
fn decode(msg: &jetstream::Message, want_encoding: &str) -> Result<Vec<Span>, String> {
    let enc = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(ENCODING_HEADER))
        .map(|v| v.as_str().to_string());
    match enc.as_deref() {
        Some(e) if e == want_encoding => {}
        Some(other) => {
            return Err(format!(
                "unsupported encoding {other:?}, this ingester reads {want_encoding:?}"
            ))
        }
        None => return Err(format!("no {ENCODING_HEADER} header")),
    }
    let reader = BlockReader::open(&msg.payload).map_err(|e| format!("bad block: {e}"))?;
    reader.decode_all().map_err(|e| format!("bad block: {e}"))
}

async fn dead_letter(
    js: &jetstream::Context,
    dead: &str,
    msg: &jetstream::Message,
    what: &str,
    reason: &str,
    m: &SpanLogMetrics,
) {
    tracing::warn!(subject = %msg.subject, error = reason, "span log: {what} sent to {dead}");
    let mut headers = msg.headers.clone().unwrap_or_default();
    headers.insert(ERROR_HEADER, reason);
    headers.insert(ORIGIN_HEADER, msg.subject.as_str());
    let published = match js
        .publish_with_headers(dead.to_string(), headers, msg.payload.clone())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match published {
        Ok(()) => {
            m.dead_letters.fetch_add(1, Relaxed);
            if let Err(e) = msg.ack().await {
                tracing::warn!(error = %e, "span log: ack of a dead letter failed");
            }
        }
        Err(e) => {
            // not acked: it comes back after ack_wait and is tried again
            tracing::warn!(error = %e, "span log: publishing a dead letter failed");
        }
    }
}

/// Cuts a span whose encoding is larger than `max_payload` until it fits: halves its events,
/// then its links, shortens its long string values, halves its attributes, then (in its own copy)
/// its resource's attributes, and adds a warning
/// saying what was cut (as validation does for over-long values). Answers the warning and the
/// encoded span.
fn shrink_to_fit(span: &Span, max_payload: usize) -> (String, Vec<u8>) {
    let mut s = span.clone();
    let (events, links, attrs, res) = (
        s.events.len(),
        s.links.len(),
        s.attributes.len(),
        s.resource.attributes.len(),
    );
    let mut value_cap = usize::MAX;
    loop {
        let bytes = encode_block_refs(std::iter::once(&s));
        let done = bytes.len() <= max_payload;
        let nothing_left = s.events.is_empty()
            && s.links.is_empty()
            && s.attributes.is_empty()
            && s.resource.attributes.is_empty();
        if done || nothing_left {
            let note = format!(
                "cut to fit the span log's message limit of {max_payload} bytes: {} of {events} events, {} of {links} links, {} of {attrs} attributes and {} of {res} resource attributes kept{}",
                s.events.len(),
                s.links.len(),
                s.attributes.len(),
                s.resource.attributes.len(),
                if value_cap == usize::MAX {
                    String::new()
                } else {
                    format!(", string values cut to {value_cap} bytes")
                },
            );
            if done {
                s.warnings.push(note.clone());
                let with_note = encode_block_refs(std::iter::once(&s));
                if with_note.len() <= max_payload {
                    return (note, with_note);
                }
            }
            return (note, bytes);
        }
        if !s.events.is_empty() {
            s.events.truncate(s.events.len() / 2);
        } else if !s.links.is_empty() {
            s.links.truncate(s.links.len() / 2);
        } else if value_cap > 64 {
            value_cap = if value_cap == usize::MAX {
                4096
            } else {
                value_cap / 4
            };
            for kv in &mut s.attributes {
                if let spoor_core::AnyValue::Str(v) = &mut kv.value {
                    if v.len() > value_cap {
                        let mut end = value_cap;
                        while !v.is_char_boundary(end) {
                            end -= 1;
                        }
                        v.truncate(end);
                    }
                }
            }
        } else if !s.attributes.is_empty() {
            s.attributes.truncate(s.attributes.len() / 2);
        } else {
            // the batch's shared resource is not touched: this span gets its own, cut copy
            let mut r = (*s.resource).clone();
            r.attributes.truncate(r.attributes.len() / 2);
            s.resource = std::sync::Arc::new(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_too_large_for_one_message_is_cut_to_fit_not_dropped() {
        use spoor_core::{AnyValue, Event, KeyValue, Resource, SpanId};
        // distinct values: the block encoding stores each distinct string once
        let big = |i: usize, n: usize| AnyValue::Str(format!("{i:05}{}", "x".repeat(n)));
        let mut span = Span {
            trace_id: TraceId(7),
            span_id: SpanId(9),
            name: "upload".into(),
            resource: std::sync::Arc::new(Resource {
                service_name: "svc".into(),
                attributes: (0..64)
                    .map(|i| KeyValue::new(format!("r{i}"), big(i, 16_000)))
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        span.attributes = (0..128)
            .map(|i| KeyValue::new(format!("a{i}"), big(100 + i, 16_000)))
            .collect();
        span.events = (0..50)
            .map(|i| Event {
                name: format!("e{i}"),
                attributes: vec![KeyValue::new("payload", big(1000 + i, 16_000))],
                ..Default::default()
            })
            .collect();
        let max = 256 * 1024;
        assert!(encode_block_refs(std::iter::once(&span)).len() > 4 * max);
        let (note, bytes) = shrink_to_fit(&span, max);
        assert!(bytes.len() <= max, "{} > {max}", bytes.len());
        let back = BlockReader::open(&bytes).unwrap().decode_all().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].trace_id, back[0].span_id), (TraceId(7), SpanId(9)));
        assert_eq!(back[0].resource.service_name, "svc");
        assert!(
            note.starts_with("cut to fit the span log's message limit"),
            "{note}"
        );
        assert_eq!(back[0].warnings, vec![note]);
        // the batch's shared resource is untouched
        assert_eq!(span.resource.attributes.len(), 64);
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        // pinned values: collectors and ingesters of every version must agree
        for (id, parts, want) in [(TraceId(1), 1, 0), (TraceId(u128::MAX), 1, 0)] {
            assert_eq!(partition_of(id, parts), want);
        }
        // FNV-1a 64 of the 16 big-endian bytes, computed independently (Python)
        for (id, want) in [
            (0x0102, 2),
            (0xc0ffee, 0),
            (0x5b8e_fff7_9803_8103_d269_b633_813f_c60c, 7),
        ] {
            assert_eq!(partition_of(TraceId(id), 8), want, "{id:x}");
        }
        let mut seen = [0u32; 8];
        for i in 0..8000u128 {
            seen[partition_of(TraceId(i * 0x9e37_79b9_7f4a_7c15), 8) as usize] += 1;
        }
        for (p, n) in seen.iter().enumerate() {
            assert!((700..1300).contains(n), "partition {p} got {n} of 8000");
        }
    }

    #[test]
    fn names() {
        assert_eq!(subject("spoor-spans", 3), "spoor-spans.p3");
        assert_eq!(durable_name("spoor-spans", 3), "spoor-spans-p3");
        assert_eq!(dead_letter_subject("s"), "s.dead-letter");
        assert_eq!(encoding(), "spoor-block/1");
        let a = message_id("s.p1", None, b"abc");
        assert_eq!(a, message_id("s.p1", None, b"abc"));
        assert_ne!(a, message_id("s.p2", None, b"abc"));
        assert_ne!(a, message_id("s.p1", None, b"abd"));
        // the same spans of two tenants are two messages, not one deduplicated
        let ta = message_id("s.p1", Some("a"), b"abc");
        assert_ne!(a, ta);
        assert_ne!(ta, message_id("s.p1", Some("b"), b"abc"));
        assert_eq!(ta, message_id("s.p1", Some("a"), b"abc"));
    }
}
