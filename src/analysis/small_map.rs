//! A map for the per-allocation tables that nearly always hold one to three entries (a TURN allocation's
//! permissions, channels and peers). A `BTreeMap` allocates a whole node of eleven entries for its first
//! one: with a permission's or a channel's ~150 bytes that is ~1.7 KB per table, ~4 KB per allocation, and
//! a busy TURN server's capture holds thousands of open allocations. Here up to [`FEW`] entries are one
//! sorted `Vec` whose room starts at one and doubles; past that the map becomes a `BTreeMap`, so that a
//! hostile capture binding thousands of channels on one allocation still inserts in logarithmic time
//! rather than shifting a long `Vec` each time. Iteration is in key order either way, as a `BTreeMap`'s
//! is, so what the reports list does not change.

use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap};

/// Entries kept in the sorted `Vec` before the map becomes a `BTreeMap`: an insert then shifts at most
/// this many, and a lookup's binary search is as short as a node's.
const FEW: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SmallMap<K, V> {
    Few(Vec<(K, V)>),
    Many(BTreeMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            SmallMap::Few(v) => v.len(),
            SmallMap::Many(m) => m.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(key).is_some()
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(v) => {
                let i = find(v, key).ok()?;
                v.get(i).map(|(_, x)| x)
            }
            SmallMap::Many(m) => m.get(key),
        }
    }

    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(v) => {
                let i = find(v, key).ok()?;
                v.get_mut(i).map(|(_, x)| x)
            }
            SmallMap::Many(m) => m.get_mut(key),
        }
    }

    /// The value at `key`, inserted from `make` when there is none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.grow_if_full(&key);
        match self {
            SmallMap::Few(v) => {
                let i = match find(v, &key) {
                    Ok(i) => i,
                    Err(i) => {
                        make_room(v);
                        v.insert(i, (key, make()));
                        i
                    }
                };
                &mut v[i].1
            }
            SmallMap::Many(m) => m.entry(key).or_insert_with(make),
        }
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.grow_if_full(&key);
        match self {
            SmallMap::Few(v) => match find(v, &key) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
                Err(i) => {
                    make_room(v);
                    v.insert(i, (key, value));
                    None
                }
            },
            SmallMap::Many(m) => m.insert(key, value),
        }
    }

    /// Becomes a `BTreeMap` when a new key would take the `Vec` past [`FEW`].
    fn grow_if_full(&mut self, key: &K) {
        if let SmallMap::Few(v) = self {
            if v.len() >= FEW && find(v, key).is_err() {
                *self = SmallMap::Many(std::mem::take(v).into_iter().collect());
            }
        }
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Few(v) => Iter::Few(v.iter()),
            SmallMap::Many(m) => Iter::Many(m.iter()),
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

fn find<K: Borrow<Q>, Q: Ord + ?Sized, V>(v: &[(K, V)], key: &Q) -> Result<usize, usize> {
    v.binary_search_by(|(k, _)| k.borrow().cmp(key))
}

/// Room for one more entry: one for the first, then twice what is held (a `Vec`'s own growth starts at
/// four entries).
fn make_room<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().max(1));
    }
}

/// Pushes onto a list that nearly always stays short (an ICE session's pairs, an agent's addresses):
/// room for one at first, then twice what is held, where a `Vec` would start at four.
pub(crate) fn push_sparing<T>(list: &mut Vec<T>, x: T) {
    make_room(list);
    list.push(x);
}

/// A [`SmallMap`]'s entries in key order.
pub(crate) enum Iter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(btree_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Many(i) => i.next(),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Any sequence of inserts and lookups gives what a `BTreeMap` gives, in the same order, through the
    /// change from a `Vec` to a `BTreeMap`; while it is a `Vec` its room never exceeds twice its entries.
    #[test]
    fn behaves_as_a_btree_map_in_less_room() {
        for range in [7u32, 97] {
            let mut small = SmallMap::default();
            let mut btree = BTreeMap::new();
            // A fixed pseudo-random sequence (xorshift) of keys in a small range, so keys repeat.
            let mut x: u32 = 0x9E37_79B9;
            for step in 0..2_000u32 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let key = x % range;
                match step % 3 {
                    0 => assert_eq!(small.insert(key, step), btree.insert(key, step)),
                    1 => {
                        *small.get_or_insert_with(key, || 0) += 1;
                        *btree.entry(key).or_insert(0) += 1;
                    }
                    _ => {
                        assert_eq!(small.get(&key), btree.get(&key));
                        assert_eq!(small.contains_key(&key), btree.contains_key(&key));
                        if let (Some(a), Some(b)) = (small.get_mut(&key), btree.get_mut(&key)) {
                            *a += 1;
                            *b += 1;
                        }
                    }
                }
                assert_eq!(small.len(), btree.len());
                match &small {
                    SmallMap::Few(v) => {
                        assert!(v.len() <= FEW);
                        assert!(v.capacity() <= 2 * v.len().max(1));
                    }
                    SmallMap::Many(m) => assert!(m.len() > FEW),
                }
            }
            assert_eq!(matches!(small, SmallMap::Many(_)), range as usize > FEW);
            assert!(small.iter().eq(btree.iter()));
            assert!(small.values().eq(btree.values()));
        }
        let mut one = SmallMap::default();
        one.insert(7u16, [0u8; 100]);
        let SmallMap::Few(v) = &one else {
            panic!("one entry is a Vec")
        };
        assert_eq!(v.capacity(), 1);
        let mut list = Vec::new();
        for i in 0..100 {
            push_sparing(&mut list, i);
            assert!(list.capacity() <= 2 * list.len());
        }
        assert!(list.iter().copied().eq(0..100));
    }
}
