//! The searches for what is quiet during a read (every [`super::FOLD_EVERY_SECS`] of capture time): the
//! ICE sessions that fold, the checks that settle, the requests that retire and the TURN allocations that
//! fold, and the transactions they leave behind.

use super::{PreparedAllocation, FOLD_AFTER_SECS};
use crate::analysis::transactions::{self, Transaction};
use crate::analysis::{findings, ice, sessions, turn, Model};
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::wire::stun;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

/// How long an answered Binding request no ICE session holds (to a STUN server) stays in the transaction
/// table after its last message: long enough for the retransmissions already on their way when the answer
/// went (RFC 8489 §6.2.1: the client stops at the answer; its RTO starts at 500 ms). Only a client whose
/// answer was lost after the capture point retransmits later, and each of those later requests then
/// starts a transaction of its own. At a busy STUN server these were nearly all of the table: 45 s of
/// 17,000 requests a second filled its 500,000 slots (`scripts/bench`'s stun profile, BENCHMARKS.md).
pub(crate) const ANSWERED_SERVER_REQUEST_QUIET_SECS: f64 = 5.0;

/// Answered Binding requests no ICE session holds (a STUN server's clients), each with the time from which
/// it is quiet ([`Model::retire_answered_server_requests`]): a queue in the order they were answered. A
/// time is kept in units of [`ServerAnswers::UNIT_NS`] (16.8 ms), wrapping, so an entry is 8 bytes (with
/// a `Timestamp`, 16: 2.1 MB of queue on the stun profile); the retirement itself reads the transaction's
/// own time.
#[derive(Debug, Default)]
pub(crate) struct ServerAnswers {
    queue: VecDeque<(u32, u32)>,
    /// When the last pass ran, if one did.
    last_pass: Option<u32>,
    /// The slots a pass retires, in table order (kept for its room).
    due: Vec<u32>,
}

impl ServerAnswers {
    const UNIT_NS: u64 = 1 << 24;
    /// A pass at most every 60 units (1.007 s) of capture time.
    const PASS_UNITS: i32 = 60;
    /// Units past which an entry's time is surely more than [`ANSWERED_SERVER_REQUEST_QUIET_SECS`] ago:
    /// both ends are rounded down, so one unit more than the quiet time rounded up.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 300
    const DUE_UNITS: i32 = (ANSWERED_SERVER_REQUEST_QUIET_SECS * 1e9 / Self::UNIT_NS as f64) as i32 + 2;

    #[allow(clippy::cast_possible_truncation)] // wrapping on purpose: only differences are read
    fn units(ts: Timestamp) -> u32 {
        (ts.0 / Self::UNIT_NS) as u32
    }

    /// Whether an entry stamped `since` is surely due at `now`.
    #[allow(clippy::cast_possible_wrap)] // the wrapping difference, read as signed
    fn due(since: u32, now: Timestamp) -> bool {
        (Self::units(now).wrapping_sub(since) as i32) > Self::DUE_UNITS
    }
}

/// Whether transaction `i` (`t`) is an answered request to a STUN server: a Binding request (or GOOG-PING)
/// no ICE session holds, answered. Such a one goes once quiet for [`ANSWERED_SERVER_REQUEST_QUIET_SECS`]
/// ([`Model::retire_answered_server_requests`]), and first when the table is full
/// ([`Model::make_room_for_requests`]).
fn answered_server_request(ice: &ice::IceState, i: transactions::TxIndex, t: &Transaction) -> bool {
    ice::is_check_method(t.method) && t.answered() && ice.session_of_tx(i).is_none()
}

/// Folding as the analysis drives it: what is folded, settled and retired when.
impl Model {
    /// Transaction `tx` was just answered, at `at`: an answered request to a STUN server (a Binding request
    /// no ICE session holds) is queued to retire once quiet for [`ANSWERED_SERVER_REQUEST_QUIET_SECS`].
    /// Only while folding is on: then nothing reads it after that.
    pub(in crate::analysis) fn note_answer(&mut self, tx: transactions::TxIndex, at: Timestamp) {
        let Some(t) = self.transactions.get(tx) else {
            return;
        };
        if !self.ice_folded.enabled() || !answered_server_request(&self.ice, tx, t) {
            return;
        }
        let (Ok(i), queue) = (u32::try_from(tx), &mut self.server_answers.queue) else {
            return;
        };
        // More than the table holds means a capture whose time stands still or runs back: the oldest
        // go, and the searches' pass lets them go later.
        if queue.len() >= self.transactions.list.len().max(1) {
            queue.pop_front();
        }
        queue.push_back((i, ServerAnswers::units(at)));
    }

    /// Retires the answered requests to STUN servers quiet for [`ANSWERED_SERVER_REQUEST_QUIET_SECS`] at
    /// `now` ([`Model::note_answer`]), in a pass at most every second of capture time rather than at the
    /// next search: with a search every 5 s, those of a busy STUN server stayed 5 to 10 s, and the table
    /// held twice what it needs (`scripts/bench`'s stun profile, BENCHMARKS.md). A pass retires the due
    /// ones in table order: retired one at a time in the order they were answered, their slots were
    /// reused scattered through the table, and each new request and its answer missed the cache (perf:
    /// the table's functions took twice the time). [`Self::retire_settled_requests`] applies the same rule
    /// to the whole table, so whether one went here or there never changes what it meant. One whose last
    /// message came later (a retransmission, a second answer) waits again from then. A pass looks at each
    /// entry once at most, whatever the capture's times.
    pub(in crate::analysis) fn retire_answered_server_requests(&mut self, now: Timestamp) {
        let answers = &mut self.server_answers;
        let units = ServerAnswers::units(now);
        #[allow(clippy::cast_possible_wrap)] // the wrapping difference, read as signed
        if answers
            .last_pass
            .is_some_and(|last| (units.wrapping_sub(last) as i32) < ServerAnswers::PASS_UNITS)
        {
            return;
        }
        answers.last_pass = Some(units);
        let mut due = std::mem::take(&mut answers.due);
        due.clear();
        for _ in 0..answers.queue.len() {
            match answers.queue.front() {
                Some(&(i, since)) if ServerAnswers::due(since, now) => due.push(i),
                _ => break,
            }
            answers.queue.pop_front();
        }
        due.sort_unstable();
        due.dedup();
        let mut gone = Vec::with_capacity(due.len());
        for &i in &due {
            let tx = i as usize;
            let Some(t) = self.transactions.get(tx) else {
                continue;
            };
            let eligible = answered_server_request(&self.ice, tx, t) && !self.turn.is_pending(tx);
            let Some(last) = t.last_activity().filter(|_| eligible) else {
                continue;
            };
            if now.secs_since(last) > ANSWERED_SERVER_REQUEST_QUIET_SECS {
                gone.push(tx);
            } else {
                self.server_answers
                    .queue
                    .push_back((i, ServerAnswers::units(last)));
            }
        }
        self.retire_all_folded(&gone, now);
        self.server_answers.due = due;
    }

    /// Retires `slots`, transactions of folded sessions or allocations or settled ones, in order, noting
    /// what the capture-wide findings would have read of each ([`Retired`]); together
    /// ([`transactions::Transactions::retire_all`]).
    fn retire_all_folded(&mut self, slots: &[transactions::TxIndex], now: Timestamp) {
        let retired = &mut self.ice_folded.retired;
        self.transactions.retire_all(slots, |t| retired.note(t, now));
    }

    /// Folds the open ICE sessions quiet since [`Folded::after`] (by default [`FOLD_AFTER_SECS`]) before
    /// `now`: their views, taken now, are rendered and kept by [`Folded`], and their check transactions
    /// retired (those a pending TURN request still waits on stay).
    pub(in crate::analysis) fn fold_quiet_sessions(&mut self, now: Timestamp) {
        let quiet = self.ice.quiet_sessions(now, self.ice_folded.after());
        if quiet.is_empty() {
            return;
        }
        let (ice, txs) = (&self.ice, &self.transactions);
        self.ice_folded
            .push_sessions(quiet.len(), |i| sessions::session(ice, *quiet.get(i)?, txs, now));
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        let mut gone = self.ice.fold(&quiet);
        gone.retain(|tx| !pending.contains(tx));
        self.retire_all_folded(&gone, now);
    }

    /// Settles the checks of the sessions still open that have been quiet for [`FOLD_AFTER_SECS`]
    /// ([`ice::IceState::settle`]: their tally stays, their transactions go), so a long call's consent
    /// checks do not pile up; those a pending TURN request waits on stay. Returns how many went.
    pub(in crate::analysis) fn settle_checks(&mut self, now: Timestamp) -> usize {
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        let settled = self.ice.settle(
            &self.transactions,
            (now, FOLD_AFTER_SECS, self.ice_folded.after()),
            &pending,
        );
        self.retire_all_folded(&settled, now);
        settled.len()
    }

    /// Retires, once quiet for [`FOLD_AFTER_SECS`], the transactions nothing reads any more: past RFC 8489's
    /// 39.5 s they are final, and past [`transactions::STALE_SECS`] no later message joins them anyway.
    /// - Binding transactions no session checks with (requests to STUN servers: gathering
    ///   server-reflexive candidates, RFC 8445 §5.1.1.1). The binding they found is kept in `ice` on its
    ///   own; only `ice.no-checks` read them, through [`Retired`]. An answered one goes once quiet for
    ///   [`ANSWERED_SERVER_REQUEST_QUIET_SECS`] instead.
    /// - A TURN client's requests but those its allocation's findings read (`findings::turn`: unanswered
    ///   Allocate and Refresh requests, and whether an Allocate was answered, which the allocation keeps
    ///   as `allocate_answered`). Before, CreatePermission, ChannelBind and answered Refresh requests
    ///   stayed until their allocation folded: minutes of a long relayed call.
    pub(in crate::analysis) fn retire_settled_requests(&mut self, now: Timestamp) {
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        let held = self.ice.checks_held(self.transactions.list.len());
        let settled: Vec<transactions::TxIndex> = (0..self.transactions.list.len())
            .filter(|&i| {
                self.transactions.get(i).is_some_and(|t| {
                    let Some(quiet) = t.last_activity().map(|l| now.secs_since(l)) else {
                        return false;
                    };
                    if ice::is_check_method(t.method) {
                        let after = if t.answered() {
                            ANSWERED_SERVER_REQUEST_QUIET_SECS
                        } else {
                            FOLD_AFTER_SECS
                        };
                        quiet > after && !held.contains(i)
                    } else {
                        quiet > FOLD_AFTER_SECS && (!findings::turn::is_allocation_request(t) || t.answered())
                    }
                })
            })
            .filter(|&i| !pending.contains(&i))
            .collect();
        for &i in &settled {
            if let Some(t) = self.transactions.get(i) {
                if t.method == stun::Method::ALLOCATE && !t.relayed && t.answered() {
                    // Noted when the answer came (`TurnState::on_stun`), unless its allocation was made
                    // later: then it is noted now (a sleeping allocation is only read, not woken, for the
                    // check).
                    let key = turn::AllocationKey::of_request(t);
                    if self.turn.allocations.allocate_answered(&key) == Some(false) {
                        if let Some(a) = self.turn.allocations.get_mut(&key) {
                            a.allocate_answered = true;
                        }
                    }
                }
            }
        }
        self.retire_all_folded(&settled, now);
        self.ice.retire_bindings(now);
    }

    /// The transaction table is full at `now`: lets go of up to a quarter of it among the answered
    /// Binding requests no ICE session holds (a STUN server's clients, which
    /// [`Self::retire_settled_requests`] lets go once quiet for [`ANSWERED_SERVER_REQUEST_QUIET_SECS`],
    /// at the next search), least recently active first. A retransmission of one of them still to come
    /// starts a transaction of its own, as it would after that quiet time. Without this, every request
    /// past the bound went untracked: with 45 s of them held, 1.8 M of the 8.8 M messages of
    /// `scripts/bench`'s stun profile (17,000 requests a second) were; with 5 to 6 s held
    /// ([`Self::retire_answered_server_requests`]), a STUN server needs ~80,000 a second to get here.
    /// Returns how many went. Checks, TURN requests and unanswered requests stay: their sessions,
    /// allocations and timeouts still read them.
    pub(in crate::analysis) fn make_room_for_requests(&mut self, now: Timestamp) -> usize {
        // A quarter of a second of age a bucket, the last for 64 s and more.
        const BUCKETS: usize = 256;
        const BUCKET_NS: u64 = 250_000_000;
        let quota = (self.transactions.list.len() / 4).max(1);
        let state = &self.ice;
        let list = &self.transactions.list;
        let eligible = |i: usize, t: &Transaction| {
            (!t.retired() && answered_server_request(state, i, t))
                .then(|| t.last_activity())
                .flatten()
        };
        #[allow(clippy::cast_possible_truncation)] // at most BUCKETS - 1
        let bucket =
            |ts: Timestamp| (now.0.saturating_sub(ts.0) / BUCKET_NS).min(BUCKETS as u64 - 1) as usize;
        // Least recently active first, to a quarter of a second: the eligible ones are counted by how long
        // they have been quiet, then taken in table order from the quietest buckets (with no list of them
        // all: at the bound that list was 8 MB).
        let mut counts = [0usize; BUCKETS];
        for (i, t) in list.iter().enumerate() {
            if let Some(ts) = eligible(i, t) {
                counts[bucket(ts)] += 1;
            }
        }
        // Every bucket after `last` is taken whole; `last` as far as the quota goes.
        let (mut last, mut before) = (BUCKETS - 1, 0);
        while last > 0 && before + counts[last] < quota {
            before += counts[last];
            last -= 1;
        }
        let mut room_in_last = quota - before;
        // In table order, as the quiet ones retire: the slots are reused last retired first.
        let mut chosen = Vec::with_capacity(quota);
        for (i, t) in list.iter().enumerate() {
            let Some(ts) = eligible(i, t) else { continue };
            match bucket(ts) {
                b if b > last => chosen.push(i),
                b if b == last && room_in_last > 0 => {
                    room_in_last -= 1;
                    chosen.push(i);
                }
                _ => {}
            }
        }
        self.retire_all_folded(&chosen, now);
        chosen.len()
    }

    /// Folds the TURN allocations over and quiet since [`Folded::after`] before `now`
    /// ([`turn::TurnState::finished`]): each is rendered as the capture's end would show it, with its
    /// findings, and taken out with its transactions. Returns their relayed addresses.
    pub(in crate::analysis) fn fold_finished_allocations(&mut self, now: Timestamp) -> Vec<SocketAddr> {
        let mut order = self.turn.finished(now, self.ice_folded.after());
        if order.is_empty() {
            return Vec::new();
        }
        order.sort_unstable();
        let finished: HashSet<turn::AllocationKey, FastHash> = order.iter().copied().collect();
        let theirs = self.transactions_of(&finished);
        let mut folded = Vec::new();
        let mut relayed = Vec::new();
        let (allocations, txs) = (&self.turn.allocations, &self.transactions);
        // Each is read once (a sleeping one back from its store, and let go after), for its findings and
        // its rendering: reading it again to render took as long as the findings (perf, BENCHMARKS.md).
        self.ice_folded.push_allocations(
            order.len(),
            |i, render, buffers| {
                let key = order.get(i)?;
                let a = allocations.get_passing(key)?;
                let mut mine: Vec<&Transaction> = theirs
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter_map(|&i| txs.get(i))
                    .filter(|t| findings::turn::is_allocation_request(t))
                    .collect();
                findings::turn::in_request_order(&mut mine);
                if findings::turn::allocate_unanswered(&a, &mine) {
                    return None;
                }
                let found = findings::turn::allocation_findings(key, &a, &mine, now);
                let p = PreparedAllocation::of(render, key, &a, now, found, buffers);
                Some((p, (*key, a.relayed.clone())))
            },
            |(key, addresses)| {
                relayed.extend(addresses);
                folded.push(key);
            },
        );
        let mut retire = Vec::new();
        for key in folded {
            self.turn.remove(&key);
            retire.extend(theirs.get(&key).into_iter().flatten().copied());
        }
        // The allocations' own transactions (client → server), but those still awaited, in table order.
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        retire.retain(|i| !pending.contains(i));
        retire.sort_unstable();
        self.retire_all_folded(&retire, now);
        relayed
    }

    /// The transactions still tracked of each allocation in `keys` (not relayed, client → server), by
    /// index in table order, found in one pass over the table. A fold search made two, the second hashing
    /// every transaction's addresses with SipHash: ~6 % of a 4 GB call-dense read (perf, BENCHMARKS.md).
    fn transactions_of(
        &self,
        keys: &HashSet<turn::AllocationKey, FastHash>,
    ) -> HashMap<turn::AllocationKey, Vec<transactions::TxIndex>, FastHash> {
        let mut theirs: HashMap<turn::AllocationKey, Vec<transactions::TxIndex>, FastHash> =
            HashMap::default();
        for (i, t) in self.transactions.list.iter().enumerate() {
            if t.retired() || t.relayed {
                continue;
            }
            let key = turn::AllocationKey::of_request(t);
            if keys.contains(&key) {
                theirs.entry(key).or_default().push(i);
            }
        }
        theirs
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::{testkit, Analyzer, Model};
    use crate::capture::Timestamp;
    use crate::wire::credentials::Keyring;
    use crate::wire::stun::{Class, Method, StunMessage};

    /// An answered request to a STUN server goes once quiet for 5 s; an unanswered one, and an ICE check
    /// answered at the same time, stay until 45 s (the give-up time, and their session's settling).
    #[test]
    fn answered_server_requests_retire_after_five_quiet_seconds() {
        let mut m = Model::default();
        let (server, a, b) = ("198.51.100.1:3478", "192.0.2.1:5000", "192.0.2.2:5000");
        let request = |id| testkit::message(Method::BINDING, Class::Request, id, vec![]);
        testkit::feed(&mut m.transactions, &mut m.ice, 0, 1, a, server, &request(1));
        testkit::feed(&mut m.transactions, &mut m.ice, 0, 2, b, server, &request(2));
        testkit::feed(
            &mut m.transactions,
            &mut m.ice,
            30,
            3,
            server,
            a,
            &testkit::success(1, None),
        );
        let check = testkit::check(3, "R:L", true, false);
        testkit::feed(&mut m.transactions, &mut m.ice, 100, 4, a, b, &check);
        testkit::feed(
            &mut m.transactions,
            &mut m.ice,
            130,
            5,
            b,
            a,
            &testkit::success(3, None),
        );
        let held = |m: &Model| {
            let mut ids: Vec<u8> = m.transactions.iter().map(|t| t.id.0[1]).collect();
            ids.sort_unstable();
            ids
        };
        let secs = |s: u64| Timestamp(s * 1_000_000_000);
        m.retire_settled_requests(secs(5));
        assert_eq!(held(&m), [1, 2, 3], "nothing is quiet for 5 s yet");
        m.retire_settled_requests(secs(6));
        assert_eq!(held(&m), [2, 3], "the answered server request went");
        m.retire_settled_requests(secs(46));
        assert_eq!(
            held(&m),
            [3],
            "the unanswered one went at 45 s; the check is its session's"
        );
    }

    /// With folding on, an answered request to a STUN server goes within a second of capture time once it
    /// has been quiet for 5 s, not at the next search (every 5 s: it stayed up to 10 s); a retransmission
    /// after its answer makes it wait 5 s from then; an ICE check answered at the same time is not queued
    /// (its session settles it). Without folding nothing is queued.
    #[test]
    fn answered_server_requests_go_as_messages_come() {
        let (server, a, b, c) = (
            "198.51.100.1:3478",
            "192.0.2.1:5000",
            "192.0.2.2:5000",
            "192.0.2.3:5000",
        );
        let request = |id| testkit::message(Method::BINDING, Class::Request, id, vec![]);
        let ms = |n: u64| Timestamp(n * 1_000_000);
        let held = |m: &Model| {
            let mut ids: Vec<u8> = m.transactions.iter().map(|t| t.id.0[1]).collect();
            ids.sort_unstable();
            ids
        };
        for folding in [true, false] {
            let mut m = Model::default();
            if folding {
                m.ice_folded.enable(
                    crate::report::json::render_folded_session,
                    crate::report::turn::render_folded_allocation,
                    crate::report::json::render_folded_finding,
                    None,
                );
            }
            let feed = |m: &mut Model, at: u64, frame, from, to, msg: &StunMessage| {
                m.retire_answered_server_requests(ms(at));
                let event = testkit::feed(&mut m.transactions, &mut m.ice, at, frame, from, to, msg);
                if let crate::analysis::transactions::TxEvent::Response { tx, first: true } = event {
                    m.note_answer(tx, ms(at));
                }
            };
            feed(&mut m, 0, 1, a, server, &request(1));
            feed(&mut m, 10, 2, server, a, &testkit::success(1, None));
            feed(&mut m, 20, 3, b, server, &request(2));
            feed(&mut m, 30, 4, server, b, &testkit::success(2, None));
            feed(&mut m, 40, 5, b, c, &testkit::check(3, "R:L", true, false));
            feed(&mut m, 50, 6, c, b, &testkit::success(3, None));
            let queued = m.server_answers.queue.len();
            assert_eq!(
                queued,
                if folding { 2 } else { 0 },
                "folding {folding}: a's and b's, not the check"
            );
            // b's client did not see its answer and sends the request again.
            feed(&mut m, 2_030, 7, b, server, &request(2));
            feed(&mut m, 5_000, 8, c, server, &request(4));
            assert_eq!(
                held(&m),
                [1, 2, 3, 4],
                "folding {folding}: nothing quiet for 5 s yet"
            );
            feed(&mut m, 6_100, 9, c, server, &request(5));
            let first = if folding {
                vec![2, 3, 4, 5]
            } else {
                vec![1, 2, 3, 4, 5]
            };
            assert_eq!(
                held(&m),
                first,
                "folding {folding}: a's went 6.09 s after its answer"
            );
            feed(&mut m, 7_200, 10, c, server, &request(6));
            let second = if folding {
                vec![3, 4, 5, 6]
            } else {
                vec![1, 2, 3, 4, 5, 6]
            };
            assert_eq!(
                held(&m),
                second,
                "folding {folding}: b's went 5.17 s after its retransmission"
            );
            assert!(m.server_answers.queue.is_empty(), "folding {folding}");
        }
    }

    /// A full table lets go of answered requests to STUN servers only: an unanswered one stays (its
    /// answer may still come), and so does an ICE check.
    #[test]
    fn making_room_never_lets_an_unanswered_request_go() {
        let (server, a, b) = ("198.51.100.1:3478", "192.0.2.1:5000", "192.0.2.2:5000");
        let request = |id| testkit::message(Method::BINDING, Class::Request, id, vec![]);
        let mut m = Model::default();
        m.transactions.limit = Some(3);
        testkit::feed(&mut m.transactions, &mut m.ice, 0, 1, a, server, &request(1));
        testkit::feed(&mut m.transactions, &mut m.ice, 10, 2, b, server, &request(2));
        testkit::feed(
            &mut m.transactions,
            &mut m.ice,
            20,
            3,
            a,
            b,
            &testkit::check(3, "R:L", true, false),
        );
        testkit::feed(
            &mut m.transactions,
            &mut m.ice,
            30,
            4,
            b,
            a,
            &testkit::success(3, None),
        );
        assert!(m.transactions.full());
        assert_eq!(
            m.make_room_for_requests(Timestamp(60_000_000_000)),
            0,
            "nothing to let go"
        );
        testkit::feed(
            &mut m.transactions,
            &mut m.ice,
            40,
            5,
            server,
            b,
            &testkit::success(2, None),
        );
        assert_eq!(m.make_room_for_requests(Timestamp(60_000_000_000)), 1);
        let mut held: Vec<u8> = m.transactions.iter().map(|t| t.id.0[1]).collect();
        held.sort_unstable();
        assert_eq!(held, [1, 3], "the answered server request went");
    }

    /// The report of `fixtures` read in a row, with room for `limit` transactions (all when None), and
    /// how many requests went untracked.
    fn report(fixtures: &[&str], limit: Option<usize>) -> (String, u64) {
        let mut an = Analyzer::new(Keyring::new());
        crate::report::fold_as_reported(&mut an, None);
        an.state.model.transactions.limit = limit;
        testkit::fixtures_in_a_row(fixtures, 60, &mut |pkt, _| an.ingest(pkt));
        an.finish();
        let lean = crate::report::Report::build_lean(an.model(), &[], an.net_stats());
        let mut out = Vec::new();
        crate::report::json::write_streaming(&lean, an.model(), &mut out).expect("in memory");
        let untracked = an.model().transactions.not_tracked;
        (String::from_utf8(out).expect("UTF-8"), untracked)
    }

    /// A full transaction table lets go of answered requests to STUN servers rather than leave new
    /// requests untracked: real RFC 5780 behaviour tests and srflx gatherings, read with room for a
    /// handful of transactions, give the report they give with room for all.
    #[test]
    fn a_full_table_makes_room_from_answered_server_requests() {
        let fixtures = [
            "natdiscovery-none",
            "natdiscovery-port-restricted",
            "natdiscovery-symmetric",
        ];
        let (all, untracked) = report(&fixtures, None);
        assert_eq!(untracked, 0);
        for limit in [1, 2, 3, 5] {
            let (small, untracked) = report(&fixtures, Some(limit));
            assert_eq!(untracked, 0, "room for {limit}");
            assert!(small == all, "room for {limit}: the reports differ");
        }
    }
}
