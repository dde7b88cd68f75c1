//! The one conformance suite every [`TraceStore`] backend runs (Jaeger v2's storage
//! integration test idea): fixed fixture traces, written in several batches, then every read of
//! the contract compared with a reference answer computed from the fixture with
//! [`TraceQuery::matches_trace`].
//!
//! The suite is compiled always (no test framework needed) so other crates can run it against
//! their own backends: `run_all(|| MyStore::new(), Capabilities { expires: false })`. Checks
//! panic with a message naming the check and the case, as test assertions do.

use std::sync::Arc;

use spoor_core::red::{LatencyHistogram, RedPoint};
use spoor_core::{
    AnyValue, DependencyLink, Event, KeyValue, Link, Operation, Resource, Scope, Span, SpanId,
    SpanKind, Status, StatusCode, Trace, TraceId, TraceQuery,
};

use crate::{match_key, rank, TraceStore};

/// What a backend can do beyond the common contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    /// `expire_before` drops whole time partitions (otherwise it must return 0 and keep data).
    pub expires: bool,
}

/// One nanosecond-precise millisecond.
pub const MS: u64 = 1_000_000;
/// One second in nanoseconds.
pub const SEC: u64 = 1_000 * MS;
/// One hour in nanoseconds.
pub const HOUR: u64 = 3_600 * SEC;
/// The fixture's reference time (2023-11-14T22:13:20Z, 13 min 20 s into its hour).
pub const BASE: u64 = 1_700_000_000 * SEC;
/// Start of the old trace, in a partition that `expire_before(BASE - 5 h)` drops.
pub const OLD: u64 = BASE - 10 * HOUR;

/// The checkout trace (5 services-worth of kinds, every tag type, events, links, errors).
pub const CHECKOUT: TraceId = TraceId(0xc0ff_ee00_0000_0000_0000_0000_0000_0001);
/// The 1,000-span trace.
pub const BIG: TraceId = TraceId(0xb16b_0000_0000_0000_0000_0000_0000_0001);
/// The trace written across three batches, one span two hours after the others.
pub const SPLIT: TraceId = TraceId(0x5b11_7000_0000_0000_0000_0000_0000_0001);
/// The trace in an old partition.
pub const ARCHIVED: TraceId = TraceId(0x01d0_0000_0000_0000_0000_0000_0000_0001);
/// Number of one-span load traces.
pub const LOAD_TRACES: u64 = 30;

/// The id of load trace `i`.
pub fn load_id(i: u64) -> TraceId {
    TraceId(0x10ad_0000_0000_0000_0000_0000_0000_0000 | u128::from(i))
}

/// The fixture: the batches to write, in order, and the traces they add up to.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Batches for `write_spans`, written in this order.
    pub batches: Vec<Vec<Span>>,
    /// Every trace: the union of all batches, grouped by trace id.
    pub traces: Vec<Trace>,
}

impl Fixture {
    /// Total number of spans written (duplicates included).
    pub fn span_count(&self) -> u64 {
        self.batches.iter().map(|b| b.len() as u64).sum()
    }

    /// The fixture trace with this id.
    pub fn trace(&self, id: TraceId) -> &Trace {
        self.traces
            .iter()
            .find(|t| t.trace_id == id)
            .unwrap_or_else(|| panic!("no fixture trace {id}"))
    }

    /// The reference answer to `find_trace_ids`.
    pub fn expected_ids(&self, q: &TraceQuery) -> Vec<TraceId> {
        rank(
            self.traces
                .iter()
                .filter_map(|t| match_key(q, &t.spans).map(|k| (k, t.trace_id)))
                .collect(),
            q,
        )
    }
}

fn resource(service: &str, attrs: Vec<KeyValue>) -> Arc<Resource> {
    Arc::new(Resource {
        service_name: service.into(),
        attributes: attrs,
        dropped_attributes_count: 0,
    })
}

fn new_span(
    trace: TraceId,
    id: u64,
    parent: Option<u64>,
    res: &Arc<Resource>,
    name: &str,
    kind: SpanKind,
) -> Span {
    Span {
        trace_id: trace,
        span_id: SpanId(id),
        parent_span_id: parent.map(SpanId),
        flags: 1,
        name: name.into(),
        kind,
        resource: res.clone(),
        scope: Arc::new(Scope {
            name: "spoor.conformance".into(),
            version: "1.0.0".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds the fixture. Every span has its own start time, so newest-first order is unambiguous.
pub fn fixture() -> Fixture {
    let frontend = resource(
        "frontend",
        vec![
            KeyValue::string("host.name", "web-1"),
            KeyValue::string("deployment.environment", "prod"),
        ],
    );
    let cart = resource("cart", vec![KeyValue::string("host.name", "cart-1")]);
    let payments = resource("payments", vec![]);
    let loadgen = resource("loadgen", vec![KeyValue::new("instance", AnyValue::Int(3))]);
    let batch = resource("batch", vec![]);
    let gateway = resource("gateway", vec![]);
    let auth = resource("auth", vec![]);
    let archive = resource("archive", vec![]);

    // The checkout trace, starting at BASE.
    let t = CHECKOUT;
    let mut s1 = new_span(t, 1, None, &frontend, "GET /checkout", SpanKind::Server);
    s1.start_unix_nanos = BASE;
    s1.duration_nanos = (50 * MS) as i64;
    s1.status = Status {
        code: StatusCode::Ok,
        message: String::new(),
    };
    s1.trace_state = "vendor=abc".into();
    s1.attributes = vec![
        KeyValue::string("http.method", "GET"),
        KeyValue::new("http.status_code", AnyValue::Int(200)),
        KeyValue::new("user.vip", AnyValue::Bool(true)),
        KeyValue::new("ratio", AnyValue::Double(0.25)),
        KeyValue::new("payload", AnyValue::Bytes(vec![0xde, 0xad])),
        KeyValue::new(
            "path.parts",
            AnyValue::Array(vec![AnyValue::Str("checkout".into()), AnyValue::Int(1)]),
        ),
        KeyValue::new(
            "nested",
            AnyValue::Map(vec![KeyValue::new("a", AnyValue::Bool(false))]),
        ),
    ];
    let mut s2 = new_span(t, 2, Some(1), &frontend, "POST /cart", SpanKind::Client);
    s2.start_unix_nanos = BASE + MS;
    s2.duration_nanos = (20 * MS) as i64;
    let mut s3 = new_span(t, 3, Some(2), &cart, "POST /cart", SpanKind::Server);
    s3.start_unix_nanos = BASE + 2 * MS;
    s3.duration_nanos = (18 * MS) as i64;
    s3.events = vec![Event {
        time_unix_nanos: BASE + 3 * MS,
        name: "cache miss".into(),
        attributes: vec![KeyValue::string("cache.key", "user:42")],
        dropped_attributes_count: 1,
    }];
    s3.links = vec![Link {
        trace_id: load_id(0),
        span_id: SpanId(0x1000),
        trace_state: "x=y".into(),
        attributes: vec![KeyValue::string("link.kind", "follows")],
        dropped_attributes_count: 0,
        flags: 1,
    }];
    let mut s4 = new_span(t, 4, Some(3), &cart, "SELECT cart", SpanKind::Client);
    s4.start_unix_nanos = BASE + 4 * MS;
    s4.duration_nanos = (5 * MS) as i64;
    s4.status = Status {
        code: StatusCode::Error,
        message: "timeout".into(),
    };
    s4.attributes = vec![KeyValue::string("db.system", "postgres")];
    s4.dropped_attributes_count = 2;
    s4.warnings = vec!["clock skew adjusted".into()];
    let mut s5 = new_span(t, 5, Some(1), &payments, "charge", SpanKind::Server);
    s5.start_unix_nanos = BASE + 5 * MS;
    s5.duration_nanos = (30 * MS) as i64;
    s5.attributes = vec![
        KeyValue::new("payment.amount", AnyValue::Int(1299)),
        KeyValue::new("error", AnyValue::Bool(true)),
    ];
    let checkout = vec![s1.clone(), s2, s3, s4, s5];

    // Load traces: one span each, 1 s apart from BASE + 10 s, durations 1..=30 ms.
    let loads: Vec<Span> = (0..LOAD_TRACES)
        .map(|i| {
            let (name, kind) = (
                if i % 3 == 0 { "pong" } else { "ping" },
                if i % 2 == 0 {
                    SpanKind::Client
                } else {
                    SpanKind::Server
                },
            );
            let mut s = new_span(load_id(i), 0x1000 + i, None, &loadgen, name, kind);
            s.start_unix_nanos = BASE + 10 * SEC + i * SEC;
            s.duration_nanos = ((i + 1) * MS) as i64;
            s.attributes = vec![
                KeyValue::new("seq", AnyValue::Int(i as i64)),
                KeyValue::new("even", AnyValue::Bool(i % 2 == 0)),
            ];
            s
        })
        .collect();

    // The big trace: a root and 999 steps, from BASE + 100 s, 1 ms apart.
    let mut big = Vec::with_capacity(1000);
    let mut root = new_span(BIG, 1, None, &batch, "job", SpanKind::Internal);
    root.start_unix_nanos = BASE + 100 * SEC;
    root.duration_nanos = (1_000 * MS) as i64;
    big.push(root);
    for i in 1..1000u64 {
        let mut s = new_span(
            BIG,
            1 + i,
            Some(1 + (i - 1) / 10),
            &batch,
            &format!("step-{}", i % 10),
            SpanKind::Internal,
        );
        s.start_unix_nanos = BASE + 100 * SEC + i * MS;
        s.duration_nanos = (MS / 2 + i) as i64;
        s.attributes = vec![KeyValue::new("step", AnyValue::Int(i as i64))];
        big.push(s);
    }

    // The split trace: six spans, written in three batches children first, one span 2 h later.
    let split: Vec<Span> = (0..6u64)
        .map(|i| {
            let (res, name) = if i % 2 == 0 {
                (&gateway, "route")
            } else {
                (&auth, "verify")
            };
            let mut s = new_span(
                SPLIT,
                1 + i,
                if i == 0 { None } else { Some(i) },
                res,
                name,
                SpanKind::Server,
            );
            s.start_unix_nanos = if i == 5 {
                BASE + 2 * HOUR
            } else {
                BASE + 200 * SEC + i * MS
            };
            s.duration_nanos = (10 * MS) as i64;
            if i == 3 {
                s.status = Status {
                    code: StatusCode::Error,
                    message: "denied".into(),
                };
            }
            s
        })
        .collect();

    // The archived trace, ten hours before BASE.
    let archived: Vec<Span> = (0..3u64)
        .map(|i| {
            let mut s = new_span(
                ARCHIVED,
                1 + i,
                if i == 0 { None } else { Some(1) },
                &archive,
                "restore",
                SpanKind::Consumer,
            );
            s.start_unix_nanos = OLD + i * MS;
            s.duration_nanos = (3 * MS) as i64;
            s
        })
        .collect();

    let half = (LOAD_TRACES / 2) as usize;
    let batches = vec![
        [checkout.clone(), loads[..half].to_vec()].concat(),
        big,
        [split[4..6].to_vec(), loads[half..].to_vec()].concat(),
        [split[2..4].to_vec(), archived].concat(),
        [split[0..2].to_vec(), vec![s1]].concat(), // s1 again: a duplicate write
    ];
    let mut traces: Vec<Trace> = Vec::new();
    for s in batches.iter().flatten() {
        match traces.iter_mut().find(|t| t.trace_id == s.trace_id) {
            Some(t) => t.spans.push(s.clone()),
            None => traces.push(Trace {
                trace_id: s.trace_id,
                spans: vec![s.clone()],
            }),
        }
    }
    Fixture { batches, traces }
}

/// Writes the fixture's batches and flushes.
pub fn load(store: &dyn TraceStore) -> Fixture {
    let f = fixture();
    for (i, b) in f.batches.iter().enumerate() {
        store
            .write_spans(b)
            .unwrap_or_else(|e| panic!("write_spans of batch {i} failed: {e}"));
    }
    store
        .flush()
        .unwrap_or_else(|e| panic!("flush failed: {e}"));
    f
}

fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| {
        (a.span_id, a.start_unix_nanos, &a.name).cmp(&(b.span_id, b.start_unix_nanos, &b.name))
    });
    spans
}

/// Asserts two traces hold the same spans, in any order (duplicates count).
pub fn assert_same_trace(got: &Trace, want: &Trace, context: &str) {
    assert_eq!(got.trace_id, want.trace_id, "{context}: trace id");
    assert_eq!(
        got.spans.len(),
        want.spans.len(),
        "{context}: span count of trace {}",
        want.trace_id
    );
    assert!(
        sorted(got.spans.clone()) == sorted(want.spans.clone()),
        "{context}: spans of trace {} differ",
        want.trace_id
    );
}

/// A named check; it gets a fresh, empty store.
pub type Check = fn(&dyn TraceStore, Capabilities);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("get_trace_exact", get_trace_exact),
    ("get_trace_missing", get_trace_missing),
    ("services_and_operations", services_and_operations),
    ("find_cases", find_cases),
    (
        "find_ids_consistent_with_traces",
        find_ids_consistent_with_traces,
    ),
    ("dependencies", dependencies),
    ("expire_before", expire_before),
    ("stats", stats),
    ("span_metrics", span_metrics),
    ("span_metrics_expire", span_metrics_expire),
];

/// Runs every check, each on a new store from `make`.
pub fn run_all<S: TraceStore>(mut make: impl FnMut() -> S, caps: Capabilities) {
    for (name, check) in CHECKS {
        eprintln!("conformance check: {name}");
        let store = make();
        check(&store, caps);
    }
}

/// Every fixture trace reads back exactly; `get_traces` follows the order asked and skips missing.
pub fn get_trace_exact(store: &dyn TraceStore, _caps: Capabilities) {
    let f = load(store);
    for want in &f.traces {
        let got = store
            .get_trace(want.trace_id)
            .unwrap()
            .unwrap_or_else(|| panic!("trace {} missing", want.trace_id));
        assert_same_trace(&got, want, "get_trace");
    }
    assert_eq!(
        f.trace(CHECKOUT).spans.len(),
        6,
        "the duplicate write is kept"
    );
    assert_eq!(f.trace(BIG).spans.len(), 1000);
    let ids = [BIG, TraceId(0xdead), CHECKOUT];
    let got = store.get_traces(&ids).unwrap();
    assert_eq!(
        got.iter().map(|t| t.trace_id).collect::<Vec<_>>(),
        vec![BIG, CHECKOUT]
    );
}

/// Unknown ids read as `None`, on an empty store and a loaded one.
pub fn get_trace_missing(store: &dyn TraceStore, _caps: Capabilities) {
    assert!(store.get_trace(CHECKOUT).unwrap().is_none());
    load(store);
    assert!(store.get_trace(TraceId(0xdead)).unwrap().is_none());
    assert!(store.get_trace(TraceId(CHECKOUT.0 + 1)).unwrap().is_none());
}

fn ops(list: &[(&str, SpanKind)]) -> Vec<Operation> {
    list.iter()
        .map(|(n, k)| Operation {
            name: (*n).into(),
            span_kind: *k,
        })
        .collect()
}

/// Services are sorted and unique; operations are per service, filtered by kind, sorted.
pub fn services_and_operations(store: &dyn TraceStore, _caps: Capabilities) {
    assert_eq!(store.services().unwrap(), Vec::<String>::new());
    load(store);
    let want = [
        "archive", "auth", "batch", "cart", "frontend", "gateway", "loadgen", "payments",
    ];
    assert_eq!(store.services().unwrap(), want.map(String::from).to_vec());
    use SpanKind::*;
    assert_eq!(
        store.operations("frontend", None).unwrap(),
        ops(&[("GET /checkout", Server), ("POST /cart", Client)])
    );
    assert_eq!(
        store.operations("cart", Some(Server)).unwrap(),
        ops(&[("POST /cart", Server)])
    );
    assert_eq!(store.operations("cart", Some(Internal)).unwrap(), ops(&[]));
    assert_eq!(
        store.operations("loadgen", None).unwrap(),
        ops(&[
            ("ping", Server),
            ("ping", Client),
            ("pong", Server),
            ("pong", Client)
        ])
    );
    assert_eq!(
        store.operations("loadgen", Some(Client)).unwrap(),
        ops(&[("ping", Client), ("pong", Client)])
    );
    let steps: Vec<Operation> = store.operations("batch", None).unwrap();
    assert_eq!(steps.len(), 11, "job and step-0..step-9");
    assert_eq!(store.operations("nobody", None).unwrap(), ops(&[]));
}

/// A query over everything from the epoch on.
fn q() -> TraceQuery {
    TraceQuery::between(0, u64::MAX)
}

fn svc(name: &str) -> TraceQuery {
    TraceQuery {
        service: Some(name.into()),
        ..q()
    }
}

fn tag(mut query: TraceQuery, k: &str, v: &str) -> TraceQuery {
    query.tags.push((k.into(), v.into()));
    query
}

fn limit(mut query: TraceQuery, n: usize) -> TraceQuery {
    query.limit = n;
    query
}

/// The find cases: (name, query, number of traces expected). The exact ids and their order come
/// from [`Fixture::expected_ids`].
pub fn find_table() -> Vec<(&'static str, TraceQuery, usize)> {
    let op = |s: &str, o: &str| TraceQuery {
        operation: Some(o.into()),
        ..svc(s)
    };
    vec![
        (
            "service, limit above matches",
            limit(svc("loadgen"), 100),
            30,
        ),
        ("service, default limit", svc("loadgen"), 20),
        ("service, limit 5 newest first", limit(svc("loadgen"), 5), 5),
        ("service of one trace", svc("frontend"), 1),
        ("unknown service", svc("nobody"), 0),
        ("operation", limit(op("loadgen", "ping"), 100), 20),
        (
            "operation and kind",
            limit(
                TraceQuery {
                    span_kind: Some(SpanKind::Client),
                    ..op("loadgen", "ping")
                },
                100,
            ),
            10,
        ),
        ("operation of another service", op("frontend", "charge"), 0),
        (
            "operation without service",
            TraceQuery {
                operation: Some("step-3".into()),
                ..q()
            },
            1,
        ),
        ("tag string", tag(q(), "http.method", "GET"), 1),
        (
            "tag int with service",
            tag(svc("frontend"), "http.status_code", "200"),
            1,
        ),
        (
            "tag int wrong value",
            tag(svc("frontend"), "http.status_code", "201"),
            0,
        ),
        ("tag bool", tag(q(), "user.vip", "true"), 1),
        ("tag double", tag(q(), "ratio", "0.25"), 1),
        ("tag bytes any case", tag(q(), "payload", "DEAD"), 1),
        ("tag resource attribute", tag(q(), "host.name", "web-1"), 1),
        (
            "tag resource int attribute",
            limit(tag(svc("loadgen"), "instance", "3"), 100),
            30,
        ),
        (
            "tag event attribute",
            tag(svc("cart"), "cache.key", "user:42"),
            1,
        ),
        ("tag int per trace", tag(svc("loadgen"), "seq", "7"), 1),
        (
            "tag bool many",
            limit(tag(svc("loadgen"), "even", "true"), 100),
            15,
        ),
        (
            "two tags one span",
            tag(tag(svc("loadgen"), "even", "true"), "seq", "4"),
            1,
        ),
        (
            "two tags two spans",
            tag(tag(q(), "http.method", "GET"), "db.system", "postgres"),
            0,
        ),
        (
            "operation and tag",
            limit(tag(op("loadgen", "pong"), "even", "true"), 100),
            5,
        ),
        (
            "synthetic error from status or attribute",
            tag(q(), "error", "true"),
            2,
        ),
        (
            "synthetic span.kind",
            tag(svc("cart"), "span.kind", "server"),
            1,
        ),
        (
            "service on one span, tag on another",
            tag(svc("frontend"), "db.system", "postgres"),
            0,
        ),
        (
            "duration range",
            limit(
                TraceQuery {
                    duration_min_nanos: Some(25 * MS),
                    duration_max_nanos: Some(40 * MS),
                    ..svc("loadgen")
                },
                100,
            ),
            6,
        ),
        (
            "duration max",
            TraceQuery {
                duration_max_nanos: Some(2 * MS),
                ..svc("loadgen")
            },
            2,
        ),
        (
            "duration min over all",
            TraceQuery {
                duration_min_nanos: Some(999 * MS),
                ..q()
            },
            1,
        ),
        (
            "time window",
            TraceQuery {
                start_min_nanos: BASE + 15 * SEC,
                start_max_nanos: BASE + 20 * SEC,
                ..svc("loadgen")
            },
            6,
        ),
        (
            "time window in a later partition",
            TraceQuery {
                start_min_nanos: BASE + HOUR,
                ..q()
            },
            1,
        ),
        (
            "time window before the old trace",
            TraceQuery::between(0, OLD - 1),
            0,
        ),
        ("everything", limit(q(), 100), 34),
        ("everything, limit 3", limit(q(), 3), 3),
        ("old partition", svc("archive"), 1),
    ]
}

/// Every case of [`find_table`]: ids and their order equal the reference answer.
pub fn find_cases(store: &dyn TraceStore, _caps: Capabilities) {
    let f = load(store);
    for (name, query, count) in find_table() {
        let want = f.expected_ids(&query);
        assert_eq!(want.len(), count, "fixture answer of case {name:?}");
        let got = store
            .find_trace_ids(&query)
            .unwrap_or_else(|e| panic!("case {name:?}: {e}"));
        assert_eq!(got, want, "find_trace_ids case {name:?}");
    }
    let newest = store.find_trace_ids(&limit(svc("loadgen"), 3)).unwrap();
    assert_eq!(
        newest,
        vec![load_id(29), load_id(28), load_id(27)],
        "newest first"
    );
}

/// `find_traces` returns the traces `find_trace_ids` names, in the same order, complete.
pub fn find_ids_consistent_with_traces(store: &dyn TraceStore, _caps: Capabilities) {
    let f = load(store);
    for (name, query, _) in find_table() {
        let ids = store.find_trace_ids(&query).unwrap();
        let traces = store.find_traces(&query).unwrap();
        assert_eq!(
            traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(),
            ids,
            "case {name:?}"
        );
        for t in &traces {
            assert_same_trace(t, f.trace(t.trace_id), name);
            assert!(
                query.matches_trace(t),
                "case {name:?}: trace {} does not match",
                t.trace_id
            );
        }
    }
}

fn link(parent: &str, child: &str, call_count: u64) -> DependencyLink {
    DependencyLink {
        parent: parent.into(),
        child: child.into(),
        call_count,
    }
}

/// Buckets in `(end - lookback, end]` are summed per pair.
pub fn dependencies(store: &dyn TraceStore, _caps: Capabilities) {
    let b1 = BASE;
    store
        .write_dependencies(
            b1,
            &[link("frontend", "cart", 2), link("frontend", "payments", 1)],
        )
        .unwrap();
    store
        .write_dependencies(b1, &[link("frontend", "cart", 3)])
        .unwrap();
    store
        .write_dependencies(b1 + HOUR, &[link("frontend", "cart", 5)])
        .unwrap();
    store
        .write_dependencies(b1 - 2 * HOUR, &[link("cart", "db", 1)])
        .unwrap();
    store.flush().unwrap();
    let cases = [
        (
            "one bucket",
            b1,
            HOUR,
            vec![link("frontend", "cart", 5), link("frontend", "payments", 1)],
        ),
        (
            "two buckets",
            b1 + HOUR,
            3 * HOUR,
            vec![
                link("frontend", "cart", 10),
                link("frontend", "payments", 1),
            ],
        ),
        (
            "lookback start is exclusive",
            b1 + HOUR,
            3 * HOUR + 1,
            vec![
                link("cart", "db", 1),
                link("frontend", "cart", 10),
                link("frontend", "payments", 1),
            ],
        ),
        (
            "end is inclusive",
            b1 - 2 * HOUR,
            1,
            vec![link("cart", "db", 1)],
        ),
        ("nothing before", b1 - 3 * HOUR, HOUR, vec![]),
        ("zero lookback", b1, 0, vec![]),
    ];
    for (name, end, lookback, want) in cases {
        assert_eq!(
            store.dependencies(end, lookback).unwrap(),
            want,
            "dependencies case {name:?}"
        );
    }
}

/// Whole old partitions go; data in partitions reaching past the cutoff stays.
pub fn expire_before(store: &dyn TraceStore, caps: Capabilities) {
    let f = load(store);
    let dropped = store.expire_before(BASE - 5 * HOUR).unwrap();
    if !caps.expires {
        assert_eq!(dropped, 0, "a backend without partitions drops nothing");
        assert!(store.get_trace(ARCHIVED).unwrap().is_some());
        return;
    }
    assert!(dropped >= 1, "the old partition is dropped");
    assert!(
        store.get_trace(ARCHIVED).unwrap().is_none(),
        "old trace is gone"
    );
    assert_eq!(store.find_trace_ids(&svc("archive")).unwrap(), vec![]);
    assert_eq!(
        store.expire_before(BASE - 5 * HOUR).unwrap(),
        0,
        "nothing left to drop"
    );
    // BASE lies inside its partition: that partition reaches past the cutoff and stays.
    assert_eq!(store.expire_before(BASE).unwrap(), 0);
    for id in [CHECKOUT, BIG, SPLIT] {
        let got = store
            .get_trace(id)
            .unwrap()
            .unwrap_or_else(|| panic!("trace {id} lost by expiry"));
        assert_same_trace(&got, f.trace(id), "after expiry");
    }
    assert!(store.stats().partitions_expired >= 1);
}

/// Start of the RED fixture's buckets: the minute holding [`BASE`].
pub const RED_BASE: u64 = BASE - BASE % (60 * SEC);

/// One write of the RED fixture: (batch, service, operation, kind, bucket start in seconds
/// from [`RED_BASE`], bucket length in seconds, errors, latency in ms of each call).
type RedWrite = (
    usize,
    &'static str,
    &'static str,
    SpanKind,
    i64,
    u64,
    u64,
    &'static [u64],
);

/// The RED fixture, in two `write_span_metrics` batches; batch 1 re-opens two buckets of
/// batch 0, which must merge.
pub const RED_WRITES: &[RedWrite] = &[
    (
        0,
        "frontend",
        "GET /cart",
        SpanKind::Server,
        0,
        60,
        1,
        &[10, 20, 30],
    ),
    (0, "frontend", "GET /cart", SpanKind::Client, 0, 60, 0, &[5]),
    (
        0,
        "frontend",
        "GET /cart",
        SpanKind::Server,
        60,
        60,
        0,
        &[40],
    ),
    (0, "cart", "add", SpanKind::Server, 0, 60, 0, &[2, 2]),
    // Same start, another bucket length: another point.
    (0, "cart", "add", SpanKind::Server, 0, 10, 1, &[3]),
    (0, "cart", "add", SpanKind::Server, -7200, 60, 0, &[1]),
    (
        1,
        "frontend",
        "GET /cart",
        SpanKind::Server,
        0,
        60,
        2,
        &[50, 60],
    ),
    (1, "cart", "add", SpanKind::Server, 0, 10, 0, &[4]),
];

fn red_start(offset_s: i64) -> u64 {
    RED_BASE.saturating_add_signed(offset_s * SEC as i64)
}

fn red_write_point(w: &RedWrite) -> RedPoint {
    let &(_, service, operation, kind, start_s, len_s, errors, latencies) = w;
    let mut histogram = LatencyHistogram::new();
    for ms in latencies {
        histogram.record_nanos(ms * MS);
    }
    RedPoint {
        service: service.into(),
        operation: operation.into(),
        kind,
        bucket_start_nanos: red_start(start_s),
        bucket_nanos: len_s * SEC,
        calls: latencies.len() as u64,
        errors,
        histogram,
    }
}

/// The reference answer for the whole RED fixture: one point per key and bucket whose
/// histogram records every latency written for it, sorted as `span_metrics` returns points.
pub fn red_expected() -> Vec<RedPoint> {
    let mut out: Vec<RedPoint> = Vec::new();
    for w in RED_WRITES {
        let (_, service, operation, kind, start_s, len_s, errors, latencies) = *w;
        let same = |p: &&mut RedPoint| {
            (p.service.as_str(), p.operation.as_str(), p.kind) == (service, operation, kind)
                && p.bucket_start_nanos == red_start(start_s)
                && p.bucket_nanos == len_s * SEC
        };
        match out.iter_mut().find(same) {
            Some(p) => {
                p.calls += latencies.len() as u64;
                p.errors += errors;
                for ms in latencies {
                    p.histogram.record_nanos(ms * MS);
                }
            }
            None => out.push(red_write_point(w)),
        }
    }
    crate::sort_red_points(&mut out);
    out
}

/// Writes the RED fixture's batches; returns [`red_expected`].
pub fn write_red_fixture(store: &dyn TraceStore) -> Vec<RedPoint> {
    for batch in 0..2 {
        let points: Vec<RedPoint> = RED_WRITES
            .iter()
            .filter(|w| w.0 == batch)
            .map(red_write_point)
            .collect();
        store
            .write_span_metrics(&points)
            .unwrap_or_else(|e| panic!("write_span_metrics of batch {batch} failed: {e}"));
    }
    store
        .flush()
        .unwrap_or_else(|e| panic!("flush failed: {e}"));
    red_expected()
}

/// (service, operation, kind, bucket start in seconds from [`RED_BASE`], length s, calls,
/// errors) of a point.
type RedRow = (String, String, SpanKind, i64, u64, u64, u64);

/// The [`RedRow`] of each point.
fn red_rows(points: &[RedPoint]) -> Vec<RedRow> {
    points
        .iter()
        .map(|p| {
            (
                p.service.clone(),
                p.operation.clone(),
                p.kind,
                (p.bucket_start_nanos as i128 - RED_BASE as i128) as i64 / SEC as i64,
                p.bucket_nanos / SEC,
                p.calls,
                p.errors,
            )
        })
        .collect()
}

fn row(
    service: &str,
    operation: &str,
    kind: SpanKind,
    start_s: i64,
    len_s: u64,
    calls: u64,
    errors: u64,
) -> RedRow {
    (
        service.into(),
        operation.into(),
        kind,
        start_s,
        len_s,
        calls,
        errors,
    )
}

/// Rewritten buckets merge; `span_metrics` filters by service and by bucket overlap with the
/// range (bucket end exclusive, range ends inclusive).
pub fn span_metrics(store: &dyn TraceStore, _caps: Capabilities) {
    let want = write_red_fixture(store);
    use SpanKind::{Client, Server};
    assert_eq!(
        red_rows(&want),
        vec![
            row("cart", "add", Server, -7200, 60, 1, 0),
            row("cart", "add", Server, 0, 10, 2, 1),
            row("cart", "add", Server, 0, 60, 2, 0),
            row("frontend", "GET /cart", Server, 0, 60, 5, 3),
            row("frontend", "GET /cart", Server, 60, 60, 1, 0),
            row("frontend", "GET /cart", Client, 0, 60, 1, 0),
        ],
        "the reference answer"
    );
    assert_eq!(
        store.span_metrics(&[], 0, u64::MAX).unwrap(),
        want,
        "span_metrics of everything: merged points with merged histograms"
    );
    let at = |s: i64| red_start(s);
    let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (case, services, range start, range end, indices into `want`)
    type Case = (&'static str, Vec<String>, u64, u64, Vec<usize>);
    let cases: Vec<Case> = vec![
        (
            "one service",
            strings(&["cart"]),
            0,
            u64::MAX,
            vec![0, 1, 2],
        ),
        (
            "two services",
            strings(&["frontend", "cart"]),
            0,
            u64::MAX,
            vec![0, 1, 2, 3, 4, 5],
        ),
        ("unknown service", strings(&["nobody"]), 0, u64::MAX, vec![]),
        ("bucket end is exclusive", vec![], at(60), at(60), vec![4]),
        (
            "inside minute buckets",
            vec![],
            at(59),
            at(59),
            vec![2, 3, 5],
        ),
        (
            "range end is inclusive",
            vec![],
            at(-100),
            at(0),
            vec![1, 2, 3, 5],
        ),
        ("short bucket", vec![], at(9), at(10), vec![1, 2, 3, 5]),
        ("before", vec![], 0, at(-1), vec![0]),
        ("between", vec![], at(-7140), at(-1), vec![]),
        ("after", vec![], at(120), u64::MAX, vec![]),
        (
            "service and range",
            strings(&["frontend"]),
            at(60),
            at(61),
            vec![4],
        ),
    ];
    for (name, services, start, end, idx) in cases {
        let expected: Vec<RedPoint> = idx.iter().map(|&i| want[i].clone()).collect();
        assert_eq!(
            red_rows(&store.span_metrics(&services, start, end).unwrap()),
            red_rows(&expected),
            "span_metrics case {name:?}"
        );
    }
}

/// Retention drops the RED buckets that ended by the cutoff, whatever the backend's spans do.
pub fn span_metrics_expire(store: &dyn TraceStore, _caps: Capabilities) {
    let want = write_red_fixture(store);
    // (cutoff, indices into `want` that remain)
    let steps = [
        (red_start(-7140) - 1, vec![0, 1, 2, 3, 4, 5]),
        (red_start(-7140), vec![1, 2, 3, 4, 5]),
        (red_start(10), vec![2, 3, 4, 5]),
        (red_start(60), vec![4]),
    ];
    for (cutoff, idx) in steps {
        assert_eq!(
            store.expire_before(cutoff).unwrap(),
            0,
            "no span partitions to drop"
        );
        let expected: Vec<RedPoint> = idx.iter().map(|&i| want[i].clone()).collect();
        assert_eq!(
            store.span_metrics(&[], 0, u64::MAX).unwrap(),
            expected,
            "span_metrics after expire_before({cutoff})"
        );
    }
}

/// `spans_written` counts every span accepted, duplicates included.
pub fn stats(store: &dyn TraceStore, _caps: Capabilities) {
    let f = load(store);
    assert_eq!(store.stats().spans_written, f.span_count());
}

/// The checks that apply to a backend that discards everything: writes are accepted and
/// counted, every read is empty.
pub fn run_discarding(store: &dyn TraceStore) {
    let f = load(store);
    store
        .write_dependencies(BASE, &[link("a", "b", 1)])
        .unwrap();
    assert_eq!(store.stats().spans_written, f.span_count());
    assert!(store.get_trace(CHECKOUT).unwrap().is_none());
    assert_eq!(store.services().unwrap(), Vec::<String>::new());
    assert_eq!(store.operations("frontend", None).unwrap(), vec![]);
    assert_eq!(store.find_trace_ids(&limit(q(), 100)).unwrap(), vec![]);
    assert_eq!(store.find_traces(&limit(q(), 100)).unwrap(), vec![]);
    assert_eq!(store.dependencies(BASE, HOUR).unwrap(), vec![]);
    write_red_fixture(store);
    assert_eq!(store.span_metrics(&[], 0, u64::MAX).unwrap(), vec![]);
    assert_eq!(store.expire_before(BASE).unwrap(), 0);
}
