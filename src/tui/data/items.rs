//! The sessions and allocations the UI lists, each kept as a brief and its whole report entry.
//!
//! The brief is what the home list, the TURN list, the titles and the [`super::Index`] show, filter, sort
//! and scope by. The whole entry of an item that folding kept (`analysis::fold`) stays in the temporary
//! file and is read back only when a view asks for it: a session opened, an allocation's detail shown, a
//! ladder laid out, a save or an export. It is then kept, until more than a few dozen are
//! ([`super::Snapshot::forget_wholes`]).
//!
//! Why: a busy server's capture folds tens of thousands of sessions and allocations. Parsed back whole,
//! they were most of the UI's memory (at 4 GB call-dense, ~420 of 619 MB). A brief is a few hundred bytes.
use crate::analysis::fold::{FoldedAllocation, FoldedSession};
use crate::analysis::ice::CandidateType;
use crate::analysis::sessions::{Outcome, PairState, SessionReport};
use crate::analysis::turn::AllocationState;
use crate::analysis::Model;
use crate::net::Transport;
use crate::report::turn::AllocationReport;
use crate::report::unfold::{read_folded_allocation, read_folded_session};
use std::cell::OnceCell;
use std::net::SocketAddr;

/// What the UI lists and scopes a session by, without its candidates', pairs' and timeline's detail.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SessionBrief {
    pub(crate) id: String,
    pub(crate) outcome: Outcome,
    pub(crate) outcome_reason: String,
    /// Epoch seconds.
    pub(crate) first_ts: f64,
    /// Its agents' ufrags, in the report's order.
    pub(crate) ufrags: Vec<String>,
    /// The selected pair, else the first one.
    pub(crate) shown: Option<ShownPair>,
    pub(crate) pairs: usize,
    pub(crate) succeeded: usize,
    /// Check transactions sent on all its pairs, both ways.
    pub(crate) checks: u64,
    /// Its candidates' types, sorted, each once.
    pub(crate) candidate_types: Vec<CandidateType>,
    /// Its candidates' and NAT mappings' addresses as the report writes them (the home filter's words).
    pub(crate) candidate_addresses: Vec<String>,
    /// Every transport address of its candidates, NAT mappings and pairs, sorted, each once.
    pub(crate) addresses: Vec<SocketAddr>,
    /// Its relay candidates' addresses, in the report's order.
    pub(crate) relay_candidates: Vec<String>,
}

/// The pair a session's home row shows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ShownPair {
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) a_type: CandidateType,
    pub(crate) b_type: CandidateType,
    /// It is the selected pair (not only the first).
    pub(crate) selected: bool,
    /// Seconds: its current round-trip time, A to B else B to A.
    pub(crate) rtt: Option<f64>,
}

impl SessionBrief {
    pub(crate) fn of(s: &SessionReport) -> SessionBrief {
        let sel = s.pairs.iter().find(|p| p.selected);
        let shown = sel.or(s.pairs.first()).map(|p| ShownPair {
            a: p.a.clone(),
            b: p.b.clone(),
            a_type: p.a_type,
            b_type: p.b_type,
            selected: p.selected,
            rtt: p
                .a_to_b
                .current_round_trip_time
                .or(p.b_to_a.current_round_trip_time),
        });
        let mut candidate_types: Vec<CandidateType> = s.candidates.iter().map(|c| c.candidate_type).collect();
        candidate_types.sort_unstable();
        candidate_types.dedup();
        let known = s.candidates.iter().chain(&s.nat_mappings);
        let mut addresses: Vec<SocketAddr> = known
            .clone()
            .map(|c| c.address.as_str())
            .chain(s.pairs.iter().flat_map(|p| [p.a.as_str(), p.b.as_str()]))
            .filter_map(|a| a.parse().ok())
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses.shrink_to_fit();
        SessionBrief {
            id: s.id.clone(),
            outcome: s.outcome,
            outcome_reason: s.outcome_reason.clone(),
            first_ts: s.first_ts,
            ufrags: s.agents.iter().map(|a| a.ufrag.clone()).collect(),
            shown,
            pairs: s.pairs.len(),
            succeeded: s.pairs.iter().filter(|p| p.state == PairState::Succeeded).count(),
            checks: s
                .pairs
                .iter()
                .map(|p| p.a_to_b.requests_sent + p.b_to_a.requests_sent)
                .sum(),
            candidate_types,
            candidate_addresses: known.map(|c| c.address.clone()).collect(),
            addresses,
            relay_candidates: s
                .candidates
                .iter()
                .filter(|c| c.candidate_type == CandidateType::Relay)
                .map(|c| c.address.clone())
                .collect(),
        }
    }

    /// The ufrag of agent `i` ("" when it has none).
    pub(crate) fn ufrag(&self, i: usize) -> &str {
        self.ufrags.get(i).map_or("", String::as_str)
    }
}

/// What the UI lists and scopes an allocation by, without its lifecycle's, permissions' and traffic's
/// detail.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AllocationBrief {
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) transport: Transport,
    pub(crate) state: AllocationState,
    pub(crate) requested_transport: Option<String>,
    pub(crate) relayed: Vec<String>,
    pub(crate) username: Option<String>,
    /// Epoch seconds of the first thing seen of it (its creation, an event or an error).
    pub(crate) start: Option<f64>,
    /// Its last error: method, code and reason (the reason as the wire gave it).
    pub(crate) last_error: Option<(String, u16, String)>,
}

impl AllocationBrief {
    pub(crate) fn of(a: &AllocationReport) -> AllocationBrief {
        AllocationBrief {
            client: a.client.clone(),
            server: a.server.clone(),
            transport: a.transport,
            state: a.state,
            requested_transport: a.requested_transport.clone(),
            relayed: a.relayed.clone(),
            username: a.username.clone(),
            start: a
                .created_at
                .into_iter()
                .chain(a.events.iter().map(|e| e.ts))
                .chain(a.errors.iter().map(|e| e.ts))
                .reduce(f64::min),
            last_error: a
                .errors
                .last()
                .map(|e| (e.method.clone(), e.code, e.reason.clone())),
        }
    }
}

/// A report entry the UI lists: the brief made of it, and how a folded one is read back.
pub(crate) trait Listed: Sized {
    type Brief;
    /// Where folding kept it.
    type Folded: Clone;
    fn brief(&self) -> Self::Brief;
    fn read(model: &Model, f: &Self::Folded) -> Result<Self, String>;
}

impl Listed for SessionReport {
    type Brief = SessionBrief;
    type Folded = FoldedSession;
    fn brief(&self) -> SessionBrief {
        SessionBrief::of(self)
    }
    fn read(model: &Model, f: &FoldedSession) -> Result<Self, String> {
        read_folded_session(model, f)
    }
}

impl Listed for AllocationReport {
    type Brief = AllocationBrief;
    type Folded = FoldedAllocation;
    fn brief(&self) -> AllocationBrief {
        AllocationBrief::of(self)
    }
    fn read(model: &Model, f: &FoldedAllocation) -> Result<Self, String> {
        read_folded_allocation(model, f)
    }
}

/// A listed item: its brief, and its whole entry or where folding kept it.
pub(crate) struct Item<T: Listed> {
    pub(crate) brief: T::Brief,
    whole: Whole<T>,
}

enum Whole<T: Listed> {
    /// Not folded: the report built it at the end (or a live snapshot's report holds it). Boxed: an
    /// entry is then its brief and a few words whichever it is (an allocation's report is ~900 bytes).
    Held(Box<T>),
    /// Folded: read back the first time it is asked for. `None` once reading it back failed.
    Folded(T::Folded, OnceCell<Option<Box<T>>>),
}

impl<T: Listed> Item<T> {
    pub(crate) fn held(t: T) -> Self {
        Item {
            brief: t.brief(),
            whole: Whole::Held(Box::new(t)),
        }
    }

    /// A folded item: read back once for its brief, then dropped.
    pub(crate) fn folded(model: &Model, f: &T::Folded) -> Result<Self, String> {
        let t = T::read(model, f)?;
        Ok(Item {
            brief: t.brief(),
            whole: Whole::Folded(f.clone(), OnceCell::new()),
        })
    }

    /// Folded, and not read back whole yet.
    pub(crate) fn unread(&self) -> bool {
        matches!(&self.whole, Whole::Folded(_, cell) if cell.get().is_none())
    }

    /// Folded, and read back whole (or tried to be) and kept.
    pub(crate) fn kept(&self) -> bool {
        matches!(&self.whole, Whole::Folded(_, cell) if cell.get().is_some())
    }

    /// Lets go of a folded item's whole entry: it is read back again when next asked for.
    pub(crate) fn forget(&mut self) {
        if let Whole::Folded(_, cell) = &mut self.whole {
            cell.take();
        }
    }

    /// The item whole; None for a folded one that could not be read back.
    pub(crate) fn whole(&self, model: &Model) -> Option<&T> {
        match &self.whole {
            Whole::Held(t) => Some(t),
            Whole::Folded(f, cell) => cell
                .get_or_init(|| T::read(model, f).ok().map(Box::new))
                .as_deref(),
        }
    }
}

/// The entries of a list in order: `plan` says where each comes from (`Some`: folded there; `None`: the
/// next of `held`).
pub(crate) fn entries<T: Listed>(
    model: &Model,
    plan: Vec<Option<&T::Folded>>,
    held: Vec<T>,
) -> Result<Vec<Item<T>>, String> {
    let mut held = held.into_iter();
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        out.push(match p {
            Some(f) => Item::folded(model, f)?,
            None => Item::held(held.next().ok_or("a report entry out of place")?),
        });
    }
    Ok(out)
}
