//! The searches for what is quiet during a read (every [`super::FOLD_EVERY_SECS`] of capture time): the
//! ICE sessions that fold, the checks that settle, the requests that retire and the TURN allocations that
//! fold, and the transactions they leave behind.

use super::FOLD_AFTER_SECS;
use crate::analysis::transactions::{self, Transaction};
use crate::analysis::{findings, sessions, turn, Model};
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::wire::stun;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

/// Folding as the analysis drives it: what is folded, settled and retired when.
impl Model {
    /// Folds the open ICE sessions quiet since [`Folded::after`] (by default [`FOLD_AFTER_SECS`]) before
    /// `now`: their views, taken now, are rendered and kept by [`Folded`], and their check transactions
    /// retired (those a pending TURN request still waits on stay).
    pub(in crate::analysis) fn fold_quiet_sessions(&mut self, now: Timestamp) {
        let quiet = self.ice.quiet_sessions(now, self.ice_folded.after());
        if quiet.is_empty() {
            return;
        }
        for &s in &quiet {
            if let Some(view) = sessions::session(&self.ice, s, &self.transactions, now) {
                self.ice_folded.push(&view);
            }
        }
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        for tx in self.ice.fold(&quiet) {
            if !pending.contains(&tx) {
                self.retire_folded(tx, now);
            }
        }
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
        for &tx in &settled {
            self.retire_folded(tx, now);
        }
        settled.len()
    }

    /// Retires, once quiet for [`FOLD_AFTER_SECS`], the transactions nothing reads any more: past RFC 8489's
    /// 39.5 s they are final, and past [`transactions::STALE_SECS`] no later message joins them anyway.
    /// - Binding transactions no session checks with (requests to STUN servers: gathering
    ///   server-reflexive candidates, RFC 8445 §5.1.1.1). The binding they found is kept in `ice` on its
    ///   own; only `ice.no-checks` read them, through [`Retired`].
    /// - A TURN client's requests but those its allocation's findings read (`findings::turn`: unanswered
    ///   Allocate and Refresh requests, and whether an Allocate was answered, which the allocation keeps
    ///   as `allocate_answered`). Before, CreatePermission, ChannelBind and answered Refresh requests
    ///   stayed until their allocation folded: minutes of a long relayed call.
    pub(in crate::analysis) fn retire_settled_requests(&mut self, now: Timestamp) {
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        let settled: Vec<transactions::TxIndex> = (0..self.transactions.list.len())
            .filter(|&i| {
                self.transactions.get(i).is_some_and(|t| {
                    t.last_activity()
                        .is_some_and(|l| now.secs_since(l) > FOLD_AFTER_SECS)
                        && if t.method == stun::Method::BINDING || t.method == stun::Method::GOOG_PING {
                            self.ice.session_of_tx(i).is_none()
                        } else {
                            !findings::turn::is_allocation_request(t) || t.answered()
                        }
                })
            })
            .filter(|&i| !pending.contains(&i))
            .collect();
        for i in settled {
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
            self.retire_folded(i, now);
        }
        self.ice.retire_bindings(now);
    }

    /// Retires a folded session's or allocation's transaction, noting what the capture-wide findings
    /// would have read of it ([`Retired`]).
    fn retire_folded(&mut self, i: transactions::TxIndex, now: Timestamp) {
        if let Some(t) = self.transactions.get(i) {
            self.ice_folded.retired.note(t, now);
        }
        self.transactions.retire(i);
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
        // Each is read once (a sleeping one back from its store, and let go after), for its findings and
        // its rendering: reading it again to render took as long as the findings (perf, BENCHMARKS.md).
        for key in &order {
            let Some(a) = self.turn.allocations.get_passing(key) else {
                continue;
            };
            let mut txs: Vec<&Transaction> = theirs
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|&i| self.transactions.get(i))
                .filter(|t| findings::turn::is_allocation_request(t))
                .collect();
            findings::turn::in_request_order(&mut txs);
            if findings::turn::allocate_unanswered(&a, &txs) {
                continue;
            }
            let found = findings::turn::allocation_findings(key, &a, &txs, now);
            self.ice_folded.push_allocation(key, &a, now, found);
            relayed.extend_from_slice(&a.relayed);
            folded.push(*key);
        }
        let mut retire = Vec::new();
        for key in folded {
            self.turn.remove(&key);
            retire.extend(theirs.get(&key).into_iter().flatten().copied());
        }
        // The allocations' own transactions (client → server), but those still awaited, in table order.
        let pending: HashSet<transactions::TxIndex, FastHash> = self.turn.pending_txs().collect();
        retire.retain(|i| !pending.contains(i));
        retire.sort_unstable();
        for i in retire {
            self.retire_folded(i, now);
        }
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
