//! Folding finished ICE sessions as a capture is read (a file, or live), so that memory follows the calls open at one moment,
//! not every call a capture ever held (a busy TURN server's hour is tens of thousands of sessions).
//!
//! A session with nothing seen (no STUN message, no media on any of its pairs) for [`FOLD_AFTER_SECS`]
//! of capture time is over: past RFC 8489 §6.2.1's 39.5 s every check it sent has its final state, and
//! past RFC 7675 §5.1's 30 s its consent has expired. Its view is worked out then, exactly as the end of the
//! capture would have, and handed to the output's renderer ([`Render`]); what the output wrote (its JSON
//! element and its lines of the text summary) goes into a [`RawStore`] that spills to a temporary file,
//! and the session keeps only a mark (48 bytes). Its findings are worked out and rendered too (32 bytes
//! each are kept), except the two that measure up to the end of the capture, whose few inputs are stored
//! with its forms ([`EndFacts`]) and worked out when the capture ends. Its transactions are retired, so
//! their slots serve new checks. The marks go to the same store, a page of 1,024 at a time, once the page
//! is full ([`Paged::store_full`]): memory holds a page of each kind, however many calls a run folds.
//!
//! TURN allocations fold the same way once over (deleted, expired, or refused; `Allocation::over_at`) and
//! quiet for as long, with no request of theirs in flight: their element of `turn.allocations`, their
//! lines of the text summary and their findings are kept, and their transactions retired. An allocation
//! whose Allocate requests all went unanswered is not folded (its finding measures up to the capture's end),
//! nor is one seen only mid-stream, whose lifetime is unknown.
//!
//! Both `iceview read` and `iceview live` fold (a live run may wait longer, `--idle-timeout`:
//! [`Folded::set_after`]). A session that comes back after silence (the same ufrags) is listed as a new
//! session, and a client that allocates again on the same 5-tuple after its allocation folded gets a second
//! entry.

use super::findings::ice::{lasting_findings, EndFacts};
use super::findings::{Finding, FoldedFinding, Severity, MAX_EVIDENCE_FRAMES};
use super::pack::{pack_struct, pack_unit_enum, Pack, Reader};
use super::paged::Paged;
use super::sessions::{Outcome, SessionReport};
use super::store::{RawRef, RawStore, Spill};
use super::transactions::{Transaction, TxState};
use super::turn;
use super::turn::{Allocation, AllocationKey, AllocationState};

mod end;
mod search;
mod two;
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::Transport;
use crate::wire::stun::Method;
pub(crate) use search::ServerAnswers;
use std::io;
use std::ops::Range;
use std::sync::Arc;

/// Capture time a session must be quiet before it is folded: more than RFC 8489's 39.5 s transaction
/// timeout (every check's state is final) and RFC 7675's 30 s consent timeout (an agent that sent nothing
/// for that long has no consent left). A live call is never that quiet: consent checks go every 4-6 s
/// (RFC 7675 §5.1) and RTCP every few seconds. Shorter keeps fewer sessions open on a busy server.
pub(crate) const FOLD_AFTER_SECS: f64 = super::transactions::STALE_SECS;

/// Capture time a session must be quiet before it sleeps until it folds ([`crate::analysis::ice`]'s
/// `Sessions::sleep`): twice RFC 7675 §5.1's longest gap between two consent checks (6 s) less a little,
/// so a call whose checks or media still flow never sleeps, and one that ended sleeps a search or two
/// after its last packet. Call-dense 4 GB: 5,258 of the 7,465 sessions open at the read's peak had been
/// quiet for more than 5 s.
pub const SLEEP_AFTER_SECS: f64 = 10.0;

/// Capture time between two searches for quiet sessions: a search reads every open session.
pub(crate) const FOLD_EVERY_SECS: f64 = 5.0;

/// When the searches for what is quiet run: at the first packet, then at the first packet
/// [`FOLD_EVERY_SECS`] or more after the last search. Packet by packet (`Folded::due`) and the pipeline's
/// reading thread (which marks those packets in its batches) follow the same schedule, so folding does not
/// depend on where batches end.
#[derive(Debug, Default)]
pub(crate) struct SearchSchedule {
    next: Option<Timestamp>,
}

impl SearchSchedule {
    /// Whether a search is due at `now` (it is then scheduled for later).
    pub(crate) fn due(&mut self, now: Timestamp) -> bool {
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now.saturating_add_secs(FOLD_EVERY_SECS));
        true
    }
}

/// What an output made of a folded session's view: its element of the JSON `sessions` array (rendered at
/// the array's depth) and its part of the text summary. [`Folded`] keeps one and hands it, emptied, to
/// each render, which fills it: a fresh pair of buffers per item, grown by doubling, was ~3 % of a 4 GB
/// call-dense read (perf, BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct Rendered {
    pub(crate) json: Vec<u8>,
    pub(crate) text: Vec<u8>,
}

impl Rendered {
    /// Above this a buffer is let go rather than kept for the next item (one session with a huge timeline
    /// must not hold its size for the rest of the read).
    const KEEP: usize = 1 << 20;

    /// Both buffers emptied, for the next item's render.
    fn cleared(&mut self) -> &mut Rendered {
        for buf in [&mut self.json, &mut self.text] {
            if buf.capacity() > Self::KEEP {
                *buf = Vec::new();
            }
            buf.clear();
        }
        self
    }
}

/// A session's view rendered, with what folding keeps of it, not yet stored: made on any thread (the end
/// of a capture and each search render on two, [`two`]), kept in order by [`Folded::commit_session`].
pub(crate) struct PreparedSession {
    index: usize,
    rendered: Rendered,
    /// Its [`EndFacts`], encoded (empty without).
    facts: Vec<u8>,
    end_facts: bool,
    findings: Vec<Finding>,
    outcome: super::sessions::Outcome,
}

impl PreparedSession {
    /// `view` rendered by `render` into `rendered`'s buffers, with its facts and lasting findings.
    pub(crate) fn of(render: Render, view: &SessionReport, mut rendered: Rendered) -> PreparedSession {
        render(view, rendered.cleared());
        let end = EndFacts::of(view);
        let mut facts = Vec::new();
        if let Some(end) = &end {
            end.encode(&mut facts);
        }
        PreparedSession {
            index: view.index,
            rendered,
            facts,
            end_facts: end.is_some(),
            findings: lasting_findings(view),
            outcome: view.outcome,
        }
    }
}

/// An allocation rendered as a capture ending at a given time shows it, with its findings, not yet
/// stored ([`Folded::commit_allocation`]).
pub(crate) struct PreparedAllocation {
    key: AllocationKey,
    state: turn::AllocationState,
    rendered: Rendered,
    findings: Vec<Finding>,
}

impl PreparedAllocation {
    /// Allocation `key` (`a`) at `now` rendered by `render` into `rendered`'s buffers, with `findings`.
    pub(crate) fn of(
        render: RenderAllocation,
        key: &AllocationKey,
        a: &Allocation,
        now: Timestamp,
        findings: Vec<Finding>,
        mut rendered: Rendered,
    ) -> PreparedAllocation {
        render(key, a, now, rendered.cleared());
        PreparedAllocation {
            key: *key,
            state: a.state(now),
            rendered,
            findings,
        }
    }
}

/// How an output renders a session's view (the report layer gives it; the analysis only stores the bytes).
pub(crate) type Render = fn(&SessionReport, &mut Rendered);

/// How an output renders a finding: its element of the report's `findings` array and its line of the text
/// summary.
pub(crate) type RenderFinding = fn(&Finding, &mut Rendered);

/// How an output renders an allocation as the capture ending at the given time shows it: its element of
/// `turn.allocations` and its lines of the text summary.
pub(crate) type RenderAllocation = fn(&AllocationKey, &Allocation, Timestamp, &mut Rendered);

/// One of a folded item's rendered forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// Its element of the JSON report.
    Json,
    /// Its part of the text summary.
    Text,
}

/// Where a folded item's rendered forms are in the [`RawStore`]: stored together, its JSON element
/// first, then its text, then (a session's) what the end-of-capture findings need of it ([`EndFacts`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Forms {
    at: RawRef,
    json: u32,
    text: u32,
}

// What folding keeps of each item goes to the store a page at a time (`Paged::store_full`).
pack_struct!(Forms { at, json, text });
pack_struct!(FoldedSession {
    index,
    forms,
    findings,
    end_findings,
    outcome,
    end_facts,
});
pack_struct!(FoldedAllocation {
    client,
    server,
    transport,
    state,
    forms,
    findings,
});
pack_struct!(FoldedFinding {
    first_frame,
    forms,
    code,
    severity,
});
pack_unit_enum!(Outcome {
    Connected = 0,
    Failed = 1,
    Incomplete = 2,
});
pack_unit_enum!(AllocationState {
    Active = 0,
    Deleted = 1,
    Expired = 2,
    Failed = 3,
});
pack_unit_enum!(Severity {
    Error = 0,
    Warning = 1,
    Info = 2,
});

impl Forms {
    fn store(store: &mut RawStore, json: &[u8], text: &[u8], rest: &[u8]) -> Forms {
        // One item's forms are far below 4 GiB (the store's references are u32 too).
        let len = |b: &[u8]| u32::try_from(b.len()).unwrap_or(u32::MAX);
        Forms {
            at: store.push_parts(&[json, text, rest]),
            json: len(json),
            text: len(text),
        }
    }

    /// Its `form`.
    pub(crate) fn get(&self, form: Form) -> RawRef {
        match form {
            Form::Json => self.json(),
            Form::Text => self.text(),
        }
    }

    /// Its element of the JSON report.
    pub(crate) fn json(&self) -> RawRef {
        self.at.slice(0, self.json)
    }

    /// Its part of the text summary.
    pub(crate) fn text(&self) -> RawRef {
        self.at.slice(self.json, self.text)
    }

    /// What was stored after the text.
    fn rest(&self) -> RawRef {
        let skip = self.json.saturating_add(self.text);
        self.at.slice(skip, u32::MAX)
    }
}

/// A folded allocation: its key (the report lists allocations in key order), its rendered forms and its
/// findings (their places in [`Folded`]'s findings). 72 bytes: its key is kept as [`SortAddr`]s.
#[derive(Clone, Debug)]
pub(crate) struct FoldedAllocation {
    client: SortAddr,
    server: SortAddr,
    transport: Transport,
    /// Its state as the report says it.
    pub(crate) state: turn::AllocationState,
    pub(crate) forms: Forms,
    pub(crate) findings: Range<u32>,
}

impl FoldedAllocation {
    pub(crate) fn key(&self) -> AllocationKey {
        AllocationKey {
            client: self.client.addr(),
            server: self.server.addr(),
            transport: self.transport,
        }
    }

    /// Its key's order ([`AllocationKey`]'s).
    fn order(&self) -> (SortAddr, SortAddr, Transport) {
        (self.client, self.server, self.transport)
    }
}

/// A folded session: where its rendered forms are, and what the report still needs of it (48 bytes, 46
/// when stored; a busy server's capture folds tens of thousands of sessions).
#[derive(Clone, Debug)]
pub(crate) struct FoldedSession {
    pub(crate) index: usize,
    /// Its forms; after them, its [`EndFacts`] when `end_facts`.
    pub(crate) forms: Forms,
    /// Its findings but the end-of-capture ones, in the order the rules give them (their places in
    /// [`Folded`]'s findings).
    pub(crate) findings: Range<u32>,
    /// Its end-of-capture findings (consent lost, media stopped), folded when the capture has ended
    /// ([`Folded::settle_end`]).
    pub(crate) end_findings: Range<u32>,
    pub(crate) outcome: super::sessions::Outcome,
    end_facts: bool,
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
    sessions: Paged<FoldedSession>,
    allocations: Paged<FoldedAllocation>,
    /// Every folded finding, those of a session or an allocation one after the other.
    findings: Paged<FoldedFinding>,
    /// The findings' codes, each once (a finding keeps its place here).
    codes: Vec<&'static str>,
    pub(crate) retired: Retired,
    /// Sessions folded and not let go, and how many of them did not connect: what the capture-wide
    /// findings read of them at every poll of a live run, without reading every one back.
    outcomes: (usize, usize),
    pub(crate) store: RawStore,
    render: Option<Render>,
    render_allocation: Option<RenderAllocation>,
    render_finding: Option<RenderFinding>,
    /// What the renders write into, reused.
    scratch: Rendered,
    searches: SearchSchedule,
    /// How long a session must be quiet before it folds, when not [`FOLD_AFTER_SECS`] ([`Folded::set_after`]).
    after: Option<f64>,
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

    /// Sessions fold once quiet for `secs` of capture time, and allocations once over and as quiet; never
    /// less than [`FOLD_AFTER_SECS`], when every check's state is final.
    pub(crate) fn set_after(&mut self, secs: f64) {
        self.after = Some(secs.max(FOLD_AFTER_SECS));
    }

    /// How long a session must be quiet before it folds ([`Folded::set_after`]).
    pub(crate) fn after(&self) -> f64 {
        self.after.unwrap_or(FOLD_AFTER_SECS)
    }

    /// What a live UI snapshot reads of it ([`crate::tui::data::ui_model`]): the folded items and their
    /// rendered forms (the spilled ones shared: the spill is append-only, and the copy never writes). The
    /// copy folds nothing.
    pub(crate) fn ui_copy(&self) -> Folded {
        Folded {
            sessions: self.sessions.clone(),
            allocations: self.allocations.clone(),
            findings: self.findings.clone(),
            codes: self.codes.clone(),
            outcomes: self.outcomes,
            store: self.store.clone(),
            ..Folded::default()
        }
    }

    /// Lets go of every folded session, allocation and finding so far, and of their rendered forms: for a
    /// run whose outputs never read them (a live run with no report, only events and metrics), once the
    /// event tracker has taken them in. Their counts stay ([`Folded::session_count`] and the others);
    /// memory then holds only what folded since the last release, however long the run.
    pub(crate) fn release(&mut self) {
        self.sessions.release();
        self.allocations.release();
        self.findings.release();
        self.outcomes = (0, 0);
        self.store.clear();
    }

    /// Whether folding is on ([`Folded::enable`]).
    pub(crate) fn enabled(&self) -> bool {
        self.render.is_some()
    }

    /// Whether a search for quiet sessions is due at `now` (the search is then scheduled for later).
    pub(crate) fn due(&mut self, now: Timestamp) -> bool {
        self.render.is_some() && self.searches.due(now)
    }

    /// Renders and keeps the forms and findings of sessions `0..n`, each `view(i)` (skipped when it has
    /// none), in order: views are worked out and rendered on two threads ([`two::in_order_on_two`]).
    pub(crate) fn push_sessions(&mut self, n: usize, view: impl Fn(usize) -> Option<SessionReport> + Sync) {
        let Some(render) = self.render else { return };
        let mut scratch = std::mem::take(&mut self.scratch);
        two::in_order_on_two(
            n,
            &mut scratch,
            |i, buffers| Some(PreparedSession::of(render, &view(i)?, buffers)),
            |p| self.commit_session(p),
        );
        self.scratch = scratch;
    }

    /// Keeps a session prepared by [`PreparedSession::of`]: its forms go to the store, its findings are
    /// rendered. Gives back its render's buffers, for the next.
    fn commit_session(&mut self, p: PreparedSession) -> Rendered {
        let Rendered { json, text } = &p.rendered;
        let forms = Forms::store(&mut self.store, json, text, &p.facts);
        let findings = self.fold_findings(p.findings);
        self.sessions.push(FoldedSession {
            index: p.index,
            forms,
            findings,
            end_findings: 0..0,
            outcome: p.outcome,
            end_facts: p.end_facts,
        });
        self.outcomes.0 += 1;
        self.outcomes.1 += usize::from(p.outcome != Outcome::Connected);
        self.sessions.store_full(&mut self.store);
        p.rendered
    }

    /// Renders and keeps the forms and findings of allocations `0..n`, in order, each prepared by
    /// `prepare(i, render, buffers)` ([`PreparedAllocation::of`]; skipped when it gives none) on one of two
    /// threads ([`two::in_order_on_two`]); what it gives with each goes to `kept` as it is kept.
    pub(crate) fn push_allocations<X: Send>(
        &mut self,
        n: usize,
        prepare: impl Fn(usize, RenderAllocation, Rendered) -> Option<(PreparedAllocation, X)> + Sync,
        mut kept: impl FnMut(X),
    ) {
        let Some(render) = self.render_allocation else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        two::in_order_on_two(
            n,
            &mut scratch,
            |i, buffers| prepare(i, render, buffers),
            |(p, x)| {
                kept(x);
                self.commit_allocation(p)
            },
        );
        self.scratch = scratch;
    }

    /// Keeps an allocation prepared by [`PreparedAllocation::of`] (see [`Folded::commit_session`]).
    fn commit_allocation(&mut self, p: PreparedAllocation) -> Rendered {
        let Rendered { json, text } = &p.rendered;
        let forms = Forms::store(&mut self.store, json, text, &[]);
        let findings = self.fold_findings(p.findings);
        self.allocations.push(FoldedAllocation {
            client: SortAddr::of(p.key.client),
            server: SortAddr::of(p.key.server),
            transport: p.key.transport,
            state: p.state,
            forms,
            findings,
        });
        self.allocations.store_full(&mut self.store);
        p.rendered
    }

    /// Renders findings into the store: what the report keeps of them is where they are and what it sorts
    /// them by (32 bytes each, not the hundreds their messages and evidence take). Returns their places.
    fn fold_findings(&mut self, findings: Vec<Finding>) -> Range<u32> {
        let place = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let start = place(self.findings.len());
        let Some(render) = self.render_finding else {
            return start..start;
        };
        for f in &findings {
            render(f, self.scratch.cleared());
            let Rendered { json, text } = &self.scratch;
            let forms = Forms::store(&mut self.store, json, text, &[]);
            let code = self.intern(f.code);
            self.findings.push(FoldedFinding {
                first_frame: f.frames.first().copied().unwrap_or(u64::MAX),
                forms,
                code,
                severity: f.severity,
            });
            self.findings.store_full(&mut self.store);
        }
        start..place(self.findings.len())
    }

    /// `code`'s number in [`Folded::code`]'s table (a rule's code is a constant: the table holds a few
    /// dozen).
    fn intern(&mut self, code: &'static str) -> u16 {
        let i = match self.codes.iter().position(|c| *c == code) {
            Some(i) => i,
            None => {
                self.codes.push(code);
                self.codes.len() - 1
            }
        };
        u16::try_from(i).unwrap_or(u16::MAX)
    }

    /// Every folded finding's sort key (severity, first evidence frame, code number) in the order they
    /// folded, from the place of the first not let go (given first). A finding that cannot be read back
    /// sorts last.
    pub(crate) fn finding_keys(&self) -> (usize, Vec<(Severity, u64, u16)>) {
        let first = self.findings.first_place();
        let keys = (first..self.findings.len())
            .map(|i| match self.findings.get(i, &self.store) {
                Some(f) => (f.severity, f.first_frame, f.code),
                None => (Severity::Info, u64::MAX, u16::MAX),
            })
            .collect();
        (first, keys)
    }

    /// Forms and facts that could not be read back from the spill so far ([`RawStore::errors`]).
    pub fn errors(&self) -> u64 {
        self.store.errors()
    }

    /// The code numbered `i` by [`Folded::intern`].
    pub(crate) fn code(&self, i: u16) -> &'static str {
        self.codes.get(usize::from(i)).copied().unwrap_or("")
    }

    /// Folded finding `i` (an [`crate::analysis::findings::Entry::Folded`]).
    pub(crate) fn finding(&self, i: u32) -> Option<FoldedFinding> {
        self.findings.get(i as usize, &self.store)
    }

    /// Appends folded session `f`'s `form` to `buf`; the error names the session.
    pub(crate) fn read_session(&self, f: &FoldedSession, form: Form, buf: &mut Vec<u8>) -> io::Result<()> {
        self.read_form(f.forms.get(form), buf, || format!("session s{}", f.index + 1))
    }

    /// Appends folded allocation `f`'s `form` to `buf`; the error names the allocation.
    pub(crate) fn read_allocation(
        &self,
        f: &FoldedAllocation,
        form: Form,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        let key = f.key();
        self.read_form(f.forms.get(form), buf, || {
            format!("allocation {} → {}", key.client, key.server)
        })
    }

    /// Appends folded finding `i`'s `form` to `buf`; the error names the finding's code.
    pub(crate) fn read_finding(&self, i: u32, form: Form, buf: &mut Vec<u8>) -> io::Result<()> {
        match self.finding(i) {
            Some(f) => self.read_form(f.forms.get(form), buf, || {
                format!("a finding ({})", self.code(f.code))
            }),
            None => Err(Self::unreadable("a finding (?)".into())),
        }
    }

    fn read_form(&self, at: RawRef, buf: &mut Vec<u8>, what: impl FnOnce() -> String) -> io::Result<()> {
        if self.store.read_into(at, buf) {
            Ok(())
        } else {
            Err(Self::unreadable(what()))
        }
    }

    fn unreadable(what: String) -> io::Error {
        io::Error::other(format!("{what} could not be read back from the temporary file"))
    }

    /// Sessions folded so far.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Allocations folded so far.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// Findings folded so far.
    pub fn finding_count(&self) -> usize {
        self.findings.len()
    }

    /// Whether a session folded and was not let go.
    pub(crate) fn any_session(&self) -> bool {
        self.outcomes.0 > 0
    }

    /// Whether every session folded and not let go connected.
    pub(crate) fn all_connected(&self) -> bool {
        self.outcomes.1 == 0
    }

    /// The sessions folded from the `from`-th on, in the order they folded.
    pub(crate) fn sessions_from(&self, from: usize) -> impl Iterator<Item = FoldedSession> + '_ {
        (from..self.sessions.len()).filter_map(|i| self.sessions.get(i, &self.store))
    }

    /// The allocations folded from the `from`-th on, in the order they folded.
    pub(crate) fn allocations_from(&self, from: usize) -> impl Iterator<Item = FoldedAllocation> + '_ {
        (from..self.allocations.len()).filter_map(|i| self.allocations.get(i, &self.store))
    }

    /// Folded session `f`'s end-of-capture findings (consent lost, media stopped), measured up to `end`:
    /// worked out from its [`EndFacts`] while the capture goes on, those folded at its end
    /// ([`Folded::settle_end`]) after. Facts that cannot be read back give none (counted in the store's
    /// errors, which fail the run).
    pub(crate) fn end_findings(&self, f: &FoldedSession, end: Option<f64>) -> Vec<Finding> {
        let mut found = Vec::new();
        if !f.end_facts {
            return found;
        }
        let mut buf = Vec::new();
        if self.store.read_into(f.forms.rest(), &mut buf) {
            if let Some(facts) = EndFacts::decode(&buf) {
                facts.findings(end, &mut found);
            }
        }
        found
    }

    /// Once the capture has ended (at `end`), works out every folded session's end-of-capture findings
    /// from its [`EndFacts`], read back from the store, and folds them too: they are then 32 bytes each
    /// like the others, not a built [`Finding`] held until the report is written. Facts that cannot be
    /// read back are counted in the store's errors, which fail the run.
    fn settle_end(&mut self, end: Option<f64>) {
        // Each session's findings folded, by its place (in order); then the sessions changed, a page at
        // a time.
        let mut settled = Vec::new();
        for i in 0..self.sessions.len() {
            let Some(f) = self.sessions.get(i, &self.store).filter(|f| f.end_facts) else {
                continue;
            };
            let Some(facts) = self.store.decode(f.forms.rest(), EndFacts::decode) else {
                continue;
            };
            let mut found = Vec::new();
            facts.findings(end, &mut found);
            settled.push((i, self.fold_findings(found)));
        }
        let mut settled = settled.into_iter().peekable();
        self.sessions.update(&mut self.store, |i, f| {
            let Some((_, range)) = settled.next_if(|(at, _)| *at == i) else {
                return false;
            };
            f.end_findings = range;
            f.end_facts = false;
            true
        });
    }

    /// The folded allocations in key order, those with the same key in the order they folded.
    pub(crate) fn allocations_in_order(&self) -> Vec<FoldedAllocation> {
        let mut v: Vec<FoldedAllocation> = self.allocations.iter(&self.store).collect();
        v.sort_by_key(|f| f.order());
        v
    }

    /// The folded sessions in index order (the order of the report's `sessions` array).
    pub(crate) fn in_order(&self) -> Vec<FoldedSession> {
        let mut v: Vec<FoldedSession> = self.sessions.iter(&self.store).collect();
        v.sort_by_key(|f| f.index);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folded item that cannot be read back is an error that names it, and appends nothing.
    #[test]
    fn an_unreadable_folded_item_is_a_named_error() {
        let folded = Folded::default();
        let mut buf = b"kept".to_vec();
        let e = folded
            .read_finding(3, Form::Json, &mut buf)
            .expect_err("finding 3 was never folded");
        assert_eq!(
            e.to_string(),
            "a finding (?) could not be read back from the temporary file"
        );
        let missing = Forms {
            at: RawRef::default().slice(0, 10),
            json: 4,
            text: 6,
        };
        let e = folded
            .read_form(missing.get(Form::Text), &mut buf, || "session s7".into())
            .expect_err("nothing was stored");
        assert_eq!(
            e.to_string(),
            "session s7 could not be read back from the temporary file"
        );
        assert_eq!(buf, b"kept");
    }

    /// The encodings of what folding keeps of each item (a page of them goes to the temporary file): a
    /// damaged one (cut short, a byte too many, any byte changed) gives nothing or exactly what its bytes
    /// say, never a panic or a read past them. IPv4 and IPv6 keys, every enum's last variant.
    #[test]
    fn folded_records_read_back_damaged_give_nothing_or_what_they_say() {
        use crate::analysis::pack::check_damaged;
        let forms = Forms {
            at: RawRef::from_parts([3, 70_000, 5_000]),
            json: 3_000,
            text: 1_900,
        };
        check_damaged(
            &FoldedSession {
                index: 12_345,
                forms,
                findings: 7..9,
                end_findings: 40..41,
                outcome: Outcome::Incomplete,
                end_facts: true,
            },
            1,
        );
        for (client, server) in [
            ("198.51.100.7:49152", "203.0.113.1:3478"),
            ("[2001:db8::7]:5000", "[2001:db8::1]:3478"),
        ] {
            let addr = |a: &str| SortAddr::of(a.parse().expect("an address"));
            check_damaged(
                &FoldedAllocation {
                    client: addr(client),
                    server: addr(server),
                    transport: Transport::Tcp,
                    state: AllocationState::Failed,
                    forms,
                    findings: 1..3,
                },
                1,
            );
        }
        check_damaged(
            &FoldedFinding {
                first_frame: 9_876_543,
                forms,
                code: 17,
                severity: Severity::Info,
            },
            1,
        );
    }

    /// What folding keeps of each session, allocation and finding goes to the spill a page at a time
    /// (8 items a page in tests), and the report read back from it is the report of a run that kept them
    /// in memory, byte for byte, JSON and text summary (the end-of-capture findings change stored pages).
    #[test]
    fn folded_items_read_back_from_the_spill_give_the_same_report() {
        use crate::analysis::store::MemorySpill;
        let calls: Vec<&str> = ["symmetric-relay", "ice-failed", "turn-auth-fail", "nat-srflx"].repeat(8);
        let report = |spill: Option<Arc<dyn Spill>>| {
            let mut an = crate::analysis::Analyzer::new(crate::wire::credentials::Keyring::new());
            crate::report::fold_as_reported(&mut an, spill);
            crate::analysis::testkit::fixtures_in_a_row(&calls, 60, &mut |pkt, _| an.ingest(pkt));
            an.finish();
            let lean = crate::report::Report::build_lean(an.model(), &[], an.net_stats());
            let mut out = Vec::new();
            crate::report::json::write_streaming(&lean, an.model(), &mut out).expect("in memory");
            let folded = &an.model().ice_folded;
            crate::report::text::write_summary_with(&lean, Some(folded), &mut out).expect("in memory");
            let lists = [
                folded.sessions.len(),
                folded.allocations.len(),
                folded.findings.len(),
            ];
            // What the capture-wide findings read of the folded sessions, kept as they fold.
            let connected: Vec<bool> = folded
                .sessions
                .iter(&folded.store)
                .map(|f| f.outcome == Outcome::Connected)
                .collect();
            let all = connected.iter().all(|&c| c);
            assert_eq!(
                (folded.any_session(), folded.all_connected()),
                (!connected.is_empty(), all)
            );
            assert!(connected.contains(&true) && !all, "both outcomes among the calls");
            let held = [
                folded.sessions.held_pages(),
                folded.allocations.held_pages(),
                folded.findings.held_pages(),
            ];
            (
                String::from_utf8(out).expect("UTF-8"),
                lists,
                held,
                folded.errors(),
            )
        };
        let spill = Arc::new(MemorySpill::default());
        let (kept, lists, held, _) = report(None);
        let (read_back, lists_too, held_too, errors) = report(Some(spill.clone()));
        assert!(
            lists.iter().all(|&n| n > 2 * 8),
            "every list fills pages: {lists:?}"
        );
        assert_eq!(lists, lists_too);
        assert!(
            held.iter().zip(lists).all(|(&h, n)| h == n.div_ceil(8)),
            "{held:?}"
        );
        assert_eq!(held_too, [1, 1, 1], "only the pages being filled are held");
        assert!(
            spill.bytes.lock().expect("spill").len() > 100_000,
            "the store spilled"
        );
        assert_eq!(errors, 0);
        assert!(kept == read_back, "the reports differ");
    }

    /// Folding does not depend on where the pipeline's batches end: the same call twice, the second time
    /// 60 s after the first ended (the same ufrags: a new session once the first folded), read packet by
    /// packet and in batches of every size from one packet to all of them, gives the same report byte for
    /// byte. (The search for what is quiet once ran at a batch's start with its last packet's time, so a
    /// batch holding both calls kept them as one session.)
    #[test]
    fn folding_is_the_same_whatever_the_batches() {
        let report = |batch_size: Option<usize>| {
            use crate::pipeline::{self, EventBatch, NetStage};
            let mut an = crate::analysis::Analyzer::new(crate::wire::credentials::Keyring::new());
            crate::report::fold_as_reported(&mut an, None);
            let mut net = NetStage::for_analysis(&an);
            let mut batch = EventBatch::default();
            let mut n = 0;
            crate::analysis::testkit::fixtures_in_a_row(
                &["chrome-relay-udp", "chrome-relay-udp"],
                60,
                &mut |pkt, _| {
                    let Some(size) = batch_size else {
                        an.ingest(pkt);
                        return;
                    };
                    net.ingest(pkt, &mut batch);
                    n += 1;
                    if n % size == 0 {
                        pipeline::apply(&mut an, &mut batch);
                        batch.clear();
                    }
                },
            );
            if batch_size.is_some() {
                net.finish(&mut batch);
                pipeline::apply(&mut an, &mut batch);
                pipeline::finish(&mut an, net);
            } else {
                an.finish();
            }
            let lean = crate::report::Report::build_lean(an.model(), &[], an.net_stats());
            let mut out = Vec::new();
            crate::report::json::write_streaming(&lean, an.model(), &mut out).expect("in memory");
            (
                an.model().ice_folded.session_count(),
                String::from_utf8(out).expect("UTF-8"),
            )
        };
        let (sessions, one_by_one) = report(None);
        assert_eq!(sessions, 2, "the call came back after it folded");
        for size in [1, 7, 100, usize::MAX] {
            let (n, batched) = report(Some(size));
            assert_eq!(n, 2, "batches of {size}");
            assert!(batched == one_by_one, "batches of {size}: the reports differ");
        }
    }
}
