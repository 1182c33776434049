//! The transaction index's map from a key's 32-bit fingerprint to its slot ([`super::Index`]): an
//! open-addressing table with linear probing, each entry the fingerprint and the slot in one `u64`.
//!
//! A `HashMap<u32, u32>` (hashbrown) reads a control byte and then the entry, in two arrays: on a busy
//! STUN server's capture each lookup and each retirement of a transaction quiet for seconds missed the
//! cache twice, and `Transactions::retire` was ~19 % of the analysis thread on `scripts/bench`'s stun
//! profile, nearly all of it those two loads (perf annotate). Here an entry sits at its fingerprint's
//! home or a few places after it, in one array: one miss. Removal shifts the entries after it back
//! (no tombstones), so a table that takes and lets go of millions of keys never fills with dead ones.
//! The fingerprints are keyed hashes (random per run), so their low bits spread keys evenly and a
//! capture cannot aim keys at one run of the table.

/// An empty place: no slot is `u32::MAX` ([`FingerprintTable::insert`] refuses it).
const EMPTY: u64 = u64::MAX;
/// Places the table starts with once it holds a key.
const FIRST_CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct FingerprintTable {
    /// `fingerprint << 32 | slot`, or [`EMPTY`]; a power of two long (or empty).
    places: Vec<u64>,
    len: usize,
}

fn pack(fingerprint: u32, slot: u32) -> u64 {
    (u64::from(fingerprint) << 32) | u64::from(slot)
}

fn fingerprint_of(e: u64) -> u32 {
    // The high half.
    #[allow(clippy::cast_possible_truncation)]
    let f = (e >> 32) as u32;
    f
}

fn slot_of(e: u64) -> u32 {
    // The low half.
    #[allow(clippy::cast_possible_truncation)]
    let s = e as u32;
    s
}

impl FingerprintTable {
    fn mask(&self) -> usize {
        self.places.len().wrapping_sub(1)
    }

    /// Where a probe for `fingerprint` starts.
    fn home(&self, fingerprint: u32) -> usize {
        fingerprint as usize & self.mask()
    }

    /// The place holding `fingerprint`.
    fn find(&self, fingerprint: u32) -> Option<usize> {
        if self.places.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut at = self.home(fingerprint);
        // The table is never full (at most three quarters), so an empty place ends every probe.
        loop {
            let e = *self.places.get(at)?;
            if e == EMPTY {
                return None;
            }
            if fingerprint_of(e) == fingerprint {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot `fingerprint` maps to.
    pub(super) fn get(&self, fingerprint: u32) -> Option<u32> {
        let at = self.find(fingerprint)?;
        self.places.get(at).map(|&e| slot_of(e))
    }

    /// Reads the place where a probe for `fingerprint` starts, so that it is in the cache for the lookup
    /// that follows ([`super::Transactions::retire_all`]); the value is of no use.
    pub(super) fn read_ahead(&self, fingerprint: u32) -> u64 {
        self.places.get(self.home(fingerprint)).copied().unwrap_or(0)
    }

    /// Maps `fingerprint` to `slot`, in place of what it mapped to. Returns false (and maps nothing) for
    /// `slot` `u32::MAX`, which marks an empty place.
    pub(super) fn insert(&mut self, fingerprint: u32, slot: u32) -> bool {
        if slot == u32::MAX {
            return false;
        }
        if let Some(at) = self.find(fingerprint) {
            self.places[at] = pack(fingerprint, slot);
            return true;
        }
        if (self.len + 1) * 4 > self.places.len() * 3 {
            self.grow();
        }
        self.place(pack(fingerprint, slot));
        self.len += 1;
        true
    }

    /// Puts entry `e`, whose fingerprint the table does not hold, at the first empty place from its home.
    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut at = self.home(fingerprint_of(e));
        while self.places[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.places[at] = e;
    }

    /// Removes `fingerprint` if it maps to `slot`. Returns whether it did.
    pub(super) fn remove(&mut self, fingerprint: u32, slot: u32) -> bool {
        let Some(mut hole) = self.find(fingerprint) else {
            return false;
        };
        if slot_of(self.places[hole]) != slot {
            return false;
        }
        // Backward-shift deletion: each entry after the hole, up to the next empty place, moves into the
        // hole when its home is not between the hole and where it is (cyclically), so every probe still
        // finds it.
        let mask = self.mask();
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let e = self.places[at];
            if e == EMPTY {
                break;
            }
            let home = self.home(fingerprint_of(e));
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.places[hole] = e;
                hole = at;
            }
        }
        self.places[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Keys held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Twice the places (the first ones when empty), every entry placed again.
    fn grow(&mut self) {
        let capacity = (self.places.len() * 2).max(FIRST_CAPACITY);
        let old = std::mem::replace(&mut self.places, vec![EMPTY; capacity]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random operations, checked against a `HashMap`: first with every key homed within 24
    /// places of the table's end, so that runs wrap around it and removals break them; then with 4,096
    /// homes, so that the table grows past several sizes. Slots are replaced, and removals with the wrong
    /// slot refused.
    #[test]
    fn the_table_answers_as_a_hash_map_would() {
        let mut table = FingerprintTable::default();
        let mut model: HashMap<u32, u32> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let first = u32::try_from(FIRST_CAPACITY).expect("small");
        for round in 0..300_000u32 {
            let r = next();
            #[allow(clippy::cast_possible_truncation)]
            let (low, high, slot) = ((r >> 20) as u32, (r as u32 & 1) << 29, (r >> 40) as u32 & 0xffff);
            let home = if round < 100_000 {
                (first - 12 + low % 24) % first
            } else {
                low & 0xfff
            };
            let f = home | high;
            match (r >> 8) % 5 {
                0 | 1 => {
                    assert!(table.insert(f, slot));
                    model.insert(f, slot);
                }
                2 => {
                    let held = model.get(&f).copied();
                    let wrong = slot.wrapping_add(1);
                    let removed = table.remove(f, wrong);
                    assert_eq!(removed, held == Some(wrong), "round {round}");
                    if removed {
                        model.remove(&f);
                    }
                    if let Some(s) = model.get(&f).copied() {
                        assert!(table.remove(f, s));
                        model.remove(&f);
                    }
                }
                _ => {}
            }
            assert_eq!(table.len(), model.len());
            if (round < 100_000 && round % 10 == 0) || round % 5_000 == 0 {
                for (&f, &s) in &model {
                    assert_eq!(table.get(f), Some(s), "round {round}");
                }
            }
        }
        assert!(table.places.len() > FIRST_CAPACITY, "the table grew");
    }

    /// Entries whose run wraps past the table's end stay found when one before them goes.
    #[test]
    fn removal_keeps_a_run_that_wraps_around() {
        let mut t = FingerprintTable::default();
        let last = u32::try_from(FIRST_CAPACITY - 1).expect("small");
        // Three keys homed at the last place: one there, two wrapped to the front.
        let keys = [last, last | 1 << 20, last | 2 << 20];
        for (i, &k) in keys.iter().enumerate() {
            assert!(t.insert(k, u32::try_from(i).expect("small")));
        }
        // A key homed at place 0 after the wrapped ones.
        assert!(t.insert(1 << 24, 9));
        assert!(t.remove(keys[0], 0));
        assert_eq!(t.get(keys[1]), Some(1));
        assert_eq!(t.get(keys[2]), Some(2));
        assert_eq!(t.get(1 << 24), Some(9));
        assert_eq!(t.get(keys[0]), None);
        // A key at the first place, homed there, behind a run that wraps: it stays when the run's first
        // entry goes.
        let mut u = FingerprintTable::default();
        let (a, b) = (last - 1, (last - 1) | 1 << 20);
        assert!(u.insert(a, 1) && u.insert(b, 2) && u.insert(1 << 24, 3));
        // Homed at the last place, it goes to place 1.
        assert!(u.insert(last, 4));
        assert!(u.remove(a, 1));
        assert_eq!(
            (u.get(b), u.get(last), u.get(1 << 24)),
            (Some(2), Some(4), Some(3))
        );
        assert!(!t.insert(5, u32::MAX), "the empty marker is no slot");
        assert_eq!(t.get(5), None);
    }
}
