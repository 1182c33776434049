//! A report whose sessions, allocations and findings folding kept as rendered JSON
//! ([`crate::analysis::fold`]), made whole again: each folded item is read back from the temporary file
//! and parsed into the report's own types, in the report's order; or one folded item at a time, as the
//! terminal UI reads them. With this, a file read for the UI folds as `--json` does, so the analysis
//! state of finished calls goes as they end.
//!
//! What comes back is what `--json` writes for those items, so the UI shows what the JSON says (a test
//! compares the two on every bundled capture and on generated call-dense ones).
use super::json::SessionItem;
use super::turn::{AllocationItem, AllocationReport};
use super::Report;
use crate::analysis::findings::{Finding, FindingSlot};
use crate::analysis::fold::{FoldedAllocation, FoldedSession, Form};
use crate::analysis::sessions::SessionReport;
use crate::analysis::Model;
use serde::de::DeserializeOwned;

impl Report {
    /// Makes a report that [`Report::build_lean`] built from a folding `model` whole: its sessions, TURN
    /// allocations and findings then include the folded ones, in the order the JSON lists them. An item
    /// that cannot be read back (the temporary file's disk gone, or its bytes changed) is a one-line
    /// error. (The terminal UI reads folded sessions and allocations back one at a time, when a view
    /// needs them: `tui::data::Snapshot`.)
    pub fn unfold(&mut self, model: &Model) -> Result<(), String> {
        let folded = &model.ice_folded;
        // In the JSON's order (`SessionItem::merge`, `AllocationItem::merge`). What was not folded is
        // cloned: once a read has ended, folding has folded everything, so that is next to nothing.
        let held = std::mem::take(&mut self.sessions);
        let mut sessions = Vec::with_capacity(held.len() + folded.session_count());
        for item in SessionItem::merge(&held, folded) {
            sessions.push(match item {
                SessionItem::Held(s) => s.clone(),
                SessionItem::Folded(f) => read_folded_session(model, &f)?,
            });
        }
        self.sessions = sessions;

        let held = std::mem::take(&mut self.turn.allocations);
        let mut allocations = Vec::with_capacity(held.len() + folded.allocation_count());
        for item in AllocationItem::merge(&held, Some(folded)) {
            allocations.push(match item {
                AllocationItem::Held(a) => a.clone(),
                AllocationItem::Folded(f) => read_folded_allocation(model, &f)?,
            });
        }
        self.turn.allocations = allocations;
        self.unfold_findings(model)
    }

    /// Makes the report's findings whole, as [`Report::unfold`] does (its sessions and allocations stay
    /// as they are).
    pub(crate) fn unfold_findings(&mut self, model: &Model) -> Result<(), String> {
        self.unfold_findings_with(|i| read_folded_finding(model, i))
    }

    /// [`Report::unfold_findings`] with folded finding `i` as `folded(i)` gives it (a live snapshot's
    /// copy of what it read back before).
    pub(crate) fn unfold_findings_with(
        &mut self,
        mut folded: impl FnMut(u32) -> Result<Finding, String>,
    ) -> Result<(), String> {
        if self.finding_order.is_empty() {
            return Ok(());
        }
        let mut held: Vec<Option<_>> = std::mem::take(&mut self.findings).into_iter().map(Some).collect();
        let mut findings = Vec::with_capacity(self.finding_order.len());
        for slot in std::mem::take(&mut self.finding_order) {
            let f = match slot {
                FindingSlot::Held(i) => held
                    .get_mut(i)
                    .and_then(Option::take)
                    .ok_or("a finding out of place")?,
                FindingSlot::Folded(i) => folded(i)?,
            };
            findings.push(f);
        }
        self.findings = findings;
        Ok(())
    }
}

/// Folded session `f`, read back whole.
pub(crate) fn read_folded_session(model: &Model, f: &FoldedSession) -> Result<SessionReport, String> {
    let mut buf = Vec::new();
    let read = model.ice_folded.read_session(f, Form::Json, &mut buf);
    let mut s: SessionReport = parsed(read, &buf)?;
    s.index = f.index;
    Ok(s)
}

/// Folded finding `i`, read back whole.
pub(crate) fn read_folded_finding(model: &Model, i: u32) -> Result<Finding, String> {
    let folded = &model.ice_folded;
    let mut buf = Vec::new();
    let read = folded.read_finding(i, Form::Json, &mut buf);
    let mut f: Finding = parsed(read, &buf)?;
    f.code = folded.finding(i).map_or("", |k| folded.code(k.code));
    Ok(f)
}

/// Folded allocation `f`, read back whole.
pub(crate) fn read_folded_allocation(
    model: &Model,
    f: &FoldedAllocation,
) -> Result<AllocationReport, String> {
    let mut buf = Vec::new();
    let read = model.ice_folded.read_allocation(f, Form::Json, &mut buf);
    let mut a: AllocationReport = parsed(read, &buf)?;
    a.key = f.key();
    Ok(a)
}

/// A folded item's JSON element, read back (`read`) into `buf`, parsed. An element that does not parse
/// back (its bytes changed on disk past the store's checks) is reported as one that could not be read.
fn parsed<T: DeserializeOwned>(read: std::io::Result<()>, buf: &[u8]) -> Result<T, String> {
    read.map_err(|e| e.to_string())?;
    serde_json::from_slice(buf)
        .map_err(|e| format!("a folded item read back from the temporary file does not parse: {e}"))
}
