//! Diagnoses: rules over the model that say what went wrong in words a support engineer can paste into a
//! ticket, with the frames that prove it.
//!
//! Each rule lives with the half of the analysis it reads ([`turn`] for allocations, `ice` for sessions);
//! this module holds the common shape and collects them. Codes are stable identifiers (`turn.auth.wrong-
//! password`); messages may be reworded. Findings are computed from the model on demand, so a live view and
//! a file run show the same thing for the same packets.
pub(crate) mod ice;
pub(crate) mod turn;

use crate::analysis::fold::Forms;
use crate::analysis::sessions::SessionReport;
use crate::analysis::Model;
use crate::net::Transport;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
    Info,
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Subject {
    /// An allocation, by its client and server addresses ("ip:port") and transport.
    Allocation {
        client: String,
        server: String,
        transport: Transport,
    },
    /// An ICE session, by its id in the report.
    Session { id: String },
    /// The capture as a whole.
    Capture,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub(crate) severity: Severity,
    /// Stable machine-readable code, e.g. `turn.auth.wrong-password`. A finding read back from the JSON
    /// folding kept gets its code from where it was kept (the fold interned it), not from the JSON.
    #[serde(skip_deserializing)]
    pub code: &'static str,
    /// One sentence: what happened and what to check next.
    pub(crate) message: String,
    pub(crate) subject: Subject,
    /// Evidence: frame numbers, in capture order, at most [`MAX_EVIDENCE_FRAMES`].
    pub frames: Vec<u64>,
}

/// Evidence lists are for people to click through; the first frames of a pattern prove it.
pub(crate) const MAX_EVIDENCE_FRAMES: usize = 20;

/// Frames sorted, deduplicated and capped.
pub(crate) fn evidence(mut frames: Vec<u64>) -> Vec<u64> {
    frames.sort_unstable();
    frames.dedup();
    frames.truncate(MAX_EVIDENCE_FRAMES);
    frames
}

/// A finding kept by folding ([`crate::analysis::fold`]) as its rendered forms, its element of the
/// report's `findings` array and its line of the text summary, with what the report orders it by: 32
/// bytes, as a busy server's capture folds tens of thousands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldedFinding {
    /// The first evidence frame; `u64::MAX` when it has none (it sorts last, as [`Entry`] orders).
    pub(crate) first_frame: u64,
    pub(crate) forms: Forms,
    /// Its code, as [`crate::analysis::fold::Folded::code`] gives it back.
    pub(crate) code: u16,
    pub(crate) severity: Severity,
}

/// A finding as the rules give it: built at the end, or folded (its place in
/// [`crate::analysis::fold::Folded`]'s findings).
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    Held(Box<Finding>),
    Folded(u32),
}

impl Entry {
    /// The finding, when it was built at the end (every one, without folding).
    #[cfg(test)]
    pub(crate) fn into_held(self) -> Option<Finding> {
        match self {
            Entry::Held(f) => Some(*f),
            Entry::Folded(_) => None,
        }
    }

    pub(crate) fn held(f: Finding) -> Entry {
        Entry::Held(Box::new(f))
    }
}

/// One place of the report's findings, in order: `report.findings[i]`, or a folded finding (its place in
/// [`crate::analysis::fold::Folded`]'s findings).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FindingSlot {
    Held(usize),
    Folded(u32),
}

/// Every finding for the model, most severe first, then in order of first evidence, then by code: those
/// built now, in that order, and where folding kept some, the order of all of them (empty when none was
/// folded).
pub(crate) fn collect(model: &Model, sessions: &[SessionReport]) -> (Vec<Finding>, Vec<FindingSlot>) {
    let end = model.last_ts.map(|t| t.as_secs_f64());
    collect_found(model, sessions.iter().map(|s| ice::Found::of(s, end)).collect())
}

/// Which findings a collection takes: all of them, or only those of what is still open and those about
/// the capture (a live run's event tracker, which took in what folded as it folded: going through every
/// folded item at each poll made a poll's cost grow with the length of the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    All,
    Open,
}

/// [`collect`] from what each open session's view gave ([`ice::Found::of`], in session order).
pub(crate) fn collect_found(model: &Model, sessions: Vec<ice::Found>) -> (Vec<Finding>, Vec<FindingSlot>) {
    collect_scoped(model, sessions, Scope::All)
}

/// The findings of what is still open and those about the capture, in [`collect`]'s order, from what
/// each open session's view gave.
pub(crate) fn collect_open(model: &Model, sessions: Vec<ice::Found>) -> Vec<Finding> {
    collect_scoped(model, sessions, Scope::Open).0
}

fn collect_scoped(
    model: &Model,
    sessions: Vec<ice::Found>,
    scope: Scope,
) -> (Vec<Finding>, Vec<FindingSlot>) {
    let folded = &model.ice_folded;
    // Nearly every finding of a long capture was folded: one list of 16-byte entries, sized once.
    let held_folded = if scope == Scope::All {
        folded.finding_count()
    } else {
        0
    };
    let mut all = Vec::with_capacity(held_folded + 2 * sessions.len() + 16);
    turn::findings_into(model, scope, &mut all);
    ice::findings_of_found_into(model, sessions, scope, &mut all);
    // The folded findings' sort keys read once, in the order they folded: a sort reading each from its
    // page (which may have gone to the temporary file) would read pages over and over.
    let (first, folded_keys) = folded.finding_keys();
    let key = |e: &Entry| match e {
        Entry::Held(f) => (f.severity, f.frames.first().copied().unwrap_or(u64::MAX), f.code),
        Entry::Folded(i) => match (*i as usize).checked_sub(first).and_then(|k| folded_keys.get(k)) {
            Some(&(severity, first_frame, code)) => (severity, first_frame, folded.code(code)),
            None => (Severity::Info, u64::MAX, ""),
        },
    };
    // Stable: equal keys keep the rules' order.
    all.sort_by(|a, b| key(a).cmp(&key(b)));
    let any_folded = all.iter().any(|e| matches!(e, Entry::Folded(_)));
    let mut held = Vec::new();
    // Entries and slots are the same size, so this reuses the list's buffer.
    let order: Vec<FindingSlot> = all
        .into_iter()
        .map(|e| match e {
            Entry::Held(f) => {
                held.push(*f);
                FindingSlot::Held(held.len() - 1)
            }
            Entry::Folded(i) => FindingSlot::Folded(i),
        })
        .collect();
    if !any_folded {
        return (held, Vec::new());
    }
    (held, order)
}
