//! The report's findings as the UI keeps them: one that folding kept (`analysis::fold`) stays in the
//! temporary file, with what it is about (a session, an allocation, the capture) worked out once, and is
//! read back whole only when a view shows it. Its code and severity, which the lists count and show, the
//! fold keeps beside it.
//!
//! Why: a busy server's capture folds tens of thousands of findings. Read back whole, with their
//! sentences, subjects and evidence, they were ~17 MB of the UI at call-dense 4 GB (heaptrack).
use super::{AllocationBrief, SessionBrief};
use crate::analysis::findings::{Finding, FindingSlot, Severity, Subject};
use crate::analysis::Model;
use crate::net::hash::FastHash;
use crate::report::unfold::read_folded_finding;
use crate::report::Report;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;

/// What a finding is about, as an index into the snapshot's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum About {
    Session(u32),
    Allocation(u32),
    Capture,
    /// A session or allocation the report does not list.
    Unlisted,
}

enum Whole {
    Held(Box<Finding>),
    /// Its place in the fold's findings, and the finding once a view read it back (`None`: reading it
    /// back failed).
    Folded(u32, OnceCell<Option<Box<Finding>>>),
}

struct Kept {
    whole: Whole,
    about: About,
}

/// The findings, in the report's order.
#[derive(Default)]
pub(crate) struct Findings(Vec<Kept>);

impl Findings {
    /// The findings of `report` (taken from it, whole or as folding kept them), each with what it is about
    /// among `sessions` and `allocations`. A folded one is read back once, for that; one that cannot be
    /// (the temporary file's disk gone, or its bytes changed) is a one-line error.
    pub(crate) fn take(
        report: &mut Report,
        model: &Model,
        sessions: &[&SessionBrief],
        allocations: &[&AllocationBrief],
    ) -> Result<Findings, String> {
        let about = Subjects::new(sessions, allocations);
        let order = std::mem::take(&mut report.finding_order);
        let mut held = std::mem::take(&mut report.findings)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>();
        if order.is_empty() {
            let all = held.into_iter().flatten().map(|f| Kept {
                about: about.of(&f.subject),
                whole: Whole::Held(Box::new(f)),
            });
            return Ok(Findings(all.collect()));
        }
        let mut out = Vec::with_capacity(order.len());
        for slot in order {
            out.push(match slot {
                FindingSlot::Held(i) => {
                    let f = held
                        .get_mut(i)
                        .and_then(Option::take)
                        .ok_or("a finding out of place")?;
                    Kept {
                        about: about.of(&f.subject),
                        whole: Whole::Held(Box::new(f)),
                    }
                }
                FindingSlot::Folded(i) => Kept {
                    about: about.of(&read_folded_finding(model, i)?.subject),
                    whole: Whole::Folded(i, OnceCell::new()),
                },
            });
        }
        Ok(Findings(out))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// What each finding is about, in order.
    pub(crate) fn abouts(&self) -> impl Iterator<Item = About> + '_ {
        self.0.iter().map(|k| k.about)
    }

    /// Finding `i` whole: a folded one read back the first time it is asked for, then kept. None for one
    /// that can no longer be read back.
    pub(crate) fn get<'a>(&'a self, model: &Model, i: usize) -> Option<&'a Finding> {
        match &self.0.get(i)?.whole {
            Whole::Held(f) => Some(f),
            Whole::Folded(k, cell) => cell
                .get_or_init(|| read_folded_finding(model, *k).ok().map(Box::new))
                .as_deref(),
        }
    }

    /// Finding `i` whole, a folded one read back and not kept (unless a view keeps it already).
    pub(crate) fn read<'a>(&'a self, model: &Model, i: usize) -> Option<Cow<'a, Finding>> {
        match &self.0.get(i)?.whole {
            Whole::Held(f) => Some(Cow::Borrowed(f)),
            Whole::Folded(k, cell) => match cell.get() {
                Some(f) => f.as_deref().map(Cow::Borrowed),
                None => read_folded_finding(model, *k).ok().map(Cow::Owned),
            },
        }
    }

    /// Folded findings not read back (or let go since).
    pub(crate) fn unread(&self) -> usize {
        self.0
            .iter()
            .filter(|k| matches!(&k.whole, Whole::Folded(_, cell) if cell.get().is_none()))
            .count()
    }

    /// Past `bound` folded findings read back and kept, lets go of them all (a view reads back again the
    /// few it shows): browsing a busy server's capture would otherwise bring back, one by one, all that
    /// folding saved. Returns how many went.
    pub(crate) fn forget_past(&mut self, bound: usize) -> usize {
        let kept = |k: &Kept| matches!(&k.whole, Whole::Folded(_, cell) if cell.get().is_some());
        let n = self.0.iter().filter(|k| kept(k)).count();
        if n <= bound {
            return 0;
        }
        for k in &mut self.0 {
            if let Whole::Folded(_, cell) = &mut k.whole {
                cell.take();
            }
        }
        n
    }

    /// Finding `i`'s code, without reading a folded one back.
    pub(crate) fn code(&self, model: &Model, i: usize) -> Option<&'static str> {
        match &self.0.get(i)?.whole {
            Whole::Held(f) => Some(f.code),
            Whole::Folded(k, _) => {
                let folded = &model.ice_folded;
                folded.finding(*k).map(|f| folded.code(f.code))
            }
        }
    }

    /// Finding `i`'s severity, without reading a folded one back.
    pub(crate) fn severity(&self, model: &Model, i: usize) -> Option<Severity> {
        match &self.0.get(i)?.whole {
            Whole::Held(f) => Some(f.severity),
            Whole::Folded(k, _) => model.ice_folded.finding(*k).map(|f| f.severity),
        }
    }
}

/// Finds what a finding's subject names among the listed sessions and allocations, each the first in
/// report order (as a search from the start finds): searching the lists per finding was quadratic on a
/// busy server's capture.
struct Subjects<'a> {
    sessions: HashMap<&'a str, u32>,
    allocations: FirstOf<(SocketAddr, SocketAddr)>,
    briefs: &'a [&'a AllocationBrief],
}

impl<'a> Subjects<'a> {
    fn new(sessions: &'a [&'a SessionBrief], allocations: &'a [&'a AllocationBrief]) -> Self {
        let mut by_id = HashMap::new();
        for (si, s) in sessions.iter().enumerate() {
            if let Ok(si) = u32::try_from(si) {
                by_id.entry(s.id.as_str()).or_insert(si);
            }
        }
        let mut by_key = FirstOf::default();
        for (ai, a) in allocations.iter().enumerate() {
            by_key.insert(&(a.client, a.server), ai);
        }
        Subjects {
            sessions: by_id,
            allocations: by_key,
            briefs: allocations,
        }
    }

    fn of(&self, subject: &Subject) -> About {
        let found = match subject {
            Subject::Session { id } => self.sessions.get(id.as_str()).map(|&si| About::Session(si)),
            Subject::Allocation { client, server, .. } => {
                let key = client.parse().ok().zip(server.parse().ok());
                let briefs = self.briefs;
                key.and_then(|k| {
                    self.allocations
                        .get(&k, briefs.len(), |ai| (briefs[ai].client, briefs[ai].server) == k)
                })
                .and_then(|ai| u32::try_from(ai).ok())
                .map(About::Allocation)
            }
            Subject::Capture => Some(About::Capture),
        };
        found.unwrap_or(About::Unlisted)
    }
}

/// The first item in report order with a key (an address, or client and server), by a 64-bit hash of
/// the key: 12 bytes an entry where the addresses as text took 40 and as addresses 72, built at the UI's
/// peak. A hash that two keys share only makes a lookup search the list: never a wrong answer.
pub(super) struct FirstOf<K> {
    by: HashMap<u64, u32, FastHash>,
    hash: FastHash,
    key: std::marker::PhantomData<K>,
}

impl<K> Default for FirstOf<K> {
    fn default() -> Self {
        FirstOf {
            by: HashMap::default(),
            hash: FastHash::default(),
            key: std::marker::PhantomData,
        }
    }
}

impl<K: std::hash::Hash> FirstOf<K> {
    pub(super) fn insert(&mut self, k: &K, i: usize) {
        if let Ok(i) = u32::try_from(i) {
            self.by.entry(self.hash.hash_one(k)).or_insert(i);
        }
    }

    /// The first of `n` items that `holds` the key `k`.
    pub(super) fn get(&self, k: &K, n: usize, holds: impl Fn(usize) -> bool) -> Option<usize> {
        // The first with the key's hash: the first with the key unless another key shares the hash.
        let i = *self.by.get(&self.hash.hash_one(k))? as usize;
        if holds(i) {
            return Some(i);
        }
        (0..n).find(|&j| holds(j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first item with a key is found by its hash, and also when another key's item holds that hash
    /// (a collision, made here by hand): the list is searched then, never a wrong answer.
    #[test]
    fn the_first_with_a_key_is_found_through_a_shared_hash() {
        let keys: Vec<SocketAddr> = ["192.0.2.1:1", "192.0.2.2:2", "192.0.2.2:2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut by = FirstOf::default();
        for (i, k) in keys.iter().enumerate() {
            by.insert(k, i);
        }
        let get = |by: &FirstOf<SocketAddr>, k: &SocketAddr| by.get(k, keys.len(), |i| keys[i] == *k);
        assert_eq!(get(&by, &keys[0]), Some(0));
        assert_eq!(get(&by, &keys[2]), Some(1), "the first of two with the key");
        assert_eq!(get(&by, &"192.0.2.9:9".parse().unwrap()), None);
        // Key 1's hash now leads to item 0, as a collision would.
        let h = by.hash.hash_one(keys[1]);
        by.by.insert(h, 0);
        assert_eq!(get(&by, &keys[1]), Some(1));
    }
}
