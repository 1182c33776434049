//! What each address an agent used is: host, server-reflexive, peer-reflexive or relayed (RFC 8445 §5.1.1,
//! §7.2.5.3.1; the names are RFC 8839 §5.1's), or a NAT's per-destination mapping that is no one's
//! candidate (address-dependent mapping, RFC 4787 §4.1). Inferred from the server bindings and allocations
//! seen from [`BINDING_HORIZON_SECS`] before the session's first message to its last activity, with how in
//! words. Candidates an agent gathered but never used on the wire and no server reported cannot be seen
//! and are not listed; SDP is not read.
use super::{AgentAddress, IceState, Session, BINDING_HORIZON_SECS};
use crate::capture::Timestamp;
use crate::net::Transport;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

impl IceState {
    /// The candidates of agent `agent` (0/1) of session `sess` as the wire shows them, each with its type
    /// and how that type was inferred.
    pub(crate) fn candidates(&self, sess: &Session, agent: usize) -> Vec<Candidate> {
        let Some(ag) = sess.agents.get(agent) else {
            return Vec::new();
        };
        // A binding or an allocation made after the session's last activity gathered none of its candidates:
        // on a long capture it belongs to a later call that reuses the addresses; nor did one made more than
        // BINDING_HORIZON_SECS before its first, which belongs to an earlier call (and a file read that
        // folds has retired it, `IceState::retire_bindings`). A folded session's view, taken then, sees the
        // same.
        let window = Window::of(sess);
        let mut out: Vec<Candidate> = ag.addresses.iter().map(|a| self.classify(a, window)).collect();
        // Server-reflexive addresses gathered from one of this agent's addresses but never used in a check,
        // in the order they were seen.
        let mut ours: Vec<usize> = ag
            .addresses
            .iter()
            .flat_map(|a| {
                self.bindings_of(a.address)
                    .filter(move |&(_, b)| b.transport == a.transport && window.holds(b.seen().ts))
                    .map(|(i, _)| i)
            })
            .collect();
        ours.sort_unstable();
        ours.dedup();
        for b in ours.into_iter().filter_map(|i| self.server_bindings.get(i)) {
            if !out
                .iter()
                .any(|c| c.address == b.mapped() && c.transport == b.transport)
            {
                out.push(Candidate {
                    address: b.mapped(),
                    transport: b.transport,
                    typ: if b.mapped() == b.client() {
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
                        b.server(),
                        b.client(),
                        b.seen().frame
                    ),
                    related: (b.mapped() != b.client()).then_some(b.client()),
                    priority: None,
                    relay_protocol: None,
                    used_in_checks: false,
                    first_frame: b.seen().frame,
                });
            }
        }
        out
    }

    /// What address `a` is, from the bindings and allocations seen in `window`.
    fn classify(&self, a: &AgentAddress, window: Window) -> Candidate {
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
            .relayed(a.address)
            .filter_map(|i| self.relayed_addresses.get(i))
            .find(|r| r.address == a.address && window.holds(r.seen.ts))
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
        if let Some((client, server)) = a.turn_client.map(|(c, s)| (c.addr(), s.addr())) {
            c.typ = CandidateType::Relay;
            c.related = Some(client);
            c.how = format!("checks travelled through the TURN allocation {client} → {server} (its Allocate was not captured)");
            return c;
        }
        if let Some(b) = self
            .index
            .mapped(a.address, a.transport)
            .filter_map(|i| self.server_bindings.get(i))
            .find(|b| b.mapped() == a.address && b.transport == a.transport && window.holds(b.seen().ts))
        {
            if b.client() != b.mapped() || !is_local(a.address) {
                c.typ = CandidateType::Srflx;
                c.related = (b.client() != b.mapped()).then_some(b.client());
                c.how = format!(
                    "XOR-MAPPED-ADDRESS from {} {} (frame {})",
                    if b.via_allocate {
                        "TURN server"
                    } else {
                        "STUN server"
                    },
                    b.server(),
                    b.seen().frame
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
            .mapped_ip(a.address.ip())
            .filter_map(|i| self.server_bindings.get(i))
            .find(|b| {
                b.mapped().ip() == a.address.ip()
                    && b.mapped().port() != a.address.port()
                    && window.holds(b.seen().ts)
            });
        if let Some(seen) = a.reflected_by_peer {
            if !sent_from || remapped.is_some() {
                c.typ = CandidateType::Prflx;
                c.how = match remapped {
                    Some(b) => format!(
                        "XOR-MAPPED-ADDRESS in the peer's check response (frame {}); same IP as server-reflexive {} but another port: a new NAT mapping for this destination",
                        seen.frame, b.mapped()
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
                    b.mapped()
                );
                return c;
            }
        }
        c.how = if self
            .bindings_of(a.address)
            .any(|(_, b)| b.mapped() != a.address && window.holds(b.seen().ts))
        {
            "base of a server-reflexive address: a local interface".into()
        } else {
            "source or destination of checks, reported by no server as reflexive or relayed: a host address"
                .into()
        };
        c
    }
}

/// The times a session's candidates can have been gathered in: from [`BINDING_HORIZON_SECS`] before its
/// first message to its last activity.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    since: Timestamp,
    until: Timestamp,
}

impl Window {
    fn of(s: &Session) -> Window {
        Window {
            since: horizon_before(s.first.ts),
            until: s.last_activity(),
        }
    }

    fn holds(self, ts: Timestamp) -> bool {
        self.since <= ts && ts <= self.until
    }
}

/// [`BINDING_HORIZON_SECS`] before `ts` (the capture's start at the earliest).
pub(super) fn horizon_before(ts: Timestamp) -> Timestamp {
    // The horizon is a whole number of seconds: its nanoseconds fit.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ns = (BINDING_HORIZON_SECS * 1e9) as u64;
    Timestamp(ts.0.saturating_sub(ns))
}

/// Addresses that only exist on a local network: RFC 1918, loopback, link-local, ULA (RFC 4193), and
/// shared address space (RFC 6598, carrier-grade NAT inside).
pub(crate) fn is_local(a: SocketAddr) -> bool {
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct Candidate {
    pub(crate) address: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) typ: CandidateType,
    /// How the type was inferred, in words.
    pub(crate) how: String,
    /// Base (srflx/prflx) or TURN client address (relay).
    pub(crate) related: Option<SocketAddr>,
    pub(crate) priority: Option<u32>,
    pub(crate) relay_protocol: Option<Transport>,
    pub(crate) used_in_checks: bool,
    /// Where the address first appeared.
    pub(crate) first_frame: u64,
}
