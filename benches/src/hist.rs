//! A log-linear latency histogram in the manner of HdrHistogram: 64 linear sub-buckets per power
//! of two, so any recorded value is reported within 1/64 (about 1.6 %) of its true value.

/// Sub-bucket bits: each power of two is split into `2^SUB_BITS` buckets.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed to cover all of `u64`.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of values (nanoseconds, typically) in log-linear buckets, plus exact min, max and sum.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb - SUB_BITS;
    let group = (shift + 1) as usize;
    let sub = ((v >> shift) - SUB) as usize;
    group * SUB as usize + sub
}

/// The largest value that falls into bucket `i`.
fn highest_in(i: usize) -> u64 {
    let group = i / SUB as usize;
    let sub = (i % SUB as usize) as u64;
    if group == 0 {
        return sub;
    }
    let shift = (group - 1) as u32;
    let low = (SUB + sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index_of(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds all values recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Smallest recorded value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// Largest recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the recorded values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (`0..=1`): the smallest bucket bound such that at least
    /// `ceil(q * count)` values are at or below it, capped to the exact maximum (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest_in(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range() {
        // Consecutive buckets: each starts right after the previous one ends.
        for i in 1..BUCKETS - 1 {
            assert_eq!(index_of(highest_in(i - 1) + 1), i, "bucket {i}");
            assert_eq!(index_of(highest_in(i)), i, "bucket {i}");
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        assert_eq!(highest_in(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn small_values_are_exact_and_large_within_precision() {
        for v in 0..SUB {
            assert_eq!(highest_in(index_of(v)), v);
        }
        for v in [64u64, 65, 1000, 123_456, 9_999_999, 1 << 40, u64::MAX / 3] {
            let h = highest_in(index_of(v));
            assert!(h >= v && (h - v) as f64 <= v as f64 / 64.0, "{v} -> {h}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        // (quantile, exact value)
        let cases = [
            (0.5, 5_000_000u64),
            (0.9, 9_000_000),
            (0.99, 9_900_000),
            (1.0, 10_000_000),
        ];
        for (q, exact) in cases {
            let got = h.quantile(q);
            assert!(
                got >= exact && (got - exact) as f64 <= exact as f64 / 64.0,
                "q{q}: {got}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000_000, "capped to the exact max");
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.min(), 1000);
        assert_eq!(h.mean(), 5_000_500.0);
    }

    #[test]
    fn merge_and_empty() {
        let empty = Histogram::new();
        assert_eq!(
            (empty.quantile(0.5), empty.min(), empty.max(), empty.mean()),
            (0, 0, 0, 0.0)
        );
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(20);
        b.record(30);
        a.merge(&b);
        a.merge(&empty);
        assert_eq!((a.count(), a.min(), a.max()), (3, 10, 30));
        assert_eq!(a.quantile(0.5), 20);
    }
}
