//! The sled store's RED span metrics: one global tree `red`, one entry per (bucket length,
//! bucket start, span kind, service, operation), merged on write by a sled merge operator.
//!
//! # Layout
//! - key: bucket length (u64 BE) ++ bucket start (u64 BE) ++ span kind (u8) ++ service length
//!   (u32 BE) ++ service (UTF-8) ++ operation (UTF-8, the rest of the key). Names are stored in
//!   the key, not interned, so the tree stands alone (entries are per bucket and key, far fewer
//!   than spans).
//! - value: [`VALUE_FORMAT`] ++ postcard of `(calls, errors, LatencyHistogram)`.
//!
//! Keys sort by bucket length first: the lengths in use are few (one per aggregator setting
//! ever used), and within one length a bucket overlaps `[start, end]` exactly when its start is
//! in `(start − length, end]`, one range scan. Reads and retention find the lengths present by
//! seeking to the first key of each next length.
//!
//! # Merging and durability
//! `write` calls [`sled::Tree::merge`] per point; [`merge_value`] decodes the stored value, adds
//! the new one ([`crate::merge_red_point`] semantics) and encodes the sum, atomically per key (sled
//! retries the read-modify-write on contention), so no lock is held. The entries are written to
//! sled's log like every other record and are durable after [`crate::TraceStore::flush`].
//!
//! # Corrupt data
//! An entry whose key or value cannot be decoded is logged with `tracing::warn` and skipped by
//! reads; a merge into a corrupt value replaces it with the new point.

use sled::{Batch, IVec, Tree};
use spoor_core::red::{LatencyHistogram, RedPoint};
use spoor_core::SpanKind;

use crate::{red_bucket_selected, sort_red_points, StoreError, StoreResult};

/// First byte of a `red` value.
const VALUE_FORMAT: u8 = 1;
/// Bytes before the service name in a key.
const KEY_HEAD: usize = 8 + 8 + 1 + 4;

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(format!("sled tree red: {e}"))
}

/// The decoded key of an entry.
#[derive(Debug, PartialEq)]
struct Key<'a> {
    bucket_nanos: u64,
    bucket_start: u64,
    kind: SpanKind,
    service: &'a str,
    operation: &'a str,
}

fn encode_key(p: &RedPoint) -> Vec<u8> {
    let mut k = Vec::with_capacity(KEY_HEAD + p.service.len() + p.operation.len());
    k.extend_from_slice(&p.bucket_nanos.to_be_bytes());
    k.extend_from_slice(&p.bucket_start_nanos.to_be_bytes());
    k.push(p.kind as u8);
    // Service names are far below 4 GiB (validation caps them); saturate rather than wrap.
    let len = u32::try_from(p.service.len()).unwrap_or(u32::MAX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(p.service.as_bytes());
    k.extend_from_slice(p.operation.as_bytes());
    k
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
}

fn decode_key(k: &[u8]) -> Option<Key<'_>> {
    let bucket_nanos = be_u64(k, 0)?;
    let bucket_start = be_u64(k, 8)?;
    let kind = *SpanKind::ALL.get(usize::from(*k.get(16)?))?;
    let len = k
        .get(17..21)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)?;
    let service_end = KEY_HEAD.checked_add(usize::try_from(len).ok()?)?;
    let service = std::str::from_utf8(k.get(KEY_HEAD..service_end)?).ok()?;
    let operation = std::str::from_utf8(k.get(service_end..)?).ok()?;
    Some(Key {
        bucket_nanos,
        bucket_start,
        kind,
        service,
        operation,
    })
}

fn encode_value(calls: u64, errors: u64, histogram: &LatencyHistogram) -> Vec<u8> {
    let mut out = vec![VALUE_FORMAT];
    // Serializing plain integers and vectors into a vector cannot fail.
    if let Ok(body) = postcard::to_allocvec(&(calls, errors, histogram)) {
        out.extend_from_slice(&body);
    }
    out
}

fn decode_value(v: &[u8]) -> Result<(u64, u64, LatencyHistogram), String> {
    match v.split_first() {
        Some((&VALUE_FORMAT, body)) => postcard::from_bytes(body).map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("unknown value format {f}")),
        None => Err("empty value".into()),
    }
}

/// A [`RedPoint`] of a stored key with a value (the point carries only what merging needs).
fn point(key: &Key<'_>, (calls, errors, histogram): (u64, u64, LatencyHistogram)) -> RedPoint {
    RedPoint {
        service: key.service.to_owned(),
        operation: key.operation.to_owned(),
        kind: key.kind,
        bucket_start_nanos: key.bucket_start,
        bucket_nanos: key.bucket_nanos,
        calls,
        errors,
        histogram,
    }
}

/// The merge operator of the `red` tree.
fn merge_value(key: &[u8], old: Option<&[u8]>, more: &[u8]) -> Option<Vec<u8>> {
    let more = match decode_value(more) {
        Ok(v) => v,
        // Only this module writes merge operands; keep what is stored.
        Err(_) => return old.map(<[u8]>::to_vec),
    };
    let Some(old) = old else {
        return Some(encode_value(more.0, more.1, &more.2));
    };
    match decode_value(old) {
        // The sum as `merge_red_point` defines it.
        Ok((calls, errors, mut histogram)) => {
            histogram.merge(&more.2);
            Some(encode_value(
                calls.saturating_add(more.0),
                errors.saturating_add(more.1),
                &histogram,
            ))
        }
        Err(detail) => {
            tracing::warn!(key = ?key, %detail, "replacing corrupt entry of tree red");
            Some(encode_value(more.0, more.1, &more.2))
        }
    }
}

/// The `red` tree.
pub(super) struct RedTree {
    tree: Tree,
}

impl RedTree {
    /// Opens (or creates) the tree and installs its merge operator.
    pub(super) fn open(db: &sled::Db) -> StoreResult<Self> {
        let tree = db.open_tree("red").map_err(io)?;
        tree.set_merge_operator(merge_value);
        Ok(RedTree { tree })
    }

    /// Merges every point into its entry.
    pub(super) fn write(&self, points: &[RedPoint]) -> StoreResult<()> {
        for p in points {
            self.tree
                .merge(encode_key(p), encode_value(p.calls, p.errors, &p.histogram))
                .map_err(io)?;
        }
        Ok(())
    }

    /// The bucket lengths present, in order.
    fn lengths(&self) -> StoreResult<Vec<u64>> {
        let mut out = Vec::new();
        let mut from = Some(0u64);
        while let Some(len) = from {
            let Some(item) = self.tree.range(len.to_be_bytes()..).next() else {
                break;
            };
            let (k, _) = item.map_err(io)?;
            let mut head = [0u8; 8];
            let n = k.len().min(8);
            head[..n].copy_from_slice(&k[..n]);
            let found = u64::from_be_bytes(head);
            if n < 8 {
                // A short key sorts before the keys of its zero-padded length, which come next.
                tracing::warn!(key = ?k, "skipping malformed entry of tree red");
                from = Some(found).filter(|f| *f > len);
                continue;
            }
            out.push(found);
            from = found.checked_add(1);
        }
        Ok(out)
    }

    /// The entries of one length whose start is in `[lo, hi]`.
    fn scan(&self, len: u64, lo: u64, hi: u64) -> sled::Iter {
        let mut from = len.to_be_bytes().to_vec();
        from.extend_from_slice(&lo.to_be_bytes());
        match hi.checked_add(1) {
            Some(after) => {
                let mut to = len.to_be_bytes().to_vec();
                to.extend_from_slice(&after.to_be_bytes());
                self.tree.range(from..to)
            }
            None => match len.checked_add(1) {
                Some(next) => self.tree.range(from..next.to_be_bytes().to_vec()),
                None => self.tree.range(from..),
            },
        }
    }

    /// Points of `services` (all if empty) whose bucket overlaps `[start_nanos, end_nanos]`,
    /// sorted as the trait says.
    pub(super) fn read(
        &self,
        services: &[String],
        start_nanos: u64,
        end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        let mut out = Vec::new();
        for len in self.lengths()? {
            let lo = start_nanos.saturating_sub(len);
            for item in self.scan(len, lo, end_nanos) {
                let (k, v): (IVec, IVec) = item.map_err(io)?;
                let Some(key) = decode_key(&k) else {
                    tracing::warn!(key = ?k, "skipping malformed entry of tree red");
                    continue;
                };
                if !red_bucket_selected(
                    key.service,
                    key.bucket_start,
                    key.bucket_nanos,
                    services,
                    (start_nanos, end_nanos),
                ) {
                    continue;
                }
                match decode_value(&v) {
                    Ok(value) => out.push(point(&key, value)),
                    Err(detail) => {
                        tracing::warn!(key = ?k, %detail, "skipping corrupt entry of tree red")
                    }
                }
            }
        }
        sort_red_points(&mut out);
        Ok(out)
    }

    /// Removes the buckets that ended by `cutoff_nanos`; returns how many entries went.
    pub(super) fn expire_before(&self, cutoff_nanos: u64) -> StoreResult<u64> {
        let mut batch = Batch::default();
        let mut n = 0u64;
        for len in self.lengths()? {
            // start + len <= cutoff  ⇔  start <= cutoff - len
            let Some(last) = cutoff_nanos.checked_sub(len) else {
                continue;
            };
            for item in self.scan(len, 0, last) {
                let (k, _) = item.map_err(io)?;
                batch.remove(k);
                n += 1;
            }
        }
        if n > 0 {
            self.tree.apply_batch(batch).map_err(io)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{SledConfig, SledStore};
    use crate::{conformance, TraceStore};

    const SEC: u64 = 1_000_000_000;

    fn red_point(service: &str, op: &str, start_s: u64, len_s: u64, calls: u64) -> RedPoint {
        let mut histogram = LatencyHistogram::new();
        for i in 0..calls {
            histogram.record_nanos((i + 1) * 1_000_000);
        }
        RedPoint {
            service: service.into(),
            operation: op.into(),
            kind: SpanKind::Server,
            bucket_start_nanos: start_s * SEC,
            bucket_nanos: len_s * SEC,
            calls,
            errors: calls / 2,
            histogram,
        }
    }

    fn temp_tree() -> (tempfile::TempDir, sled::Db, RedTree) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .expect("sled opens");
        let tree = RedTree::open(&db).expect("red tree opens");
        (dir, db, tree)
    }

    #[test]
    fn keys_round_trip_and_reject_garbage() {
        let mut p = red_point("svc:with:colons", "GET /a", 60, 60, 1);
        p.kind = SpanKind::Consumer;
        let k = encode_key(&p);
        assert_eq!(
            decode_key(&k),
            Some(Key {
                bucket_nanos: 60 * SEC,
                bucket_start: 60 * SEC,
                kind: SpanKind::Consumer,
                service: "svc:with:colons",
                operation: "GET /a",
            })
        );
        let mut bad_kind = k.clone();
        bad_kind[16] = 9;
        let mut long_service = k.clone();
        long_service[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
        for (name, key) in [
            ("short", &k[..10]),
            ("bad kind", &bad_kind[..]),
            ("service past the end", &long_service[..]),
        ] {
            assert_eq!(decode_key(key), None, "{name}");
        }
        assert!(decode_value(&[]).is_err());
        assert_eq!(decode_value(&[7, 0]).unwrap_err(), "unknown value format 7");
    }

    #[test]
    fn lengths_are_found_by_seeking_and_scans_stay_in_their_length() {
        let (_dir, _db, t) = temp_tree();
        t.write(&[
            red_point("a", "x", 0, 10, 1),
            red_point("a", "x", 50, 10, 1),
            red_point("a", "x", 60, 60, 2),
            red_point("a", "x", 3600, 3600, 3),
        ])
        .unwrap();
        assert_eq!(t.lengths().unwrap(), vec![10 * SEC, 60 * SEC, 3600 * SEC]);
        // [55 s, 65 s]: the 10 s bucket at 50, the 60 s bucket at 60; not the hour at 3600.
        let got: Vec<(u64, u64)> = t
            .read(&[], 55 * SEC, 65 * SEC)
            .unwrap()
            .iter()
            .map(|p| (p.bucket_start_nanos / SEC, p.bucket_nanos / SEC))
            .collect();
        assert_eq!(got, vec![(50, 10), (60, 60)]);
        // Expiry by bucket end: at 60 s the 10 s buckets (ending 10 and 60) go, the rest stays.
        assert_eq!(t.expire_before(60 * SEC).unwrap(), 2);
        assert_eq!(t.lengths().unwrap(), vec![60 * SEC, 3600 * SEC]);
    }

    #[test]
    fn corrupt_entries_are_skipped_and_replaced_by_merges() {
        let (_dir, _db, t) = temp_tree();
        let good = red_point("a", "x", 60, 60, 2);
        let bad = red_point("a", "y", 60, 60, 1);
        t.write(std::slice::from_ref(&good)).unwrap();
        t.tree
            .insert(encode_key(&bad), vec![VALUE_FORMAT, 0xff])
            .unwrap();
        t.tree.insert(b"\x00\x00", vec![1]).unwrap();
        t.tree.insert(b"\x01", vec![1]).unwrap();
        assert_eq!(t.read(&[], 0, u64::MAX).unwrap(), vec![good.clone()]);
        // A merge into the corrupt value replaces it.
        t.write(std::slice::from_ref(&bad)).unwrap();
        assert_eq!(t.read(&[], 0, u64::MAX).unwrap(), vec![good, bad]);
    }

    #[test]
    fn span_metrics_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SledConfig::new(dir.path());
        let want = {
            let store = SledStore::open(cfg.clone()).unwrap();
            let want = conformance::write_red_fixture(&store);
            store.flush().unwrap();
            want
        };
        let store = SledStore::open(cfg).unwrap();
        assert_eq!(store.span_metrics(&[], 0, u64::MAX).unwrap(), want);
        // Merging continues into the reopened entries.
        conformance::write_red_fixture(&store);
        let twice = store.span_metrics(&[], 0, u64::MAX).unwrap();
        let calls: Vec<u64> = twice.iter().map(|p| p.calls).collect();
        let want_calls: Vec<u64> = want.iter().map(|p| 2 * p.calls).collect();
        assert_eq!(calls, want_calls);
    }
}
