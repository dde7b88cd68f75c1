//! RED span metrics (rate, errors, duration) per service, operation and span kind in fixed time
//! buckets, and the series Jaeger's SPM API (`/api/metrics/*`) returns from them.
//!
//! # Aggregation
//!
//! [`RedAggregator::record`] counts a span in the bucket holding its *end* time (when the call
//! completed): one call, one error if the span failed ([`Span::is_error`]: status `ERROR`, or
//! Jaeger's `error=true` tag), and its duration in a [`LatencyHistogram`]. A bucket is closed
//! once `now >= bucket_start + bucket_nanos`; [`RedAggregator::drain_before`] hands closed
//! buckets out as [`RedPoint`]s. A span that arrives after its bucket was drained opens the bucket
//! again and yields a second point for the same key and bucket; readers add such points up
//! ([`series`] does).
//!
//! # Histogram
//!
//! Log-linear buckets over nanoseconds, as HdrHistogram with 4 sub-bucket bits: values below 32
//! ns are exact; above, each power of two is split into 16 equal buckets, so a bucket is at most
//! 1/16 = 6.25% of its lower bound wide. A quantile is the midpoint of the bucket holding the
//! nearest-rank sample, clamped to the exact minimum and maximum, so its relative error is at
//! most 1/32 = 3.125% ([`MAX_RELATIVE_ERROR`]; tested). Buckets are stored sparsely.
//!
//! # Series
//!
//! [`series`] answers Jaeger's three SPM queries from stored points as its Prometheus reader
//! does with `query_range(start = end − lookback, end, step)`:
//! - **steps** are `end − lookback + i·step` for `i = 0, 1, …` while `≤ end` (aligned to the
//!   start, as Prometheus);
//! - **window** of a step `t` is `(t − rate_per, t]`; a bucket belongs to it when the bucket's
//!   *end* falls inside (as a counter scraped when the bucket closes);
//! - **calls**: calls in the window / `rate_per` in seconds (`sum(rate(calls[rate_per]))`,
//!   without Prometheus's extrapolation);
//! - **errors**: errors / calls in the window (Jaeger's error rate, a fraction; 0 when there are
//!   calls but no errors, as Jaeger's fallback to zero-valued call series);
//! - **latency**: the quantile of the merged histograms of the window, in milliseconds
//!   (`histogram_quantile(q, sum(rate(duration_bucket[rate_per])))`).
//!
//! A step whose window holds no calls of a group has no point (Prometheus returns no sample
//! there, and Jaeger passes that through); a group with no point at all is left out. Series are
//! grouped by service, or by service and operation, and come sorted by them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};

use crate::model::{Span, SpanKind};

/// Sub-bucket bits: each power of two is split into 2^4 = 16 buckets.
const SUB_BITS: u32 = 4;
const SUB_COUNT: u64 = 1 << SUB_BITS;
/// Largest bucket index (for `u64::MAX`).
const MAX_INDEX: u16 = ((63 - SUB_BITS + 1) as u16) * (SUB_COUNT as u16) + (SUB_COUNT as u16 - 1);

/// Largest relative error of [`LatencyHistogram::quantile`] against the exact nearest-rank
/// quantile: half a bucket's width over its lower bound.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / 32.0;

/// Most points one series may have (Prometheus's limit for a range query).
pub const MAX_POINTS_PER_SERIES: u64 = 11_000;

const NANOS_PER_MS: f64 = 1_000_000.0;
const NANOS_PER_SEC: f64 = 1_000_000_000.0;

/// The bucket index of a value in nanoseconds.
fn bucket_index(v: u64) -> u16 {
    if v < 2 * SUB_COUNT {
        return v as u16;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let sub = (v >> (e - SUB_BITS)) & (SUB_COUNT - 1);
    ((e - SUB_BITS + 1) as u16) * (SUB_COUNT as u16) + sub as u16
}

/// The lower bound and width of a bucket (saturating for indices beyond [`MAX_INDEX`], which
/// only corrupt input can hold).
fn bucket_bounds(i: u16) -> (u64, u64) {
    let i = u64::from(i.min(MAX_INDEX));
    if i < 2 * SUB_COUNT {
        return (i, 1);
    }
    let e = i / SUB_COUNT + u64::from(SUB_BITS) - 1;
    let sub = i % SUB_COUNT;
    let shift = (e - u64::from(SUB_BITS)) as u32;
    ((SUB_COUNT + sub) << shift, 1u64 << shift)
}

/// A latency histogram over nanoseconds with ≤ 3.125% relative quantile error (see the module
/// documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    count: u64,
    sum_nanos: u64,
    min_nanos: u64,
    max_nanos: u64,
    /// `(bucket index, count)`, sorted by index, counts > 0.
    buckets: Vec<(u16, u64)>,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one duration.
    pub fn record_nanos(&mut self, nanos: u64) {
        self.record_n(nanos, 1);
    }

    fn record_n(&mut self, nanos: u64, n: u64) {
        if n == 0 {
            return;
        }
        if self.count == 0 {
            self.min_nanos = nanos;
            self.max_nanos = nanos;
        } else {
            self.min_nanos = self.min_nanos.min(nanos);
            self.max_nanos = self.max_nanos.max(nanos);
        }
        self.count = self.count.saturating_add(n);
        self.sum_nanos = self.sum_nanos.saturating_add(nanos.saturating_mul(n));
        let idx = bucket_index(nanos);
        match self.buckets.binary_search_by_key(&idx, |&(i, _)| i) {
            Ok(pos) => self.buckets[pos].1 = self.buckets[pos].1.saturating_add(n),
            Err(pos) => self.buckets.insert(pos, (idx, n)),
        }
    }

    /// Adds `other`'s samples to this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min_nanos = other.min_nanos;
            self.max_nanos = other.max_nanos;
        } else {
            self.min_nanos = self.min_nanos.min(other.min_nanos);
            self.max_nanos = self.max_nanos.max(other.max_nanos);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
        let mut merged = Vec::with_capacity(self.buckets.len().max(other.buckets.len()));
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(ia, ca)), Some(&&(ib, cb))) => {
                    if ia == ib {
                        a.next();
                        b.next();
                        (ia, ca.saturating_add(cb))
                    } else if ia < ib {
                        a.next();
                        (ia, ca)
                    } else {
                        b.next();
                        (ib, cb)
                    }
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, Some(&&x)) => {
                    b.next();
                    x
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
    }

    /// Durations recorded in buckets that lie wholly at or below `nanos`: the cumulative count
    /// of a Prometheus `le` bucket. A bucket straddling `nanos` is not counted, so the answer
    /// undercounts by at most the samples within 3.125% below the bound.
    pub fn count_at_or_below(&self, nanos: u64) -> u64 {
        self.buckets
            .iter()
            .take_while(|&&(i, _)| {
                let (lo, width) = bucket_bounds(i);
                lo.saturating_add(width - 1) <= nanos
            })
            .fold(0u64, |acc, &(_, c)| acc.saturating_add(c))
    }

    /// Number of recorded durations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of recorded durations in nanoseconds (saturating).
    pub fn sum_nanos(&self) -> u64 {
        self.sum_nanos
    }

    /// The `q` quantile (0 ≤ q ≤ 1, clamped) in milliseconds: the nearest-rank sample's bucket
    /// midpoint, clamped to the exact min and max. NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let total: u64 = self
            .buckets
            .iter()
            .fold(0u64, |acc, &(_, c)| acc.saturating_add(c));
        if total == 0 {
            return f64::NAN;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        // Nearest rank: the ceil(q·n)-th smallest sample, at least the first.
        let rank = ((q * total as f64) as u64).max(1);
        let rank = if (rank as f64) < q * total as f64 {
            rank + 1
        } else {
            rank
        }
        .min(total);
        if rank == 1 && self.min_nanos <= self.max_nanos {
            return self.min_nanos as f64 / NANOS_PER_MS;
        }
        if rank == total && self.min_nanos <= self.max_nanos {
            return self.max_nanos as f64 / NANOS_PER_MS;
        }
        let mut seen = 0u64;
        let mut idx = self.buckets[self.buckets.len() - 1].0;
        for &(i, c) in &self.buckets {
            seen = seen.saturating_add(c);
            if seen >= rank {
                idx = i;
                break;
            }
        }
        let (lower, width) = bucket_bounds(idx);
        let mid = lower as f64 + (width as f64 - 1.0) / 2.0;
        let (lo, hi) = if self.min_nanos <= self.max_nanos {
            (self.min_nanos as f64, self.max_nanos as f64)
        } else {
            (mid, mid)
        };
        mid.clamp(lo, hi) / NANOS_PER_MS
    }
}

/// One closed bucket of one (service, operation, span kind): what is stored and queried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedPoint {
    /// The service.
    pub service: String,
    /// The operation (span name).
    pub operation: String,
    /// The span kind.
    pub kind: SpanKind,
    /// Start of the bucket, nanoseconds since the epoch (a multiple of `bucket_nanos`).
    pub bucket_start_nanos: u64,
    /// Length of the bucket in nanoseconds.
    pub bucket_nanos: u64,
    /// Spans that ended in the bucket.
    pub calls: u64,
    /// Of those, spans that failed.
    pub errors: u64,
    /// Their durations.
    pub histogram: LatencyHistogram,
}

impl RedPoint {
    /// End of the bucket (exclusive), nanoseconds since the epoch.
    pub fn bucket_end_nanos(&self) -> u64 {
        self.bucket_start_nanos.saturating_add(self.bucket_nanos)
    }
}

#[derive(Debug)]
struct Bucket {
    start: u64,
    calls: u64,
    errors: u64,
    histogram: DenseHistogram,
}

/// [`DenseHistogram`] grows by this many buckets: one power of two.
const CHUNK: usize = SUB_COUNT as usize;
/// Counts needed to cover every bucket index (the most a `DenseHistogram` grows to).
#[cfg(test)]
const DENSE_LEN: usize = (MAX_INDEX as usize / CHUNK + 1) * CHUNK;

/// The aggregator's histogram while a bucket is open: one contiguous vector of counts indexed
/// by bucket index, grown a power of two (16 buckets) at a time up to the largest index seen
/// (at most ~3.9 KB), so recording is O(1) with one memory access and no search or shifting
/// (the sorted sparse vector of [`LatencyHistogram`] cost ~9% of the blackhole pipeline's
/// CPU). Turned into a [`LatencyHistogram`] when the bucket closes.
#[derive(Debug)]
struct DenseHistogram {
    count: u64,
    sum_nanos: u64,
    min_nanos: u64,
    max_nanos: u64,
    counts: Vec<u32>,
}

impl DenseHistogram {
    fn new() -> Self {
        DenseHistogram {
            count: 0,
            sum_nanos: 0,
            min_nanos: u64::MAX,
            max_nanos: 0,
            counts: Vec::new(),
        }
    }

    fn record_nanos(&mut self, nanos: u64) {
        self.count = self.count.saturating_add(1);
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
        self.min_nanos = self.min_nanos.min(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
        let idx = bucket_index(nanos) as usize;
        if self.counts.len() <= idx {
            self.counts.resize((idx / CHUNK + 1) * CHUNK, 0);
        }
        let c = &mut self.counts[idx];
        *c = c.saturating_add(1);
    }

    fn into_histogram(self) -> LatencyHistogram {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i as u16, u64::from(n)))
            .collect();
        LatencyHistogram {
            count: self.count,
            sum_nanos: self.sum_nanos,
            min_nanos: if self.count == 0 { 0 } else { self.min_nanos },
            max_nanos: self.max_nanos,
            buckets,
        }
    }
}

#[derive(Debug)]
struct KeyState {
    service: String,
    operation: String,
    kind: SpanKind,
    /// Open buckets, usually one or two.
    buckets: Vec<Bucket>,
    /// Drains in a row that found no bucket; the key is forgotten at the second.
    idle_drains: u8,
}

/// Aggregates spans into [`RedPoint`]s. Recording a span of a key already known (service,
/// operation and kind seen since the last drains) allocates nothing for the key: the lookup
/// hashes borrowed strings; only a new latency bucket grows the histogram's vector.
#[derive(Debug)]
pub struct RedAggregator {
    bucket_nanos: u64,
    hasher: DefaultHashBuilder,
    keys: HashTable<KeyState>,
}

fn key_hash(h: &DefaultHashBuilder, service: &str, operation: &str, kind: SpanKind) -> u64 {
    h.hash_one((service, operation, kind as u8))
}

impl RedAggregator {
    /// An aggregator with buckets of `bucket_nanos` (0 is taken as 1).
    pub fn new(bucket_nanos: u64) -> Self {
        RedAggregator {
            bucket_nanos: bucket_nanos.max(1),
            hasher: DefaultHashBuilder::default(),
            keys: HashTable::new(),
        }
    }

    /// The bucket length in nanoseconds.
    pub fn bucket_nanos(&self) -> u64 {
        self.bucket_nanos
    }

    /// Counts one span.
    pub fn record(&mut self, span: &Span) {
        let (service, operation, kind) = (span.service(), span.name.as_str(), span.kind);
        let hash = key_hash(&self.hasher, service, operation, kind);
        let eq = |k: &KeyState| k.kind == kind && k.service == service && k.operation == operation;
        let state = match self.keys.find_mut(hash, eq) {
            Some(s) => s,
            None => {
                let hasher = &self.hasher;
                self.keys
                    .insert_unique(
                        hash,
                        KeyState {
                            service: service.into(),
                            operation: operation.into(),
                            kind,
                            buckets: Vec::new(),
                            idle_drains: 0,
                        },
                        |k| key_hash(hasher, &k.service, &k.operation, k.kind),
                    )
                    .into_mut()
            }
        };
        let end = span.end_unix_nanos();
        let start = end - end % self.bucket_nanos;
        let bucket = match state.buckets.iter().rposition(|b| b.start == start) {
            Some(i) => &mut state.buckets[i],
            None => {
                state.buckets.push(Bucket {
                    start,
                    calls: 0,
                    errors: 0,
                    histogram: DenseHistogram::new(),
                });
                let last = state.buckets.len() - 1;
                &mut state.buckets[last]
            }
        };
        bucket.calls += 1;
        if span.is_error() {
            bucket.errors += 1;
        }
        bucket
            .histogram
            .record_nanos(span.duration_nanos.max(0) as u64);
    }

    /// Hands out every bucket that closed by `now_nanos` (its end ≤ now), sorted by service,
    /// operation, kind and bucket start.
    pub fn drain_before(&mut self, now_nanos: u64) -> Vec<RedPoint> {
        self.drain(|end| end <= now_nanos)
    }

    /// Hands out every bucket, open or closed (shutdown), sorted as [`drain_before`].
    ///
    /// [`drain_before`]: RedAggregator::drain_before
    pub fn drain_all(&mut self) -> Vec<RedPoint> {
        self.drain(|_| true)
    }

    fn drain(&mut self, closed: impl Fn(u64) -> bool) -> Vec<RedPoint> {
        let len = self.bucket_nanos;
        let mut out = Vec::new();
        for k in self.keys.iter_mut() {
            if k.buckets.is_empty() {
                k.idle_drains = k.idle_drains.saturating_add(1);
                continue;
            }
            k.idle_drains = 0;
            let mut i = 0;
            while i < k.buckets.len() {
                if closed(k.buckets[i].start.saturating_add(len)) {
                    let b = k.buckets.swap_remove(i);
                    out.push(RedPoint {
                        service: k.service.clone(),
                        operation: k.operation.clone(),
                        kind: k.kind,
                        bucket_start_nanos: b.start,
                        bucket_nanos: len,
                        calls: b.calls,
                        errors: b.errors,
                        histogram: b.histogram.into_histogram(),
                    });
                } else {
                    i += 1;
                }
            }
        }
        self.keys.retain(|k| k.idle_drains < 2);
        out.sort_by(|a, b| {
            (&a.service, &a.operation, a.kind, a.bucket_start_nanos).cmp(&(
                &b.service,
                &b.operation,
                b.kind,
                b.bucket_start_nanos,
            ))
        });
        out
    }
}

/// Which SPM metric a [`SeriesQuery`] asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Calls per second (`/api/metrics/calls`).
    Calls,
    /// Errors as a fraction of calls (`/api/metrics/errors`).
    Errors,
    /// A latency quantile in milliseconds (`/api/metrics/latencies`).
    Latency {
        /// The quantile, 0 < q ≤ 1.
        quantile: f64,
    },
}

/// A query of Jaeger's SPM API.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesQuery {
    /// Services to include; empty includes all.
    pub services: Vec<String>,
    /// Group by operation as well as service.
    pub group_by_operation: bool,
    /// Span kinds to include; empty includes all.
    pub span_kinds: Vec<SpanKind>,
    /// End of the range, nanoseconds since the epoch.
    pub end_nanos: u64,
    /// Length of the range.
    pub lookback_nanos: u64,
    /// Distance between points (> 0).
    pub step_nanos: u64,
    /// Window of each point's rate (> 0).
    pub rate_per_nanos: u64,
    /// The metric.
    pub metric: Metric,
}

/// One series of the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The service.
    pub service: String,
    /// The operation, when grouped by operation.
    pub operation: Option<String>,
    /// `(timestamp nanoseconds, value)`, in time order.
    pub points: Vec<(u64, f64)>,
}

/// Why a [`SeriesQuery`] cannot be answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeriesError {
    /// `step_nanos` is 0.
    ZeroStep,
    /// `rate_per_nanos` is 0.
    ZeroRatePer,
    /// The range holds more than [`MAX_POINTS_PER_SERIES`] steps.
    TooManyPoints {
        /// Steps the range would hold.
        points: u64,
    },
    /// The latency quantile is not within (0, 1].
    BadQuantile {
        /// The quantile given.
        quantile: f64,
    },
}

impl fmt::Display for SeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesError::ZeroStep => f.write_str("step must be > 0"),
            SeriesError::ZeroRatePer => f.write_str("ratePer must be > 0"),
            SeriesError::TooManyPoints { points } => write!(
                f,
                "lookback / step gives {points} points, more than {MAX_POINTS_PER_SERIES}"
            ),
            SeriesError::BadQuantile { quantile } => {
                write!(f, "quantile {quantile} is not within (0, 1]")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SeriesError {}

/// Computes the series of `q` from stored points (see the module documentation).
pub fn series(points: &[RedPoint], q: &SeriesQuery) -> Result<Vec<Series>, SeriesError> {
    if q.step_nanos == 0 {
        return Err(SeriesError::ZeroStep);
    }
    if q.rate_per_nanos == 0 {
        return Err(SeriesError::ZeroRatePer);
    }
    if let Metric::Latency { quantile } = q.metric {
        if !(quantile > 0.0 && quantile <= 1.0) {
            return Err(SeriesError::BadQuantile { quantile });
        }
    }
    let steps = q.lookback_nanos / q.step_nanos + 1;
    if steps > MAX_POINTS_PER_SERIES {
        return Err(SeriesError::TooManyPoints { points: steps });
    }
    let start = q.end_nanos.saturating_sub(q.lookback_nanos);

    // Group the matching points, each group sorted by bucket end.
    let mut selected: Vec<&RedPoint> = points
        .iter()
        .filter(|p| q.services.is_empty() || q.services.contains(&p.service))
        .filter(|p| q.span_kinds.is_empty() || q.span_kinds.contains(&p.kind))
        .collect();
    let group_of = |p: &RedPoint| {
        (
            p.service.clone(),
            if q.group_by_operation {
                Some(p.operation.clone())
            } else {
                None
            },
        )
    };
    selected.sort_by(|a, b| {
        let ka = (&a.service, q.group_by_operation.then_some(&a.operation));
        let kb = (&b.service, q.group_by_operation.then_some(&b.operation));
        ka.cmp(&kb)
            .then(a.bucket_end_nanos().cmp(&b.bucket_end_nanos()))
    });

    let mut out = Vec::new();
    let mut rest = selected.as_slice();
    while let Some(first) = rest.first() {
        let (service, operation) = group_of(first);
        let same = |p: &&RedPoint| {
            p.service == service
                && (!q.group_by_operation || Some(&p.operation) == operation.as_ref())
        };
        let n = rest.iter().take_while(|p| same(p)).count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let points = group_points(group, q, start, steps);
        if !points.is_empty() {
            out.push(Series {
                service,
                operation,
                points,
            });
        }
    }
    Ok(out)
}

/// The points of one group, whose buckets are sorted by end.
fn group_points(group: &[&RedPoint], q: &SeriesQuery, start: u64, steps: u64) -> Vec<(u64, f64)> {
    let rate_secs = q.rate_per_nanos as f64 / NANOS_PER_SEC;
    let mut out = Vec::new();
    // Window (t − rate_per, t] over bucket ends: [lo, hi) indices into `group`.
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..steps {
        let t = start.saturating_add(i * q.step_nanos);
        if t > q.end_nanos {
            break;
        }
        let from = t.saturating_sub(q.rate_per_nanos); // exclusive
        while hi < group.len() && group[hi].bucket_end_nanos() <= t {
            hi += 1;
        }
        while lo < hi && group[lo].bucket_end_nanos() <= from {
            lo += 1;
        }
        // `from` saturates at 0: a bucket ending at 0 cannot exist with a positive length.
        let window = &group[lo..hi];
        let calls: u64 = window.iter().map(|p| p.calls).sum();
        if calls == 0 {
            continue;
        }
        let value = match q.metric {
            Metric::Calls => calls as f64 / rate_secs,
            Metric::Errors => window.iter().map(|p| p.errors).sum::<u64>() as f64 / calls as f64,
            Metric::Latency { quantile } => {
                let mut h = LatencyHistogram::new();
                for p in window {
                    h.merge(&p.histogram);
                }
                if h.count() == 0 {
                    continue;
                }
                h.quantile(quantile)
            }
        };
        out.push((t, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec;

    use crate::model::{Resource, StatusCode};
    use alloc::string::ToString;

    const SEC: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    fn exact_quantile_ms(sorted: &[u64], q: f64) -> f64 {
        let n = sorted.len() as f64;
        let mut rank = (q * n) as usize;
        if (rank as f64) < q * n {
            rank += 1;
        }
        sorted[rank.clamp(1, sorted.len()) - 1] as f64 / MS as f64
    }

    #[test]
    fn bucket_index_and_bounds_agree() {
        let mut rng = XorShift(7);
        let mut values: Vec<u64> = vec![0, 1, 31, 32, 33, 63, 64, 1000, u64::MAX, u64::MAX - 1];
        values.extend((0..10_000).map(|_| rng.next() >> (rng.next() % 64)));
        for v in values {
            let i = bucket_index(v);
            assert!(i <= MAX_INDEX);
            let (lo, w) = bucket_bounds(i);
            assert!(lo <= v && v - lo < w, "{v} in bucket {i} = [{lo}, +{w})");
            assert!(lo < 32 || w as f64 / lo as f64 <= 1.0 / 16.0, "{v}");
        }
        assert_eq!(bucket_index(u64::MAX), MAX_INDEX);
        // Indices are monotonic in the value.
        assert!(bucket_index(1 << 40) < bucket_index((1 << 40) + (1 << 36)));
        // Corrupt indices saturate instead of overflowing a shift.
        let _ = bucket_bounds(u16::MAX);
    }

    #[test]
    fn quantiles_are_within_the_stated_error() {
        // Log-uniform-ish latencies from 50 µs to ~13 s.
        let mut rng = XorShift(0x5eed);
        let mut h = LatencyHistogram::new();
        let mut all = Vec::new();
        for _ in 0..50_000 {
            let v = (50_000 + rng.next() % 50_000) << (rng.next() % 18);
            h.record_nanos(v);
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(h.count(), 50_000);
        for q in [0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = exact_quantile_ms(&all, q);
            let est = h.quantile(q);
            let err = (est - exact).abs() / exact;
            assert!(err <= MAX_RELATIVE_ERROR, "q{q}: {est} vs {exact} ({err})");
        }
        assert_eq!(h.quantile(1.0), *all.last().unwrap() as f64 / MS as f64);
        assert_eq!(h.quantile(0.0), all[0] as f64 / MS as f64);
        assert!(LatencyHistogram::new().quantile(0.5).is_nan());
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut rng = XorShift(99);
        let (mut a, mut b, mut both) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for i in 0..5000 {
            let v = (rng.next() % (10 * SEC)) >> (rng.next() % 20);
            (if i % 3 == 0 { &mut a } else { &mut b }).record_nanos(v);
            both.record_nanos(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, both);
        let mut empty = LatencyHistogram::new();
        empty.merge(&a);
        assert_eq!(empty, a);
        // It survives postcard.
        let bytes = postcard::to_allocvec(&merged).unwrap();
        assert_eq!(
            postcard::from_bytes::<LatencyHistogram>(&bytes).unwrap(),
            both
        );
    }

    fn span(service: &str, op: &str, kind: SpanKind, end_ms: u64, dur_ms: u64, err: bool) -> Span {
        Span {
            name: op.into(),
            kind,
            start_unix_nanos: (end_ms - dur_ms) * MS,
            duration_nanos: (dur_ms * MS) as i64,
            status: crate::model::Status {
                code: if err {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                message: String::new(),
            },
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// (service, operation, kind, bucket start s, calls, errors)
    fn summary(points: &[RedPoint]) -> Vec<(&str, &str, SpanKind, u64, u64, u64)> {
        points
            .iter()
            .map(|p| {
                (
                    p.service.as_str(),
                    p.operation.as_str(),
                    p.kind,
                    p.bucket_start_nanos / SEC,
                    p.calls,
                    p.errors,
                )
            })
            .collect()
    }

    #[test]
    fn aggregator_buckets_by_key_and_end_time() {
        use SpanKind::{Client, Server};
        let mut agg = RedAggregator::new(60 * SEC);
        for s in [
            span("api", "GET /", Server, 10_000, 5, false),
            span("api", "GET /", Server, 59_999, 7, true),
            span("api", "GET /", Server, 60_000, 9, false), // next bucket
            span("api", "GET /", Client, 20_000, 1, false),
            span("db", "query", Client, 30_000, 2, true),
        ] {
            agg.record(&s);
        }
        assert!(agg.drain_before(59_999 * MS).is_empty());
        let closed = agg.drain_before(60 * SEC);
        assert_eq!(
            summary(&closed),
            vec![
                ("api", "GET /", Server, 0, 2, 1),
                ("api", "GET /", Client, 0, 1, 0),
                ("db", "query", Client, 0, 1, 1),
            ]
        );
        assert_eq!(closed[0].histogram.count(), 2);
        assert_eq!(closed[0].bucket_nanos, 60 * SEC);
        // A late span of a drained bucket yields a second point for it.
        agg.record(&span("db", "query", Client, 31_000, 2, false));
        let rest = agg.drain_all();
        assert_eq!(
            summary(&rest),
            vec![
                ("api", "GET /", Server, 60, 1, 0),
                ("db", "query", Client, 0, 1, 0),
            ]
        );
        // Keys idle for two drains are forgotten.
        assert!(agg.drain_all().is_empty());
        assert!(agg.drain_all().is_empty());
        assert_eq!(agg.keys.len(), 0);
    }

    /// Points of one bucket each: (service, operation, kind, bucket start s, calls, errors,
    /// latency ms of every call).
    fn points(spec: &[(&str, &str, SpanKind, u64, u64, u64, u64)]) -> Vec<RedPoint> {
        spec.iter()
            .map(|&(svc, op, kind, start_s, calls, errors, lat_ms)| {
                let mut histogram = LatencyHistogram::new();
                histogram.record_n(lat_ms * MS, calls);
                RedPoint {
                    service: svc.into(),
                    operation: op.into(),
                    kind,
                    bucket_start_nanos: start_s * SEC,
                    bucket_nanos: 60 * SEC,
                    calls,
                    errors,
                    histogram,
                }
            })
            .collect()
    }

    fn query(metric: Metric) -> SeriesQuery {
        SeriesQuery {
            services: vec![],
            group_by_operation: false,
            span_kinds: vec![],
            end_nanos: 600 * SEC,
            lookback_nanos: 300 * SEC,
            step_nanos: 60 * SEC,
            rate_per_nanos: 120 * SEC,
            metric,
        }
    }

    /// (service, operation, points in whole seconds and values to 3 decimals)
    type Rounded<'a> = (&'a str, Option<&'a str>, Vec<(u64, f64)>);

    fn rounded(s: &[Series]) -> Vec<Rounded<'_>> {
        s.iter()
            .map(|x| {
                (
                    x.service.as_str(),
                    x.operation.as_deref(),
                    x.points
                        .iter()
                        .map(|&(t, v)| (t / SEC, (v * 1000.0).round() / 1000.0))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn series_follow_rate_step_lookback_and_grouping() {
        use SpanKind::{Client, Server};
        let data = points(&[
            // bucket [240, 300) ends at 300; [300, 360) at 360; …
            ("api", "GET /", Server, 240, 120, 12, 10),
            ("api", "GET /", Server, 300, 60, 0, 20),
            ("api", "POST /", Server, 300, 60, 30, 100),
            ("api", "GET /", Server, 420, 240, 0, 30),
            ("api", "GET /", Client, 420, 600, 600, 1),
            ("db", "query", Client, 480, 12, 0, 5),
            // outside the range
            ("api", "GET /", Server, 0, 1000, 0, 1),
        ]);
        // Steps 300, 360, …, 600; windows (t − 120 s, t] over bucket ends.
        let calls = series(
            &data,
            &SeriesQuery {
                span_kinds: vec![Server],
                ..query(Metric::Calls)
            },
        )
        .unwrap();
        assert_eq!(
            rounded(&calls),
            vec![(
                "api",
                None,
                // 300: 120 calls/120 s; 360: (120+120)/120; 420: 120/120; 480: 240/120;
                // 540: 240/120; 600: nothing in (480, 600] → no point.
                vec![(300, 1.0), (360, 2.0), (420, 1.0), (480, 2.0), (540, 2.0)]
            )]
        );
        let by_op = series(
            &data,
            &SeriesQuery {
                services: vec!["api".into()],
                group_by_operation: true,
                span_kinds: vec![Server],
                ..query(Metric::Errors)
            },
        )
        .unwrap();
        assert_eq!(
            rounded(&by_op),
            vec![
                (
                    "api",
                    Some("GET /"),
                    vec![(300, 0.1), (360, 0.067), (420, 0.0), (480, 0.0), (540, 0.0)]
                ),
                ("api", Some("POST /"), vec![(360, 0.5), (420, 0.5)]),
            ]
        );
        let lat = series(&data, &query(Metric::Latency { quantile: 0.5 })).unwrap();
        let lat = rounded(&lat);
        assert_eq!(lat[1], ("db", None, vec![(540, 5.0), (600, 5.0)]));
        // api at 360: GET 120×10 ms + GET 60×20 ms + POST 60×100 ms → p50 = 10 ms (±3.2%).
        let (t, v) = lat[0].2[1];
        assert_eq!(t, 360);
        assert!((v - 10.0).abs() <= 10.0 * MAX_RELATIVE_ERROR, "{v}");
        // at 480: GET Server 240×30 ms + GET Client 600×1 ms → p50 = 1 ms.
        let (t, v) = lat[0].2[3];
        assert_eq!(t, 480);
        assert!((v - 1.0).abs() <= MAX_RELATIVE_ERROR, "{v}");
        // No data at all: no series.
        assert!(series(&[], &query(Metric::Calls)).unwrap().is_empty());
        assert!(series(
            &data,
            &SeriesQuery {
                services: vec!["nobody".into()],
                ..query(Metric::Calls)
            }
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn series_refuse_degenerate_queries() {
        let q = query(Metric::Calls);
        let cases = [
            (
                SeriesQuery {
                    step_nanos: 0,
                    ..q.clone()
                },
                "step must be > 0",
            ),
            (
                SeriesQuery {
                    rate_per_nanos: 0,
                    ..q.clone()
                },
                "ratePer must be > 0",
            ),
            (
                SeriesQuery {
                    lookback_nanos: 20_000 * SEC,
                    step_nanos: SEC,
                    ..q.clone()
                },
                "lookback / step gives 20001 points, more than 11000",
            ),
            (
                SeriesQuery {
                    metric: Metric::Latency { quantile: 1.5 },
                    ..q.clone()
                },
                "quantile 1.5 is not within (0, 1]",
            ),
        ];
        for (bad, want) in cases {
            assert_eq!(series(&[], &bad).unwrap_err().to_string(), want);
        }
    }
}

#[cfg(test)]
mod dense_tests {
    use super::{DenseHistogram, LatencyHistogram, DENSE_LEN};

    #[test]
    fn the_dense_histogram_equals_the_sparse_one() {
        let mut dense = DenseHistogram::new();
        let mut sparse = LatencyHistogram::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => x % 32,
                1 => x % 5_000_000,
                2 => x % 60_000_000_000,
                _ => x,
            };
            dense.record_nanos(v);
            sparse.record_nanos(v);
        }
        dense.record_nanos(u64::MAX);
        sparse.record_nanos(u64::MAX);
        assert!(dense.counts.len() <= DENSE_LEN);
        assert_eq!(dense.into_histogram(), sparse);
        assert_eq!(
            DenseHistogram::new().into_histogram(),
            LatencyHistogram::new()
        );
    }
}

#[cfg(test)]
mod le_tests {
    use super::LatencyHistogram;

    #[test]
    fn count_at_or_below_is_cumulative() {
        let mut h = LatencyHistogram::new();
        for ms in [1u64, 2, 3, 10, 100, 1000] {
            h.record_nanos(ms * 1_000_000);
        }
        assert_eq!(h.count_at_or_below(0), 0);
        assert_eq!(h.count_at_or_below(5_000_000), 3);
        assert_eq!(h.count_at_or_below(50_000_000), 4);
        assert_eq!(h.count_at_or_below(2_000_000_000), 6);
        assert_eq!(h.count_at_or_below(u64::MAX), h.count());
    }
}
