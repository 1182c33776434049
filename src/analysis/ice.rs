//! ICE sessions reconstructed from packets: agents, candidates, candidate pairs, checks, nomination,
//! consent and media per pair (RFC 8445, RFC 7675 consent freshness, RFC 8838 trickle).
//!
//! A session is the exchange between two agents named by their ufrags: a connectivity check's USERNAME is
//! "RFRAG:LFRAG" (RFC 8445 §7.2.2), so a request tells which agent sent it (LFRAG, from the source address)
//! and which one receives it (RFRAG, at the destination). Responses carry no USERNAME and are tied to their
//! check through the transaction table. New ufrags between addresses an earlier session used are an ICE
//! restart (§9), linked to that session. Checks relayed through TURN arrive here as inner datagrams between
//! relayed address and peer (see `turn`), so relay pairs are analysed like direct ones.
//!
//! What the wire cannot show is not invented: frozen/waiting states, candidates that were never used, the
//! agents' own pair priorities. Candidate types are *inferred* from what servers and peers reported
//! (XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS) and say how. Everything is kept per message as it arrives;
//! derived figures (states, counters, RTT, outcome) are computed by [`crate::report`] from these facts and
//! the transaction table, so a live view and a file run agree. Tables are bounded by the constants below.
use super::transactions::{Seen, TxEvent, TxIndex};
use super::Relay;
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::net::{Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method, StunMessage};
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Sessions held in memory at once (open, or frozen with their view; a few KB each). A TURN server sees
/// one per call leg; beyond this, new ones are counted only. Sessions folded by [`crate::analysis::fold`]
/// no longer count, so in a file read this bounds the calls open at one moment (and the 45 s after each
/// ends): 20,000 holds a server with 10,000 concurrent calls starting 200 a second.
pub const MAX_SESSIONS: usize = 20_000;
/// Pairs per session: RFC 8445 §6.1.2.5 suggests a checklist limit of 100; browsers pair every local with
/// every remote candidate and may exceed it, so allow ten times as many before counting instead.
pub const MAX_PAIRS_PER_SESSION: usize = 1000;
/// Transactions remembered per pair direction: consent checks every ~5 s (RFC 7675 §5.1) for 5 hours.
pub const MAX_TX_PER_DIRECTION: usize = 4096;
/// Timeline entries per session; the rest is counted. Enough for every check of a long call's start and
/// its consent checks for about an hour.
pub const MAX_TIMELINE_EVENTS: usize = 5000;
/// STUN-server bindings (srflx discovery) remembered.
pub const MAX_SERVER_BINDINGS: usize = 65_536;
/// Addresses remembered per agent; a browser with many interfaces gathers a few dozen.
pub const MAX_ADDRESSES_PER_AGENT: usize = 256;

/// An agent's ICE role (RFC 8445 §6.1.1), serialised as its `name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Controlling,
    Controlled,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Controlling => "controlling",
            Role::Controlled => "controlled",
        }
    }
}

/// How an agent's address was used on the wire: as the source of its checks, the destination of the
/// peer's checks, or reported back by a peer or server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentAddress {
    pub address: SocketAddr,
    pub transport: Transport,
    pub first_seen: Seen,
    /// PRIORITY announced in this agent's checks from this address (RFC 8445 §7.1.1: the priority a
    /// peer-reflexive candidate learned from the check would get).
    pub priority: Option<u32>,
    /// This is the relayed address of the allocation of this TURN (client, server): checks from/to it
    /// travelled through that allocation.
    pub turn_client: Option<(SocketAddr, SocketAddr)>,
    /// Reported as XOR-MAPPED-ADDRESS in the peer's response to one of this agent's checks.
    pub reflected_by_peer: Option<Seen>,
}

/// Chromium's GOOG-NETWORK-INFO: which of the browser's networks a check was sent on, and its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: u16,
    pub cost: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Agent {
    pub ufrag: String,
    pub role: Option<Role>,
    pub tie_breaker: Option<u64>,
    /// Role announcements that changed the role, in order (RFC 8445 §7.3.1.1 role conflicts).
    pub role_changes: Vec<(Seen, Role)>,
    pub software: Option<String>,
    /// GOOG-NETWORK-INFO from Chromium's checks.
    pub network_info: Option<NetworkInfo>,
    pub addresses: Vec<AgentAddress>,
}

impl Agent {
    fn note_address(
        &mut self,
        address: SocketAddr,
        transport: Transport,
        seen: Seen,
    ) -> Option<&mut AgentAddress> {
        if let Some(i) = self
            .addresses
            .iter()
            .position(|a| a.address == address && a.transport == transport)
        {
            return self.addresses.get_mut(i);
        }
        if self.addresses.len() >= MAX_ADDRESSES_PER_AGENT {
            return None;
        }
        self.addresses.push(AgentAddress {
            address,
            transport,
            first_seen: seen,
            priority: None,
            turn_client: None,
            reflected_by_peer: None,
        });
        self.addresses.last_mut()
    }
}

/// One direction of a pair: the checks one agent sent to the other.
#[derive(Clone, Debug, Default)]
pub struct Direction {
    /// Check transactions (first transmission order), at most [`MAX_TX_PER_DIRECTION`].
    pub txs: Vec<TxIndex>,
    pub txs_not_kept: u64,
    /// Requests carrying USE-CANDIDATE (counted per transaction).
    pub use_candidate: Vec<TxIndex>,
    /// Binding indications (RFC 8445 §11 keepalives).
    pub keepalives: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Media {
    pub dtls: u64,
    pub rtp: u64,
    pub rtcp: u64,
    pub bytes: u64,
    pub first_dtls: Option<Seen>,
    /// First DTLS application_data record: the handshake finished (RFC 6347 §4.1 content type 23).
    pub first_dtls_data: Option<Seen>,
    pub first_rtp: Option<Seen>,
    pub last: Option<Seen>,
    /// Packets per direction (a→b, b→a).
    pub packets: [u64; 2],
}

#[derive(Clone, Debug)]
pub struct Pair {
    /// The address of `agents[0]` and of `agents[1]`.
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub transport: Transport,
    /// Checks a→b and b→a.
    pub dirs: [Direction; 2],
    /// Successful USE-CANDIDATE checks by the controlling agent (RFC 8445 §8.1.1), in order.
    pub nominations: Vec<Seen>,
    pub media: Media,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A check (first transmission, or `retransmit`), from agent `from` (0/1).
    Check {
        tx: TxIndex,
        retransmit: bool,
        use_candidate: bool,
    },
    Success {
        tx: TxIndex,
    },
    Error {
        tx: TxIndex,
        code: u16,
    },
    /// The pair became nominated (success of a USE-CANDIDATE check).
    Nominated,
    RoleChange {
        role: Role,
    },
    DtlsStart,
    DtlsConnected,
    MediaStart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub seen: Seen,
    pub pair: usize,
    /// The agent (0/1) that sent the message behind the event.
    pub from: u8,
    pub kind: EventKind,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub agents: [Agent; 2],
    pub pairs: Vec<Pair>,
    pub timeline: Vec<Event>,
    pub timeline_not_kept: u64,
    pub pairs_not_kept: u64,
    pub first: Seen,
    pub last: Seen,
    /// An earlier session between the same addresses with other ufrags (ICE restart).
    pub restart_of: Option<usize>,
    /// Set when the session aged out (live mode): its view at that time; the detail above is dropped.
    pub frozen: Option<Box<crate::analysis::sessions::SessionReport>>,
    /// Set when the session was folded (file reads, [`crate::analysis::fold`]): its view was rendered and
    /// handed on, and nothing of it is kept here but this mark.
    pub folded: bool,
}

impl Session {
    /// The last time anything of this session was seen: a STUN message, or media on one of its pairs.
    pub fn last_activity(&self) -> Timestamp {
        self.pairs
            .iter()
            .filter_map(|p| p.media.last.map(|m| m.ts))
            .fold(self.last.ts, Timestamp::max)
    }
}

impl Session {
    fn event(&mut self, ev: Event) {
        if self.timeline.len() < MAX_TIMELINE_EVENTS {
            self.timeline.push(ev);
        } else {
            self.timeline_not_kept += 1;
        }
    }

    /// The pair index for `x` (agent `from`'s address) and `y` (the other agent's), created on demand.
    fn pair(&mut self, from: u8, x: SocketAddr, y: SocketAddr, transport: Transport) -> Option<usize> {
        let (a, b) = if from == 0 { (x, y) } else { (y, x) };
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.a == a && p.b == b && p.transport == transport)
        {
            return Some(i);
        }
        if self.pairs.len() >= MAX_PAIRS_PER_SESSION {
            self.pairs_not_kept += 1;
            return None;
        }
        self.pairs.push(Pair {
            a,
            b,
            transport,
            dirs: Default::default(),
            nominations: Vec::new(),
            media: Media::default(),
        });
        Some(self.pairs.len() - 1)
    }
}

/// A Binding to a STUN/TURN server (no ICE USERNAME): how server-reflexive candidates are found
/// (RFC 8445 §5.1.1.1), and an Allocate's XOR-MAPPED-ADDRESS (RFC 8656 §7.3) does the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerBinding {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
    pub mapped: SocketAddr,
    pub seen: Seen,
    /// From an Allocate success rather than a Binding.
    pub via_allocate: bool,
    /// RFC 5780 RESPONSE-ORIGIN / OTHER-ADDRESS present: a NAT-behaviour-discovery server.
    pub rfc5780: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayedAddress {
    pub address: SocketAddr,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Client ↔ server transport (webrtc-stats `relayProtocol`).
    pub transport: Transport,
    pub seen: Seen,
}

/// Where a check's pair lives, for responses and media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PairRef {
    session: usize,
    pair: usize,
    /// Which agent sent the request (0/1).
    from: u8,
    use_candidate: bool,
}

#[derive(Debug, Default)]
pub struct IceState {
    pub sessions: Vec<Session>,
    by_ufrags: HashMap<(String, String), usize>,
    /// Check transaction → its pair.
    by_tx: HashMap<TxIndex, PairRef>,
    /// (src, dst, transport) of a pair's checks → (session, pair, from), for media and USERNAME-less
    /// requests (GOOG-PING, keepalives). Looked up for every media packet: FxHash, not SipHash (~6 % of a
    /// TURN server capture's analysis); the table is bounded by the sessions' pairs.
    by_flow: HashMap<Flow, (usize, usize, u8), FastHash>,
    /// Changes whenever `by_flow` does (see [`IceState::pair_of`]).
    flow_generation: u64,
    pub server_bindings: Vec<ServerBinding>,
    /// XOR-RELAYED-ADDRESS of every successful Allocate: relay candidates (RFC 8445 §5.1.1.2).
    pub relayed_addresses: Vec<RelayedAddress>,
    pub sessions_not_tracked: u64,
    /// Sessions folded ([`Session::folded`]).
    pub sessions_folded: usize,
    /// Every session before this index is folded or frozen: where the search for idle ones starts.
    closed_below: usize,
    pub server_bindings_not_kept: u64,
    /// Indexes of `server_bindings` and `relayed_addresses`, so that classifying every session's
    /// candidates does not search them all for each address (a TURN server capture holds tens of thousands
    /// of allocations; the searches made the report quadratic in them).
    index: BindingIndex,
}

/// Positions in `server_bindings` (in order) by client address, by mapped address and transport, by mapped
/// IP; the first relayed address entry per address.
#[derive(Debug, Default)]
struct BindingIndex {
    by_client: HashMap<SocketAddr, Vec<usize>, FastHash>,
    by_mapped: HashMap<(SocketAddr, Transport), usize, FastHash>,
    by_mapped_ip: HashMap<IpAddr, Vec<usize>, FastHash>,
    relayed: HashMap<SocketAddr, usize, FastHash>,
}

/// One STUN message with where and when it was seen.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub seen: Seen,
    pub flow: Flow,
    pub relay: Option<Relay>,
    /// For a relayed message: it left the client's allocation toward the peer (so the source address is the
    /// relayed one); else it arrived from the peer (the destination is the relayed address).
    pub relay_to_peer: bool,
    pub msg: &'a StunMessage,
    pub tx: TxEvent,
}

/// The kind of a non-STUN datagram, for media per pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Dtls { application_data: bool },
    Rtp,
    Rtcp,
}

fn username_parts(msg: &StunMessage) -> Option<(&str, &str)> {
    let u = msg.attr_value(stun::ATTR_USERNAME)?.text()?;
    let (r, l) = u.split_once(':')?;
    (!r.is_empty() && !l.is_empty()).then_some((r, l))
}

fn is_check_method(m: Method) -> bool {
    m == Method::BINDING || m == Method::GOOG_PING
}

impl IceState {
    pub fn session_of_tx(&self, tx: TxIndex) -> Option<(usize, usize, u8)> {
        self.by_tx.get(&tx).map(|r| (r.session, r.pair, r.from))
    }

    /// Feeds one (non-duplicate) STUN message.
    pub fn on_stun(&mut self, o: &Observed<'_>) {
        if !is_check_method(o.msg.method) && o.msg.method != Method::ALLOCATE {
            return;
        }
        match (o.msg.class, username_parts(o.msg)) {
            (Class::Request, Some((rfrag, lfrag))) if o.msg.method == Method::BINDING => {
                self.on_check(o, rfrag, lfrag)
            }
            (Class::Request, None) if is_check_method(o.msg.method) => {
                // GOOG-PING, or a Binding without USERNAME on a flow already known as a pair: a check
                // (RFC 7675 consent uses full checks; Chromium's GOOG-PING replaces them once agreed).
                if let Some(&(s, p, from)) = self.by_flow.get(&o.flow) {
                    self.record_check(o, s, p, from);
                }
            }
            (Class::Indication, _) if o.msg.method == Method::BINDING => {
                if let Some(&(s, p, from)) = self.by_flow.get(&o.flow) {
                    if let Some(d) = self.sessions.get_mut(s).and_then(|x| x.pairs.get_mut(p)) {
                        d.dirs[from as usize].keepalives += 1;
                    }
                }
            }
            (Class::Success | Class::Error, _) => self.on_response(o),
            _ => {}
        }
    }

    fn session_for(&mut self, rfrag: &str, lfrag: &str, o: &Observed<'_>) -> Option<(usize, u8)> {
        let key = if rfrag <= lfrag {
            (rfrag.to_string(), lfrag.to_string())
        } else {
            (lfrag.to_string(), rfrag.to_string())
        };
        if let Some(&s) = self.by_ufrags.get(&key) {
            let from = if self.sessions[s].agents[0].ufrag == lfrag {
                0
            } else {
                1
            };
            return Some((s, from));
        }
        if self.sessions.len() - self.sessions_folded >= MAX_SESSIONS {
            self.sessions_not_tracked += 1;
            return None;
        }
        // agents[0] is the sender of the first check seen, unless it announced ICE-CONTROLLED: then the
        // controlling agent (the receiver) goes first, so `a` is conventionally the controlling side.
        let sender_controlled = o.msg.attr(stun::ATTR_ICE_CONTROLLED).is_some();
        let (first, second) = if sender_controlled {
            (rfrag, lfrag)
        } else {
            (lfrag, rfrag)
        };
        let agents = [
            Agent {
                ufrag: first.to_string(),
                ..Agent::default()
            },
            Agent {
                ufrag: second.to_string(),
                ..Agent::default()
            },
        ];
        // An ICE restart keeps the addresses and changes the ufrags (RFC 8445 §9).
        let restart_of = self.sessions.iter().rposition(|s| {
            s.agents.iter().any(|ag| {
                ag.addresses
                    .iter()
                    .any(|a| a.address == o.flow.src || a.address == o.flow.dst)
            })
        });
        self.sessions.push(Session {
            agents,
            pairs: Vec::new(),
            timeline: Vec::new(),
            timeline_not_kept: 0,
            pairs_not_kept: 0,
            first: o.seen,
            last: o.seen,
            restart_of,
            frozen: None,
            folded: false,
        });
        let s = self.sessions.len() - 1;
        self.by_ufrags.insert(key, s);
        Some((s, if sender_controlled { 1 } else { 0 }))
    }

    fn on_check(&mut self, o: &Observed<'_>, rfrag: &str, lfrag: &str) {
        let Some((s, from)) = self.session_for(rfrag, lfrag, o) else {
            return;
        };
        let session = &mut self.sessions[s];
        session.last = o.seen;
        let msg = o.msg;
        // Role and tie-breaker (RFC 8445 §7.1.3).
        let announced = if let Some(AttrValue::U64(t)) = msg.attr_value(stun::ATTR_ICE_CONTROLLING) {
            Some((Role::Controlling, *t))
        } else if let Some(AttrValue::U64(t)) = msg.attr_value(stun::ATTR_ICE_CONTROLLED) {
            Some((Role::Controlled, *t))
        } else {
            None
        };
        let agent = &mut session.agents[from as usize];
        let mut role_event = None;
        if let Some((role, tie)) = announced {
            if agent.role.is_some_and(|r| r != role) {
                agent.role_changes.push((o.seen, role));
                role_event = Some(role);
            }
            agent.role = Some(role);
            agent.tie_breaker = Some(tie);
        }
        if let Some(AttrValue::GoogNetworkInfo {
            network_id,
            network_cost,
        }) = msg.attr_value(stun::ATTR_GOOG_NETWORK_INFO)
        {
            agent.network_info = Some(NetworkInfo {
                id: *network_id,
                cost: *network_cost,
            });
        }
        if let Some(sw) = msg.attr_value(stun::ATTR_SOFTWARE).and_then(AttrValue::text) {
            agent.software = Some(sw.chars().take(128).collect());
        }
        let turn_client = o.relay.map(|r| (r.client, r.server));
        let priority = msg.attr_value(stun::ATTR_PRIORITY).and_then(AttrValue::as_u32);
        if let Some(addr) = agent.note_address(o.flow.src, o.flow.transport, o.seen) {
            if priority.is_some() {
                addr.priority = priority;
            }
            // The sender's address is a relayed one when the check left through its own allocation.
            if o.relay_to_peer {
                addr.turn_client = addr.turn_client.or(turn_client);
            }
        }
        if let Some(addr) =
            session.agents[1 - from as usize].note_address(o.flow.dst, o.flow.transport, o.seen)
        {
            if o.relay.is_some() && !o.relay_to_peer {
                addr.turn_client = addr.turn_client.or(turn_client);
            }
        }
        let Some(p) = session.pair(from, o.flow.src, o.flow.dst, o.flow.transport) else {
            return;
        };
        if let Some(role) = role_event {
            session.event(Event {
                seen: o.seen,
                pair: p,
                from,
                kind: EventKind::RoleChange { role },
            });
        }
        if self.by_flow.insert(o.flow, (s, p, from)) != Some((s, p, from)) {
            self.flow_generation += 1;
        }
        self.record_check(o, s, p, from);
    }

    fn record_check(&mut self, o: &Observed<'_>, s: usize, p: usize, from: u8) {
        let use_candidate = o.msg.attr(stun::ATTR_USE_CANDIDATE).is_some();
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        session.last = o.seen;
        let Some(pair) = session.pairs.get_mut(p) else {
            return;
        };
        let dir = &mut pair.dirs[from as usize];
        let (tx, retransmit) = match o.tx {
            TxEvent::Request(tx) => {
                if dir.txs.len() < MAX_TX_PER_DIRECTION {
                    dir.txs.push(tx);
                    if use_candidate {
                        dir.use_candidate.push(tx);
                    }
                } else {
                    dir.txs_not_kept += 1;
                }
                self.by_tx.insert(
                    tx,
                    PairRef {
                        session: s,
                        pair: p,
                        from,
                        use_candidate,
                    },
                );
                (tx, false)
            }
            TxEvent::Retransmission(tx) => (tx, true),
            _ => return,
        };
        session.event(Event {
            seen: o.seen,
            pair: p,
            from,
            kind: EventKind::Check {
                tx,
                retransmit,
                use_candidate,
            },
        });
    }

    fn on_response(&mut self, o: &Observed<'_>) {
        let TxEvent::Response { tx, first } = o.tx else {
            if o.msg.method == Method::BINDING || o.msg.method == Method::ALLOCATE {
                self.maybe_server_binding(o);
            }
            return;
        };
        let Some(r) = self.by_tx.get(&tx).copied() else {
            self.maybe_server_binding(o);
            return;
        };
        if !first {
            return;
        }
        let Some(session) = self.sessions.get_mut(r.session) else {
            return;
        };
        session.last = o.seen;
        let responder = 1 - r.from;
        match o.msg.class {
            Class::Success => {
                session.event(Event {
                    seen: o.seen,
                    pair: r.pair,
                    from: responder,
                    kind: EventKind::Success { tx },
                });
                // RFC 8445 §7.2.5.3.2/§7.2.5.2.1: the XOR-MAPPED-ADDRESS tells the checking agent its address
                // as the peer saw it; one it never sent from is a peer-reflexive candidate.
                if let Some(mapped) = o
                    .msg
                    .attr_value(stun::ATTR_XOR_MAPPED_ADDRESS)
                    .and_then(AttrValue::address)
                {
                    let transport = o.flow.transport;
                    if let Some(a) = session.agents[r.from as usize].note_address(mapped, transport, o.seen) {
                        a.reflected_by_peer.get_or_insert(o.seen);
                    }
                }
                let controlling = session.agents[r.from as usize].role == Some(Role::Controlling);
                if r.use_candidate && controlling {
                    if let Some(pair) = session.pairs.get_mut(r.pair) {
                        pair.nominations.push(o.seen);
                    }
                    session.event(Event {
                        seen: o.seen,
                        pair: r.pair,
                        from: r.from,
                        kind: EventKind::Nominated,
                    });
                }
            }
            _ => {
                let code = o.msg.error_code().unwrap_or(0);
                session.event(Event {
                    seen: o.seen,
                    pair: r.pair,
                    from: responder,
                    kind: EventKind::Error { tx, code },
                });
            }
        }
    }

    /// A Binding (or Allocate) success from a server, not from an ICE peer: a server-reflexive address.
    fn maybe_server_binding(&mut self, o: &Observed<'_>) {
        if o.msg.class != Class::Success || o.relay.is_some() {
            return;
        }
        let Some(mapped) = o
            .msg
            .attr_value(stun::ATTR_XOR_MAPPED_ADDRESS)
            .and_then(AttrValue::address)
            .or_else(|| {
                // RFC 3489 servers answer with MAPPED-ADDRESS only.
                o.msg
                    .attr_value(stun::ATTR_MAPPED_ADDRESS)
                    .and_then(AttrValue::address)
            })
        else {
            return;
        };
        if self.server_bindings.len() >= MAX_SERVER_BINDINGS {
            self.server_bindings_not_kept += 1;
            return;
        }
        if o.msg.method == Method::ALLOCATE {
            for address in o
                .msg
                .attributes
                .iter()
                .filter(|a| a.typ == stun::ATTR_XOR_RELAYED_ADDRESS)
            {
                if let Some(address) = address.value.address() {
                    self.index
                        .relayed
                        .entry(address)
                        .or_insert(self.relayed_addresses.len());
                    self.relayed_addresses.push(RelayedAddress {
                        address,
                        client: o.flow.dst,
                        server: o.flow.src,
                        transport: o.flow.transport,
                        seen: o.seen,
                    });
                }
            }
        }
        let rfc5780 = o.msg.attr(0x802B).is_some() || o.msg.attr(0x802C).is_some();
        let at = self.server_bindings.len();
        let index = &mut self.index;
        index.by_client.entry(o.flow.dst).or_default().push(at);
        index.by_mapped.entry((mapped, o.flow.transport)).or_insert(at);
        index.by_mapped_ip.entry(mapped.ip()).or_default().push(at);
        self.server_bindings.push(ServerBinding {
            client: o.flow.dst,
            server: o.flow.src,
            transport: o.flow.transport,
            mapped,
            seen: o.seen,
            via_allocate: o.msg.method == Method::ALLOCATE,
            rfc5780,
        });
    }

    /// The pair whose addresses `flow` travels between, as (session, pair, direction), for
    /// [`IceState::on_media`].
    pub fn pair_of(&self, flow: &Flow) -> Option<(usize, usize, u8)> {
        match self.by_flow.get(flow) {
            Some(&(s, p, from)) => Some((s, p, from)),
            None => self
                .by_flow
                .get(&flow.reversed())
                .map(|&(s, p, from)| (s, p, 1 - from)),
        }
    }

    /// Changes whenever the pairs' flows do: what [`IceState::pair_of`] answered stays true while this is
    /// unchanged.
    pub fn flow_generation(&self) -> u64 {
        self.flow_generation
    }

    /// Counts a DTLS/RTP/RTCP datagram on the pair ([`IceState::pair_of`]) whose addresses it travels
    /// between.
    pub fn on_media(&mut self, (s, p, dir): (usize, usize, u8), seen: Seen, kind: MediaKind, len: usize) {
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        let Some(pair) = session.pairs.get_mut(p) else {
            return;
        };
        let m = &mut pair.media;
        m.bytes += len as u64;
        m.packets[dir as usize] += 1;
        m.last = Some(seen);
        let mut event = None;
        match kind {
            MediaKind::Dtls { application_data } => {
                m.dtls += 1;
                if m.first_dtls.is_none() {
                    m.first_dtls = Some(seen);
                    event = Some(EventKind::DtlsStart);
                }
                if application_data && m.first_dtls_data.is_none() {
                    m.first_dtls_data = Some(seen);
                    event = Some(EventKind::DtlsConnected);
                }
            }
            MediaKind::Rtp | MediaKind::Rtcp => {
                if kind == MediaKind::Rtp {
                    m.rtp += 1;
                } else {
                    m.rtcp += 1;
                }
                if m.first_rtp.is_none() {
                    m.first_rtp = Some(seen);
                    event = Some(EventKind::MediaStart);
                }
            }
        }
        if let Some(kind) = event {
            session.event(Event {
                seen,
                pair: p,
                from: dir,
                kind,
            });
        }
    }

    /// Sessions not yet frozen whose last message is older than `idle_secs` before `now`.
    pub fn idle_sessions(&self, now: Timestamp, idle_secs: f64) -> Vec<usize> {
        (0..self.sessions.len())
            .filter(|&s| {
                let x = &self.sessions[s];
                x.frozen.is_none() && !x.folded && now.secs_since(x.last.ts) > idle_secs
            })
            .collect()
    }

    /// Sessions still open (neither frozen nor folded) with nothing seen, STUN or media, for more than
    /// `idle_secs` before `now`, in index order.
    pub fn quiet_sessions(&mut self, now: Timestamp, idle_secs: f64) -> Vec<usize> {
        let closed = |x: &Session| x.folded || x.frozen.is_some();
        while self.sessions.get(self.closed_below).is_some_and(closed) {
            self.closed_below += 1;
        }
        (self.closed_below..self.sessions.len())
            .filter(|&s| {
                let x = &self.sessions[s];
                !closed(x) && now.secs_since(x.last_activity()) > idle_secs
            })
            .collect()
    }

    /// Replaces session `s`'s detail by its final view: pairs, timeline and addresses are dropped, and so
    /// are the lookups that lead to it, so later packets with its ufrags or flows start afresh. Returns the
    /// transactions it referred to (free to retire now).
    pub fn freeze(&mut self, s: usize, view: crate::analysis::sessions::SessionReport) -> Vec<TxIndex> {
        let Some(session) = self.sessions.get_mut(s) else {
            return Vec::new();
        };
        session.frozen = Some(Box::new(view));
        self.forget(|x| x == s)
    }

    /// Drops everything of sessions `folds` but their mark (their views were rendered elsewhere), and the
    /// lookups that lead to them, as [`IceState::freeze`] does. Returns the transactions they referred to.
    /// One pass over each lookup table for them all: a file read folds thousands of sessions.
    pub fn fold(&mut self, folds: &[usize]) -> Vec<TxIndex> {
        let mut set = std::collections::HashSet::with_capacity_and_hasher(folds.len(), FastHash::default());
        for &s in folds {
            let Some(session) = self.sessions.get_mut(s) else {
                continue;
            };
            if session.folded {
                continue;
            }
            session.folded = true;
            session.agents = Default::default();
            self.sessions_folded += 1;
            set.insert(s);
        }
        self.forget(|s| set.contains(&s))
    }

    /// Drops the detail of the sessions `gone` picks (pairs, timeline, addresses) and the lookups that lead
    /// to them, so later packets with their ufrags or flows start afresh. Returns the transactions they
    /// referred to.
    fn forget(&mut self, gone: impl Fn(usize) -> bool) -> Vec<TxIndex> {
        for (s, session) in self.sessions.iter_mut().enumerate().skip(self.closed_below) {
            if gone(s) {
                session.pairs = Vec::new();
                session.timeline = Vec::new();
                for a in session.agents.iter_mut() {
                    a.addresses = Vec::new();
                }
            }
        }
        let mut txs = Vec::new();
        self.by_tx.retain(|&tx, r| {
            let ours = gone(r.session);
            if ours {
                txs.push(tx);
            }
            !ours
        });
        self.by_flow.retain(|_, v| !gone(v.0));
        self.flow_generation += 1;
        self.by_ufrags.retain(|_, v| !gone(*v));
        txs
    }

    /// Transactions a live (not frozen) session still reads.
    pub fn referenced_txs(&self) -> impl Iterator<Item = TxIndex> + '_ {
        self.by_tx.keys().copied()
    }

    pub fn end(&self) -> Option<Timestamp> {
        self.sessions.iter().map(|s| s.last.ts).max()
    }

    /// The candidates of agent `agent` (0/1) of session `s` as the wire shows them, each with its type
    /// and how that type was inferred.
    pub fn candidates(&self, s: usize, agent: usize) -> Vec<Candidate> {
        let Some(ag) = self.sessions.get(s).and_then(|x| x.agents.get(agent)) else {
            return Vec::new();
        };
        // A binding or an allocation made after the session's last activity gathered none of its candidates:
        // on a long capture it belongs to a later call that reuses the addresses. (A folded session's view,
        // taken then, sees the same.)
        let until = self
            .sessions
            .get(s)
            .map_or(Timestamp::default(), Session::last_activity);
        let mut out: Vec<Candidate> = ag.addresses.iter().map(|a| self.classify(a, until)).collect();
        // Server-reflexive addresses gathered from one of this agent's addresses but never used in a check,
        // in the order they were seen.
        let mut ours: Vec<usize> = ag
            .addresses
            .iter()
            .flat_map(|a| {
                self.bindings_of(a.address)
                    .filter(move |&(_, b)| b.transport == a.transport && b.seen.ts <= until)
                    .map(|(i, _)| i)
            })
            .collect();
        ours.sort_unstable();
        ours.dedup();
        for b in ours.into_iter().filter_map(|i| self.server_bindings.get(i)) {
            if !out
                .iter()
                .any(|c| c.address == b.mapped && c.transport == b.transport)
            {
                out.push(Candidate {
                    address: b.mapped,
                    transport: b.transport,
                    typ: if b.mapped == b.client {
                        CandidateType::Host
                    } else {
                        CandidateType::Srflx
                    },
                    how: format!(
                        "XOR-MAPPED-ADDRESS from {} {} to {} (frame {}); not used in any check",
                        if b.via_allocate {
                            "TURN server"
                        } else {
                            "STUN server"
                        },
                        b.server,
                        b.client,
                        b.seen.frame
                    ),
                    related: (b.mapped != b.client).then_some(b.client),
                    priority: None,
                    relay_protocol: None,
                    used_in_checks: false,
                    first_frame: b.seen.frame,
                });
            }
        }
        out
    }

    /// The server bindings whose client (base) address is `client`, in the order seen, with their positions
    /// in `server_bindings`.
    pub fn bindings_of(&self, client: SocketAddr) -> impl Iterator<Item = (usize, &ServerBinding)> + '_ {
        self.index
            .by_client
            .get(&client)
            .into_iter()
            .flatten()
            .filter_map(|&i| Some((i, self.server_bindings.get(i)?)))
    }

    /// What address `a` is, from the bindings and allocations seen by `until`.
    fn classify(&self, a: &AgentAddress, until: Timestamp) -> Candidate {
        let mut c = Candidate {
            address: a.address,
            transport: a.transport,
            typ: CandidateType::Host,
            how: String::new(),
            related: None,
            priority: a.priority,
            relay_protocol: None,
            used_in_checks: a.reflected_by_peer.is_none() || a.priority.is_some(),
            first_frame: a.first_seen.frame,
        };
        if let Some(r) = self
            .index
            .relayed
            .get(&a.address)
            .and_then(|&i| self.relayed_addresses.get(i))
            .filter(|r| r.seen.ts <= until)
        {
            c.typ = CandidateType::Relay;
            c.relay_protocol = Some(r.transport);
            c.related = Some(r.client);
            c.how = format!(
                "XOR-RELAYED-ADDRESS of the allocation {} → {} (frame {})",
                r.client, r.server, r.seen.frame
            );
            return c;
        }
        if let Some((client, server)) = a.turn_client {
            c.typ = CandidateType::Relay;
            c.related = Some(client);
            c.how = format!("checks travelled through the TURN allocation {client} → {server} (its Allocate was not captured)");
            return c;
        }
        if let Some(b) = self
            .index
            .by_mapped
            .get(&(a.address, a.transport))
            .and_then(|&i| self.server_bindings.get(i))
            .filter(|b| b.seen.ts <= until)
        {
            if b.client != b.mapped || !is_local(a.address) {
                c.typ = CandidateType::Srflx;
                c.related = (b.client != b.mapped).then_some(b.client);
                c.how = format!(
                    "XOR-MAPPED-ADDRESS from {} {} (frame {})",
                    if b.via_allocate {
                        "TURN server"
                    } else {
                        "STUN server"
                    },
                    b.server,
                    b.seen.frame
                );
                return c;
            }
        }
        if is_local(a.address) {
            c.how = "private, loopback or link-local address: a local interface".into();
            return c;
        }
        let sent_from = a.priority.is_some();
        // Same public IP as a server-reflexive address but another port: the NAT made a new mapping for
        // this destination (address-dependent mapping, RFC 4787 §4.1) — what the peer learns is prflx.
        let remapped = self
            .index
            .by_mapped_ip
            .get(&a.address.ip())
            .into_iter()
            .flatten()
            .filter_map(|&i| self.server_bindings.get(i))
            .find(|b| b.mapped.port() != a.address.port() && b.seen.ts <= until);
        if let Some(seen) = a.reflected_by_peer {
            if !sent_from || remapped.is_some() {
                c.typ = CandidateType::Prflx;
                c.how = match remapped {
                    Some(b) => format!(
                        "XOR-MAPPED-ADDRESS in the peer's check response (frame {}); same IP as server-reflexive {} but another port: a new NAT mapping for this destination",
                        seen.frame, b.mapped
                    ),
                    None => format!("XOR-MAPPED-ADDRESS in the peer's check response (frame {}); no server reported it", seen.frame),
                };
                return c;
            }
        }
        if sent_from {
            if let Some(b) = remapped {
                // Not a candidate of anyone (RFC 8445 §7.2.5.3.1: a peer-reflexive candidate exists only once
                // a peer or a response reported it): the NAT's mapping of a host candidate for this one
                // destination, seen because the capture point is outside the NAT.
                c.typ = CandidateType::NatMapping;
                c.how = format!(
                    "source of the agent's checks; same IP as server-reflexive {} but another port: the NAT made a new mapping for this destination (address-dependent mapping) that no peer learned",
                    b.mapped
                );
                return c;
            }
        }
        c.how = if self
            .bindings_of(a.address)
            .any(|(_, b)| b.mapped != a.address && b.seen.ts <= until)
        {
            "base of a server-reflexive address: a local interface".into()
        } else {
            "source or destination of checks, reported by no server as reflexive or relayed: a host address"
                .into()
        };
        c
    }
}

/// Addresses that only exist on a local network: RFC 1918, loopback, link-local, ULA (RFC 4193), and
/// shared address space (RFC 6598, carrier-grade NAT inside).
pub fn is_local(a: SocketAddr) -> bool {
    match a.ip() {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xC0) == 64)
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Serialised as its `name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
    /// An address on the wire that is no agent's candidate: a NAT's per-destination mapping of a host
    /// candidate that no peer ever learned (the capture point is outside the NAT).
    NatMapping,
}

impl CandidateType {
    /// RFC 8839 §5.1 candidate-types, as webrtc-stats `candidateType`.
    pub fn name(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
            CandidateType::NatMapping => "nat-mapping",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub address: SocketAddr,
    pub transport: Transport,
    pub typ: CandidateType,
    /// How the type was inferred, in words.
    pub how: String,
    /// Base (srflx/prflx) or TURN client address (relay).
    pub related: Option<SocketAddr>,
    pub priority: Option<u32>,
    pub relay_protocol: Option<Transport>,
    pub used_in_checks: bool,
    /// Where the address first appeared.
    pub first_frame: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{self, attr, check, message};
    use crate::analysis::transactions::Transactions;

    fn msg(
        method: Method,
        class: Class,
        id: u16,
        attributes: Vec<crate::wire::stun::Attribute>,
    ) -> StunMessage {
        message(method, class, id, attributes)
    }

    fn success(id: u16, mapped: SocketAddr) -> StunMessage {
        testkit::success(id, Some(mapped))
    }

    struct Driver {
        ice: IceState,
        txs: Transactions,
        ms: u64,
    }

    impl Driver {
        fn new() -> Self {
            Driver {
                ice: IceState::default(),
                txs: Transactions::default(),
                ms: 0,
            }
        }
        fn feed(&mut self, src: &str, dst: &str, m: StunMessage) {
            self.ms += 10;
            testkit::feed(&mut self.txs, &mut self.ice, self.ms, self.ms / 10, src, dst, &m);
        }
    }

    const A: &str = "192.0.2.1:5000";
    const B: &str = "198.51.100.2:6000";

    #[test]
    fn regular_nomination_on_one_pair() {
        let mut d = Driver::new();
        // A (ufrag "aaaa", controlling) checks B ("bbbb"): USERNAME is "RFRAG:LFRAG" = "bbbb:aaaa".
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        d.feed(B, A, success(1, A.parse().unwrap()));
        // B's triggered check, then A nominates with USE-CANDIDATE (RFC 8445 §8.1.1).
        d.feed(B, A, check(2, "aaaa:bbbb", false, false));
        d.feed(A, B, success(2, B.parse().unwrap()));
        d.feed(A, B, check(3, "bbbb:aaaa", true, true));
        d.feed(B, A, success(3, A.parse().unwrap()));
        assert_eq!(d.ice.sessions.len(), 1);
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].ufrag, "aaaa");
        assert_eq!(s.agents[0].role, Some(Role::Controlling));
        assert_eq!(s.agents[1].role, Some(Role::Controlled));
        assert_eq!(s.pairs.len(), 1);
        let p = &s.pairs[0];
        assert_eq!((p.a.to_string(), p.b.to_string()), (A.to_string(), B.to_string()));
        assert_eq!(p.dirs[0].txs.len(), 2);
        assert_eq!(p.dirs[1].txs.len(), 1);
        assert_eq!(p.dirs[0].use_candidate.len(), 1);
        assert_eq!(p.nominations.len(), 1);
        assert!(s.timeline.iter().any(|e| e.kind == EventKind::Nominated));
    }

    #[test]
    fn controlled_first_sender_still_puts_controlling_agent_first() {
        let mut d = Driver::new();
        d.feed(B, A, check(1, "aaaa:bbbb", false, false));
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].ufrag, "aaaa");
        assert_eq!(s.pairs[0].a.to_string(), A);
    }

    #[test]
    fn role_conflict_switch_is_recorded() {
        let mut d = Driver::new();
        // Both think they are controlling; B answers 487, A switches to controlled (RFC 8445 §7.3.1.1).
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        d.feed(
            B,
            A,
            msg(
                Method::BINDING,
                Class::Error,
                1,
                vec![attr(
                    stun::ATTR_ERROR_CODE,
                    AttrValue::ErrorCode {
                        code: 487,
                        reason: "Role Conflict".into(),
                    },
                )],
            ),
        );
        d.feed(A, B, check(2, "bbbb:aaaa", false, false));
        let s = &d.ice.sessions[0];
        assert_eq!(s.agents[0].role, Some(Role::Controlled));
        assert_eq!(s.agents[0].role_changes.len(), 1);
        assert!(s
            .timeline
            .iter()
            .any(|e| matches!(e.kind, EventKind::Error { code: 487, .. })));
        assert!(s.timeline.iter().any(|e| e.kind
            == EventKind::RoleChange {
                role: Role::Controlled
            }));
    }

    #[test]
    fn restart_links_sessions_and_peer_reflexive_addresses_are_learned() {
        let mut d = Driver::new();
        d.feed(A, B, check(1, "bbbb:aaaa", true, false));
        // B saw A's check come from another port: a NAT mapping → prflx for A.
        d.feed(B, A, success(1, "192.0.2.1:7777".parse().unwrap()));
        d.feed(A, B, check(2, "dddd:cccc", true, false));
        assert_eq!(d.ice.sessions.len(), 2);
        assert_eq!(d.ice.sessions[1].restart_of, Some(0));
        let a = &d.ice.sessions[0].agents[0];
        let reflexive = a.addresses.iter().find(|x| x.address.port() == 7777).unwrap();
        assert!(reflexive.reflected_by_peer.is_some());
    }

    #[test]
    fn server_bindings_are_srflx_discovery() {
        let mut d = Driver::new();
        d.feed(
            A,
            "203.0.113.1:3478",
            msg(Method::BINDING, Class::Request, 5, vec![]),
        );
        d.feed(
            "203.0.113.1:3478",
            A,
            success(5, "203.0.113.11:5000".parse().unwrap()),
        );
        assert_eq!(d.ice.server_bindings.len(), 1);
        assert_eq!(d.ice.server_bindings[0].mapped.to_string(), "203.0.113.11:5000");
        assert!(d.ice.sessions.is_empty());
    }

    #[test]
    fn goog_ping_and_media_land_on_the_known_pair() {
        let mut d = Driver::new();
        d.feed(A, B, check(1, "bbbb:aaaa", true, true));
        d.feed(B, A, success(1, A.parse().unwrap()));
        d.feed(A, B, msg(Method::GOOG_PING, Class::Request, 9, vec![]));
        let seen = Seen {
            ts: Timestamp(1_000_000_000),
            frame: 99,
            input: 0,
        };
        let back = Flow {
            src: B.parse().unwrap(),
            dst: A.parse().unwrap(),
            transport: Transport::Udp,
        };
        let pair = d
            .ice
            .pair_of(&back)
            .expect("the pair of the checks' flow, reversed");
        d.ice.on_media(
            pair,
            seen,
            MediaKind::Dtls {
                application_data: false,
            },
            100,
        );
        let p = &d.ice.sessions[0].pairs[0];
        assert_eq!(p.dirs[0].txs.len(), 2);
        assert_eq!(p.media.dtls, 1);
        assert_eq!(p.media.packets, [0, 1]);
    }
}
