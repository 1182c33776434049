//! What the terminal UI shows: a [`Snapshot`] of the report and the model, and an [`Index`] derived from it
//! once per snapshot (never per frame): the home rows, each session's messages and ladder, findings per
//! session and allocation, and lookups by frame and transaction.
//!
//! A file run makes one snapshot; a live run replaces it periodically with a report rebuilt from the
//! growing model, so nothing here may hold on to positions that a new snapshot could move (the UI keeps
//! session ids and allocation addresses, not row numbers). Pure: no terminal, no files.
//!
//! This file is the map, and holds what every screen shares: the snapshot, where it came from, a live
//! capture's counters, and severity words. The [`Index`] and each session's and allocation's scope are in
//! `index`, a session's ladder in `ladder`, the home list's rows in `rows`, the TURN screen's detail lines
//! in `turn`. Nothing here keeps UI state (`tui::app`) or draws (`tui::views`).
mod index;
mod ladder;
mod rows;
mod turn;

pub(crate) use index::Index;
pub(crate) use ladder::{Column, Ladder, LadderRow, Side};
pub use rows::RowRef;
pub(crate) use rows::{RowSummary, Status, TurnUse};
pub use turn::allocation_lines;
pub(crate) use turn::LineKind;

use crate::analysis::findings::{Finding, Severity};
use crate::analysis::sessions::SessionReport;
use crate::analysis::Model;
use crate::report::Report;
use std::cell::OnceCell;
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
        first_ts: model.first_ts,
        last_ts: model.last_ts,
        ..Model::default()
    }
}

/// One consistent view of a capture: the report every output renders, plus the model for what the report
/// leaves out (raw message bytes, attribute offsets).
pub struct Snapshot {
    pub(crate) report: Report,
    pub model: Arc<Model>,
    pub source: Source,
    /// Per session: the session read back whole, for one that folding kept and whose report entry came
    /// back without its timeline (`Report::unfold`); read the first time it is asked for ([`Snapshot::session`]).
    whole: Vec<OnceCell<Option<Box<SessionReport>>>>,
}

impl Snapshot {
    pub fn new(report: Report, model: Arc<Model>, source: Source) -> Snapshot {
        let whole = report.sessions.iter().map(|_| OnceCell::new()).collect();
        Snapshot {
            report,
            model,
            source,
            whole,
        }
    }

    /// Session `i` whole: its report entry, or for a folded one the entry read back with its timeline
    /// (the first time, then kept). A folded entry that can no longer be read back gives the entry
    /// without its timeline ([`Snapshot::timeline_lost`] says so).
    pub fn session(&self, i: usize) -> Option<&SessionReport> {
        let s = self.report.sessions.get(i)?;
        let whole = self
            .whole
            .get(i)?
            .get_or_init(|| crate::report::unfold::read_session(&self.model, s.index).map(Box::new));
        Some(whole.as_deref().unwrap_or(s))
    }

    /// Session `i` was folded, and reading it back whole failed: its timeline is not shown.
    pub(crate) fn timeline_lost(&self, i: usize) -> bool {
        let Some(s) = self.report.sessions.get(i) else {
            return false;
        };
        self.session(i).is_some_and(|w| std::ptr::eq(w, s))
            && self.model.ice_folded.session(s.index).is_some()
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

pub(crate) fn severity_counts(findings: &[Finding], which: &[usize]) -> SeverityCounts {
    let mut c = SeverityCounts::default();
    for f in which.iter().filter_map(|&i| findings.get(i)) {
        match f.severity {
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
