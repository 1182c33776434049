//! TURN requests and what their responses do to an allocation (RFC 8656): Allocate with what it asks for
//! and what it is granted (§7), Refresh and deletion by LIFETIME 0 (§8), CreatePermission (§9), ChannelBind
//! and the rebindings it may not make (§12.2), RFC 6062's Connect, ConnectionAttempt and ConnectionBind
//! (§4.3-4.4), and every error response (the 401 and 438 records themselves are `auth`'s).
//! A request is remembered, with what it asked for, until its response: `transactions` pairs them, so a
//! retransmission or a second response changes nothing here.
//!
//! A ChannelBind's number is taken as stated, RFC 5766 §11's 0x5000-0x7FFF included (clients still use
//! them; only the server's answer says whether it accepted one). This module does not count relayed data
//! or check it against permissions and channels (`relay` does), and does not check credentials (`auth`
//! records what the server made of them).
use super::allocation::{
    push_frame, Allocation, Channel, EventKind, TcpConnection, TurnError, DEFAULT_LIFETIME_SECS,
    MAX_CHANNELS, MAX_TCP_CONNECTIONS,
};
use super::auth::{is_authenticated, CredentialCheck};
use super::{peer_of, text_of, u32_of, AllocationKey, At, TurnState};
use crate::analysis::transactions::TxEvent;
use crate::net::Flow;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{
    Class, Method, StunMessage, ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_NONCE, ATTR_REALM,
    ATTR_REQUESTED_TRANSPORT, ATTR_SOFTWARE, ATTR_USERNAME, ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS,
    ATTR_XOR_RELAYED_ADDRESS,
};
use std::net::{IpAddr, SocketAddr};

/// Requests waiting for their response. A TURN server answers within milliseconds, so a capture has few
/// in flight; past this bound the oldest, long unanswered, are forgotten.
pub(crate) const MAX_PENDING: usize = 16_384;
/// XOR-PEER-ADDRESS values taken from one CreatePermission (RFC 8656 §9.1 allows several, no limit): an
/// ICE agent sends one; 64 covers batching clients.
pub(crate) const MAX_PEERS_PER_REQUEST: usize = 64;
/// RFC 6062 CONNECTION-IDs remembered across all allocations, to find the allocation of a ConnectionBind
/// (it arrives on a new TCP connection, not on the allocation's 5-tuple).
pub(crate) const MAX_CONNECTION_IDS: usize = 65_536;

const ATTR_REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
const ATTR_EVEN_PORT: u16 = 0x0018;
/// The pre-RFC 5389 XOR-MAPPED-ADDRESS type some servers still send.
const ATTR_XOR_MAPPED_ADDRESS_OLD: u16 = 0x8020;
const ATTR_RESERVATION_TOKEN: u16 = 0x0022;
const ATTR_CONNECTION_ID: u16 = 0x002A;
const ATTR_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
const ATTR_ADDRESS_ERROR_CODE: u16 = 0x8001;

/// What a request asked for, kept until its response arrives.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) key: AllocationKey,
    pub(super) at: At,
    authenticated: bool,
    pub(super) credential: CredentialCheck,
    pub(super) username: Option<String>,
    pub(super) realm: Option<String>,
    pub(super) nonce: Option<String>,
    kind: PendingKind,
}

#[derive(Clone, Debug)]
enum PendingKind {
    Allocate,
    Refresh { lifetime: Option<u32> },
    CreatePermission { peers: Vec<IpAddr> },
    ChannelBind { channel: u16, peer: SocketAddr },
    Connect { peer: SocketAddr },
    ConnectionBind { connection_id: u32, data: SocketAddr },
}

impl TurnState {
    pub(super) fn on_request(&mut self, flow: &Flow, at: At, msg: &StunMessage, tx: TxEvent) {
        let first = match tx {
            TxEvent::Request(_) | TxEvent::None => true,
            // A retransmission asks for nothing new: transactions counts it.
            _ => false,
        };
        let mut key = AllocationKey::up(flow);
        let kind = match msg.method {
            Method::ALLOCATE => PendingKind::Allocate,
            Method::REFRESH => PendingKind::Refresh {
                lifetime: u32_of(msg, ATTR_LIFETIME),
            },
            Method::CREATE_PERMISSION => PendingKind::CreatePermission {
                peers: msg
                    .attributes
                    .iter()
                    .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
                    .filter_map(|a| a.value.address())
                    .map(|p| p.ip())
                    .take(MAX_PEERS_PER_REQUEST)
                    .collect(),
            },
            Method::CHANNEL_BIND => {
                let Some(AttrValue::ChannelNumber(channel)) = msg.attr_value(ATTR_CHANNEL_NUMBER) else {
                    return;
                };
                let Some(peer) = peer_of(msg) else { return };
                PendingKind::ChannelBind {
                    channel: *channel,
                    peer,
                }
            }
            Method::CONNECT => {
                let Some(peer) = peer_of(msg) else { return };
                PendingKind::Connect { peer }
            }
            Method::CONNECTION_BIND => {
                // RFC 6062 §4.4: sent on a new TCP connection; its allocation is the one that got the
                // CONNECTION-ID, not one of this 5-tuple (which must not become an allocation).
                let Some(connection_id) = u32_of(msg, ATTR_CONNECTION_ID) else {
                    return;
                };
                let Some(&alloc) = self.connection_ids.get(&(flow.dst, connection_id)) else {
                    return;
                };
                key = alloc;
                PendingKind::ConnectionBind {
                    connection_id,
                    data: flow.src,
                }
            }
            _ => return,
        };
        let pending = Pending {
            key,
            at,
            authenticated: is_authenticated(msg),
            credential: self.credential_check(msg),
            username: text_of(msg, ATTR_USERNAME),
            realm: text_of(msg, ATTR_REALM),
            nonce: text_of(msg, ATTR_NONCE),
            kind,
        };
        let Some(a) = self.entry(key) else { return };
        // Each request of a client carries the same two, mostly: copied only when they change.
        if let Some(u) = pending
            .username
            .as_ref()
            .filter(|&u| a.username.as_ref() != Some(u))
        {
            a.username = Some(u.clone());
        }
        if let Some(r) = pending.realm.as_ref().filter(|&r| a.realm.as_ref() != Some(r)) {
            a.realm = Some(r.clone());
        }
        if first {
            if let Some(rare) = a.rare.as_deref_mut() {
                rare.stale_nonces.on_request(pending.nonce.as_deref());
            }
        }
        match &pending.kind {
            PendingKind::Allocate => {
                a.allocate_seen = true;
                a.requested_transport = match msg.attr_value(ATTR_REQUESTED_TRANSPORT) {
                    Some(AttrValue::RequestedTransport(p)) => Some(*p),
                    _ => a.requested_transport,
                };
                if let Some(AttrValue::AddressFamily(f)) = msg.attr_value(ATTR_REQUESTED_ADDRESS_FAMILY) {
                    a.rare_mut().requested_family = Some(*f);
                }
                if let Some(AttrValue::AddressFamily(f)) = msg.attr_value(ATTR_ADDITIONAL_ADDRESS_FAMILY) {
                    a.rare_mut().additional_family = Some(*f);
                }
                if let Some(AttrValue::EvenPort { reserve_next }) = msg.attr_value(ATTR_EVEN_PORT) {
                    a.rare_mut().even_port = Some(*reserve_next);
                }
                if let Some(t) = msg.attr_value(ATTR_RESERVATION_TOKEN).and_then(AttrValue::as_u64) {
                    a.rare_mut().reservation_token_used = Some(t);
                }
                if first {
                    a.event(
                        at,
                        EventKind::AllocateRequested {
                            authenticated: pending.authenticated,
                        },
                    );
                }
            }
            PendingKind::CreatePermission { peers } if first => {
                for &ip in peers {
                    if let Some(p) = a.permission(ip, at) {
                        p.pending_since = Some(at.ts);
                        push_frame(&mut p.frames, at.frame);
                    }
                }
            }
            PendingKind::ChannelBind { channel, peer } if first => {
                let (channel, peer) = (*channel, *peer);
                let taken_number = a
                    .channels
                    .get(&channel)
                    .is_some_and(|c| c.peer != peer && c.reserved_at(at.ts));
                let taken_peer = a
                    .channels
                    .iter()
                    .any(|(&n, c)| n != channel && c.peer == peer && c.reserved_at(at.ts));
                if taken_number || taken_peer {
                    // RFC 8656 §12.2: the server answers 400. Keep the binding that holds, so ChannelData
                    // on it still decodes to the right peer.
                    a.channel_conflicts.note(at, 0, Some(peer), Some(channel));
                    a.event(at, EventKind::ChannelConflict { channel, peer });
                } else {
                    let fits = a.channels.len() < MAX_CHANNELS || a.channels.contains_key(&channel);
                    if fits {
                        let c = a.channels.get_or_insert_with(channel, || Channel::new(peer, at));
                        if c.peer != peer {
                            // The old binding lapsed long enough ago (§12): a new binding starts.
                            *c = Channel::new(peer, at);
                        }
                        c.pending_since = Some(at.ts);
                        push_frame(&mut c.frames, at.frame);
                    }
                }
                // §12.2: the binding also installs the peer's permission.
                if let Some(p) = a.permission(peer.ip(), at) {
                    p.pending_since = Some(at.ts);
                }
            }
            _ => {}
        }
        if first {
            self.remember(tx, pending);
        }
    }

    fn remember(&mut self, tx: TxEvent, pending: Pending) {
        let TxEvent::Request(i) = tx else { return };
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_first();
        }
        self.pending.insert(i, pending);
    }

    /// A ConnectionAttempt indication (RFC 6062 §4.4): a peer opened a TCP connection to the relayed address.
    pub(super) fn on_connection_attempt(&mut self, flow: &Flow, at: At, msg: &StunMessage) {
        let Some(connection_id) = u32_of(msg, ATTR_CONNECTION_ID) else {
            return;
        };
        let peer = peer_of(msg);
        let key = AllocationKey::down(flow);
        self.new_connection(key, connection_id, peer, false, at);
    }

    /// RFC 6062: a peer connection got its CONNECTION-ID.
    fn new_connection(
        &mut self,
        key: AllocationKey,
        connection_id: u32,
        peer: Option<SocketAddr>,
        initiated_by_client: bool,
        at: At,
    ) {
        if self.connection_ids.len() < MAX_CONNECTION_IDS
            || self.connection_ids.contains_key(&(key.server, connection_id))
        {
            self.connection_ids.insert((key.server, connection_id), key);
        }
        let Some(a) = self.entry(key) else { return };
        let connections = &mut a.rare_mut().tcp_connections;
        if connections.len() < MAX_TCP_CONNECTIONS || connections.contains_key(&connection_id) {
            connections.insert(
                connection_id,
                TcpConnection {
                    peer,
                    initiated_by_client,
                    at,
                    data_connection: None,
                    bound_at: None,
                    failed: None,
                },
            );
        }
        if let Some(peer) = peer {
            let kind = if initiated_by_client {
                EventKind::Connected { connection_id, peer }
            } else {
                EventKind::ConnectionAttempt { connection_id, peer }
            };
            a.event(at, kind);
        }
    }

    pub(super) fn on_response(&mut self, flow: &Flow, at: At, msg: &StunMessage, tx: TxEvent) {
        let pending = match tx {
            TxEvent::Response { tx, first: true } => self.pending.remove(&tx),
            // A second response to a retransmitted request changes nothing (transactions counts it).
            TxEvent::Response { first: false, .. } => return,
            _ => None,
        };
        let key = pending
            .as_ref()
            .map_or_else(|| AllocationKey::down(flow), |p| p.key);
        let error = (msg.class == Class::Error).then(|| error_of(msg)).flatten();
        if msg.method == Method::CONNECT && msg.class == Class::Success {
            if let (Some(connection_id), Some(PendingKind::Connect { peer })) =
                (u32_of(msg, ATTR_CONNECTION_ID), pending.as_ref().map(|p| &p.kind))
            {
                let peer = *peer;
                self.new_connection(key, connection_id, Some(peer), true, at);
            }
        }
        // Responses create an allocation only for Allocate (an orphan response still shows the attempt);
        // any other method on an unknown 5-tuple is not TURN we follow.
        let a = if msg.method == Method::ALLOCATE {
            self.entry(key)
        } else {
            self.allocations.get_mut(&key)
        };
        let Some(a) = a else { return };
        if let Some(s) = text_of(msg, ATTR_SOFTWARE) {
            a.software = Some(s);
        }
        if let Some(r) = text_of(msg, ATTR_REALM) {
            a.realm = Some(r);
        }
        match (msg.class, error) {
            (Class::Success, _) => on_success(a, at, msg, pending.as_ref()),
            (_, Some(ErrorCode { code, reason })) => {
                on_error(a, at, msg.method, code, reason, pending.as_ref());
            }
            // An error response without a readable ERROR-CODE: nothing to learn.
            _ => {}
        }
    }
}

/// The ERROR-CODE of an error response (RFC 8489 §14.8).
struct ErrorCode {
    code: u16,
    reason: String,
}

fn error_of(msg: &StunMessage) -> Option<ErrorCode> {
    msg.attributes.iter().find_map(|a| match &a.value {
        AttrValue::ErrorCode { code, reason } => Some(ErrorCode {
            code: *code,
            reason: reason.clone(),
        }),
        _ => None,
    })
}

fn on_success(a: &mut Allocation, at: At, msg: &StunMessage, pending: Option<&Pending>) {
    a.success();
    match msg.method {
        Method::ALLOCATE => {
            a.allocate_seen = true;
            let relayed: Vec<SocketAddr> = msg
                .attributes
                .iter()
                .filter(|x| x.typ == ATTR_XOR_RELAYED_ADDRESS)
                .filter_map(|x| x.value.address())
                .collect();
            let mapped = msg
                .attr_value(ATTR_XOR_MAPPED_ADDRESS)
                .or_else(|| msg.attr_value(ATTR_XOR_MAPPED_ADDRESS_OLD))
                .and_then(AttrValue::address);
            let lifetime = u32_of(msg, ATTR_LIFETIME).unwrap_or(DEFAULT_LIFETIME_SECS);
            if a.deleted_at.is_some() || a.gone_at.is_some() {
                // The 5-tuple is reused for a new allocation after the old one ended (RFC 8656 §7.2
                // allows it): the lifecycle starts again, the counters and events go on.
                a.deleted_at = None;
                a.gone_at = None;
                a.created_at = None;
            }
            if a.created_at.is_none() {
                a.created_at = Some(at);
            }
            a.refreshed_at = Some(at);
            a.lifetime = Some(lifetime);
            if !relayed.is_empty() {
                a.relayed = relayed.clone();
            }
            a.mapped = mapped.or(a.mapped);
            if let Some(t) = msg.attr_value(ATTR_RESERVATION_TOKEN).and_then(AttrValue::as_u64) {
                a.rare_mut().reservation_token = Some(t);
            }
            // RFC 8656 §7.1 (dual allocation): the family that could not be allocated is reported in a
            // success response.
            for x in &msg.attributes {
                if let AttrValue::AddressErrorCode { family, code, reason } = &x.value {
                    if x.typ == ATTR_ADDRESS_ERROR_CODE {
                        a.error(TurnError {
                            at,
                            request: pending.map(|p| p.at),
                            method: msg.method,
                            code: *code,
                            reason: reason.clone(),
                            family: Some(*family),
                            authenticated_request: pending.is_some_and(|p| p.authenticated),
                        });
                    }
                }
            }
            a.event(at, EventKind::Allocated { relayed, lifetime });
        }
        Method::REFRESH => {
            let requested = match pending.map(|p| &p.kind) {
                Some(PendingKind::Refresh { lifetime }) => *lifetime,
                _ => None,
            };
            // §8: the response states the lifetime granted; 0 (or a request for 0) deletes.
            let granted = u32_of(msg, ATTR_LIFETIME).or(requested);
            if granted == Some(0) {
                if a.deleted_at.is_none() {
                    a.deleted_at = Some(at);
                    a.event(at, EventKind::Deleted);
                }
            } else {
                let lifetime = granted.unwrap_or(DEFAULT_LIFETIME_SECS);
                a.refreshed_at = Some(at);
                a.lifetime = Some(lifetime);
                a.refreshes += 1;
                a.event(at, EventKind::Refreshed { lifetime });
            }
        }
        Method::CREATE_PERMISSION => {
            if let Some(PendingKind::CreatePermission { peers }) = pending.map(|p| &p.kind) {
                for &ip in peers {
                    a.install_permission(ip, at, false);
                }
            }
        }
        Method::CHANNEL_BIND => {
            let Some(PendingKind::ChannelBind { channel, peer }) = pending.map(|p| &p.kind) else {
                return;
            };
            let (channel, peer) = (*channel, *peer);
            let fits = a.channels.len() < MAX_CHANNELS || a.channels.contains_key(&channel);
            if fits {
                let c = a.channels.get_or_insert_with(channel, || Channel::new(peer, at));
                // A binding the RFC forbids that the server accepted anyway: the server is the judge.
                let rebound = c.peer != peer;
                if rebound {
                    c.peer = peer;
                    c.bound_at = None;
                }
                let first = c.bound_at.is_none();
                if first {
                    c.bound_at = Some(at);
                } else {
                    c.refreshes += 1;
                }
                c.refreshed_at = Some(at);
                c.pending_since = None;
                c.failed = None;
                push_frame(&mut c.frames, at.frame);
                let kind = if first {
                    EventKind::ChannelBound { channel, peer }
                } else {
                    EventKind::ChannelRefreshed { channel, peer }
                };
                a.event(at, kind);
            }
            a.install_permission(peer.ip(), at, true);
        }
        Method::CONNECTION_BIND => {
            if let Some(PendingKind::ConnectionBind { connection_id, data }) = pending.map(|p| &p.kind) {
                if let Some(c) = a.tcp_connection_mut(*connection_id) {
                    c.data_connection = Some(*data);
                    c.bound_at = Some(at);
                }
                a.event(
                    at,
                    EventKind::ConnectionBound {
                        connection_id: *connection_id,
                        data: *data,
                    },
                );
            }
        }
        _ => {}
    }
}

fn on_error(
    a: &mut Allocation,
    at: At,
    method: Method,
    code: u16,
    reason: String,
    pending: Option<&Pending>,
) {
    if method == Method::ALLOCATE {
        a.allocate_seen = true;
    }
    let authenticated = pending.is_some_and(|p| p.authenticated);
    a.error(TurnError {
        at,
        request: pending.map(|p| p.at),
        method,
        code,
        reason,
        family: None,
        authenticated_request: authenticated,
    });
    match code {
        // Without the request we cannot tell a challenge from a rejection.
        401 if pending.is_none() => a.event(at, EventKind::Failed { method, code }),
        401 if !authenticated => a.event(at, EventKind::Challenged),
        401 => a.credential_rejected(at, method, pending),
        438 => a.stale_nonce(at, method, pending),
        437 if method == Method::REFRESH => {
            let deleting = matches!(
                pending.map(|p| &p.kind),
                Some(PendingKind::Refresh { lifetime: Some(0) })
            );
            // A delete answered 437 finds the allocation already gone: deleted either way.
            if deleting {
                if a.deleted_at.is_none() {
                    a.deleted_at = Some(at);
                    a.event(at, EventKind::Deleted);
                }
            } else {
                if a.gone_at.is_none() && a.deleted_at.is_none() {
                    a.gone_at = Some(at);
                }
                a.event(at, EventKind::Gone);
            }
        }
        _ => a.event(at, EventKind::Failed { method, code }),
    }
    match pending.map(|p| &p.kind) {
        Some(PendingKind::CreatePermission { peers }) => {
            for ip in peers {
                if let Some(p) = a.permissions.get_mut(ip) {
                    p.pending_since = None;
                    p.failed = Some(code);
                    push_frame(&mut p.frames, at.frame);
                }
            }
        }
        Some(PendingKind::ChannelBind { channel, peer }) => {
            if let Some(c) = a.channels.get_mut(channel) {
                if c.peer == *peer {
                    c.pending_since = None;
                    c.failed = Some(code);
                    push_frame(&mut c.frames, at.frame);
                }
            }
            if let Some(p) = a.permissions.get_mut(&peer.ip()) {
                p.pending_since = None;
            }
        }
        Some(PendingKind::ConnectionBind { connection_id, .. }) => {
            if let Some(c) = a.tcp_connection_mut(*connection_id) {
                c.failed = Some(code);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Each request's path from request to response or error, driven through the lab.
    use super::*;
    use crate::analysis::findings::turn::findings;
    use crate::analysis::turn::lab::*;
    use crate::analysis::turn::AllocationState;
    use crate::analysis::Model;
    use crate::net::{Datagram, Transport};

    #[test]
    fn the_401_challenge_then_success_is_a_normal_start() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let a = lab.alloc();
        assert_eq!(a.relayed, vec![addr(RELAYED)]);
        assert_eq!(a.mapped, Some(addr(CLIENT)));
        assert_eq!(a.requested_transport, Some(17));
        assert_eq!(a.username.as_deref(), Some("alice"));
        assert_eq!(a.realm.as_deref(), Some("example.org"));
        assert_eq!(a.created_at, Some(At { ts: ms(3), frame: 4 }));
        assert_eq!(a.errors.len(), 1);
        assert!(!a.errors[0].authenticated_request);
        assert!(a.rejections.is_empty());
        assert_eq!(a.events[1].kind, EventKind::Challenged);
        assert_eq!(a.state(ms(1000)), AllocationState::Active);
        assert!(lab.codes(1000).is_empty());
    }

    #[test]
    fn refresh_with_lifetime_zero_deletes() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let mut attrs = vec![lifetime(0)];
        attrs.extend(credentials("n1"));
        lab.up(10_000, msg(Method::REFRESH, Class::Request, 10, attrs));
        let f = lab.down(
            10_001,
            msg(Method::REFRESH, Class::Success, 10, vec![lifetime(0)]),
        );
        let a = lab.alloc();
        assert_eq!(
            a.deleted_at,
            Some(At {
                ts: ms(10_001),
                frame: f
            })
        );
        assert_eq!(a.refreshes, 0);
        assert_eq!(a.expires_at(), None);
        // Deleted stays deleted, however long the capture goes on.
        assert_eq!(a.state(ms(10_000_000)), AllocationState::Deleted);
        assert_eq!(a.events.last().map(|e| &e.kind), Some(&EventKind::Deleted));
    }

    #[test]
    fn a_refresh_answered_437_means_the_allocation_is_gone() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let mut attrs = vec![lifetime(600)];
        attrs.extend(credentials("n1"));
        lab.up(700_000, msg(Method::REFRESH, Class::Request, 10, attrs));
        lab.down(
            700_001,
            msg(
                Method::REFRESH,
                Class::Error,
                10,
                vec![error(437, "Allocation Mismatch")],
            ),
        );
        let a = lab.alloc();
        assert_eq!(a.state(ms(800_000)), AllocationState::Expired);
        assert_eq!(a.expires_at(), Some(ms(700_001)));
        assert!(lab.codes(800_000).contains(&"turn.refresh.failed"));
    }

    #[test]
    fn channel_rebinding_is_refused_and_the_old_binding_holds() {
        let mut lab = Lab::new();
        lab.allocate(0, 3600);
        lab.channel_bind(1_000, 3, 0x4000, PEER, None);
        // 0x4000 is bound to PEER: binding it to OTHER is refused (RFC 8656 §12.2).
        lab.channel_bind(2_000, 4, 0x4000, OTHER, Some(400));
        // And PEER is bound to 0x4000: binding it to 0x4001 is refused too.
        lab.channel_bind(3_000, 5, 0x4001, PEER, Some(400));
        let unbound = lab.channel_data(4_000, true, 0x4002, 20);
        let dg = Datagram {
            ts: ms(4_000),
            frame: 99,
            input: 0,
            flow: Flow {
                src: addr(CLIENT),
                dst: addr(SERVER),
                transport: Transport::Udp,
            },
            payload: &[],
        };
        let (inner, _) = lab.turn.channel_payload(&dg, 0x4000).unwrap();
        assert_eq!((inner.src, inner.dst), (addr(RELAYED), addr(PEER)));
        // Bound at 1.001 s for 600 s: lapsed at 601.001 s.
        let lapsed = lab.channel_data(700_000, true, 0x4000, 30);
        // 5 min after the lapse (901.001 s) the number may go to another peer.
        lab.channel_bind(1_000_000, 6, 0x4000, OTHER, None);
        let a = lab.alloc();
        assert_eq!(a.channel_conflicts.packets, 2);
        assert_eq!(a.channels[&0x4000].peer, addr(OTHER));
        // A refused binding creates no channel.
        assert!(!a.channels.contains_key(&0x4001));
        assert_eq!(a.unbound_channel.frames, vec![unbound]);
        assert_eq!(a.rare().unknown_channel.channel_data_to_peer, 1);
        assert_eq!(a.channel_lapsed.frames, vec![lapsed]);
        assert_eq!(a.error_counts.get(&400), Some(&2));
        let codes = lab.codes(1_100_000);
        for c in [
            "turn.channel.rebind",
            "turn.channel.unbound",
            "turn.channel.expired",
        ] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
        // The 400s are worded by the rebind finding, not again as generic errors.
        assert!(!codes.contains(&"turn.error"), "{codes:?}");
    }

    #[test]
    fn an_unanswered_allocate_fails_and_times_out_after_the_rfc_give_up_time() {
        let mut lab = Lab::new();
        // RFC 8489 §6.2.1 with RTO 500 ms: sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
        for t in [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500] {
            lab.up(t, msg(Method::ALLOCATE, Class::Request, 1, vec![]));
        }
        assert_eq!(lab.alloc().state(ms(45_000)), AllocationState::Failed);
        assert_eq!(lab.txs.list[0].transmissions, 7);
        let model = Model {
            turn: lab.turn,
            transactions: lab.txs,
            last_ts: Some(ms(45_000)),
            ..Model::default()
        };
        let f: Vec<_> = findings(&model)
            .into_iter()
            .filter_map(crate::analysis::findings::Entry::into_held)
            .collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "turn.allocate.no-response");
        // 45 s ≥ the 39.5 s give-up time after the first transmission: an error, not a maybe.
        assert_eq!(f[0].severity, crate::analysis::findings::Severity::Error);
        assert_eq!(f[0].frames, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn rfc6062_connections_are_found_through_their_connection_id() {
        let mut lab = Lab::new();
        lab.transport = Transport::Tcp;
        lab.up(
            0,
            msg(
                Method::ALLOCATE,
                Class::Request,
                1,
                vec![(ATTR_REQUESTED_TRANSPORT, AttrValue::RequestedTransport(6), 4)],
            ),
        );
        lab.down(
            1,
            msg(
                Method::ALLOCATE,
                Class::Success,
                1,
                vec![(ATTR_XOR_RELAYED_ADDRESS, AttrValue::Address(addr(RELAYED)), 8)],
            ),
        );
        lab.up(10, msg(Method::CONNECT, Class::Request, 2, vec![peer(PEER)]));
        lab.down(
            11,
            msg(
                Method::CONNECT,
                Class::Success,
                2,
                vec![(ATTR_CONNECTION_ID, AttrValue::U32(7), 4)],
            ),
        );
        // RFC 6062 §4.4: ConnectionBind comes on a new TCP connection from another client port.
        let data_conn = "192.0.2.10:40001";
        let bind = msg(
            Method::CONNECTION_BIND,
            Class::Request,
            3,
            vec![(ATTR_CONNECTION_ID, AttrValue::U32(7), 4)],
        );
        lab.stun(20, data_conn, SERVER, &bind);
        let ok = msg(Method::CONNECTION_BIND, Class::Success, 3, vec![]);
        lab.stun(21, SERVER, data_conn, &ok);
        lab.down(
            30,
            msg(
                Method::CONNECTION_ATTEMPT,
                Class::Indication,
                4,
                vec![(ATTR_CONNECTION_ID, AttrValue::U32(9), 4), peer(OTHER)],
            ),
        );
        assert_eq!(
            lab.turn.allocations.len(),
            1,
            "the data connection is not an allocation"
        );
        let a = lab.alloc();
        assert_eq!(a.requested_transport, Some(6));
        let c = &a.rare().tcp_connections[&7];
        assert!(c.initiated_by_client);
        assert_eq!(c.peer, Some(addr(PEER)));
        assert_eq!(c.data_connection, Some(addr(data_conn)));
        assert_eq!(c.bound_at, Some(At { ts: ms(21), frame: 6 }));
        let c = &a.rare().tcp_connections[&9];
        assert!(!c.initiated_by_client);
        assert_eq!(c.data_connection, None);
    }

    /// A long relayed call's settled requests leave the transaction table 45 s after they went quiet,
    /// and its findings stay what the whole table gave: an Allocate lost before the answered one is no
    /// `turn.allocate.no-response` once the answered ones are gone (the allocation keeps that one was
    /// answered), and a Refresh that got no answer is still reported.
    #[test]
    fn settled_requests_leave_the_table_and_the_findings_stay() {
        let run = || {
            let mut lab = Lab::new();
            let transport = (ATTR_REQUESTED_TRANSPORT, AttrValue::RequestedTransport(17), 4);
            lab.up(0, msg(Method::ALLOCATE, Class::Request, 9, vec![transport]));
            lab.allocate(40_000, 600);
            lab.create_permission(41_000, 3, PEER);
            lab.channel_bind(42_000, 4, 0x4000, PEER, None);
            let mut attrs = vec![lifetime(600)];
            attrs.extend(credentials("n1"));
            lab.up(300_000, msg(Method::REFRESH, Class::Request, 10, attrs.clone()));
            lab.down(
                300_001,
                msg(Method::REFRESH, Class::Success, 10, vec![lifetime(600)]),
            );
            lab.up(500_000, msg(Method::REFRESH, Class::Request, 11, attrs));
            Model {
                turn: lab.turn,
                transactions: lab.txs,
                last_ts: Some(ms(600_000)),
                ..Model::default()
            }
        };
        let codes = |model: &Model| -> Vec<&'static str> {
            findings(model)
                .into_iter()
                .filter_map(crate::analysis::findings::Entry::into_held)
                .map(|f| f.code)
                .collect()
        };
        let whole = run();
        // (Nothing was relayed: unused.)
        assert_eq!(
            codes(&whole),
            ["turn.refresh.no-response", "turn.allocation.unused"]
        );
        let mut settled = run();
        // 45 s after the answered Refresh: only the lost Allocate and the unanswered Refresh are left.
        settled.retire_settled_requests(ms(345_002));
        let left: Vec<u8> = settled.transactions.iter().map(|t| t.id.0[0]).collect();
        assert_eq!(left, [9, 11]);
        assert_eq!(settled.transactions.retired, 5);
        assert_eq!(codes(&settled), codes(&whole));
        // The lost Refresh is final too, but its finding reads it: it stays, also once no longer awaited
        // (the requests awaited are bounded, `MAX_PENDING`).
        settled.turn.pending.clear();
        settled.retire_settled_requests(ms(600_000));
        assert_eq!(settled.transactions.iter().count(), 2);
        assert_eq!(codes(&settled), codes(&whole));
    }
}
