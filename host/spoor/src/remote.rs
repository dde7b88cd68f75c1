//! Query across ingesters: the ingesters' small internal read endpoint ([`internal_router`],
//! served beside the query API) and [`IngestersStore`], a read-only [`TraceStore`] over several
//! of them that the query role (`--query.ingesters`) answers the Jaeger API from.
//!
//! Merging: services and operations are unions; a trace's spans are the union of what every
//! ingester holds of it (normally one: partitions follow trace ids); a search asks every
//! ingester for its newest matching traces, merges them by trace and re-ranks with the one
//! ordering rule of `spoor_store::rank`; dependency links are summed and span-metric points of
//! one key merged, as the single-node store does. An ingester that does not answer is skipped:
//! the query answers from the rest, logs the ingester and counts it
//! (`spoor_query_ingester_errors_total`); only when none answers is the query an error.
//!
//! The endpoint is internal (its shape may change between versions; the public APIs are the
//! query API's): `POST /spoor/internal/v1/<method>` with a JSON body; traces travel in the
//! `spoor_core::block` encoding, everything else as JSON.
//!
//! Multi-tenancy: a query node authenticates its callers as the all-in-one does and holds one
//! `IngestersStore` per tenant ([`IngestersStore::for_tenant`]), which names the tenant in the
//! [`TENANT_HEADER`] of every call. An ingester with multi-tenancy answers from that tenant's
//! store only (nothing when the tenant has none there yet) and refuses a call without the header
//! (401) or for a tenant it does not know (403); one without multi-tenancy refuses a call that
//! names a tenant (400), so a query node never mixes tenants whatever the ingesters run. Like
//! Tempo's ingesters with `X-Scope-OrgID`, the internal endpoint trusts the header, so only
//! query nodes may reach it: keep the ingesters' query ports private, or run them with TLS and
//! `--tls.client-ca-file` and give the query nodes `https://` ingesters and a client
//! certificate (`--query.ingesters-tls.*`), so only holders of such a certificate get an answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::{Deserialize, Serialize};
use spoor_core::block::{encode_block_refs, BlockReader};
use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};
use spoor_store::{StoreError, StoreResult, StoreStats, TraceStore};
use tokio_rustls::rustls;

use crate::auth::{Denied, TenantId};
use crate::tenants::Gate;

/// Path prefix of the internal endpoint.
pub const INTERNAL_PREFIX: &str = "/spoor/internal/v1";

/// Header naming the tenant of an internal call (the span log's message header, lowercase).
pub const TENANT_HEADER: &str = "spoor-tenant";

/// The store(s) the internal endpoint answers from.
#[derive(Clone)]
pub enum Internal {
    /// Without multi-tenancy: the ingester's one store.
    Single(Arc<dyn TraceStore>),
    /// With multi-tenancy: the store of the tenant each call names.
    Tenants(Arc<Gate>),
}

#[derive(Debug, Serialize, Deserialize)]
struct OperationsReq {
    service: String,
    kind: Option<SpanKind>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DependenciesReq {
    end_nanos: u64,
    lookback_nanos: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SpanMetricsReq {
    services: Vec<String>,
    start_nanos: u64,
    end_nanos: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TraceReq {
    trace_id: TraceId,
}

/// The ingester's internal read endpoint over its store(s).
pub fn internal_router(stores: Internal) -> Router {
    Router::new()
        .route(&format!("{INTERNAL_PREFIX}/{{method}}"), post(internal))
        .with_state(stores)
}

/// The store a call is answered from, or why it is refused.
fn store_of(stores: &Internal, headers: &HeaderMap) -> Result<Arc<dyn TraceStore>, Denied> {
    let named = headers.get(TENANT_HEADER).map(|v| v.to_str());
    match (stores, named) {
        (Internal::Single(store), None) => Ok(store.clone()),
        (Internal::Single(_), Some(_)) => Err(Denied::BadTenant(
            "this ingester runs without multi-tenancy but the query node asked for a tenant: give the ingesters the query node's auth.* / multi-tenancy.* settings".into(),
        )),
        (Internal::Tenants(_), None) => Err(Denied::Unauthenticated(format!(
            "missing {TENANT_HEADER} header: this ingester runs with multi-tenancy, so the query node must too"
        ))),
        (Internal::Tenants(gate), Some(name)) => {
            let name = name.map_err(|_| {
                Denied::BadTenant(format!("invalid tenant name in header {TENANT_HEADER}"))
            })?;
            let tenant = gate.named(name)?;
            Ok(match gate.tenants.existing(&tenant) {
                Some(stack) => stack.store.clone(),
                // nothing of this tenant here (yet): an empty answer, no store created by a read
                None => Arc::new(spoor_store::blackhole::BlackholeStore::default()),
            })
        }
    }
}

async fn internal(
    State(stores): State<Internal>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let store = match store_of(&stores, &headers) {
        Ok(s) => s,
        Err(denied) => return denied.http_response(),
    };
    let res = tokio::task::spawn_blocking(move || answer(&*store, &method, &body)).await;
    match res {
        Ok(Ok(r)) => r,
        Ok(Err((code, msg))) => (code, msg).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("read panicked: {e}"),
        )
            .into_response(),
    }
}

type Answer = Result<Response, (StatusCode, String)>;

fn answer(store: &dyn TraceStore, method: &str, body: &[u8]) -> Answer {
    fn req<T: for<'de> Deserialize<'de>>(
        method: &str,
        body: &[u8],
    ) -> Result<T, (StatusCode, String)> {
        serde_json::from_slice(body).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("invalid {method} request: {e}"),
            )
        })
    }
    let io = |e: StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let blocks = |traces: Vec<Trace>| {
        let bytes = encode_block_refs(traces.iter().flat_map(|t| t.spans.iter()));
        ([("content-type", "application/x-spoor-block")], bytes).into_response()
    };
    Ok(match method {
        "trace" => {
            let r: TraceReq = req(method, body)?;
            blocks(
                store
                    .get_trace(r.trace_id)
                    .map_err(io)?
                    .into_iter()
                    .collect(),
            )
        }
        "find" => {
            let q: TraceQuery = req(method, body)?;
            blocks(store.find_traces(&q).map_err(io)?)
        }
        "services" => Json(store.services().map_err(io)?).into_response(),
        "operations" => {
            let r: OperationsReq = req(method, body)?;
            Json(store.operations(&r.service, r.kind).map_err(io)?).into_response()
        }
        "dependencies" => {
            let r: DependenciesReq = req(method, body)?;
            Json(
                store
                    .dependencies(r.end_nanos, r.lookback_nanos)
                    .map_err(io)?,
            )
            .into_response()
        }
        "span-metrics" => {
            let r: SpanMetricsReq = req(method, body)?;
            Json(
                store
                    .span_metrics(&r.services, r.start_nanos, r.end_nanos)
                    .map_err(io)?,
            )
            .into_response()
        }
        other => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown internal method {other:?}"),
            ))
        }
    })
}

/// A read-only store over the ingesters' internal endpoints. See the module docs.
#[derive(Clone)]
pub struct IngestersStore {
    ingesters: Vec<String>,
    tenant: Option<TenantId>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    errors: Arc<AtomicU64>,
}

impl IngestersStore {
    /// A store over `ingesters` (`http://host:port` or `https://host:port` of their query
    /// ports). `tls` is the client configuration for `https://` ingesters
    /// ([`crate::tls::client_config`]: the CA to trust, and a client certificate for
    /// mutual TLS); an `https://` entry without it is refused. Must be created inside the tokio
    /// runtime whose handle it keeps for its blocking calls; `errors` counts ingesters that did
    /// not answer.
    pub fn new(
        ingesters: Vec<String>,
        timeout: Duration,
        errors: Arc<AtomicU64>,
        tls: Option<rustls::ClientConfig>,
    ) -> anyhow::Result<IngestersStore> {
        for url in &ingesters {
            let uri: http::Uri = url
                .parse()
                .map_err(|e| anyhow::anyhow!("invalid query.ingesters entry {url:?}: {e}"))?;
            match uri.scheme_str() {
                Some("http") | Some("https") if uri.host().is_some() => {}
                _ => anyhow::bail!(
                    "invalid query.ingesters entry {url:?}: expected http://host:port or https://host:port"
                ),
            }
            if uri.scheme_str() == Some("https") && tls.is_none() {
                anyhow::bail!(
                    "query.ingesters entry {url:?} is https:// but query.ingesters-tls.ca-file is not set"
                );
            }
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        // Without TLS settings every entry is http:// (checked above): the TLS side is never
        // used, so it trusts nothing.
        let tls = match tls {
            Some(t) => t,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("tls: {e}"))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(IngestersStore {
            ingesters: ingesters
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            tenant: None,
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector),
            runtime: tokio::runtime::Handle::current(),
            timeout,
            errors,
        })
    }

    /// The same ingesters, asked for `tenant`'s data only (sharing the connection pool).
    pub fn for_tenant(&self, tenant: TenantId) -> IngestersStore {
        IngestersStore {
            tenant: Some(tenant),
            ..self.clone()
        }
    }

    async fn call_one(&self, base: &str, method: &str, body: &[u8]) -> Result<Bytes, String> {
        let mut req = http::Request::post(format!("{base}{INTERNAL_PREFIX}/{method}"))
            .header("content-type", "application/json");
        if let Some(t) = &self.tenant {
            req = req.header(TENANT_HEADER, t.as_str());
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    /// Asks every ingester at once; answers of those that failed are skipped (logged and
    /// counted). Fails only when no ingester answered.
    fn call_all<T>(
        &self,
        method: &str,
        body: &impl Serialize,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> StoreResult<Vec<T>> {
        let body = serde_json::to_vec(body)
            .map_err(|e| StoreError::Io(format!("cannot encode {method} request: {e}")))?;
        let answers = self.runtime.block_on(futures_util::future::join_all(
            self.ingesters
                .iter()
                .map(|base| self.call_one(base, method, &body)),
        ));
        let mut out = Vec::new();
        let mut last = String::new();
        for (base, a) in self.ingesters.iter().zip(answers) {
            match a.and_then(|bytes| parse(&bytes)) {
                Ok(v) => out.push(v),
                Err(e) => {
                    self.errors.fetch_add(1, Relaxed);
                    tracing::warn!(ingester = %base, method, error = %e, "ingester skipped: the answer lacks what it holds");
                    last = format!("{base}: {e}");
                }
            }
        }
        if out.is_empty() && !self.ingesters.is_empty() {
            return Err(StoreError::Io(format!(
                "no ingester answered {method} (last: {last})"
            )));
        }
        Ok(out)
    }

    fn traces(&self, method: &str, body: &impl Serialize) -> StoreResult<Vec<Trace>> {
        let parts = self.call_all(method, body, |bytes| {
            let reader = BlockReader::open(bytes).map_err(|e| format!("bad block: {e}"))?;
            reader.decode_all().map_err(|e| format!("bad block: {e}"))
        })?;
        let mut by_id: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
        for spans in parts {
            for s in spans {
                by_id.entry(s.trace_id).or_default().push(s);
            }
        }
        Ok(by_id
            .into_iter()
            .map(|(trace_id, spans)| Trace { trace_id, spans })
            .collect())
    }
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("bad answer: {e}"))
}

impl TraceStore for IngestersStore {
    fn write_spans(&self, _spans: &[Span]) -> StoreResult<()> {
        Err(StoreError::Io(
            "the query role over ingesters is read-only".into(),
        ))
    }

    fn write_dependencies(&self, _bucket: u64, _links: &[DependencyLink]) -> StoreResult<()> {
        Err(StoreError::Io(
            "the query role over ingesters is read-only".into(),
        ))
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
        Ok(self
            .traces("trace", &TraceReq { trace_id: id })?
            .into_iter()
            .next())
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        let mut all: Vec<String> = self
            .call_all("services", &(), json::<Vec<String>>)?
            .into_iter()
            .flatten()
            .collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    fn operations(&self, service: &str, kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        let req = OperationsReq {
            service: service.to_string(),
            kind,
        };
        let mut all: Vec<Operation> = self
            .call_all("operations", &req, json::<Vec<Operation>>)?
            .into_iter()
            .flatten()
            .collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(self
            .find_traces(query)?
            .iter()
            .map(|t| t.trace_id)
            .collect())
    }

    fn find_traces(&self, query: &TraceQuery) -> StoreResult<Vec<Trace>> {
        let mut traces: BTreeMap<TraceId, Trace> = self
            .traces("find", query)?
            .into_iter()
            .map(|t| (t.trace_id, t))
            .collect();
        let keyed = traces
            .values()
            .filter_map(|t| spoor_store::match_key(query, &t.spans).map(|k| (k, t.trace_id)))
            .collect();
        Ok(spoor_store::rank(keyed, query)
            .into_iter()
            .filter_map(|id| traces.remove(&id))
            .collect())
    }

    fn dependencies(
        &self,
        end_nanos: u64,
        lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        let req = DependenciesReq {
            end_nanos,
            lookback_nanos,
        };
        Ok(spoor_store::merge_links(
            self.call_all("dependencies", &req, json::<Vec<DependencyLink>>)?
                .into_iter()
                .flatten(),
        ))
    }

    fn write_span_metrics(&self, _points: &[RedPoint]) -> StoreResult<()> {
        Err(StoreError::Io(
            "the query role over ingesters is read-only".into(),
        ))
    }

    fn span_metrics(
        &self,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        let req = SpanMetricsReq {
            services: services.to_vec(),
            start_nanos,
            end_nanos,
        };
        Ok(spoor_store::merge_red_points(
            self.call_all("span-metrics", &req, json::<Vec<RedPoint>>)?
                .into_iter()
                .flatten(),
        ))
    }

    fn expire_before(&self, _cutoff_nanos: u64) -> StoreResult<u64> {
        // each ingester applies its own retention
        Ok(0)
    }

    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_store::conformance::{self, Capabilities};
    use spoor_store::memory::MemoryStore;

    /// Two ingesters on 127.0.0.1 (their real internal endpoint over memory stores), written the
    /// way the span log writes them (each trace to the ingester owning its partition), read
    /// through [`IngestersStore`] — plus a third address where nothing listens.
    struct Cluster {
        parts: Vec<Arc<MemoryStore>>,
        read: IngestersStore,
        _servers: Vec<tokio::task::JoinHandle<()>>,
    }

    fn cluster(rt: &tokio::runtime::Handle) -> Cluster {
        let parts: Vec<Arc<MemoryStore>> = (0..2)
            .map(|_| Arc::new(MemoryStore::new(100_000)))
            .collect();
        let mut urls = Vec::new();
        let mut servers = Vec::new();
        for p in &parts {
            let router = internal_router(Internal::Single(p.clone()));
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            urls.push(format!("http://{}", listener.local_addr().unwrap()));
            servers.push(rt.spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        // nothing listens on the discard port: a down ingester
        urls.push("http://127.0.0.1:9".to_string());
        let read = rt
            .block_on(async {
                IngestersStore::new(
                    urls,
                    Duration::from_secs(5),
                    Arc::new(AtomicU64::new(0)),
                    None,
                )
            })
            .unwrap();
        Cluster {
            parts,
            read,
            _servers: servers,
        }
    }

    impl TraceStore for Cluster {
        fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
            for (i, part) in self.parts.iter().enumerate() {
                let mine: Vec<Span> = spans
                    .iter()
                    .filter(|s| crate::spanlog::partition_of(s.trace_id, 2) as usize == i)
                    .cloned()
                    .collect();
                part.write_spans(&mine)?;
            }
            Ok(())
        }
        fn write_dependencies(&self, bucket: u64, links: &[DependencyLink]) -> StoreResult<()> {
            // split across ingesters: reading must sum them
            let (a, b) = links.split_at(links.len() / 2);
            self.parts[0].write_dependencies(bucket, a)?;
            self.parts[1].write_dependencies(bucket, b)
        }
        fn flush(&self) -> StoreResult<()> {
            Ok(())
        }
        fn get_trace(&self, id: TraceId) -> StoreResult<Option<Trace>> {
            self.read.get_trace(id)
        }
        fn services(&self) -> StoreResult<Vec<String>> {
            self.read.services()
        }
        fn operations(&self, s: &str, k: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
            self.read.operations(s, k)
        }
        fn find_trace_ids(&self, q: &TraceQuery) -> StoreResult<Vec<TraceId>> {
            self.read.find_trace_ids(q)
        }
        fn find_traces(&self, q: &TraceQuery) -> StoreResult<Vec<Trace>> {
            self.read.find_traces(q)
        }
        fn dependencies(&self, end: u64, lookback: u64) -> StoreResult<Vec<DependencyLink>> {
            self.read.dependencies(end, lookback)
        }
        fn write_span_metrics(&self, points: &[RedPoint]) -> StoreResult<()> {
            // every point to both halves, halved counts would not merge back exactly; alternate
            for (i, p) in points.iter().enumerate() {
                self.parts[i % 2].write_span_metrics(std::slice::from_ref(p))?;
            }
            Ok(())
        }
        fn span_metrics(&self, s: &[String], start: u64, end: u64) -> StoreResult<Vec<RedPoint>> {
            self.read.span_metrics(s, start, end)
        }
        fn expire_before(&self, cutoff: u64) -> StoreResult<u64> {
            let mut n = 0;
            for p in &self.parts {
                n += p.expire_before(cutoff)?;
            }
            Ok(n)
        }
        fn stats(&self) -> StoreStats {
            StoreStats {
                spans_written: self.parts.iter().map(|p| p.stats().spans_written).sum(),
                ..Default::default()
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_suite_through_two_ingesters_and_a_down_one() {
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            conformance::run_all(
                || {
                    let c = cluster(&rt);
                    errors.push(c.read.errors.clone());
                    c
                },
                Capabilities { expires: false },
            );
            // the reads skipped the down ingester, and counted it (`stats` reads nothing)
            let skipped: Vec<u64> = errors.iter().map(|e| e.load(Relaxed)).collect();
            assert_eq!(
                skipped.iter().filter(|&&n| n == 0).count(),
                1,
                "{skipped:?}"
            );
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_ingester_answering_is_an_error_naming_the_method() {
        let store = IngestersStore::new(
            vec!["http://127.0.0.1:9".into()],
            Duration::from_secs(5),
            Arc::new(AtomicU64::new(0)),
            None,
        )
        .unwrap();
        let err = tokio::task::spawn_blocking(move || store.services().unwrap_err())
            .await
            .unwrap();
        assert!(
            err.to_string().starts_with(
                "storage i/o failed: no ingester answered services (last: http://127.0.0.1:9: "
            ),
            "{err}"
        );
    }

    #[test]
    fn an_ingester_without_tenancy_refuses_a_call_naming_a_tenant() {
        let stores = Internal::Single(Arc::new(MemoryStore::new(10)));
        let mut h = HeaderMap::new();
        assert!(store_of(&stores, &h).is_ok());
        h.insert(TENANT_HEADER, http::HeaderValue::from_static("a"));
        let err = store_of(&stores, &h).err().unwrap();
        assert!(matches!(err, Denied::BadTenant(_)), "{err}");
        assert_eq!(err.http_response().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn ingester_urls_are_checked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        for (url, want) in [
            (
                "ftp://x:1",
                "invalid query.ingesters entry \"ftp://x:1\": expected http://host:port or https://host:port",
            ),
            ("http://", "invalid query.ingesters entry \"http://\": "),
            (
                "https://x:1",
                "query.ingesters entry \"https://x:1\" is https:// but query.ingesters-tls.ca-file is not set",
            ),
        ] {
            let err = IngestersStore::new(
                vec![url.into()],
                Duration::from_secs(1),
                Arc::default(),
                None,
            )
                .err()
                .unwrap()
                .to_string();
            assert!(err.starts_with(want), "{url}: {err}");
        }
    }
}
