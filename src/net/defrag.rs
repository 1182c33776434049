//! IP fragment reassembly for IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5), bounded in memory and time.
//!
//! Fragments are grouped by (source, destination, protocol, identification) and copied into one buffer
//! per datagram; when the last byte is in, the reassembled IP payload (the transport header onwards for
//! IPv4, the fragmentable part for IPv6) is handed back. At most [`MAX_REASSEMBLIES`] datagrams are held
//! at once, each at most [`MAX_DATAGRAM_LEN`] bytes, for at most [`REASSEMBLY_TIMEOUT`] of capture time,
//! so a capture full of fragments that never complete costs a fixed amount of memory.
//!
//! Overlapping fragments discard the whole datagram, for IPv6 because RFC 5722 says so and for IPv4 because
//! overlaps are how fragmentation attacks hide content from analysers like this one: a passive observer
//! cannot know which copy the receiver kept. Exact duplicates (a capture on `any` sees a forwarded fragment
//! twice) are dropped on their own, as RFC 8200 §4.5 permits. This module does not look inside the
//! reassembled payload and does not check IP or transport checksums.
use std::collections::HashMap;
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::net::NetStats;

/// Datagrams under reassembly at once. A STUN/TURN capture rarely has more than a handful in flight
/// (fragmented UDP is mostly large DTLS handshakes and TURN-relayed media with a small MTU); 256 leaves
/// ample room for those while capping memory at 256 × 64 KiB = 16 MiB when every slot holds a
/// maximum-size datagram. When full, the oldest datagram is evicted (counted as `defrag_dropped_bounds`).
pub(crate) const MAX_REASSEMBLIES: usize = 256;

/// The largest reassembled IP payload. IPv4's total length and IPv6's payload length are both 16-bit
/// fields, and RFC 8200 §4.5 discards fragments whose offset plus length exceeds 65,535.
pub(crate) const MAX_DATAGRAM_LEN: usize = 65_535;

/// How long (in capture time, from its first fragment) a datagram may wait for the rest of its fragments.
/// Linux's `net.ipv4.ipfrag_time` default: a receiver has given up on the datagram by then, so bytes
/// completing it later would not have been delivered either.
pub(crate) const REASSEMBLY_TIMEOUT: u64 = 30 * 1_000_000_000;

/// What identifies one datagram's fragments (RFC 791 §3.2; RFC 8200 §4.5 adds nothing but a 32-bit id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragmentKey {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// IPv4 protocol, or the Next Header of the IPv6 Fragment header.
    pub(crate) protocol: u8,
    pub(crate) id: u32,
}

/// One fragment's place in its datagram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    /// Byte offset of `data` in the reassembled payload (the header field times 8).
    pub(crate) offset: usize,
    /// The More Fragments flag.
    pub(crate) more: bool,
    pub(crate) data: &'a [u8],
}

struct Reassembly {
    /// Capture time of the first fragment: the timeout runs from here, as in Linux.
    first_ts: Timestamp,
    /// Arrival order of the first fragment, for evicting the oldest when the table is full.
    arrival: u64,
    data: Vec<u8>,
    /// Byte ranges received, sorted, disjoint and not adjacent (adjacent ones are merged). Fragments other
    /// than the last are at least 8 bytes, so there are at most 65,535 / 16 of these.
    have: Vec<(usize, usize)>,
    /// Payload length, known once the fragment without More Fragments has arrived.
    end: Option<usize>,
}

/// The reassembly table.
#[derive(Default)]
pub(crate) struct Defragmenter {
    pending: HashMap<FragmentKey, Reassembly>,
    arrivals: u64,
    /// Earliest `first_ts` in `pending`, so that most packets cost one comparison instead of a scan.
    oldest: Option<Timestamp>,
}

impl Defragmenter {
    #[cfg(test)]
    pub(crate) fn new() -> Defragmenter {
        Defragmenter::default()
    }

    /// Datagrams currently under reassembly.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds one fragment. Returns the reassembled payload when this fragment completed its datagram.
    pub(crate) fn add(
        &mut self,
        key: FragmentKey,
        frag: Fragment<'_>,
        now: Timestamp,
        stats: &mut NetStats,
    ) -> Option<Vec<u8>> {
        self.expire(now, stats);

        let Some(end) = frag
            .offset
            .checked_add(frag.data.len())
            .filter(|&e| e <= MAX_DATAGRAM_LEN)
        else {
            // RFC 8200 §4.5 / RFC 791: nothing can be reassembled past 65,535 bytes (the ping-of-death
            // shape); the fragment is discarded and the rest may still time out.
            stats.defrag_oversize += 1;
            return None;
        };
        if frag.more && (frag.data.is_empty() || frag.data.len() % 8 != 0) {
            // RFC 8200 §4.5: a fragment that is not the last must be a multiple of 8 octets; RFC 791's
            // offsets are in 8-octet units, so the same holds for IPv4.
            stats.defrag_bad_fragment += 1;
            return None;
        }

        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_REASSEMBLIES {
                self.evict_oldest();
                stats.defrag_dropped_bounds += 1;
            }
            self.arrivals += 1;
            self.pending.insert(
                key,
                Reassembly {
                    first_ts: now,
                    arrival: self.arrivals,
                    data: Vec::new(),
                    have: Vec::new(),
                    end: None,
                },
            );
            self.oldest = Some(self.oldest.map_or(now, |o| o.min(now)));
        }
        let r = self.pending.get_mut(&key)?;

        match r.place(frag, end) {
            Placed::Stored => {}
            Placed::Duplicate => {
                stats.defrag_duplicates += 1;
                return None;
            }
            Placed::Overlap => {
                stats.defrag_overlaps += 1;
                self.remove(&key);
                return None;
            }
            Placed::ConflictingEnd => {
                stats.defrag_bad_fragment += 1;
                self.remove(&key);
                return None;
            }
        }

        let total = r.end?;
        if r.have.as_slice() != [(0, total)] {
            return None;
        }
        let mut done = self.remove(&key)?;
        done.data.truncate(total);
        Some(done.data)
    }

    /// Drops datagrams whose first fragment is more than [`REASSEMBLY_TIMEOUT`] older than `now`.
    pub(crate) fn expire(&mut self, now: Timestamp, stats: &mut NetStats) {
        match self.oldest {
            Some(oldest) if now.0.saturating_sub(oldest.0) > REASSEMBLY_TIMEOUT => {}
            _ => return,
        }
        let before = self.pending.len();
        self.pending
            .retain(|_, r| now.0.saturating_sub(r.first_ts.0) <= REASSEMBLY_TIMEOUT);
        stats.defrag_timeouts += (before - self.pending.len()) as u64;
        self.oldest = self.pending.values().map(|r| r.first_ts).min();
    }

    /// End of input: whatever is still waiting will never complete.
    pub(crate) fn finish(&mut self, stats: &mut NetStats) {
        stats.defrag_unfinished += self.pending.len() as u64;
        self.pending.clear();
        self.oldest = None;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, r)| r.arrival)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &FragmentKey) -> Option<Reassembly> {
        let r = self.pending.remove(key)?;
        if self.oldest == Some(r.first_ts) {
            self.oldest = self.pending.values().map(|r| r.first_ts).min();
        }
        Some(r)
    }
}

enum Placed {
    Stored,
    Duplicate,
    Overlap,
    ConflictingEnd,
}

impl Reassembly {
    fn place(&mut self, frag: Fragment<'_>, end: usize) -> Placed {
        let start = frag.offset;
        // The last fragment fixes the length; every other fragment must fit inside it (RFC 8200 §4.5).
        let end_conflict = match (self.end, frag.more) {
            (Some(total), true) => end > total,
            (Some(total), false) => end != total,
            (None, false) => self.have.last().is_some_and(|&(_, e)| e > end),
            (None, true) => false,
        };

        if start < end {
            // `have` is sorted and disjoint: the only range that can overlap is the first ending after
            // `start`.
            let first_after = self.have.partition_point(|&(_, e)| e <= start);
            if let Some(&(s, e)) = self.have.get(first_after).filter(|&&(s, _)| s < end) {
                // Bytes we already have. Identical bytes inside one received range are a duplicate
                // fragment (RFC 8200 §4.5 lets us drop just that copy); anything else is an overlap.
                let same = s <= start && end <= e && self.data.get(start..end) == Some(frag.data);
                return if same && !end_conflict {
                    Placed::Duplicate
                } else {
                    Placed::Overlap
                };
            }
        }
        if end_conflict {
            return Placed::ConflictingEnd;
        }

        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(frag.data);
        }
        if start < end {
            self.insert_range(start, end);
        }
        if !frag.more {
            self.end = Some(end);
        }
        Placed::Stored
    }

    /// Inserts a range known not to overlap any held one, merging it with the neighbours it touches.
    fn insert_range(&mut self, start: usize, end: usize) {
        let at = self.have.partition_point(|&(s, _)| s < start);
        let (mut s, mut e) = (start, end);
        let mut from = at;
        let mut to = at;
        if at > 0 && self.have.get(at - 1).is_some_and(|&(_, pe)| pe == start) {
            from = at - 1;
            s = self.have.get(at - 1).map_or(s, |&(ps, _)| ps);
        }
        if self.have.get(at).is_some_and(|&(ns, _)| ns == end) {
            e = self.have.get(at).map_or(e, |&(_, ne)| ne);
            to = at + 1;
        }
        self.have.splice(from..to, [(s, e)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 17,
            id,
        }
    }

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment { offset, more, data }
    }

    const T0: Timestamp = Timestamp(1_000_000_000);

    #[test]
    fn three_fragments_in_any_order() {
        let payload: Vec<u8> = (0..40u8).collect();
        let parts = [
            frag(0, true, &payload[..16]),
            frag(16, true, &payload[16..32]),
            frag(32, false, &payload[32..]),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut d = Defragmenter::new();
            let mut stats = NetStats::default();
            assert_eq!(d.add(key(1), parts[order[0]], T0, &mut stats), None);
            assert_eq!(d.add(key(1), parts[order[1]], T0, &mut stats), None);
            assert_eq!(
                d.add(key(1), parts[order[2]], T0, &mut stats),
                Some(payload.clone()),
                "{order:?}"
            );
            assert!(d.is_empty());
        }
    }

    #[test]
    fn duplicates_are_ignored_overlaps_drop_the_datagram() {
        let payload = [7u8; 24];
        let mut d = Defragmenter::new();
        let mut stats = NetStats::default();
        assert_eq!(d.add(key(1), frag(0, true, &payload[..8]), T0, &mut stats), None);
        assert_eq!(d.add(key(1), frag(0, true, &payload[..8]), T0, &mut stats), None);
        assert_eq!(stats.defrag_duplicates, 1);
        assert_eq!(d.len(), 1);
        // Same place, different bytes: an overlap.
        assert_eq!(d.add(key(1), frag(0, true, &[9; 8]), T0, &mut stats), None);
        assert_eq!(stats.defrag_overlaps, 1);
        assert!(d.is_empty());
        // Partial overlap: 8..24 then 16..24 with a different end.
        assert_eq!(d.add(key(2), frag(8, true, &payload[..16]), T0, &mut stats), None);
        assert_eq!(
            d.add(key(2), frag(16, false, &payload[..4]), T0, &mut stats),
            None
        );
        assert_eq!(stats.defrag_overlaps, 2);
        assert!(d.is_empty());
    }

    #[test]
    fn conflicting_ends_and_bad_lengths() {
        let mut d = Defragmenter::new();
        let mut stats = NetStats::default();
        assert_eq!(d.add(key(1), frag(16, false, &[1; 4]), T0, &mut stats), None);
        // Data beyond the known end.
        assert_eq!(d.add(key(1), frag(24, true, &[1; 8]), T0, &mut stats), None);
        assert_eq!(stats.defrag_bad_fragment, 1);
        assert!(d.is_empty());
        // Not a multiple of 8 with More Fragments set.
        assert_eq!(d.add(key(2), frag(0, true, &[1; 5]), T0, &mut stats), None);
        assert_eq!(stats.defrag_bad_fragment, 2);
        // 65,528 + 16 > 65,535.
        assert_eq!(d.add(key(3), frag(65_528, false, &[1; 16]), T0, &mut stats), None);
        assert_eq!(stats.defrag_oversize, 1);
        assert!(d.is_empty());
    }

    #[test]
    fn incomplete_datagrams_time_out_after_30_seconds() {
        let mut d = Defragmenter::new();
        let mut stats = NetStats::default();
        d.add(key(1), frag(0, true, &[0; 8]), T0, &mut stats);
        d.expire(Timestamp(T0.0 + 30_000_000_000), &mut stats);
        assert_eq!((d.len(), stats.defrag_timeouts), (1, 0));
        // The second half arrives 30 s + 1 ns later: the first half is gone, so it starts a new datagram.
        let late = Timestamp(T0.0 + 30_000_000_001);
        assert_eq!(d.add(key(1), frag(8, false, &[0; 8]), late, &mut stats), None);
        assert_eq!((d.len(), stats.defrag_timeouts), (1, 1));
    }

    #[test]
    fn table_never_exceeds_its_bound() {
        let mut d = Defragmenter::new();
        let mut stats = NetStats::default();
        for id in 0..10_000u32 {
            // One millisecond apart: 10 s in all, so nothing times out and only the bound acts.
            let ts = Timestamp(T0.0 + u64::from(id) * 1_000_000);
            assert_eq!(d.add(key(id), frag(0, true, &[0; 1480]), ts, &mut stats), None);
            assert!(d.len() <= MAX_REASSEMBLIES);
        }
        assert_eq!(d.len(), MAX_REASSEMBLIES);
        assert_eq!(stats.defrag_dropped_bounds, 10_000 - MAX_REASSEMBLIES as u64);
        // The survivors are the newest: the last id can still be completed.
        let last = 10_000 - 1;
        let ts = Timestamp(T0.0 + 10_000_000_000);
        assert_eq!(
            d.add(key(last), frag(1480, false, &[1; 2]), ts, &mut stats)
                .map(|v| v.len()),
            Some(1482)
        );
    }
}
