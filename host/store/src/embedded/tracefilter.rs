//! In-memory trace-id filters, one per block: a split-block bloom filter (Parquet's layout:
//! 256-bit buckets of eight 32-bit words, one bit set per word) sized at 16 bits per trace,
//! so a lookup touches one cache line and says "maybe" for about 0.1 % of absent traces.

use spoor_core::TraceId;

/// Bits of filter per trace of the block.
const BITS_PER_TRACE: usize = 16;

/// Parquet's salts: one odd multiplier per word of a bucket.
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// A filter of the trace ids of one block. Never says "no" for an id it was built with.
pub struct TraceFilter {
    buckets: Box<[[u32; 8]]>,
}

/// Mixes both halves of a trace id into 64 well-spread bits (ids may be sequential).
fn hash(id: TraceId) -> u64 {
    let mut x = (id.0 as u64) ^ ((id.0 >> 64) as u64).rotate_left(29);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn mask(h: u64) -> [u32; 8] {
    let key = h as u32;
    SALT.map(|salt| 1u32 << (key.wrapping_mul(salt) >> 27))
}

impl TraceFilter {
    /// A filter holding `ids` (duplicates are harmless).
    pub fn new(ids: &[TraceId]) -> Self {
        let n = (ids.len() * BITS_PER_TRACE).div_ceil(256).max(1);
        let mut buckets = vec![[0u32; 8]; n].into_boxed_slice();
        for id in ids {
            let h = hash(*id);
            let b = Self::bucket(h, n);
            for (word, bit) in buckets[b].iter_mut().zip(mask(h)) {
                *word |= bit;
            }
        }
        TraceFilter { buckets }
    }

    fn bucket(h: u64, n: usize) -> usize {
        (((h >> 32) * n as u64) >> 32) as usize
    }

    /// Whether `id` may be in the block (false positives about 0.1 %, no false negatives).
    pub fn may_contain(&self, id: TraceId) -> bool {
        let h = hash(id);
        let bucket = &self.buckets[Self::bucket(h, self.buckets.len())];
        bucket
            .iter()
            .zip(mask(h))
            .all(|(word, bit)| word & bit != 0)
    }

    /// The filter's words, bucket by bucket, to store it (`from_words` reads them back).
    pub fn words(&self) -> Vec<u32> {
        self.buckets.iter().flatten().copied().collect()
    }

    /// A filter from [`TraceFilter::words`]; `None` unless the length is a whole, non-zero
    /// number of buckets.
    pub fn from_words(words: &[u32]) -> Option<Self> {
        if words.is_empty() || words.len() % 8 != 0 {
            return None;
        }
        let buckets = words
            .chunks_exact(8)
            .map(|c| <[u32; 8]>::try_from(c).unwrap_or_default())
            .collect();
        Some(TraceFilter { buckets })
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        for (n, ids) in [
            (1, vec![TraceId(7)]),
            (160, (1..=160u128).map(TraceId).collect::<Vec<_>>()),
            (
                1000,
                (0..1000u128)
                    .map(|i| TraceId(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
                    .collect(),
            ),
        ] {
            let f = TraceFilter::new(&ids);
            assert_eq!(f.bytes(), (n * 16usize).div_ceil(256).max(1) * 32);
            assert!(ids.iter().all(|id| f.may_contain(*id)), "{n} ids");
            let probes = 200_000u128;
            let false_hits = (0..probes)
                .map(|i| TraceId((1u128 << 100) + i))
                .filter(|id| f.may_contain(*id))
                .count();
            let rate = false_hits as f64 / probes as f64;
            assert!(rate < 0.005, "{n} ids: false positive rate {rate}");
        }
    }
}
