//! The home list's rows: [`RowRef`] says what a row is (a session, or an allocation no session used),
//! [`RowSummary`] the facts it shows, sorts by and filters on, taken from the report.
//!
//! It neither filters nor sorts (`tui::filter`, `app::sessions`).
use super::{severity_counts, Index, SeverityCounts, Snapshot};
use crate::analysis::ice::CandidateType;
use crate::analysis::sessions::Outcome;
use crate::analysis::turn::AllocationState;
use crate::net::Transport;
use std::net::SocketAddr;

/// A row of the home list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRef {
    /// Index into the snapshot's sessions.
    Session(usize),
    /// Index into the snapshot's allocations (only allocations no session used).
    Allocation(usize),
}

/// A home row's state: its session's outcome, or its allocation's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Session(Outcome),
    Allocation(AllocationState),
}

impl Status {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Session(o) => o.name(),
            Status::Allocation(s) => s.name(),
        }
    }
}

/// What a home row's TURN column says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TurnUse {
    /// The session's selected pair goes through a TURN relay (`relay`).
    Relay,
    /// The session's agents allocated relays its selected pair does not use (`alloc`).
    Allocated,
    /// No TURN (`-`).
    None,
    /// An allocation's row: its client ↔ server transport (`udp`, `tcp`).
    Transport(Transport),
}

impl TurnUse {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TurnUse::Relay => "relay",
            TurnUse::Allocated => "alloc",
            TurnUse::None => "-",
            TurnUse::Transport(t) => t.name(),
        }
    }
}

/// The facts one home row shows, filters on and sorts by.
#[derive(Clone, Debug)]
pub(crate) struct RowSummary {
    /// `s1` for a session; `turn` for an allocation.
    pub(crate) id: String,
    /// Epoch seconds.
    pub(crate) start: f64,
    /// Session: the agents' ufrags; allocation: its client's address.
    pub(crate) agents: String,
    /// Session: the selected (or first) pair's addresses; allocation: client → server.
    pub(crate) addresses: String,
    pub(crate) status: Status,
    /// Candidate types of the selected pair (`prflx↔relay`); `TURN udp` for an allocation (what it relays).
    pub(crate) pair: String,
    /// Seconds, on the selected pair.
    pub(crate) rtt: Option<f64>,
    pub(crate) pairs: usize,
    pub(crate) succeeded: usize,
    pub(crate) checks: u64,
    pub(crate) turn: TurnUse,
    pub(crate) findings: SeverityCounts,
    pub(crate) candidate_types: Vec<CandidateType>,
    pub(crate) finding_codes: Vec<&'static str>,
    /// Lowercase text a plain filter word is looked up in.
    pub(crate) haystack: String,
}

impl RowSummary {
    /// Row `row`'s facts (None: no such session or allocation in `snapshot`).
    pub(crate) fn of(snapshot: &Snapshot, index: &Index, row: RowRef) -> Option<RowSummary> {
        let findings_idx = index.row_findings(row);
        let codes: Vec<&'static str> = findings_idx
            .iter()
            .filter_map(|&i| snapshot.findings.code(&snapshot.model, i))
            .collect();
        let counts = severity_counts(snapshot, findings_idx);
        let mut r = match row {
            RowRef::Session(i) => {
                let s = snapshot.session_brief(i)?;
                let sel = s.shown.as_ref().filter(|p| p.selected);
                let ufrags: Vec<&str> = s.ufrags.iter().map(String::as_str).collect();
                let turn = if sel
                    .is_some_and(|p| p.a_type == CandidateType::Relay || p.b_type == CandidateType::Relay)
                {
                    TurnUse::Relay
                } else if !index.sessions[i].allocations.is_empty() {
                    TurnUse::Allocated
                } else {
                    TurnUse::None
                };
                let mut hay: Vec<String> = vec![s.id.clone(), ufrags.join(" "), s.outcome.name().to_string()];
                hay.extend(s.addresses.iter().map(SocketAddr::to_string));
                RowSummary {
                    id: s.id.clone(),
                    start: s.first_ts,
                    agents: ufrags.join(" ↔ "),
                    addresses: s
                        .shown
                        .as_ref()
                        .map_or(String::new(), |p| format!("{} ↔ {}", p.a, p.b)),
                    status: Status::Session(s.outcome),
                    pair: sel.map_or(String::new(), |p| {
                        format!("{}↔{}", p.a_type.name(), p.b_type.name())
                    }),
                    rtt: sel.and_then(|p| p.rtt),
                    pairs: s.pairs,
                    succeeded: s.succeeded,
                    checks: s.checks,
                    turn,
                    findings: counts,
                    candidate_types: s.candidate_types.clone(),
                    finding_codes: codes,
                    haystack: hay.join(" "),
                }
            }
            RowRef::Allocation(i) => {
                let a = snapshot.allocation_brief(i)?;
                let start = a.start.unwrap_or(index.t0);
                let mut hay = vec![
                    "turn allocation".to_string(),
                    a.client.to_string(),
                    a.server.to_string(),
                    a.state.name().to_string(),
                ];
                hay.extend(a.relayed.iter().map(ToString::to_string));
                hay.extend(a.username().map(str::to_string));
                RowSummary {
                    id: "turn".into(),
                    start,
                    agents: a.client.to_string(),
                    addresses: format!("{} → {}", a.client, a.server),
                    status: Status::Allocation(a.state),
                    pair: format!("TURN {}", a.requested_transport().unwrap_or("?")),
                    rtt: None,
                    pairs: 0,
                    succeeded: 0,
                    checks: 0,
                    turn: TurnUse::Transport(a.transport),
                    findings: counts,
                    candidate_types: vec![CandidateType::Relay],
                    finding_codes: codes,
                    haystack: hay.join(" "),
                }
            }
        };
        r.haystack.push(' ');
        r.haystack.push_str(&r.finding_codes.join(" "));
        r.haystack = r.haystack.to_lowercase();
        Some(r)
    }
}
