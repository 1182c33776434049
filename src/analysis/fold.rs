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
use crate::capture::Timestamp;
use crate::wire::stun::Method;
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
