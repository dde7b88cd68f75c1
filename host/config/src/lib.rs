//! The daemon's configuration: command-line flags, `SPOOR_*` environment variables and a TOML
//! file, merged in that order of precedence and validated once into a [`Settings`] that cannot
//! be invalid.
//!
//! The file uses the flag names as keys (`memory.max-traces = 1000` is the table `memory`, key
//! `max-traces`). Unknown keys are rejected with a message naming the key.
//!
//! This crate knows no server, client or plugin runtime, so it builds (and fuzzes) on its own:
//! the plugin entries (`[[plugins]]`, the section of a `plugin` policy of `[sampling.tail]`)
//! are kept as TOML tables ([`PluginTable`]), which the daemon turns into its plugin runtime's
//! specs; everything [`Settings::resolve`] reads (the file, the tokens file, the UI options)
//! goes through [`Files`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

pub mod auth;
mod limits;
mod objstore;
mod render;
pub mod spanlog;
pub mod tls;

pub use limits::{HttpLimits, MemoryLimitConfig};
pub use objstore::ObjectStoreSettings;

/// A plugin entry of the config file as written: one `[[plugins]]` table, or the `plugin`
/// section of a tail-sampling policy. Its schema is the plugin runtime's
/// (`spoor_plugin_host::PluginSpec`, `PolicySection`); the daemon turns it into one, naming the
/// entry (`plugins[1]`, `sampling.tail.policies[0]`) in any error.
pub type PluginTable = toml::Table;

/// `[sampling.tail]`: the OTel Collector's tail sampling settings, validated, with the
/// sections of its `plugin` policies as written.
pub type TailSection = spoor_core::tail::TailConfig<PluginTable>;

/// What resolving reads: the config file, the bearer tokens file, the UI options file, and
/// whether the UI directory has an `index.html`. The daemon reads the file system
/// ([`RealFiles`]); tests and the fuzz target give a fixed set of files, so an input naming
/// `/dev/zero` cannot hang them.
pub trait Files {
    /// The whole file as text.
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
    /// Whether `path` is a file.
    fn is_file(&self, path: &Path) -> bool;
}

/// The file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFiles;

impl Files for RealFiles {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Spoor: a distributed tracing backend (OTLP in, Jaeger-compatible query out).
#[derive(Debug, Parser)]
#[command(name = "spoor", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The role to run; `all-in-one` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the all-in-one role when no subcommand is given.
    #[command(flatten)]
    pub options: Options,
}

/// Roles of the one binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receivers, pipeline, storage and query API in one process (the default).
    AllInOne(Options),
    /// Receivers, pipeline and storage writer, without the query API.
    Collector(Options),
    /// The query API over a store written by a collector (sled: not while a collector has it
    /// open, as sled is single-process).
    Query(Options),
    /// Per-host agent: OTLP and Jaeger UDP receivers that batch and forward to a collector over
    /// OTLP/gRPC, with retry and a bounded buffer (`pipeline.queue-bytes`).
    Agent(Options),
    /// Consumes owned partitions of the span log (`--span-log`, `--ingester.partitions`) into
    /// its own sled store and serves the query API over it.
    Ingester(Options),
    /// Pipeline plugins: validate one, or run it on a file of traces (no daemon needed).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// `spoor plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Checks a component against the plugin contract and prints its metadata.
    Check {
        /// The plugin component (`.wasm`).
        file: PathBuf,
    },
    /// Runs a plugin once on the traces of a Jaeger JSON or OTLP JSON file and prints the result
    /// in the same format; a tail-sampling policy plugin prints its verdict per trace.
    Run {
        /// The plugin component (`.wasm`).
        file: PathBuf,
        /// Jaeger JSON (the query API's `{"data": [...]}` or one trace) or OTLP JSON.
        #[arg(long)]
        input: PathBuf,
        /// The plugin's settings as a JSON object [default: {}].
        #[arg(long, default_value = "{}")]
        config: String,
        /// Capabilities to grant, comma-separated: clock, random, log.
        #[arg(long, value_delimiter = ',')]
        grant: Vec<String>,
    },
}

/// Which storage backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// In memory, bounded by `memory.max-traces`; lost on exit.
    Memory,
    /// Embedded sled database under `data-dir` (the default).
    Sled,
    /// Accept and discard (to measure the pipeline alone).
    Blackhole,
}

/// When the sled store makes writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityKind {
    /// Flush at least every second; acknowledge on enqueue (the default).
    Periodic,
    /// Acknowledge a request only after its spans are flushed to disk.
    Sync,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of the all-in-one role. Every flag can also be set with the environment variable shown
/// and in the config file under the flag's name.
#[derive(Debug, Clone, Default, Args)]
pub struct Options {
    /// TOML config file; flags and environment variables override its values.
    #[arg(long, env = "SPOOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Storage backend [default: sled].
    #[arg(long, env = "SPOOR_STORAGE", value_enum)]
    pub storage: Option<StorageKind>,
    /// Directory of the sled store [default: ./spoor-data].
    #[arg(long = "data-dir", env = "SPOOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long spans are kept, e.g. `72h`, `7d` [default: 72h].
    #[arg(long, env = "SPOOR_RETENTION")]
    pub retention: Option<String>,
    /// Width of a sled time partition; retention drops whole partitions [default: 1h].
    #[arg(long = "sled.partition", env = "SPOOR_SLED_PARTITION")]
    pub sled_partition: Option<String>,
    /// sled durability [default: periodic].
    #[arg(long, env = "SPOOR_DURABILITY", value_enum)]
    pub durability: Option<DurabilityKind>,
    /// Traces kept by the memory store before the oldest are evicted [default: 100000].
    #[arg(long = "memory.max-traces", env = "SPOOR_MEMORY_MAX_TRACES")]
    pub memory_max_traces: Option<usize>,
    /// Resident memory of the process, in MiB, above which (less the spike limit) ingest is
    /// refused with 429 until it drops, as the OTel Collector's memory_limiter; 0 turns the
    /// limiter off [default: 0].
    #[arg(long = "memory.limit-mib", env = "SPOOR_MEMORY_LIMIT_MIB")]
    pub memory_limit_mib: Option<u64>,
    /// Headroom below `memory.limit-mib` where refusing starts [default: 20% of the limit].
    #[arg(long = "memory.spike-limit-mib", env = "SPOOR_MEMORY_SPIKE_LIMIT_MIB")]
    pub memory_spike_limit_mib: Option<u64>,
    /// How often the memory limiter samples resident memory [default: 250ms].
    #[arg(long = "memory.check-interval", env = "SPOOR_MEMORY_CHECK_INTERVAL")]
    pub memory_check_interval: Option<String>,
    /// sled's page cache in bytes (indexes only; blocks live in files) [default: 16777216].
    #[arg(long = "sled.cache-bytes", env = "SPOOR_SLED_CACHE_BYTES")]
    pub sled_cache_bytes: Option<u64>,
    /// OTLP/gRPC listen address [default: 0.0.0.0:4317].
    #[arg(long = "otlp.grpc.host-port", env = "SPOOR_OTLP_GRPC_HOST_PORT")]
    pub otlp_grpc: Option<String>,
    /// OTLP/HTTP listen address [default: 0.0.0.0:4318].
    #[arg(long = "otlp.http.host-port", env = "SPOOR_OTLP_HTTP_HOST_PORT")]
    pub otlp_http: Option<String>,
    /// PEM certificate chain: TLS on every TCP listener but the admin port (with
    /// --tls.key-file; the admin port too with --admin.http.tls.enabled) [default: none, plain
    /// TCP].
    #[arg(long = "tls.cert-file", env = "SPOOR_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls.cert-file.
    #[arg(long = "tls.key-file", env = "SPOOR_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: require client certificates signed by them (mutual TLS).
    #[arg(long = "tls.client-ca-file", env = "SPOOR_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Agent role: PEM CA certificates to trust for an `https://` collector endpoint.
    #[arg(long = "agent.tls.ca-file", env = "SPOOR_AGENT_TLS_CA_FILE")]
    pub agent_tls_ca_file: Option<PathBuf>,
    /// Agent role: client certificate for mutual TLS with the collector.
    #[arg(long = "agent.tls.cert-file", env = "SPOOR_AGENT_TLS_CERT_FILE")]
    pub agent_tls_cert_file: Option<PathBuf>,
    /// Agent role: key of --agent.tls.cert-file.
    #[arg(long = "agent.tls.key-file", env = "SPOOR_AGENT_TLS_KEY_FILE")]
    pub agent_tls_key_file: Option<PathBuf>,
    /// Open connections per HTTP listener; more clients wait in the accept backlog
    /// [default: 4096].
    #[arg(long = "http.max-connections", env = "SPOOR_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Time an HTTP client has to send its request headers [default: 10s].
    #[arg(
        long = "http.header-read-timeout",
        env = "SPOOR_HTTP_HEADER_READ_TIMEOUT"
    )]
    pub http_header_read_timeout: Option<String>,
    /// Time an HTTP client has to send a request body; slower ones get 408 [default: 30s].
    #[arg(long = "http.body-read-timeout", env = "SPOOR_HTTP_BODY_READ_TIMEOUT")]
    pub http_body_read_timeout: Option<String>,
    /// Largest accepted OTLP request, compressed or not, in bytes [default: 16777216].
    #[arg(long = "otlp.max-body-bytes", env = "SPOOR_OTLP_MAX_BODY_BYTES")]
    pub otlp_max_body_bytes: Option<usize>,
    /// Jaeger Thrift compact over UDP (`Agent.emitBatch`) [default: 0.0.0.0:6831].
    #[arg(
        long = "jaeger.thrift-compact.host-port",
        env = "SPOOR_JAEGER_THRIFT_COMPACT_HOST_PORT"
    )]
    pub jaeger_compact: Option<String>,
    /// Jaeger Thrift binary over UDP (`Agent.emitBatch`) [default: 0.0.0.0:6832].
    #[arg(
        long = "jaeger.thrift-binary.host-port",
        env = "SPOOR_JAEGER_THRIFT_BINARY_HOST_PORT"
    )]
    pub jaeger_binary: Option<String>,
    /// Jaeger Thrift over HTTP (`POST /api/traces`) [default: 0.0.0.0:14268].
    #[arg(
        long = "jaeger.thrift-http.host-port",
        env = "SPOOR_JAEGER_THRIFT_HTTP_HOST_PORT"
    )]
    pub jaeger_http: Option<String>,
    /// Jaeger gRPC api_v2 (`CollectorService/PostSpans`) [default: 0.0.0.0:14250].
    #[arg(long = "jaeger.grpc.host-port", env = "SPOOR_JAEGER_GRPC_HOST_PORT")]
    pub jaeger_grpc: Option<String>,
    /// Zipkin HTTP (`/api/v2/spans`, `/api/v1/spans`) [default: 0.0.0.0:9411].
    #[arg(long = "zipkin.http.host-port", env = "SPOOR_ZIPKIN_HTTP_HOST_PORT")]
    pub zipkin_http: Option<String>,
    /// Agent role: the collector's OTLP/gRPC endpoint, e.g. `http://collector:4317`.
    #[arg(
        long = "agent.collector-endpoint",
        env = "SPOOR_AGENT_COLLECTOR_ENDPOINT"
    )]
    pub agent_collector_endpoint: Option<String>,
    /// Agent role: the collector's gRPC `SamplingManager` the agent asks for sampling strategies
    /// [default: the host of agent.collector-endpoint, port 14250].
    #[arg(
        long = "agent.sampling-endpoint",
        env = "SPOOR_AGENT_SAMPLING_ENDPOINT"
    )]
    pub agent_sampling_endpoint: Option<String>,
    /// Sampling strategies for clients' remote samplers (`GET /sampling`, `GET /`), in
    /// all-in-one and agent [default: 0.0.0.0:5778].
    #[arg(
        long = "sampling.http.host-port",
        env = "SPOOR_SAMPLING_HTTP_HOST_PORT"
    )]
    pub sampling_http: Option<String>,
    /// Sampling strategies file (Jaeger's JSON format), re-read when it changes; without one
    /// every service gets probabilistic 0.001.
    #[arg(
        long = "sampling.strategies-file",
        env = "SPOOR_SAMPLING_STRATEGIES_FILE"
    )]
    pub sampling_strategies_file: Option<PathBuf>,
    /// How often the strategies file is checked for changes [default: 10s].
    #[arg(
        long = "sampling.strategies-reload-interval",
        env = "SPOOR_SAMPLING_STRATEGIES_RELOAD_INTERVAL"
    )]
    pub sampling_reload_interval: Option<String>,
    /// Adaptive sampling (Jaeger's): serve per-operation probabilities calculated from the root
    /// spans received, instead of a strategies file [default: false].
    #[arg(long = "sampling.adaptive", env = "SPOOR_SAMPLING_ADAPTIVE")]
    pub sampling_adaptive: Option<bool>,
    /// Adaptive sampling: sampled traces per second wanted per operation [default: 1].
    #[arg(
        long = "sampling.target-samples-per-second",
        env = "SPOOR_SAMPLING_TARGET_SAMPLES_PER_SECOND"
    )]
    pub sampling_target_samples_per_second: Option<f64>,
    /// Adaptive sampling: how often probabilities are recalculated [default: 1m].
    #[arg(
        long = "sampling.calculation-interval",
        env = "SPOOR_SAMPLING_CALCULATION_INTERVAL"
    )]
    pub sampling_calculation_interval: Option<String>,
    /// RED span metrics (calls, errors, latency per service, operation and kind) for the
    /// monitor API and /metrics [default: true].
    #[arg(long = "span-metrics.enabled", env = "SPOOR_SPAN_METRICS_ENABLED")]
    pub span_metrics_enabled: Option<bool>,
    /// Time bucket of the stored span metrics, the finest step the monitor API answers
    /// [default: 60s].
    #[arg(long = "span-metrics.bucket", env = "SPOOR_SPAN_METRICS_BUCKET")]
    pub span_metrics_bucket: Option<String>,
    /// Receiver families to run, comma-separated: otlp, jaeger, zipkin [default: all].
    #[arg(long, env = "SPOOR_RECEIVERS", value_delimiter = ',')]
    pub receivers: Option<Vec<String>>,
    /// Query API and UI listen address [default: 0.0.0.0:16686].
    #[arg(long = "query.http.host-port", env = "SPOOR_QUERY_HTTP_HOST_PORT")]
    pub query_http: Option<String>,
    /// Longest search window; longer searches are shortened by moving their start [default:
    /// none].
    #[arg(long = "query.max-lookback", env = "SPOOR_QUERY_MAX_LOOKBACK")]
    pub query_max_lookback: Option<String>,
    /// Most traces one search returns, whatever its limit asks [default: 1500].
    #[arg(long = "query.max-limit", env = "SPOOR_QUERY_MAX_LIMIT")]
    pub query_max_limit: Option<usize>,
    /// Most spans returned per trace, earliest first, with a warning; 0 = all [default: 0].
    #[arg(
        long = "query.max-spans-per-trace",
        env = "SPOOR_QUERY_MAX_SPANS_PER_TRACE"
    )]
    pub query_max_spans_per_trace: Option<usize>,
    /// Directory of the built web UI (`www/dist`) served on the query port [default: none, the
    /// API only].
    #[arg(long = "query.static-files", env = "SPOOR_QUERY_STATIC_FILES")]
    pub query_static_files: Option<PathBuf>,
    /// UI options JSON file (Jaeger's format: menu, linkPatterns, dependencies, search
    /// maxLookback), answered at `/api/ui-config`.
    #[arg(long = "query.ui-config", env = "SPOOR_QUERY_UI_CONFIG")]
    pub query_ui_config: Option<PathBuf>,
    /// Path prefix of the query API and the UI, e.g. `/jaeger` (Jaeger's
    /// `--query.base-path`) [default: /].
    #[arg(long = "query.base-path", env = "SPOOR_QUERY_BASE_PATH")]
    pub query_base_path: Option<String>,
    /// Admin (health, metrics) listen address [default: 0.0.0.0:14269].
    #[arg(long = "admin.http.host-port", env = "SPOOR_ADMIN_HTTP_HOST_PORT")]
    pub admin_http: Option<String>,
    /// Serve the admin port over TLS too, with the --tls.cert-file certificate (and
    /// --tls.client-ca-file when set), as Jaeger's --admin.http.tls.enabled [default: false:
    /// plain HTTP for health checks and scrapers inside the deployment].
    #[arg(long = "admin.http.tls.enabled", env = "SPOOR_ADMIN_HTTP_TLS_ENABLED")]
    pub admin_http_tls_enabled: Option<bool>,
    /// Memory the pipeline queue may hold before ingest is refused with 429, in bytes
    /// [default: 33554432].
    #[arg(long = "pipeline.queue-bytes", env = "SPOOR_PIPELINE_QUEUE_BYTES")]
    pub queue_bytes: Option<usize>,
    /// Spans per storage batch [default: 8192].
    #[arg(long = "batch.max-spans", env = "SPOOR_BATCH_MAX_SPANS")]
    pub batch_max_spans: Option<usize>,
    /// Longest a span waits in a batch, e.g. `200ms` [default: 200ms].
    #[arg(long = "batch.max-age", env = "SPOOR_BATCH_MAX_AGE")]
    pub batch_max_age: Option<String>,
    /// Span log: NATS servers, comma-separated (`nats://h1:4222,nats://h2:4222`). A collector
    /// publishes to it instead of storing; an ingester consumes from it [default: none].
    #[arg(long = "span-log", env = "SPOOR_SPAN_LOG")]
    pub span_log: Option<String>,
    /// Span log: JetStream stream name [default: spoor-spans].
    #[arg(long = "span-log.stream", env = "SPOOR_SPAN_LOG_STREAM")]
    pub span_log_stream: Option<String>,
    /// Span log: partitions trace ids are hashed over; all collectors and ingesters must agree
    /// [default: 8].
    #[arg(long = "span-log.partitions", env = "SPOOR_SPAN_LOG_PARTITIONS")]
    pub span_log_partitions: Option<u32>,
    /// Span log: stream replicas (at most the NATS cluster's size) [default: 1].
    #[arg(long = "span-log.replicas", env = "SPOOR_SPAN_LOG_REPLICAS")]
    pub span_log_replicas: Option<usize>,
    /// Span log: messages older than this are dropped, e.g. `24h`; 0 keeps them until
    /// span-log.max-bytes [default: 24h].
    #[arg(long = "span-log.max-age", env = "SPOOR_SPAN_LOG_MAX_AGE")]
    pub span_log_max_age: Option<String>,
    /// Span log: stream size bound in bytes, oldest dropped first; -1 is unbounded
    /// [default: -1].
    #[arg(
        long = "span-log.max-bytes",
        env = "SPOOR_SPAN_LOG_MAX_BYTES",
        allow_negative_numbers = true
    )]
    pub span_log_max_bytes: Option<i64>,
    /// Span log: PEM CA certificates the NATS servers' certificates must chain to; connects
    /// with TLS (also implied by `tls://` urls).
    #[arg(long = "span-log.tls.ca-file", env = "SPOOR_SPAN_LOG_TLS_CA_FILE")]
    pub span_log_tls_ca_file: Option<PathBuf>,
    /// Span log: client certificate presented to NATS (mutual TLS, `tls { verify: true }`).
    #[arg(long = "span-log.tls.cert-file", env = "SPOOR_SPAN_LOG_TLS_CERT_FILE")]
    pub span_log_tls_cert_file: Option<PathBuf>,
    /// Span log: key of --span-log.tls.cert-file.
    #[arg(long = "span-log.tls.key-file", env = "SPOOR_SPAN_LOG_TLS_KEY_FILE")]
    pub span_log_tls_key_file: Option<PathBuf>,
    /// Ingester role: the span-log partitions it consumes, e.g. `0-3` or `0,2,4`.
    #[arg(long = "ingester.partitions", env = "SPOOR_INGESTER_PARTITIONS")]
    pub ingester_partitions: Option<String>,
    /// Query role: answer from these ingesters' query ports instead of a local store,
    /// comma-separated (`http://ingester-a:16686,http://ingester-b:16686`).
    #[arg(
        long = "query.ingesters",
        env = "SPOOR_QUERY_INGESTERS",
        value_delimiter = ','
    )]
    pub query_ingesters: Option<Vec<String>>,
    /// Query role: PEM CA certificates an `https://` ingester's certificate must chain to.
    #[arg(
        long = "query.ingesters-tls.ca-file",
        env = "SPOOR_QUERY_INGESTERS_TLS_CA_FILE"
    )]
    pub query_ingesters_tls_ca_file: Option<PathBuf>,
    /// Query role: client certificate presented to `https://` ingesters (mutual TLS).
    #[arg(
        long = "query.ingesters-tls.cert-file",
        env = "SPOOR_QUERY_INGESTERS_TLS_CERT_FILE"
    )]
    pub query_ingesters_tls_cert_file: Option<PathBuf>,
    /// Query role: key of --query.ingesters-tls.cert-file.
    #[arg(
        long = "query.ingesters-tls.key-file",
        env = "SPOOR_QUERY_INGESTERS_TLS_KEY_FILE"
    )]
    pub query_ingesters_tls_key_file: Option<PathBuf>,
    /// History in S3-compatible object storage: `s3://bucket[/prefix]`. Ingesters (and an
    /// all-in-one on sled) seal old time partitions into blocks there; query nodes read them
    /// [default: none].
    #[arg(long = "object-store.url", env = "SPOOR_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// Object storage: endpoint of an S3-compatible server, e.g. `http://127.0.0.1:3900`
    /// [default: AWS S3].
    #[arg(long = "object-store.endpoint", env = "SPOOR_OBJECT_STORE_ENDPOINT")]
    pub object_store_endpoint: Option<String>,
    /// Object storage: region [default: us-east-1].
    #[arg(long = "object-store.region", env = "SPOOR_OBJECT_STORE_REGION")]
    pub object_store_region: Option<String>,
    /// Object storage: access key id [default: AWS_ACCESS_KEY_ID].
    #[arg(
        long = "object-store.access-key-id",
        env = "SPOOR_OBJECT_STORE_ACCESS_KEY_ID"
    )]
    pub object_store_access_key_id: Option<String>,
    /// Object storage: secret access key [default: AWS_SECRET_ACCESS_KEY]; prefer the
    /// environment variable SPOOR_OBJECT_STORE_SECRET_ACCESS_KEY to a flag.
    #[arg(
        long = "object-store.secret-access-key",
        env = "SPOOR_OBJECT_STORE_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub object_store_secret_access_key: Option<String>,
    /// Object storage: seal a time partition this long after it ended [default: 10m].
    #[arg(
        long = "object-store.seal-after",
        env = "SPOOR_OBJECT_STORE_SEAL_AFTER"
    )]
    pub object_store_seal_after: Option<String>,
    /// Object storage: keep a sealed partition locally this long after its upload was
    /// confirmed, so query nodes list the block before the head forgets it; at least twice
    /// object-store.poll [default: 1m].
    #[arg(
        long = "object-store.keep-after-upload",
        env = "SPOOR_OBJECT_STORE_KEEP_AFTER_UPLOAD"
    )]
    pub object_store_keep_after_upload: Option<String>,
    /// Object storage: how often readers list the blocks and the sealer looks for partitions
    /// to seal [default: 15s].
    #[arg(long = "object-store.poll", env = "SPOOR_OBJECT_STORE_POLL")]
    pub object_store_poll: Option<String>,
    /// Object storage: this node's name in block ids, unique per ingester [default: the
    /// ingester's partitions, e.g. `p0-3`; `local` for an all-in-one].
    #[arg(long = "object-store.node", env = "SPOOR_OBJECT_STORE_NODE")]
    pub object_store_node: Option<String>,
    /// Object storage: run the compactor (merges small blocks, deletes blocks past
    /// retention) on this node; run it on exactly one node [default: false].
    #[arg(
        long = "object-store.compaction",
        env = "SPOOR_OBJECT_STORE_COMPACTION"
    )]
    pub object_store_compaction: Option<bool>,
    /// Log format [default: text].
    #[arg(long = "log.format", env = "SPOOR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `spoor=debug` [default: info].
    #[arg(long = "log.level", env = "SPOOR_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Bearer tokens file: one `TOKEN TENANT` pair per line, `#` comments; re-read when it
    /// changes (a bad version keeps the last good one). Turns authentication on for every
    /// ingest, query and sampling endpoint (not admin).
    #[arg(long = "auth.tokens-file", env = "SPOOR_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// Bearer tokens as `tok1=tenant-a,tok2=tenant-b` (prefer the environment variable: flags
    /// show in process lists). Turns authentication on.
    #[arg(
        long = "auth.tokens",
        env = "SPOOR_AUTH_TOKENS",
        hide_env_values = true
    )]
    pub auth_tokens: Option<String>,
    /// With authentication or multi-tenancy on, the tenant of spans received over Jaeger UDP
    /// (which carries no token); without it the UDP receivers do not run [default: none].
    #[arg(long = "auth.udp-tenant", env = "SPOOR_AUTH_UDP_TENANT")]
    pub auth_udp_tenant: Option<String>,
    /// Multi-tenancy without tokens: the tenant header names the tenant of every request
    /// (Jaeger's flag) [default: false].
    #[arg(
        long = "multi-tenancy.enabled",
        env = "SPOOR_MULTI_TENANCY_ENABLED",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub multi_tenancy_enabled: Option<bool>,
    /// The tenant header [default: x-tenant].
    #[arg(long = "multi-tenancy.header", env = "SPOOR_MULTI_TENANCY_HEADER")]
    pub multi_tenancy_header: Option<String>,
    /// Allowed tenants, comma-separated; others are refused with 403 [default: any].
    #[arg(
        long = "multi-tenancy.tenants",
        env = "SPOOR_MULTI_TENANCY_TENANTS",
        value_delimiter = ','
    )]
    pub multi_tenancy_tenants: Option<Vec<String>>,
    /// Most tenants served (each has its own store and pipeline); requests of further tenants
    /// are refused with 403 [default: 100].
    #[arg(
        long = "multi-tenancy.max-tenants",
        env = "SPOOR_MULTI_TENANCY_MAX_TENANTS"
    )]
    pub multi_tenancy_max_tenants: Option<usize>,
}

/// The config file, key for key the flags above.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    storage: Option<StorageKind>,
    data_dir: Option<PathBuf>,
    retention: Option<String>,
    durability: Option<DurabilityKind>,
    memory: Option<FileMemory>,
    sled: Option<FileSled>,
    otlp: Option<FileOtlp>,
    jaeger: Option<FileJaeger>,
    zipkin: Option<FileZipkin>,
    receivers: Option<Vec<String>>,
    http: Option<FileHttpLimits>,
    tls: Option<FileTls>,
    query: Option<FileQuery>,
    admin: Option<FileAdmin>,
    pipeline: Option<FilePipeline>,
    batch: Option<FileBatch>,
    agent: Option<FileAgent>,
    sampling: Option<FileSampling>,
    span_metrics: Option<FileSpanMetrics>,
    /// Pipeline plugins, run in order on every accepted batch (`[[plugins]]`).
    plugins: Option<Vec<PluginTable>>,
    span_log: Option<FileSpanLog>,
    object_store: Option<FileObjectStore>,
    ingester: Option<FileIngester>,
    log: Option<FileLog>,
    auth: Option<FileAuth>,
    multi_tenancy: Option<FileMultiTenancy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAuth {
    tokens_file: Option<PathBuf>,
    tokens: Option<String>,
    udp_tenant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileMultiTenancy {
    enabled: Option<bool>,
    header: Option<String>,
    tenants: Option<Vec<String>>,
    max_tenants: Option<usize>,
}

/// `[span-log]`: the NATS JetStream span log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSpanLog {
    url: Option<String>,
    stream: Option<String>,
    partitions: Option<u32>,
    replicas: Option<usize>,
    max_age: Option<String>,
    max_bytes: Option<i64>,
    tls: Option<FileClientTls>,
}

/// `[object-store]`: history in S3-compatible object storage.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileObjectStore {
    url: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    seal_after: Option<String>,
    keep_after_upload: Option<String>,
    poll: Option<String>,
    node: Option<String>,
    compaction: Option<bool>,
}

/// `[ingester]`: what the ingester role consumes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileIngester {
    partitions: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileMemory {
    max_traces: Option<usize>,
    limit_mib: Option<u64>,
    spike_limit_mib: Option<u64>,
    check_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSled {
    partition: Option<String>,
    cache_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileOtlp {
    grpc: Option<FileHttp>,
    http: Option<FileHttp>,
    max_body_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAgent {
    collector_endpoint: Option<String>,
    sampling_endpoint: Option<String>,
    tls_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSampling {
    http: Option<FileHostPort>,
    strategies_file: Option<PathBuf>,
    strategies_reload_interval: Option<String>,
    adaptive: Option<bool>,
    target_samples_per_second: Option<f64>,
    calculation_interval: Option<String>,
    /// Tail sampling: the OTel Collector's tail_sampling settings, keys as the collector's,
    /// plus policies of type `plugin`.
    tail: Option<TailSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSpanMetrics {
    enabled: Option<bool>,
    bucket: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileJaeger {
    thrift_compact: Option<FileHttp>,
    thrift_binary: Option<FileHttp>,
    thrift_http: Option<FileHttp>,
    grpc: Option<FileHttp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileZipkin {
    http: Option<FileHttp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileQuery {
    http: Option<FileHostPort>,
    max_lookback: Option<String>,
    max_limit: Option<usize>,
    max_spans_per_trace: Option<usize>,
    static_files: Option<PathBuf>,
    ui_config: Option<PathBuf>,
    base_path: Option<String>,
    ingesters: Option<Vec<String>>,
    ingesters_tls: Option<FileClientTls>,
}

/// `[query.ingesters-tls]` and `[span-log.tls]`: TLS of a connection to an internal peer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileClientTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// `[tls]`: TLS on the listeners.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

/// `[http]`: limits every HTTP listener applies to its clients.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileHttpLimits {
    max_connections: Option<usize>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileHttp {
    host_port: Option<String>,
    http: Option<FileHostPort>,
}

/// `[admin]`: `host-port`, or `[admin.http]` with `host-port` and `tls.enabled`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAdmin {
    host_port: Option<String>,
    http: Option<FileAdminHttp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAdminHttp {
    host_port: Option<String>,
    tls: Option<FileEnabled>,
}

/// A table whose only key is `enabled`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileEnabled {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileHostPort {
    host_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilePipeline {
    queue_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileBatch {
    max_spans: Option<usize>,
    max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

/// Receiver families `--receivers` can name; all run by default.
pub const RECEIVER_FAMILIES: [&str; 3] = ["otlp", "jaeger", "zipkin"];

/// Validated settings of the all-in-one role.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Storage backend.
    pub storage: StorageKind,
    /// sled directory.
    pub data_dir: PathBuf,
    /// Retention.
    pub retention: Duration,
    /// sled partition width.
    pub partition: Duration,
    /// sled durability.
    pub durability: DurabilityKind,
    /// Memory store capacity in traces.
    pub memory_max_traces: usize,
    /// The process memory limiter.
    pub memory_limit: MemoryLimitConfig,
    /// sled page cache bytes.
    pub sled_cache_bytes: u64,
    /// OTLP/gRPC address (`None`: receiver off).
    pub otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP address.
    pub otlp_http: Option<SocketAddr>,
    /// Jaeger Thrift compact UDP address.
    pub jaeger_compact: Option<SocketAddr>,
    /// Jaeger Thrift binary UDP address.
    pub jaeger_binary: Option<SocketAddr>,
    /// Jaeger Thrift HTTP address.
    pub jaeger_http: Option<SocketAddr>,
    /// Jaeger gRPC address.
    pub jaeger_grpc: Option<SocketAddr>,
    /// Zipkin HTTP address.
    pub zipkin_http: Option<SocketAddr>,
    /// Agent role: the collector's OTLP/gRPC endpoint.
    pub agent_collector_endpoint: Option<String>,
    /// Agent role: the collector's gRPC `SamplingManager` endpoint.
    pub agent_sampling_endpoint: Option<String>,
    /// Sampling HTTP address (`/sampling`, `/`; `None`: off).
    pub sampling_http: Option<SocketAddr>,
    /// Sampling strategies file (`None`: Jaeger's default for every service).
    pub sampling_strategies_file: Option<PathBuf>,
    /// How often the strategies file is checked for changes.
    pub sampling_reload_interval: Duration,
    /// Adaptive sampling settings (`None`: off).
    pub sampling_adaptive: Option<spoor_core::sampling::AdaptiveConfig>,
    /// Tail sampling in the pipeline (`None`: off), validated; its plugin sections as written.
    pub tail_sampling: Option<TailSection>,
    /// Bucket of RED span metrics (`None`: off).
    pub span_metrics_bucket: Option<Duration>,
    /// Pipeline plugins in order, as written (relative paths are the config file's
    /// directory's: [`Settings::config_dir`]).
    pub plugins: Vec<PluginTable>,
    /// OTLP request size limit.
    pub otlp_max_body_bytes: usize,
    /// Limits of every HTTP listener.
    pub http_limits: HttpLimits,
    /// TLS of the listeners (`None`: plain TCP).
    pub tls: Option<tls::ServerTlsFiles>,
    /// Agent role: TLS towards the collector.
    pub agent_tls: tls::ClientTlsFiles,
    /// Query API address.
    pub query_http: SocketAddr,
    /// Built web UI directory (`None`: API only).
    pub query_static_files: Option<PathBuf>,
    /// Longest search window (`None`: unbounded).
    pub query_max_lookback: Option<Duration>,
    /// Most traces per search.
    pub query_max_limit: usize,
    /// Most spans per returned trace (0: all).
    pub query_max_spans_per_trace: usize,
    /// UI options (`None`: `{}`).
    pub query_ui_config: Option<serde_json::Value>,
    /// The file `query_ui_config` was read from.
    pub query_ui_config_file: Option<PathBuf>,
    /// Prefix of the query API and UI, normalised (`""`: the root).
    pub query_base_path: String,
    /// Admin address.
    pub admin_http: SocketAddr,
    /// Whether the admin port uses the listeners' TLS (`tls`, which is then set).
    pub admin_tls: bool,
    /// Pipeline queue bound in bytes.
    pub queue_bytes: usize,
    /// Spans per storage batch.
    pub batch_max_spans: usize,
    /// Longest wait in a batch.
    pub batch_max_age: Duration,
    /// The span log (`None`: not used).
    pub span_log: Option<spanlog::SpanLogSettings>,
    /// Ingester role: owned partitions, validated against `span_log` (`None`: not given).
    pub ingester_partitions: Option<Vec<u32>>,
    /// Query role: the ingesters to fan out to (empty: a local store).
    pub query_ingesters: Vec<String>,
    /// Query role: TLS towards `https://` ingesters.
    pub query_ingesters_tls: tls::ClientTlsFiles,
    /// History in object storage (`None`: not configured).
    pub object_store: Option<ObjectStoreSettings>,
    /// Whether `storage` or `data-dir` was set (flag, variable or file), not defaulted.
    pub storage_given: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Authentication and multi-tenancy (`None`: off, one default tenant).
    pub auth: Option<auth::AuthSettings>,
    /// The config file (`None`: none given).
    pub config_file: Option<PathBuf>,
}

impl Settings {
    /// Merges flags (and their environment variables) over the config file over defaults, and
    /// validates the result. Errors name the flag or key and the bad value.
    pub fn resolve(opts: &Options) -> anyhow::Result<Settings> {
        Settings::resolve_with(opts, &RealFiles)
    }

    /// [`Settings::resolve`] reading through `files`.
    pub fn resolve_with(opts: &Options, files: &dyn Files) -> anyhow::Result<Settings> {
        let mut file = match &opts.config {
            Some(path) => load_file(files, path)?,
            None => FileConfig::default(),
        };
        let memory = file.memory.unwrap_or_default();
        let sled = file.sled.unwrap_or_default();
        let otlp = file.otlp.unwrap_or_default();
        let pipeline = file.pipeline.unwrap_or_default();
        let batch = file.batch.unwrap_or_default();
        let log = file.log.unwrap_or_default();
        let jaeger = file.jaeger.unwrap_or_default();
        let zipkin = file.zipkin.unwrap_or_default();
        let agent = file.agent.unwrap_or_default();
        let mut sampling = file.sampling.take().unwrap_or_default();
        let sampling_reload_interval = parse_duration_setting(
            "sampling.strategies-reload-interval",
            opts.sampling_reload_interval
                .clone()
                .or(sampling.strategies_reload_interval),
            "10s",
        )?;
        if sampling_reload_interval.is_zero() {
            bail!("sampling.strategies-reload-interval must be longer than zero");
        }
        let sampling_adaptive = if opts
            .sampling_adaptive
            .or(sampling.adaptive)
            .unwrap_or(false)
        {
            let mut cfg = spoor_core::sampling::AdaptiveConfig::default();
            if let Some(t) = opts
                .sampling_target_samples_per_second
                .or(sampling.target_samples_per_second)
            {
                // checked here too so the refusal names the setting, not core's field
                if !(t.is_finite() && t > 0.0) {
                    bail!("sampling.target-samples-per-second must be a number above 0, got {t}");
                }
                cfg.target_samples_per_second = t;
            }
            if let Some(text) = opts
                .sampling_calculation_interval
                .clone()
                .or(sampling.calculation_interval.clone())
            {
                let d = parse_duration_setting("sampling.calculation-interval", Some(text), "1m")?;
                if d.as_secs() == 0 {
                    bail!("sampling.calculation-interval must be at least 1s, got {d:?}");
                }
                cfg.calculation_interval_seconds = d.as_secs();
            }
            cfg.validate()
                .map_err(|e| anyhow::anyhow!("invalid adaptive sampling settings: {e}"))?;
            let file_given =
                opts.sampling_strategies_file.is_some() || sampling.strategies_file.is_some();
            if file_given {
                bail!(
                    "sampling.adaptive and sampling.strategies-file exclude each other: choose one"
                );
            }
            Some(cfg)
        } else {
            None
        };
        let config_dir = opts
            .config
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let tail_sampling = match sampling.tail.take() {
            Some(cfg) => {
                cfg.validate()
                    .map_err(|e| anyhow::anyhow!("invalid sampling.tail: {e}"))?;
                Some(cfg)
            }
            None => None,
        };
        let auth = resolve_auth(
            opts,
            files,
            file.auth.take().unwrap_or_default(),
            file.multi_tenancy.take().unwrap_or_default(),
            &config_dir,
        )?;
        let plugins = file.plugins.take().unwrap_or_default();
        let mut query = file.query.take().unwrap_or_default();
        let query_max_lookback = match opts
            .query_max_lookback
            .clone()
            .or(query.max_lookback.take())
        {
            None => None,
            Some(text) => Some(parse_duration_setting(
                "query.max-lookback",
                Some(text),
                "",
            )?),
        };
        let query_max_limit = opts.query_max_limit.or(query.max_limit).unwrap_or(1500);
        if query_max_limit == 0 {
            bail!("query.max-limit must be at least 1, got 0");
        }
        let query_max_spans_per_trace = opts
            .query_max_spans_per_trace
            .or(query.max_spans_per_trace)
            .unwrap_or(0);
        let query_base_path = spoor_query::parse_base_path(
            opts.query_base_path
                .as_deref()
                .or(query.base_path.as_deref())
                .unwrap_or(""),
        )?;
        let query_static_files = opts
            .query_static_files
            .clone()
            .or(query.static_files.map(|p| config_dir.join(p)));
        if let Some(dir) = &query_static_files {
            if !files.is_file(&dir.join("index.html")) {
                bail!(
                    "query.static-files {} has no index.html (build the UI with `make ui`)",
                    dir.display()
                );
            }
        }
        let query_ui_config_file = opts
            .query_ui_config
            .clone()
            .or(query.ui_config.map(|p| config_dir.join(p)));
        let query_ui_config = match query_ui_config_file.clone() {
            Some(path) => {
                let text = files
                    .read_to_string(&path)
                    .with_context(|| format!("cannot read query.ui-config {}", path.display()))?;
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("invalid query.ui-config {}: {e}", path.display())
                })?;
                if !v.is_object() {
                    bail!(
                        "invalid query.ui-config {}: expected a JSON object",
                        path.display()
                    );
                }
                Some(v)
            }
            None => None,
        };
        let query_ingesters: Vec<String> = opts
            .query_ingesters
            .clone()
            .or(query.ingesters.take())
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let mut span_log_file = file.span_log.take().unwrap_or_default();
        let span_log_tls = span_log_file.tls.take().unwrap_or_default();
        let mut span_log = match opts.span_log.clone().or(span_log_file.url.take()) {
            None => None,
            Some(urls) => Some(span_log_settings(opts, &urls, span_log_file)?),
        };
        let ingester_partitions =
            match opts
                .ingester_partitions
                .clone()
                .or(file.ingester.take().and_then(|i| i.partitions))
            {
                None => None,
                Some(text) => {
                    let count = span_log.as_ref().map_or(8, |s| s.partitions);
                    Some(spanlog::parse_partitions(&text, count).map_err(|e| {
                        anyhow::anyhow!("invalid ingester.partitions {text:?}: {e}")
                    })?)
                }
            };
        let object_store = match opts
            .object_store_url
            .clone()
            .or(file.object_store.as_ref().and_then(|o| o.url.clone()))
        {
            None => None,
            Some(url) => Some(object_store_settings(
                opts,
                url,
                file.object_store.take().unwrap_or_default(),
                ingester_partitions.as_deref(),
            )?),
        };
        let storage_given = opts.storage.is_some()
            || file.storage.is_some()
            || opts.data_dir.is_some()
            || file.data_dir.is_some();
        let span_metrics = file.span_metrics.take().unwrap_or_default();
        let span_metrics_bucket = if opts
            .span_metrics_enabled
            .or(span_metrics.enabled)
            .unwrap_or(true)
        {
            let d = parse_duration_setting(
                "span-metrics.bucket",
                opts.span_metrics_bucket.clone().or(span_metrics.bucket),
                "60s",
            )?;
            if d < Duration::from_secs(1) {
                bail!("span-metrics.bucket must be at least 1s, got {d:?}");
            }
            Some(d)
        } else {
            None
        };
        let agent_collector_endpoint = opts
            .agent_collector_endpoint
            .clone()
            .or(agent.collector_endpoint);
        let agent_sampling_endpoint = opts
            .agent_sampling_endpoint
            .clone()
            .or(agent.sampling_endpoint)
            .or_else(|| {
                agent_collector_endpoint
                    .as_deref()
                    .and_then(default_sampling_endpoint)
            });
        let families = opts
            .receivers
            .clone()
            .or(file.receivers)
            .unwrap_or_else(|| RECEIVER_FAMILIES.iter().map(|f| f.to_string()).collect());
        for f in &families {
            if !RECEIVER_FAMILIES.contains(&f.trim()) {
                bail!(
                    "invalid receivers entry {f:?}: expected some of {}",
                    RECEIVER_FAMILIES.join(", ")
                );
            }
        }
        let on = |family: &str, addr: SocketAddr| {
            families.iter().any(|f| f.trim() == family).then_some(addr)
        };
        let host_port =
            |h: Option<FileHttp>| h.and_then(|h| h.host_port.or(h.http.and_then(|x| x.host_port)));

        let retention = parse_duration_setting(
            "retention",
            opts.retention.clone().or(file.retention),
            "72h",
        )?;
        let partition = parse_duration_setting(
            "sled.partition",
            opts.sled_partition.clone().or(sled.partition),
            "1h",
        )?;
        if partition.is_zero() {
            bail!("sled.partition must be longer than zero");
        }
        let batch_max_age = parse_duration_setting(
            "batch.max-age",
            opts.batch_max_age.clone().or(batch.max_age),
            "200ms",
        )?;
        let memory_max_traces = opts
            .memory_max_traces
            .or(memory.max_traces)
            .unwrap_or(100_000);
        if memory_max_traces == 0 {
            bail!("memory.max-traces must be at least 1");
        }
        let limit_mib = opts.memory_limit_mib.or(memory.limit_mib).unwrap_or(0);
        let spike_mib = opts
            .memory_spike_limit_mib
            .or(memory.spike_limit_mib)
            .unwrap_or(limit_mib / 5);
        if limit_mib > 0 && spike_mib >= limit_mib {
            bail!(
                "memory.spike-limit-mib {spike_mib} must be smaller than memory.limit-mib {limit_mib}"
            );
        }
        let check_interval = parse_duration_setting(
            "memory.check-interval",
            opts.memory_check_interval
                .clone()
                .or(memory.check_interval.clone()),
            "250ms",
        )?;
        if check_interval < Duration::from_millis(10) {
            bail!("memory.check-interval must be at least 10ms, got {check_interval:?}");
        }
        // `<<` would silently drop the high bits (a huge limit turning into none at all).
        let mib = |name: &str, v: u64| {
            v.checked_mul(1 << 20)
                .with_context(|| format!("{name} {v} is too large (at most {})", u64::MAX >> 20))
        };
        let memory_limit = MemoryLimitConfig {
            limit_bytes: mib("memory.limit-mib", limit_mib)?,
            spike_bytes: mib("memory.spike-limit-mib", spike_mib)?,
            check_interval,
        };
        let sled_cache_bytes = opts
            .sled_cache_bytes
            .or(sled.cache_bytes)
            .unwrap_or(16 << 20);
        if sled_cache_bytes < 1 << 20 {
            bail!("sled.cache-bytes must be at least 1048576, got {sled_cache_bytes}");
        }
        let batch_max_spans = opts.batch_max_spans.or(batch.max_spans).unwrap_or(8192);
        if batch_max_spans == 0 {
            bail!("batch.max-spans must be at least 1");
        }
        let queue_bytes = opts
            .queue_bytes
            .or(pipeline.queue_bytes)
            .unwrap_or(32 << 20);
        if queue_bytes < 1 << 20 {
            bail!("pipeline.queue-bytes must be at least 1048576, got {queue_bytes}");
        }
        let otlp_max_body_bytes = opts
            .otlp_max_body_bytes
            .or(otlp.max_body_bytes)
            .unwrap_or(16 << 20);
        if otlp_max_body_bytes < 1024 {
            bail!("otlp.max-body-bytes must be at least 1024, got {otlp_max_body_bytes}");
        }
        let tls_file = file.tls.take().unwrap_or_default();
        let in_dir = |p: Option<PathBuf>| p.map(|p| config_dir.join(p));
        let tls = match (
            opts.tls_cert_file.clone().or(in_dir(tls_file.cert_file)),
            opts.tls_key_file.clone().or(in_dir(tls_file.key_file)),
        ) {
            (Some(cert), Some(key)) => Some(tls::ServerTlsFiles {
                cert,
                key,
                client_ca: opts
                    .tls_client_ca_file
                    .clone()
                    .or(in_dir(tls_file.client_ca_file)),
            }),
            (None, None) => {
                if opts.tls_client_ca_file.is_some() || tls_file.client_ca_file.is_some() {
                    bail!("tls.client-ca-file needs tls.cert-file and tls.key-file");
                }
                None
            }
            _ => bail!("tls.cert-file and tls.key-file go together"),
        };
        let admin = file.admin.take().unwrap_or_default();
        let admin_http = admin.http.unwrap_or_default();
        let admin_host_port = admin.host_port.or(admin_http.host_port);
        let admin_tls = opts
            .admin_http_tls_enabled
            .or(admin_http.tls.and_then(|t| t.enabled))
            .unwrap_or(false);
        if admin_tls && tls.is_none() {
            bail!("admin.http.tls.enabled needs tls.cert-file and tls.key-file");
        }
        let agent_tls = tls::ClientTlsFiles {
            ca: opts.agent_tls_ca_file.clone().or(in_dir(agent.tls_ca_file)),
            cert: opts
                .agent_tls_cert_file
                .clone()
                .or(in_dir(agent.tls_cert_file)),
            key: opts
                .agent_tls_key_file
                .clone()
                .or(in_dir(agent.tls_key_file)),
        };
        if let Some(sl) = &mut span_log {
            sl.tls = tls::ClientTlsFiles {
                ca: opts
                    .span_log_tls_ca_file
                    .clone()
                    .or(in_dir(span_log_tls.ca_file)),
                cert: opts
                    .span_log_tls_cert_file
                    .clone()
                    .or(in_dir(span_log_tls.cert_file)),
                key: opts
                    .span_log_tls_key_file
                    .clone()
                    .or(in_dir(span_log_tls.key_file)),
            };
        }
        let ingesters_tls = query.ingesters_tls.take().unwrap_or_default();
        let query_ingesters_tls = tls::ClientTlsFiles {
            ca: opts
                .query_ingesters_tls_ca_file
                .clone()
                .or(in_dir(ingesters_tls.ca_file)),
            cert: opts
                .query_ingesters_tls_cert_file
                .clone()
                .or(in_dir(ingesters_tls.cert_file)),
            key: opts
                .query_ingesters_tls_key_file
                .clone()
                .or(in_dir(ingesters_tls.key_file)),
        };
        let http = file.http.take().unwrap_or_default();
        let http_limits = HttpLimits {
            max_connections: opts
                .http_max_connections
                .or(http.max_connections)
                .unwrap_or(4096),
            header_read_timeout: parse_duration_setting(
                "http.header-read-timeout",
                opts.http_header_read_timeout
                    .clone()
                    .or(http.header_read_timeout),
                "10s",
            )?,
            body_read_timeout: parse_duration_setting(
                "http.body-read-timeout",
                opts.http_body_read_timeout
                    .clone()
                    .or(http.body_read_timeout),
                "30s",
            )?,
        };
        if http_limits.max_connections == 0 {
            bail!("http.max-connections must be at least 1, got 0");
        }
        for (name, d) in [
            ("http.header-read-timeout", http_limits.header_read_timeout),
            ("http.body-read-timeout", http_limits.body_read_timeout),
        ] {
            if d.is_zero() {
                bail!("{name} must be more than 0");
            }
        }
        Ok(Settings {
            storage: opts.storage.or(file.storage).unwrap_or(StorageKind::Sled),
            data_dir: opts
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("spoor-data")),
            retention,
            partition,
            durability: opts
                .durability
                .or(file.durability)
                .unwrap_or(DurabilityKind::Periodic),
            memory_max_traces,
            memory_limit,
            sled_cache_bytes,
            otlp_grpc: on(
                "otlp",
                parse_addr(
                    "otlp.grpc.host-port",
                    opts.otlp_grpc.clone().or(host_port(otlp.grpc)),
                    "0.0.0.0:4317",
                )?,
            ),
            otlp_http: on(
                "otlp",
                parse_addr(
                    "otlp.http.host-port",
                    opts.otlp_http.clone().or(host_port(otlp.http)),
                    "0.0.0.0:4318",
                )?,
            ),
            jaeger_compact: on(
                "jaeger",
                parse_addr(
                    "jaeger.thrift-compact.host-port",
                    opts.jaeger_compact
                        .clone()
                        .or(host_port(jaeger.thrift_compact)),
                    "0.0.0.0:6831",
                )?,
            ),
            jaeger_binary: on(
                "jaeger",
                parse_addr(
                    "jaeger.thrift-binary.host-port",
                    opts.jaeger_binary
                        .clone()
                        .or(host_port(jaeger.thrift_binary)),
                    "0.0.0.0:6832",
                )?,
            ),
            jaeger_http: on(
                "jaeger",
                parse_addr(
                    "jaeger.thrift-http.host-port",
                    opts.jaeger_http.clone().or(host_port(jaeger.thrift_http)),
                    "0.0.0.0:14268",
                )?,
            ),
            jaeger_grpc: on(
                "jaeger",
                parse_addr(
                    "jaeger.grpc.host-port",
                    opts.jaeger_grpc.clone().or(host_port(jaeger.grpc)),
                    "0.0.0.0:14250",
                )?,
            ),
            zipkin_http: on(
                "zipkin",
                parse_addr(
                    "zipkin.http.host-port",
                    opts.zipkin_http.clone().or(host_port(zipkin.http)),
                    "0.0.0.0:9411",
                )?,
            ),
            otlp_max_body_bytes,
            http_limits,
            tls,
            agent_tls,
            query_http: parse_addr(
                "query.http.host-port",
                opts.query_http
                    .clone()
                    .or(query.http.and_then(|h| h.host_port)),
                "0.0.0.0:16686",
            )?,
            admin_http: parse_addr(
                "admin.http.host-port",
                opts.admin_http.clone().or(admin_host_port),
                "0.0.0.0:14269",
            )?,
            admin_tls,
            agent_collector_endpoint,
            agent_sampling_endpoint,
            sampling_http: Some(parse_addr(
                "sampling.http.host-port",
                opts.sampling_http
                    .clone()
                    .or(sampling.http.and_then(|h| h.host_port)),
                "0.0.0.0:5778",
            )?),
            sampling_strategies_file: opts
                .sampling_strategies_file
                .clone()
                .or(sampling.strategies_file),
            sampling_reload_interval,
            sampling_adaptive,
            tail_sampling,
            span_metrics_bucket,
            plugins,
            query_static_files,
            query_max_lookback,
            query_max_limit,
            query_max_spans_per_trace,
            query_ui_config,
            query_ui_config_file,
            query_base_path,
            queue_bytes,
            batch_max_spans,
            batch_max_age,
            span_log,
            ingester_partitions,
            query_ingesters,
            query_ingesters_tls,
            object_store,
            storage_given,
            log_format: opts.log_format.or(log.format).unwrap_or(LogFormat::Text),
            log_level: opts
                .log_level
                .clone()
                .or(log.level)
                .unwrap_or_else(|| "info".to_string()),
            auth,
            config_file: opts.config.clone(),
        })
    }
}

impl Settings {
    /// The directory relative paths of the config file are taken from (the current one
    /// without a file).
    pub fn config_dir(&self) -> PathBuf {
        self.config_file
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// Authentication and multi-tenancy: on with tokens (file or list) or `multi-tenancy.enabled`.
/// Errors name the flag and the bad value (never a token).
fn resolve_auth(
    opts: &Options,
    files: &dyn Files,
    file: FileAuth,
    mt: FileMultiTenancy,
    config_dir: &Path,
) -> anyhow::Result<Option<auth::AuthSettings>> {
    use auth::{TenantId, TokenTable};
    let tokens_file = opts
        .auth_tokens_file
        .clone()
        .or(file.tokens_file.map(|p| config_dir.join(p)));
    let list_tokens = match opts.auth_tokens.as_deref().or(file.tokens.as_deref()) {
        Some(text) => TokenTable::parse_list(text)?,
        None => TokenTable::default(),
    };
    let file_tokens = match &tokens_file {
        Some(path) => {
            let text = files
                .read_to_string(path)
                .with_context(|| format!("cannot read auth.tokens-file {}", path.display()))?;
            // the file's own error names the file and the line; this names the setting too
            TokenTable::parse_file(&text, path)
                .map_err(|e| anyhow::anyhow!("invalid auth.tokens-file: {e}"))?
        }
        None => TokenTable::default(),
    };
    let enabled = opts.multi_tenancy_enabled.or(mt.enabled).unwrap_or(false)
        || tokens_file.is_some()
        || !list_tokens.is_empty();
    let udp_tenant = opts
        .auth_udp_tenant
        .clone()
        .or(file.udp_tenant)
        .map(|t| TenantId::parse(&t).map_err(|e| anyhow::anyhow!("auth.udp-tenant: {e}")))
        .transpose()?;
    let allowed = opts
        .multi_tenancy_tenants
        .clone()
        .or(mt.tenants)
        .map(|names| {
            names
                .iter()
                .map(|n| TenantId::parse(n.trim()))
                .collect::<Result<std::collections::BTreeSet<_>, _>>()
                .map_err(|e| anyhow::anyhow!("multi-tenancy.tenants: {e}"))
        })
        .transpose()?;
    if !enabled {
        if udp_tenant.is_some() || allowed.is_some() {
            bail!("auth.udp-tenant and multi-tenancy.tenants need multi-tenancy.enabled or auth tokens");
        }
        return Ok(None);
    }
    let header_text = opts
        .multi_tenancy_header
        .clone()
        .or(mt.header)
        .unwrap_or_else(|| auth::DEFAULT_TENANT_HEADER.to_string());
    let header = http::HeaderName::from_bytes(header_text.trim().to_ascii_lowercase().as_bytes())
        .map_err(|_| {
        anyhow::anyhow!("invalid multi-tenancy.header {header_text:?}: not a header name")
    })?;
    if header == http::header::AUTHORIZATION {
        bail!("invalid multi-tenancy.header {header_text:?}: the bearer token's header");
    }
    let max_tenants = opts
        .multi_tenancy_max_tenants
        .or(mt.max_tenants)
        .unwrap_or(100);
    if max_tenants == 0 {
        bail!("multi-tenancy.max-tenants must be at least 1, got 0");
    }
    if let (Some(u), Some(a)) = (&udp_tenant, &allowed) {
        if !a.contains(u) {
            bail!(
                "auth.udp-tenant {:?} is not in multi-tenancy.tenants",
                u.as_str()
            );
        }
    }
    let settings = auth::AuthSettings {
        tokens_file,
        file_tokens,
        list_tokens,
        header,
        allowed,
        max_tenants,
        udp_tenant,
    };
    // a token both in the file and in the list is refused now, not at the first request
    settings.tokens().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some(settings))
}

/// Validates the `span-log.*` settings (flags over the `[span-log]` table).
fn span_log_settings(
    opts: &Options,
    urls: &str,
    file: FileSpanLog,
) -> anyhow::Result<spanlog::SpanLogSettings> {
    let list: Vec<String> = urls
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if list.is_empty() {
        bail!("invalid span-log.url {urls:?}: expected nats://host:port, comma-separated");
    }
    for u in &list {
        if !(u.starts_with("nats://") || u.starts_with("tls://")) || u.len() <= "nats://".len() {
            bail!("invalid span-log.url entry {u:?}: expected nats://host:port");
        }
    }
    let stream = opts
        .span_log_stream
        .clone()
        .or(file.stream)
        .unwrap_or_else(|| "spoor-spans".to_string());
    if stream.is_empty()
        || !stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("invalid span-log.stream {stream:?}: use letters, digits, '-' and '_' only");
    }
    let partitions = opts.span_log_partitions.or(file.partitions).unwrap_or(8);
    if !(1..=1024).contains(&partitions) {
        bail!("span-log.partitions must be between 1 and 1024, got {partitions}");
    }
    let replicas = opts.span_log_replicas.or(file.replicas).unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        bail!("span-log.replicas must be between 1 and 5, got {replicas}");
    }
    let max_age = parse_duration_setting(
        "span-log.max-age",
        opts.span_log_max_age.clone().or(file.max_age),
        "24h",
    )?;
    let max_bytes = opts.span_log_max_bytes.or(file.max_bytes).unwrap_or(-1);
    if max_bytes == 0 || max_bytes < -1 {
        bail!("span-log.max-bytes must be -1 (unbounded) or more than 0, got {max_bytes}");
    }
    Ok(spanlog::SpanLogSettings {
        urls: list,
        stream,
        partitions,
        replicas,
        max_age,
        max_bytes,
        // filled in by `resolve`, which knows the config file's directory
        tls: tls::ClientTlsFiles::default(),
    })
}

/// Validates the `object-store.*` settings (flags over the `[object-store]` table).
fn object_store_settings(
    opts: &Options,
    url: String,
    file: FileObjectStore,
    partitions: Option<&[u32]>,
) -> anyhow::Result<ObjectStoreSettings> {
    spoor_objstore::parse_url(&url).map_err(|e| anyhow::anyhow!(e))?;
    let endpoint = opts.object_store_endpoint.clone().or(file.endpoint);
    if let Some(e) = &endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() <= "http://".len() {
            bail!("invalid object-store.endpoint {e:?}: expected http(s)://host:port");
        }
    }
    let poll = parse_duration_setting(
        "object-store.poll",
        opts.object_store_poll.clone().or(file.poll),
        "15s",
    )?;
    if poll.is_zero() {
        bail!("object-store.poll must be more than 0");
    }
    let keep = parse_duration_setting(
        "object-store.keep-after-upload",
        opts.object_store_keep_after_upload
            .clone()
            .or(file.keep_after_upload),
        "1m",
    )?;
    let node = match opts.object_store_node.clone().or(file.node) {
        Some(n) => n,
        None => match partitions {
            Some(p) if !p.is_empty() => {
                let lo = p.iter().min().copied().unwrap_or(0);
                let hi = p.iter().max().copied().unwrap_or(0);
                if p.len() as u32 == hi - lo + 1 {
                    format!("p{lo}-{hi}")
                } else {
                    format!(
                        "p{}",
                        p.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join("_")
                    )
                }
            }
            _ => "local".to_string(),
        },
    };
    if node.is_empty()
        || node.len() > 64
        || node == "compacted"
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("invalid object-store.node {node:?}: 1-64 letters, digits, '-' and '_' (not \"compacted\")");
    }
    Ok(ObjectStoreSettings {
        s3: spoor_objstore::S3Settings {
            url,
            endpoint,
            region: opts
                .object_store_region
                .clone()
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".to_string()),
            access_key_id: opts
                .object_store_access_key_id
                .clone()
                .or(file.access_key_id),
            secret_access_key: opts
                .object_store_secret_access_key
                .clone()
                .or(file.secret_access_key),
            timeout: Duration::from_secs(30),
        },
        seal_after: parse_duration_setting(
            "object-store.seal-after",
            opts.object_store_seal_after.clone().or(file.seal_after),
            "10m",
        )?,
        keep_after_upload: keep,
        poll,
        node,
        compaction: opts
            .object_store_compaction
            .or(file.compaction)
            .unwrap_or(false),
    })
}

fn load_file(files: &dyn Files, path: &Path) -> anyhow::Result<FileConfig> {
    let text = files
        .read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "invalid config file {}: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })
}

fn parse_duration_setting(
    name: &str,
    value: Option<String>,
    default: &str,
) -> anyhow::Result<Duration> {
    let text = value.unwrap_or_else(|| default.to_string());
    parse_duration(&text).map_err(|e| anyhow::anyhow!("invalid {name} {text:?}: {e}"))
}

/// The agent's default `SamplingManager` endpoint: the collector endpoint's scheme and host with
/// Jaeger's gRPC port 14250.
fn default_sampling_endpoint(collector: &str) -> Option<String> {
    let uri: http::Uri = collector.parse().ok()?;
    let host = uri.host()?;
    Some(format!(
        "{}://{host}:14250",
        uri.scheme_str().unwrap_or("http")
    ))
}

/// Parses `host:port` (`:port` means all interfaces).
fn parse_addr(name: &str, value: Option<String>, default: &str) -> anyhow::Result<SocketAddr> {
    let text = value.unwrap_or_else(|| default.to_string());
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.clone()
    };
    full.parse().map_err(|_| {
        anyhow::anyhow!("invalid {name} {text:?}: expected host:port such as 127.0.0.1:4317")
    })
}

/// Parses durations such as `72h`, `7d`, `1h30m`, `250ms`, `1.5s` (units: ns, us, µs, ms, s, m,
/// h, d), exactly: decimal fractions are counted in whole nanoseconds, rounded down (not
/// through a float, which made `0.29h` a nanosecond short and could not hold durations past
/// 2^53 ns, about 104 days, exactly).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let too_large = || "duration too large".to_string();
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let number = &rest[..num_end];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
            return Err(format!("bad number {number:?}"));
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "" => return Err("missing unit (use ns, us, ms, s, m, h or d)".into()),
            other => {
                return Err(format!(
                    "unknown unit {other:?} (use ns, us, ms, s, m, h or d)"
                ))
            }
        };
        let mut whole_value: u128 = 0;
        for d in whole.bytes() {
            whole_value = whole_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(d - b'0')))
                .ok_or_else(too_large)?;
        }
        // Digits past the 24th are below a nanosecond even in days: they are ignored.
        let kept = &fraction[..fraction.len().min(24)];
        let mut fraction_value: u128 = 0;
        for d in kept.bytes() {
            fraction_value = fraction_value * 10 + u128::from(d - b'0');
        }
        let fraction_nanos = fraction_value * nanos_per / 10u128.pow(kept.len() as u32);
        total = whole_value
            .checked_mul(nanos_per)
            .and_then(|v| v.checked_add(fraction_nanos))
            .and_then(|v| v.checked_add(total))
            .ok_or_else(too_large)?;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, want) in [
            ("72h", Duration::from_secs(72 * 3600)),
            ("7d", Duration::from_secs(7 * 86400)),
            ("1h30m", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("10us", Duration::from_micros(10)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "5", "h", "5x", "1..2s", ".s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // exact: in whole nanoseconds, without a float in between (found by the config_file
        // fuzz target: a calculation interval of 18446744073709551615ns was written back as
        // 18446744073000000000ns, which read back a second short)
        for (text, nanos) in [
            ("0.29h", 1_044_000_000_000),
            ("2.3s", 2_300_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("1.0000000000000000000000009d", 86_400_000_000_000),
            ("18446744073000000000ns", 18_446_744_073_000_000_000),
            ("18446744073709551615ns", u64::MAX),
            ("213503d23h34m33.709551615s", u64::MAX),
            ("0000000000000000000000000000000000000000001ns", 1),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(nanos)),
                "{text}"
            );
        }
        for large in [
            "18446744073709551616ns",
            "213504d",
            "99999999999999999999999999999999999999999d",
        ] {
            assert_eq!(
                parse_duration(large),
                Err("duration too large".into()),
                "{large}"
            );
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(&Options::default()).unwrap();
        assert_eq!(s.storage, StorageKind::Sled);
        assert_eq!(s.retention, Duration::from_secs(72 * 3600));
        assert_eq!(s.otlp_grpc.map(|a| a.port()), Some(4317));
        assert_eq!(s.otlp_http.map(|a| a.port()), Some(4318));
        assert_eq!(s.jaeger_compact.map(|a| a.port()), Some(6831));
        assert_eq!(s.jaeger_binary.map(|a| a.port()), Some(6832));
        assert_eq!(s.jaeger_http.map(|a| a.port()), Some(14268));
        assert_eq!(s.jaeger_grpc.map(|a| a.port()), Some(14250));
        assert_eq!(s.zipkin_http.map(|a| a.port()), Some(9411));
        assert_eq!(s.query_http.port(), 16686);
        assert_eq!(s.admin_http.port(), 14269);
        assert_eq!(s.durability, DurabilityKind::Periodic);
        assert_eq!(s.http_limits, HttpLimits::default());
    }

    #[test]
    fn http_limits_from_file_and_flags() {
        let s = with_file("[http]\nmax-connections = 16\nheader-read-timeout = \"2s\"\n").unwrap();
        assert_eq!(s.http_limits.max_connections, 16);
        assert_eq!(s.http_limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.http_limits.body_read_timeout, Duration::from_secs(30));
        let err = with_file("[http]\nbody-read-timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http.body-read-timeout") && err.contains("soon"),
            "{err}"
        );
        let err = Settings::resolve(&Options {
            http_max_connections: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(err, "http.max-connections must be at least 1, got 0");
    }

    #[test]
    fn admin_tls_from_file_or_flag_and_only_with_a_certificate() {
        let s = with_file("[tls]\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\n[admin.http]\nhost-port = \":1\"\ntls.enabled = true\n").unwrap();
        assert!(s.admin_tls && s.tls.is_some());
        assert_eq!(s.admin_http.port(), 1);
        let s = with_file("[tls]\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\n").unwrap();
        assert!(!s.admin_tls, "plain admin by default");
        let err = Settings::resolve(&Options {
            admin_http_tls_enabled: Some(true),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "admin.http.tls.enabled needs tls.cert-file and tls.key-file"
        );
        let err = with_file("[admin.http.tls]\nenable = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable"), "{err}");
    }

    #[test]
    fn a_memory_limit_too_large_for_bytes_is_refused_not_wrapped() {
        let err = with_file("memory.limit-mib = 17592186044416\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "memory.limit-mib 17592186044416 is too large (at most 17592186044415)"
        );
        let s = with_file("memory.limit-mib = 17592186044415\n").unwrap();
        assert_eq!(s.memory_limit.limit_bytes, 17592186044415 << 20);
    }

    /// A small xorshift generator for [`whole_config_file_takes_the_fuzz_corpus_and_mutations`].
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// One to four edits of `input`: a byte replaced by a TOML-significant one, a range
    /// deleted, a line repeated, a number made extreme, a line of another input spliced in.
    fn mutate(input: &[u8], other: &[u8], x: &mut u64) -> Vec<u8> {
        const BYTES: &[u8] = b"0123456789\"'[]{}=,.-_+:\n #abcdefhlmnstuxyz\\";
        const NUMBERS: &[&str] = &[
            "0",
            "-1",
            "18446744073709551615",
            "9223372036854775808",
            "1e308",
            "nan",
            "\"1000000000000000h\"",
            "\"0ms\"",
        ];
        let mut out = input.to_vec();
        for _ in 0..=next(x) % 4 {
            let at = if out.is_empty() {
                0
            } else {
                (next(x) % out.len() as u64) as usize
            };
            match next(x) % 5 {
                0 if !out.is_empty() => out[at] = BYTES[(next(x) % BYTES.len() as u64) as usize],
                1 if !out.is_empty() => {
                    let end = (at + 1 + (next(x) % 16) as usize).min(out.len());
                    out.drain(at..end);
                }
                2 => {
                    let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
                    let line = lines[(next(x) % lines.len() as u64) as usize].to_vec();
                    out.splice(at..at, line.into_iter().chain([b'\n']));
                }
                3 => {
                    if let Some(eq) = out[at..].iter().position(|&b| b == b'=') {
                        let start = at + eq + 1;
                        let end = out[start..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(out.len(), |n| start + n);
                        let n = NUMBERS[(next(x) % NUMBERS.len() as u64) as usize];
                        out.splice(start..end, format!(" {n}").into_bytes());
                    }
                }
                _ => {
                    let lines: Vec<&[u8]> = other.split(|&b| b == b'\n').collect();
                    let line = lines[(next(x) % lines.len() as u64) as usize].to_vec();
                    out.splice(at..at, line.into_iter().chain([b'\n']));
                }
            }
        }
        out
    }

    /// The whole config file (schema, every setting's validation, the files it names), fed
    /// with the `config` fuzz target's corpus and regressions (TOML that fuzzing the grammar
    /// and `[sampling.tail]` kept) and `SPOOR_CONFIG_MUTATIONS` (2,000) deterministic mutations
    /// of them: no input may panic, every refusal is a lowercase message, and what is accepted
    /// round-trips through [`Settings::to_toml`]. On stable, in `cargo test`; the `config_file`
    /// fuzz target of `tests/fuzz` checks more (see RELIABILITY.md).
    #[test]
    fn whole_config_file_takes_the_fuzz_corpus_and_mutations() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz");
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        for sub in ["corpus/config", "regressions/config"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                inputs.push((
                    format!("{sub}/{}", e.file_name().to_string_lossy()),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
        inputs.sort();
        assert!(
            inputs.len() >= 7,
            "the config corpus is missing: {}",
            fuzz.display()
        );
        let mutations: usize = std::env::var("SPOOR_CONFIG_MUTATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spoor.toml");
        let check = |name: &str, bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            let opts = Options {
                config: Some(path.clone()),
                ..Default::default()
            };
            let result = std::panic::catch_unwind(|| Settings::resolve(&opts));
            match result {
                Err(_) => panic!(
                    "resolving {name} panicked:\n{}",
                    String::from_utf8_lossy(bytes)
                ),
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(|c: char| !c.is_uppercase()),
                        "{name}: {msg}"
                    );
                }
                Ok(Ok(s)) => assert_round_trip(name, &s),
            }
        };
        for (name, bytes) in &inputs {
            check(name, bytes);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..mutations {
            let a = &inputs[(next(&mut x) % inputs.len() as u64) as usize].1;
            let b = &inputs[(next(&mut x) % inputs.len() as u64) as usize].1;
            check(&format!("mutation {i}"), &mutate(a, b, &mut x));
        }
    }

    /// `s` written with [`Settings::to_toml`] to its own config file resolves to the same
    /// settings, and writes out the same.
    fn assert_round_trip(name: &str, s: &Settings) {
        let path = s.config_file.clone().expect("settings from a file");
        let original = std::fs::read(&path).unwrap();
        let text = s
            .to_toml()
            .unwrap_or_else(|e| panic!("{name}: cannot write out: {e}"));
        std::fs::write(&path, &text).unwrap();
        let again = Settings::resolve(&Options {
            config: Some(path.clone()),
            ..Default::default()
        });
        std::fs::write(&path, original).unwrap();
        let again = again.unwrap_or_else(|e| panic!("{name}: written out, refused: {e}\n{text}"));
        assert_eq!(format!("{again:?}"), format!("{s:?}"), "{name}:\n{text}");
        assert_eq!(again.to_toml().as_deref(), Ok(text.as_str()), "{name}");
    }

    /// Every setting away from its default, and the files it names, written out and read back.
    #[test]
    fn every_setting_round_trips_through_to_toml() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("tokens"), "file-token a\n").unwrap();
        std::fs::write(d.join("ui.json"), r#"{"menu": []}"#).unwrap();
        std::fs::create_dir(d.join("www")).unwrap();
        std::fs::write(d.join("www/index.html"), "").unwrap();
        let path = d.join("spoor.toml");
        std::fs::write(
            &path,
            r#"storage = "memory"
data-dir = "d"
retention = "1h"
durability = "sync"
receivers = ["otlp", "zipkin"]
[memory]
max-traces = 5
limit-mib = 100
spike-limit-mib = 10
check-interval = "20ms"
[sled]
partition = "30m"
cache-bytes = 2000000
[otlp]
max-body-bytes = 2048
grpc.host-port = "127.0.0.1:1"
http.host-port = "[::1]:2"
[zipkin.http]
host-port = ":3"
[http]
max-connections = 9
header-read-timeout = "1.5s"
body-read-timeout = "2s"
[tls]
cert-file = "c.pem"
key-file = "k.pem"
client-ca-file = "ca.pem"
[agent]
collector-endpoint = "http://c:4317"
tls-ca-file = "a-ca.pem"
tls-cert-file = "a.pem"
tls-key-file = "a-k.pem"
[sampling]
http.host-port = "127.0.0.1:4"
adaptive = true
target-samples-per-second = 2.5
calculation-interval = "2m"
strategies-reload-interval = "3s"
[[sampling.tail.policies]]
name = "slow"
type = "latency"
latency = { threshold_ms = 5 }
[[sampling.tail.policies]]
name = "p"
type = "plugin"
plugin = { path = "p.wasm", config = { x = [1, 2] } }
[span-metrics]
bucket = "2m"
[[plugins]]
name = "a"
path = "a.wasm"
[query]
http.host-port = "127.0.0.1:5"
static-files = "www"
ui-config = "ui.json"
max-lookback = "2d"
max-limit = 10
max-spans-per-trace = 7
base-path = "/jaeger/"
ingesters = ["http://i:16686"]
ingesters-tls = { ca-file = "q-ca.pem", cert-file = "q.pem", key-file = "q-k.pem" }
[admin.http]
host-port = "127.0.0.1:6"
tls.enabled = true
[pipeline]
queue-bytes = 2000000
[batch]
max-spans = 3
max-age = "1s"
[span-log]
url = "nats://a:1, nats://b:2"
stream = "s"
partitions = 4
replicas = 3
max-age = "1h"
max-bytes = 100
tls = { ca-file = "n-ca.pem", cert-file = "n.pem", key-file = "n-k.pem" }
[ingester]
partitions = "1-2,3"
[object-store]
url = "s3://bucket/prefix"
endpoint = "http://s3:1"
region = "r"
access-key-id = "id"
secret-access-key = "secret"
seal-after = "1m"
keep-after-upload = "2m"
poll = "3s"
compaction = true
[log]
format = "json"
level = "debug"
[auth]
tokens-file = "tokens"
tokens = "list-token=b,x=y=c"
udp-tenant = "b"
[multi-tenancy]
header = "X-Scope"
tenants = ["a", "b", "c"]
max-tenants = 4
"#,
        )
        .unwrap();
        let s = Settings::resolve(&Options {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert!(s.auth.as_ref().is_some_and(|a| a.uses_tokens()));
        assert_eq!(s.ingester_partitions, Some(vec![1, 2, 3]));
        assert_eq!(s.object_store.as_ref().unwrap().node, "p1-3");
        assert_round_trip("every setting", &s);
        let text = s.to_toml().unwrap();
        for key in [
            "list-token=b",
            "secret-access-key = \"secret\"",
            "[[plugins]]",
        ] {
            assert!(text.contains(key), "{key} in\n{text}");
        }
    }

    fn with_file(text: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spoor.toml");
        std::fs::write(&path, text).unwrap();
        Settings::resolve(&Options {
            config: Some(path),
            ..Default::default()
        })
    }

    #[test]
    fn file_values_and_flag_precedence() {
        let s = with_file(
            "storage = \"memory\"\nretention = \"2h\"\nmemory.max-traces = 5\n[otlp.grpc]\nhost-port = \"127.0.0.1:1234\"\n[query.http]\nhost-port = \":9999\"\n",
        )
        .unwrap();
        assert_eq!(s.storage, StorageKind::Memory);
        assert_eq!(s.retention, Duration::from_secs(7200));
        assert_eq!(s.memory_max_traces, 5);
        assert_eq!(s.otlp_grpc, Some("127.0.0.1:1234".parse().unwrap()));
        assert_eq!(s.query_http.port(), 9999);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spoor.toml");
        std::fs::write(&path, "storage = \"memory\"\n").unwrap();
        let s = Settings::resolve(&Options {
            config: Some(path),
            storage: Some(StorageKind::Blackhole),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.storage, StorageKind::Blackhole);
    }

    #[test]
    fn receiver_families() {
        let s = Settings::resolve(&Options {
            receivers: Some(vec!["otlp".into()]),
            ..Default::default()
        })
        .unwrap();
        assert!(s.otlp_grpc.is_some() && s.jaeger_compact.is_none() && s.zipkin_http.is_none());
        let s =
            with_file("receivers = [\"zipkin\"]\n[zipkin.http]\nhost-port = \"127.0.0.1:9999\"\n")
                .unwrap();
        assert_eq!(s.zipkin_http, Some("127.0.0.1:9999".parse().unwrap()));
        assert!(s.otlp_grpc.is_none());
        let err = Settings::resolve(&Options {
            receivers: Some(vec!["kafka".into()]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka"), "{err}");
    }

    #[test]
    fn sampling_settings() {
        let s = Settings::resolve(&Options::default()).unwrap();
        assert_eq!(s.sampling_http.map(|a| a.port()), Some(5778));
        assert_eq!(s.sampling_reload_interval, Duration::from_secs(10));
        assert_eq!(
            (s.sampling_strategies_file, s.agent_sampling_endpoint),
            (None, None)
        );
        let s = Settings::resolve(&Options {
            agent_collector_endpoint: Some("http://collector.local:4317".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.agent_sampling_endpoint.as_deref(),
            Some("http://collector.local:14250")
        );
        let s = with_file(
            "[agent]\ncollector-endpoint = \"https://[::1]:4317\"\n[sampling]\nstrategies-file = \"/etc/s.json\"\nstrategies-reload-interval = \"250ms\"\n[sampling.http]\nhost-port = \"127.0.0.1:9778\"\n",
        )
        .unwrap();
        assert_eq!(
            s.agent_sampling_endpoint.as_deref(),
            Some("https://[::1]:14250")
        );
        assert_eq!(s.sampling_http, Some("127.0.0.1:9778".parse().unwrap()));
        assert_eq!(
            s.sampling_strategies_file,
            Some(PathBuf::from("/etc/s.json"))
        );
        assert_eq!(s.sampling_reload_interval, Duration::from_millis(250));
        let s = Settings::resolve(&Options {
            agent_collector_endpoint: Some("http://c:4317".into()),
            agent_sampling_endpoint: Some("http://other:1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.agent_sampling_endpoint.as_deref(), Some("http://other:1"));
        let err = with_file("[sampling]\nstrategies-reload-interval = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sampling.strategies-reload-interval"), "{err}");
        let err = with_file("[sampling]\nstrategy-file = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("strategy-file"), "{err}");
        for bad in ["-1.0", "0.0", "nan", "inf"] {
            let err = with_file(&format!(
                "[sampling]\nadaptive = true\ntarget-samples-per-second = {bad}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with(
                    "sampling.target-samples-per-second must be a number above 0, got "
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn auth_and_multi_tenancy_settings() {
        let s = Settings::resolve(&Options::default()).unwrap();
        assert!(s.auth.is_none(), "off by default");

        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# team a\nsecret-a a\n").unwrap();
        let s = with_file(&format!(
            "[auth]\ntokens-file = {:?}\ntokens = \"secret-b=b\"\nudp-tenant = \"a\"\n[multi-tenancy]\nheader = \"X-Scope\"\nmax-tenants = 7\n",
            tokens.display().to_string()
        ))
        .unwrap();
        let a = s.auth.unwrap();
        assert!(a.uses_tokens());
        assert_eq!(
            (
                a.header.as_str(),
                a.max_tenants,
                a.udp_tenant.unwrap().as_str()
            ),
            ("x-scope", 7, "a")
        );
        assert_eq!(format!("{:?}", a.list_tokens), "TokenTable(1 tokens)");

        let s = Settings::resolve(&Options {
            multi_tenancy_enabled: Some(true),
            multi_tenancy_tenants: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        })
        .unwrap();
        let a = s.auth.unwrap();
        assert!(!a.uses_tokens());
        assert_eq!(a.header.as_str(), "x-tenant");
        assert_eq!(a.max_tenants, 100);

        let bad = |opts: Options| Settings::resolve(&opts).unwrap_err().to_string();
        std::fs::write(&tokens, "secret-a a\nsecret-x\n").unwrap();
        let err = bad(Options {
            auth_tokens_file: Some(tokens.clone()),
            ..Default::default()
        });
        assert!(
            err.starts_with("invalid auth.tokens-file: tokens file ")
                && err.ends_with("line 2: expected `TOKEN TENANT`, got 1 fields"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
        let err = bad(Options {
            auth_tokens: Some("hush=a/b".into()),
            ..Default::default()
        });
        assert!(
            err.contains("entry 1: invalid tenant name \"a/b\""),
            "{err}"
        );
        assert!(!err.contains("hush"), "{err}");
        let err = bad(Options {
            multi_tenancy_enabled: Some(true),
            multi_tenancy_max_tenants: Some(0),
            ..Default::default()
        });
        assert_eq!(err, "multi-tenancy.max-tenants must be at least 1, got 0");
        let err = bad(Options {
            multi_tenancy_enabled: Some(true),
            multi_tenancy_header: Some("bad header".into()),
            ..Default::default()
        });
        assert_eq!(
            err,
            "invalid multi-tenancy.header \"bad header\": not a header name"
        );
        let err = bad(Options {
            auth_udp_tenant: Some("a".into()),
            ..Default::default()
        });
        assert!(err.contains("need multi-tenancy.enabled"), "{err}");
        let err = with_file("[multi-tenancy]\nenable = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable"), "{err}");
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let err = with_file("stroage = \"memory\"\n").unwrap_err().to_string();
        assert!(err.contains("stroage"), "{err}");
        let err = with_file("[memory]\nmax-trace = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-trace"), "{err}");
        let err = with_file("storage = \"floppy\"\n").unwrap_err().to_string();
        assert!(err.contains("floppy"), "{err}");
        let err = with_file("retention = \"3 weeks\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention"), "{err}");
        let err = Settings::resolve(&Options {
            otlp_http: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("otlp.http.host-port") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn object_store_settings_from_file_and_flags() {
        let s = with_file(
            "[span-log]\nurl = \"nats://a:4222\"\n[ingester]\npartitions = \"2-3\"\n[object-store]\nurl = \"s3://traces/prod\"\nendpoint = \"http://s3:3900\"\nregion = \"garage\"\nseal-after = \"5m\"\ncompaction = true\n",
        )
        .unwrap();
        let o = s.object_store.unwrap();
        assert_eq!(o.s3.url, "s3://traces/prod");
        assert_eq!(o.s3.endpoint.as_deref(), Some("http://s3:3900"));
        assert_eq!(o.s3.region, "garage");
        assert_eq!(o.seal_after, Duration::from_secs(300));
        assert_eq!(o.keep_after_upload, Duration::from_secs(60));
        assert_eq!(o.poll, Duration::from_secs(15));
        assert_eq!(o.node, "p2-3", "named after the ingester's partitions");
        assert!(o.compaction);
        assert!(!format!("{o:?}").contains("secret-value"));
        let flags = Settings::resolve(&Options {
            object_store_url: Some("s3://other".into()),
            object_store_secret_access_key: Some("secret-value".into()),
            object_store_node: Some("east-1".into()),
            ..Default::default()
        })
        .unwrap()
        .object_store
        .unwrap();
        assert_eq!(
            (flags.s3.url.as_str(), flags.node.as_str()),
            ("s3://other", "east-1")
        );
        assert!(
            !format!("{flags:?}").contains("secret-value"),
            "Debug hides the secret"
        );
        let err = Settings::resolve(&Options {
            object_store_url: Some("s3://traces".into()),
            object_store_poll: Some("0s".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("object-store.poll"), "{err}");
        // a bad url names the setting (found by the config_file fuzz target)
        for (url, want) in [
            ("s2://traces", "invalid object-store.url \"s2://traces\": expected s3://bucket[/prefix]"),
            ("s3://a", "invalid bucket name \"a\" in object-store.url \"s3://a\": 3-63 lowercase letters, digits, '-' or '.'"),
            ("s3://abc/./x", "invalid prefix \"./x\" in object-store.url \"s3://abc/./x\""),
        ] {
            let err = with_file(&format!("[object-store]\nurl = {url:?}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(err, want);
        }
    }

    #[test]
    fn span_log_settings_from_file_and_flags() {
        let s = with_file(
            "[span-log]\nurl = \"nats://a:4222, nats://b:4222\"\npartitions = 4\nreplicas = 3\nmax-age = \"2h\"\nmax-bytes = 1000000\ntls = { ca-file = \"/etc/nats-ca.pem\" }\n[ingester]\npartitions = \"2-3\"\n[query]\ningesters = [\"http://i1:16686\"]\ningesters-tls = { ca-file = \"ca.pem\", cert-file = \"/etc/c.pem\", key-file = \"k.pem\" }\n",
        )
        .unwrap();
        assert_eq!(
            s.span_log,
            Some(spanlog::SpanLogSettings {
                urls: vec!["nats://a:4222".into(), "nats://b:4222".into()],
                stream: "spoor-spans".into(),
                partitions: 4,
                replicas: 3,
                max_age: Duration::from_secs(7200),
                max_bytes: 1_000_000,
                tls: tls::ClientTlsFiles {
                    ca: Some("/etc/nats-ca.pem".into()),
                    ..Default::default()
                },
            })
        );
        assert_eq!(s.ingester_partitions, Some(vec![2, 3]));
        assert_eq!(s.query_ingesters, vec!["http://i1:16686".to_string()]);
        // relative paths are the config file's directory's
        let t = &s.query_ingesters_tls;
        assert!(t.ca.as_ref().unwrap().ends_with("ca.pem") && t.ca.as_ref().unwrap().is_absolute());
        assert_eq!(t.cert.as_deref(), Some(Path::new("/etc/c.pem")));
        assert!(t.key.as_ref().unwrap().is_absolute());
        assert!(!s.storage_given);

        let defaults = Settings::resolve(&Options {
            span_log: Some("nats://n:4222".into()),
            ..Default::default()
        })
        .unwrap()
        .span_log
        .unwrap();
        assert_eq!(
            (
                defaults.partitions,
                defaults.replicas,
                defaults.max_age,
                defaults.max_bytes
            ),
            (8, 1, Duration::from_secs(86400), -1)
        );

        for (text, want) in [
            ("[span-log]\nurl = \"nats://a:1\"\nreplica = 3\n", "replica"),
            ("[span-log]\nurl = \"nats://a:1\"\npartitions = 0\n", "span-log.partitions must be between 1 and 1024, got 0"),
            ("[span-log]\nurl = \"nats://a:1\"\nreplicas = 7\n", "span-log.replicas must be between 1 and 5, got 7"),
            ("[span-log]\nurl = \"nats://a:1\"\nmax-bytes = 0\n", "span-log.max-bytes must be -1 (unbounded) or more than 0, got 0"),
            ("[span-log]\nurl = \"nats://a:1\"\nmax-age = \"soon\"\n", "invalid span-log.max-age \"soon\""),
            ("[span-log]\nurl = \" , \"\n", "invalid span-log.url \" , \": expected nats://host:port, comma-separated"),
            ("[span-log]\nurl = \"nats://a:1\"\npartitions = 4\n[ingester]\npartitions = \"0-4\"\n", "invalid ingester.partitions \"0-4\": partition 4 does not exist: span-log.partitions is 4 (0-3)"),
        ] {
            let err = with_file(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
