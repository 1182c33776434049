//! The [`Index`]: lookups derived from one snapshot, once per snapshot and never per frame. The home rows;
//! each session's and each allocation's addresses, messages, findings and frames (for saving); messages by
//! frame (evidence jumps) and by transaction (`n`/`p`).
//!
//! A message joins every session that owns one of its addresses, unless it is a binding request whose
//! USERNAME names another session's agents (an ICE restart reuses the addresses with new ufrags), or the
//! answer to one. Each session's ladder is laid out in `ladder`, a home row's facts in `rows`; nothing
//! here survives a new snapshot.
use super::findings::{About, FirstOf};
use super::ladder::{build_ladder, Ladder};
use super::rows::RowRef;
use super::{AllocationBrief, SessionBrief, Snapshot};
use crate::analysis::sessions::{SessionReport, TimelineKind};
use crate::analysis::{Body, MessageRecord, Model};
use crate::net::hash::FastHash;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method, TransactionId};
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;

/// Everything the session view needs that the report does not hold directly.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionScope {
    /// Messages of the session (its checks, its allocations' TURN traffic, its agents' STUN), indices into
    /// `model.messages` in capture order: 4 bytes a message (a capture's messages past 2^32 are not
    /// indexed).
    pub(crate) messages: Vec<u32>,
    /// The relayed addresses and clients of its allocations that its brief does not list; sorted, each once
    /// ([`address_set`]). With the brief's (its candidates, NAT mappings and pairs), every transport address
    /// that belongs to the session ([`Index::session_addresses`]): a copy of the brief's list in every scope
    /// was ~10 MB of the UI on the call-dense 4 GB capture.
    pub(crate) extra_addresses: Vec<SocketAddr>,
    /// Indices into the snapshot's allocations of those whose relayed address is a candidate.
    pub(crate) allocations: Vec<usize>,
    /// Indices into `report.findings` about the session or its allocations.
    pub(crate) findings: Vec<usize>,
    /// Its ladder, laid out when the session is first opened ([`Index::ladder`]): most sessions of a big
    /// capture are never opened, and a ladder takes a row per message.
    pub(crate) ladder: OnceCell<Ladder>,
    /// Per timeline event: a check sent after the sender's first success on that pair (RFC 7675 consent);
    /// worked out when the timeline is first shown ([`Index::consent`]).
    consent: OnceCell<Vec<bool>>,
}

/// Per-allocation facts for rows, saving and findings.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllocationScope {
    pub(crate) findings: Vec<usize>,
    /// Session using it, if any.
    pub(crate) session: Option<usize>,
}

/// An allocation's client and relayed addresses, sorted, each once ([`address_set`]): worked out from its
/// brief when needed (saving it), not kept per allocation.
pub(crate) fn allocation_addresses(a: &AllocationBrief) -> Vec<SocketAddr> {
    let mut addresses = a.relayed.to_vec();
    addresses.push(a.client);
    address_set(addresses)
}

/// A scope's few addresses as a sorted list with no spare room, each once: a `HashSet` of them took ~3× the
/// memory, and a busy server's capture has tens of thousands of sessions and allocations (a list of a few
/// is searched as fast).
fn address_set(mut v: Vec<SocketAddr>) -> Vec<SocketAddr> {
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
    v
}

/// Lookups derived from one snapshot.
#[derive(Debug, Default)]
pub struct Index {
    pub rows: Vec<RowRef>,
    pub(crate) sessions: Vec<SessionScope>,
    pub(crate) allocations: Vec<AllocationScope>,
    /// Findings about the capture as a whole.
    pub capture_findings: Vec<usize>,
    /// (frame, message index) sorted by frame, for evidence jumps, when the messages' frames do not
    /// already rise with their index (merged inputs). Otherwise (one input) the records are searched
    /// directly, and this is empty: 16 bytes a message saved.
    by_frame: Vec<(u64, u32)>,
    /// Whether `by_frame` is the lookup (the frames do not rise with the index).
    frames_unordered: bool,
    /// (fingerprint of the transaction id, message index) of every STUN message, sorted: a transaction's
    /// messages are a run, in capture order, among the few others that share its fingerprint. 8 bytes a
    /// message, where the id itself took 16 and a map of lists ~50. The fingerprint is keyed per run
    /// ([`Index::tx_hasher`]), so a capture cannot crowd one id's run on purpose. Made the first time `n`
    /// or `p` asks ([`Index::transaction_of`]), not with the index: it was the index's largest list (15 MB
    /// of a 4 GB capture's), and its pass reads every message's bytes back.
    transactions: OnceCell<Vec<(u32, u32)>>,
    tx_hasher: RandomState,
    /// The earliest timestamp of the capture (all times are shown relative to it).
    pub(crate) t0: f64,
    /// The last listed message's time (epoch seconds) and frame: where the listing was bounded (live
    /// capture, or a read with no temporary file), a session active after it is missing messages.
    pub(crate) last_listed: Option<(f64, u64)>,
}

impl Index {
    pub(crate) fn build(snapshot: &Snapshot) -> Index {
        let (report, model) = (&snapshot.report, &*snapshot.model);
        let t0 = report
            .inputs
            .iter()
            .filter_map(|i| i.first_ts)
            .fold(f64::INFINITY, f64::min);
        let t0 = if t0.is_finite() {
            t0
        } else {
            model.first_ts.map_or(0.0, |t| t.as_secs_f64())
        };
        let allocs: Vec<&AllocationBrief> = snapshot.allocation_briefs().collect();
        let mut allocations: Vec<AllocationScope> = vec![AllocationScope::default(); allocs.len()];
        // Allocations by relayed address, each the first in report order (as a search from the start finds):
        // searching the list per session was quadratic on a busy server's capture. What each finding is
        // about was worked out with the snapshot (`findings::Findings`).
        let mut relayed_by = FirstOf::default();
        for (ai, a) in allocs.iter().enumerate() {
            for r in &a.relayed {
                relayed_by.insert(r, ai);
            }
        }
        let relayed_by =
            |r: &SocketAddr| relayed_by.get(r, allocs.len(), |ai| allocs[ai].relayed.contains(r));
        let briefs: Vec<&SessionBrief> = snapshot.session_briefs().collect();
        let mut sessions: Vec<SessionScope> = briefs
            .iter()
            .enumerate()
            .map(|(si, s)| session_scope(si, s, &allocs, relayed_by, &mut allocations))
            .collect();

        let mut capture_findings = Vec::new();
        for (fi, about) in snapshot.findings.abouts().enumerate() {
            match about {
                About::Session(si) => {
                    if let Some(s) = sessions.get_mut(si as usize) {
                        s.findings.push(fi);
                    }
                }
                About::Allocation(ai) => {
                    if let Some(a) = allocations.get_mut(ai as usize) {
                        a.findings.push(fi);
                        if let Some(s) = a.session.and_then(|si| sessions.get_mut(si)) {
                            s.findings.push(fi);
                        }
                    }
                }
                About::Capture => capture_findings.push(fi),
                About::Unlisted => {}
            }
        }

        // Messages: one pass, each message tested against the sessions that own one of its addresses. Most
        // addresses have one owner: it is kept inline, and a list made only for the others (a list per
        // address was ~130 bytes each, at the index's peak on a busy server's capture). Keyed by a 64-bit
        // hash of the address (16 bytes an entry where the address and a word took 40; built at the UI's
        // peak, ~10 MB so on the call-dense 4 GB capture): two addresses sharing one only make a session a
        // candidate for both, and a candidate owns the address only if its sorted list holds it.
        let hash = FastHash::default();
        let mut owners: HashMap<u64, u32, FastHash> = HashMap::default();
        let mut more_owners: HashMap<u64, Vec<u32>, FastHash> = HashMap::default();
        for (si, (s, b)) in sessions.iter().zip(&briefs).enumerate() {
            let Ok(si) = u32::try_from(si) else { break };
            for a in b.addresses.iter().chain(&s.extra_addresses) {
                let h = hash.hash_one(a);
                if let Some(&first) = owners.get(&h) {
                    let list = more_owners.entry(h).or_insert_with(|| vec![first]);
                    if list.last() != Some(&si) {
                        list.push(si);
                    }
                } else {
                    owners.insert(h, si);
                }
            }
        }
        let ufrags: Vec<[&str; 2]> = briefs.iter().map(|s| [s.ufrag(0), s.ufrag(1)]).collect();
        // Binding requests whose USERNAME names another session's agents, and so their responses.
        let mut foreign: Vec<HashSet<TransactionId>> = vec![HashSet::new(); sessions.len()];
        let mut last_listed = None;
        // Frames rise with the message index in one input's capture; merged inputs number theirs apart.
        let mut previous_frame = 0u64;
        let mut frames_unordered = false;
        let tx_hasher = RandomState::new();
        let mut candidates: Vec<usize> = Vec::new();
        for (mi, m) in model.messages.indexed() {
            let Ok(i) = u32::try_from(mi) else { break };
            let m = &m;
            frames_unordered |= m.frame < previous_frame;
            previous_frame = m.frame;
            last_listed = Some((m.ts.as_secs_f64(), m.frame));
            candidates.clear();
            let path = model.path(m);
            for a in [path.src, path.dst] {
                let h = hash.hash_one(a);
                let owning = |&si: &u32| {
                    let si = si as usize;
                    let owns = |list: &[SocketAddr]| list.binary_search(&a).is_ok();
                    (owns(&briefs[si].addresses) || owns(&sessions[si].extra_addresses)).then_some(si)
                };
                match more_owners.get(&h) {
                    Some(list) => candidates.extend(list.iter().filter_map(owning)),
                    None => candidates.extend(owners.get(&h).and_then(owning)),
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            let binding = if candidates.is_empty() {
                Binding::Other
            } else {
                Binding::of(model, m)
            };
            for &si in &candidates {
                if belongs(&binding, ufrags[si], &mut foreign[si]) {
                    sessions[si].messages.push(i);
                }
            }
        }
        // Each list's spare room goes (a Vec grown by pushes holds up to twice what it keeps).
        for s in &mut sessions {
            s.messages.shrink_to_fit();
        }
        let by_frame = if frames_unordered {
            let mut by_frame: Vec<(u64, u32)> = model
                .messages
                .indexed()
                .map_while(|(i, m)| Some((m.frame, u32::try_from(i).ok()?)))
                .collect();
            by_frame.sort_unstable();
            by_frame
        } else {
            Vec::new()
        };

        let mut rows: Vec<RowRef> = (0..briefs.len()).map(RowRef::Session).collect();
        rows.extend(
            allocations
                .iter()
                .enumerate()
                .filter(|(_, a)| a.session.is_none())
                .map(|(i, _)| RowRef::Allocation(i)),
        );
        Index {
            rows,
            sessions,
            allocations,
            capture_findings,
            by_frame,
            frames_unordered,
            transactions: OnceCell::new(),
            tx_hasher,
            t0,
            last_listed,
        }
    }

    /// The message to show for an evidence frame: the innermost STUN message of that frame (a relayed
    /// check rather than the ChannelData carrying it), else whatever was recorded for it.
    pub(crate) fn message_at_frame(&self, model: &Model, frame: u64) -> Option<usize> {
        let same: Box<dyn Iterator<Item = usize>> = if self.frames_unordered {
            let start = self.by_frame.partition_point(|&(f, _)| f < frame);
            Box::new(
                self.by_frame[start..]
                    .iter()
                    .take_while(move |&&(f, _)| f == frame)
                    .map(|&(_, i)| i as usize),
            )
        } else {
            // The records' frames rise with their index: the first at or past `frame`, by bisection
            // (each probe reads one record, its chunk read back if it was spilled).
            let frame_at = |i: usize| model.messages.get(i).map_or(u64::MAX, |m| m.frame);
            let (mut lo, mut hi) = (0, model.messages.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if frame_at(mid) < frame {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Box::new((lo..model.messages.len()).take_while(move |&i| frame_at(i) == frame))
        };
        let mut fallback = None;
        let mut best = None;
        for i in same {
            fallback.get_or_insert(i);
            if model.messages.get(i).is_some_and(|m| m.is_stun()) {
                best = Some(i);
            }
        }
        best.or(fallback)
    }

    /// Session `si`'s ladder, laid out the first time it is asked for (from the snapshot this index was
    /// built from).
    pub(crate) fn ladder(&self, si: usize, snapshot: &Snapshot) -> Option<&Ladder> {
        let scope = self.sessions.get(si)?;
        let s = snapshot.session(si)?;
        Some(scope.ladder.get_or_init(|| build_ladder(scope, s, snapshot)))
    }

    /// Ladders and consent flags laid out stay kept while at most `bound` sessions have them; past that,
    /// all but session `keep`'s are let go (laid out again when next shown): a ladder takes a row per
    /// message, and a user may open hundreds of sessions in a run. Returns how many sessions' went.
    pub(crate) fn forget_ladders(&mut self, bound: usize, keep: Option<usize>) -> usize {
        let laid = |s: &SessionScope| s.ladder.get().is_some() || s.consent.get().is_some();
        if self.sessions.iter().filter(|s| laid(s)).count() <= bound {
            return 0;
        }
        let mut gone = 0;
        for (si, scope) in self.sessions.iter_mut().enumerate() {
            if laid(scope) && keep != Some(si) {
                scope.ladder.take();
                scope.consent.take();
                gone += 1;
            }
        }
        gone
    }

    /// The frames of allocation `ai` for saving: its lifecycle's, errors', permissions' and channels'
    /// (from the allocation whole) and its findings' evidence.
    pub(crate) fn allocation_frames(&self, ai: usize, snapshot: &Snapshot) -> Vec<u64> {
        let mut frames: Vec<u64> = Vec::new();
        if let Some(r) = snapshot.allocation(ai) {
            frames.extend(r.created_frame);
            frames.extend(r.events.iter().filter_map(|e| e.frame));
            frames.extend(r.errors.iter().map(|e| e.frame));
            frames.extend(r.permissions.iter().flat_map(|p| p.frames.iter().copied()));
            frames.extend(r.channels.iter().flat_map(|c| c.frames.iter().copied()));
        }
        frames.extend(self.evidence_frames(RowRef::Allocation(ai), snapshot));
        frames.sort_unstable();
        frames.dedup();
        frames
    }

    /// Per event of session `si`'s timeline (`s`, the session whole: `Snapshot::session`), whether it is
    /// a consent check; worked out the first time it is asked for.
    pub(crate) fn consent(&self, si: usize, s: &SessionReport) -> &[bool] {
        self.sessions.get(si).map_or(&[], |scope| {
            scope.consent.get_or_init(|| consent_flags(s)).as_slice()
        })
    }

    /// Messages with the same transaction id as message `mi` (including itself), in capture order.
    pub(crate) fn transaction_of(&self, model: &Model, mi: usize) -> Vec<usize> {
        let Some(id) = model.messages.get(mi).and_then(|m| model.transaction_id(&m)) else {
            return Vec::new();
        };
        let f = tx_fingerprint(&self.tx_hasher, &id);
        let all = self.transactions.get_or_init(|| self.transaction_list(model));
        let start = all.partition_point(|&(t, _)| t < f);
        all[start..]
            .iter()
            .take_while(|&&(t, _)| t == f)
            .map(|&(_, i)| i as usize)
            .filter(|&i| {
                model
                    .messages
                    .get(i)
                    .is_some_and(|m| model.transaction_id(&m) == Some(id))
            })
            .collect()
    }

    /// The list behind [`Index::transactions`], from every listed message.
    fn transaction_list(&self, model: &Model) -> Vec<(u32, u32)> {
        // Room for every STUN message listed (the listing counts ChannelData apart), not a doubling
        // `Vec`'s up to twice that.
        let channel_data = model.listed.channel_data;
        let stun_listed = u64::try_from(model.messages.len()).map_or(0, |n| n.saturating_sub(channel_data));
        let mut list: Vec<(u32, u32)> = Vec::with_capacity(usize::try_from(stun_listed).unwrap_or(0));
        for (mi, m) in model.messages.indexed() {
            let Ok(i) = u32::try_from(mi) else { break };
            if let Some(id) = model.transaction_id(&m) {
                list.push((tx_fingerprint(&self.tx_hasher, &id), i));
            }
        }
        list.sort_unstable();
        list
    }

    /// The evidence frames of the findings about the thing `row` shows ([`Index::row_findings`]).
    /// A folded finding is read back for it, not kept.
    pub(crate) fn evidence_frames<'a>(
        &'a self,
        row: RowRef,
        snapshot: &'a Snapshot,
    ) -> impl Iterator<Item = u64> + 'a {
        self.row_findings(row)
            .iter()
            .filter_map(|&f| snapshot.findings.read(&snapshot.model, f))
            .flat_map(|f| f.frames.clone())
    }

    /// Every transport address that belongs to session `si` (see [`SessionScope::extra_addresses`]), sorted,
    /// each once.
    pub(crate) fn session_addresses(&self, si: usize, snapshot: &Snapshot) -> Vec<SocketAddr> {
        let brief = snapshot.session_brief(si);
        let scope = self.sessions.get(si);
        let all = brief
            .map(|b| b.addresses.as_slice())
            .unwrap_or_default()
            .iter()
            .chain(scope.map(|x| x.extra_addresses.as_slice()).unwrap_or_default());
        address_set(all.copied().collect())
    }

    /// Findings about the thing a home row shows.
    pub(crate) fn row_findings(&self, row: RowRef) -> &[usize] {
        match row {
            RowRef::Session(i) => self.sessions.get(i).map_or(&[], |s| s.findings.as_slice()),
            RowRef::Allocation(i) => self.allocations.get(i).map_or(&[], |a| a.findings.as_slice()),
        }
    }
}

fn session_scope(
    si: usize,
    s: &SessionBrief,
    allocs: &[&AllocationBrief],
    relayed_by: impl Fn(&SocketAddr) -> Option<usize>,
    allocations: &mut [AllocationScope],
) -> SessionScope {
    let mut scope = SessionScope::default();
    let mut extra = Vec::new();
    for c in &s.relay_candidates {
        if let Some(ai) = relayed_by(c) {
            if !scope.allocations.contains(&ai) {
                scope.allocations.push(ai);
            }
            allocations[ai].session.get_or_insert(si);
            extra.extend(allocation_addresses(allocs[ai]));
        }
    }
    // The brief's list is sorted (`SessionBrief::of`).
    extra.retain(|a| s.addresses.binary_search(a).is_err());
    scope.extra_addresses = address_set(extra);
    scope
}

/// A transaction id's fingerprint in the index ([`Index::transactions`]).
fn tx_fingerprint(hasher: &RandomState, id: &TransactionId) -> u32 {
    // The hash's high half (it always fits): a keyed hash's bits are all alike.
    u32::try_from(hasher.hash_one(id.0) >> 32).unwrap_or(0)
}

/// What [`belongs`] reads of a message: worked out once per message, however many sessions share its
/// addresses (a binding request is decoded again for its USERNAME, and for nothing else).
enum Binding {
    /// Not a binding message: it belongs wherever its addresses do.
    Other,
    /// A binding request with its USERNAME (None: it carries none).
    Request { id: TransactionId, user: Option<String> },
    /// A binding response (or indication): it follows its request.
    Answer(Option<TransactionId>),
}

impl Binding {
    fn of(model: &Model, m: &MessageRecord) -> Binding {
        let Body::Stun { method, class, .. } = m.body else {
            return Binding::Other;
        };
        if method != Method::BINDING {
            return Binding::Other;
        }
        match (class, model.stun(m)) {
            (Class::Request, Some(msg)) => Binding::Request {
                id: msg.transaction_id,
                user: match msg.attr_value(stun::ATTR_USERNAME) {
                    Some(AttrValue::Text(user)) => Some(user.clone()),
                    _ => None,
                },
            },
            _ => Binding::Answer(model.transaction_id(m)),
        }
    }
}

/// Whether message `m` (which touches one of the session's addresses) is part of the session: binding
/// requests must name the session's agents in USERNAME when they carry one (an ICE restart reuses
/// addresses with new ufrags), and responses follow their requests.
fn belongs(b: &Binding, ufrags: [&str; 2], foreign: &mut HashSet<TransactionId>) -> bool {
    match b {
        Binding::Other | Binding::Request { user: None, .. } => true,
        Binding::Request { id, user: Some(user) } => {
            // RFC 8445 §7.2.2: USERNAME is "receiver-ufrag:sender-ufrag".
            let mut parts = user.splitn(2, ':');
            let (r, s) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let ours = (r == ufrags[0] && s == ufrags[1]) || (r == ufrags[1] && s == ufrags[0]);
            if !ours {
                foreign.insert(*id);
            }
            ours
        }
        Binding::Answer(id) => id.is_none_or(|id| !foreign.contains(&id)),
    }
}

fn consent_flags(s: &SessionReport) -> Vec<bool> {
    // A success event's `from` is the responder, so the sender of the check it answers is the other agent.
    let mut succeeded: HashSet<(usize, &str)> = HashSet::new();
    s.timeline
        .iter()
        .map(|e| match e.event {
            TimelineKind::Success => {
                if let Some(other) = s.agents.iter().find(|a| *a.ufrag != *e.from) {
                    succeeded.insert((e.pair, other.ufrag.as_str()));
                }
                false
            }
            TimelineKind::Check => succeeded.contains(&(e.pair, &*e.from)),
            _ => false,
        })
        .collect()
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::capture::{LinkType, Packet, Timestamp};
    use crate::wire::credentials::Keyring;
    use crate::wire::encode::MessageBuilder;
    use crate::wire::stun::Class;

    /// A bare IPv4/UDP packet (LINKTYPE_RAW), checksums left zero.
    fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        let total = (28 + payload.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src.0);
        p.extend_from_slice(&dst.0);
        p.extend_from_slice(&src.1.to_be_bytes());
        p.extend_from_slice(&dst.1.to_be_bytes());
        p.extend_from_slice(&(total - 20).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// An ICE restart reuses the addresses with new ufrags (RFC 8445 §9): each session lists its own
    /// checks and their answers only, although both sessions own the same addresses. Worked out by hand:
    /// frames 1-2 are the first session's check and success, 3-4 the restarted session's.
    #[test]
    fn a_restarted_session_lists_only_its_own_checks() {
        let snapshot = restarted();
        let model = &*snapshot.model;
        let index = Index::build(&snapshot);
        let frames_of = |ufrag: &str| -> Vec<u64> {
            let si = snapshot
                .session_briefs()
                .position(|s| s.ufrags.iter().any(|g| g == ufrag))
                .unwrap_or_else(|| panic!("a session with {ufrag}"));
            index.sessions[si]
                .messages
                .iter()
                .filter_map(|&mi| model.messages.get(mi as usize))
                .map(|m| m.frame)
                .collect()
        };
        assert_eq!(frames_of("AAAA"), [1, 2]);
        assert_eq!(frames_of("CCCC"), [3, 4]);
    }

    /// An evidence frame's message, found the simple way: the last STUN message recorded for the frame,
    /// else the first message.
    fn at_frame_by_scan(model: &Model, frame: u64) -> Option<usize> {
        let same: Vec<(usize, MessageRecord)> = model
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.frame == frame)
            .collect();
        same.iter()
            .rev()
            .find(|(_, m)| m.is_stun())
            .or(same.first())
            .map(|&(i, _)| i)
    }

    /// Evidence jumps: with one input the records' frames rise with their index and are bisected, with no
    /// list kept; merged inputs number their frames apart, and a sorted list is kept. Both find what a scan
    /// of every record finds, and nothing for a frame no message has.
    #[test]
    fn a_frame_finds_its_message_in_one_input_and_in_merged_ones() {
        let one = restarted();
        let index = Index::build(&one);
        assert!(!index.frames_unordered && index.by_frame.is_empty());
        for frame in 0..=5 {
            let want = at_frame_by_scan(&one.model, frame);
            assert_eq!(want.is_some(), (1..=4).contains(&frame), "frame {frame}");
            assert_eq!(index.message_at_frame(&one.model, frame), want, "frame {frame}");
        }

        // Input 0's frames 1-3, then input 1's frame 1 and 2: the frames fall back at the fourth.
        let (a, b, c) = (
            ([192, 0, 2, 1], 50000),
            ([192, 0, 2, 2], 3478),
            ([192, 0, 2, 3], 50002),
        );
        let req = |id: u8| {
            MessageBuilder::request(Method::BINDING, TransactionId([id; 12]))
                .finish()
                .unwrap()
        };
        let merged = snapshot_of(vec![
            (0, 1, udp(a, b, &req(1))),
            (0, 2, udp(a, b, &req(2))),
            (0, 3, udp(a, b, &req(3))),
            (1, 1, udp(c, b, &req(4))),
            (1, 2, udp(c, b, &req(5))),
        ]);
        let index = Index::build(&merged);
        assert!(index.frames_unordered);
        assert_eq!(index.by_frame.len(), 5);
        for frame in 0..=4 {
            let want = at_frame_by_scan(&merged.model, frame);
            assert_eq!(want.is_some(), (1..=3).contains(&frame), "frame {frame}");
            assert_eq!(
                index.message_at_frame(&merged.model, frame),
                want,
                "frame {frame}"
            );
        }
    }

    /// `n` and `p` walk a transaction: the index's fingerprints narrow the search, the ids decide it.
    /// With every fingerprint made equal, a message's transaction is still exactly the messages with its id.
    #[test]
    fn a_transaction_is_its_id_s_messages_whatever_the_fingerprints() {
        let one = restarted();
        let mut index = Index::build(&one);
        let model = &one.model;
        let by_scan = |mi: usize| -> Vec<usize> {
            let id = model.messages.get(mi).and_then(|m| model.transaction_id(&m));
            (0..model.messages.len())
                .filter(|&i| model.messages.get(i).and_then(|m| model.transaction_id(&m)) == id)
                .collect()
        };
        for mi in 0..4 {
            assert_eq!(index.transaction_of(model, mi), by_scan(mi), "message {mi}");
            assert_eq!(by_scan(mi).len(), 2, "a check and its answer");
        }
        // Every message given the fingerprint of the first check's id: its run holds all four.
        let id = model
            .messages
            .get(0)
            .and_then(|m| model.transaction_id(&m))
            .expect("an id");
        let f = tx_fingerprint(&index.tx_hasher, &id);
        let mut list = index.transaction_list(model);
        for t in &mut list {
            t.0 = f;
        }
        list.sort_unstable();
        index.transactions = OnceCell::from(list);
        for mi in 0..2 {
            assert_eq!(
                index.transaction_of(model, mi),
                by_scan(mi),
                "message {mi}, one fingerprint"
            );
        }
    }

    /// Past the bound, ladders laid out go but the kept session's; within it, none.
    #[test]
    fn ladders_past_the_bound_go_but_the_open_sessions() {
        let snapshot = restarted();
        let mut index = Index::build(&snapshot);
        assert_eq!(snapshot.session_count(), 2);
        for si in 0..2 {
            assert!(index.ladder(si, &snapshot).is_some());
        }
        assert_eq!(index.forget_ladders(2, None), 0);
        assert_eq!(index.forget_ladders(1, Some(1)), 1);
        assert!(index.sessions[0].ladder.get().is_none());
        assert!(index.sessions[1].ladder.get().is_some());
    }

    /// Two sessions on the same addresses, the second an ICE restart of the first (new ufrags); worked out
    /// by hand: frames 1-2 are the first session's check and success, 3-4 the restarted session's.
    fn restarted() -> Snapshot {
        let (a, b) = (([192, 0, 2, 1], 50000), ([192, 0, 2, 2], 50001));
        let check = |id: u8, user: &str| {
            let mut m = MessageBuilder::request(Method::BINDING, TransactionId([id; 12]));
            m.text(stun::ATTR_USERNAME, user);
            m.finish().unwrap()
        };
        let ok = |id: u8| {
            MessageBuilder::new(Method::BINDING, Class::Success, TransactionId([id; 12]))
                .finish()
                .unwrap()
        };
        let packets = [
            udp(a, b, &check(1, "BBBB:AAAA")),
            udp(b, a, &ok(1)),
            udp(a, b, &check(2, "DDDD:CCCC")),
            udp(b, a, &ok(2)),
        ];
        snapshot_of(
            packets
                .iter()
                .enumerate()
                .map(|(i, p)| (0, i as u64 + 1, p.clone()))
                .collect(),
        )
    }

    /// A relayed session's addresses (what saving it selects packets by) are its brief's, and its
    /// allocations' clients and relayed addresses: on symmetric-relay the clients' addresses toward the
    /// TURN server (behind their NATs) are in no candidate or pair, so only the allocations bring them.
    #[test]
    fn a_sessions_addresses_hold_its_allocations() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/symmetric-relay/capture.pcap"
        )
        .to_string();
        let mut reader = crate::capture::file::FileReader::open(&[path], None).expect("fixture opens");
        let mut an = Analyzer::new(Keyring::new());
        reader.for_each(&mut |p| {
            an.ingest(p);
            true
        });
        an.finish();
        let report = crate::report::Report::build(an.model(), &[], an.net_stats());
        let snapshot = Snapshot::new(report, std::sync::Arc::new(an.into_model()), Default::default())
            .expect("nothing folded");
        let index = Index::build(&snapshot);
        let brief = snapshot.session_brief(0).expect("a session");
        let scope = &index.sessions[0];
        assert!(!scope.allocations.is_empty(), "its relay candidates' allocations");
        let theirs: Vec<SocketAddr> = scope
            .allocations
            .iter()
            .filter_map(|&ai| snapshot.allocation_brief(ai))
            .flat_map(allocation_addresses)
            .collect();
        assert!(
            theirs.iter().any(|a| !brief.addresses.contains(a)),
            "an allocation's client is in no candidate: {theirs:?}"
        );
        let all = index.session_addresses(0, &snapshot);
        assert!(theirs.iter().chain(&brief.addresses).all(|a| all.contains(a)));
        assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        assert_eq!(
            all.len(),
            address_set([theirs, brief.addresses.clone()].concat()).len()
        );
    }

    /// The snapshot of `packets` (input, frame, IPv4 packet), analysed in the order given, a second apart.
    fn snapshot_of(packets: Vec<(u16, u64, Vec<u8>)>) -> Snapshot {
        let mut an = Analyzer::new(Keyring::new());
        an.set_inputs(2);
        for (i, (input, frame, data)) in packets.iter().enumerate() {
            an.ingest(&Packet {
                ts: Timestamp(1_000_000_000 * (i as u64 + 1)),
                frame: *frame,
                input: *input,
                link_type: LinkType::RawIp,
                data,
                orig_len: data.len() as u32,
            });
        }
        an.finish();
        let report = crate::report::Report::build(an.model(), &[], an.net_stats());
        Snapshot::new(report, std::sync::Arc::new(an.into_model()), Default::default())
            .expect("nothing folded")
    }
}
