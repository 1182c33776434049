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
use crate::analysis::findings::Finding;
use crate::analysis::fold::{FoldedAllocation, FoldedSession};
use crate::analysis::ice::CandidateType;
use crate::analysis::sessions::{Outcome, PairState, SessionReport};
use crate::analysis::store::RawRef;
use crate::analysis::turn::AllocationState;
use crate::analysis::Model;
use crate::net::Transport;
use crate::report::turn::AllocationReport;
use crate::report::unfold::{read_folded_allocation, read_folded_finding, read_folded_session};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// Every transport address of its candidates, NAT mappings and pairs, sorted, each once (with its
    /// ufrags, the home filter's words). A copy of its candidates' addresses as strings was ~40 % of a
    /// brief (~12 MB of the UI on the call-dense 4 GB capture); a filter formats these instead.
    pub(crate) addresses: Vec<SocketAddr>,
    /// Its relay candidates' addresses, in the report's order (parsed back: the report formats them).
    pub(crate) relay_candidates: Box<[SocketAddr]>,
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
            addresses,
            relay_candidates: s
                .candidates
                .iter()
                .filter(|c| c.candidate_type == CandidateType::Relay)
                .filter_map(|c| c.address.parse().ok())
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
    /// Its key's addresses: a report's `client` and `server` are these formatted.
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) state: AllocationState,
    /// Its relayed addresses (the report's `relayed`, parsed back: it formats them).
    pub(crate) relayed: Box<[SocketAddr]>,
    /// Epoch seconds of the first thing seen of it (its creation, an event or an error).
    pub(crate) start: Option<f64>,
    /// Its last error's code ([`AllocationBrief::last_error`]).
    last_error_code: Option<u16>,
    /// REQUESTED-TRANSPORT, USERNAME, and the last error's method and reason, in one heap block: a brief
    /// of four `String`s, the addresses as text and a list was ~555 bytes in eight blocks, and a busy
    /// server's capture lists tens of thousands of allocations (~27 MB of the UI at call-dense 4 GB).
    texts: Texts<4>,
}

impl AllocationBrief {
    pub(crate) fn of(a: &AllocationReport) -> AllocationBrief {
        let error = a.errors.last();
        AllocationBrief {
            client: a.key.client,
            server: a.key.server,
            transport: a.transport,
            state: a.state,
            relayed: a.relayed.iter().filter_map(|r| r.parse().ok()).collect(),
            start: a
                .created_at
                .into_iter()
                .chain(a.events.iter().map(|e| e.ts))
                .chain(a.errors.iter().map(|e| e.ts))
                .reduce(f64::min),
            last_error_code: error.map(|e| e.code),
            texts: Texts::new([
                a.requested_transport.as_deref(),
                a.username.as_deref(),
                error.map(|e| e.method.as_str()),
                error.map(|e| e.reason.as_str()),
            ]),
        }
    }

    /// REQUESTED-TRANSPORT as the report names it.
    pub(crate) fn requested_transport(&self) -> Option<&str> {
        self.texts.get(0)
    }

    pub(crate) fn username(&self) -> Option<&str> {
        self.texts.get(1)
    }

    /// Its last error: method, code and reason (the reason as the wire gave it).
    pub(crate) fn last_error(&self) -> Option<(&str, u16, &str)> {
        Some((self.texts.get(2)?, self.last_error_code?, self.texts.get(3)?))
    }
}

/// `N` optional strings (at most 8) in one heap block: where each ends, and which are there.
#[derive(Clone, Debug, PartialEq)]
struct Texts<const N: usize> {
    text: Box<str>,
    ends: [u32; N],
    present: u8,
}

impl<const N: usize> Texts<N> {
    fn new(parts: [Option<&str>; N]) -> Self {
        const { assert!(N <= 8, "`present` has 8 bits") };
        let mut text = String::new();
        let mut ends = [0; N];
        let mut present = 0;
        for (i, part) in parts.iter().enumerate() {
            if let Some(p) = part {
                text.push_str(p);
                present |= 1 << i;
            }
            // A brief's strings are a packet's attributes: far below 4 GB.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Texts {
            text: text.into_boxed_str(),
            ends,
            present,
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        if i >= N || self.present & (1 << i) == 0 {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(j) => *self.ends.get(j)?,
            None => 0,
        };
        self.text.get(start as usize..*self.ends.get(i)? as usize)
    }
}

/// What a live run's snapshots keep from one to the next of what folding kept: each folded session's and
/// allocation's brief, and each folded finding whole. A folded item never changes, so a live run reads
/// each back once, not at every snapshot (a snapshot reads back only what folded since the last one).
#[derive(Default)]
pub struct FoldedCache {
    /// By where the item's rendered forms are: the same place is the same item.
    sessions: HashMap<RawRef, Arc<SessionBrief>>,
    allocations: HashMap<RawRef, Arc<AllocationBrief>>,
    /// Folded finding `i` at `i` (folded findings are numbered from 0 in the order they folded).
    findings: Vec<Finding>,
}

impl FoldedCache {
    /// Folded findings `0..n` whole, reading back those not read before.
    pub(crate) fn findings(&mut self, model: &Model, n: u32) -> Result<&[Finding], String> {
        for i in self.findings.len()..n as usize {
            let i = u32::try_from(i).map_err(|_| "too many findings")?;
            self.findings.push(read_folded_finding(model, i)?);
        }
        Ok(self.findings.get(..n as usize).unwrap_or_default())
    }
}

/// A report entry the UI lists: the brief made of it, and how a folded one is read back.
pub(crate) trait Listed: Sized {
    type Brief;
    /// Where folding kept it.
    type Folded: Clone;
    fn brief(&self) -> Self::Brief;
    fn read(model: &Model, f: &Self::Folded) -> Result<Self, String>;
    /// Where its forms are: what [`FoldedCache`] knows it by.
    fn place(f: &Self::Folded) -> RawRef;
    /// The [`FoldedCache`]'s briefs of its kind.
    fn cached(cache: &mut FoldedCache) -> &mut HashMap<RawRef, Arc<Self::Brief>>;
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
    fn place(f: &FoldedSession) -> RawRef {
        f.forms.json()
    }
    fn cached(cache: &mut FoldedCache) -> &mut HashMap<RawRef, Arc<SessionBrief>> {
        &mut cache.sessions
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
    fn place(f: &FoldedAllocation) -> RawRef {
        f.forms.json()
    }
    fn cached(cache: &mut FoldedCache) -> &mut HashMap<RawRef, Arc<AllocationBrief>> {
        &mut cache.allocations
    }
}

/// A listed item: its brief (shared with a live run's [`FoldedCache`]), and its whole entry or where
/// folding kept it.
pub(crate) struct Item<T: Listed> {
    pub(crate) brief: Arc<T::Brief>,
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
            brief: Arc::new(t.brief()),
            whole: Whole::Held(Box::new(t)),
        }
    }

    /// A folded item: read back once for its brief, then dropped; with a `cache`, only if the cache does
    /// not have its brief yet (then it keeps it).
    pub(crate) fn folded(
        model: &Model,
        f: &T::Folded,
        cache: Option<&mut FoldedCache>,
    ) -> Result<Self, String> {
        let read = || T::read(model, f).map(|t| Arc::new(t.brief()));
        let brief = match cache {
            None => read()?,
            Some(cache) => match T::cached(cache).entry(T::place(f)) {
                std::collections::hash_map::Entry::Occupied(e) => Arc::clone(e.get()),
                std::collections::hash_map::Entry::Vacant(e) => Arc::clone(e.insert(read()?)),
            },
        };
        Ok(Item {
            brief,
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
    plan: Vec<Option<T::Folded>>,
    held: Vec<T>,
    mut cache: Option<&mut FoldedCache>,
) -> Result<Vec<Item<T>>, String> {
    let mut held = held.into_iter();
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        out.push(match p {
            Some(f) => Item::folded(model, &f, cache.as_deref_mut())?,
            None => Item::held(held.next().ok_or("a report entry out of place")?),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{ui_model, Snapshot};
    use super::*;
    use crate::analysis::Analyzer;
    use crate::report::Report;
    use crate::wire::credentials::Keyring;

    /// Strings packed in one block come back as they went in: absent ones as None, empty ones as "",
    /// neighbours not bleeding into each other, and nothing past the last.
    #[test]
    fn packed_texts_give_back_each_string() {
        let t = Texts::new([Some("UDP"), None, Some(""), Some("Unauthorized \u{1b}[2J")]);
        assert_eq!(t.get(0), Some("UDP"));
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(2), Some(""));
        assert_eq!(t.get(3), Some("Unauthorized \u{1b}[2J"));
        assert_eq!(t.get(4), None);
        assert_eq!(Texts::new([None, None]).get(1), None);
    }

    /// A live run's snapshots list what folded with what is open, in the report's order: a call that
    /// folded while the capture went on is listed with the brief its JSON entry gives (what a file read's
    /// UI lists), read back once in the run: the next snapshot shares it. Its findings are whole.
    #[test]
    fn live_snapshots_list_folded_calls_read_back_once() {
        let mut an = Analyzer::new(Keyring::new());
        crate::report::fold_as_reported(&mut an, None);
        let mut cache = FoldedCache::default();
        let mut snapshots = Vec::new();
        let fixtures = ["chrome-relay-udp", "host-direct"];
        let take = |an: &Analyzer, cache: &mut FoldedCache| {
            let report = Report::build_lean(an.model(), &[], an.net_stats());
            let model = std::sync::Arc::new(ui_model(an.model()));
            Snapshot::live(report, model, Default::default(), cache).expect("in memory")
        };
        // The first call folds at the second's first packet, 120 s after its own last one; the second is
        // open at its end.
        crate::analysis::testkit::fixtures_in_a_row(&fixtures, 120, &mut |pkt, _| an.ingest(pkt));
        assert_eq!(an.model().ice_folded.session_count(), 1);
        snapshots.push(take(&an, &mut cache));
        snapshots.push(take(&an, &mut cache));
        an.finish();
        let [one, two] = [&snapshots[0], &snapshots[1]];
        assert_eq!(an.model().ice_folded.session_count(), 2);
        assert_eq!((one.session_count(), two.session_count()), (2, 2));
        assert_eq!(cache.sessions.len(), 1, "the folded call, read back once");
        assert!(!cache.allocations.is_empty());
        let (a, b) = (&one.sessions[0], &two.sessions[0]);
        assert!(
            a.unread() && Arc::ptr_eq(&a.brief, &b.brief),
            "the second snapshot shares the brief"
        );
        assert_eq!(one.session(1).map(|s| s.id.as_str()), Some("s2"), "the open call");

        // What a file read's UI lists of the same call, from the folded JSON at the end.
        let report = Report::build_lean(an.model(), &[], an.net_stats());
        let end = Snapshot::new(report, std::sync::Arc::new(an.into_model()), Default::default())
            .expect("in memory");
        assert_eq!(*a.brief, *end.sessions[0].brief);
        assert_eq!(a.brief.outcome, Outcome::Connected);
        let whole = one.session(0).expect("read back whole");
        assert_eq!(whole.id, "s1");
        let n = one.finding_count();
        assert!(n > 0 && (0..n).all(|i| one.finding(i).is_some_and(|f| !f.code.is_empty())));
        assert!(one.report.finding_order.is_empty(), "findings whole");
        assert!(one.report.findings.is_empty(), "taken into the snapshot");
    }
}
