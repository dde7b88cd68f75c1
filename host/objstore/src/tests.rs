//! Sealing, reading, compaction and the storage conformance suite over an in-memory object
//! store (the same code runs against a Garage cluster in `tests/all/objstore.rs`).

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use spoor_core::{Resource, Span, SpanId, Trace, TraceId, TraceQuery};
use spoor_store::conformance::{self, Capabilities};
use spoor_store::embedded::{SledConfig, SledStore};
use spoor_store::TraceStore;

use crate::seal::{compact_once, seal_once, CompactConfig, SealConfig};
use crate::store::{BlockStore, BlockStoreConfig, Bucket, TieredStore};
use crate::testing::SealingStore;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn span(trace: u128, id: u64, service: &str, start: u64) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        name: format!("op{}", id % 3),
        start_unix_nanos: start,
        duration_nanos: (id as i64 + 1) * 1000,
        resource: Arc::new(Resource {
            service_name: service.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bucket(prefix: &str, store: &Arc<InMemory>) -> Bucket {
    Bucket {
        store: store.clone(),
        prefix: prefix.into(),
    }
}

fn conformance_over(make: fn(Bucket, tokio::runtime::Handle) -> SealingStore) {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let mut n = 0;
    conformance::run_all(
        || {
            n += 1;
            make(bucket(&format!("c{n}"), &mem), rt.handle().clone())
        },
        Capabilities { expires: true },
    );
}

#[test]
fn conformance_over_sealed_blocks() {
    conformance_over(SealingStore::new);
}

/// Every read from the bucket alone: traces from blocks, links and span metrics from the
/// aggregate objects.
#[test]
fn conformance_over_the_bucket_alone() {
    conformance_over(SealingStore::bucket_only);
}

fn sled(dir: &tempfile::TempDir) -> Arc<SledStore> {
    let mut cfg = SledConfig::new(dir.path());
    cfg.partition = Duration::from_secs(60);
    Arc::new(SledStore::open(cfg).unwrap())
}

fn sorted(mut t: Trace) -> Vec<(u64, u64)> {
    let mut v: Vec<_> = t
        .spans
        .drain(..)
        .map(|s| (s.span_id.0, s.start_unix_nanos))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn partitions_are_sealed_kept_then_dropped_and_late_spans_make_a_new_block() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("s", &mem);
    let dir = tempfile::tempdir().unwrap();
    let head = sled(&dir);
    // 50 traces over three 60 s partitions, one trace crossing a partition boundary
    let mut all = Vec::new();
    for t in 0..50u128 {
        for s in 0..4u64 {
            all.push(span(
                t + 1,
                s + 1,
                if t % 2 == 0 { "front" } else { "back" },
                T0 + (t as u64) * 3 * SEC + s * 50 * SEC,
            ));
        }
    }
    for batch in all.chunks(10) {
        head.write_spans(batch).unwrap();
    }
    head.flush().unwrap();
    let blocks = Arc::new(BlockStore::new(
        b.clone(),
        rt.handle().clone(),
        BlockStoreConfig {
            poll: Duration::ZERO,
        },
    ));
    let h: Arc<dyn TraceStore> = head.clone();
    let tiered = TieredStore::new(Some(h), blocks.clone(), true);
    let cfg = SealConfig {
        node: "i1".into(),
        seal_after: Duration::from_secs(10),
        keep_after_upload: Duration::from_secs(30),
        // small blocks: partitions are sealed in several uploads
        block_spans: 5,
    };
    let parts = head.partition_numbers();
    assert!(parts.len() >= 3, "{parts:?}");
    // now: the first partition ended 10 s ago, the others are still open
    let first_end = (parts[0] + 1) * 60 * SEC;
    let now = first_end + 10 * SEC;
    let r = rt.block_on(seal_once(&head, &b, &cfg, now)).unwrap();
    assert!(
        r.uploaded >= 2 && r.dropped == 0,
        "several blocks of <= 5 spans: {r:?}"
    );
    // both tiers hold the first partition now: every trace still reads back exactly once
    for t in 0..50u128 {
        let got = tiered.get_trace(TraceId(t + 1)).unwrap().unwrap();
        assert_eq!(got.spans.len(), 4, "trace {t} merged without doubles");
    }
    // not yet dropped: keep_after_upload has not passed
    let r = rt
        .block_on(seal_once(&head, &b, &cfg, now + 10 * SEC))
        .unwrap();
    assert_eq!((r.uploaded, r.dropped), (0, 0), "{r:?}");
    // a late span for the sealed partition arrives: it is not lost by the drop
    let late = span(9_999, 1, "front", parts[0] * 60 * SEC + SEC);
    head.write_spans(std::slice::from_ref(&late)).unwrap();
    let r = rt
        .block_on(seal_once(&head, &b, &cfg, now + 40 * SEC))
        .unwrap();
    assert_eq!(
        (r.uploaded, r.dropped),
        (1, 0),
        "the late block is sealed first: {r:?}"
    );
    let r = rt
        .block_on(seal_once(&head, &b, &cfg, now + 80 * SEC))
        .unwrap();
    assert_eq!(r.dropped, 1, "{r:?}");
    assert!(!head.partition_numbers().contains(&parts[0]));
    assert_eq!(
        tiered.get_trace(TraceId(9_999)).unwrap().unwrap().spans,
        vec![late]
    );
    // seal everything; the head is empty and every trace reads from object storage alone
    let r = rt
        .block_on(seal_once(
            &head,
            &b,
            &SealConfig {
                seal_after: Duration::ZERO,
                keep_after_upload: Duration::ZERO,
                ..cfg.clone()
            },
            u64::MAX / 2,
        ))
        .unwrap();
    assert!(r.uploaded >= 2);
    rt.block_on(seal_once(
        &head,
        &b,
        &SealConfig {
            seal_after: Duration::ZERO,
            keep_after_upload: Duration::ZERO,
            ..cfg.clone()
        },
        u64::MAX / 2,
    ))
    .unwrap();
    assert!(head.partition_numbers().is_empty());
    let only_blocks = BlockStore::new(
        b.clone(),
        rt.handle().clone(),
        BlockStoreConfig {
            poll: Duration::ZERO,
        },
    );
    for t in 0..50u128 {
        let want: Vec<_> = all
            .iter()
            .filter(|s| s.trace_id == TraceId(t + 1))
            .cloned()
            .collect();
        let got = only_blocks.get_trace(TraceId(t + 1)).unwrap().unwrap();
        assert_eq!(
            sorted(got),
            sorted(Trace {
                trace_id: TraceId(t + 1),
                spans: want
            })
        );
    }
    // search over blocks: newest first, exact
    let q = TraceQuery {
        service: Some("front".into()),
        operation: Some("op2".into()),
        limit: 5,
        ..TraceQuery::between(0, u64::MAX)
    };
    let ids = only_blocks.find_trace_ids(&q).unwrap();
    let mut want: Vec<(u64, TraceId)> = (0..50u128)
        .filter(|t| t % 2 == 0)
        .map(|t| (T0 + (t as u64) * 3 * SEC + 50 * SEC, TraceId(t + 1)))
        .collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, want.iter().take(5).map(|w| w.1).collect::<Vec<_>>());
    assert_eq!(
        only_blocks.services().unwrap(),
        vec!["back".to_string(), "front".to_string()]
    );

    // compaction: blocks of the first partition (the sealed one and the late one) merge
    let before = only_blocks.visible_blocks().unwrap();
    let c = rt
        .block_on(compact_once(
            &b,
            &CompactConfig {
                max_spans: 1_000_000,
                retention: Duration::from_secs(3600 * 24 * 365 * 100),
            },
            T0,
        ))
        .unwrap();
    assert!(c.merged >= 1 && c.inputs_deleted >= 2, "{c:?}");
    only_blocks.refresh(true).unwrap();
    assert!(only_blocks.visible_blocks().unwrap() < before);
    assert_eq!(
        only_blocks
            .get_trace(TraceId(9_999))
            .unwrap()
            .unwrap()
            .spans
            .len(),
        1
    );
    for t in 0..50u128 {
        assert_eq!(
            only_blocks
                .get_trace(TraceId(t + 1))
                .unwrap()
                .unwrap()
                .spans
                .len(),
            4
        );
    }
    // retention deletes whole blocks
    let c = rt
        .block_on(compact_once(
            &b,
            &CompactConfig {
                max_spans: 1,
                retention: Duration::ZERO,
            },
            u64::MAX / 2,
        ))
        .unwrap();
    assert!(c.expired >= 1, "{c:?}");
    only_blocks.refresh(true).unwrap();
    assert_eq!(only_blocks.visible_blocks().unwrap(), 0);
}

#[test]
fn a_damaged_index_is_skipped_and_named() {
    use object_store::{ObjectStoreExt, PutPayload};
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("d", &mem);
    let good = crate::block::build("good", vec![span(1, 1, "a", T0)], vec![], 0).unwrap();
    rt.block_on(b.upload(&good)).unwrap();
    rt.block_on(mem.put(
        &b.index_path("bad"),
        PutPayload::from_static(b"SPOORIX1garbage"),
    ))
    .unwrap();
    let store = BlockStore::new(
        b,
        rt.handle().clone(),
        BlockStoreConfig {
            poll: Duration::ZERO,
        },
    );
    assert_eq!(store.visible_blocks().unwrap(), 1);
    assert_eq!(store.errors(), 1);
    assert!(store.get_trace(TraceId(1)).unwrap().is_some());
}

#[test]
fn tenants_have_their_own_prefix_and_see_only_their_blocks() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let root = bucket("prod", &mem);
    assert_eq!(root.tenant("team-a").prefix, "prod/tenants/team-a");
    assert_eq!(bucket("", &mem).tenant("b").prefix, "tenants/b");
    let cfg = SealConfig {
        node: "i1".into(),
        seal_after: Duration::ZERO,
        keep_after_upload: Duration::ZERO,
        block_spans: 1000,
    };
    // each tenant's own sled head, sealed into its own prefix; trace 7 exists in both
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (i, (tenant, service)) in [("a", "front-a"), ("b", "front-b")].iter().enumerate() {
        let head = sled(&dirs[i]);
        head.write_spans(&[
            span(7, 1 + i as u64, service, T0),
            span(8 + i as u128, 1, service, T0),
        ])
        .unwrap();
        head.flush().unwrap();
        let r = rt
            .block_on(seal_once(&head, &root.tenant(tenant), &cfg, u64::MAX / 2))
            .unwrap();
        assert_eq!(r.uploaded, 1, "{r:?}");
    }
    assert_eq!(rt.block_on(root.tenants()).unwrap(), ["a", "b"]);
    assert!(
        rt.block_on(root.list_blocks()).unwrap().is_empty(),
        "nothing at the root"
    );
    let reader = |b: Bucket| {
        BlockStore::new(
            b,
            rt.handle().clone(),
            BlockStoreConfig {
                poll: Duration::ZERO,
            },
        )
    };
    for (tenant, service, own, other) in [("a", "front-a", 8, 9), ("b", "front-b", 9, 8)] {
        let r = reader(root.tenant(tenant));
        assert_eq!(r.services().unwrap(), [service]);
        let shared = r.get_trace(TraceId(7)).unwrap().unwrap();
        assert_eq!(
            shared.spans.len(),
            1,
            "only {tenant}'s span of the shared trace id"
        );
        assert!(r.get_trace(TraceId(own)).unwrap().is_some());
        assert!(r.get_trace(TraceId(other)).unwrap().is_none());
        let found = r.find_traces(&TraceQuery::between(0, u64::MAX)).unwrap();
        assert_eq!(found.len(), 2);
    }
    // the compactor over one tenant leaves the other alone
    let r = rt
        .block_on(compact_once(
            &root.tenant("a"),
            &CompactConfig {
                max_spans: 1000,
                retention: Duration::ZERO,
            },
            u64::MAX / 2,
        ))
        .unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    assert!(rt
        .block_on(root.tenant("a").list_blocks())
        .unwrap()
        .is_empty());
    assert_eq!(
        rt.block_on(root.tenant("b").list_blocks()).unwrap().len(),
        1
    );
}

// ---- aggregates: dependency links and RED points in object storage ----

/// Start of a 60 s partition (and of a minute RED bucket).
const P0: u64 = T0 - T0 % (60 * SEC);
const MIN: u64 = 60 * SEC;

fn red(service: &str, start: u64, len: u64, calls: u64) -> spoor_core::red::RedPoint {
    let mut histogram = spoor_core::red::LatencyHistogram::new();
    for i in 0..calls {
        histogram.record_nanos((i + 1) * 1_000_000);
    }
    spoor_core::red::RedPoint {
        service: service.into(),
        operation: "op".into(),
        kind: spoor_core::SpanKind::Server,
        bucket_start_nanos: start,
        bucket_nanos: len,
        calls,
        errors: calls / 3,
        histogram,
    }
}

fn link(parent: &str, child: &str, call_count: u64) -> spoor_core::DependencyLink {
    spoor_core::DependencyLink {
        parent: parent.into(),
        child: child.into(),
        call_count,
    }
}

fn seal_cfg(node: &str) -> SealConfig {
    SealConfig {
        node: node.into(),
        seal_after: Duration::from_secs(10),
        keep_after_upload: Duration::ZERO,
        block_spans: 1000,
    }
}

/// A reader of the bucket alone that lists at every read.
fn only(b: &Bucket, rt: &tokio::runtime::Runtime) -> BlockStore {
    BlockStore::new(
        b.clone(),
        rt.handle().clone(),
        BlockStoreConfig {
            poll: Duration::ZERO,
        },
    )
}

fn everything_red(s: &dyn TraceStore) -> Vec<spoor_core::red::RedPoint> {
    s.span_metrics(&[], 0, u64::MAX).unwrap()
}

fn calls(points: &[spoor_core::red::RedPoint]) -> Vec<(String, u64, u64)> {
    points
        .iter()
        .map(|p| {
            (
                p.service.clone(),
                (p.bucket_start_nanos - P0) / SEC,
                p.calls,
            )
        })
        .collect()
}

#[test]
fn aggregates_are_sealed_per_partition_and_overwritten_until_they_converge() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("agg", &mem);
    let dir = tempfile::tempdir().unwrap();
    let head = sled(&dir);
    let cfg = seal_cfg("i1");
    head.write_span_metrics(&[red("front", P0, MIN, 3), red("front", P0 + MIN, MIN, 1)])
        .unwrap();
    head.write_dependencies(P0 + 5 * SEC, &[link("front", "back", 2)])
        .unwrap();
    // the first partition ended 5 s ago: not yet (seal_after is 10 s)
    let r = rt
        .block_on(seal_once(&head, &b, &cfg, P0 + MIN + 5 * SEC))
        .unwrap();
    assert_eq!(r.aggregates, 0, "{r:?}");
    let now = P0 + MIN + 10 * SEC;
    let r = rt.block_on(seal_once(&head, &b, &cfg, now)).unwrap();
    assert_eq!(r.aggregates, 1, "only the ended partition: {r:?}");
    let reader = only(&b, &rt);
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 3)]);
    assert_eq!(
        reader.dependencies(P0 + MIN, MIN).unwrap(),
        [link("front", "back", 2)]
    );

    // late: a re-opened RED bucket, more calls on a link and a link whose parent came late
    head.write_span_metrics(&[red("front", P0, MIN, 2)])
        .unwrap();
    head.write_dependencies(P0 + 5 * SEC, &[link("front", "back", 1)])
        .unwrap();
    head.write_dependencies(P0 + 30 * SEC, &[link("back", "db", 1)])
        .unwrap();
    let r = rt.block_on(seal_once(&head, &b, &cfg, now)).unwrap();
    assert_eq!(r.aggregates, 1, "{r:?}");
    let objects = rt.block_on(b.list_aggregates()).unwrap();
    assert_eq!(objects.len(), 1, "overwritten, not added: {objects:?}");
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 5)]);
    assert_eq!(
        everything_red(&reader)[0],
        head.span_metrics(&[], P0, P0).unwrap()[0],
        "the whole point, histogram included"
    );
    assert_eq!(
        reader.dependencies(P0 + MIN, MIN).unwrap(),
        head.dependencies(P0 + MIN, MIN).unwrap()
    );
    assert_eq!(
        reader.dependencies(P0 + MIN, MIN).unwrap(),
        [link("back", "db", 1), link("front", "back", 3)]
    );
    // nothing changed: nothing uploaded
    let r = rt.block_on(seal_once(&head, &b, &cfg, now)).unwrap();
    assert_eq!(r.aggregates, 0, "{r:?}");
    // later the second partition too; the bucket then answers what the head answers
    let r = rt
        .block_on(seal_once(&head, &b, &cfg, P0 + 3 * MIN))
        .unwrap();
    assert_eq!(r.aggregates, 1, "{r:?}");
    assert_eq!(rt.block_on(b.list_aggregates()).unwrap().len(), 2);
    assert_eq!(everything_red(&reader), everything_red(head.as_ref()));
    for (end, lookback) in [
        (P0 + 2 * MIN, 2 * MIN),
        (P0 + 5 * SEC, 1),
        (P0 + 29 * SEC, 24 * SEC),
    ] {
        assert_eq!(
            reader.dependencies(end, lookback).unwrap(),
            head.dependencies(end, lookback).unwrap(),
            "({end}, {lookback})"
        );
    }
    assert_eq!(reader.dependencies(P0 + 5 * SEC, 0).unwrap(), []);
    assert_eq!(reader.errors(), 0);
}

#[test]
fn every_nodes_objects_are_summed_and_a_replaced_disk_adds_its_own() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("nodes", &mem);
    let now = P0 + 2 * MIN;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let heads: Vec<_> = dirs.iter().map(sled).collect();
    // two ingesters, each counting part of the same keys
    for (head, node, n) in [(&heads[0], "i1", 3), (&heads[1], "i2", 4)] {
        head.write_span_metrics(&[red("front", P0, MIN, n)])
            .unwrap();
        head.write_dependencies(P0, &[link("front", "back", n)])
            .unwrap();
        let r = rt
            .block_on(seal_once(head, &b, &seal_cfg(node), now))
            .unwrap();
        assert_eq!(r.aggregates, 1);
    }
    let reader = only(&b, &rt);
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 7)]);
    assert_eq!(
        reader.dependencies(P0, MIN).unwrap(),
        [link("front", "back", 7)]
    );
    let mut both = red("front", P0, MIN, 3);
    spoor_store::merge_red_point(&mut both, &red("front", P0, MIN, 4));
    assert_eq!(everything_red(&reader), [both], "histograms merged");

    // i1's disk is replaced: its new, empty head (same node name, a later first round, so
    // another seal id) counts redelivered spans again and writes an object of its own
    heads[2]
        .write_span_metrics(&[red("front", P0, MIN, 1)])
        .unwrap();
    heads[2]
        .write_dependencies(P0, &[link("front", "back", 1)])
        .unwrap();
    rt.block_on(seal_once(&heads[2], &b, &seal_cfg("i1"), now + SEC))
        .unwrap();
    assert_eq!(rt.block_on(b.list_aggregates()).unwrap().len(), 3);
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 8)]);
    // a tiered store over the new head alone answers per key the more complete tier, the
    // bucket; over a complete head, the head (never the sum of both)
    let blocks = Arc::new(only(&b, &rt));
    let fresh: Arc<dyn TraceStore> = heads[2].clone();
    let tiered = TieredStore::new(Some(fresh), blocks.clone(), false);
    assert_eq!(calls(&everything_red(&tiered)), [("front".into(), 0, 8)]);
    assert_eq!(
        tiered.dependencies(P0, MIN).unwrap(),
        [link("front", "back", 8)]
    );
    heads[2]
        .write_span_metrics(&[red("front", P0, MIN, 20)])
        .unwrap();
    assert_eq!(
        calls(&everything_red(&tiered)),
        [("front".into(), 0, 21)],
        "the head has more than the bucket before the next sealing round"
    );
}

#[test]
fn aggregates_follow_the_tenant_prefix() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let root = bucket("prod", &mem);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (i, t) in ["a", "b"].iter().enumerate() {
        let head = sled(&dirs[i]);
        head.write_span_metrics(&[red(&format!("front-{t}"), P0, MIN, 1 + i as u64)])
            .unwrap();
        head.write_dependencies(P0, &[link(&format!("front-{t}"), "db", 1)])
            .unwrap();
        rt.block_on(seal_once(
            &head,
            &root.tenant(t),
            &seal_cfg("i1"),
            P0 + 2 * MIN,
        ))
        .unwrap();
    }
    let listed: Vec<String> = rt
        .block_on(async {
            use futures_util::TryStreamExt;
            use object_store::ObjectStore;
            mem.list(None)
                .map_ok(|m| m.location.to_string())
                .try_collect::<Vec<_>>()
                .await
        })
        .unwrap()
        .into_iter()
        .filter(|l| l.contains("aggregates"))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].starts_with("prod/tenants/a/aggregates/"),
        "{listed:?}"
    );
    assert!(
        listed[1].starts_with("prod/tenants/b/aggregates/"),
        "{listed:?}"
    );
    assert!(rt.block_on(root.list_aggregates()).unwrap().is_empty());
    assert_eq!(only(&root, &rt).span_metrics(&[], 0, u64::MAX).unwrap(), []);
    for (t, calls) in [("a", 1), ("b", 2)] {
        let r = only(&root.tenant(t), &rt);
        let got = everything_red(&r);
        assert_eq!(got.len(), 1, "{t}: {got:?}");
        assert_eq!(
            (got[0].service.as_str(), got[0].calls),
            (&*format!("front-{t}"), calls)
        );
        assert_eq!(
            r.dependencies(P0, MIN).unwrap(),
            [link(&format!("front-{t}"), "db", 1)]
        );
    }
}

#[test]
fn retention_deletes_aggregate_objects_with_their_partition_and_hides_ended_buckets() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("ret", &mem);
    let dir = tempfile::tempdir().unwrap();
    let head = sled(&dir);
    let p1 = P0 + MIN;
    head.write_span_metrics(&[
        red("front", P0, MIN, 1),
        red("front", p1, 30 * SEC, 2),
        red("front", p1, MIN, 3),
    ])
    .unwrap();
    head.write_dependencies(P0, &[link("front", "back", 1)])
        .unwrap();
    head.write_dependencies(p1, &[link("front", "back", 2)])
        .unwrap();
    rt.block_on(seal_once(&head, &b, &seal_cfg("i1"), P0 + 3 * MIN))
        .unwrap();
    assert_eq!(rt.block_on(b.list_aggregates()).unwrap().len(), 2);
    // the compactor at a cutoff of P0's end deletes P0's object only
    let c = rt
        .block_on(compact_once(
            &b,
            &CompactConfig {
                max_spans: 1000,
                retention: Duration::from_secs(3600),
            },
            p1 + 3600 * SEC,
        ))
        .unwrap();
    assert_eq!(c.aggregates_expired, 1, "{c:?}");
    let reader = only(&b, &rt);
    assert_eq!(
        calls(&everything_red(&reader)),
        [("front".into(), 60, 2), ("front".into(), 60, 3)]
    );
    assert_eq!(
        reader.dependencies(p1 + MIN, 10 * MIN).unwrap(),
        [link("front", "back", 2)]
    );
    // an all-in-one's retention inside p1: nothing deleted, the ended 30 s bucket hidden
    assert_eq!(reader.expire_before(p1 + 30 * SEC).unwrap(), 0);
    assert_eq!(rt.block_on(b.list_aggregates()).unwrap().len(), 1);
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 60, 3)]);
    // at p1's end, its object goes
    reader.expire_before(p1 + MIN).unwrap();
    assert!(rt.block_on(b.list_aggregates()).unwrap().is_empty());
    assert_eq!(everything_red(&reader), []);
    assert_eq!(reader.dependencies(p1 + MIN, 10 * MIN).unwrap(), []);
}

#[test]
fn a_damaged_aggregate_object_is_skipped_and_named_and_the_rest_answers() {
    use object_store::{ObjectStoreExt, PutPayload};
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("bad", &mem);
    let dir = tempfile::tempdir().unwrap();
    let head = sled(&dir);
    head.write_span_metrics(&[red("front", P0, MIN, 3)])
        .unwrap();
    head.write_dependencies(P0, &[link("front", "back", 1)])
        .unwrap();
    rt.block_on(seal_once(&head, &b, &seal_cfg("i1"), P0 + 2 * MIN))
        .unwrap();
    let (good, _) = rt.block_on(b.list_aggregates()).unwrap().remove(0);
    let bytes = rt
        .block_on(async { mem.get(&b.aggregates_path(&good)).await?.bytes().await })
        .unwrap();
    let garbage = crate::aggregates::object_name(P0, P0 + MIN, "i2", 1);
    let torn = crate::aggregates::object_name(P0, P0 + MIN, "i3", 1);
    for (name, payload) in [
        (&garbage, PutPayload::from_static(b"SPOORAG1 not really")),
        (&torn, PutPayload::from(bytes.slice(..bytes.len() - 3))),
    ] {
        rt.block_on(mem.put(&b.aggregates_path(name), payload))
            .unwrap();
    }
    let reader = only(&b, &rt);
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 3)]);
    assert_eq!(
        reader.dependencies(P0, MIN).unwrap(),
        [link("front", "back", 1)]
    );
    assert_eq!(reader.errors(), 2, "each damaged object counted");
    everything_red(&reader);
    assert_eq!(reader.errors(), 2, "and reported once per version");
    // the damaged one is rewritten whole: read again and counted
    rt.block_on(mem.put(&b.aggregates_path(&torn), PutPayload::from(bytes)))
        .unwrap();
    assert_eq!(calls(&everything_red(&reader)), [("front".into(), 0, 6)]);
}

#[test]
fn a_bucket_without_aggregate_objects_answers_what_exists() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("old", &mem);
    // a block sealed before aggregate objects existed
    let old = crate::block::build("old", vec![span(1, 1, "a", T0)], vec![], 0).unwrap();
    rt.block_on(b.upload(&old)).unwrap();
    let reader = Arc::new(only(&b, &rt));
    assert!(reader.get_trace(TraceId(1)).unwrap().is_some());
    assert_eq!(everything_red(reader.as_ref()), []);
    assert_eq!(reader.dependencies(u64::MAX / 2, u64::MAX / 2).unwrap(), []);
    assert_eq!(reader.errors(), 0);
    // with a head, the head's aggregates
    let dir = tempfile::tempdir().unwrap();
    let head = sled(&dir);
    head.write_span_metrics(&[red("front", P0, MIN, 3)])
        .unwrap();
    let h: Arc<dyn TraceStore> = head.clone();
    let tiered = TieredStore::new(Some(h), reader, false);
    assert_eq!(calls(&everything_red(&tiered)), [("front".into(), 0, 3)]);
}

#[test]
fn a_replaced_disk_never_overwrites_the_blocks_of_the_one_before() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let b = bucket("replaced", &mem);
    let now = P0 + 2 * MIN;
    let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = sled(&old_dir);
    old.write_spans(&[span(1, 1, "front", P0 + SEC)]).unwrap();
    rt.block_on(seal_once(&old, &b, &seal_cfg("i1"), now))
        .unwrap();
    // the disk is replaced: same node name, sequences start again, and a late span of the same
    // partition arrives
    let new = sled(&new_dir);
    new.write_spans(&[span(2, 1, "front", P0 + 2 * SEC)])
        .unwrap();
    rt.block_on(seal_once(&new, &b, &seal_cfg("i1"), now + SEC))
        .unwrap();
    let blocks = rt.block_on(b.list_blocks()).unwrap();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let reader = only(&b, &rt);
    for t in [1, 2] {
        assert!(
            reader.get_trace(TraceId(t)).unwrap().is_some(),
            "trace {t} lost"
        );
    }
}
