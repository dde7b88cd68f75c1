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

#[test]
fn conformance_over_sealed_blocks() {
    let rt = rt();
    let mem = Arc::new(InMemory::new());
    let mut n = 0;
    conformance::run_all(
        || {
            n += 1;
            SealingStore::new(bucket(&format!("c{n}"), &mem), rt.handle().clone())
        },
        Capabilities { expires: true },
    );
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
