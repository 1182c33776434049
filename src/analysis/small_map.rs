//! A map of a few entries kept as one sorted `Vec`, for the per-allocation and per-session tables that
//! nearly always hold one to three entries (a TURN allocation's permissions, channels and peers). A
//! `BTreeMap` allocates a whole node of eleven entries for its first one: with a permission's or a
//! channel's ~150 bytes that is ~1.7 KB per table, ~4 KB per allocation, and a busy TURN server's capture
//! holds thousands of open allocations. Here the first entry allocates room for one and the room then
//! doubles. Iteration is in key order, as a `BTreeMap`'s is, so what the reports list does not change.
//! Lookups are binary searches; the tables that use it are bounded by named constants (`MAX_PERMISSIONS`,
//! `MAX_CHANNELS`, `MAX_PEERS`), so an insert's shift stays short.

use std::borrow::Borrow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap { entries: Vec::new() }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        self.entries.get(i).map(|(_, v)| v)
    }

    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// The value at `key`, inserted from `make` when there is none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.make_room();
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.make_room();
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Room for one more entry: one for the first, then twice what is held (a `Vec`'s own growth starts
    /// at four entries).
    fn make_room(&mut self) {
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact(self.entries.len().max(1));
        }
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }
}

/// Pushes onto a list that nearly always stays short (an ICE session's pairs, an agent's addresses):
/// room for one at first, then twice what is held, where a `Vec` would start at four.
pub(crate) fn push_sparing<T>(list: &mut Vec<T>, x: T) {
    if list.len() == list.capacity() {
        list.reserve_exact(list.len().max(1));
    }
    list.push(x);
}

#[cfg(test)]
impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> std::ops::Index<&Q> for SmallMap<K, V> {
    type Output = V;

    /// Like a `BTreeMap`'s: panics when the key is absent (tests only).
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("SmallMap: no entry for the key"),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Any sequence of inserts and lookups gives what a `BTreeMap` gives, in the same order, and the
    /// room held never exceeds twice the entries (one for one).
    #[test]
    fn behaves_as_a_btree_map_in_less_room() {
        let mut small = SmallMap::default();
        let mut btree = BTreeMap::new();
        // A fixed pseudo-random sequence (xorshift) of keys in a small range, so keys repeat.
        let mut x: u32 = 0x9E37_79B9;
        for step in 0..2_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let key = x % 97;
            match step % 3 {
                0 => assert_eq!(small.insert(key, step), btree.insert(key, step)),
                1 => {
                    *small.get_or_insert_with(key, || 0) += 1;
                    *btree.entry(key).or_insert(0) += 1;
                }
                _ => {
                    assert_eq!(small.get(&key), btree.get(&key));
                    assert_eq!(small.contains_key(&key), btree.contains_key(&key));
                }
            }
            assert_eq!(small.len(), btree.len());
            assert!(small.entries.capacity() <= 2 * small.len().max(1));
        }
        assert!(small.iter().eq(btree.iter()));
        assert!(small.values().eq(btree.values()));
        let mut one = SmallMap::default();
        one.insert(7u16, [0u8; 100]);
        assert_eq!(one.entries.capacity(), 1);
        let mut list = Vec::new();
        for i in 0..100 {
            push_sparing(&mut list, i);
            assert!(list.capacity() <= 2 * list.len());
        }
        assert!(list.iter().copied().eq(0..100));
    }
}
