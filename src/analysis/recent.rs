//! Recently seen datagrams, for telling another copy of one datagram (seen through another path: the
//! wire, a TURN allocation, another capture point) from a new datagram with the same bytes.
//!
//! A fixed set-associative table: a datagram's hash picks a bucket of [`WAYS`] entries (two cache lines);
//! a new datagram takes an empty or expired entry of its bucket, else the oldest. Memory is fixed
//! ([`DUPLICATE_MEMORY`] entries, 256 KiB) and a check costs one bucket, where a hash map with an expiry
//! queue cost three lookups per relayed media packet. A copy is missed only when more than [`WAYS`]
//! datagrams within the window share its bucket: at 50,000 relayed packets/s (1,000 within a 20 ms
//! window, about half an entry per bucket) that is about one in 2·10⁵.
use crate::capture::Timestamp;

/// Datagrams remembered at most.
pub(crate) const DUPLICATE_MEMORY: usize = 8192;
/// Entries per bucket.
pub(crate) const WAYS: usize = 4;
const BUCKETS: usize = DUPLICATE_MEMORY / WAYS;
const BUCKET_BITS: u32 = BUCKETS.trailing_zeros();
/// Paths one datagram can be seen through at one capture point: the sender's allocation, the wire, the
/// receiver's allocation, and one spare. Further paths are not remembered (their copies count as copies).
pub(crate) const MAX_PATHS: usize = 4;

#[derive(Clone, Copy, Default)]
struct Entry {
    hash: u64,
    ts: u64,
    /// Paths seen, as non-zero tags; 0 ends the list, an entry with none is empty.
    paths: [u32; MAX_PATHS],
}

impl Entry {
    fn live(&self) -> bool {
        self.paths[0] != 0
    }
}

pub(crate) struct Recent {
    entries: Vec<Entry>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            entries: vec![Entry::default(); DUPLICATE_MEMORY],
        }
    }
}

impl Recent {
    /// Whether the datagram `hash`, seen at `ts` through `path`, is another copy of one seen within
    /// `window` (nanoseconds) through other paths; `path` is then added to it. Otherwise it is remembered
    /// as a new datagram (a copy through a path already seen is a retransmission: the same bytes sent
    /// again).
    pub(crate) fn is_copy(&mut self, hash: u64, path: u64, ts: Timestamp, window: u64) -> bool {
        #[allow(clippy::cast_possible_truncation)] // folds the 64-bit path into a 32-bit tag on purpose
        let tag = ((path ^ (path >> 32)) as u32).max(1);
        let b = (hash >> (64 - BUCKET_BITS)) as usize * WAYS;
        let Some(bucket) = self.entries.get_mut(b..b + WAYS) else {
            return false;
        };
        let fresh = Entry {
            hash,
            ts: ts.0,
            paths: [tag, 0, 0, 0],
        };
        if let Some(e) = bucket.iter_mut().find(|e| e.live() && e.hash == hash) {
            if ts.0.saturating_sub(e.ts) <= window && !e.paths.contains(&tag) {
                if let Some(slot) = e.paths.iter_mut().find(|p| **p == 0) {
                    *slot = tag;
                }
                return true;
            }
            *e = fresh;
            return false;
        }
        // An empty entry, else the one seen longest ago (expired or not).
        if let Some(victim) = bucket.iter_mut().min_by_key(|e| (e.live(), e.ts)) {
            *victim = fresh;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 20_000_000;

    #[test]
    fn a_copy_through_another_path_within_the_window_is_a_copy() {
        let mut r = Recent::default();
        let t = Timestamp(5_000_000_000);
        assert!(!r.is_copy(42, 1, t, WINDOW));
        assert!(r.is_copy(42, 2, Timestamp(t.0 + WINDOW), WINDOW));
        // The third path too, then the first path again is a retransmission: a new datagram.
        assert!(r.is_copy(42, 3, Timestamp(t.0 + 1), WINDOW));
        assert!(!r.is_copy(42, 1, Timestamp(t.0 + 2), WINDOW));
        // Past the window, another path is a new datagram as well.
        assert!(!r.is_copy(42, 2, Timestamp(t.0 + 3 + WINDOW), WINDOW));
    }

    #[test]
    fn a_full_bucket_forgets_its_oldest_datagram_only() {
        let mut r = Recent::default();
        // Hashes with the same top bits share a bucket.
        let same_bucket = |i: u64| (7u64 << (64 - BUCKET_BITS)) | i;
        for i in 0..=WAYS as u64 {
            assert!(!r.is_copy(same_bucket(i), 1, Timestamp(i), WINDOW));
        }
        // The first was replaced by the fifth; the others are still known.
        assert!(!r.is_copy(same_bucket(0), 2, Timestamp(10), WINDOW));
        for i in 2..=WAYS as u64 {
            assert!(r.is_copy(same_bucket(i), 2, Timestamp(10), WINDOW), "{i}");
        }
    }

    #[test]
    fn paths_beyond_the_bound_still_count_as_copies() {
        let mut r = Recent::default();
        assert!(!r.is_copy(9, 1, Timestamp(0), WINDOW));
        for p in 2..10 {
            assert!(r.is_copy(9, p, Timestamp(0), WINDOW), "path {p}");
        }
    }
}
