//! TURN allocations as seen on the wire (RFC 8656, and RFC 6062 for TCP relaying), and the mapping that
//! turns relayed payloads back into datagrams between the relayed address and the peer.
//!
//! An allocation is keyed by the client's 5-tuple toward the server (RFC 8656 §2.2). For each one this
//! module follows the Allocate exchange (§7: the 401 challenge carrying REALM and NONCE, the authenticated
//! retry, 438 stale-nonce renewals as in RFC 8489 §9.2.4), what was asked for (REQUESTED-TRANSPORT §7.1,
//! address families §7.1/§18.9, EVEN-PORT and RESERVATION-TOKEN §7.1), what was granted (relayed and
//! mapped addresses, LIFETIME), each Refresh (§8; LIFETIME 0 deletes), expiry, permissions (§9: per peer
//! IP, 300 s, installed by CreatePermission and by ChannelBind), channels (§12: number ↔ peer transport
//! address, 600 s), RFC 6062 Connect / ConnectionAttempt / ConnectionBind (§4.3-4.4), every error
//! response, and per peer and direction the packets and bytes carried by Send indications (§11.1), Data
//! indications (§11.4) and ChannelData (§12.4). It also notes what the server would drop without a word:
//! data toward a peer with no permission (§9), ChannelData on an unbound or lapsed channel (§12), traffic
//! on an allocation that had expired (§8).
//!
//! Requests are matched to their responses through `transactions` (the index it hands out), never by a
//! table of our own. Counting uses the carrier messages only, so a capture taken at the server, which also
//! shows the relay ↔ peer leg, counts each relayed datagram once. Times are capture times: at a client they
//! lag the server by half a round trip, which is nothing next to lifetimes of 300-600 s.
//!
//! It does not decode relayed payloads ([`TurnState::relayed_payload`] and [`TurnState::channel_payload`]
//! only name the inner flow; the pipeline decodes it) and does not judge: diagnoses are in
//! `findings::turn`. Every table is bounded by a named constant (`MAX_*`, re-exported here).
//!
//! The map: this file holds [`TurnState`], which hands each STUN message to the part that handles it, and
//! the 5-tuple key and capture time every part shares. `allocation` is one allocation: its lifetime and
//! state, its permissions, channels, peers and RFC 6062 connections, its events and errors, each table
//! with its bound; `table` holds all of them by 5-tuple. `requests` follows Allocate, Refresh,
//! CreatePermission, ChannelBind, Connect and ConnectionBind from request to response or error (RFC 8656
//! §7-§12, RFC 6062 §4.3-4.4); `auth` is what the long-term credential mechanism shows (401 challenges and
//! rejections, stale nonces; RFC 8489 §9.2); `relay` counts Send/Data indications and ChannelData per peer,
//! notes what the server would drop, and names the inner flow of relayed payloads (RFC 8656 §11-§12,
//! [MS-TURN] multiplexed frames). `lab` is the tests' bench, shared by the tests beside each part.
mod allocation;
mod auth;
#[cfg(test)]
mod lab;
mod relay;
mod requests;
mod sleep;
mod table;

pub(crate) use allocation::{
    Allocation, AllocationState, Event, EventKind, TurnError, CHANNEL_LIFETIME_SECS, PERMISSION_LIFETIME_SECS,
};
pub(crate) use auth::CredentialCheck;
pub(crate) use relay::{AllocationLeg, Dropped, PeerTraffic};
pub(crate) use table::Allocations;

use super::transactions::{Transactions, TxEvent, TxIndex};
use crate::capture::Timestamp;
use crate::net::{Datagram, Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{Class, Method, StunMessage, ATTR_XOR_PEER_ADDRESS};
use requests::Pending;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Allocations tracked at once. A busy TURN server holds tens of thousands; past this bound new ones are
/// not tracked (counted), their relayed payloads then stay undecoded.
pub(crate) const MAX_ALLOCATIONS: usize = 65_536;

/// Where something happened: capture time and frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct At {
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationKey {
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) transport: Transport,
}

impl AllocationKey {
    /// The allocation of a message the client sent.
    fn up(flow: &Flow) -> Self {
        AllocationKey {
            client: flow.src,
            server: flow.dst,
            transport: flow.transport,
        }
    }
    /// The allocation of a message the server sent.
    fn down(flow: &Flow) -> Self {
        AllocationKey {
            client: flow.dst,
            server: flow.src,
            transport: flow.transport,
        }
    }
    /// The allocation a (not relayed) transaction belongs to: its requester is the client.
    pub(crate) fn of_request(t: &super::transactions::Transaction) -> Self {
        AllocationKey {
            client: t.requester(),
            server: t.responder(),
            transport: t.transport,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct TurnState {
    pub(crate) allocations: Allocations,
    pub(crate) allocations_not_tracked: u64,
    /// Usernames for which a TURN password was given (`--credentials`): only for them does a failed
    /// MESSAGE-INTEGRITY check say "the client used another password".
    known_users: BTreeSet<String>,
    /// Requests in flight, by transaction index (bounded by [`MAX_PENDING`](requests::MAX_PENDING)).
    pending: BTreeMap<TxIndex, Pending>,
    /// RFC 6062: (server, CONNECTION-ID) → allocation (bounded by
    /// [`MAX_CONNECTION_IDS`](requests::MAX_CONNECTION_IDS)).
    connection_ids: BTreeMap<(SocketAddr, u32), AllocationKey>,
}

impl TurnState {
    /// Requests still awaiting their response: their transactions must not be retired.
    pub(crate) fn pending_txs(&self) -> impl Iterator<Item = TxIndex> + '_ {
        self.pending.keys().copied()
    }

    /// Whether a TURN request waits on transaction `tx`.
    pub(crate) fn is_pending(&self, tx: TxIndex) -> bool {
        self.pending.contains_key(&tx)
    }

    fn entry(&mut self, key: AllocationKey) -> Option<&mut Allocation> {
        if !self.allocations.contains_key(&key) && self.allocations.len() >= MAX_ALLOCATIONS {
            self.allocations_not_tracked += 1;
            return None;
        }
        self.allocations.entry(key)
    }

    /// Learns from one (non-relayed, non-duplicate) STUN message: requests are remembered until their
    /// response (matched by `transactions`), responses move the allocation's life on, indications count
    /// relayed traffic.
    pub(crate) fn on_stun(&mut self, dg: &Datagram<'_>, msg: &StunMessage, tx: TxEvent, txs: &Transactions) {
        if msg.method == Method::MS_SET_ACTIVE_DESTINATION && msg.class == Class::Request {
            self.on_set_active_destination(&dg.flow, msg);
            return;
        }
        if !is_turn_method(msg.method) {
            return;
        }
        let at = At {
            ts: dg.ts,
            frame: dg.frame,
        };
        match msg.class {
            Class::Request => self.on_request(&dg.flow, at, msg, tx),
            Class::Indication => self.on_indication(&dg.flow, at, msg),
            Class::Success | Class::Error => self.on_response(&dg.flow, at, msg, tx),
        }
        // An Allocate answered (its findings read this once its transaction is retired, and also before,
        // where it changes nothing: the answered transaction is among those they read). Noted now, the
        // retire need not wake a sleeping allocation for it.
        if let (Method::ALLOCATE, TxEvent::Response { tx, .. }) = (msg.method, tx) {
            let key = txs
                .get(tx)
                .filter(|t| !t.relayed && t.method == Method::ALLOCATE)
                .map(AllocationKey::of_request);
            if let Some(a) = key.and_then(|k| self.allocations.get_mut(&k)) {
                a.allocate_answered = true;
            }
        }
        for key in [AllocationKey::up(&dg.flow), AllocationKey::down(&dg.flow)] {
            if let Some((_, a)) = self
                .allocations
                .position(&key)
                .and_then(|p| self.allocations.at_mut(p))
            {
                a.last_seen = a.last_seen.max(dg.ts);
            }
        }
    }

    /// Allocations over ([`Allocation::over_at`]) and quiet for more than `quiet_secs` before `now`,
    /// with no request of theirs awaiting an answer: what a file read may fold (`analysis::fold`).
    pub(crate) fn finished(&self, now: Timestamp, quiet_secs: f64) -> Vec<AllocationKey> {
        let waiting: std::collections::HashSet<AllocationKey, crate::net::hash::FastHash> =
            self.pending.values().map(|p| p.key).collect();
        self.allocations
            .over_and_quiet(now, quiet_secs)
            .filter(|k| !waiting.contains(k))
            .copied()
            .collect()
    }

    /// Lets go of `key`'s allocation (folded: its report was rendered) and of what leads to it.
    pub(crate) fn remove(&mut self, key: &AllocationKey) {
        self.connection_ids.retain(|_, k| k != key);
        self.allocations.remove(key);
    }
}

fn peer_of(msg: &StunMessage) -> Option<SocketAddr> {
    msg.attr_value(ATTR_XOR_PEER_ADDRESS).and_then(AttrValue::address)
}

fn text_of(msg: &StunMessage, typ: u16) -> Option<String> {
    msg.attr_value(typ).and_then(AttrValue::text).map(str::to_string)
}

fn u32_of(msg: &StunMessage, typ: u16) -> Option<u32> {
    msg.attr_value(typ).and_then(AttrValue::as_u32)
}

fn is_turn_method(m: Method) -> bool {
    matches!(
        m,
        Method::ALLOCATE
            | Method::REFRESH
            | Method::SEND
            | Method::DATA
            | Method::CREATE_PERMISSION
            | Method::CHANNEL_BIND
            | Method::CONNECT
            | Method::CONNECTION_BIND
            | Method::CONNECTION_ATTEMPT
    )
}
