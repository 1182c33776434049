//! The sessions of an [`super::IceState`], by index, open, asleep or folded.

use super::session::{Agent, Pair, Session};
use crate::analysis::pack::Pack;
use crate::analysis::pack::{MakeSpill, SleepStore};
use crate::analysis::store::RawRef;
use crate::analysis::transactions::Seen;
use crate::capture::Timestamp;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The sessions, by index: a session's index is its id for good (`s{index + 1}` in the report). A folded
/// session keeps only its place (an empty slot, 8 bytes: [`Sessions::fold`]), and folded sessions at the
/// front are dropped ([`Sessions::drop_folded_front`]), so a file read holds the sessions open, not every
/// session the capture held, even behind a session open for the whole capture. A session quiet for a while
/// may sleep ([`Sessions::sleep`]): its state goes to a store that spills to a temporary file, and it is read
/// back when something reads it or changes it.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    /// Index of `list`'s first session: every session before it was folded and dropped.
    base: usize,
    list: VecDeque<Slot>,
    /// Where sleeping sessions' states go, and how long a session is quiet before it sleeps; `None`:
    /// sessions never sleep.
    sleep: Option<SleepStore>,
    /// Sessions asleep now ([`Sessions::asleep`]).
    asleep: usize,
}

#[derive(Debug)]
enum Slot {
    /// Never folded: a folded session's slot is [`Slot::Folded`].
    Open(Box<Session>),
    Asleep(Box<Asleep>),
    Folded,
}

/// A sleeping session: what is read of every open session, and where its state is.
#[derive(Debug)]
struct Asleep {
    state: RawRef,
    last_activity: Timestamp,
    first: Seen,
    /// The earliest last activity of the first unsettled check of its pair directions (the time zero for
    /// one gone from the table): once that is quiet for long enough, its checks may settle, and it wakes
    /// for that ([`Sessions::due_to_settle`]). None: nothing to settle.
    settles_after: Option<Timestamp>,
    /// Its agents' addresses ([`super::IceState::open_addresses`]).
    addresses: Box<[SocketAddr]>,
    /// Its state read back by something that only reads it (given up when it sleeps again).
    woken: OnceLock<Box<Session>>,
}

impl Asleep {
    /// Session `x`, last active at `last_activity`, put to sleep in `store` (`buf` is scratch space). Its
    /// frozen timeline blocks are read back into its state (a rewrite of the store moves only what open
    /// sessions and sleeping states refer to).
    fn of(
        store: &mut SleepStore,
        x: &mut Session,
        last_activity: Timestamp,
        settles_after: Option<Timestamp>,
        buf: &mut Vec<u8>,
    ) -> Asleep {
        x.frozen.hold(store);
        Asleep {
            state: store.put(x, buf),
            last_activity,
            settles_after,
            first: x.first,
            addresses: x
                .agents
                .iter()
                .flat_map(|a| a.addresses.iter().map(|a| a.address))
                .collect(),
            woken: OnceLock::new(),
        }
    }
}

/// What [`Sessions::get`] gives for a folded session: nothing of it but the mark.
static FOLDED: std::sync::LazyLock<Session> = std::sync::LazyLock::new(|| {
    let nothing = Seen {
        ts: Timestamp(0),
        frame: 0,
        input: 0,
    };
    Session {
        folded: true,
        ..Session::new(Default::default(), nothing, None)
    }
});

/// A sleeping session's state, read back from `store`. One that cannot be read back (the temporary file
/// damaged) is counted in the store's errors, which the run reports, and comes back with nothing seen.
fn read_back(store: Option<&SleepStore>, a: &Asleep) -> Session {
    store
        .and_then(|store| store.get(a.state))
        .unwrap_or_else(|| Session::new(Default::default(), a.first, None))
}

impl Sessions {
    /// Sessions ever started: the next session's index.
    pub(crate) fn len(&self) -> usize {
        self.base + self.list.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// From now on, sessions quiet for more than `after_secs` sleep ([`Sessions::sleep`]): their states go
    /// to storage `make` gives (to memory without it; when it gives none, nothing sleeps).
    pub(crate) fn enable_sleep(&mut self, make: Option<MakeSpill>, after_secs: f64) {
        self.sleep = SleepStore::new(make, after_secs);
    }

    /// Sessions asleep now (open, their state in the sleep store).
    pub(crate) fn asleep(&self) -> usize {
        self.asleep
    }

    /// Sessions asleep, counted slot by slot ([`Sessions::asleep`] keeps the count as they go).
    #[cfg(test)]
    pub(crate) fn asleep_slots(&self) -> usize {
        self.list.iter().filter(|x| matches!(x, Slot::Asleep(_))).count()
    }

    /// Times a session went to sleep, and woke (was read back to be changed, by a message or to settle its
    /// checks).
    pub(crate) fn sleep_counts(&self) -> (u64, u64) {
        self.sleep.as_ref().map_or((0, 0), SleepStore::counts)
    }

    /// Where sleeping sessions' states go, if they sleep: what [`crate::analysis::Model`] reports of it.
    pub(crate) fn sleep_store(&self) -> Option<&SleepStore> {
        self.sleep.as_ref()
    }
    #[cfg(test)]
    pub(crate) fn sleep_store_mut(&mut self) -> Option<&mut SleepStore> {
        self.sleep.as_mut()
    }

    fn slot(&self, s: usize) -> Option<&Slot> {
        s.checked_sub(self.base).and_then(|i| self.list.get(i))
    }

    /// A slot's session: a sleeping one read back (and kept until it sleeps again).
    fn session<'a>(&'a self, slot: &'a Slot) -> &'a Session {
        match slot {
            Slot::Open(x) => x,
            Slot::Folded => &FOLDED,
            Slot::Asleep(a) => a
                .woken
                .get_or_init(|| Box::new(read_back(self.sleep.as_ref(), a))),
        }
    }

    /// Session `s`; for a folded one, a session with nothing but its `folded` mark.
    pub(crate) fn get(&self, s: usize) -> Option<&Session> {
        self.slot(s).map(|slot| self.session(slot))
    }

    /// Session `s`'s pairs, for what needs only them (the flows a folding session leaves the index with):
    /// a sleeping one's read back alone, past its agents (its state's front), not kept. Reading a sleeping
    /// session back whole, timeline and all, to fold it took ~1 % of the call-dense 4 GB read's analysis
    /// thread (perf), its view having been made already.
    pub(crate) fn pairs_passing(&self, s: usize) -> Option<Cow<'_, [Pair]>> {
        let slot = self.slot(s)?;
        if let Slot::Asleep(a) = slot {
            if a.woken.get().is_none() {
                let pairs = self.sleep.as_ref().and_then(|store| {
                    store.get_front(a.state, |r| {
                        <[Agent; 2]>::get(r)?;
                        Vec::<Pair>::get(r)
                    })
                });
                return Some(Cow::Owned(pairs.unwrap_or_default()));
            }
        }
        Some(Cow::Borrowed(&self.session(slot).pairs))
    }

    /// Session `s`, a sleeping one read back but not kept (what was read back already is used): views of
    /// many sessions are made one after another, and need not hold them all at once. A folded one as
    /// [`Sessions::get`] gives it.
    pub(crate) fn get_passing(&self, s: usize) -> Option<Cow<'_, Session>> {
        self.slot(s).map(|slot| self.passing(slot))
    }

    fn passing<'a>(&'a self, slot: &'a Slot) -> Cow<'a, Session> {
        match slot {
            Slot::Asleep(a) => match a.woken.get() {
                Some(x) => Cow::Borrowed(x),
                None => Cow::Owned(read_back(self.sleep.as_ref(), a)),
            },
            _ => Cow::Borrowed(self.session(slot)),
        }
    }

    /// The sessions not folded from index `from` on, with their indexes, each sleeping one read back but
    /// not kept ([`Sessions::get_passing`]).
    pub(crate) fn iter_passing_from(&self, from: usize) -> impl Iterator<Item = (usize, Cow<'_, Session>)> {
        let base = self.base;
        self.list
            .iter()
            .enumerate()
            .skip(from.saturating_sub(base))
            .filter(|(_, x)| !matches!(x, Slot::Folded))
            .map(move |(i, x)| (base + i, self.passing(x)))
    }

    /// How many sleeping sessions' states are held read back (each until it sleeps again).
    #[cfg(test)]
    pub(crate) fn read_back_held(&self) -> usize {
        self.list
            .iter()
            .filter(|x| matches!(x, Slot::Asleep(a) if a.woken.get().is_some()))
            .count()
    }

    /// Whether session `s` is folded, or not held (without reading a sleeping one back).
    pub(crate) fn is_folded(&self, s: usize) -> bool {
        matches!(self.slot(s), Some(Slot::Folded) | None)
    }

    /// Session `s` if it is open (a folded one is not changed any more); a sleeping one wakes.
    pub(crate) fn get_mut(&mut self, s: usize) -> Option<&mut Session> {
        let slot = s.checked_sub(self.base).and_then(|i| self.list.get_mut(i))?;
        if let Slot::Asleep(a) = slot {
            let session = match a.woken.take() {
                Some(x) => x,
                None => Box::new(read_back(self.sleep.as_ref(), a)),
            };
            let at = a.state;
            *slot = Slot::Open(session);
            self.asleep -= 1;
            if let Some(store) = &mut self.sleep {
                store.woke(at);
            }
        }
        match slot {
            Slot::Open(x) => Some(x),
            Slot::Asleep(_) | Slot::Folded => None,
        }
    }

    /// [`Sessions::get_mut`]'s session with the sleep store, where its frozen timeline entries go.
    pub(crate) fn get_mut_and_store(&mut self, s: usize) -> Option<(&mut Session, Option<&mut SleepStore>)> {
        self.get_mut(s)?;
        let slot = s.checked_sub(self.base).and_then(|i| self.list.get_mut(i))?;
        match slot {
            Slot::Open(x) => Some((x, self.sleep.as_mut())),
            Slot::Asleep(_) | Slot::Folded => None,
        }
    }

    /// Whether session `s` is open and awake.
    #[cfg(test)]
    pub(crate) fn is_awake(&self, s: usize) -> bool {
        self.get_awake(s).is_some()
    }

    /// Session `s` if it is awake (open and not asleep).
    pub(crate) fn get_awake(&self, s: usize) -> Option<&Session> {
        match self.slot(s) {
            Some(Slot::Open(x)) => Some(x),
            _ => None,
        }
    }

    /// Puts session `s`, woken by [`Sessions::get_mut`] while asleep and quiet since, back to sleep at
    /// once (its checks settled: [`super::IceState::settle`]); `settles_after` as [`Sessions::sleep`]
    /// takes it. Without sleep, or for a session not open, nothing happens.
    pub(crate) fn sleep_again(&mut self, s: usize, settles_after: Option<Timestamp>) {
        let (Some(slot), Some(store)) = (
            s.checked_sub(self.base).and_then(|i| self.list.get_mut(i)),
            &mut self.sleep,
        ) else {
            return;
        };
        if let Slot::Open(x) = slot {
            let last_activity = x.last_activity();
            let asleep = Asleep::of(store, x, last_activity, settles_after, &mut Vec::new());
            *slot = Slot::Asleep(Box::new(asleep));
            self.asleep += 1;
        }
    }

    pub(crate) fn push(&mut self, session: Session) {
        self.list.push_back(Slot::Open(Box::new(session)));
    }

    /// Lets go of session `s` but its place: it is folded.
    pub(crate) fn fold(&mut self, s: usize) {
        if let Some(slot) = s.checked_sub(self.base).and_then(|i| self.list.get_mut(i)) {
            if matches!(slot, Slot::Asleep(_)) {
                self.asleep -= 1;
            }
            match (&mut *slot, &mut self.sleep) {
                (Slot::Asleep(a), Some(store)) => store.free(a.state),
                (Slot::Open(x), Some(store)) => x.frozen.free(store),
                _ => {}
            }
            *slot = Slot::Folded;
        }
    }

    /// The sessions from index `from` on, with their indexes (a folded one as [`Sessions::get`] gives it,
    /// a sleeping one read back).
    #[cfg(test)]
    pub(crate) fn iter_from(&self, from: usize) -> impl Iterator<Item = (usize, &Session)> {
        let base = self.base;
        self.list
            .iter()
            .enumerate()
            .skip(from.saturating_sub(base))
            .map(move |(i, x)| (base + i, self.session(x)))
    }

    /// Whether an agent of session `s` used `address` (a sleeping one not read back; a folded one did
    /// not).
    pub(crate) fn has_address(&self, s: usize, address: SocketAddr) -> bool {
        match self.slot(s) {
            Some(Slot::Open(x)) => x
                .agents
                .iter()
                .any(|a| a.addresses.iter().any(|a| a.address == address)),
            Some(Slot::Asleep(a)) => a.addresses.contains(&address),
            Some(Slot::Folded) | None => false,
        }
    }

    /// When session `s` was last active, if it is open (a sleeping one not read back).
    pub(crate) fn last_activity(&self, s: usize) -> Option<Timestamp> {
        match self.slot(s)? {
            Slot::Open(x) => Some(x.last_activity()),
            Slot::Asleep(a) => Some(a.last_activity),
            Slot::Folded => None,
        }
    }

    /// The agent addresses of the open sessions from `from` on, each with its session's first message's
    /// time (sleeping ones not read back).
    pub(crate) fn open_addresses(&self, from: usize) -> impl Iterator<Item = (SocketAddr, Timestamp)> + '_ {
        self.list.iter().skip(from.saturating_sub(self.base)).flat_map(
            |slot| -> Box<dyn Iterator<Item = (SocketAddr, Timestamp)> + '_> {
                match slot {
                    Slot::Open(x) => Box::new(
                        x.agents
                            .iter()
                            .flat_map(move |a| a.addresses.iter().map(move |a| (a.address, x.first.ts))),
                    ),
                    Slot::Asleep(a) => Box::new(a.addresses.iter().map(move |&x| (x, a.first.ts))),
                    Slot::Folded => Box::new(std::iter::empty()),
                }
            },
        )
    }

    /// The sleeping sessions from `from` on with checks that may settle at `now` (quiet for more than
    /// `quiet_secs`): they must wake for it; but those quiet for more than `folds_by`, which fold first.
    pub(crate) fn due_to_settle(
        &self,
        from: usize,
        now: Timestamp,
        quiet_secs: f64,
        folds_by: f64,
    ) -> Vec<usize> {
        let base = self.base;
        self.list
            .iter()
            .enumerate()
            .skip(from.saturating_sub(base))
            .filter_map(|(i, slot)| match slot {
                Slot::Asleep(a)
                    if a.settles_after.is_some_and(|t| now.secs_since(t) > quiet_secs)
                        && now.secs_since(a.last_activity) <= folds_by =>
                {
                    Some(base + i)
                }
                _ => None,
            })
            .collect()
    }

    /// With sleep enabled, puts the open sessions from `from` on quiet for longer than it asks at `now` to
    /// sleep, and lets go of the states read back of those already asleep. `settles_after` says when a
    /// session's checks may start to settle ([`Asleep::settles_after`]). Returns how many went to sleep.
    pub(crate) fn sleep(
        &mut self,
        from: usize,
        now: Timestamp,
        settles_after: impl Fn(&Session) -> Option<Timestamp>,
    ) -> usize {
        let Some(store) = &mut self.sleep else {
            return 0;
        };
        let mut buf = Vec::new();
        let mut slept = 0;
        for slot in self.list.iter_mut().skip(from.saturating_sub(self.base)) {
            let x = match slot {
                Slot::Asleep(a) => {
                    a.woken.take();
                    continue;
                }
                Slot::Open(x) => x,
                Slot::Folded => continue,
            };
            let last_activity = x.last_activity();
            if now.secs_since(last_activity) <= store.after {
                continue;
            }
            let asleep = Asleep::of(store, x, last_activity, settles_after(x), &mut buf);
            *slot = Slot::Asleep(Box::new(asleep));
            slept += 1;
        }
        self.asleep += slept;
        if store.wants_compaction() {
            // The sleeping states, and the open sessions' frozen timeline blocks.
            store.compact(
                self.list
                    .iter_mut()
                    .flat_map(|slot| -> Box<dyn Iterator<Item = &mut RawRef>> {
                        match slot {
                            Slot::Asleep(a) => Box::new(std::iter::once(&mut a.state)),
                            Slot::Open(x) => Box::new(x.frozen.stored()),
                            Slot::Folded => Box::new(std::iter::empty()),
                        }
                    }),
            );
        }
        slept
    }

    /// Drops the folded sessions at the front; returns the index of the first one held.
    pub(crate) fn drop_folded_front(&mut self) -> usize {
        while matches!(self.list.front(), Some(Slot::Folded)) {
            self.list.pop_front();
            self.base += 1;
        }
        self.base
    }
}

/// Tests read sessions by index; the analysis itself uses [`Sessions::get`], which cannot panic.
#[cfg(test)]
impl std::ops::Index<usize> for Sessions {
    type Output = Session;
    fn index(&self, s: usize) -> &Session {
        self.get(s).expect("a session held at that index")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sleeping session whose state does not read back as one (the temporary file changed) comes back
    /// with nothing seen but its first message, and the store counts it: the run reports it.
    #[test]
    fn a_state_that_does_not_read_back_is_counted() {
        let mut store = SleepStore::new(None, 0.0).expect("a store in memory");
        let mut buf = Vec::new();
        let first = Seen {
            ts: Timestamp(7),
            frame: 3,
            input: 0,
        };
        let a = Asleep {
            state: store.put(&String::from("not a session"), &mut buf),
            last_activity: Timestamp(9),
            settles_after: None,
            first,
            addresses: Box::new([]),
            woken: OnceLock::new(),
        };
        let s = read_back(Some(&store), &a);
        assert_eq!(store.errors(), 1);
        assert!(s.pairs.is_empty() && s.timeline.is_empty() && !s.folded);
        assert_eq!(s.first, first);
    }
}
