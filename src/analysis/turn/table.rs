//! All the TURN allocations of a capture, by the client's 5-tuple toward the server (RFC 8656 §2.2): a
//! hashed index over a slab whose positions stay valid while their allocation is there, with a version per
//! position that tells a cached ChannelData route whether what it read from the allocation still holds. An
//! allocation removed (folded, `analysis::fold`) frees its position for a later one, bumps the position's
//! version and notes its client and server addresses as changed (`changed`, which the analysis takes into
//! its flow stamps), so nothing cached about it survives.
//!
//! It knows nothing of TURN beyond the key: what an allocation holds is `allocation`; when one may be
//! created, and how many, `TurnState` decides (`MAX_ALLOCATIONS`).
use super::{Allocation, AllocationKey};
use crate::analysis::flows::Dirty;
use crate::net::hash::FastHash;
use std::collections::HashMap;

/// The allocations by client/server 5-tuple. Every ChannelData frame looks its allocation up, so they are
/// hashed (B-tree searches comparing `SocketAddr`s were ~20 % of a TURN server capture's analysis, perf);
/// the outputs iterate them in key order, never in hash order.
#[derive(Debug, Default)]
pub(crate) struct Allocations {
    /// Key → position in `slab`.
    index: HashMap<AllocationKey, usize, FastHash>,
    slab: Vec<(AllocationKey, Allocation)>,
    /// Positions freed by [`Allocations::remove`], for the next new allocation.
    free: Vec<usize>,
    /// The client and server addresses of allocations added or removed since the analysis last took them:
    /// which flows' `allocation_of` answers changed.
    changed: Dirty,
    /// Per position: changes whenever the allocation is reached mutably other than to count its media
    /// (`at_mut`), so what was read from it (its channels' peers, its relayed address) stays true while
    /// this is unchanged. A small array beside the slab: checking it does not touch the allocation.
    versions: Vec<u32>,
}

impl Allocations {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
    /// The addresses of allocations added or removed since the last call (see `changed`).
    pub(crate) fn changed(&mut self) -> &mut Dirty {
        &mut self.changed
    }
    fn note(&mut self, key: &AllocationKey) {
        self.changed.note(key.client);
        self.changed.note(key.server);
    }
    /// Takes `key`'s allocation out; its position is reused by a later one (with a new version).
    pub(crate) fn remove(&mut self, key: &AllocationKey) -> Option<Allocation> {
        let i = self.index.remove(key)?;
        self.touch(i);
        self.note(key);
        self.free.push(i);
        self.slab.get_mut(i).map(|(_, a)| std::mem::take(a))
    }
    /// A position for a new allocation `key` (a freed one first).
    fn place(&mut self, key: AllocationKey, a: Allocation) -> usize {
        self.note(&key);
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slab.get_mut(i) {
                    *slot = (key, a);
                }
                self.touch(i);
                i
            }
            None => {
                self.slab.push((key, a));
                self.versions.push(0);
                self.slab.len() - 1
            }
        };
        self.index.insert(key, i);
        i
    }
    pub(crate) fn contains_key(&self, key: &AllocationKey) -> bool {
        self.index.contains_key(key)
    }
    pub(crate) fn get(&self, key: &AllocationKey) -> Option<&Allocation> {
        self.slab.get(*self.index.get(key)?).map(|(_, a)| a)
    }
    pub(crate) fn get_mut(&mut self, key: &AllocationKey) -> Option<&mut Allocation> {
        let i = *self.index.get(key)?;
        self.touch(i);
        self.slab.get_mut(i).map(|(_, a)| a)
    }
    /// See `versions`.
    fn touch(&mut self, position: usize) {
        if let Some(v) = self.versions.get_mut(position) {
            *v = v.wrapping_add(1);
        }
    }
    /// The version of the allocation at `position` (see `versions`).
    pub(crate) fn version(&self, position: usize) -> u32 {
        self.versions.get(position).copied().unwrap_or(0)
    }
    /// Where `key`'s allocation is, for [`Allocations::at_mut`]: one hash lookup where `contains_key`
    /// followed by `get_mut` would take two.
    pub(super) fn position(&self, key: &AllocationKey) -> Option<usize> {
        self.index.get(key).copied()
    }
    pub(super) fn at(&self, position: usize) -> Option<(&AllocationKey, &Allocation)> {
        self.slab.get(position).map(|(k, a)| (k, a))
    }
    /// For counting media only: the version does not change, so nothing read for a route may change
    /// through this.
    pub(super) fn at_mut(&mut self, position: usize) -> Option<(AllocationKey, &mut Allocation)> {
        self.slab.get_mut(position).map(|(k, a)| (*k, a))
    }
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: AllocationKey, a: Allocation) -> Option<Allocation> {
        match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                self.slab.get_mut(i).map(|(_, old)| std::mem::replace(old, a))
            }
            None => {
                self.place(key, a);
                None
            }
        }
    }
    pub(super) fn entry(&mut self, key: AllocationKey) -> &mut Allocation {
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                i
            }
            None => self.place(key, Allocation::default()),
        };
        &mut self.slab[i].1
    }
    /// In no particular order.
    pub(crate) fn unordered(&self) -> impl Iterator<Item = (&AllocationKey, &Allocation)> {
        self.index
            .values()
            .filter_map(|&i| self.slab.get(i))
            .map(|(k, a)| (k, a))
    }
    /// In key order (client, server, transport).
    pub(crate) fn iter(&self) -> std::vec::IntoIter<(&AllocationKey, &Allocation)> {
        let mut all: Vec<_> = self
            .index
            .values()
            .filter_map(|&i| self.slab.get(i))
            .map(|(k, a)| (k, a))
            .collect();
        all.sort_unstable_by(|x, y| x.0.cmp(y.0));
        all.into_iter()
    }
}

impl<'a> IntoIterator for &'a Allocations {
    type Item = (&'a AllocationKey, &'a Allocation);
    type IntoIter = std::vec::IntoIter<(&'a AllocationKey, &'a Allocation)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::Index<&AllocationKey> for Allocations {
    type Output = Allocation;
    fn index(&self, key: &AllocationKey) -> &Allocation {
        match self.get(key) {
            Some(a) => a,
            None => panic!("no allocation for {key:?}"),
        }
    }
}
