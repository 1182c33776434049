//! Folding finished ICE sessions during a file read, so that memory follows the calls open at one moment,
//! not every call a capture ever held (a busy TURN server's hour is tens of thousands of sessions).
//!
//! A session with nothing seen (no STUN message, no media on any of its pairs) for [`FOLD_AFTER_SECS`]
//! of capture time is over: past RFC 8489 §6.2.1's 39.5 s every check it sent has its final state, and
//! past RFC 7675 §5.1's 30 s its consent has expired. Its view is worked out then, exactly as the end of the
//! capture would have, and handed to the output's renderer ([`Render`]); what the output wrote (its JSON
//! element and its lines of the text summary) goes into a [`RawStore`] that spills to a temporary file,
//! and the session keeps only a mark. Its findings are worked out too, except the two that measure up to
//! the end of the capture, whose few inputs are kept ([`EndFacts`]). Its transactions are retired, so
//! their slots serve new checks.
//!
//! TURN allocations fold the same way once over (deleted, expired, or refused; `Allocation::over_at`) and
//! quiet for as long, with no request of theirs in flight: their element of `turn.allocations`, their
//! lines of the text summary and their findings are kept, and their transactions retired. An allocation
//! whose Allocate requests all went unanswered is not folded (its finding measures up to the capture's end),
//! nor is one seen only mid-stream, whose lifetime is unknown.
//!
//! What it does not do: fold in the TUI or live capture (the TUI opens any session again; live capture
//! freezes sessions with `--idle-timeout`, [`super::Analyzer::age_out`]). A session that comes back after
//! silence (the same ufrags) is listed as a new session, and a client that allocates again on the same
//! 5-tuple after its allocation folded gets a second entry.

use super::findings::ice::{lasting_findings, EndFacts};
use super::findings::{Finding, FoldedFinding, MAX_EVIDENCE_FRAMES};
use super::sessions::SessionReport;
use super::store::{RawRef, RawStore, Spill};
use super::transactions::{Transaction, TxState};
use super::turn::{Allocation, AllocationKey};
use super::{findings, sessions, transactions, turn, Model};
use crate::capture::Timestamp;
use crate::wire::stun::{self, Method};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// Capture time a session must be quiet before it is folded: more than RFC 8489's 39.5 s transaction
/// timeout (every check's state is final) and RFC 7675's 30 s consent timeout (an agent that sent nothing
/// for that long has no consent left). A live call is never that quiet: consent checks go every 4-6 s
/// (RFC 7675 §5.1) and RTCP every few seconds. Shorter keeps fewer sessions open on a busy server.
pub(crate) const FOLD_AFTER_SECS: f64 = super::transactions::STALE_SECS;

/// Capture time between two searches for quiet sessions: a search reads every open session.
pub(crate) const FOLD_EVERY_SECS: f64 = 5.0;

/// What an output made of a folded session's view: its element of the JSON `sessions` array (rendered at
/// the array's depth) and its part of the text summary.
pub struct Rendered {
    pub(crate) json: Vec<u8>,
    pub(crate) text: Vec<u8>,
}

/// How an output renders a session's view (the report layer gives it; the analysis only stores the bytes).
pub(crate) type Render = fn(&SessionReport) -> Rendered;

/// How an output renders a finding: its element of the report's `findings` array and its line of the text
/// summary.
pub(crate) type RenderFinding = fn(&Finding) -> Rendered;

/// How an output renders an allocation as the capture ending at the given time shows it: its element of
/// `turn.allocations` and its lines of the text summary.
pub(crate) type RenderAllocation = fn(&AllocationKey, &Allocation, Timestamp) -> Rendered;

/// A folded allocation: its key (the report lists allocations in key order), its rendered forms and its
/// findings.
#[derive(Debug)]
pub struct FoldedAllocation {
    pub(crate) key: AllocationKey,
    pub(crate) json: RawRef,
    pub(crate) text: RawRef,
    pub(crate) findings: Vec<FoldedFinding>,
}

/// A folded session: where its rendered forms are, and what the report still needs of it.
#[derive(Debug)]
pub struct FoldedSession {
    pub(crate) index: usize,
    pub(crate) json: RawRef,
    pub(crate) text: RawRef,
    pub(crate) connected: bool,
    /// Its findings but the end-of-capture ones, in the order the rules give them.
    pub(crate) findings: Vec<FoldedFinding>,
    pub(crate) end_facts: Option<EndFacts>,
}

/// What the capture-wide findings read of the transactions folding retired (`findings::ice`'s
/// `ice.no-checks`, which reads the transaction table when a capture has no ICE session at all).
#[derive(Debug, Default)]
pub(crate) struct Retired {
    /// The smallest first-request frames of non-relayed Binding and Allocate transactions (as many as a
    /// finding lists as evidence).
    pub(crate) gathered: Vec<u64>,
    /// An Allocate transaction was retired; one of them had succeeded.
    pub(crate) allocates: bool,
    pub(crate) allocated: bool,
}

impl Retired {
    pub(crate) fn note(&mut self, t: &Transaction, now: Timestamp) {
        if (t.method == Method::BINDING || t.method == Method::ALLOCATE) && !t.relayed {
            if let Some(first) = t.first_request() {
                self.gathered.push(first.frame);
                if self.gathered.len() > 2 * MAX_EVIDENCE_FRAMES {
                    self.gathered.sort_unstable();
                    self.gathered.dedup();
                    self.gathered.truncate(MAX_EVIDENCE_FRAMES);
                }
            }
        }
        if t.method == Method::ALLOCATE {
            self.allocates = true;
            self.allocated |= t.state(now) == TxState::Succeeded;
        }
    }
}

/// The sessions folded so far, in the order they folded (not their index order).
#[derive(Debug, Default)]
pub struct Folded {
    pub sessions: Vec<FoldedSession>,
    pub allocations: Vec<FoldedAllocation>,
    pub(crate) retired: Retired,
    pub(crate) store: RawStore,
    render: Option<Render>,
    render_allocation: Option<RenderAllocation>,
    render_finding: Option<RenderFinding>,
    next_search: Option<Timestamp>,
}

impl Folded {
    /// Folding on, with `render` for the views and `spill` for the rendered bytes (in memory without one).
    pub(crate) fn enable(
        &mut self,
        render: Render,
        render_allocation: RenderAllocation,
        render_finding: RenderFinding,
        spill: Option<Arc<dyn Spill>>,
    ) {
        self.render = Some(render);
        self.render_allocation = Some(render_allocation);
        self.render_finding = Some(render_finding);
        if let Some(spill) = spill {
            self.store.set_spill(spill);
        }
    }

    /// Whether folding is on ([`Folded::enable`]).
    pub(crate) fn enabled(&self) -> bool {
        self.render.is_some()
    }

    /// Whether a search for quiet sessions is due at `now` (the search is then scheduled for later).
    pub(crate) fn due(&mut self, now: Timestamp) -> bool {
        if self.render.is_none() || self.next_search.is_some_and(|next| now < next) {
            return false;
        }
        self.next_search = Some(now.saturating_add_secs(FOLD_EVERY_SECS));
        true
    }

    /// Renders and keeps session `view`'s forms and findings.
    pub(crate) fn push(&mut self, view: &SessionReport) {
        let Some(render) = self.render else { return };
        let Rendered { json, text } = render(view);
        let json = self.store.push(&json);
        let text = self.store.push(&text);
        let findings = self.fold_findings(lasting_findings(view));
        self.sessions.push(FoldedSession {
            index: view.index,
            json,
            text,
            connected: view.outcome == super::sessions::Outcome::Connected,
            findings,
            end_facts: EndFacts::of(view),
        });
    }

    /// Renders and keeps allocation `key`'s forms, as a capture ending at `now` shows it, and its findings.
    pub(crate) fn push_allocation(
        &mut self,
        key: &AllocationKey,
        a: &Allocation,
        now: Timestamp,
        findings: Vec<Finding>,
    ) {
        let Some(render) = self.render_allocation else {
            return;
        };
        let Rendered { json, text } = render(key, a, now);
        let json = self.store.push(&json);
        let text = self.store.push(&text);
        let findings = self.fold_findings(findings);
        self.allocations.push(FoldedAllocation {
            key: *key,
            json,
            text,
            findings,
        });
    }

    /// Renders findings into the store: what the report keeps of them is where they are and what it sorts
    /// them by (tens of bytes each, not the hundreds their messages and evidence take).
    fn fold_findings(&mut self, findings: Vec<Finding>) -> Vec<FoldedFinding> {
        let Some(render) = self.render_finding else {
            return Vec::new();
        };
        findings
            .iter()
            .map(|f| {
                let Rendered { json, text } = render(f);
                FoldedFinding {
                    severity: f.severity,
                    first_frame: f.frames.first().copied(),
                    code: f.code,
                    json: self.store.push(&json),
                    text: self.store.push(&text),
                }
            })
            .collect()
    }

    /// The folded allocations in key order, those with the same key in the order they folded.
    pub(crate) fn allocations_in_order(&self) -> Vec<&FoldedAllocation> {
        let mut v: Vec<&FoldedAllocation> = self.allocations.iter().collect();
        v.sort_by_key(|f| f.key);
        v
    }

    /// The folded sessions in index order (the order of the report's `sessions` array).
    pub(crate) fn in_order(&self) -> Vec<&FoldedSession> {
        let mut v: Vec<&FoldedSession> = self.sessions.iter().collect();
        v.sort_by_key(|f| f.index);
        v
    }
}

/// Folding as the analysis drives it: what is folded, settled and retired when.
impl Model {
    /// Folds the open ICE sessions quiet since [`FOLD_AFTER_SECS`] before `now`: their views, taken
    /// now, are rendered and kept by [`Folded`], and their check transactions retired (those a
    /// pending TURN request still waits on stay).
    pub(super) fn fold_quiet_sessions(&mut self, now: Timestamp) {
        let quiet = self.ice.quiet_sessions(now, FOLD_AFTER_SECS);
        if quiet.is_empty() {
            return;
        }
        for &s in &quiet {
            if let Some(view) = sessions::session(&self.ice, s, &self.transactions, now) {
                self.ice_folded.push(&view);
            }
        }
        let pending: HashSet<transactions::TxIndex> = self.turn.pending_txs().collect();
        for tx in self.ice.fold(&quiet) {
            if !pending.contains(&tx) {
                self.retire_folded(tx, now);
            }
        }
    }

    /// Settles the checks of the sessions still open that have been quiet for [`FOLD_AFTER_SECS`]
    /// ([`ice::IceState::settle`]: their tally stays, their transactions go), so a long call's consent
    /// checks do not pile up; those a pending TURN request waits on stay.
    pub(super) fn settle_checks(&mut self, now: Timestamp) {
        let pending: HashSet<transactions::TxIndex> = self.turn.pending_txs().collect();
        for tx in self
            .ice
            .settle(&self.transactions, now, FOLD_AFTER_SECS, &pending)
        {
            self.retire_folded(tx, now);
        }
    }

    /// At the end of the capture, folds every session and allocation still open, each as the report
    /// would show it (the views and findings at the capture's last timestamp). Their transactions stay:
    /// nothing comes after.
    pub(super) fn fold_rest(&mut self) {
        let end = self.last_ts.unwrap_or_default();
        let open = self.ice.quiet_sessions(end, f64::NEG_INFINITY);
        for &s in &open {
            if let Some(view) = sessions::session(&self.ice, s, &self.transactions, end) {
                self.ice_folded.push(&view);
            }
        }
        self.ice.fold(&open);
        let keys: Vec<turn::AllocationKey> = self.turn.allocations.iter().map(|(k, _)| *k).collect();
        let mut found = Vec::new();
        {
            let by_allocation = findings::turn::transactions_by_allocation(self, |_| true);
            for key in &keys {
                let Some(a) = self.turn.allocations.get(key) else {
                    continue;
                };
                let txs = by_allocation.get(key).map(Vec::as_slice).unwrap_or(&[]);
                found.push(findings::turn::allocation_findings(key, a, txs, end));
            }
        }
        for (key, found) in keys.iter().zip(found) {
            if let Some(a) = self.turn.allocations.get(key) {
                self.ice_folded.push_allocation(key, a, end, found);
            }
            self.turn.remove(key);
        }
    }

    /// Retires the Binding transactions no session checks with (requests to STUN servers: gathering
    /// server-reflexive candidates, RFC 8445 §5.1.1.1) once quiet for [`FOLD_AFTER_SECS`]: past
    /// RFC 8489's 39.5 s they are final, and the binding they found is kept in `ice` on its own. Only
    /// `ice.no-checks` read them, through [`Retired`].
    pub(super) fn retire_stray_bindings(&mut self, now: Timestamp) {
        let pending: HashSet<transactions::TxIndex> = self.turn.pending_txs().collect();
        let stray: Vec<transactions::TxIndex> = (0..self.transactions.list.len())
            .filter(|&i| {
                self.transactions.get(i).is_some_and(|t| {
                    !t.retired
                        && (t.method == stun::Method::BINDING || t.method == stun::Method::GOOG_PING)
                        && t.last_activity()
                            .is_some_and(|l| now.secs_since(l) > FOLD_AFTER_SECS)
                })
            })
            .filter(|&i| self.ice.session_of_tx(i).is_none() && !pending.contains(&i))
            .collect();
        for i in stray {
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

    /// Folds the TURN allocations over and quiet since [`FOLD_AFTER_SECS`] before `now`
    /// ([`turn::TurnState::finished`]): each is rendered as the capture's end would show it, with its
    /// findings, and taken out with its transactions. Returns their relayed addresses.
    pub(super) fn fold_finished_allocations(&mut self, now: Timestamp) -> Vec<SocketAddr> {
        let mut order = self.turn.finished(now, FOLD_AFTER_SECS);
        if order.is_empty() {
            return Vec::new();
        }
        order.sort_unstable();
        let finished: HashSet<turn::AllocationKey> = order.iter().copied().collect();
        let mut folded = Vec::new();
        {
            let by_allocation = findings::turn::transactions_by_allocation(self, |k| finished.contains(k));
            for key in &order {
                let Some(a) = self.turn.allocations.get(key) else {
                    continue;
                };
                let txs = by_allocation.get(key).map(Vec::as_slice).unwrap_or(&[]);
                if findings::turn::allocate_unanswered(txs) {
                    continue;
                }
                let found = findings::turn::allocation_findings(key, a, txs, now);
                folded.push((*key, found));
            }
        }
        let mut relayed = Vec::new();
        let keys: HashSet<turn::AllocationKey> = folded.iter().map(|(k, _)| *k).collect();
        for (key, found) in folded {
            if let Some(a) = self.turn.allocations.get(&key) {
                self.ice_folded.push_allocation(&key, a, now, found);
            }
            if let Some(a) = self.turn.remove(&key) {
                relayed.extend(a.relayed);
            }
        }
        // The allocations' own transactions (client → server), but those still awaited.
        let pending: HashSet<transactions::TxIndex> = self.turn.pending_txs().collect();
        let theirs: Vec<transactions::TxIndex> = (0..self.transactions.list.len())
            .filter(|i| !pending.contains(i))
            .filter(|&i| {
                self.transactions.get(i).is_some_and(|t| {
                    !t.relayed
                        && keys.contains(&turn::AllocationKey {
                            client: t.requester,
                            server: t.responder,
                            transport: t.transport,
                        })
                })
            })
            .collect();
        for i in theirs {
            self.retire_folded(i, now);
        }
        relayed
    }
}
