//! The Spoor daemon: one binary, several roles (Jaeger's deployment shapes):
//!
//! | role         | receivers | pipeline ends in                 | query API over            |
//! |--------------|-----------|----------------------------------|---------------------------|
//! | `all-in-one` | yes       | the store (memory, sled, …)      | the same store            |
//! | `collector`  | yes       | the store, or the span log with `--span-log` | —             |
//! | `query`      | —         | —                                | sled, or `--query.ingesters` |
//! | `agent`      | OTLP, UDP | a collector over OTLP/gRPC       | —                         |
//! | `ingester`   | —         | sled, fed by the span log's owned partitions | its sled store (and the internal endpoint for query nodes) |
//!
//! Refused combinations say what to change: an ingester without `--span-log` or
//! `--ingester.partitions` or with a non-sled store, a span-log collector given a store, a
//! span log on any other role, `--query.ingesters` outside the query role. Tenancy works in
//! every role but the agent: in the span-log cluster the tenant travels in each message and
//! each internal query call (see `spanlog` and `remote`); in object storage each tenant's
//! blocks live under `<prefix>/tenants/<tenant>/` (sealed from the tenant's own sled head, read
//! and compacted per tenant).
//!
//! Start-up order: parse and validate configuration (exit 2 on a bad flag, variable or file),
//! bind every listener (fail fast with the flag to change), serve the admin port (health says
//! "not available" until storage is open), open storage, start the pipeline, then the receivers
//! and the query API. Shutdown (Ctrl-C / SIGTERM) runs in reverse: receivers stop accepting and
//! finish their requests, the pipeline drains its queue into storage and flushes, then the query
//! and admin servers stop.

mod admin;
mod auth;
mod config;
mod forward;
mod ingest;
mod logging;
mod memlimit;
mod metrics;
mod objstore;
mod pipeline;
mod plugin_cli;
mod receivers;
mod remote;
mod sampling;
mod spanlog;
mod tenants;
mod tls;

use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use spoor_core::batch::BatchConfig;
use spoor_core::deps::LinkerConfig;
use spoor_core::validate::Limits;
use spoor_store::embedded::{Durability, SledConfig, SledStore};
use spoor_store::TraceStore;
use tokio::sync::watch;

use crate::config::{Cli, Command, DurabilityKind, PluginSettings, Settings, StorageKind};
use crate::metrics::Metrics;
use crate::pipeline::{now_nanos, Pipeline, PipelineConfig};

/// How often the bearer tokens file is checked for changes.
const TOKENS_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// How often plugin files are checked for changes (a changed file is reloaded without
/// dropping spans; one that fails to load keeps the old version running).
const PLUGIN_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// mimalloc: ingest allocates and frees many small strings per span, and with the system
/// allocator half the daemon's CPU went to malloc/free (measured with perf, see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (role, opts) = match cli.command {
        Some(Command::AllInOne(o)) => (Role::AllInOne, o),
        Some(Command::Collector(o)) => (Role::Collector, o),
        Some(Command::Query(o)) => (Role::Query, o),
        Some(Command::Agent(o)) => (Role::Agent, o),
        Some(Command::Ingester(o)) => (Role::Ingester, o),
        Some(Command::Plugin(cmd)) => {
            return match plugin_cli::run(&cmd) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("spoor: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        None => (Role::AllInOne, cli.options),
    };
    let (settings, plugins) =
        match Settings::resolve(&opts).and_then(|s| Ok((PluginSettings::resolve(&s)?, s))) {
            Ok((p, s)) => (s, p),
            Err(e) => {
                eprintln!("spoor: {e:#}");
                return ExitCode::from(2);
            }
        };
    if let Err(e) = logging::init(settings.log_format, &settings.log_level) {
        eprintln!("spoor: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("spoor")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spoor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(role, settings, plugins)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("spoor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn TraceStore>> {
    Ok(match settings.storage {
        StorageKind::Sled => open_sled(settings)?,
        StorageKind::Memory => Arc::new(spoor_store::memory::MemoryStore::new(
            settings.memory_max_traces,
        )),
        StorageKind::Blackhole => Arc::new(spoor_store::blackhole::BlackholeStore::default()),
    })
}

fn open_sled(settings: &Settings) -> anyhow::Result<Arc<SledStore>> {
    {
        {
            let cfg = SledConfig {
                path: settings.data_dir.clone(),
                retention: settings.retention,
                partition: settings.partition,
                durability: match settings.durability {
                    DurabilityKind::Periodic => Durability::Periodic,
                    DurabilityKind::Sync => Durability::Sync,
                },
                cache_bytes: settings.sled_cache_bytes,
            };
            let store = SledStore::open(cfg).map_err(|e| {
                if e.to_string().contains("could not acquire lock") {
                    anyhow::anyhow!(
                        "the sled store in {} is already open in another spoor process; sled is single-process, so run the collector and query roles together as `spoor all-in-one`, or give each process its own --data-dir",
                        settings.data_dir.display()
                    )
                } else {
                    anyhow::Error::new(e)
                }
            }).with_context(|| {
                format!(
                    "cannot open sled storage in {}",
                    settings.data_dir.display()
                )
            })?;
            Ok(Arc::new(store))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C"),
        _ = term => tracing::info!("received SIGTERM"),
    }
}

/// What a role runs. One binary, four roles (Jaeger's deployment shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receivers, pipeline, storage and query API in one process.
    AllInOne,
    /// Receivers, pipeline and storage writer; no query API.
    Collector,
    /// Query API over a store; no receivers.
    Query,
    /// Receivers (OTLP, Jaeger UDP) forwarding to a collector over OTLP/gRPC.
    Agent,
    /// Span-log consumer into its own sled store, with the query API over it.
    Ingester,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::AllInOne => "all-in-one",
            Role::Collector => "collector",
            Role::Query => "query",
            Role::Agent => "agent",
            Role::Ingester => "ingester",
        }
    }

    fn receives(self) -> bool {
        !matches!(self, Role::Query | Role::Ingester)
    }

    fn serves_queries(self) -> bool {
        matches!(self, Role::AllInOne | Role::Query | Role::Ingester)
    }
}

/// Checks that the role and the settings fit together; errors say what to change.
fn check_role(role: Role, settings: &mut Settings) -> anyhow::Result<()> {
    if settings.span_log.is_some() && !matches!(role, Role::Collector | Role::Ingester) {
        anyhow::bail!(
            "--span-log is for the collector (publishes) and ingester (consumes) roles, not {}",
            role.name()
        );
    }
    if settings.ingester_partitions.is_some() && role != Role::Ingester {
        anyhow::bail!("--ingester.partitions is for the ingester role only");
    }
    if !settings.query_ingesters.is_empty() && role != Role::Query {
        anyhow::bail!("--query.ingesters is for the query role only");
    }
    if settings.object_store.is_some() {
        match role {
            Role::Collector | Role::Agent => anyhow::bail!(
                "--object-store.url is for the ingester, query and all-in-one roles: the {} stores nothing itself",
                role.name()
            ),
            Role::AllInOne | Role::Ingester if settings.storage != StorageKind::Sled => {
                anyhow::bail!(
                    "sealing to object storage needs the sled head: use --storage sled, not {}",
                    format!("{:?}", settings.storage).to_lowercase()
                )
            }
            Role::Query if settings.storage_given => anyhow::bail!(
                "a query node with object storage reads the blocks and --query.ingesters, no local store: drop --storage/--data-dir"
            ),
            Role::Query => return Ok(()),
            _ => {}
        }
    }
    match role {
        Role::Ingester if settings.span_log.is_none() => anyhow::bail!(
            "the ingester role consumes the span log: give --span-log nats://host:port (and --ingester.partitions)"
        ),
        Role::Ingester if settings.ingester_partitions.is_none() => anyhow::bail!(
            "the ingester role needs --ingester.partitions, e.g. 0-3: the span-log partitions it owns"
        ),
        Role::Ingester if settings.storage != StorageKind::Sled => anyhow::bail!(
            "the ingester acknowledges the span log only after its store is durable: use --storage sled, not {}",
            format!("{:?}", settings.storage).to_lowercase()
        ),
        Role::Ingester => Ok(()),
        Role::Collector if settings.span_log.is_some() && settings.storage_given => anyhow::bail!(
            "a collector with --span-log stores nothing itself (ingesters do): drop --storage/--data-dir"
        ),
        Role::Query if !settings.query_ingesters.is_empty() && settings.storage_given => anyhow::bail!(
            "the query role reads either --query.ingesters or a local store, not both: drop --storage/--data-dir"
        ),
        Role::Query if !settings.query_ingesters.is_empty() => Ok(()),
        Role::Query if settings.storage != StorageKind::Sled => anyhow::bail!(
            "the query role reads a persistent store, but --storage {} keeps nothing another process can read: use --storage sled, or run all-in-one",
            format!("{:?}", settings.storage).to_lowercase()
        ),
        Role::Agent if settings.auth.is_some() => anyhow::bail!(
            "the agent role forwards to one collector and does not support auth.* or multi-tenancy.*: turn them on in the collector"
        ),
        Role::Agent if settings.agent_collector_endpoint.is_none() => {
            anyhow::bail!("the agent role needs --agent.collector-endpoint (the collector's OTLP/gRPC address, e.g. http://collector:4317)")
        }
        Role::Agent => {
            // The agent runs the receivers an application host speaks to; the rest is the
            // collector's job.
            settings.jaeger_http = None;
            settings.jaeger_grpc = None;
            settings.zipkin_http = None;
            Ok(())
        }
        Role::Collector => {
            // clients' remote samplers ask the agent (or all-in-one) port; the collector
            // serves strategies on its gRPC and Thrift HTTP ports
            settings.sampling_http = None;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn run(
    role: Role,
    mut settings: Settings,
    plugin_settings: PluginSettings,
) -> anyhow::Result<()> {
    check_role(role, &mut settings)?;
    if let Some(auth) = &settings.auth {
        if auth.udp_tenant.is_none()
            && (settings.jaeger_compact.is_some() || settings.jaeger_binary.is_some())
        {
            tracing::warn!("Jaeger UDP receivers not started: UDP carries no token or tenant header; set --auth.udp-tenant to take UDP spans for one tenant");
            settings.jaeger_compact = None;
            settings.jaeger_binary = None;
        }
    }
    let metrics = Arc::new(Metrics::default());
    // adaptive sampling: the pipeline counts root spans into it, the endpoints serve from it
    // (with tenancy, each tenant's stack has its own, made by the stack factory)
    let adaptive = match (&settings.sampling_adaptive, role) {
        (Some(cfg), Role::AllInOne | Role::Collector) if settings.auth.is_none() => {
            Some(Arc::new(parking_lot::Mutex::new(
                spoor_core::sampling::Adaptive::new(cfg.clone())
                    .map_err(|e| anyhow::anyhow!("invalid adaptive sampling settings: {e}"))?,
            )))
        }
        _ => None,
    };
    // plugins are compiled and configured before anything listens: a bad one stops start-up
    let chain = if role.receives() && role != Role::Agent && !plugin_settings.chain.is_empty() {
        let specs = plugin_settings.chain.clone();
        let chain =
            tokio::task::spawn_blocking(move || spoor_plugin_host::PluginChain::load(&specs))
                .await
                .context("plugin loading panicked")?
                .map_err(|e| anyhow::anyhow!("cannot load plugin: {e}"))?;
        for (name, meta) in chain.metadata() {
            tracing::info!(plugin = name, name = %meta.name, version = %meta.version, "plugin loaded");
        }
        let handle = Arc::new(spoor_plugin_host::ChainHandle::new(chain));
        *metrics.plugins.write() = Some(handle.clone());
        Some(handle)
    } else {
        None
    };
    // so are the tail sampler's plugin policies (shared by every tenant's sampler)
    let tail_policies = match plugin_settings.tail.clone() {
        Some(tail) if role.receives() && role != Role::Agent => {
            tokio::task::spawn_blocking(move || load_tail_policies(&tail))
                .await
                .context("policy plugin loading panicked")??
        }
        _ => Vec::new(),
    };
    *metrics.policy_plugins.write() = tail_policies.clone();
    let plugins = PipelinePlugins {
        chain,
        tail: tail_policies,
        tail_config: plugin_settings.tail,
    };
    // a bad strategies file stops start-up, naming the file and the field
    let sampling = role
        .receives()
        .then(|| {
            sampling::Sampling::start(
                &sampling::SamplingConfig {
                    strategies_file: settings.sampling_strategies_file.clone(),
                    reload_interval: settings.sampling_reload_interval,
                    collector_endpoint: (role == Role::Agent)
                        .then(|| settings.agent_sampling_endpoint.clone())
                        .flatten(),
                    adaptive: adaptive.clone(),
                },
                &metrics,
            )
        })
        .transpose()?;
    let admin_l = receivers::bind_tcp(settings.admin_http, "admin.http.host-port").await?;
    let listeners = if role.receives() {
        Some(receivers::bind_all(&settings).await?)
    } else {
        None
    };
    let query_l = if role.serves_queries() {
        Some(receivers::bind_tcp(settings.query_http, "query.http.host-port").await?)
    } else {
        None
    };

    let (stop_receivers, receivers_rx) = watch::channel(false);
    let (stop_servers, servers_rx) = watch::channel(false);

    receivers::set_http_limits(settings.http_limits);
    receivers::set_listener_tls(settings.tls.as_ref())?;
    tls::set_client_files(settings.agent_tls.clone())?;
    let memory_task = memlimit::spawn(metrics.clone(), settings.memory_limit, servers_rx.clone());
    let admin = admin::Admin::new(metrics.clone());
    let ready = admin.ready.clone();
    let admin_task = tokio::spawn(receivers::serve_http_tls(
        admin_l,
        admin.router(),
        &servers_rx,
        settings.admin_tls,
    ));

    let span_log_js = match (&settings.span_log, role) {
        (Some(cfg), Role::Collector | Role::Ingester) => {
            Some(spanlog::open(cfg, &format!("spoor {}", role.name())).await?)
        }
        _ => None,
    };
    if span_log_js.is_some() || !settings.query_ingesters.is_empty() {
        metrics.span_log.enabled.store(true, Relaxed);
    }
    // a query node's TLS towards https:// ingesters (files read and checked once, here)
    let ingesters_tls = if settings.query_ingesters_tls.ca.is_some()
        || settings
            .query_ingesters
            .iter()
            .any(|u| u.starts_with("https://"))
    {
        Some(tls::client_config(
            &settings.query_ingesters_tls,
            "query.ingesters-tls",
            "call https:// ingesters",
        )?)
    } else {
        None
    };
    let mut span_log_store = None;
    let mut sealed_sled: Option<(Arc<SledStore>, spoor_objstore::Bucket)> = None;
    if settings.object_store.is_some() {
        metrics.object_store.enabled.store(true, Relaxed);
    }
    let backing = if let Some(auth) = settings.auth.clone() {
        let auth = auth::Auth::new(auth).map_err(|e| anyhow::anyhow!(e))?;
        // what each tenant's store is: its own local one (with object storage: a sled head
        // sealed into the tenant's prefix), or the tenant's view of the shared span log
        // (collector) or of the ingesters and the bucket (query node)
        let blocks = match &settings.object_store {
            Some(os) => Some((objstore::bucket(os)?, os.clone())),
            None => None,
        };
        let kind = match (role, &span_log_js, &settings.span_log) {
            (Role::Collector, Some(js), Some(cfg)) => {
                TenantStores::SpanLog(js.clone(), cfg.clone())
            }
            _ if role == Role::Query
                && (!settings.query_ingesters.is_empty() || blocks.is_some()) =>
            {
                let ingesters = if settings.query_ingesters.is_empty() {
                    None
                } else {
                    Some(remote::IngestersStore::new(
                        settings.query_ingesters.clone(),
                        Duration::from_secs(10),
                        metrics.span_log.query_ingester_errors.clone(),
                        ingesters_tls.clone(),
                    )?)
                };
                TenantStores::Remote { ingesters, blocks }
            }
            _ => TenantStores::Local { blocks },
        };
        let local = matches!(kind, TenantStores::Local { .. });
        let factory = stack_factory(
            role,
            settings.clone(),
            metrics.clone(),
            plugins.clone(),
            sampling.as_ref().map(|s| s.provider.clone()),
            kind,
        );
        let registry = tenants::Tenants::new(auth.settings().max_tenants, factory);
        if local && settings.storage == StorageKind::Sled {
            let n = registry.open_existing(&settings.data_dir).await?;
            tracing::info!(tenants = n, data_dir = %settings.data_dir.display(), "tenant stores reopened");
        }
        Backing::Tenants(Arc::new(tenants::Gate {
            auth,
            tenants: registry,
        }))
    } else if let (Some(js), Role::Collector, Some(cfg)) = (&span_log_js, role, &settings.span_log)
    {
        let s = Arc::new(spanlog::SpanLogStore::new(js.clone(), cfg, metrics.clone()));
        span_log_store = Some(s.clone());
        Backing::Single(s)
    } else if let (Some(os), Role::Query) = (&settings.object_store, role) {
        // a query node: blocks in object storage over the live ingesters' heads (if any)
        let head: Option<Arc<dyn TraceStore>> = if settings.query_ingesters.is_empty() {
            None
        } else {
            Some(Arc::new(remote::IngestersStore::new(
                settings.query_ingesters.clone(),
                Duration::from_secs(10),
                metrics.span_log.query_ingester_errors.clone(),
                ingesters_tls.clone(),
            )?))
        };
        let blocks = objstore::block_store(objstore::bucket(os)?, os);
        Backing::Single(Arc::new(spoor_objstore::TieredStore::new(
            head, blocks, false,
        )))
    } else if let (Some(os), Role::AllInOne | Role::Ingester) = (&settings.object_store, role) {
        let s = settings.clone();
        let sled = tokio::task::spawn_blocking(move || open_sled(&s))
            .await
            .context("storage open panicked")??;
        let bucket = objstore::bucket(os)?;
        sealed_sled = Some((sled.clone(), bucket.clone()));
        if role == Role::Ingester {
            // the ingester serves its head; query nodes read the blocks themselves
            Backing::Single(sled)
        } else {
            let blocks = objstore::block_store(bucket, os);
            Backing::Single(Arc::new(spoor_objstore::TieredStore::new(
                Some(sled),
                blocks,
                true,
            )))
        }
    } else if !settings.query_ingesters.is_empty() {
        Backing::Single(Arc::new(remote::IngestersStore::new(
            settings.query_ingesters.clone(),
            Duration::from_secs(10),
            metrics.span_log.query_ingester_errors.clone(),
            ingesters_tls.clone(),
        )?))
    } else if role == Role::Agent {
        let endpoint = settings
            .agent_collector_endpoint
            .clone()
            .unwrap_or_default();
        Backing::Single(Arc::new(forward::ForwardStore::new(
            &forward::ForwardConfig {
                endpoint,
                timeout: Duration::from_secs(10),
            },
        )?))
    } else {
        let s = settings.clone();
        Backing::Single(
            tokio::task::spawn_blocking(move || open_store(&s))
                .await
                .context("storage open panicked")??,
        )
    };
    match (role, &backing) {
        (Role::Agent, _) => {
            tracing::info!(collector = ?settings.agent_collector_endpoint, "forwarding to collector")
        }
        (_, Backing::Single(_)) if span_log_store.is_some() => {
            tracing::info!(span_log = ?settings.span_log, "publishing to the span log")
        }
        (_, Backing::Single(_)) if !settings.query_ingesters.is_empty() => {
            tracing::info!(ingesters = ?settings.query_ingesters, object_store = ?settings.object_store.as_ref().map(|o| &o.s3.url), "querying ingesters")
        }
        (Role::Query, Backing::Single(_)) if settings.object_store.is_some() => {
            tracing::info!(object_store = ?settings.object_store.as_ref().map(|o| &o.s3.url), "querying object storage")
        }
        (_, Backing::Single(_)) => {
            tracing::info!(storage = ?settings.storage, data_dir = %settings.data_dir.display(), "storage open")
        }
        (_, Backing::Tenants(g)) if span_log_js.is_some() && role == Role::Collector => {
            tracing::info!(span_log = ?settings.span_log, tokens = g.auth.settings().uses_tokens(), header = %g.auth.settings().header, "multi-tenancy on: one pipeline per tenant, publishing to the span log with the tenant in each message")
        }
        (Role::Query, Backing::Tenants(g))
            if !settings.query_ingesters.is_empty() || settings.object_store.is_some() =>
        {
            tracing::info!(ingesters = ?settings.query_ingesters, object_store = ?settings.object_store.as_ref().map(|o| &o.s3.url), tokens = g.auth.settings().uses_tokens(), header = %g.auth.settings().header, "multi-tenancy on: querying the ingesters and the bucket prefix of the caller's tenant only")
        }
        (_, Backing::Tenants(g)) if settings.object_store.is_some() => {
            tracing::info!(storage = ?settings.storage, data_dir = %settings.data_dir.display(), object_store = ?settings.object_store.as_ref().map(|o| &o.s3.url), tokens = g.auth.settings().uses_tokens(), header = %g.auth.settings().header, "multi-tenancy on: one sled head and pipeline per tenant, sealed into <prefix>/tenants/<tenant>/")
        }
        (_, Backing::Tenants(g)) => {
            tracing::info!(storage = ?settings.storage, data_dir = %settings.data_dir.display(), tokens = g.auth.settings().uses_tokens(), header = %g.auth.settings().header, "multi-tenancy on: one store and pipeline per tenant")
        }
    }

    let pipeline = match &backing {
        Backing::Single(store) if role.receives() || role == Role::Ingester => {
            Some(Pipeline::start(
                store.clone(),
                metrics.clone(),
                pipeline_config(
                    role,
                    &settings,
                    plugins.clone(),
                    adaptive.clone(),
                    None,
                    span_log_store.clone(),
                ),
            ))
        }
        _ => None,
    };
    let target = match (&backing, &pipeline, &sampling) {
        (Backing::Tenants(gate), _, Some(_)) => {
            let udp = match &gate.auth.settings().udp_tenant {
                Some(t) => gate
                    .tenants
                    .get(t)
                    .await
                    .map_err(|e| anyhow::anyhow!("auth.udp-tenant {t}: {e}"))?
                    .ingest(),
                None => None,
            };
            Some(receivers::Target::Tenants {
                gate: gate.clone(),
                udp,
            })
        }
        (Backing::Single(_), Some(p), Some(s)) => Some(receivers::Target::Single {
            ingest: p.clone(),
            sampling: s.provider.clone(),
        }),
        _ => None,
    };
    let receiver_tasks = match (target, listeners) {
        (Some(t), Some(l)) => receivers::serve_all(l, &settings, &t, &receivers_rx),
        _ => Vec::new(),
    };
    // ingester: one durable consumer per owned partition, created before ready
    let (stop_consumers, consumers_rx) = watch::channel(false);
    let mut consumer_tasks = Vec::new();
    let sink = match (&backing, &pipeline) {
        (Backing::Tenants(gate), _) => Some(spanlog::Sink::Tenants(gate.clone())),
        (Backing::Single(_), Some(p)) => Some(spanlog::Sink::Single(p.clone())),
        _ => None,
    };
    if let (Role::Ingester, Some(js), Some(cfg), Some(parts), Some(sink)) = (
        role,
        &span_log_js,
        &settings.span_log,
        &settings.ingester_partitions,
        &sink,
    ) {
        for &part in parts {
            let consumer = spanlog::consumer_for(js, cfg, part).await?;
            consumer_tasks.push(tokio::spawn(spanlog::run_partition(
                js.clone(),
                cfg.clone(),
                part,
                consumer,
                sink.clone(),
                metrics.clone(),
                consumers_rx.clone(),
            )));
        }
        tracing::info!(partitions = ?parts, stream = %cfg.stream, "consuming the span log");
    }
    let query_task = query_l.map(|l| {
        let cfg = spoor_query::QueryConfig {
            default_lookback: Duration::from_secs(3600),
            max_lookback: settings.query_max_lookback,
            max_limit: settings.query_max_limit,
            max_spans_per_trace: settings.query_max_spans_per_trace,
            static_files: settings.query_static_files.clone(),
            ui_config: settings.query_ui_config.clone(),
            base_path: settings.query_base_path.clone(),
        };
        let router = match &backing {
            Backing::Single(store) => {
                let router = spoor_query::router(store.clone(), cfg);
                if role == Role::Ingester {
                    router.merge(remote::internal_router(remote::Internal::Single(
                        store.clone(),
                    )))
                } else {
                    router
                }
            }
            Backing::Tenants(gate) => {
                // the UI's files and /api/ui-config need no token; every other /api path is
                // answered from the caller's tenant's store only
                let base = cfg.base_path.clone();
                let public = tenants::Public {
                    router: spoor_query::router(
                        Arc::new(spoor_store::blackhole::BlackholeStore::default()),
                        cfg.clone(),
                    ),
                    is_public: Box::new(move |path| query_path_is_public(&base, path)),
                };
                let per_tenant = tenants::tenant_router(
                    gate.clone(),
                    move |stack| Some(spoor_query::router(stack.store.clone(), cfg.clone())),
                    Some(public),
                );
                if role == Role::Ingester {
                    // query nodes name the tenant on the internal endpoint (no token)
                    remote::internal_router(remote::Internal::Tenants(gate.clone()))
                        .fallback_service(per_tenant)
                } else {
                    per_tenant
                }
            }
        };
        tokio::spawn(receivers::serve_http(l, router, &servers_rx))
    });
    let tokens_reload = match &backing {
        Backing::Tenants(gate) if gate.auth.settings().tokens_file.is_some() => {
            let gate = gate.clone();
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(TOKENS_RELOAD_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let g = gate.clone();
                    match tokio::task::spawn_blocking(move || g.auth.reload_if_changed()).await {
                        Ok(Ok(true)) => tracing::info!("bearer tokens file reloaded"),
                        Ok(Ok(false)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!("{e}; the previous tokens stay in force")
                        }
                        Err(e) => tracing::error!(error = %e, "tokens reload panicked"),
                    }
                }
            }))
        }
        _ => None,
    };
    // Changed plugin files (the chain's and the tail sampler's policies) are reloaded in place;
    // a file that fails to load keeps its previous version running.
    let plugin_reload = (plugins.chain.is_some() || !plugins.tail.is_empty()).then(|| {
        let reload_metrics = metrics.clone();
        let plugins = plugins.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PLUGIN_RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let p = plugins.clone();
                let round = tokio::task::spawn_blocking(move || {
                    let mut report = p
                        .chain
                        .as_ref()
                        .map(|h| h.reload_if_changed())
                        .unwrap_or_default();
                    for policy in &p.tail {
                        match policy.reload_if_changed() {
                            Ok(true) => report.reloaded.push(policy.spec().name.clone()),
                            Ok(false) => {}
                            Err(e) => report.errors.push(e),
                        }
                    }
                    report
                });
                match round.await {
                    Ok(report) => {
                        for name in &report.reloaded {
                            tracing::info!(plugin = %name, "plugin reloaded from its changed file");
                        }
                        for e in &report.errors {
                            reload_metrics.plugin_reload_failures.fetch_add(1, Relaxed);
                            tracing::warn!(plugin = e.plugin(), error = %e, "changed plugin failed to load; the previous version keeps running");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "plugin reload panicked"),
                }
            }
        })
    });
    let maintenance = (role != Role::Agent).then(|| {
        let stores: Stores = match &backing {
            Backing::Single(store) => {
                let store = store.clone();
                Arc::new(move || vec![store.clone()])
            }
            Backing::Tenants(gate) => {
                let gate = gate.clone();
                Arc::new(move || gate.tenants.all().iter().map(|t| t.store.clone()).collect())
            }
        };
        tokio::spawn(maintain(
            stores,
            metrics.clone(),
            settings.retention,
            settings.partition,
        ))
    });

    let (stop_objstore, objstore_rx) = watch::channel(false);
    let mut objstore_tasks = Vec::new();
    if let Some(os) = &settings.object_store {
        let heads: Option<objstore::Heads> = match (&sealed_sled, &backing) {
            (Some(one), _) => {
                let one = one.clone();
                Some(Arc::new(move || vec![one.clone()]))
            }
            // each tenant's sled head into its own prefix of the bucket
            (None, Backing::Tenants(gate)) if matches!(role, Role::AllInOne | Role::Ingester) => {
                let gate = gate.clone();
                Some(Arc::new(move || {
                    gate.tenants
                        .all()
                        .iter()
                        .filter_map(|t| t.sealed.clone())
                        .collect()
                }))
            }
            _ => None,
        };
        if let Some(heads) = heads {
            objstore_tasks.push(objstore::spawn_sealer(
                heads,
                os,
                metrics.clone(),
                objstore_rx.clone(),
            ));
            tracing::info!(url = %os.s3.url, node = %os.node, seal_after = ?os.seal_after, tenants = settings.auth.is_some(), "sealing old partitions to object storage");
        }
        if os.compaction {
            objstore_tasks.push(objstore::spawn_compactor(
                objstore::bucket(os)?,
                settings.auth.is_some(),
                os,
                settings.retention,
                metrics.clone(),
                objstore_rx.clone(),
            ));
            tracing::info!(url = %os.s3.url, retention = ?settings.retention, "compacting object storage");
        }
    }

    ready.store(true, Relaxed);
    tracing::info!(
        role = role.name(),
        receivers = %if role.receives() { receivers::describe(&settings) } else { String::new() },
        query = %if role.serves_queries() { settings.query_http.to_string() } else { String::new() },
        admin = %settings.admin_http,
        "spoor is ready"
    );

    shutdown_signal().await;
    ready.store(false, Relaxed);
    let _ = stop_receivers.send(true);
    let drain = async {
        for (name, task) in receiver_tasks {
            match task.await {
                Ok(Err(e)) => tracing::error!(receiver = name, error = %e, "receiver failed"),
                Err(e) => tracing::error!(receiver = name, error = %e, "receiver task panicked"),
                Ok(Ok(())) => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("receivers did not finish their requests within 10s");
    }
    // ingester: stop fetching, let the batches in hand be stored and acked, then drain
    let _ = stop_consumers.send(true);
    for t in consumer_tasks {
        if tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .is_err()
        {
            tracing::warn!(
                "a span-log consumer did not stop within 10s; its messages will be redelivered"
            );
        }
    }
    if let Some(p) = &pipeline {
        p.shutdown().await;
    }
    if let Backing::Tenants(gate) = &backing {
        for stack in gate.tenants.all() {
            if let Some(p) = &stack.pipeline {
                p.shutdown().await;
            }
        }
    }
    let _ = stop_objstore.send(true);
    for t in objstore_tasks {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .is_err()
        {
            tracing::warn!("an object-storage upload did not finish within 30s; it is redone at the next start");
        }
    }
    if let Some(t) = tokens_reload {
        t.abort();
    }
    if let Some(m) = maintenance {
        m.abort();
    }
    if let Some(r) = plugin_reload {
        r.abort();
    }
    if let Some(s) = &sampling {
        s.stop();
    }
    let _ = stop_servers.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if let Some(q) = query_task {
            let _ = q.await;
        }
        let _ = admin_task.await;
        let _ = memory_task.await;
    })
    .await;
    drop(pipeline);
    drop(backing);
    tracing::info!("spoor stopped");
    Ok(())
}

/// Every store the daemon holds (one, or one per tenant), asked anew at each round.
type Stores = Arc<dyn Fn() -> Vec<Arc<dyn TraceStore>> + Send + Sync>;

/// Periodic housekeeping: retention (whole partitions) and storage gauges (summed over the
/// stores).
async fn maintain(stores: Stores, metrics: Arc<Metrics>, retention: Duration, partition: Duration) {
    let every = (partition / 4).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let mut retention_tick = tokio::time::interval(every);
    let mut stats_tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = retention_tick.tick() => {
                let cutoff = now_nanos().saturating_sub(retention.as_nanos() as u64);
                for s in stores() {
                    match tokio::task::spawn_blocking(move || s.expire_before(cutoff)).await {
                        Ok(Ok(0)) => {}
                        Ok(Ok(n)) => tracing::info!(partitions = n, "retention dropped expired partitions"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "retention failed"),
                        Err(e) => tracing::warn!(error = %e, "retention panicked"),
                    }
                }
            }
            _ = stats_tick.tick() => {
                let mut sum = spoor_store::StoreStats::default();
                for s in stores() {
                    let st = s.stats();
                    sum.bytes_on_disk += st.bytes_on_disk;
                    sum.traces += st.traces;
                    sum.traces_evicted += st.traces_evicted;
                    sum.partitions += st.partitions;
                    sum.partitions_expired += st.partitions_expired;
                }
                let g = &metrics.store;
                g.bytes_on_disk.store(sum.bytes_on_disk, Relaxed);
                g.traces.store(sum.traces, Relaxed);
                g.traces_evicted.store(sum.traces_evicted, Relaxed);
                g.partitions.store(sum.partitions, Relaxed);
                g.partitions_expired.store(sum.partitions_expired, Relaxed);
            }
        }
    }
}

/// The store(s) behind the daemon: today's one, or one per tenant behind the gate.
enum Backing {
    Single(Arc<dyn TraceStore>),
    Tenants(Arc<tenants::Gate>),
}

/// Whether a query-port path is served without a tenant: everything but `{base}/api` and
/// `{base}/api/…`, except `{base}/api/ui-config` (the UI's files and options hold no span data).
fn query_path_is_public(base: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(base) else {
        return true;
    };
    let api = rest == "/api" || rest.starts_with("/api/");
    !api || rest == "/api/ui-config"
}

/// The plugins every pipeline of the daemon shares: the chain of `[[plugins]]` and the tail
/// sampler's plugin policies (in `TailConfig::plugin_sections` order).
#[derive(Clone, Default)]
struct PipelinePlugins {
    chain: Option<Arc<spoor_plugin_host::ChainHandle>>,
    tail: Vec<Arc<spoor_plugin_host::PolicyPlugin>>,
    /// `[sampling.tail]`, whose plugin policies `tail` holds (`None`: no tail sampling).
    tail_config: Option<config::TailSettings>,
}

/// Loads every plugin policy of `[sampling.tail]`: compiled, checked and configured, or the
/// first failure naming the policy's path in the config.
fn load_tail_policies(
    tail: &config::TailSettings,
) -> anyhow::Result<Vec<Arc<spoor_plugin_host::PolicyPlugin>>> {
    let mut loaded = Vec::new();
    for (at, policy, section) in tail.plugin_sections() {
        let plugin = spoor_plugin_host::PolicyPlugin::load(&section.to_spec(&policy.name))
            .map_err(|e| anyhow::anyhow!("sampling.tail.{at}: cannot load policy plugin: {e}"))?;
        let meta = plugin.metadata();
        tracing::info!(policy = %policy.name, name = %meta.name, version = %meta.version, "tail sampling policy plugin loaded");
        loaded.push(Arc::new(plugin));
    }
    Ok(loaded)
}

/// The pipeline settings of a role (`tenant`: the label of a tenant's span metrics).
fn pipeline_config(
    role: Role,
    settings: &Settings,
    plugins: PipelinePlugins,
    adaptive: Option<Arc<parking_lot::Mutex<spoor_core::sampling::Adaptive>>>,
    tenant: Option<String>,
    span_log_store: Option<Arc<spanlog::SpanLogStore>>,
) -> PipelineConfig {
    PipelineConfig {
        queue_bytes: settings.queue_bytes,
        batch: BatchConfig {
            max_items: settings.batch_max_spans,
            max_bytes: 16 << 20,
            max_age_nanos: settings.batch_max_age.as_nanos() as u64,
        },
        // span log: a client's spans (collector) or a log message (ingester) is acknowledged
        // only once published / stored and flushed
        sync: role == Role::Ingester
            || span_log_store.is_some()
            || (role != Role::Agent
                && settings.storage == StorageKind::Sled
                && settings.durability == DurabilityKind::Sync),
        limits: Limits::default(),
        retry_after: Duration::from_secs(1),
        linker: LinkerConfig::default(),
        // with a span log, the ingesters link: they see whole traces
        links: role != Role::Agent && span_log_store.is_none(),
        // span metrics and tail sampling belong to the collector, not the agent
        span_metrics_bucket_nanos: settings
            .span_metrics_bucket
            .filter(|_| role != Role::Agent)
            .map(|d| d.as_nanos() as u64),
        tail: plugins.tail_config.filter(|_| role != Role::Agent),
        tail_plugins: plugins.tail,
        plugins: plugins.chain,
        adaptive,
        tenant,
        available: span_log_store.map(|s| pipeline::Availability(Arc::new(move || s.connected()))),
    }
}

/// What a tenant's store is.
// one value per process, moved once into the stack factory: the variants' sizes do not matter
#[allow(clippy::large_enum_variant)]
enum TenantStores {
    /// Its own local store (all-in-one, ingester, query over sled); with object storage, a sled
    /// head sealed into the tenant's prefix of the bucket (an all-in-one reads both tiers, an
    /// ingester serves the head).
    Local {
        blocks: Option<(spoor_objstore::Bucket, objstore::ObjectStoreSettings)>,
    },
    /// Its view of the shared span log: every message names the tenant (span-log collector).
    SpanLog(async_nats::jetstream::Context, spanlog::SpanLogSettings),
    /// A query node's: its view of the ingesters (every call names the tenant) and/or of its
    /// prefix of the bucket.
    Remote {
        ingesters: Option<remote::IngestersStore>,
        blocks: Option<(spoor_objstore::Bucket, objstore::ObjectStoreSettings)>,
    },
}

/// Builds a tenant's stack: its store (sled: `<data-dir>/tenants/<tenant>/`; memory and
/// blackhole: a fresh one; the tenant's view of the span log or of the ingesters), its pipeline
/// when the role receives or ingests, its adaptive calculator when adaptive sampling is on
/// (else the shared strategies).
fn stack_factory(
    role: Role,
    settings: Settings,
    metrics: Arc<Metrics>,
    plugins: PipelinePlugins,
    shared_sampling: Option<sampling::StrategyProvider>,
    kind: TenantStores,
) -> Box<tenants::StackFactory> {
    Box::new(move |tenant| {
        let mut span_log_store = None;
        let mut sealed = None;
        let store: Arc<dyn TraceStore> = match &kind {
            TenantStores::Local { blocks } => {
                let mut s = settings.clone();
                s.data_dir = settings
                    .data_dir
                    .join(tenants::TENANTS_DIR)
                    .join(tenant.as_str());
                if s.storage == StorageKind::Sled {
                    std::fs::create_dir_all(&s.data_dir)
                        .with_context(|| format!("cannot create {}", s.data_dir.display()))?;
                }
                match blocks {
                    None => open_store(&s)?,
                    Some((bucket, os)) => {
                        // check_role: object storage runs over a sled head
                        let sled = open_sled(&s)?;
                        let bucket = bucket.tenant(tenant.as_str());
                        sealed = Some((sled.clone(), bucket.clone()));
                        if role == Role::Ingester {
                            sled
                        } else {
                            Arc::new(spoor_objstore::TieredStore::new(
                                Some(sled),
                                objstore::block_store(bucket, os),
                                true,
                            ))
                        }
                    }
                }
            }
            TenantStores::SpanLog(js, cfg) => {
                let s = Arc::new(
                    spanlog::SpanLogStore::new(js.clone(), cfg, metrics.clone())
                        .for_tenant(tenant.clone()),
                );
                span_log_store = Some(s.clone());
                s
            }
            TenantStores::Remote { ingesters, blocks } => {
                let head = ingesters
                    .as_ref()
                    .map(|i| Arc::new(i.for_tenant(tenant.clone())) as Arc<dyn TraceStore>);
                match (head, blocks) {
                    (head, Some((bucket, os))) => Arc::new(spoor_objstore::TieredStore::new(
                        head,
                        objstore::block_store(bucket.tenant(tenant.as_str()), os),
                        false,
                    )),
                    (Some(head), None) => head,
                    (None, None) => anyhow::bail!("a query node needs ingesters or a bucket"),
                }
            }
        };
        let adaptive = match &settings.sampling_adaptive {
            // counted where clients' strategies are served from (not the ingesters)
            Some(cfg) if matches!(role, Role::AllInOne | Role::Collector) => {
                Some(Arc::new(parking_lot::Mutex::new(
                    spoor_core::sampling::Adaptive::new(cfg.clone())
                        .map_err(|e| anyhow::anyhow!("invalid adaptive sampling settings: {e}"))?,
                )))
            }
            _ => None,
        };
        let sampling = match (&adaptive, &shared_sampling) {
            (Some(a), _) => {
                sampling::StrategyProvider::Local(Arc::new(sampling::AdaptiveStrategies(a.clone())))
            }
            (None, Some(p)) => p.clone(),
            (None, None) => sampling::StrategyProvider::Local(Arc::new(sampling::DefaultStrategy)),
        };
        let pipeline = (role.receives() || role == Role::Ingester).then(|| {
            Pipeline::start(
                store.clone(),
                metrics.clone(),
                pipeline_config(
                    role,
                    &settings,
                    plugins.clone(),
                    adaptive,
                    Some(tenant.to_string()),
                    span_log_store,
                ),
            )
        });
        Ok(tenants::TenantStack {
            name: tenant.clone(),
            store,
            pipeline,
            sampling,
            sealed,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-role files of `config/cluster/` (the README's production cluster) resolve and
    /// pass their role's checks.
    #[test]
    fn cluster_config_files_resolve_for_their_roles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cluster");
        let mut nodes = Vec::new();
        for (file, role) in [
            ("collector.toml", Role::Collector),
            ("ingester-a.toml", Role::Ingester),
            ("ingester-b.toml", Role::Ingester),
            ("query.toml", Role::Query),
        ] {
            let mut s = Settings::resolve(&config::Options {
                config: Some(dir.join(file)),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
            check_role(role, &mut s).unwrap_or_else(|e| panic!("{file} as {role:?}: {e:#}"));
            if let Some(o) = &s.object_store {
                nodes.push(o.node.clone());
            }
        }
        assert_eq!(nodes, ["p0-3", "p4-7", "local"]);
    }
}
