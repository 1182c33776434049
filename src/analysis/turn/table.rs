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
use crate::analysis::pack::{MakeSpill, SleepStore};
use crate::analysis::store::RawRef;
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The allocations by client/server 5-tuple. Every ChannelData frame looks its allocation up, so they are
/// hashed (B-tree searches comparing `SocketAddr`s were ~20 % of a TURN server capture's analysis, perf);
/// the outputs iterate them in key order, never in hash order. An allocation quiet for a while may sleep
/// ([`Allocations::sleep`]): its state goes to a store that spills to a temporary file, and it is read back
/// when something reads it, woken when something changes it.
#[derive(Debug, Default)]
pub(crate) struct Allocations {
    /// Key → position in `slab`.
    index: HashMap<AllocationKey, usize, FastHash>,
    slab: Vec<(AllocationKey, Slot)>,
    /// Positions freed by [`Allocations::remove`], for the next new allocation.
    free: Vec<usize>,
    /// The client and server addresses of allocations added or removed since the analysis last took them:
    /// which flows' `allocation_of` answers changed.
    changed: Dirty,
    /// Per position: changes whenever the allocation is reached mutably other than to count its media
    /// (`at_mut`), so what was read from it (its channels' peers, its relayed address) stays true while
    /// this is unchanged. A small array beside the slab: checking it does not touch the allocation.
    versions: Vec<u32>,
    /// Where sleeping allocations' states go, and how long one is quiet before it sleeps; `None`: they
    /// never sleep.
    sleep: Option<SleepStore>,
}

#[derive(Debug, Default)]
enum Slot {
    Open(Box<Allocation>),
    Asleep(Box<Asleep>),
    /// A position freed for a later allocation.
    #[default]
    Free,
}

/// A sleeping allocation: what the search for finished ones reads, and where its state is.
#[derive(Debug)]
struct Asleep {
    state: RawRef,
    last_seen: Timestamp,
    /// Over whatever the time ([`Allocation::over_at`] but for its expiry).
    over: bool,
    expires_at: Option<Timestamp>,
    /// Its [`Allocation::allocate_answered`]: the search for retired requests asks it of every allocation
    /// whose Allocate was answered, and nearly always it is already true.
    allocate_answered: bool,
    /// Its state read back by something that only reads it (given up when it sleeps again).
    woken: OnceLock<Box<Allocation>>,
}

impl Asleep {
    fn over_at(&self, now: Timestamp) -> bool {
        self.over || self.expires_at.is_some_and(|e| e < now)
    }
}

/// A sleeping allocation's state, read back from `store`. One that cannot be read back (the temporary
/// file damaged) is counted in the store's errors, which the run reports, and comes back empty.
fn read_back(store: Option<&SleepStore>, a: &Asleep) -> Allocation {
    store
        .and_then(|store| store.get(a.state))
        .unwrap_or_else(|| Allocation {
            last_seen: a.last_seen,
            ..Allocation::default()
        })
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
    /// From now on, allocations quiet for more than `after_secs` sleep ([`Allocations::sleep`]): their
    /// states go to storage `make` gives (to memory without it; when it gives none, nothing sleeps).
    pub(crate) fn enable_sleep(&mut self, make: Option<MakeSpill>, after_secs: f64) {
        self.sleep = SleepStore::new(make, after_secs);
    }
    /// Times an allocation went to sleep, and woke (was read back to be changed).
    pub(crate) fn sleep_counts(&self) -> (u64, u64) {
        self.sleep.as_ref().map_or((0, 0), SleepStore::counts)
    }
    /// Where sleeping allocations' states go, if they sleep: what [`crate::analysis::Model`] reports of it.
    pub(crate) fn sleep_store(&self) -> Option<&SleepStore> {
        self.sleep.as_ref()
    }
    #[cfg(test)]
    pub(crate) fn sleep_store_mut(&mut self) -> Option<&mut SleepStore> {
        self.sleep.as_mut()
    }
    /// With sleep enabled, puts the allocations quiet for longer than it asks at `now` to sleep, and lets
    /// go of the states read back of those already asleep. Returns how many went to sleep.
    pub(crate) fn sleep(&mut self, now: Timestamp) -> usize {
        let Some(store) = &mut self.sleep else {
            return 0;
        };
        let mut buf = Vec::new();
        let mut slept = 0;
        for (_, slot) in &mut self.slab {
            let a = match slot {
                Slot::Asleep(x) => {
                    x.woken.take();
                    continue;
                }
                Slot::Open(a) => a,
                Slot::Free => continue,
            };
            if now.secs_since(a.last_seen) <= store.after {
                continue;
            }
            let asleep = Asleep {
                state: store.put(&**a, &mut buf),
                last_seen: a.last_seen,
                over: a.over_whatever_the_time(),
                expires_at: a.expires_at(),
                allocate_answered: a.allocate_answered,
                woken: OnceLock::new(),
            };
            *slot = Slot::Asleep(Box::new(asleep));
            slept += 1;
        }
        if store.wants_compaction() {
            store.compact(self.slab.iter_mut().filter_map(|(_, slot)| match slot {
                Slot::Asleep(x) => Some(&mut x.state),
                Slot::Open(_) | Slot::Free => None,
            }));
        }
        slept
    }
    /// The allocation in `slot`: a sleeping one read back (and kept until it sleeps again).
    fn read<'a>(sleep: Option<&'a SleepStore>, slot: &'a Slot) -> Option<&'a Allocation> {
        match slot {
            Slot::Open(a) => Some(a),
            Slot::Asleep(x) => Some(x.woken.get_or_init(|| Box::new(read_back(sleep, x)))),
            Slot::Free => None,
        }
    }
    /// The allocation in `slot`, to change: a sleeping one wakes.
    fn wake<'a>(sleep: Option<&mut SleepStore>, slot: &'a mut Slot) -> Option<&'a mut Allocation> {
        if let Slot::Asleep(x) = slot {
            let a = match x.woken.take() {
                Some(a) => a,
                None => Box::new(read_back(sleep.as_deref(), x)),
            };
            let at = x.state;
            *slot = Slot::Open(a);
            if let Some(store) = sleep {
                store.woke(at);
            }
        }
        match slot {
            Slot::Open(a) => Some(a),
            Slot::Asleep(_) | Slot::Free => None,
        }
    }
    /// `key`'s allocation, a sleeping one read back but not kept (what was read back already is used):
    /// findings of many allocations are worked out one after another, and need not hold them all at once.
    pub(crate) fn get_passing(&self, key: &AllocationKey) -> Option<Cow<'_, Allocation>> {
        let (_, slot) = self.slab.get(*self.index.get(key)?)?;
        match slot {
            Slot::Open(a) => Some(Cow::Borrowed(a)),
            Slot::Asleep(x) => Some(match x.woken.get() {
                Some(a) => Cow::Borrowed(a),
                None => Cow::Owned(read_back(self.sleep.as_ref(), x)),
            }),
            Slot::Free => None,
        }
    }
    /// Lets go of `key`'s allocation (folded: its report was rendered), a sleeping one without reading it
    /// back; its position is reused by a later one (with a new version).
    pub(crate) fn remove(&mut self, key: &AllocationKey) {
        let Some(i) = self.index.remove(key) else {
            return;
        };
        self.touch(i);
        self.note(key);
        self.free.push(i);
        let Some((_, slot)) = self.slab.get_mut(i) else {
            return;
        };
        if let (Slot::Asleep(a), Some(store)) = (&*slot, &mut self.sleep) {
            store.free(a.state);
        }
        *slot = Slot::Free;
    }
    /// A position for a new allocation `key` (a freed one first).
    fn place(&mut self, key: AllocationKey, a: Allocation) -> usize {
        self.note(&key);
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slab.get_mut(i) {
                    *slot = (key, Slot::Open(Box::new(a)));
                }
                self.touch(i);
                i
            }
            None => {
                self.slab.push((key, Slot::Open(Box::new(a))));
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
        let (_, slot) = self.slab.get(*self.index.get(key)?)?;
        Self::read(self.sleep.as_ref(), slot)
    }
    /// Whether `key`'s Allocate was answered ([`Allocation::allocate_answered`]), without reading a
    /// sleeping allocation back.
    pub(crate) fn allocate_answered(&self, key: &AllocationKey) -> Option<bool> {
        match &self.slab.get(*self.index.get(key)?)?.1 {
            Slot::Open(a) => Some(a.allocate_answered),
            Slot::Asleep(a) => Some(a.allocate_answered),
            Slot::Free => None,
        }
    }
    pub(crate) fn get_mut(&mut self, key: &AllocationKey) -> Option<&mut Allocation> {
        let i = *self.index.get(key)?;
        self.touch(i);
        let (_, slot) = self.slab.get_mut(i)?;
        Self::wake(self.sleep.as_mut(), slot)
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
        let (k, slot) = self.slab.get(position)?;
        Some((k, Self::read(self.sleep.as_ref(), slot)?))
    }
    /// For counting media only: the version does not change, so nothing read for a route may change
    /// through this (a sleeping allocation wakes as it was).
    pub(super) fn at_mut(&mut self, position: usize) -> Option<(AllocationKey, &mut Allocation)> {
        let (k, slot) = self.slab.get_mut(position)?;
        Some((*k, Self::wake(self.sleep.as_mut(), slot)?))
    }
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: AllocationKey, a: Allocation) -> Option<Allocation> {
        match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                let (_, slot) = self.slab.get_mut(i)?;
                Self::wake(self.sleep.as_mut(), slot).map(|old| std::mem::replace(old, a))
            }
            None => {
                self.place(key, a);
                None
            }
        }
    }
    pub(super) fn entry(&mut self, key: AllocationKey) -> Option<&mut Allocation> {
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                i
            }
            None => self.place(key, Allocation::default()),
        };
        let (_, slot) = self.slab.get_mut(i)?;
        Self::wake(self.sleep.as_mut(), slot)
    }
    /// The keys of the allocations over and quiet for more than `quiet_secs` before `now` (sleeping ones
    /// not read back), in no particular order.
    pub(super) fn over_and_quiet(
        &self,
        now: Timestamp,
        quiet_secs: f64,
    ) -> impl Iterator<Item = &AllocationKey> {
        self.index.values().filter_map(move |&i| {
            let (k, slot) = self.slab.get(i)?;
            let quiet_over = match slot {
                Slot::Open(a) => now.secs_since(a.last_seen) > quiet_secs && a.over_at(now),
                Slot::Asleep(x) => now.secs_since(x.last_seen) > quiet_secs && x.over_at(now),
                Slot::Free => false,
            };
            quiet_over.then_some(k)
        })
    }
    /// The keys, in key order (sleeping allocations not read back).
    pub(crate) fn keys(&self) -> Vec<AllocationKey> {
        let mut keys: Vec<AllocationKey> = self.index.keys().copied().collect();
        keys.sort_unstable();
        keys
    }
    /// In key order (client, server, transport), each sleeping allocation read back but not kept
    /// ([`Allocations::get_passing`]): outputs and the live event tracker go through every allocation,
    /// and need not hold them all at once.
    pub(crate) fn in_order(&self) -> impl Iterator<Item = (AllocationKey, Cow<'_, Allocation>)> {
        self.keys()
            .into_iter()
            .filter_map(|k| Some((k, self.get_passing(&k)?)))
    }
    /// How many sleeping allocations' states are held read back (each until it sleeps again).
    #[cfg(test)]
    pub(crate) fn read_back_held(&self) -> usize {
        self.slab
            .iter()
            .filter(|(_, x)| matches!(x, Slot::Asleep(a) if a.woken.get().is_some()))
            .count()
    }
    /// In no particular order. Tests only: each sleeping allocation read here is kept read back until it
    /// sleeps again; outputs go through [`Allocations::in_order`].
    #[cfg(test)]
    pub(crate) fn unordered(&self) -> impl Iterator<Item = (&AllocationKey, &Allocation)> {
        self.index
            .values()
            .filter_map(|&i| self.slab.get(i))
            .filter_map(|(k, slot)| Some((k, Self::read(self.sleep.as_ref(), slot)?)))
    }
    /// In key order (client, server, transport). Tests only, as [`Allocations::unordered`].
    #[cfg(test)]
    pub(crate) fn iter(&self) -> std::vec::IntoIter<(&AllocationKey, &Allocation)> {
        let mut all: Vec<_> = self.unordered().collect();
        all.sort_unstable_by(|x, y| x.0.cmp(y.0));
        all.into_iter()
    }
}

#[cfg(test)]
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
