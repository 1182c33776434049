//! What the terminal UI shows: a [`Snapshot`] of the report and the model, and an [`Index`] derived from it
//! once per snapshot (never per frame): the home rows, each session's messages and ladder, findings per
//! session and allocation, and lookups by frame and transaction.
//!
//! A file run makes one snapshot; a live run replaces it periodically with a report rebuilt from the
//! growing model, so nothing here may hold on to positions that a new snapshot could move (the UI keeps
//! session ids and allocation addresses, not row numbers). Pure: no terminal, no files.
//!
//! This file is the map, and holds what every screen shares: the snapshot, where it came from, a live
//! capture's counters, and severity words. The snapshot's sessions and allocations (a brief each, the
//! whole entry read back when a view needs it) are in `items`, the [`Index`] and each session's and
//! allocation's scope in `index`, a session's ladder in `ladder`, the home list's rows in `rows`, the TURN
//! screen's detail lines in `turn`. Nothing here keeps UI state (`tui::app`) or draws (`tui::views`).
mod findings;
mod index;
mod items;
mod ladder;
mod rows;
mod turn;

pub(crate) use index::{allocation_addresses, Index};
pub use items::FoldedCache;
use items::Item;
pub(crate) use items::{AllocationBrief, SessionBrief};
pub(crate) use ladder::{Column, Ladder, LadderRow, Side};
pub use rows::RowRef;
pub(crate) use rows::{RowSummary, Status, TurnUse};
pub use turn::allocation_lines;
pub(crate) use turn::LineKind;

use crate::analysis::findings::{Finding, Severity};
use crate::analysis::fold::{FoldedAllocation, FoldedSession};
use crate::analysis::sessions::SessionReport;
use crate::analysis::Model;
use crate::report::json::SessionItem;
use crate::report::turn::{AllocationItem, AllocationReport};
use crate::report::Report;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the packets came from, for the status bar.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// File name(s) or interface, for the status bar.
    pub label: String,
    /// The capture files read (saving a session's packets reads them again).
    pub inputs: Vec<String>,
    /// The BPF filter they were read with.
    pub filter: Option<String>,
    /// Packets arrive while the UI runs (`p` pauses).
    pub live: bool,
    /// Packets the kernel dropped (live captures).
    pub dropped: Option<u64>,
}

/// Counters of a live capture that the status bar shows as they move, paused display or not: they are
/// read on every tick, not taken from the (possibly held back) snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveCounters {
    /// Packets libpcap delivered.
    pub captured: u64,
    /// Packets the analysis has read.
    pub analysed: u64,
    /// STUN/TURN messages analysed.
    pub messages: u64,
    /// No room in the kernel buffer (raise `-B`).
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
    /// Captured but not analysed: the analysis queue was full.
    pub queue_dropped: u64,
    /// Set once the capture has stopped by itself (`-c`, `--duration`, an error): why.
    pub ended: Option<String>,
}

/// The part of a model the UI reads — stored messages, counters, time bounds — for a live snapshot, whose
/// model keeps growing in the analysis. Transactions, TURN and ICE state are left out: the UI takes those
/// from the report. A view that starts reading another part of the model must add it here.
pub fn ui_model(model: &Model) -> Model {
    Model {
        stats: model.stats.clone(),
        messages: model.messages.clone(),
        listed: model.listed.clone(),
        // The messages' bytes, which the views decode again (`Model::stun`).
        raw: model.raw.clone(),
        unreachable: model.unreachable.clone(),
        // The sessions, allocations and findings folded so far, whose briefs the UI lists (a live run
        // folds as a file read does).
        ice_folded: model.ice_folded.ui_copy(),
        first_ts: model.first_ts,
        last_ts: model.last_ts,
        ..Model::default()
    }
}

/// One consistent view of a capture: the report every output renders, plus the model for what the report
/// leaves out (raw message bytes, attribute offsets). Its sessions and allocations are kept as briefs, each
/// with its whole report entry or, for one that folding kept, where to read it back ([`items`]).
pub struct Snapshot {
    /// The report without its sessions, allocations and findings (they are `sessions`, `allocations` and
    /// `findings`).
    pub(crate) report: Report,
    pub model: Arc<Model>,
    pub source: Source,
    sessions: Vec<Item<SessionReport>>,
    allocations: Vec<Item<AllocationReport>>,
    /// The report's findings (taken from `report`), a folded one kept folded until a view shows it.
    pub(crate) findings: findings::Findings,
}

impl Snapshot {
    /// A snapshot of `report` (from [`Report::build_lean`] or [`Report::build`]) and the `model` it was
    /// built from: the report's sessions and allocations with the ones folding kept, in the JSON's order.
    /// Each folded item is read back once, for its brief. An item or finding that cannot be read back (the
    /// temporary file's disk gone, or its bytes changed) is a one-line error.
    pub fn new(report: Report, model: Arc<Model>, source: Source) -> Result<Snapshot, String> {
        Snapshot::build(report, model, source, None)
    }

    /// [`Snapshot::new`] for one of a live run's snapshots: what the run folded is read back only if no
    /// earlier snapshot did (`cache` keeps the briefs and findings from one snapshot to the next).
    pub fn live(
        report: Report,
        model: Arc<Model>,
        source: Source,
        cache: &mut FoldedCache,
    ) -> Result<Snapshot, String> {
        Snapshot::build(report, model, source, Some(cache))
    }

    fn build(
        mut report: Report,
        model: Arc<Model>,
        source: Source,
        mut cache: Option<&mut FoldedCache>,
    ) -> Result<Snapshot, String> {
        // A live run's snapshots share what they read back of folded findings (`cache`); a file read's
        // snapshot reads each back only when a view shows it (`findings::Findings`).
        if let Some(cache) = cache.as_deref_mut() {
            let n = u32::try_from(model.ice_folded.finding_count()).map_err(|_| "too many findings")?;
            let whole = cache.findings(&model, n)?;
            report.unfold_findings_with(|i| {
                whole
                    .get(i as usize)
                    .cloned()
                    .ok_or_else(|| "a folded finding out of place".to_string())
            })?;
        }
        let folded = &model.ice_folded;
        let held = std::mem::take(&mut report.sessions);
        // Where each entry comes from, in the JSON's order (None: the next held one).
        let plan: Vec<Option<FoldedSession>> = SessionItem::merge(&held, folded)
            .into_iter()
            .map(|i| match i {
                SessionItem::Held(_) => None,
                SessionItem::Folded(f) => Some(f),
            })
            .collect();
        let sessions = items::entries(&model, plan, held, cache.as_deref_mut())?;
        let held = std::mem::take(&mut report.turn.allocations);
        let plan: Vec<Option<FoldedAllocation>> = AllocationItem::merge(&held, Some(folded))
            .into_iter()
            .map(|i| match i {
                AllocationItem::Held(_) => None,
                AllocationItem::Folded(f) => Some(f),
            })
            .collect();
        let allocations = items::entries(&model, plan, held, cache)?;
        let findings = {
            let s: Vec<&SessionBrief> = sessions.iter().map(|s| &*s.brief).collect();
            let a: Vec<&AllocationBrief> = allocations.iter().map(|a| &*a.brief).collect();
            findings::Findings::take(&mut report, &model, &s, &a)?
        };
        Ok(Snapshot {
            report,
            model,
            source,
            sessions,
            allocations,
            findings,
        })
    }

    /// How many ICE sessions the report has.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many TURN allocations the report has.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// How many folded sessions, allocations and findings have not been read back whole: each costs only
    /// its brief until a view asks for it.
    pub fn unread(&self) -> usize {
        self.sessions.iter().filter(|s| s.unread()).count()
            + self.allocations.iter().filter(|a| a.unread()).count()
            + self.findings.unread()
    }

    /// What session `i` is listed and scoped by.
    pub(crate) fn session_brief(&self, i: usize) -> Option<&SessionBrief> {
        self.sessions.get(i).map(|s| &*s.brief)
    }

    /// Every session's brief, in order.
    pub(crate) fn session_briefs(&self) -> impl Iterator<Item = &SessionBrief> {
        self.sessions.iter().map(|s| &*s.brief)
    }

    /// Every allocation's brief, in order.
    pub(crate) fn allocation_briefs(&self) -> impl Iterator<Item = &AllocationBrief> {
        self.allocations.iter().map(|a| &*a.brief)
    }

    /// What allocation `i` is listed and scoped by.
    pub(crate) fn allocation_brief(&self, i: usize) -> Option<&AllocationBrief> {
        self.allocations.get(i).map(|a| &*a.brief)
    }

    /// Session `i` whole: its report entry, for a folded one read back the first time it is asked for
    /// (then kept). None for a folded one that can no longer be read back.
    pub fn session(&self, i: usize) -> Option<&SessionReport> {
        self.sessions.get(i)?.whole(&self.model)
    }

    /// Allocation `i` whole, as [`Snapshot::session`].
    pub fn allocation(&self, i: usize) -> Option<&AllocationReport> {
        self.allocations.get(i)?.whole(&self.model)
    }

    /// Folded sessions and allocations read back whole stay kept while at most `bound` of each kind are;
    /// past that, all but those `keep_sessions` and `keep_allocations` name are let go (read back again
    /// when next asked for). Browsing a busy server's thousands of items would otherwise bring back,
    /// one by one, all that folding saved. Returns how many went.
    pub(crate) fn forget_wholes(
        &mut self,
        bound: usize,
        keep_sessions: &[usize],
        keep_allocations: &[usize],
    ) -> usize {
        fn trim<T: items::Listed>(list: &mut [Item<T>], bound: usize, keep: &[usize]) -> usize {
            if list.iter().filter(|i| i.kept()).count() <= bound {
                return 0;
            }
            let mut gone = 0;
            for (i, item) in list.iter_mut().enumerate() {
                if item.kept() && !keep.contains(&i) {
                    item.forget();
                    gone += 1;
                }
            }
            gone
        }
        trim(&mut self.sessions, bound, keep_sessions)
            + trim(&mut self.allocations, bound, keep_allocations)
            + self.findings.forget_past(bound)
    }

    /// How many findings the report has.
    pub fn finding_count(&self) -> usize {
        self.findings.len()
    }

    /// Finding `i` of the report whole: a folded one read back the first time a view asks for it (then
    /// kept). None for a folded one that can no longer be read back.
    pub fn finding(&self, i: usize) -> Option<&Finding> {
        self.findings.get(&self.model, i)
    }

    /// Stored message `i` as the report lists it, made now from the model (the snapshot's report is
    /// lean: it does not hold every message).
    pub(crate) fn message(&self, i: usize) -> Option<crate::report::model::MessageReport> {
        Report::message(&self.model, i, self.report.multi_input())
    }
}

fn parse(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

/// Counts of findings by severity. Ordered by errors, then warnings, then infos: the home list sorts
/// rows with the most errors first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeverityCounts {
    pub(crate) errors: usize,
    pub(crate) warnings: usize,
    pub(crate) infos: usize,
}

pub(crate) fn severity_counts(snapshot: &Snapshot, which: &[usize]) -> SeverityCounts {
    let mut c = SeverityCounts::default();
    for s in which
        .iter()
        .filter_map(|&i| snapshot.findings.severity(&snapshot.model, i))
    {
        match s {
            Severity::Error => c.errors += 1,
            Severity::Warning => c.warnings += 1,
            Severity::Info => c.infos += 1,
        }
    }
    c
}

pub(crate) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "ERROR",
        Severity::Warning => "WARN",
        Severity::Info => "info",
    }
}
