//! Runs the one conformance suite against every backend of this crate.

use std::time::Duration;

use spoor_store::blackhole::BlackholeStore;
use spoor_store::conformance::{self, Capabilities};
use spoor_store::embedded::{Durability, SledConfig, SledStore};
use spoor_store::memory::MemoryStore;
use spoor_store::TraceStore;
use tempfile::TempDir;

#[test]
fn memory_store_conforms() {
    conformance::run_all(|| MemoryStore::new(10_000), Capabilities { expires: false });
}

fn sled_conforms(durability: Durability) {
    let mut dirs: Vec<TempDir> = Vec::new();
    conformance::run_all(
        || {
            let dir = tempfile::tempdir().expect("temp dir");
            let cfg = SledConfig {
                durability,
                ..SledConfig::new(dir.path())
            };
            dirs.push(dir);
            SledStore::open(cfg).expect("open sled store")
        },
        Capabilities { expires: true },
    );
}

#[test]
fn sled_store_periodic_conforms() {
    sled_conforms(Durability::Periodic);
}

#[test]
fn sled_store_sync_conforms() {
    sled_conforms(Durability::Sync);
}

#[test]
fn sled_store_keeps_flushed_data_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SledConfig {
        durability: Durability::Sync,
        partition: Duration::from_secs(3600),
        ..SledConfig::new(dir.path())
    };
    let fixture = {
        let store = SledStore::open(cfg.clone()).unwrap();
        let f = conformance::load(&store);
        store
            .write_dependencies(conformance::BASE, &[conformance_link()])
            .unwrap();
        store.flush().unwrap();
        f
    };
    let store = SledStore::open(cfg).unwrap();
    for want in &fixture.traces {
        let got = store
            .get_trace(want.trace_id)
            .unwrap()
            .expect("trace survives reopen");
        conformance::assert_same_trace(&got, want, "after reopen");
    }
    for (name, query, count) in conformance::find_table() {
        assert_eq!(
            store.find_trace_ids(&query).unwrap(),
            fixture.expected_ids(&query),
            "case {name:?} after reopen"
        );
        assert_eq!(fixture.expected_ids(&query).len(), count);
    }
    assert_eq!(store.services().unwrap().len(), 8);
    assert_eq!(
        store
            .dependencies(conformance::BASE, conformance::HOUR)
            .unwrap(),
        vec![conformance_link()]
    );
    // New blocks after reopen do not overwrite old ones.
    conformance::load(&store);
    let checkout = store.get_trace(conformance::CHECKOUT).unwrap().unwrap();
    assert_eq!(
        checkout.spans.len(),
        2 * fixture.trace(conformance::CHECKOUT).spans.len()
    );
}

fn conformance_link() -> spoor_core::DependencyLink {
    spoor_core::DependencyLink {
        parent: "frontend".into(),
        child: "cart".into(),
        call_count: 4,
    }
}

#[test]
fn blackhole_store_accepts_and_discards() {
    conformance::run_discarding(&BlackholeStore::new());
}
