//! Settling an open session's finished checks, so that a long call does not hold every consent check it
//! ever sent (RFC 7675 §5.1: one every 4-6 s each way, for as long as the call lasts).
//!
//! A pair direction's report is a tally over its check transactions in the order they were first sent
//! ([`Tally`]): counts by final state, error codes, round-trip times, the first request and the first
//! success, the consent checks after it. Once a check has been quiet for as long as a session must be to
//! fold (past RFC 8489 §6.2.1's 39.5 s every check has its final state, and a requester has stopped
//! retransmitting), its part of the tally can no longer change. During a file read with folding on, the
//! finished checks at the front of each direction are added to the direction's settled tally, the
//! timeline keeps what it shows of them (transaction id and round-trip time, [`Tx::Settled`]), and the
//! transactions are retired. The report adds the checks still open to a copy of the settled tally, so it
//! is the same, number for number, as a tally over every check.
use super::session::{
    next_in_tail, Direction, Event, Session, Tx, TxRef, MAX_TIMELINE_EVENTS, TIMELINE_HEAD,
};
use super::IceState;
use crate::analysis::pack::SleepStore;
use crate::analysis::transactions::{Transaction, Transactions, TxIndex, TxState};
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::wire::stun::{Class, TransactionId};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a direction's check transactions add up to, in the order they were first sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub retransmissions: u64,
    /// The first check's first transmission.
    pub first_request: Option<Timestamp>,
    /// The first response of the first check that succeeded.
    pub first_success: Option<Timestamp>,
    /// The earliest success response of any check (checks may be answered out of order).
    pub earliest_success: Option<Timestamp>,
    /// Checks first sent after `first_success`: consent checks (RFC 7675).
    pub consent: u64,
    pub responses: u64,
    pub errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub unanswered: u64,
    /// Round-trip times of the successful checks: how many, their sum in order, the extremes, the last.
    pub rtts: u64,
    pub rtt_total: f64,
    pub rtt_min: Option<f64>,
    pub rtt_max: Option<f64>,
    pub rtt_last: Option<f64>,
}

impl Tally {
    /// Adds check `tx`, as a capture ending at `end` shows it.
    pub(crate) fn add(&mut self, tx: &Transaction, end: Timestamp) {
        self.retransmissions += u64::from(tx.retransmissions());
        let first = tx.first_request().map(|s| s.ts);
        if self.first_request.is_none() {
            self.first_request = first;
        }
        if let (Some(f), Some(ok)) = (first, self.first_success) {
            if f > ok {
                self.consent += 1;
            }
        }
        match tx.state(end) {
            TxState::Succeeded => {
                self.responses += 1;
                if let Some(resp) = tx.first_response() {
                    self.first_success.get_or_insert(resp.seen.ts);
                }
                if let Some(rtt) = tx.rtt_from_last() {
                    self.rtts += 1;
                    self.rtt_total += rtt;
                    self.rtt_min = Some(self.rtt_min.map_or(rtt, |m| m.min(rtt)));
                    self.rtt_max = Some(self.rtt_max.map_or(rtt, |m| m.max(rtt)));
                    self.rtt_last = Some(rtt);
                }
            }
            TxState::Failed => *self.errors.entry(tx.error_code().unwrap_or(0)).or_insert(0) += 1,
            TxState::TimedOut => self.timeouts += 1,
            TxState::Unanswered => self.unanswered += 1,
        }
        if let Some(r) = tx.first_response().filter(|r| r.class == Class::Success) {
            self.earliest_success = Some(self.earliest_success.map_or(r.seen.ts, |e| e.min(r.seen.ts)));
        }
    }

    /// The settled tally of `dir` with its open checks added, as a capture ending at `end` shows them.
    pub(crate) fn of(dir: &Direction, txs: &Transactions, end: Timestamp) -> Tally {
        let mut t = dir.settled.as_ref().map(|s| s.tally.clone()).unwrap_or_default();
        for &i in &dir.txs {
            if let Some(tx) = txs.get(i) {
                t.add(tx, end);
            }
        }
        t
    }
}

/// The checks settled in a direction (boxed in [`Direction`]: most directions never settle any): how
/// many, taken from the front of its `txs`, their tally, and their timeouts for the timeline.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settled {
    pub(crate) txs: u64,
    pub(crate) tally: Tally,
    /// As a session's timeline keeps its entries ([`Session::event`]): the first [`TIMELINE_HEAD`] and the
    /// latest, at most [`MAX_TIMELINE_EVENTS`] in all, the latest in a ring past the first
    /// ([`Settled::timeouts_in_order`]). Checks that never end time out forever in a call of days.
    pub(crate) timeouts: Vec<SettledTimeout>,
    /// Where the oldest of the latest timeouts is in the ring, once `timeouts` is full.
    pub(crate) timeouts_ring: u16,
    /// Timeouts let go from the middle of `timeouts` (the view counts them in
    /// `timeline_events_not_kept`).
    pub(crate) timeouts_not_kept: u64,
}

impl Settled {
    /// Keeps timeout `t`: past the bound, in place of the oldest of the latest, as the timeline does (a
    /// `Vec::remove` after the first ones shifted 4,000 entries for each).
    fn push_timeout(&mut self, t: SettledTimeout) {
        if self.timeouts.len() < MAX_TIMELINE_EVENTS {
            self.timeouts.push(t);
            return;
        }
        let at = TIMELINE_HEAD + next_in_tail(&mut self.timeouts_ring);
        if let Some(slot) = self.timeouts.get_mut(at) {
            *slot = t;
        }
        self.timeouts_not_kept += 1;
    }

    /// The timeouts kept, in the order they settled.
    fn timeouts_in_order(&self) -> impl Iterator<Item = &SettledTimeout> {
        let head = self.timeouts.len().min(TIMELINE_HEAD);
        let ring = usize::from(self.timeouts_ring);
        let (first, tail) = self.timeouts.split_at(head);
        let (newer, older) = tail.split_at(ring.min(tail.len()));
        first.iter().chain(older).chain(newer)
    }
}

impl Direction {
    /// Checks settled so far.
    pub(crate) fn settled_txs(&self) -> u64 {
        self.settled.as_ref().map_or(0, |s| s.txs)
    }

    /// Settled checks that timed out (those kept), in the order they settled.
    pub(crate) fn settled_timeouts(&self) -> impl Iterator<Item = &SettledTimeout> {
        self.settled.iter().flat_map(|s| s.timeouts_in_order())
    }
}

/// A settled check that timed out: what the timeline's timeout event shows of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SettledTimeout {
    pub first: Timestamp,
    /// Its last transmission's frame.
    pub frame: u64,
    pub id: TransactionId,
}

/// A settled check the timeline refers to ([`Tx::Settled`]), in 20 bytes: a long call keeps one per check
/// its timeline shows, and a busy server's capture holds thousands of calls open (~6.6 MB of the call-dense
/// 4 GB read's peak at 32 bytes, heaptrack). The round-trip time is kept as its bits in two `u32`s, so the
/// struct aligns to 4 and not 8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SettledTx {
    pub id: TransactionId,
    pub(super) rtt: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<SettledTx>() == 20);

/// [`SettledTx::rtt`] for no round-trip time: a NaN that no difference of two timestamps gives.
const NO_RTT: u64 = u64::MAX;

impl SettledTx {
    pub(crate) fn new(id: TransactionId, rtt: Option<f64>) -> SettledTx {
        let [a, b, c, d, e, f, g, h] = rtt.map_or(NO_RTT, f64::to_bits).to_be_bytes();
        // The high and low halves of the bits.
        let rtt = [u32::from_be_bytes([a, b, c, d]), u32::from_be_bytes([e, f, g, h])];
        SettledTx { id, rtt }
    }

    /// The round-trip time from the last transmission before the first response.
    pub(crate) fn rtt(&self) -> Option<f64> {
        let bits = (u64::from(self.rtt[0]) << 32) | u64::from(self.rtt[1]);
        (bits != NO_RTT).then(|| f64::from_bits(bits))
    }
}

/// A sleeping session woken to settle its checks is not woken for it again for this long: its checks
/// settle in fewer, larger steps, each waiting up to this much longer in the table. A call that ends
/// (consent checks every 5 s) came due at every search from 15 to 40 s of quiet and was read back and
/// stored again each time. Call-dense 4 GB read: 15,002 → 6,003 such wakes; wall 10.14 → 9.26 s (median
/// of 3, alternating), CPU 15.0 → 13.8 s, peak RSS unchanged (BENCHMARKS.md, session 23).
const SETTLE_WAKE_EVERY_SECS: f64 = 15.0;

impl IceState {
    /// Settles, in every open session, the checks at the front of each pair direction quiet for
    /// `quiet_secs` at `now` (but those in `keep`), and returns their transactions, free to retire.
    /// A sleeping session whose checks may settle wakes for it and sleeps again at once: woken all
    /// together until the end of the search, they were ~5 MB of a busy server's capture's peak
    /// (heaptrack of the call-dense 4 GB read). Sessions are settled in index order either way.
    ///
    /// An awake session is settled only once its [`Session::settle_hint`] is due.
    ///
    /// Sessions fold once quiet for `folds_after`: a sleeping one that will be by the next search
    /// ([`crate::analysis::fold::FOLD_EVERY_SECS`] on) is not woken, as its fold retires its checks then. A
    /// call that ends sleeps 10 s later, and its last consent checks came due a search or two before it
    /// folded: each ending call was read back and stored again once more for them.
    pub(crate) fn settle(
        &mut self,
        txs: &Transactions,
        (now, quiet_secs, folds_after): (Timestamp, f64, f64),
        keep: &HashSet<TxIndex, FastHash>,
    ) -> Vec<TxIndex> {
        let folds_by = folds_after - crate::analysis::fold::FOLD_EVERY_SECS;
        let mut due = self
            .sessions
            .due_to_settle(self.closed_below, now, quiet_secs, folds_by)
            .into_iter()
            .peekable();
        let mut out = Vec::new();
        let mut settled: HashMap<TxIndex, Option<SettledTx>, FastHash> = HashMap::default();
        for s in self.closed_below..self.sessions.len() {
            let wakes = due.next_if_eq(&s).is_some();
            if !wakes
                && !self
                    .sessions
                    .get_awake(s)
                    .is_some_and(|x| now.secs_since(x.settle_hint) > quiet_secs)
            {
                continue;
            }
            let Some((session, store)) = self.sessions.get_mut_and_store(s) else {
                continue;
            };
            self.timeline_entries_frozen +=
                settle_session(session, store, txs, now, quiet_secs, keep, &mut settled) as u64;
            let after = super::settles_after(session, txs);
            session.settle_hint = after.unwrap_or(Session::NOTHING_OPEN);
            for &i in settled.keys() {
                self.by_tx.remove(i);
                out.push(i);
            }
            if wakes {
                // Not woken again for SETTLE_WAKE_EVERY_SECS.
                let not_before = now.saturating_sub_secs(quiet_secs - SETTLE_WAKE_EVERY_SECS);
                self.sessions.sleep_again(s, after.map(|t| t.max(not_before)));
            }
        }
        out
    }
}

/// Settles `session`'s checks at the front of each pair direction quiet for `quiet_secs` at `now` (but
/// those in `keep`); `settled` is left with their transactions (each with what the timeline keeps of it).
/// Returns how many timeline entries froze ([`Session::freeze`], to `store`).
#[allow(clippy::too_many_arguments)]
fn settle_session(
    session: &mut Session,
    store: Option<&mut SleepStore>,
    txs: &Transactions,
    now: Timestamp,
    quiet_secs: f64,
    keep: &HashSet<TxIndex, FastHash>,
    settled: &mut HashMap<TxIndex, Option<SettledTx>, FastHash>,
) -> usize {
    settled.clear();
    for dir in session.pairs.iter_mut().flat_map(|p| p.dirs.iter_mut()) {
        let done = dir
            .txs
            .iter()
            .take_while(|&&i| {
                !keep.contains(&i)
                    && txs
                        .get(i)
                        .is_none_or(|t| t.last_activity().is_none_or(|l| now.secs_since(l) > quiet_secs))
            })
            .count();
        if done == 0 {
            continue;
        }
        let into = dir.settled.get_or_insert_with(Box::default);
        for i in dir.txs.drain(..done) {
            into.txs += 1;
            let Some(tx) = txs.get(i) else {
                settled.insert(i, None);
                continue;
            };
            into.tally.add(tx, now);
            if let (TxState::TimedOut, Some(first)) = (tx.state(now), tx.first_request()) {
                into.push_timeout(SettledTimeout {
                    first: first.ts,
                    frame: tx.last_request().map_or(first.frame, |s| s.frame),
                    id: tx.id,
                });
            }
            settled.insert(i, Some(SettledTx::new(tx.id, tx.rtt_from_last())));
        }
    }
    if !settled.is_empty() {
        refer_to_settled(session, settled);
    }
    // The entries before the first whose check is still in the table show what they always will.
    let frozen = session.freeze(store);
    if frozen > 0 {
        if !session.settled.is_empty() {
            compact_settled(session);
        }
        // A call whose entries freeze has made its pairs and learnt its addresses: the room their lists
        // grew for by doubling goes (`small_map::push_sparing`; a call's five pairs had room for eight).
        session.pairs.shrink_to_fit();
        for agent in &mut session.agents {
            agent.addresses.shrink_to_fit();
        }
    }
    frozen
}

/// The check references of a timeline's entries (checks, answers and errors).
fn check_refs(timeline: &mut [Event]) -> impl Iterator<Item = &mut TxRef> {
    timeline.iter_mut().filter_map(|ev| ev.kind.tx_mut())
}

/// Points `session`'s timeline events at the settled checks they show instead of their transactions.
fn refer_to_settled(session: &mut Session, settled: &HashMap<TxIndex, Option<SettledTx>, FastHash>) {
    let mut at: HashMap<TxIndex, TxRef, FastHash> = HashMap::default();
    for tx in check_refs(&mut session.timeline) {
        let Tx::Live(i) = tx.get() else { continue };
        let i = i as TxIndex;
        let Some(s) = settled.get(&i) else { continue };
        *tx = *at.entry(i).or_insert_with(|| match s {
            Some(s) => {
                session.settled.push(*s);
                TxRef::settled(session.settled.len() - 1)
            }
            None => TxRef::GONE,
        });
    }
    // A long call's timeline replaces old entries (`Session::event`): the settled checks only they referred
    // to go, so the list stays within what the timeline can refer to (and a few hundred more: a walk of
    // the timeline every few hundred settled checks).
    if session.settled.len() > session.timeline.len() + COMPACT_SLACK {
        compact_settled(session);
    }
}

/// Settled checks a session may hold beyond its timeline's entries before those no entry refers to go.
const COMPACT_SLACK: usize = 256;

/// Keeps only the settled checks `session`'s timeline still refers to, and points the timeline at their
/// new places.
fn compact_settled(session: &mut Session) {
    let mut kept = Vec::with_capacity(session.timeline.len());
    let mut at: HashMap<u32, TxRef, FastHash> = HashMap::default();
    for tx in check_refs(&mut session.timeline) {
        let Tx::Settled(k) = tx.get() else { continue };
        *tx = *at
            .entry(k)
            .or_insert_with(|| match session.settled.get(k as usize) {
                Some(s) => {
                    kept.push(*s);
                    TxRef::settled(kept.len() - 1)
                }
                None => TxRef::GONE,
            });
    }
    // Room for the timeline's every entry, where only its checks' are kept, and a check's answer refers
    // to the check's: the room left was ~1.4 MB of the call-dense 4 GB read's peak heap (heaptrack).
    kept.shrink_to_fit();
    session.settled = kept;
}

#[cfg(test)]
mod tests {
    use super::super::session::EventKind;
    use super::super::tests::{success, Driver, A, B};
    use super::super::MAX_TX_PER_DIRECTION;
    use super::*;
    use crate::analysis::testkit::check;

    /// A sleeping session whose checks may settle wakes for it and is asleep again when `settle` returns,
    /// its checks settled in its stored state; an awake session is settled and stays awake.
    #[test]
    fn a_sleeping_session_is_settled_and_asleep_again() {
        let mut d = Driver::new();
        d.feed(A, B, check(1, "bbbb:aaaa", true, true));
        d.feed(B, A, success(1, A.parse().expect("an address")));
        d.ice.sessions.enable_sleep(None, 0.0);
        assert_eq!(d.ice.sleep(Timestamp::from_secs_f64(20.0), &d.txs), 1);
        // Another session, awake.
        d.feed("192.0.2.7:5000", B, check(2, "cccc:dddd", true, true));
        let keep = HashSet::default();
        let gone = d.ice.settle(
            &d.txs,
            (Timestamp::from_secs_f64(60.0), 45.0, f64::INFINITY),
            &keep,
        );
        assert_eq!(gone.len(), 2, "both sessions' checks settled");
        assert!(!d.ice.sessions.is_awake(0), "asleep again");
        assert!(d.ice.sessions.is_awake(1));
        assert_eq!(d.ice.sessions.sleep_counts(), (2, 1));
        let s = d.ice.sessions.get_passing(0).expect("session 0");
        let settled: u64 = s
            .pairs
            .iter()
            .flat_map(|p| &p.dirs)
            .map(Direction::settled_txs)
            .sum();
        assert_eq!(settled, 1);
        assert_eq!(s.settled.len(), 1, "the timeline refers to its settled check");
    }

    /// A sleeping session that folds at the next search is not woken to settle its checks (its fold
    /// retires them); one that stays open longer is.
    #[test]
    fn a_sleeping_session_about_to_fold_is_not_woken_to_settle() {
        for (folds_after, woken) in [(45.0, false), (62.0, false), (70.0, true), (f64::INFINITY, true)] {
            let mut d = Driver::new();
            d.feed(A, B, check(1, "bbbb:aaaa", true, true));
            d.feed(B, A, success(1, A.parse().expect("an address")));
            d.ice.sessions.enable_sleep(None, 0.0);
            assert_eq!(d.ice.sleep(Timestamp::from_secs_f64(20.0), &d.txs), 1);
            let keep = HashSet::default();
            // Quiet for ~60 s: it folds at a search 5 s on once quiet for 62 s, not 70.
            let now = Timestamp::from_secs_f64(60.0);
            let gone = d.ice.settle(&d.txs, (now, 45.0, folds_after), &keep);
            assert_eq!(gone.len(), usize::from(woken), "folds after {folds_after}");
            assert_eq!(
                d.ice.sessions.sleep_counts(),
                (1 + u64::from(woken), u64::from(woken))
            );
            assert!(!d.ice.sessions.is_awake(0), "asleep");
        }
    }

    /// A sleeping session whose consent checks come due one search after another wakes to settle them
    /// at most every 15 s, not at every search; all of them settle.
    #[test]
    fn a_sleeping_session_wakes_to_settle_every_15_s() {
        let mut d = Driver::new();
        // A minute of consent checks each way every 5 s, answered; then the call ends.
        for i in 1..=12u16 {
            d.wait(5_000);
            d.feed(A, B, check(i, "bbbb:aaaa", true, i == 1));
            d.feed(B, A, success(i, A.parse().expect("an address")));
            d.feed(B, A, check(100 + i, "aaaa:bbbb", false, false));
            d.feed(A, B, success(100 + i, B.parse().expect("an address")));
        }
        d.ice.sessions.enable_sleep(None, 10.0);
        let keep = HashSet::default();
        let (end, mut settled) = (d.now(), 0);
        // A search every 5 s for a minute and a half (the session never folds here).
        let mut woken_at = Vec::new();
        for k in 1..=18u32 {
            let now = end.saturating_add_secs(f64::from(5 * k));
            let before = d.ice.sessions.sleep_counts().1;
            settled += d.ice.settle(&d.txs, (now, 45.0, f64::INFINITY), &keep).len();
            d.ice.sleep(now, &d.txs);
            if d.ice.sessions.sleep_counts().1 > before {
                woken_at.push(5 * k);
            }
        }
        assert_eq!(settled, 24, "every check settled");
        // Awake, it settled the checks due until it slept (at 15 s of quiet); then each next check came
        // due at the next search, but it woke only when more than 15 s had passed since it last did.
        assert_eq!(woken_at, [20, 40, 60], "woken at seconds of quiet");
    }

    /// A call long enough that its timeline passes its bound, its checks settled and their entries frozen
    /// every few seconds, shows the timeline (head, latest entries, the count of those between) and the
    /// counts that the same call shows never settled; and its live entries stay few.
    #[test]
    fn a_long_timeline_frozen_as_it_goes_shows_what_it_would_live() {
        let (mut frozen, mut stored, mut live) = (Driver::new(), Driver::new(), Driver::new());
        // Its blocks go to the sleep store (in memory here, a temporary file in a read); the session would
        // sleep when quiet for 2 s (it never is but at the end).
        stored.ice.sessions.enable_sleep(None, 2.0);
        // The store is rewritten whenever a block it holds went (`Frozen::drop_unkept`).
        if let Some(store) = stored.ice.sessions.sleep_store_mut() {
            store.compact_after(1);
        }
        let keep = HashSet::default();
        let mut kept_live = 0;
        // Checks, retransmissions, answers, and nominations (answers to USE-CANDIDATE checks) fed.
        let mut recorded = 0u64;
        // Both agents check (each direction keeps at most MAX_TX_PER_DIRECTION checks).
        for i in 1..=4_000u16 {
            let (retransmitted, answered, nominating) = (i % 10 == 0, i % 13 != 0, i % 7 == 0);
            recorded += 1 + u64::from(retransmitted) + u64::from(answered) * (1 + u64::from(nominating));
            recorded += 2;
            for d in [&mut frozen, &mut stored, &mut live] {
                // A check each way a second or so: a call of 67 minutes.
                d.wait(1_000);
                d.feed(A, B, check(i, "bbbb:aaaa", true, nominating));
                // Every tenth check is lost and retransmitted; every thirteenth never answered.
                if retransmitted {
                    d.feed(A, B, check(i, "bbbb:aaaa", true, nominating));
                }
                if answered {
                    d.feed(B, A, success(i, A.parse().expect("an address")));
                }
                d.feed(B, A, check(10_000 + i, "aaaa:bbbb", false, false));
                d.feed(A, B, success(10_000 + i, B.parse().expect("an address")));
            }
            if i % 5 == 0 {
                // A search for quiet ones every 5 s of capture time, as a read makes.
                for d in [&mut frozen, &mut stored] {
                    d.settle_now(&keep);
                    d.ice.sleep(d.now(), &d.txs);
                }
                let s = frozen.ice.sessions.get_passing(0).expect("the session");
                kept_live = kept_live.max(s.timeline.len());
                let s = stored.ice.sessions.get_passing(0).expect("the session");
                assert_eq!(s.frozen.blocks().0, 0, "every block stored");
            }
        }
        let end = live.now().saturating_add_secs(60.0);
        let view = |d: &Driver| d.view(end);
        let (shown, want) = (view(&frozen), view(&live));
        assert!(view(&stored) == want, "stored: the views differ");
        let compactions = stored.ice.sessions.sleep_store().map(SleepStore::compactions);
        assert!(compactions > Some(0), "{compactions:?} rewrites of the store");
        // Asleep at the end: its blocks are in its state, and read back with it.
        let now = stored.now().saturating_add_secs(10.0);
        assert_eq!(stored.ice.sleep(now, &stored.txs), 1);
        assert!(view(&stored) == want, "asleep: the views differ");
        let s = stored.ice.sessions.get_passing(0).expect("the session");
        assert_eq!(s.frozen.blocks().1, 0, "its blocks are in its state");
        assert!(
            frozen.ice.timeline_entries_frozen() > 5_000,
            "{}",
            frozen.ice.timeline_entries_frozen()
        );
        // Those of the last 45 s or so (two checks and their answers a second), not the call's.
        assert!(kept_live < 300, "{kept_live} live entries at most");
        // 5,000 entries shown, and the unanswered checks' timeouts.
        assert_eq!(
            shown["timeline_events_not_kept"].as_u64(),
            Some(recorded - MAX_TIMELINE_EVENTS as u64)
        );
        let timeouts = shown["timeline"]
            .as_array()
            .map(|t| t.iter().filter(|e| e["event"] == "timeout").count());
        assert_eq!(
            shown["timeline"].as_array().map(Vec::len),
            timeouts.map(|n| n + MAX_TIMELINE_EVENTS)
        );
        assert!(timeouts > Some(300), "{timeouts:?}");
        assert!(shown == want, "the views differ");
    }

    /// A flood of checks after some entries froze fills the live entries past the timeline's bound: the
    /// live ring then keeps what the frozen entries left of the head, and the latest, as a timeline never
    /// frozen does.
    #[test]
    fn a_flood_after_entries_froze_keeps_the_head_and_the_latest() {
        let (mut frozen, mut live) = (Driver::new(), Driver::new());
        let keep = HashSet::default();
        for i in 1..=6_000u16 {
            for d in [&mut frozen, &mut live] {
                // A call of 100 s, checked every second; then a flood.
                if i <= 100 {
                    d.wait(1_000);
                }
                d.feed(A, B, check(i, "bbbb:aaaa", true, false));
                if i % 3 != 0 {
                    d.feed(B, A, success(i, A.parse().expect("an address")));
                }
            }
            if i <= 100 && i % 5 == 0 {
                frozen.settle_now(&keep);
            }
        }
        let froze = frozen.ice.timeline_entries_frozen();
        assert!((16..1_000).contains(&froze), "{froze} entries froze");
        let s = frozen.ice.sessions.get_passing(0).expect("the session");
        assert!(s.timeline_not_kept > 0, "the live ring turned");
        drop(s);
        let end = live.now();
        let view = |d: &Driver| d.view(end);
        let (shown, want) = (view(&frozen), view(&live));
        // 6,000 checks and 4,000 answers.
        assert_eq!(shown["timeline_events_not_kept"], 5_000);
        assert!(shown["timeline"] == want["timeline"], "the timelines differ");
        // The bound of 4,096 is on open checks: those settled before the flood do not count in it.
        let settled = frozen.ice.sessions.get_passing(0).expect("the session").pairs[0].dirs[0].settled_txs();
        assert!(settled > 50, "{settled} settled");
        let not_detailed = |v: &serde_json::Value| v["pairs"][0]["a_to_b"]["requests_not_detailed"].clone();
        assert_eq!(not_detailed(&want), 6_000 - MAX_TX_PER_DIRECTION as u64);
        assert_eq!(
            not_detailed(&shown),
            6_000 - MAX_TX_PER_DIRECTION as u64 - settled
        );
    }

    /// A call of hours, its checks settled as they finish, counts every check: past 4,096 checks a
    /// direction still tallies each one (its agents' getStats do), and holds only those of the last 45 s.
    #[test]
    fn a_call_of_hours_tallies_every_check() {
        let mut d = Driver::new();
        let keep = HashSet::default();
        let n = u16::try_from(MAX_TX_PER_DIRECTION + 904).expect("a u16");
        let (mut answered, mut open_max) = (0u64, 0);
        for i in 1..=n {
            // A consent check each way every 4 s: five and a half hours.
            d.wait(4_000);
            d.feed(A, B, check(i, "bbbb:aaaa", true, false));
            // Every eleventh is never answered.
            if i % 11 != 0 {
                d.feed(B, A, success(i, A.parse().expect("an address")));
                answered += 1;
            }
            d.feed(B, A, check(20_000 + i, "aaaa:bbbb", false, false));
            d.feed(A, B, success(20_000 + i, B.parse().expect("an address")));
            if i % 2 == 0 {
                d.settle_now(&keep);
                let s = d.ice.sessions.get_passing(0).expect("the session");
                let open = s.pairs.iter().flat_map(|p| &p.dirs).map(|d| d.txs.len()).max();
                open_max = open_max.max(open.unwrap_or(0));
            }
        }
        let end = d.now().saturating_add_secs(60.0);
        let view = d.view(end);
        let (a_to_b, b_to_a) = (&view["pairs"][0]["a_to_b"], &view["pairs"][0]["b_to_a"]);
        let n = u64::from(n);
        assert_eq!(a_to_b["requests_sent"], n);
        assert_eq!(a_to_b["requests_not_detailed"], 0);
        assert_eq!(a_to_b["responses_received"], answered);
        assert_eq!(a_to_b["timeouts"], n - answered);
        // Every check after the first answer is a consent check.
        assert_eq!(a_to_b["consent_requests_sent"], n - 1);
        assert_eq!(b_to_a["requests_sent"], n);
        assert_eq!(b_to_a["responses_received"], n);
        assert_eq!(b_to_a["requests_not_detailed"], 0);
        // Those of the last 45 s or so: one every 4 s.
        assert!(open_max < 20, "{open_max} open checks at most");
    }

    /// A direction whose checks all time out for hours keeps its timeouts as the timeline keeps entries:
    /// the first 1,000 and the latest 4,000, the rest counted.
    #[test]
    fn settled_timeouts_keep_the_first_and_the_latest() {
        let mut d = Driver::new();
        let keep = HashSet::default();
        let n: u16 = 6_000;
        for i in 1..=n {
            // A check every 2 s to an agent that never answers.
            d.wait(2_000);
            d.feed(A, B, check(i, "bbbb:aaaa", true, false));
            if i % 5 == 0 {
                d.settle_now(&keep);
            }
        }
        let s = d.ice.sessions.get_passing(0).expect("the session");
        let settled = s.pairs[0].dirs[0].settled.as_ref().expect("settled checks");
        assert_eq!(settled.timeouts.len(), MAX_TIMELINE_EVENTS);
        let settled_n = settled.txs;
        assert_eq!(settled.timeouts_not_kept, settled_n - MAX_TIMELINE_EVENTS as u64);
        drop(s);
        let end = d.now().saturating_add_secs(60.0);
        let view = d.view(end);
        assert_eq!(view["pairs"][0]["a_to_b"]["timeouts"], u64::from(n));
        let ids: Vec<String> = view["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .filter(|e| e["event"] == "timeout")
            .filter_map(|e| e["transaction_id"].as_str().map(str::to_owned))
            .collect();
        // The settled ones kept, and those still open at the end (all timed out by then).
        let open = u64::from(n) - settled_n;
        assert_eq!(ids.len() as u64, MAX_TIMELINE_EVENTS as u64 + open);
        let id = |i: u16| check(i, "", true, false).transaction_id.to_string();
        assert_eq!(ids[0], id(1));
        assert_eq!(ids[TIMELINE_HEAD - 1], id(1_000));
        // Then the latest: those settled last, and the open ones.
        let first_latest = u16::try_from(settled_n).expect("a u16") - 3_999;
        assert_eq!(ids[TIMELINE_HEAD], id(first_latest));
        assert_eq!(ids.last(), Some(&id(n)));
        // 6,000 checks recorded, 5,000 shown; and the timeouts let go.
        assert_eq!(
            view["timeline_events_not_kept"],
            1_000 + (settled_n - MAX_TIMELINE_EVENTS as u64)
        );
    }

    /// A settled check's round-trip time comes back bit for bit, and its absence as None.
    #[test]
    fn a_settled_checks_round_trip_time_comes_back_exactly() {
        let id = TransactionId([7; 12]);
        for rtt in [
            Some(0.0),
            Some(1.5e-5),
            Some(0.1 + 0.2),
            Some(39.5),
            Some(f64::MAX),
            None,
        ] {
            let s = SettledTx::new(id, rtt);
            assert_eq!(s.rtt().map(f64::to_bits), rtt.map(f64::to_bits));
            assert_eq!(s.id, id);
        }
    }

    /// Compacting keeps the settled checks the timeline refers to, in the order it first refers to them
    /// (a check and its answer share one), points the timeline at them, and keeps no room beyond them.
    #[test]
    fn compacting_keeps_what_the_timeline_refers_to_and_no_more_room() {
        let seen = crate::analysis::transactions::Seen {
            ts: Timestamp::from_secs_f64(1.0),
            frame: 1,
            input: 0,
        };
        let mut s = Session::new(Default::default(), seen, None);
        let id = |k: u8| TransactionId([k; 12]);
        s.settled = Vec::with_capacity(4096);
        s.settled
            .extend((0..100u8).map(|k| SettledTx::new(id(k), Some(f64::from(k)))));
        for k in [7usize, 3, 50] {
            let tx = TxRef::settled(k);
            let check = EventKind::Check {
                tx,
                retransmit: false,
                use_candidate: false,
            };
            s.timeline.push(Event::new(seen, 0, 0, check));
            s.timeline.push(Event::new(seen, 0, 1, EventKind::Success { tx }));
        }
        s.timeline.push(Event::new(seen, 0, 0, EventKind::Nominated));
        compact_settled(&mut s);
        let ids: Vec<TransactionId> = s.settled.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![id(7), id(3), id(50)]);
        assert_eq!(s.settled.get(2).and_then(SettledTx::rtt), Some(50.0));
        let refs: Vec<Tx> = s
            .timeline
            .iter()
            .filter_map(|e| e.kind.tx())
            .map(TxRef::get)
            .collect();
        let want = [0, 0, 1, 1, 2, 2].map(Tx::Settled);
        assert_eq!(refs, want);
        assert_eq!(
            s.settled.capacity(),
            s.settled.len(),
            "no room kept for the whole timeline"
        );
    }
}
