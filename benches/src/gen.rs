//! The trace generator: realistic, reproducible traces (service call trees with HTTP, database
//! and internal spans, semantic-convention attributes and errors) from a seeded PRNG.
//!
//! Shape: spans are laid out breadth-first in a complete tree of `depth` levels whose inner
//! spans each have `fanout` children, cut off at `spans_per_trace`. When that tree cannot hold
//! `spans_per_trace` spans, the fan-out is widened to the smallest one that can (the depth is
//! kept; a depth of 1 becomes 2, since a trace with more than one span needs two levels).
//! Every child lies within its parent in time, and the root ends before `now`.

use std::sync::Arc;

use spoor_core::{
    AnyValue, Event, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

use crate::rng::SplitMix64;

/// Most spans one generated trace may have.
pub const MAX_SPANS_PER_TRACE: usize = 100_000;

/// Service names used first; more services get numbered variants (`frontend-2`, …).
pub const SERVICE_NAMES: &[&str] = &[
    "frontend",
    "cart",
    "checkout",
    "payment",
    "shipping",
    "currency",
    "email",
    "recommendation",
    "ad",
    "product-catalog",
    "quote",
    "accounting",
    "fraud-detection",
    "inventory",
    "auth",
    "user-profile",
    "search",
    "notification",
];

const ROUTES: &[&str] = &[
    "/api/cart",
    "/api/cart/{id}",
    "/api/checkout",
    "/api/products",
    "/api/products/{id}",
    "/api/recommendations",
    "/api/currency/convert",
    "/api/shipping/quote",
    "/api/users/{id}",
    "/api/orders/{id}",
    "/api/search",
    "/api/ads",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const DB_SYSTEMS: &[(&str, &str)] = &[
    ("postgresql", "SELECT"),
    ("redis", "GET"),
    ("mongodb", "find"),
    ("mysql", "SELECT"),
];
const TABLES: &[&str] = &[
    "orders",
    "carts",
    "products",
    "users",
    "sessions",
    "inventory",
];
const INTERNAL_OPS: &[&str] = &[
    "render-template",
    "compute-tax",
    "serialize-response",
    "validate-input",
    "apply-discounts",
    "resolve-feature-flags",
];
const LANGUAGES: &[(&str, &str)] = &[
    ("go", "go.opentelemetry.io/otel"),
    ("java", "io.opentelemetry.javaagent"),
    ("python", "opentelemetry.instrumentation"),
    ("nodejs", "@opentelemetry/instrumentation-http"),
    ("rust", "opentelemetry-rust"),
];
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// Number of distinct services (at least 1).
    pub services: usize,
    /// Levels of the span tree (at least 1; the root is level 1).
    pub depth: usize,
    /// Children per inner span (at least 1), widened when the tree is too small.
    pub fanout: usize,
    /// Spans per trace, `1..=MAX_SPANS_PER_TRACE`.
    pub spans_per_trace: usize,
    /// Attributes per span: semantic-convention ones first, then `app.attr.N` strings.
    pub attrs: usize,
    /// Length of the `app.attr.N` string values, in bytes.
    pub attr_bytes: usize,
    /// Probability that a span fails (`0..=1`).
    pub error_rate: f64,
    /// PRNG seed; the same seed and config give the same traces.
    pub seed: u64,
    /// "Now", nanoseconds since the epoch: every trace ends at or before it.
    pub now_nanos: u64,
    /// Traces start up to this long before now.
    pub time_spread_nanos: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            services: 8,
            depth: 4,
            fanout: 3,
            spans_per_trace: 20,
            attrs: 8,
            attr_bytes: 16,
            error_rate: 0.01,
            seed: 1,
            now_nanos: 1_764_028_800_000_000_000,
            time_spread_nanos: 300_000_000_000,
        }
    }
}

/// An invalid generator setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    /// `services` was 0.
    #[error("services must be at least 1, got {0}")]
    Services(usize),
    /// `depth` was 0.
    #[error("depth must be at least 1, got {0}")]
    Depth(usize),
    /// `fanout` was 0.
    #[error("fan-out must be at least 1, got {0}")]
    Fanout(usize),
    /// `spans_per_trace` out of range.
    #[error("spans per trace must be in 1..={MAX_SPANS_PER_TRACE}, got {0}")]
    SpansPerTrace(usize),
    /// `error_rate` outside `[0, 1]`.
    #[error("error rate must be in 0..1, got {0}")]
    ErrorRate(f64),
}

impl GenConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), GenError> {
        if self.services == 0 {
            return Err(GenError::Services(self.services));
        }
        if self.depth == 0 {
            return Err(GenError::Depth(self.depth));
        }
        if self.fanout == 0 {
            return Err(GenError::Fanout(self.fanout));
        }
        if self.spans_per_trace == 0 || self.spans_per_trace > MAX_SPANS_PER_TRACE {
            return Err(GenError::SpansPerTrace(self.spans_per_trace));
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(GenError::ErrorRate(self.error_rate));
        }
        Ok(())
    }

    /// The fan-out actually used: the configured one, widened until a tree of `depth` levels
    /// (at least 2 when there is more than one span) holds `spans_per_trace` spans.
    pub fn effective_fanout(&self) -> usize {
        let n = self.spans_per_trace;
        if n <= 1 {
            return self.fanout.max(1);
        }
        let depth = self.depth.max(2);
        let mut f = self.fanout.max(1);
        while tree_capacity(f, depth) < n {
            f += 1;
        }
        f
    }
}

/// Nodes in a complete tree of `depth` levels with fan-out `f` (saturating).
fn tree_capacity(f: usize, depth: usize) -> usize {
    let mut total: usize = 0;
    let mut level: usize = 1;
    for _ in 0..depth {
        total = total.saturating_add(level);
        if total >= MAX_SPANS_PER_TRACE {
            return total;
        }
        level = level.saturating_mul(f);
    }
    total
}

/// One service: its shared resource and scope.
#[derive(Debug)]
struct Service {
    resource: Arc<Resource>,
    scope: Arc<Scope>,
}

/// What a span does, which decides its name, kind and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Http,
    Db,
    Internal,
}

/// Generates traces. Deterministic for a given [`GenConfig`].
#[derive(Debug)]
pub struct Generator {
    cfg: GenConfig,
    fanout: usize,
    rng: SplitMix64,
    services: Vec<Service>,
}

impl Generator {
    /// A generator for `cfg`, after checking it.
    pub fn new(cfg: GenConfig) -> Result<Self, GenError> {
        cfg.validate()?;
        let mut rng = SplitMix64::new(cfg.seed);
        let services = (0..cfg.services)
            .map(|i| make_service(i, &mut rng))
            .collect();
        Ok(Generator {
            fanout: cfg.effective_fanout(),
            cfg,
            rng,
            services,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// The next trace: exactly `spans_per_trace` spans, root first, in breadth-first order.
    pub fn next_trace(&mut self) -> Vec<Span> {
        let n = self.cfg.spans_per_trace;
        let f = self.fanout;
        let trace_id = TraceId(self.rng.nonzero_u128());
        let mut spans: Vec<Span> = Vec::with_capacity(n);
        // Per span: service index and role, needed by its children.
        let mut meta: Vec<(usize, Role)> = Vec::with_capacity(n);

        // Root: the frontend serving an HTTP request, ending before now.
        let root_dur = 5_000_000 + self.rng.below(1_500_000_000);
        let spread = self.rng.below(self.cfg.time_spread_nanos.max(1));
        let root_start = self
            .cfg
            .now_nanos
            .saturating_sub(root_dur)
            .saturating_sub(spread);
        let root = self.make_span(
            trace_id,
            None,
            0,
            Role::Http,
            SpanKind::Server,
            root_start,
            root_dur,
        );
        spans.push(root);
        meta.push((0, Role::Http));

        for i in 1..n {
            // Complete f-ary tree in breadth-first order: the parent of i is (i - 1) / f.
            let p = (i - 1) / f;
            let (parent_svc, _) = meta[p];
            let (parent_start, parent_dur, parent_id) = {
                let ps = &spans[p];
                (ps.start_unix_nanos, ps.duration_nanos as u64, ps.span_id)
            };
            // The child starts in the first tenth of the parent and ends within it.
            let offset = self.rng.below(parent_dur / 10 + 1);
            let room = parent_dur - offset;
            let dur = room / 2 + self.rng.below(room - room / 2 + 1);
            let dur = dur.min(room);
            let start = parent_start + offset;

            let (svc, role, kind) = if self.services.len() > 1 && self.rng.chance(0.5) {
                let mut s = self.rng.below(self.services.len() as u64) as usize;
                if s == parent_svc {
                    s = (s + 1) % self.services.len();
                }
                (s, Role::Http, SpanKind::Server)
            } else if self.rng.chance(0.5) {
                (parent_svc, Role::Db, SpanKind::Client)
            } else {
                (parent_svc, Role::Internal, SpanKind::Internal)
            };
            let span = self.make_span(trace_id, Some(parent_id), svc, role, kind, start, dur);
            spans.push(span);
            meta.push((svc, role));
        }
        spans
    }

    #[allow(clippy::too_many_arguments)]
    fn make_span(
        &mut self,
        trace_id: TraceId,
        parent: Option<SpanId>,
        svc: usize,
        role: Role,
        kind: SpanKind,
        start: u64,
        dur: u64,
    ) -> Span {
        let is_error = self.rng.chance(self.cfg.error_rate);
        let want = self.cfg.attrs;
        let mut attributes: Vec<KeyValue> = Vec::with_capacity(want);
        let name = match role {
            Role::Http => {
                let method = *self.rng.pick(METHODS);
                let route = *self.rng.pick(ROUTES);
                let status = if is_error {
                    *self.rng.pick(&[500i64, 502, 503, 504])
                } else {
                    *self.rng.pick(&[200i64, 200, 200, 201, 204])
                };
                let peer = self.services[svc].resource.service_name.clone();
                attributes.extend([
                    KeyValue::string("http.method", method),
                    KeyValue::string("http.route", route),
                    KeyValue::new("http.status_code", AnyValue::Int(status)),
                    KeyValue::string("net.peer.name", peer),
                    KeyValue::string("http.scheme", "http"),
                    KeyValue::new("net.peer.port", AnyValue::Int(8080)),
                    KeyValue::string("http.user_agent", "spoor-loadgen/0.1"),
                ]);
                format!("{method} {route}")
            }
            Role::Db => {
                let (system, verb) = *self.rng.pick(DB_SYSTEMS);
                let table = *self.rng.pick(TABLES);
                attributes.extend([
                    KeyValue::string("db.system", system),
                    KeyValue::string("db.name", "shop"),
                    KeyValue::string("db.operation", verb),
                    KeyValue::string("db.sql.table", table),
                    KeyValue::string("net.peer.name", format!("{system}.db.internal")),
                    KeyValue::string(
                        "db.statement",
                        format!("{verb} * FROM {table} WHERE id = ?"),
                    ),
                ]);
                format!("{verb} {table}")
            }
            Role::Internal => {
                let op = *self.rng.pick(INTERNAL_OPS);
                attributes.extend([
                    KeyValue::string("code.function", op),
                    KeyValue::string("code.namespace", "app.handlers"),
                    KeyValue::new("app.items", AnyValue::Int(self.rng.below(50) as i64)),
                ]);
                op.to_string()
            }
        };
        attributes.truncate(want);
        let mut extra = 0;
        while attributes.len() < want {
            let value = self.random_text(self.cfg.attr_bytes);
            attributes.push(KeyValue::string(format!("app.attr.{extra}"), value));
            extra += 1;
        }
        let (status, events) = if is_error {
            let message = "upstream request failed".to_string();
            let event = Event {
                time_unix_nanos: start + dur / 2,
                name: "exception".into(),
                attributes: vec![
                    KeyValue::string("exception.type", "ConnectionResetError"),
                    KeyValue::string("exception.message", message.clone()),
                ],
                dropped_attributes_count: 0,
            };
            (
                Status {
                    code: StatusCode::Error,
                    message,
                },
                vec![event],
            )
        } else {
            (Status::default(), Vec::new())
        };
        let service = &self.services[svc];
        Span {
            trace_id,
            span_id: SpanId(self.rng.nonzero_u64()),
            parent_span_id: parent,
            flags: 1,
            name,
            kind,
            start_unix_nanos: start,
            duration_nanos: i64::try_from(dur).unwrap_or(i64::MAX),
            status,
            attributes,
            events,
            resource: Arc::clone(&service.resource),
            scope: Arc::clone(&service.scope),
            ..Default::default()
        }
    }

    fn random_text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(*self.rng.pick(ALNUM)))
            .collect()
    }
}

fn service_name(i: usize) -> String {
    let base = SERVICE_NAMES[i % SERVICE_NAMES.len()];
    match i / SERVICE_NAMES.len() {
        0 => base.to_string(),
        k => format!("{base}-{}", k + 1),
    }
}

fn make_service(i: usize, rng: &mut SplitMix64) -> Service {
    let name = service_name(i);
    let (lang, lib) = *rng.pick(LANGUAGES);
    let resource = Resource {
        service_name: name.clone(),
        attributes: vec![
            KeyValue::string(
                "service.version",
                format!("1.{}.{}", rng.below(20), rng.below(10)),
            ),
            KeyValue::string("service.namespace", "shop"),
            KeyValue::string("host.name", format!("{name}-{:05x}", rng.below(1 << 20))),
            KeyValue::string("telemetry.sdk.language", lang),
            KeyValue::string("telemetry.sdk.name", "opentelemetry"),
            KeyValue::string("deployment.environment", "load-test"),
        ],
        dropped_attributes_count: 0,
    };
    let scope = Scope {
        name: lib.to_string(),
        version: "1.30.0".into(),
        ..Default::default()
    };
    Service {
        resource: Arc::new(resource),
        scope: Arc::new(scope),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn cfg(spans: usize, depth: usize, fanout: usize) -> GenConfig {
        GenConfig {
            spans_per_trace: spans,
            depth,
            fanout,
            ..GenConfig::default()
        }
    }

    /// Checks one trace: one root, every parent present, children inside parents, one trace
    /// id, unique span ids; returns the depth (levels) of the tree.
    fn check_tree(spans: &[Span], now: u64) -> usize {
        let by_id: HashMap<SpanId, &Span> = spans.iter().map(|s| (s.span_id, s)).collect();
        assert_eq!(by_id.len(), spans.len(), "span ids are unique");
        let roots: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .collect();
        assert_eq!(roots.len(), 1, "exactly one root");
        let trace_ids: HashSet<TraceId> = spans.iter().map(|s| s.trace_id).collect();
        assert_eq!(trace_ids.len(), 1);
        assert!(roots[0].end_unix_nanos() <= now, "root ends before now");
        let mut max_level = 1;
        for s in spans {
            assert!(s.duration_nanos >= 0);
            let mut level = 1;
            let mut cur: &Span = s;
            while let Some(pid) = cur.parent_span_id {
                let parent = by_id.get(&pid).expect("parent exists in the trace");
                if cur.span_id == s.span_id {
                    assert!(
                        parent.start_unix_nanos <= s.start_unix_nanos,
                        "child starts within parent"
                    );
                    assert!(
                        s.end_unix_nanos() <= parent.end_unix_nanos(),
                        "child ends within parent"
                    );
                }
                cur = parent;
                level += 1;
                assert!(level <= spans.len(), "no cycles");
            }
            max_level = max_level.max(level);
        }
        max_level
    }

    #[test]
    fn span_counts_and_shapes_are_exact() {
        // (spans per trace, depth, fan-out, expected levels, expected effective fan-out)
        let cases: &[(usize, usize, usize, usize, usize)] = &[
            (1, 4, 3, 1, 3),
            (2, 1, 1, 2, 1),
            (13, 3, 3, 3, 3),    // a full tree: 1 + 3 + 9
            (10, 3, 3, 3, 3),    // truncated
            (40, 3, 3, 3, 6),    // extended: fan-out widened to 6 (1 + 6 + 36 >= 40)
            (100, 1, 2, 2, 99),  // depth 1 with many spans: a star
            (50, 100, 1, 50, 1), // a chain
            (1000, 5, 4, 5, 6),
        ];
        for &(n, depth, fanout, levels, eff) in cases {
            let c = cfg(n, depth, fanout);
            assert_eq!(
                c.effective_fanout(),
                eff,
                "fan-out for {n}/{depth}/{fanout}"
            );
            let mut g = Generator::new(c.clone()).unwrap();
            for _ in 0..3 {
                let t = g.next_trace();
                assert_eq!(t.len(), n, "span count for {n}/{depth}/{fanout}");
                assert_eq!(
                    check_tree(&t, c.now_nanos),
                    levels,
                    "levels for {n}/{depth}/{fanout}"
                );
            }
        }
    }

    #[test]
    fn largest_trace_is_valid() {
        let c = cfg(MAX_SPANS_PER_TRACE, 6, 8);
        let mut g = Generator::new(c.clone()).unwrap();
        let t = g.next_trace();
        assert_eq!(t.len(), MAX_SPANS_PER_TRACE);
        assert!(check_tree(&t, c.now_nanos) <= 6);
    }

    #[test]
    fn error_rate_is_roughly_honoured() {
        for rate in [0.0, 0.1, 0.5, 1.0] {
            let mut g = Generator::new(GenConfig {
                error_rate: rate,
                seed: 42,
                ..cfg(100, 4, 3)
            })
            .unwrap();
            let spans: Vec<Span> = (0..100).flat_map(|_| g.next_trace()).collect();
            let errors = spans.iter().filter(|s| s.is_error()).count() as f64;
            let observed = errors / spans.len() as f64;
            assert!(
                (observed - rate).abs() < 0.02,
                "rate {rate}: observed {observed}"
            );
        }
    }

    #[test]
    fn attributes_services_and_determinism() {
        let c = GenConfig {
            attrs: 12,
            attr_bytes: 33,
            services: 30,
            seed: 9,
            ..cfg(200, 4, 4)
        };
        let a = Generator::new(c.clone()).unwrap().next_trace();
        let b = Generator::new(c.clone()).unwrap().next_trace();
        assert_eq!(a, b, "same seed, same trace");
        let other = Generator::new(GenConfig { seed: 10, ..c })
            .unwrap()
            .next_trace();
        assert_ne!(a[0].trace_id, other[0].trace_id);
        for s in &a {
            assert_eq!(s.attributes.len(), 12);
            for kv in s
                .attributes
                .iter()
                .filter(|kv| kv.key.starts_with("app.attr."))
            {
                assert_eq!(kv.value.as_str().map(str::len), Some(33));
            }
            assert!(!s.service().is_empty());
        }
        assert_eq!(a[0].service(), "frontend");
        assert_eq!(a[0].kind, SpanKind::Server);
        let services: HashSet<&str> = a.iter().map(Span::service).collect();
        assert!(
            services.len() > 5,
            "calls spread over services: {services:?}"
        );
        assert_eq!(service_name(18), "frontend-2");
        // Semantic attributes come first.
        let http = a.iter().find(|s| s.kind == SpanKind::Server).unwrap();
        assert_eq!(http.attributes[0].key, "http.method");
        assert!(http.name.contains(" /api/"));
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: &[(GenConfig, &str)] = &[
            (cfg(0, 3, 3), "spans per trace must be in 1..=100000, got 0"),
            (
                cfg(100_001, 3, 3),
                "spans per trace must be in 1..=100000, got 100001",
            ),
            (cfg(10, 0, 3), "depth must be at least 1, got 0"),
            (cfg(10, 3, 0), "fan-out must be at least 1, got 0"),
            (
                GenConfig {
                    services: 0,
                    ..cfg(10, 3, 3)
                },
                "services must be at least 1, got 0",
            ),
            (
                GenConfig {
                    error_rate: 1.5,
                    ..cfg(10, 3, 3)
                },
                "error rate must be in 0..1, got 1.5",
            ),
        ];
        for (c, msg) in cases {
            assert_eq!(Generator::new(c.clone()).unwrap_err().to_string(), *msg);
        }
    }
}
