//! Diagnoses: rules over the model that say what went wrong in words a support engineer can paste into a
//! ticket, with the frames that prove it.
//!
//! Each rule lives with the half of the analysis it reads ([`turn`] for allocations, `ice` for sessions);
//! this module holds the common shape and collects them. Codes are stable identifiers (`turn.auth.wrong-
//! password`); messages may be reworded. Findings are computed from the model on demand, so a live view and
//! a file run show the same thing for the same packets.
pub(crate) mod ice;
pub(crate) mod turn;

use crate::analysis::sessions::SessionReport;
use crate::analysis::Model;
use crate::net::Transport;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
    Info,
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub(crate) severity: Severity,
    /// Stable machine-readable code, e.g. `turn.auth.wrong-password`.
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

/// Every finding for the model, most severe first, then in order of first evidence.
pub(crate) fn collect(model: &Model, sessions: &[SessionReport]) -> Vec<Finding> {
    let mut all = turn::findings(model);
    all.extend(ice::findings(model, sessions));
    all.sort_by(|a, b| {
        (a.severity, a.frames.first().copied().unwrap_or(u64::MAX), a.code).cmp(&(
            b.severity,
            b.frames.first().copied().unwrap_or(u64::MAX),
            b.code,
        ))
    });
    all
}
