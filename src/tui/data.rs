//! What the terminal UI shows: a [`Snapshot`] of the report and the model, and an [`Index`] derived from it
//! once per snapshot (never per frame): the home rows, each session's messages and ladder, findings per
//! session and allocation, and lookups by frame and transaction.
//!
//! A file run makes one snapshot; a live run replaces it periodically with a report rebuilt from the
//! growing model, so nothing here may hold on to positions that a new snapshot could move (the UI keeps
//! session ids and allocation addresses, not row numbers). Pure: no terminal, no files.
use crate::analysis::findings::{Finding, Severity, Subject};
use crate::analysis::sessions::SessionReport;
use crate::analysis::{Body, MessageRecord, Model};
use crate::report::turn::AllocationReport;
use crate::report::Report;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method, TransactionId};
use std::collections::{HashMap, HashSet};
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
        // The messages' bytes, which the views decode again (`Model::stun`), and their paths.
        raw: model.raw.clone(),
        paths: model.paths.clone(),
        unreachable: model.unreachable.clone(),
        first_ts: model.first_ts,
        last_ts: model.last_ts,
        ..Model::default()
    }
}

/// One consistent view of a capture: the report every output renders, plus the model for what the report
/// leaves out (raw message bytes, attribute offsets).
pub struct Snapshot {
    pub report: Report,
    pub model: Arc<Model>,
    pub source: Source,
}

impl Snapshot {
    pub fn new(report: Report, model: Arc<Model>, source: Source) -> Snapshot {
        Snapshot {
            report,
            model,
            source,
        }
    }
}

/// A row of the home list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRef {
    /// Index into `report.sessions`.
    Session(usize),
    /// Index into `report.turn.allocations` (only allocations no session used).
    Allocation(usize),
}

/// Which side of the ladder a column is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    Middle,
    B,
}

#[derive(Clone, Debug)]
pub struct Column {
    /// Short tag drawn above the lifeline: `A1`, `T1`, `B2`, `S1`.
    pub tag: String,
    pub address: SocketAddr,
    /// `host 192.168.1.10:52338`, `TURN 203.0.113.1:3478 (relays :49185 :49238)`.
    pub detail: String,
    pub side: Side,
}

/// One arrow of the ladder.
#[derive(Clone, Copy, Debug)]
pub struct LadderRow {
    /// Index into `model.messages`.
    pub msg: usize,
    pub from: usize,
    pub to: usize,
    /// The TURN server column a relayed message passed through.
    pub via: Option<usize>,
    /// ChannelData that carried no STUN (media or application data): hidden unless asked for.
    pub media: bool,
}

/// Everything the session view needs that the report does not hold directly.
#[derive(Clone, Debug, Default)]
pub struct SessionScope {
    /// Messages of the session (its checks, its allocations' TURN traffic, its agents' STUN), indices into
    /// `model.messages` in capture order.
    pub messages: Vec<usize>,
    /// Every transport address that belongs to the session: its agents' candidates and NAT mappings, the
    /// relayed addresses and clients of its allocations.
    pub addresses: HashSet<SocketAddr>,
    /// Indices into `report.turn.allocations` of the allocations whose relayed address is a candidate.
    pub allocations: Vec<usize>,
    /// Indices into `report.findings` about the session or its allocations.
    pub findings: Vec<usize>,
    pub columns: Vec<Column>,
    pub ladder: Vec<LadderRow>,
    /// Rows of `ladder` that are not media (the default view).
    pub ladder_signalling: Vec<usize>,
    /// Per timeline event: a check sent after the sender's first success on that pair (RFC 7675 consent).
    pub consent: Vec<bool>,
    /// Frames of the session's evidence (messages, timeline, findings) for saving.
    pub frames: Vec<u64>,
}

/// Per-allocation facts for rows, saving and findings.
#[derive(Clone, Debug, Default)]
pub struct AllocationScope {
    pub findings: Vec<usize>,
    /// Session using it, if any.
    pub session: Option<usize>,
    pub addresses: HashSet<SocketAddr>,
    pub frames: Vec<u64>,
}

/// Lookups derived from one snapshot.
#[derive(Debug, Default)]
pub struct Index {
    pub rows: Vec<RowRef>,
    pub sessions: Vec<SessionScope>,
    pub allocations: Vec<AllocationScope>,
    /// Findings about the capture as a whole.
    pub capture_findings: Vec<usize>,
    /// (frame, message index) sorted by frame, for evidence jumps.
    by_frame: Vec<(u64, usize)>,
    /// Messages of each transaction, in capture order.
    transactions: HashMap<TransactionId, Vec<usize>>,
    /// The earliest timestamp of the capture (all times are shown relative to it).
    pub t0: f64,
}

fn parse(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

/// Candidate types in the order columns are laid out from the edge of the ladder inward.
fn type_rank(t: &str) -> u8 {
    match t {
        "host" => 0,
        "srflx" => 1,
        "prflx" => 2,
        "nat-mapping" => 3,
        _ => 4,
    }
}

fn is_carrier(m: &MessageRecord) -> bool {
    match &m.body {
        Body::ChannelData { .. } => true,
        Body::Stun { method, class, .. } => {
            *class == Class::Indication && (*method == Method::SEND || *method == Method::DATA)
        }
    }
}

impl Index {
    pub fn build(report: &Report, model: &Model) -> Index {
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
        let allocs = &report.turn.allocations;
        let mut allocations: Vec<AllocationScope> = allocs
            .iter()
            .map(|a| {
                let mut addresses: HashSet<SocketAddr> = a.relayed.iter().filter_map(|r| parse(r)).collect();
                addresses.extend(parse(&a.client));
                AllocationScope {
                    addresses,
                    ..Default::default()
                }
            })
            .collect();
        let mut sessions: Vec<SessionScope> = report
            .sessions
            .iter()
            .enumerate()
            .map(|(si, s)| session_scope(si, s, allocs, &mut allocations))
            .collect();

        let mut capture_findings = Vec::new();
        for (fi, f) in report.findings.iter().enumerate() {
            match &f.subject {
                Subject::Session { id } => {
                    if let Some(si) = report.sessions.iter().position(|s| &s.id == id) {
                        sessions[si].findings.push(fi);
                    }
                }
                Subject::Allocation { client, server, .. } => {
                    if let Some(ai) = allocs
                        .iter()
                        .position(|a| &a.client == client && &a.server == server)
                    {
                        allocations[ai].findings.push(fi);
                        if let Some(si) = allocations[ai].session {
                            sessions[si].findings.push(fi);
                        }
                    }
                }
                Subject::Capture => capture_findings.push(fi),
            }
        }

        // Messages: one pass, each message tested against the sessions that own one of its addresses.
        let mut owners: HashMap<SocketAddr, Vec<usize>> = HashMap::new();
        for (si, s) in sessions.iter().enumerate() {
            for a in &s.addresses {
                owners.entry(*a).or_default().push(si);
            }
        }
        let ufrags: Vec<[&str; 2]> = report
            .sessions
            .iter()
            .map(|s| {
                [
                    s.agents.first().map_or("", |a| a.ufrag.as_str()),
                    s.agents.get(1).map_or("", |a| a.ufrag.as_str()),
                ]
            })
            .collect();
        // Binding requests whose USERNAME names another session's agents, and so their responses.
        let mut foreign: Vec<HashSet<TransactionId>> = vec![HashSet::new(); sessions.len()];
        let mut by_frame = Vec::with_capacity(model.messages.len());
        let mut transactions: HashMap<TransactionId, Vec<usize>> = HashMap::new();
        let mut candidates: Vec<usize> = Vec::new();
        for (mi, m) in model.messages.iter().enumerate() {
            by_frame.push((m.frame, mi));
            if let Some(id) = model.transaction_id(m) {
                transactions.entry(id).or_default().push(mi);
            }
            candidates.clear();
            let path = model.path(m);
            for a in [path.src, path.dst] {
                if let Some(list) = owners.get(&a) {
                    candidates.extend(list.iter().copied());
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
                    sessions[si].messages.push(mi);
                }
            }
        }
        by_frame.sort_by_key(|&(f, i)| (f, i));

        for (si, s) in sessions.iter_mut().enumerate() {
            let sr = &report.sessions[si];
            build_ladder(s, sr, allocs, model);
            s.consent = consent_flags(sr);
            let mut frames: Vec<u64> = s.messages.iter().map(|&i| model.messages[i].frame).collect();
            frames.extend(sr.timeline.iter().map(|e| e.frame));
            frames.extend(
                s.findings
                    .iter()
                    .flat_map(|&f| report.findings[f].frames.iter().copied()),
            );
            frames.sort_unstable();
            frames.dedup();
            s.frames = frames;
        }
        for (ai, a) in allocations.iter_mut().enumerate() {
            let r = &allocs[ai];
            let mut frames: Vec<u64> = Vec::new();
            frames.extend(r.created_frame);
            frames.extend(r.events.iter().filter_map(|e| e.frame));
            frames.extend(r.errors.iter().map(|e| e.frame));
            frames.extend(r.permissions.iter().flat_map(|p| p.frames.iter().copied()));
            frames.extend(r.channels.iter().flat_map(|c| c.frames.iter().copied()));
            frames.extend(
                a.findings
                    .iter()
                    .flat_map(|&f| report.findings[f].frames.iter().copied()),
            );
            frames.sort_unstable();
            frames.dedup();
            a.frames = frames;
        }

        let mut rows: Vec<RowRef> = (0..report.sessions.len()).map(RowRef::Session).collect();
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
            transactions,
            t0,
        }
    }

    /// The message to show for an evidence frame: the innermost STUN message of that frame (a relayed
    /// check rather than the ChannelData carrying it), else whatever was recorded for it.
    pub fn message_at_frame(&self, model: &Model, frame: u64) -> Option<usize> {
        let start = self.by_frame.partition_point(|&(f, _)| f < frame);
        let same = self.by_frame[start..].iter().take_while(|&&(f, _)| f == frame);
        let mut fallback = None;
        let mut best = None;
        for &(_, i) in same {
            fallback.get_or_insert(i);
            if model.messages.get(i).is_some_and(MessageRecord::is_stun) {
                best = Some(i);
            }
        }
        best.or(fallback)
    }

    /// Messages with the same transaction id as message `mi` (including itself), in capture order.
    pub fn transaction_of(&self, model: &Model, mi: usize) -> &[usize] {
        model
            .messages
            .get(mi)
            .and_then(|m| model.transaction_id(m))
            .and_then(|id| self.transactions.get(&id))
            .map_or(&[], Vec::as_slice)
    }

    /// Findings about the thing a home row shows.
    pub fn row_findings(&self, row: RowRef) -> &[usize] {
        match row {
            RowRef::Session(i) => self.sessions.get(i).map_or(&[], |s| s.findings.as_slice()),
            RowRef::Allocation(i) => self.allocations.get(i).map_or(&[], |a| a.findings.as_slice()),
        }
    }
}

/// Counts of findings by severity: (errors, warnings, infos).
pub fn severity_counts(findings: &[Finding], which: &[usize]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for f in which.iter().filter_map(|&i| findings.get(i)) {
        match f.severity {
            Severity::Error => c.0 += 1,
            Severity::Warning => c.1 += 1,
            Severity::Info => c.2 += 1,
        }
    }
    c
}

fn session_scope(
    si: usize,
    s: &SessionReport,
    allocs: &[AllocationReport],
    allocations: &mut [AllocationScope],
) -> SessionScope {
    let mut scope = SessionScope::default();
    for c in s.candidates.iter().chain(&s.nat_mappings) {
        scope.addresses.extend(parse(&c.address));
    }
    for p in &s.pairs {
        scope.addresses.extend(parse(&p.a));
        scope.addresses.extend(parse(&p.b));
    }
    for c in s.candidates.iter().filter(|c| c.candidate_type == "relay") {
        if let Some(ai) = allocs.iter().position(|a| a.relayed.contains(&c.address)) {
            if !scope.allocations.contains(&ai) {
                scope.allocations.push(ai);
            }
            allocations[ai].session.get_or_insert(si);
            scope.addresses.extend(parse(&allocs[ai].client));
            scope
                .addresses
                .extend(allocs[ai].relayed.iter().filter_map(|r| parse(r)));
        }
    }
    scope
}

/// Whether message `m` (which touches one of the session's addresses) is part of the session: binding
/// requests must name the session's agents in USERNAME when they carry one (an ICE restart reuses
/// addresses with new ufrags), and responses follow their requests.
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
            "success" => {
                if let Some(other) = s.agents.iter().find(|a| a.ufrag != e.from) {
                    succeeded.insert((e.pair, other.ufrag.as_str()));
                }
                false
            }
            "check" => succeeded.contains(&(e.pair, e.from.as_str())),
            _ => false,
        })
        .collect()
}

/// Adds a lifeline for `addr` unless it has one; tags count per side (`A1`, `T1`, `B1`).
fn push(
    columns: &mut Vec<Column>,
    col_of: &mut HashMap<SocketAddr, usize>,
    addr: SocketAddr,
    side: Side,
    what: String,
) {
    if col_of.contains_key(&addr) {
        return;
    }
    let prefix = match side {
        Side::A => "A",
        Side::B => "B",
        Side::Middle => "T",
    };
    let n = columns
        .iter()
        .filter(|c| c.side == side && c.tag.starts_with(prefix))
        .count()
        + 1;
    col_of.insert(addr, columns.len());
    columns.push(Column {
        tag: format!("{prefix}{n}"),
        address: addr,
        detail: what,
        side,
    });
}

fn build_ladder(scope: &mut SessionScope, s: &SessionReport, allocs: &[AllocationReport], model: &Model) {
    let ufrag = |i: usize| s.agents.get(i).map(|a| a.ufrag.as_str()).unwrap_or("");
    let mut columns: Vec<Column> = Vec::new();
    let mut col_of: HashMap<SocketAddr, usize> = HashMap::new();
    let side_cands = |agent: &str| {
        let mut v: Vec<(u8, SocketAddr, &'static str)> = s
            .candidates
            .iter()
            .chain(&s.nat_mappings)
            .filter(|c| c.agent == agent && c.candidate_type != "relay")
            .filter_map(|c| parse(&c.address).map(|a| (type_rank(c.candidate_type), a, c.candidate_type)))
            .collect();
        v.sort();
        v.dedup_by_key(|x| x.1);
        v
    };
    let clients_of = |agent: &str| -> Vec<SocketAddr> {
        scope
            .allocations
            .iter()
            .filter(|&&ai| {
                s.candidates.iter().any(|c| {
                    c.agent == agent && c.candidate_type == "relay" && allocs[ai].relayed.contains(&c.address)
                })
            })
            .filter_map(|&ai| parse(&allocs[ai].client))
            .collect()
    };
    let a = ufrag(0);
    for (_, addr, t) in side_cands(a) {
        push(&mut columns, &mut col_of, addr, Side::A, format!("{t} {addr}"));
    }
    for addr in clients_of(a) {
        push(
            &mut columns,
            &mut col_of,
            addr,
            Side::A,
            format!("TURN client {addr}"),
        );
    }
    // TURN servers, each also standing for the relayed addresses it allocated.
    let mut relay_to_server: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for &ai in &scope.allocations {
        let al = &allocs[ai];
        let Some(server) = parse(&al.server) else { continue };
        let relayed: Vec<SocketAddr> = al.relayed.iter().filter_map(|r| parse(r)).collect();
        if !col_of.contains_key(&server) {
            push(
                &mut columns,
                &mut col_of,
                server,
                Side::Middle,
                format!("TURN {server}"),
            );
        }
        let ci = col_of[&server];
        for r in relayed {
            columns[ci].detail.push_str(&format!(" relay :{}", r.port()));
            relay_to_server.push((r, server));
        }
    }
    let b = ufrag(1);
    let mut b_cols: Vec<(SocketAddr, String)> = clients_of(b)
        .into_iter()
        .map(|addr| (addr, format!("TURN client {addr}")))
        .collect();
    let mut b_cands = side_cands(b);
    b_cands.reverse();
    b_cols.extend(
        b_cands
            .into_iter()
            .map(|(_, addr, t)| (addr, format!("{t} {addr}"))),
    );
    // Addresses only seen in messages (a STUN server, an unknown peer) go in the middle, before B.
    for &mi in &scope.messages {
        let path = model.path(&model.messages[mi]);
        for addr in [path.src, path.dst] {
            let known = col_of.contains_key(&addr)
                || b_cols.iter().any(|(x, _)| *x == addr)
                || relay_to_server.iter().any(|(r, _)| *r == addr);
            if !known {
                let n = columns.iter().filter(|c| c.tag.starts_with('S')).count() + 1;
                col_of.insert(addr, columns.len());
                columns.push(Column {
                    tag: format!("S{n}"),
                    address: addr,
                    detail: format!("server/peer {addr}"),
                    side: Side::Middle,
                });
            }
        }
    }
    for (addr, what) in b_cols {
        push(&mut columns, &mut col_of, addr, Side::B, what);
    }
    for (r, server) in &relay_to_server {
        if let Some(&c) = col_of.get(server) {
            col_of.entry(*r).or_insert(c);
        }
    }

    let col = |addr: &SocketAddr| col_of.get(addr).copied();
    let relayed_addr = |addr: &SocketAddr| relay_to_server.iter().any(|(r, _)| r == addr);
    let mut ladder = Vec::with_capacity(scope.messages.len());
    let msgs = &scope.messages;
    for (k, &mi) in msgs.iter().enumerate() {
        let m = &model.messages[mi];
        // A carrier immediately followed by the message it carried is drawn once, as that message.
        if is_carrier(m) {
            let carried = msgs.get(k + 1).is_some_and(|&next| {
                next == mi + 1
                    && model.messages.get(next).is_some_and(|n| {
                        model.path(n).relay.is_some()
                            && n.frame == m.frame
                            && n.input == m.input
                            && !is_carrier(n)
                    })
            });
            if carried {
                continue;
            }
        }
        let media = matches!(m.body, Body::ChannelData { .. });
        let path = model.path(m);
        let row = match &path.relay {
            Some(relay) => {
                let via = col(&relay.server);
                // Toward the peer the message leaves the relayed address; from the peer it arrives there.
                let outbound =
                    relayed_addr(&path.src) || (!relay.relayed_address_known && path.src.port() == 0);
                let (from, to) = if outbound {
                    (col(&relay.client), col(&path.dst))
                } else {
                    (col(&path.src), col(&relay.client))
                };
                match (from, to) {
                    (Some(from), Some(to)) => LadderRow {
                        msg: mi,
                        from,
                        to,
                        via,
                        media,
                    },
                    _ => continue,
                }
            }
            None => match (col(&path.src), col(&path.dst)) {
                (Some(from), Some(to)) => LadderRow {
                    msg: mi,
                    from,
                    to,
                    via: None,
                    media,
                },
                _ => continue,
            },
        };
        ladder.push(row);
    }
    scope.ladder_signalling = ladder
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.media)
        .map(|(i, _)| i)
        .collect();
    scope.ladder = ladder;
    scope.columns = columns;
}

/// The facts one home row shows, filters on and sorts by.
#[derive(Clone, Debug, Default)]
pub struct RowSummary {
    /// `s1` for a session; `turn` for an allocation.
    pub id: String,
    /// Epoch seconds.
    pub start: f64,
    /// Session: the agents' ufrags; allocation: its client's address.
    pub agents: String,
    /// Session: the selected (or first) pair's addresses; allocation: client → server.
    pub addresses: String,
    /// Session outcome (`connected`, `failed`, `incomplete`) or allocation state.
    pub outcome: &'static str,
    /// Candidate types of the selected pair (`prflx↔relay`); `TURN udp` for an allocation (what it relays).
    pub pair: String,
    /// Seconds, on the selected pair.
    pub rtt: Option<f64>,
    pub pairs: usize,
    pub succeeded: usize,
    pub checks: u64,
    /// `relay` (the selected pair goes through TURN), `alloc` (allocations, unused), `-`; for an
    /// allocation row its client transport.
    pub turn: &'static str,
    /// Errors, warnings, infos.
    pub findings: (usize, usize, usize),
    pub candidate_types: Vec<&'static str>,
    pub finding_codes: Vec<&'static str>,
    /// Lowercase text a plain filter word is looked up in.
    pub haystack: String,
}

impl RowSummary {
    pub fn of(report: &Report, index: &Index, row: RowRef) -> RowSummary {
        let findings_idx = index.row_findings(row);
        let codes: Vec<&'static str> = findings_idx
            .iter()
            .filter_map(|&i| report.findings.get(i).map(|f| f.code))
            .collect();
        let counts = severity_counts(&report.findings, findings_idx);
        let mut r = match row {
            RowRef::Session(i) => {
                let s = &report.sessions[i];
                let sel = s.pairs.iter().find(|p| p.selected);
                let shown = sel.or(s.pairs.first());
                let ufrags: Vec<&str> = s.agents.iter().map(|a| a.ufrag.as_str()).collect();
                let mut types: Vec<&'static str> = s.candidates.iter().map(|c| c.candidate_type).collect();
                types.sort_unstable();
                types.dedup();
                let turn = if sel.is_some_and(|p| p.a_type == "relay" || p.b_type == "relay") {
                    "relay"
                } else if !index.sessions[i].allocations.is_empty() {
                    "alloc"
                } else {
                    "-"
                };
                let mut hay: Vec<String> = vec![s.id.clone(), ufrags.join(" "), s.outcome.to_string()];
                hay.extend(s.candidates.iter().map(|c| c.address.clone()));
                hay.extend(s.nat_mappings.iter().map(|c| c.address.clone()));
                RowSummary {
                    id: s.id.clone(),
                    start: s.first_ts,
                    agents: ufrags.join(" ↔ "),
                    addresses: shown.map_or(String::new(), |p| format!("{} ↔ {}", p.a, p.b)),
                    outcome: s.outcome,
                    pair: sel.map_or(String::new(), |p| format!("{}↔{}", p.a_type, p.b_type)),
                    rtt: sel.and_then(|p| {
                        p.a_to_b
                            .current_round_trip_time
                            .or(p.b_to_a.current_round_trip_time)
                    }),
                    pairs: s.pairs.len(),
                    succeeded: s.pairs.iter().filter(|p| p.state == "succeeded").count(),
                    checks: s
                        .pairs
                        .iter()
                        .map(|p| p.a_to_b.requests_sent + p.b_to_a.requests_sent)
                        .sum(),
                    turn,
                    findings: counts,
                    candidate_types: types,
                    finding_codes: codes,
                    haystack: hay.join(" "),
                }
            }
            RowRef::Allocation(i) => {
                let a = &report.turn.allocations[i];
                let start = a
                    .created_at
                    .into_iter()
                    .chain(a.events.iter().map(|e| e.ts))
                    .chain(a.errors.iter().map(|e| e.ts))
                    .reduce(f64::min)
                    .unwrap_or(index.t0);
                let transport = match a.transport {
                    crate::net::Transport::Udp => "udp",
                    crate::net::Transport::Tcp => "tcp",
                };
                let mut hay = vec![
                    "turn allocation".to_string(),
                    a.client.clone(),
                    a.server.clone(),
                    a.state.to_string(),
                ];
                hay.extend(a.relayed.iter().cloned());
                hay.extend(a.username.iter().cloned());
                RowSummary {
                    id: "turn".into(),
                    start,
                    agents: a.client.clone(),
                    addresses: format!("{} → {}", a.client, a.server),
                    outcome: a.state,
                    pair: format!("TURN {}", a.requested_transport.as_deref().unwrap_or("?")),
                    rtt: None,
                    pairs: 0,
                    succeeded: 0,
                    checks: 0,
                    turn: transport,
                    findings: counts,
                    candidate_types: vec!["relay"],
                    finding_codes: codes,
                    haystack: hay.join(" "),
                }
            }
        };
        r.haystack.push(' ');
        r.haystack.push_str(&r.finding_codes.join(" "));
        r.haystack = r.haystack.to_lowercase();
        r
    }
}

/// What a detail line of the TURN view is about (for colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Heading,
    Normal,
    Error,
    Good,
    Dim,
}

/// One line of an allocation's detail: text (wire text already escaped) and the frame it points at.
#[derive(Clone, Debug)]
pub struct DetailLine {
    pub text: String,
    pub frame: Option<u64>,
    pub kind: LineKind,
}

fn line(text: String, frame: Option<u64>, kind: LineKind) -> DetailLine {
    DetailLine { text, frame, kind }
}

/// The TURN view's detail for one allocation: identity, lifecycle, errors, permissions, channels, traffic
/// per peer, drops, and its findings.
pub fn allocation_lines(report: &Report, index: &Index, ai: usize) -> Vec<DetailLine> {
    use crate::report::text::escape;
    let Some(a) = report.turn.allocations.get(ai) else {
        return Vec::new();
    };
    let t = |ts: f64| format!("{:+.3}s", ts - index.t0);
    let opt = |s: &Option<String>| {
        s.as_deref()
            .map_or("(none)".to_string(), |s| format!("\"{}\"", escape(s)))
    };
    let mut out = Vec::new();
    let transport = match a.transport {
        crate::net::Transport::Udp => "udp",
        crate::net::Transport::Tcp => "tcp",
    };
    out.push(line(
        format!(
            "{} → {} {transport}  {}",
            a.client,
            a.server,
            a.state.to_uppercase()
        ),
        a.created_frame,
        match a.state {
            "failed" | "expired" => LineKind::Error,
            _ => LineKind::Heading,
        },
    ));
    out.push(line(
        format!(
            "user {} realm {}  software {}",
            opt(&a.username),
            opt(&a.realm),
            opt(&a.software)
        ),
        None,
        LineKind::Normal,
    ));
    if !a.relayed.is_empty() || a.mapped.is_some() {
        out.push(line(
            format!(
                "relayed {}  mapped {}  relays {}",
                if a.relayed.is_empty() {
                    "-".to_string()
                } else {
                    a.relayed.join(", ")
                },
                a.mapped.as_deref().unwrap_or("-"),
                a.requested_transport.as_deref().unwrap_or("?")
            ),
            None,
            LineKind::Normal,
        ));
    }
    if let Some(l) = a.lifetime {
        out.push(line(
            format!("lifetime {l} s, {} refresh(es)", a.refreshes),
            None,
            LineKind::Normal,
        ));
    }
    if let Some(si) = index.allocations.get(ai).and_then(|s| s.session) {
        out.push(line(
            format!("used by ICE session {}", report.sessions[si].id),
            None,
            LineKind::Good,
        ));
    }
    out.push(line("Lifecycle".into(), None, LineKind::Heading));
    for e in &a.events {
        let kind =
            if e.what.contains("failed") || e.what.contains("rejected") || e.what.starts_with("expired") {
                LineKind::Error
            } else {
                LineKind::Normal
            };
        let frame = e.frame.map_or("      ".to_string(), |f| format!("#{f:<5}"));
        out.push(line(
            format!("  {} {frame} {}", t(e.ts), escape(&e.what)),
            e.frame,
            kind,
        ));
    }
    if a.events_not_kept > 0 {
        out.push(line(
            format!("  ({} more events not kept)", a.events_not_kept),
            None,
            LineKind::Dim,
        ));
    }
    if !a.errors.is_empty() {
        out.push(line("Errors".into(), None, LineKind::Heading));
        for e in &a.errors {
            out.push(line(
                format!(
                    "  {} #{:<5} {} {} {}: {}",
                    t(e.ts),
                    e.frame,
                    e.method,
                    e.code,
                    escape(&e.reason),
                    e.meaning
                ),
                Some(e.frame),
                LineKind::Error,
            ));
        }
    }
    if !a.permissions.is_empty() {
        out.push(line("Permissions".into(), None, LineKind::Heading));
        for p in &a.permissions {
            let state = match (p.installed_at, p.failed) {
                (_, Some(code)) => format!("failed {code}"),
                (Some(at), None) => format!("installed {}", t(at)),
                (None, None) => "never granted".into(),
            };
            out.push(line(
                format!(
                    "  {:<16} {state}, refreshed {}×{}{}",
                    p.peer,
                    p.refreshed,
                    if p.by_channel_bind { ", by ChannelBind" } else { "" },
                    p.expires_at
                        .map_or(String::new(), |e| format!(", expires {}", t(e)))
                ),
                p.frames.first().copied(),
                if p.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if !a.channels.is_empty() {
        out.push(line("Channels".into(), None, LineKind::Heading));
        for c in &a.channels {
            let state = match (c.bound_at, c.failed) {
                (_, Some(code)) => format!("failed {code}"),
                (Some(at), None) => format!("bound {}", t(at)),
                (None, None) => "not bound".into(),
            };
            out.push(line(
                format!(
                    "  {:#06x} → {:<22} {state}, refreshed {}×",
                    c.number, c.peer, c.refreshed
                ),
                c.frames.first().copied(),
                if c.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if !a.traffic.is_empty() {
        out.push(line("Traffic per peer".into(), None, LineKind::Heading));
        for p in &a.traffic {
            out.push(line(
                format!(
                    "  {:<22} → {} send + {} chan ({} B)   ← {} data + {} chan ({} B)",
                    p.peer,
                    p.send_indications,
                    p.channel_data_to_peer,
                    p.bytes_to_peer,
                    p.data_indications,
                    p.channel_data_from_peer,
                    p.bytes_from_peer
                ),
                None,
                LineKind::Normal,
            ));
        }
        if a.totals.unknown_channel_data > 0 {
            out.push(line(
                format!(
                    "  {} ChannelData on channels whose binding was not captured",
                    a.totals.unknown_channel_data
                ),
                None,
                LineKind::Dim,
            ));
        }
    }
    let d = &a.dropped;
    let drops = [
        ("no permission", &d.no_permission),
        ("permission expired", &d.permission_expired),
        ("unbound channel", &d.unbound_channel),
        ("channel expired", &d.channel_expired),
        ("after expiry", &d.after_expiry),
    ];
    if drops.iter().any(|(_, c)| c.packets > 0) {
        out.push(line("Dropped by the server".into(), None, LineKind::Heading));
        for (what, c) in drops.iter().filter(|(_, c)| c.packets > 0) {
            out.push(line(
                format!("  {what}: {} packets, {} bytes", c.packets, c.bytes),
                c.frames.first().copied(),
                LineKind::Error,
            ));
        }
    }
    if !a.tcp_connections.is_empty() {
        out.push(line(
            "TCP peer connections (RFC 6062)".into(),
            None,
            LineKind::Heading,
        ));
        for c in &a.tcp_connections {
            out.push(line(
                format!(
                    "  #{} {} by {}{}",
                    c.connection_id,
                    c.peer.as_deref().unwrap_or("?"),
                    c.initiated_by,
                    c.data_connection
                        .as_ref()
                        .map_or(" (no ConnectionBind)".to_string(), |d| format!(", data via {d}"))
                ),
                Some(c.frame),
                if c.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if let Some(scope) = index.allocations.get(ai) {
        if !scope.findings.is_empty() {
            out.push(line("Findings".into(), None, LineKind::Heading));
            for &fi in &scope.findings {
                let f = &report.findings[fi];
                out.push(line(
                    format!(
                        "  {} [{}] {}",
                        severity_name(f.severity),
                        f.code,
                        escape(&f.message)
                    ),
                    f.frames.first().copied(),
                    match f.severity {
                        Severity::Error => LineKind::Error,
                        _ => LineKind::Normal,
                    },
                ));
            }
        }
    }
    out
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "ERROR",
        Severity::Warning => "WARN",
        Severity::Info => "info",
    }
}

#[cfg(test)]
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
        let mut an = Analyzer::new(Keyring::new());
        for (i, data) in packets.iter().enumerate() {
            an.ingest(&Packet {
                ts: Timestamp(1_000_000_000 * (i as u64 + 1)),
                frame: i as u64 + 1,
                input: 0,
                link_type: LinkType::RawIp,
                data,
                orig_len: data.len() as u32,
            });
        }
        an.finish();
        let model = an.model();
        let report = Report::build(model, &[], an.net_stats());
        let index = Index::build(&report, model);
        let frames_of = |ufrag: &str| -> Vec<u64> {
            let si = report
                .sessions
                .iter()
                .position(|s| s.agents.iter().any(|g| g.ufrag == ufrag))
                .unwrap_or_else(|| panic!("a session with {ufrag}"));
            index.sessions[si]
                .messages
                .iter()
                .map(|&mi| model.messages[mi].frame)
                .collect()
        };
        assert_eq!(frames_of("AAAA"), [1, 2]);
        assert_eq!(frames_of("CCCC"), [3, 4]);
    }
}
