//! Sampling strategies served to clients: where they come from ([`StrategySource`]: Jaeger's
//! default, or a strategies file re-read when it changes) and, in the agent role, the proxy to
//! the collector's `SamplingManager` ([`CollectorStrategies`]). Every endpoint (gRPC
//! `GetSamplingStrategy`, `/api/sampling`, the agent port's `/sampling` and `/`) asks one
//! [`StrategyProvider`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use spoor_core::sampling::{parse_strategies, Adaptive, Strategies, StrategyResponse};
use spoor_jaeger::sampling::{
    SamplingStrategyParameters, SamplingStrategyResponse, GET_SAMPLING_STRATEGY_PATH,
};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::metrics::Metrics;

/// Where the strategy of a service comes from.
///
/// Contract: `strategy` is called on the request path of every sampling endpoint, possibly
/// from many tasks at once; it must answer from memory, without blocking or I/O, and always
/// answers (a source without an opinion on `service` returns its default).
pub trait StrategySource: Send + Sync {
    /// The strategy clients of `service` are told to apply.
    fn strategy(&self, service: &str) -> StrategyResponse;
}

/// Jaeger's default without a strategies file: probabilistic 0.001 for every service.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultStrategy;

impl StrategySource for DefaultStrategy {
    fn strategy(&self, _service: &str) -> StrategyResponse {
        StrategyResponse::default()
    }
}

/// Why the strategies file could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read sampling strategies file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid strategies document (the message names the field).
    #[error("invalid sampling strategies file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// What identifies one version of the file: modification time and length.
type Version = Option<(SystemTime, u64)>;

/// Strategies from a JSON file (`--sampling.strategies-file`, Jaeger's format), re-read when
/// its modification time or length changes; a bad new version is refused and the last good one
/// stays in force.
pub struct FileStrategies {
    path: PathBuf,
    current: RwLock<Arc<Strategies>>,
    /// The version last looked at, good or bad, so a bad file is reported once.
    seen: Mutex<Version>,
}

impl FileStrategies {
    /// Loads `path`; an error names the file and the bad field (a start-up error).
    pub fn load(path: &Path) -> Result<FileStrategies, FileError> {
        let version = version_of(path);
        let strategies = read(path)?;
        Ok(FileStrategies {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(strategies)),
            seen: Mutex::new(version),
        })
    }

    /// Re-reads the file if it changed since last looked at: `Ok(true)` when a new version is
    /// in force, `Ok(false)` when nothing changed, `Err` when the new version is bad (the last
    /// good one stays; the same bad version is not reported again).
    pub fn reload_if_changed(&self) -> Result<bool, FileError> {
        let version = version_of(&self.path);
        {
            let mut seen = self.seen.lock();
            if *seen == version && version.is_some() {
                return Ok(false);
            }
            *seen = version;
        }
        let strategies = read(&self.path)?;
        *self.current.write() = Arc::new(strategies);
        Ok(true)
    }

    /// Polls the file every `every` until aborted: reloads are logged, failures logged naming
    /// the field and counted in `spoor_sampling_strategies_reload_failures_total`.
    pub fn watch(self: Arc<Self>, every: Duration, metrics: Arc<Metrics>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let me = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || me.reload_if_changed()).await {
                    Ok(Ok(true)) => {
                        tracing::info!(file = %self.path.display(), "sampling strategies reloaded")
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        metrics
                            .sampling
                            .strategies_reload_failures
                            .fetch_add(1, Relaxed);
                        tracing::warn!("{e}; the previous strategies stay in force");
                    }
                    Err(e) => tracing::warn!(error = %e, "sampling strategies reload panicked"),
                }
            }
        })
    }
}

impl StrategySource for FileStrategies {
    fn strategy(&self, service: &str) -> StrategyResponse {
        let current = Arc::clone(&self.current.read());
        current.strategy_for(service)
    }
}

fn version_of(path: &Path) -> Version {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> Result<Strategies, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_strategies(&bytes).map_err(|e| FileError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Why no strategy could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplingError {
    /// The agent could not ask the collector and has no earlier answer for the service.
    #[error("collector error: cannot get the sampling strategy of service {service:?} from collector {endpoint}: {message}")]
    Collector {
        /// The collector's `SamplingManager` endpoint.
        endpoint: String,
        /// The service asked for.
        service: String,
        /// The gRPC failure.
        message: String,
    },
}

/// Services whose last good answer the agent keeps; beyond this, answers for new services are
/// passed on but not kept (service names come from clients' query strings).
const MAX_REMEMBERED_SERVICES: usize = 10_000;

/// The agent's strategies: asked of the collector's `SamplingManager` over gRPC on every
/// request (so the collector's file and reloads decide), with the last good answer per service
/// kept and served while the collector is unreachable.
pub struct CollectorStrategies {
    endpoint: String,
    channel: Channel,
    last_good: Mutex<HashMap<String, SamplingStrategyResponse>>,
}

impl CollectorStrategies {
    /// A proxy that connects lazily (the collector may start after the agent). Must be created
    /// inside the tokio runtime.
    pub fn new(endpoint: &str, timeout: Duration) -> anyhow::Result<CollectorStrategies> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| anyhow::anyhow!("invalid agent.sampling-endpoint {endpoint:?}: {e}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let channel = crate::tls::client_endpoint(channel, endpoint)?.connect_lazy();
        Ok(CollectorStrategies {
            endpoint: endpoint.to_string(),
            channel,
            last_good: Mutex::new(HashMap::new()),
        })
    }

    async fn fetch(&self, service: &str) -> Result<SamplingStrategyResponse, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec: tonic_prost::ProstCodec<SamplingStrategyParameters, SamplingStrategyResponse> =
            tonic_prost::ProstCodec::default();
        let request = tonic::Request::new(SamplingStrategyParameters {
            service_name: service.to_string(),
        });
        let path = http::uri::PathAndQuery::from_static(GET_SAMPLING_STRATEGY_PATH);
        grpc.unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
    }

    /// The collector's answer, or the last good one if the collector cannot be asked.
    pub async fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, SamplingError> {
        match self.fetch(service).await {
            Ok(resp) => {
                let mut last = self.last_good.lock();
                if last.len() < MAX_REMEMBERED_SERVICES || last.contains_key(service) {
                    last.insert(service.to_string(), resp.clone());
                }
                Ok(resp)
            }
            Err(status) => {
                if let Some(resp) = self.last_good.lock().get(service) {
                    tracing::debug!(collector = %self.endpoint, service, error = %status.message(), "collector unreachable, serving the last good sampling strategy");
                    return Ok(resp.clone());
                }
                tracing::warn!(collector = %self.endpoint, service, error = %status.message(), "cannot get the sampling strategy from the collector");
                Err(SamplingError::Collector {
                    endpoint: self.endpoint.clone(),
                    service: service.to_string(),
                    message: format!("{}: {}", status.code(), status.message()),
                })
            }
        }
    }
}

/// What every sampling endpoint asks: a local source (all-in-one, collector) or the collector
/// (agent).
#[derive(Clone)]
pub enum StrategyProvider {
    /// Strategies decided in this process.
    Local(Arc<dyn StrategySource>),
    /// Strategies asked of the collector.
    Collector(Arc<CollectorStrategies>),
}

impl StrategyProvider {
    /// The strategy of `service`, in `api_v2` form.
    pub async fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, SamplingError> {
        match self {
            StrategyProvider::Local(s) => Ok((&s.strategy(service)).into()),
            StrategyProvider::Collector(c) => c.strategy(service).await,
        }
    }
}

/// Where the daemon's strategies come from, decided once at start-up.
pub struct Sampling {
    /// What the endpoints ask.
    pub provider: StrategyProvider,
    watcher: Option<JoinHandle<()>>,
}

/// The settings [`Sampling::start`] needs.
#[derive(Debug, Clone)]
pub struct SamplingConfig {
    /// `--sampling.strategies-file`.
    pub strategies_file: Option<PathBuf>,
    /// `--sampling.strategies-reload-interval`.
    pub reload_interval: Duration,
    /// Agent role: the collector's `SamplingManager` endpoint (`--agent.sampling-endpoint`).
    pub collector_endpoint: Option<String>,
    /// Adaptive sampling: the calculator the pipeline feeds (`--sampling.adaptive`).
    pub adaptive: Option<Arc<Mutex<Adaptive>>>,
}

/// Strategies calculated by adaptive sampling from the root spans received.
pub struct AdaptiveStrategies(pub Arc<Mutex<Adaptive>>);

impl StrategySource for AdaptiveStrategies {
    fn strategy(&self, service: &str) -> StrategyResponse {
        self.0.lock().strategy_for(service)
    }
}

impl Sampling {
    /// Loads the strategies file (an error names the file and the field) and starts watching
    /// it, or sets up the proxy to the collector when `collector_endpoint` is given. Must be
    /// called inside the tokio runtime.
    pub fn start(cfg: &SamplingConfig, metrics: &Arc<Metrics>) -> anyhow::Result<Sampling> {
        if let Some(endpoint) = &cfg.collector_endpoint {
            let proxy = CollectorStrategies::new(endpoint, Duration::from_secs(5))?;
            return Ok(Sampling {
                provider: StrategyProvider::Collector(Arc::new(proxy)),
                watcher: None,
            });
        }
        if let Some(adaptive) = &cfg.adaptive {
            return Ok(Sampling {
                provider: StrategyProvider::Local(Arc::new(AdaptiveStrategies(adaptive.clone()))),
                watcher: None,
            });
        }
        match &cfg.strategies_file {
            None => Ok(Sampling {
                provider: StrategyProvider::Local(Arc::new(DefaultStrategy)),
                watcher: None,
            }),
            Some(path) => {
                let file = Arc::new(FileStrategies::load(path)?);
                let watcher = Arc::clone(&file).watch(cfg.reload_interval, metrics.clone());
                Ok(Sampling {
                    provider: StrategyProvider::Local(file),
                    watcher: Some(watcher),
                })
            }
        }
    }

    /// Stops watching the file.
    pub fn stop(&self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A1_B0: &str = r#"{"default_strategy":{"type":"probabilistic","param":0.5},"service_strategies":[{"service":"a","type":"probabilistic","param":1.0},{"service":"b","type":"probabilistic","param":0.0}]}"#;
    const B1: &str =
        r#"{"service_strategies":[{"service":"b","type":"probabilistic","param":1.0}]}"#;
    /// A probability above 1: the error names `service_strategies[0].param`.
    const BROKEN: &str =
        r#"{"service_strategies":[{"service":"b","type":"probabilistic","param":1.5}]}"#;

    /// Replaces the file atomically, with a length that differs from the last version's.
    fn write(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn rate(s: &dyn StrategySource, service: &str) -> f64 {
        match s.strategy(service) {
            StrategyResponse::Probabilistic { strategy, .. } => strategy.sampling_rate,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_reloads_keep_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strategies.json");
        write(&path, A1_B0);
        let file = FileStrategies::load(&path).unwrap();
        assert_eq!(
            [rate(&file, "a"), rate(&file, "b"), rate(&file, "c")],
            [1.0, 0.0, 0.5]
        );
        assert!(!file.reload_if_changed().unwrap());

        write(&path, B1);
        assert!(file.reload_if_changed().unwrap());
        assert_eq!(rate(&file, "b"), 1.0);

        write(&path, BROKEN);
        let err = file.reload_if_changed().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "invalid sampling strategies file {}: ",
                path.display()
            )) && err.contains("service_strategies[0].param"),
            "{err}"
        );
        assert_eq!(rate(&file, "b"), 1.0, "the last good version stays");
        // the same bad version is reported once
        assert!(!file.reload_if_changed().unwrap());

        std::fs::remove_file(&path).unwrap();
        let err = file.reload_if_changed().unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read sampling strategies file"),
            "{err}"
        );
        assert_eq!(rate(&file, "b"), 1.0);
    }

    #[test]
    fn a_bad_file_at_start_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        write(&path, BROKEN);
        let err = FileStrategies::load(&path).err().unwrap().to_string();
        assert!(
            err.contains("s.json") && err.contains("service_strategies[0].param"),
            "{err}"
        );
        let missing = dir.path().join("nope.json");
        let err = FileStrategies::load(&missing).err().unwrap().to_string();
        assert!(err.contains("nope.json"), "{err}");
        assert_eq!(rate(&DefaultStrategy, "anything"), 0.001);
    }

    #[tokio::test]
    async fn watcher_counts_reload_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strategies.json");
        write(&path, A1_B0);
        let metrics = Arc::new(Metrics::default());
        let sampling = Sampling::start(
            &SamplingConfig {
                strategies_file: Some(path.clone()),
                reload_interval: Duration::from_millis(10),
                collector_endpoint: None,
                adaptive: None,
            },
            &metrics,
        )
        .unwrap();
        let rate_of = |service: &'static str| {
            let p = sampling.provider.clone();
            async move {
                p.strategy(service)
                    .await
                    .unwrap()
                    .probabilistic_sampling
                    .unwrap()
                    .sampling_rate
            }
        };
        write(&path, B1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while rate_of("b").await != 1.0 {
            assert!(tokio::time::Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        write(&path, BROKEN);
        while metrics.sampling.strategies_reload_failures.load(Relaxed) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "failure not counted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(metrics.sampling.strategies_reload_failures.load(Relaxed), 1);
        assert_eq!(rate_of("b").await, 1.0);
        sampling.stop();
    }

    #[tokio::test]
    async fn agent_serves_the_last_good_answer_while_the_collector_is_away() {
        // a collector: the real Jaeger gRPC port over a file-less default
        use crate::receivers::jaeger_grpc::{serve_jaeger_grpc, JaegerGrpcConfig};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_jaeger_grpc(
            listener,
            crate::receivers::Target::Single {
                ingest: crate::receivers::testing::Recorder::new(),
                sampling: StrategyProvider::Local(Arc::new(DefaultStrategy)),
            },
            JaegerGrpcConfig {
                max_message_bytes: 1 << 20,
            },
            async {
                let _ = stopped.await;
            },
        ));
        let endpoint = format!("http://{addr}");
        let proxy = CollectorStrategies::new(&endpoint, Duration::from_secs(2)).unwrap();
        let want = SamplingStrategyResponse::from(&StrategyResponse::default());
        assert_eq!(proxy.strategy("a").await, Ok(want.clone()));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert_eq!(proxy.strategy("a").await, Ok(want), "remembered");
        let err = proxy.strategy("never-asked").await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "collector error: cannot get the sampling strategy of service \"never-asked\" from collector {endpoint}: "
            )),
            "{err}"
        );
    }
}
