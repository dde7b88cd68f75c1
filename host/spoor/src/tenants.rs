//! Multi-tenancy by construction: the [`Tenants`] registry maps each tenant to its own stack
//! (its own `TraceStore` instance, its own pipeline with its queue, batcher, span metrics,
//! dependency links, adaptive sampling and tail sampler), and [`Gate`] puts [`Auth`] in front
//! of it. Every entry point asks the gate for the request's stack before it reads the body and
//! hands the request to a router or gRPC method built over that stack alone
//! ([`tenant_router`], `grpc_codec::UnaryServer::per_tenant`), so a request of tenant A has no
//! path to tenant B's data.
//!
//! Without tenancy none of this runs: the daemon builds today's one stack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::{Mutex, RwLock};
use spoor_objstore::Bucket;
use spoor_store::embedded::SledStore;
use spoor_store::TraceStore;
use tower::ServiceExt;

use crate::auth::{Auth, Denied, TenantId};
use crate::ingest::Ingest;
use crate::pipeline::Pipeline;
use crate::sampling::StrategyProvider;

/// Directory under `--data-dir` holding one sled store per tenant.
pub const TENANTS_DIR: &str = "tenants";

/// One tenant's pieces.
pub struct TenantStack {
    /// The tenant.
    pub name: TenantId,
    /// Its own store.
    pub store: Arc<dyn TraceStore>,
    /// Its own pipeline (`None` in the query role, which does not receive spans).
    pub pipeline: Option<Arc<Pipeline>>,
    /// Its strategies: its own adaptive calculator, or the shared file / default.
    pub sampling: StrategyProvider,
    /// With object storage on a sled role: its sled head and its own prefix of the bucket
    /// (`<prefix>/tenants/<tenant>`), which the sealer moves ended partitions into.
    pub sealed: Option<(Arc<SledStore>, Bucket)>,
}

impl TenantStack {
    /// The pipeline as receivers hold it.
    pub fn ingest(&self) -> Option<Arc<dyn Ingest>> {
        self.pipeline.clone().map(|p| p as Arc<dyn Ingest>)
    }
}

/// Builds a tenant's stack (opens its store, starts its pipeline). Runs on the blocking pool,
/// inside the tokio runtime.
pub type StackFactory = dyn Fn(&TenantId) -> anyhow::Result<TenantStack> + Send + Sync;

/// Tenant -> stack, created lazily on a tenant's first request, at most `max` of them.
pub struct Tenants {
    stacks: RwLock<BTreeMap<TenantId, Arc<TenantStack>>>,
    creating: tokio::sync::Mutex<()>,
    max: usize,
    factory: Box<StackFactory>,
}

impl Tenants {
    /// An empty registry.
    pub fn new(max: usize, factory: Box<StackFactory>) -> Arc<Tenants> {
        Arc::new(Tenants {
            stacks: RwLock::new(BTreeMap::new()),
            creating: tokio::sync::Mutex::new(()),
            max,
            factory,
        })
    }

    /// The stack of `tenant`, created on first use. Refused (403) once `max` stacks exist; a
    /// store that cannot be opened is 503 (the cause is logged, not sent).
    pub async fn get(self: &Arc<Self>, tenant: &TenantId) -> Result<Arc<TenantStack>, Denied> {
        if let Some(s) = self.stacks.read().get(tenant) {
            return Ok(Arc::clone(s));
        }
        let _one_at_a_time = self.creating.lock().await;
        if let Some(s) = self.stacks.read().get(tenant) {
            return Ok(Arc::clone(s));
        }
        if self.stacks.read().len() >= self.max {
            return Err(Denied::Forbidden(format!(
                "tenant {:?} refused: the limit of {} tenants is reached (multi-tenancy.max-tenants)",
                tenant.as_str(),
                self.max
            )));
        }
        let me = Arc::clone(self);
        let t = tenant.clone();
        let built = tokio::task::spawn_blocking(move || (me.factory)(&t)).await;
        let unavailable = || {
            Denied::Unavailable(format!(
                "the storage of tenant {:?} cannot be opened",
                tenant.as_str()
            ))
        };
        match built {
            Ok(Ok(stack)) => {
                let stack = Arc::new(stack);
                self.stacks
                    .write()
                    .insert(tenant.clone(), Arc::clone(&stack));
                tracing::info!(tenant = %tenant, "tenant stack created");
                Ok(stack)
            }
            Ok(Err(e)) => {
                tracing::error!(tenant = %tenant, error = %format!("{e:#}"), "cannot create the tenant's stack");
                Err(unavailable())
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "creating the tenant's stack panicked");
                Err(unavailable())
            }
        }
    }

    /// The stack of `tenant` if it exists already (never creates one).
    pub fn existing(&self, tenant: &TenantId) -> Option<Arc<TenantStack>> {
        self.stacks.read().get(tenant).cloned()
    }

    /// Every stack created so far.
    pub fn all(&self) -> Vec<Arc<TenantStack>> {
        self.stacks.read().values().cloned().collect()
    }

    /// Opens the stack of every tenant directory under `data_dir/tenants` (sled), so a restart
    /// serves every tenant's data; directories that are not tenant names are skipped with a
    /// warning.
    pub async fn open_existing(self: &Arc<Self>, data_dir: &Path) -> anyhow::Result<usize> {
        let dir = data_dir.join(TENANTS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => anyhow::bail!("cannot list tenant stores in {}: {e}", dir.display()),
        };
        let mut opened = 0;
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(tenant) = name.to_str().and_then(|n| TenantId::parse(n).ok()) else {
                tracing::warn!(dir = %entry.path().display(), "not a tenant name; skipped");
                continue;
            };
            self.get(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reopen tenant {tenant}: {e}"))?;
            opened += 1;
        }
        Ok(opened)
    }
}

/// Authentication in front of the registry: the one way an entry point gets a stack.
pub struct Gate {
    /// Who the caller is.
    pub auth: Auth,
    /// Their stacks.
    pub tenants: Arc<Tenants>,
}

impl Gate {
    /// The stack of the request with `headers`, or why it is refused.
    pub async fn stack(&self, headers: &http::HeaderMap) -> Result<Arc<TenantStack>, Denied> {
        let tenant = self.auth.resolve(headers)?;
        self.tenants.get(&tenant).await
    }

    /// A tenant named without credentials — on a span-log message (from a collector that
    /// authenticated the sender) or by a query node on the ingesters' internal endpoint: the
    /// name must be valid (400) and known to this daemon ([`Auth::check_known`], 403).
    pub fn named(&self, name: &str) -> Result<TenantId, Denied> {
        let tenant = TenantId::parse(name).map_err(Denied::BadTenant)?;
        self.auth.check_known(&tenant)?;
        Ok(tenant)
    }
}

/// What a tenant router serves without a tenant (the query port's UI files and
/// `/api/ui-config`): the router and which paths go to it.
pub struct Public {
    /// Serves the public paths.
    pub router: Router,
    /// Whether a request path is public.
    pub is_public: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

type MakeRouter = dyn Fn(&TenantStack) -> Option<Router> + Send + Sync;

struct Dispatch {
    gate: Arc<Gate>,
    make: Box<MakeRouter>,
    public: Option<Public>,
    routers: Mutex<HashMap<TenantId, Router>>,
}

/// A router that resolves each request's tenant (401/403 before the body is read) and hands it
/// to the router `make` built over that tenant's stack (built once per tenant, then cached).
/// `make` answers `None` when the stack lacks what the router needs (503).
pub fn tenant_router(
    gate: Arc<Gate>,
    make: impl Fn(&TenantStack) -> Option<Router> + Send + Sync + 'static,
    public: Option<Public>,
) -> Router {
    let d = Arc::new(Dispatch {
        gate,
        make: Box::new(make),
        public,
        routers: Mutex::new(HashMap::new()),
    });
    Router::new().fallback(move |req: Request| dispatch(Arc::clone(&d), req))
}

async fn dispatch(d: Arc<Dispatch>, req: Request) -> Response {
    if let Some(p) = &d.public {
        if (p.is_public)(req.uri().path()) {
            return p.router.clone().oneshot(req).await.into_response();
        }
    }
    let stack = match d.gate.stack(req.headers()).await {
        Ok(s) => s,
        Err(denied) => return denied.http_response(),
    };
    let cached = d.routers.lock().get(&stack.name).cloned();
    let router = match cached {
        Some(r) => r,
        None => match (d.make)(&stack) {
            Some(r) => {
                d.routers.lock().insert(stack.name.clone(), r.clone());
                r
            }
            None => {
                return Denied::Unavailable("this role does not receive spans".to_string())
                    .http_response()
            }
        },
    };
    router.oneshot(req).await.into_response()
}
