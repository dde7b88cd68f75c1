//! A batching state machine: collects items until a count, size or age limit is reached. It
//! reads no clock; the caller passes the current time in and asks [`Batcher::deadline_nanos`]
//! when to poll next.

use alloc::vec::Vec;

/// When a batch is complete. Limits are inclusive: a batch is handed out as soon as it holds
/// `max_items` items or `max_bytes` bytes, so the item that crosses a limit is part of the
/// batch it completes (a batch may therefore exceed `max_bytes` by one item). A limit of 0
/// hands out every item on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Summed item counts that complete a batch (default 8192).
    pub max_items: usize,
    /// Summed item sizes that complete a batch (default 8 MiB).
    pub max_bytes: usize,
    /// Age of the oldest pending item at which [`Batcher::poll`] hands the batch out
    /// (default 200 ms).
    pub max_age_nanos: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_items: 8192,
            max_bytes: 8 << 20,
            max_age_nanos: 200_000_000,
        }
    }
}

/// Collects items into batches. See [`BatchConfig`] for when a batch is complete.
#[derive(Debug)]
pub struct Batcher<T> {
    cfg: BatchConfig,
    items: Vec<T>,
    count: usize,
    bytes: usize,
    /// Arrival time of the oldest pending item.
    oldest_nanos: Option<u64>,
    /// Length of the last batch handed out, reserved on the next push to avoid regrowth.
    capacity_hint: usize,
}

impl<T> Batcher<T> {
    /// An empty batcher.
    pub fn new(cfg: BatchConfig) -> Self {
        Batcher {
            cfg,
            items: Vec::new(),
            count: 0,
            bytes: 0,
            oldest_nanos: None,
            capacity_hint: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.cfg
    }

    /// Adds an item weighing `count` items and `bytes` bytes; returns the batch (including this
    /// item) when `max_items` or `max_bytes` is reached.
    pub fn push(&mut self, item: T, count: usize, bytes: usize, now_nanos: u64) -> Option<Vec<T>> {
        if self.items.is_empty() {
            self.items.reserve(self.capacity_hint);
            self.oldest_nanos = Some(now_nanos);
        }
        self.items.push(item);
        self.count = self.count.saturating_add(count);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.count >= self.cfg.max_items || self.bytes >= self.cfg.max_bytes {
            self.take()
        } else {
            None
        }
    }

    /// Returns the pending batch if the oldest pending item is at least `max_age` old.
    pub fn poll(&mut self, now_nanos: u64) -> Option<Vec<T>> {
        match self.deadline_nanos() {
            Some(deadline) if now_nanos >= deadline => self.take(),
            _ => None,
        }
    }

    /// When [`poll`](Self::poll) will next return `Some` (the oldest item's arrival plus
    /// `max_age`, saturating), `None` if empty.
    pub fn deadline_nanos(&self) -> Option<u64> {
        self.oldest_nanos
            .map(|t| t.saturating_add(self.cfg.max_age_nanos))
    }

    /// Everything pending (for shutdown), `None` if empty.
    pub fn take(&mut self) -> Option<Vec<T>> {
        if self.items.is_empty() {
            return None;
        }
        self.count = 0;
        self.bytes = 0;
        self.oldest_nanos = None;
        let batch = core::mem::take(&mut self.items);
        self.capacity_hint = batch.len();
        Some(batch)
    }

    /// Summed item counts pending.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Summed item sizes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether no item is pending (items of zero weight count as pending).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[derive(Debug, PartialEq)]
    enum Op {
        /// push(item, count, bytes, now) -> expected batch
        Push(u32, usize, usize, u64, Option<Vec<u32>>),
        /// poll(now) -> expected batch
        Poll(u64, Option<Vec<u32>>),
        /// take() -> expected batch
        Take(Option<Vec<u32>>),
        /// expected (len, bytes, deadline)
        State(usize, usize, Option<u64>),
    }
    use Op::*;

    fn run(cfg: BatchConfig, ops: Vec<Op>) {
        let mut b = Batcher::new(cfg);
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Push(item, count, bytes, now, want) => {
                    assert_eq!(b.push(item, count, bytes, now), want, "op {i}")
                }
                Poll(now, want) => assert_eq!(b.poll(now), want, "op {i}"),
                Take(want) => assert_eq!(b.take(), want, "op {i}"),
                State(len, bytes, deadline) => {
                    assert_eq!(
                        (b.len(), b.bytes(), b.deadline_nanos()),
                        (len, bytes, deadline),
                        "op {i}"
                    );
                    assert_eq!(b.is_empty(), deadline.is_none(), "op {i}");
                }
            }
        }
    }

    fn cfg(max_items: usize, max_bytes: usize, max_age_nanos: u64) -> BatchConfig {
        BatchConfig {
            max_items,
            max_bytes,
            max_age_nanos,
        }
    }

    #[test]
    fn by_count() {
        run(
            cfg(5, 1000, 100),
            vec![
                State(0, 0, None),
                Push(1, 2, 10, 0, None),
                Push(2, 2, 10, 5, None),
                State(4, 20, Some(100)),
                Push(3, 1, 10, 6, Some(vec![1, 2, 3])),
                State(0, 0, None),
                // one item heavier than the whole limit is a batch on its own
                Push(4, 9, 1, 7, Some(vec![4])),
            ],
        );
    }

    #[test]
    fn by_bytes() {
        run(
            cfg(100, 50, 100),
            vec![
                Push(1, 1, 30, 0, None),
                Push(2, 1, 30, 1, Some(vec![1, 2])),
                Push(3, 1, 49, 2, None),
                State(1, 49, Some(102)),
                Push(4, 1, 1, 3, Some(vec![3, 4])),
            ],
        );
    }

    #[test]
    fn by_age_and_deadline() {
        run(
            cfg(100, 1000, 100),
            vec![
                Poll(0, None),
                Push(1, 1, 1, 10, None),
                Push(2, 1, 1, 60, None),
                State(2, 2, Some(110)),
                Poll(109, None),
                Poll(110, Some(vec![1, 2])),
                Poll(500, None),
                State(0, 0, None),
                // the deadline starts again with the next item
                Push(3, 1, 1, 600, None),
                State(1, 1, Some(700)),
                Poll(699, None),
                Poll(1_000, Some(vec![3])),
            ],
        );
    }

    #[test]
    fn take_on_shutdown() {
        run(
            cfg(100, 1000, 100),
            vec![
                Take(None),
                Push(1, 3, 7, 0, None),
                Push(2, 3, 7, 0, None),
                Take(Some(vec![1, 2])),
                Take(None),
                State(0, 0, None),
            ],
        );
    }

    #[test]
    fn zero_limits_and_saturation() {
        run(cfg(0, 1000, 100), vec![Push(1, 1, 1, 0, Some(vec![1]))]);
        run(
            cfg(10, 1000, 0),
            vec![
                Push(1, 1, 1, 5, None),
                State(1, 1, Some(5)),
                Poll(5, Some(vec![1])),
            ],
        );
        run(
            cfg(10, 1000, u64::MAX),
            vec![
                Push(1, 1, 1, 5, None),
                State(1, 1, Some(u64::MAX)),
                Poll(u64::MAX - 1, None),
            ],
        );
        // zero-weight items still wait and are handed out by age
        run(
            cfg(10, 1000, 10),
            vec![
                Push(1, 0, 0, 5, None),
                State(0, 0, Some(15)),
                Poll(15, Some(vec![1])),
            ],
        );
    }
}
