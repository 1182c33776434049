//! `--ndjson`: the event stream of a live capture, one JSON object per line (schema `iceview.events/1`,
//! documented in docs/report.md), for pipelines (Vector, Fluent Bit, Kafka, ...) that ingest JSON lines.
//!
//! Events are derived, never computed on the side: a `message` event is the report's own message record,
//! taken from the analysis's message tap as the message is recorded; every other event comes from
//! comparing the report's views (TURN allocations, ICE sessions and pairs, findings) between two polls of
//! the same [`Model`]. So what the stream said and what the JSON report says at the end agree. Pure: time
//! is an argument ([`EventTracker::poll`] takes `now`), nothing here reads a clock or writes anywhere but
//! the writer it is given.
//!
//! Live facts can be provisional: an allocation whose Allocate drew the usual 401 challenge is "failed"
//! until the authenticated retry succeeds, and a finding such as "this allocation carried no traffic" is
//! true only until traffic flows. So a failure is announced once it is definitive (an error other than
//! the challenge, or no retry for [`SETTLE_SECS`]), and a finding once it has held for [`SETTLE_SECS`];
//! at the end of the capture everything still pending is announced.
//!
//! The tracker also keeps the live run's [`Counters`]: each allocation, session, finding and check RTT is
//! counted here, once, when the event that decides it is derived (and a session that folded and never
//! decided as incomplete), so the metrics and the status line say what the stream says.
use super::counters::Counters;
pub(crate) use super::counters::Summary;
use super::model::{message_report, Generator, LiveCaptureReport, MessageReport};
use super::unfold;
use crate::analysis::findings::{self, turn::error_meaning, Finding};
use crate::analysis::ice::{CandidateType, Session};
use crate::analysis::sessions::{self, Outcome, PairState, SelectedPair, SessionReport};
use crate::analysis::transactions::TxState;
use crate::analysis::turn::{Allocation, AllocationKey, AllocationState, PeerTraffic};
use crate::analysis::{Body, MessageRecord, Model, Path};
use crate::capture::Timestamp;
use crate::net::Transport;
use crate::wire::stun::{Method, StunMessage};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};

pub const SCHEMA: &str = "iceview.events/1";

/// Seconds (capture time) a provisional fact must hold before it is announced: longer than a client
/// takes to answer a 401 challenge or to start relaying after allocating (milliseconds), shorter than
/// anyone watching a stream would wait.
pub(crate) const SETTLE_SECS: f64 = 5.0;

/// One line of the stream. `event` names the variant in kebab-case.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// First line: what is being captured.
    Start(Start),
    /// A STUN message decoded (relayed ones included; ChannelData frames are media carriers and are
    /// counted in the report, not streamed).
    Message(MessageReport),
    AllocationCreated(AllocationEvent),
    AllocationFailed(AllocationEvent),
    /// Deleted (Refresh with LIFETIME 0) or expired.
    AllocationEnded(AllocationEvent),
    PairSucceeded(PairEvent),
    SessionConnected(SessionEvent),
    SessionFailed(SessionEvent),
    Finding(FindingEvent),
    /// A finding announced earlier no longer holds (e.g. the allocation did start relaying).
    FindingCleared(FindingEvent),
    /// Last line: the capture's counters.
    Stop(Stop),
}

#[derive(Debug, Serialize)]
pub struct Start {
    pub ts: f64,
    pub schema: &'static str,
    pub generator: Generator,
    pub interface: String,
    pub link_type: &'static str,
    pub filter: String,
    pub snaplen: u32,
}

#[derive(Debug, Serialize)]
pub struct Stop {
    pub ts: f64,
    /// Packets captured (and saved with -w).
    pub packets: u64,
    /// Packets analysed (captured minus queue drops).
    pub analysed: u64,
    #[serde(flatten)]
    pub capture: LiveCaptureReport,
    pub messages: u64,
    pub allocations: usize,
    pub sessions: usize,
    pub findings: usize,
}

#[derive(Debug, Serialize)]
pub struct AllocationEvent {
    pub(crate) ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frame: Option<u64>,
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) transport: Transport,
    pub(crate) state: AllocationState,
    pub(crate) relayed: Vec<String>,
    pub(crate) mapped: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) realm: Option<String>,
    pub(crate) lifetime: Option<u32>,
    /// allocation-failed: the error that decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<AllocationError>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AllocationError {
    pub(crate) frame: u64,
    pub(crate) method: String,
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) meaning: &'static str,
}

#[derive(Debug, Serialize)]
pub struct PairEvent {
    /// The first success response on the pair.
    pub(crate) ts: f64,
    pub(crate) session: String,
    pub(crate) pair: usize,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) protocol: Transport,
    pub(crate) a_type: CandidateType,
    pub(crate) b_type: CandidateType,
    pub(crate) nominated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) current_round_trip_time: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct SessionEvent {
    pub(crate) ts: f64,
    pub(crate) session: String,
    pub(crate) outcome: Outcome,
    pub(crate) reason: String,
    /// The agents' ufrags.
    pub(crate) agents: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) selected_pair: Option<SelectedPair>,
}

#[derive(Debug, Serialize)]
pub struct FindingEvent {
    /// When iceview raised (or cleared) it.
    pub(crate) ts: f64,
    #[serde(flatten)]
    pub(crate) finding: Finding,
}

/// The `message` event for a recorded message (as the analysis's message tap gives it: a STUN record
/// with its decoded message), `None` for ChannelData.
pub fn message_event(rec: &MessageRecord, path: &Path, stun: Option<&StunMessage>) -> Option<Event> {
    match rec.body {
        Body::Stun { .. } => Some(Event::Message(message_report(rec, path, stun, false))),
        Body::ChannelData { .. } => None,
    }
}

/// Writes one event as one line.
pub fn write(event: &Event, out: &mut dyn Write) -> io::Result<()> {
    super::json::write_line(event, out)
}

#[derive(Default)]
struct AllocationSeen {
    created: bool,
    failed: bool,
    ended: bool,
    /// Entries of `errors` already counted.
    errors: usize,
    /// Relayed bytes already counted, to and from peers.
    to_peer: u64,
    from_peer: u64,
}

/// A finding the tracker holds, by [`FindingKey`]. Its latest form is kept only when events are made (a
/// `finding-cleared` event repeats it); counting reads the finding of the poll that raises it. Kept
/// whole, a busy server's open findings held ~18 MB in a live run's peak (heaptrack, BENCHMARKS.md).
struct FindingSeen {
    since: f64,
    raised: bool,
    finding: Option<Box<Finding>>,
}

/// What tells findings apart: their code and subject, as a keyed 128-bit hash (two of std's
/// `RandomState`, random per run, so a capture cannot make two collide on purpose; by chance, two of a
/// million findings collide with a probability under 10^-26). Where the subject's JSON was the key, each
/// poll serialised every open finding's subject and the table held those strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FindingKey(u64, u64);

#[derive(Default)]
struct FindingKeys([RandomState; 2]);

impl FindingKeys {
    fn of(&self, f: &Finding) -> FindingKey {
        let [a, b] = &self.0;
        FindingKey(a.hash_one((f.code, &f.subject)), b.hash_one((f.code, &f.subject)))
    }
}

/// What was already announced, so each poll yields only what changed. Its tables follow what the
/// analysis holds (the allocations and sessions still open, their findings): a session or allocation
/// that folds ([`crate::analysis::fold`]) is taken in once, as final, and forgotten here.
#[derive(Default)]
pub struct EventTracker {
    allocations: HashMap<AllocationKey, AllocationSeen>,
    /// (session, pair) of the open sessions: success announced.
    pairs: HashSet<(usize, usize)>,
    /// The outcome announced of each open session.
    outcomes: HashMap<usize, Outcome>,
    findings: HashMap<FindingKey, FindingSeen>,
    finding_keys: FindingKeys,
    /// Open sessions whose outcome was counted.
    sessions_counted: HashSet<usize>,
    /// Per (session, pair, direction): the checks before this position were settled and their RTTs
    /// counted. Checks settle roughly in order; one answered before an earlier one settles waits for it
    /// (at most the RFC 8489 give-up time), so each is counted once.
    rtt_cursor: HashMap<(usize, usize, usize), usize>,
    /// Folded sessions and allocations already taken in (their places in the order they folded).
    folded_sessions: usize,
    folded_allocations: usize,
    /// What the folded ones taken in add to the counts of [`Summary`].
    folded: Summary,
    counters: Counters,
    /// Nothing reads the events ([`EventTracker::counting_only`]): none is made.
    counting_only: bool,
    /// Nothing reads the events or the counters ([`EventTracker::unread`]): nothing is compared.
    unread: bool,
}

/// A poll's events: kept for the caller, or not made at all when nothing reads them. A poll after a busy
/// stretch announces thousands of calls at once, and that list was the peak of a live run's memory with
/// no event stream (BENCHMARKS.md). The tracker's tables and counters move the same either way.
struct Events {
    keep: bool,
    list: Vec<Event>,
}

impl Events {
    fn push(&mut self, make: impl FnOnce() -> Event) {
        if self.keep {
            self.list.push(make());
        }
    }
}

impl EventTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker whose polls only count (a live run with no event stream: the UI, the metrics, the
    /// report): [`EventTracker::poll`] and [`EventTracker::finish`] return no event, and make none.
    pub fn counting_only() -> Self {
        EventTracker {
            counting_only: true,
            ..Self::default()
        }
    }

    /// A tracker nothing reads, neither events nor counters (a live run with no event stream, no metrics and
    /// no status line: `-q`, the UI, `--json` alone): its polls compare nothing and cost nothing, and its
    /// counters stay at zero. Comparing every open session's view at each poll stopped the analysis for
    /// hundreds of milliseconds on a busy server, and its tables held tens of megabytes (BENCHMARKS.md).
    pub fn unread() -> Self {
        EventTracker {
            unread: true,
            ..Self::default()
        }
    }

    /// What changed since the last poll; `now` is the current capture time (the clock the packets are
    /// stamped with).
    pub fn poll(&mut self, model: &Model, now: Timestamp) -> Vec<Event> {
        self.diff(model, now, false)
    }

    /// The last poll, when the capture has ended: provisional facts are announced as they stand.
    pub fn finish(&mut self, model: &Model, now: Timestamp) -> Vec<Event> {
        self.diff(model, now, true)
    }

    /// What was counted up to the last poll (the capture's own counts and the STUN messages are the
    /// runner's to fill in).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn diff(&mut self, model: &Model, now: Timestamp, last: bool) -> Vec<Event> {
        if self.unread {
            return Vec::new();
        }
        let now_s = now.as_secs_f64();
        let mut out = Events {
            keep: !self.counting_only,
            list: Vec::new(),
        };
        let mut summary = Summary::default();
        self.allocations_diff(model, now_s, last, &mut summary, &mut out);

        // One open session's view at a time: what its findings need is kept (`Found`), the view not. A busy
        // server holds tens of thousands of calls open, and every view at once was most of a live run's
        // memory at each poll. A sleeping session is read back for its turn and let go after it, so a poll
        // does not wake what sleeps.
        let end_ts = model.last_ts.unwrap_or_default();
        let end = model.last_ts.map(|t| t.as_secs_f64());
        let mut found = Vec::new();
        for (i, sess) in model.ice.sessions.iter_passing_from(0) {
            self.count_rtts(model, i, &sess);
            if let Some(s) = sessions::view(&model.ice, i, &sess, &model.transactions, end_ts) {
                self.session_diff(&s, last, &mut summary, &mut out);
                found.push(findings::ice::Found::of(&s, end));
            }
        }
        // Sessions and allocations that folded since the last poll: final, announced as they ended, then
        // forgotten.
        self.take_folded(model, now_s, &mut out);

        let current = findings::collect_open(model, found);
        summary.findings = current.len();
        let mut present = HashSet::new();
        let keep = !self.counting_only;
        for f in current {
            let key = self.finding_keys.of(&f);
            present.insert(key);
            let seen = self.findings.entry(key).or_insert_with(|| FindingSeen {
                since: now_s,
                raised: false,
                finding: None,
            });
            if !seen.raised && (last || now_s - seen.since >= SETTLE_SECS) {
                seen.raised = true;
                self.counters.finding(f.code, f.severity);
                out.push(|| {
                    Event::Finding(FindingEvent {
                        ts: now_s,
                        finding: f.clone(),
                    })
                });
            }
            if keep {
                seen.finding = Some(Box::new(f));
            }
        }
        let gone: Vec<FindingKey> = self
            .findings
            .keys()
            .filter(|k| !present.contains(*k))
            .copied()
            .collect();
        for k in gone {
            if let Some(FindingSeen {
                raised: true,
                finding: Some(finding),
                ..
            }) = self.findings.remove(&k)
            {
                out.push(|| {
                    Event::FindingCleared(FindingEvent {
                        ts: now_s,
                        finding: *finding,
                    })
                });
            }
        }

        summary += &self.folded;
        self.counters.view = summary;
        self.counters.sessions_not_tracked = model.ice.sessions_not_tracked;
        self.counters.allocations_not_tracked = model.turn.allocations_not_tracked;
        // In time order; findings carry `now` and so come last.
        let mut out = out.list;
        out.sort_by(|a, b| event_ts(a).total_cmp(&event_ts(b)));
        out
    }

    /// The allocations the analysis holds: created, failed (once definitive) and ended.
    fn allocations_diff(
        &mut self,
        model: &Model,
        now_s: f64,
        last: bool,
        summary: &mut Summary,
        out: &mut Events,
    ) {
        let end = model.last_ts.unwrap_or_default();
        for (key, a) in model.turn.allocations.in_order() {
            let (key, a) = (&key, &*a);
            let state = a.state(end);
            summary.allocations += 1;
            match state {
                AllocationState::Active => summary.allocations_active += 1,
                AllocationState::Failed => summary.allocations_failed += 1,
                _ => {}
            }
            let seen = self.allocations.entry(*key).or_default();
            count_allocation(&mut self.counters, seen, a);
            if let (false, Some(at)) = (seen.created, a.created_at) {
                seen.created = true;
                self.counters.allocations_allocated += 1;
                out.push(|| {
                    Event::AllocationCreated(allocation_event(
                        key,
                        a,
                        state,
                        at.ts.as_secs_f64(),
                        Some(at.frame),
                    ))
                });
            }
            if state == AllocationState::Failed && !seen.failed {
                if let Some(err) = decisive_error(a, now_s, last) {
                    seen.failed = true;
                    self.counters.allocations_failed += 1;
                    out.push(|| {
                        let mut e =
                            allocation_event(key, a, state, err.at.ts.as_secs_f64(), Some(err.at.frame));
                        e.error = Some(AllocationError {
                            frame: err.at.frame,
                            method: err.method.to_string(),
                            code: err.code,
                            reason: err.reason.clone(),
                            meaning: error_meaning(err.code, err.authenticated_request),
                        });
                        Event::AllocationFailed(e)
                    });
                }
            }
            let ended = matches!(state, AllocationState::Deleted | AllocationState::Expired);
            if ended && !seen.ended {
                seen.ended = true;
                let (ts, frame) = match (a.deleted_at, a.gone_at, a.expires_at()) {
                    (Some(d), _, _) | (None, Some(d), _) => (d.ts, Some(d.frame)),
                    (None, None, Some(e)) => (e, None),
                    _ => (end, None),
                };
                out.push(|| Event::AllocationEnded(allocation_event(key, a, state, ts.as_secs_f64(), frame)));
            }
        }
        // A folded allocation leaves the table (it folds once over and quiet for tens of seconds, so its
        // end was announced at an earlier poll); the same 5-tuple allocating again is a new one.
        if self.allocations.len() > model.turn.allocations.len() {
            let held = &model.turn.allocations;
            self.allocations.retain(|k, _| held.contains_key(k));
        }
    }

    /// One session's view, open or just folded (`last`: it is final): its outcome counted once decided
    /// (or once final), its pairs' first successes and its outcome announced.
    fn session_diff(&mut self, s: &SessionReport, last: bool, summary: &mut Summary, out: &mut Events) {
        let i = s.index;
        summary.sessions += 1;
        let decided = matches!(s.outcome, Outcome::Connected | Outcome::Failed);
        if (decided || last) && self.sessions_counted.insert(i) {
            self.counters.session(s.outcome);
        }
        for p in &s.pairs {
            if p.state != PairState::Succeeded || !self.pairs.insert((i, p.index)) {
                continue;
            }
            let first = [p.a_to_b.first_response_ts, p.b_to_a.first_response_ts]
                .into_iter()
                .flatten()
                .reduce(f64::min);
            out.push(|| {
                Event::PairSucceeded(PairEvent {
                    ts: first.unwrap_or(s.last_ts),
                    session: s.id.clone(),
                    pair: p.index,
                    a: p.a.clone(),
                    b: p.b.clone(),
                    protocol: p.protocol,
                    a_type: p.a_type,
                    b_type: p.b_type,
                    nominated: p.nominated,
                    current_round_trip_time: p
                        .a_to_b
                        .current_round_trip_time
                        .or(p.b_to_a.current_round_trip_time),
                })
            });
        }
        match s.outcome {
            Outcome::Connected => summary.sessions_connected += 1,
            Outcome::Failed => summary.sessions_failed += 1,
            Outcome::Incomplete => {}
        }
        let announced = self.outcomes.get(&i).copied();
        if decided && announced != Some(s.outcome) {
            self.outcomes.insert(i, s.outcome);
            let ts = if s.outcome == Outcome::Connected {
                s.milestones
                    .nominated_ts
                    .or(s.milestones.first_success_ts)
                    .unwrap_or(s.last_ts)
            } else {
                s.last_ts
            };
            out.push(|| {
                // Cloned, not taken: the session's findings are worked out from this view next.
                let event = SessionEvent {
                    ts,
                    session: s.id.clone(),
                    outcome: s.outcome,
                    reason: s.outcome_reason.clone(),
                    agents: s.agents.iter().map(|a| a.ufrag.clone()).collect(),
                    selected_pair: s.selected_pair.clone(),
                };
                if s.outcome == Outcome::Connected {
                    Event::SessionConnected(event)
                } else {
                    Event::SessionFailed(event)
                }
            });
        }
    }

    /// Takes in the sessions and allocations folded since the last poll: each session's view (read back)
    /// as final, then their findings, every one raised now if it was not (a folded item's findings are
    /// final: nothing is left to settle); then forgets them. A folded item that cannot be read back (its
    /// temporary file gone) is counted without its events: the run ends with that error
    /// ([`Folded::errors`](crate::analysis::fold::Folded::errors)).
    fn take_folded(&mut self, model: &Model, now_s: f64, out: &mut Events) {
        let folded = &model.ice_folded;
        let mut ended = Vec::new();
        let end = model.last_ts.map(Timestamp::as_secs_f64);
        let mut found = Vec::new();
        let mut n = 0;
        for f in folded.sessions_from(self.folded_sessions) {
            n += 1;
            let mut summary = Summary::default();
            match unfold::read_folded_session(model, &f) {
                Ok(view) => self.session_diff(&view, true, &mut summary, out),
                Err(_) => {
                    summary.sessions = 1;
                    if self.sessions_counted.insert(f.index) {
                        self.counters.session(f.outcome);
                    }
                }
            }
            self.folded += &summary;
            found.extend(
                f.findings
                    .clone()
                    .chain(f.end_findings.clone())
                    .filter_map(|i| unfold::read_folded_finding(model, i).ok()),
            );
            found.extend(folded.end_findings(&f, end));
            ended.push(f.index);
        }
        self.folded_sessions += n;
        let mut n = 0;
        for f in folded.allocations_from(self.folded_allocations) {
            n += 1;
            self.folded.allocations += 1;
            if f.state == AllocationState::Failed {
                self.folded.allocations_failed += 1;
            }
            found.extend(
                f.findings
                    .clone()
                    .filter_map(|i| unfold::read_folded_finding(model, i).ok()),
            );
        }
        self.folded_allocations += n;
        self.folded.findings += found.len();
        for finding in found {
            let key = self.finding_keys.of(&finding);
            let raised = self.findings.remove(&key).is_some_and(|seen| seen.raised);
            if !raised {
                self.counters.finding(finding.code, finding.severity);
                out.push(|| Event::Finding(FindingEvent { ts: now_s, finding }));
            }
        }
        if ended.is_empty() {
            return;
        }
        let gone: HashSet<usize> = ended.iter().copied().collect();
        self.pairs.retain(|(s, _)| !gone.contains(s));
        self.rtt_cursor.retain(|(s, _, _), _| !gone.contains(s));
        for s in &gone {
            self.outcomes.remove(s);
            self.sessions_counted.remove(s);
        }
    }
}

impl EventTracker {
    /// Counts the RTT of each connectivity check of session `s` once it has settled (answered, refused or
    /// given up).
    fn count_rtts(&mut self, model: &Model, s: usize, session: &Session) {
        let end = model.last_ts.unwrap_or_default();
        for (p, pair) in session.pairs.iter().enumerate() {
            for (d, dir) in pair.dirs.iter().enumerate() {
                // The cursor counts the direction's checks from its first; those settled
                // (`IceState::settle`) have left `dir.txs`. Settling waits until a check has
                // been final for seconds, so every poll but a late one has counted it by then.
                let settled = usize::try_from(dir.settled_txs()).unwrap_or(usize::MAX);
                let cursor = self.rtt_cursor.entry((s, p, d)).or_insert(0);
                *cursor = (*cursor).max(settled);
                while let Some(&i) = dir.txs.get(*cursor - settled) {
                    let Some(tx) = model.transactions.get(i) else {
                        *cursor += 1;
                        continue;
                    };
                    match tx.state(end) {
                        TxState::Unanswered => break,
                        TxState::Succeeded => {
                            if let Some(rtt) = tx.rtt_from_last() {
                                self.counters.check_rtt.observe(rtt);
                            }
                        }
                        TxState::Failed | TxState::TimedOut => {}
                    }
                    *cursor += 1;
                }
            }
        }
    }
}

/// Counts an allocation's new Allocate errors (not the 401 challenge every client gets first, RFC 8656
/// §7.2) and the bytes it relayed since the last poll.
fn count_allocation(counters: &mut Counters, seen: &mut AllocationSeen, a: &Allocation) {
    if a.errors.len() < seen.errors {
        // Replaced in the table by a new allocation on the same 5-tuple.
        seen.errors = 0;
    }
    for e in a.errors.iter().skip(seen.errors) {
        let challenge = e.code == 401 && !e.authenticated_request;
        if e.method == Method::ALLOCATE && !challenge {
            counters.allocation_error(e.code);
        }
    }
    seen.errors = a.errors.len();
    let rare = a.rare();
    let (to, from) = a
        .traffic
        .values()
        .chain([&rare.other_peers, &rare.unknown_channel])
        .fold((0, 0), |(to, from), t: &PeerTraffic| {
            (to + t.bytes_to_peer, from + t.bytes_from_peer)
        });
    // An allocation replaced in the table (the same 5-tuple allocated again) starts from zero.
    counters.relayed_bytes_to_peer += to.checked_sub(seen.to_peer).unwrap_or(to);
    counters.relayed_bytes_from_peer += from.checked_sub(seen.from_peer).unwrap_or(from);
    seen.to_peer = to;
    seen.from_peer = from;
}

/// The error that makes a failed allocation definitely failed: one to an authenticated Allocate or any
/// error other than the 401 challenge and 438 Stale Nonce (which clients answer by retrying); or, when
/// the client has not retried for [`SETTLE_SECS`] or the capture is over, the last error.
fn decisive_error(a: &Allocation, now: f64, last: bool) -> Option<&crate::analysis::turn::TurnError> {
    let allocate_errors = || a.errors.iter().filter(|e| e.method == Method::ALLOCATE);
    let definitive = allocate_errors().find(|e| {
        let challenge = e.code == 401 && !e.authenticated_request;
        !challenge && e.code != 438
    });
    definitive.or_else(|| {
        let latest = allocate_errors().next_back()?;
        (last || now - latest.at.ts.as_secs_f64() >= SETTLE_SECS).then_some(latest)
    })
}

fn allocation_event(
    key: &AllocationKey,
    a: &Allocation,
    state: AllocationState,
    ts: f64,
    frame: Option<u64>,
) -> AllocationEvent {
    AllocationEvent {
        ts,
        frame,
        client: key.client.to_string(),
        server: key.server.to_string(),
        transport: key.transport,
        state,
        relayed: a.relayed.iter().map(ToString::to_string).collect(),
        mapped: a.mapped.map(|m| m.to_string()),
        username: a.username.clone(),
        realm: a.realm.clone(),
        lifetime: a.lifetime,
        error: None,
    }
}

fn event_ts(e: &Event) -> f64 {
    match e {
        Event::Start(s) => s.ts,
        Event::Message(m) => m.ts,
        Event::AllocationCreated(a) | Event::AllocationFailed(a) | Event::AllocationEnded(a) => a.ts,
        Event::PairSucceeded(p) => p.ts,
        Event::SessionConnected(s) | Event::SessionFailed(s) => s.ts,
        Event::Finding(f) | Event::FindingCleared(f) => f.ts,
        Event::Stop(s) => s.ts,
    }
}

#[cfg(test)]
mod tests;
