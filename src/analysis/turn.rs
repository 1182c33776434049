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
//! `findings::turn`. Every table is bounded by a constant below.
use super::findings::MAX_EVIDENCE_FRAMES;
use super::transactions::{Transactions, TxEvent, TxIndex, GIVE_UP_SECS};
use super::{Relay, RelayVia};
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::net::{Datagram, Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::{KeyKind, Keyring};
use crate::wire::stun::{
    Class, Method, StunMessage, Verdict, ATTR_CHANNEL_NUMBER, ATTR_DATA, ATTR_LIFETIME,
    ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE, ATTR_REALM, ATTR_REQUESTED_TRANSPORT,
    ATTR_SOFTWARE, ATTR_USERNAME, ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// Allocations tracked at once. A busy TURN server holds tens of thousands; past this bound new ones are
/// not tracked (counted), their relayed payloads then stay undecoded.
pub const MAX_ALLOCATIONS: usize = 65_536;
/// RFC 8656 §12: channel numbers 0x4000-0x4FFF, so at most 4096 channels per allocation.
pub const MAX_CHANNELS: usize = 4096;
/// Permissions per allocation. An ICE agent asks for one per remote candidate IP, a handful in a call; an
/// SFU behind a relay may ask for more. Past this bound further peers are counted, not tracked.
pub const MAX_PERMISSIONS: usize = 1024;
/// Peers (transport addresses) with traffic counters per allocation, for the same reason as
/// [`MAX_PERMISSIONS`]; traffic to further peers is counted in [`Allocation::peers_not_tracked`].
pub const MAX_PEERS: usize = 1024;
/// Lifecycle events kept per allocation. A one-hour call refreshes the allocation ~6 times and each
/// permission or channel 6-12 times (lifetimes of 600 s and 300 s, RFC 8656 §8, §9, §12); 256 events tell
/// the story of any real call, later ones are only counted.
pub const MAX_EVENTS: usize = 256;
/// Error responses kept per allocation. A failing client retries a handful of times (a 401 after the
/// authenticated retry ends the attempt, RFC 8656 §7.3); later errors are counted in `errors_not_kept`.
pub const MAX_ERRORS: usize = 64;
/// Frames listed per permission or channel: the first requests and responses show how it was set up.
pub const MAX_FRAMES_PER_ENTRY: usize = 16;
/// Requests waiting for their response. A TURN server answers within milliseconds, so a capture has few
/// in flight; past this bound the oldest, long unanswered, are forgotten.
pub const MAX_PENDING: usize = 16_384;
/// XOR-PEER-ADDRESS values taken from one CreatePermission (RFC 8656 §9.1 allows several, no limit): an
/// ICE agent sends one; 64 covers batching clients.
pub const MAX_PEERS_PER_REQUEST: usize = 64;
/// RFC 6062 TCP connections remembered per allocation (each peer connection has one).
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// RFC 6062 CONNECTION-IDs remembered across all allocations, to find the allocation of a ConnectionBind
/// (it arrives on a new TCP connection, not on the allocation's 5-tuple).
pub const MAX_CONNECTION_IDS: usize = 65_536;
/// Auth rejections kept per allocation (all are counted): the first shows what was tried.
pub const MAX_REJECTIONS: usize = 8;

/// RFC 8656 §9: a permission lasts 300 s and cannot be given another lifetime.
pub const PERMISSION_LIFETIME_SECS: f64 = 300.0;
/// RFC 8656 §12: a channel binding lasts 600 s unless refreshed.
pub const CHANNEL_LIFETIME_SECS: f64 = 600.0;
/// RFC 8656 §12: after a binding lapses, neither its number nor its peer may be bound differently for
/// another 5 minutes.
pub const CHANNEL_REUSE_GUARD_SECS: f64 = 300.0;
/// RFC 8656 §3.2 / §7.2: the default allocation lifetime, used when a success response omits LIFETIME.
pub const DEFAULT_LIFETIME_SECS: u32 = 600;

const ATTR_REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
const ATTR_EVEN_PORT: u16 = 0x0018;
/// The pre-RFC 5389 XOR-MAPPED-ADDRESS type some servers still send.
const ATTR_XOR_MAPPED_ADDRESS_OLD: u16 = 0x8020;
const ATTR_RESERVATION_TOKEN: u16 = 0x0022;
const ATTR_CONNECTION_ID: u16 = 0x002A;
const ATTR_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
const ATTR_ADDRESS_ERROR_CODE: u16 = 0x8001;

/// Where something happened: capture time and frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub ts: Timestamp,
    pub frame: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
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
}

/// An allocation's state at the end of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationState {
    /// Granted (or in use before the capture began) and not yet lapsed.
    Active,
    /// A Refresh with LIFETIME 0 succeeded (RFC 8656 §8).
    Deleted,
    /// The lifetime ran out inside the capture, or the server said it no longer has it (437 to a Refresh).
    Expired,
    /// No Allocate request succeeded.
    Failed,
}

impl AllocationState {
    pub fn name(self) -> &'static str {
        match self {
            AllocationState::Active => "active",
            AllocationState::Deleted => "deleted",
            AllocationState::Expired => "expired",
            AllocationState::Failed => "failed",
        }
    }
}

/// What iceview could tell about the credential of a request the server rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialCheck {
    /// No password for this user was given to iceview (or no MESSAGE-INTEGRITY to check).
    Unchecked,
    /// MESSAGE-INTEGRITY verifies with the password given to iceview for this user.
    Matches,
    /// A password for this user was given to iceview and MESSAGE-INTEGRITY does not verify with it.
    DiffersFromGiven,
}

/// A request the server answered with 401 although it carried USERNAME and MESSAGE-INTEGRITY: the
/// credential itself was refused (RFC 8489 §9.2.4), not merely missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRejection {
    pub method: Method,
    pub request: Option<At>,
    pub response: At,
    pub username: Option<String>,
    pub realm: Option<String>,
    pub credential: CredentialCheck,
}

/// One error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnError {
    pub at: At,
    pub request: Option<At>,
    pub method: Method,
    pub code: u16,
    pub reason: String,
    /// For an ADDRESS-ERROR-CODE (RFC 8656 §18.12) in a success response: the address family (1 = IPv4,
    /// 2 = IPv6) that could not be allocated.
    pub family: Option<u8>,
    /// The request carried USERNAME and MESSAGE-INTEGRITY: a 401 then means "credential rejected", not
    /// the challenge every client gets first.
    pub authenticated_request: bool,
}

/// A step in an allocation's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    AllocateRequested {
        authenticated: bool,
    },
    /// 401 to a request without credentials: the normal first step (RFC 8656 §7.2, RFC 8489 §9.2.4).
    Challenged,
    Allocated {
        relayed: Vec<SocketAddr>,
        lifetime: u32,
    },
    Refreshed {
        lifetime: u32,
    },
    Deleted,
    /// 438: the nonce expired; the client is expected to retry with the new one.
    StaleNonce {
        method: Method,
    },
    /// 401 to a request with credentials.
    CredentialRejected {
        method: Method,
    },
    /// Any other error response.
    Failed {
        method: Method,
        code: u16,
    },
    /// 437 to a Refresh: the server has no allocation for this 5-tuple any more.
    Gone,
    PermissionInstalled {
        peer: IpAddr,
        by_channel_bind: bool,
    },
    PermissionRefreshed {
        peer: IpAddr,
        by_channel_bind: bool,
    },
    ChannelBound {
        channel: u16,
        peer: SocketAddr,
    },
    ChannelRefreshed {
        channel: u16,
        peer: SocketAddr,
    },
    /// A ChannelBind that the RFC forbids: the number is bound to another peer, or the peer to another
    /// number (RFC 8656 §12.2; the server answers 400).
    ChannelConflict {
        channel: u16,
        peer: SocketAddr,
    },
    /// RFC 6062 §4.3: the client's Connect succeeded.
    Connected {
        connection_id: u32,
        peer: SocketAddr,
    },
    /// RFC 6062 §4.4: a peer opened a TCP connection to the relayed address.
    ConnectionAttempt {
        connection_id: u32,
        peer: SocketAddr,
    },
    /// RFC 6062 §4.4: ConnectionBind succeeded; `data` is the client's end of the data connection.
    ConnectionBound {
        connection_id: u32,
        data: SocketAddr,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: At,
    pub kind: EventKind,
}

/// A permission for one peer IP (RFC 8656 §9: the port does not matter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub requested_at: At,
    /// First success.
    pub installed_at: Option<At>,
    /// Last success: the 300 s run from here.
    pub refreshed_at: Option<At>,
    /// Successes after the first.
    pub refreshes: u32,
    /// The last success came from a ChannelBind (§12.2 installs or refreshes the peer's permission).
    pub by_channel_bind: bool,
    /// A request for it is in flight since then; the server acts on it before the client sees the answer.
    pub pending_since: Option<Timestamp>,
    /// The last error response to a request for it.
    pub failed: Option<u16>,
    pub frames: Vec<u64>,
}

impl Permission {
    fn new(at: At) -> Self {
        Permission {
            requested_at: at,
            installed_at: None,
            refreshed_at: None,
            refreshes: 0,
            by_channel_bind: false,
            pending_since: None,
            failed: None,
            frames: Vec::new(),
        }
    }
    /// When it lapses (300 s after the last success).
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.refreshed_at
            .map(|r| r.ts.saturating_add_secs(PERMISSION_LIFETIME_SECS))
    }
    /// Whether the server would accept data for this peer at `ts`: installed and not lapsed, or a
    /// request for it is still in flight (and the client has not yet given up on it).
    pub fn usable_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts <= e) || in_flight(self.pending_since, ts)
    }
}

/// A channel (RFC 8656 §12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub peer: SocketAddr,
    pub requested_at: At,
    pub bound_at: Option<At>,
    /// Last success: the 600 s run from here.
    pub refreshed_at: Option<At>,
    pub refreshes: u32,
    pub pending_since: Option<Timestamp>,
    pub failed: Option<u16>,
    pub frames: Vec<u64>,
}

impl Channel {
    fn new(peer: SocketAddr, at: At) -> Self {
        Channel {
            peer,
            requested_at: at,
            bound_at: None,
            refreshed_at: None,
            refreshes: 0,
            pending_since: None,
            failed: None,
            frames: Vec::new(),
        }
    }
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.refreshed_at
            .map(|r| r.ts.saturating_add_secs(CHANNEL_LIFETIME_SECS))
    }
    pub fn usable_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts <= e) || in_flight(self.pending_since, ts)
    }
    /// Bound, or lapsed less than [`CHANNEL_REUSE_GUARD_SECS`] ago: its number and peer are taken.
    fn reserved_at(&self, ts: Timestamp) -> bool {
        self.expires_at()
            .is_some_and(|e| ts <= e.saturating_add_secs(CHANNEL_REUSE_GUARD_SECS))
    }
}

/// A request in flight counts as granted until the RFC 8489 give-up time: a server acts on it before the
/// client sees the response, and clients send data right behind it.
fn in_flight(since: Option<Timestamp>, ts: Timestamp) -> bool {
    since.is_some_and(|p| ts >= p && ts.secs_since(p) <= GIVE_UP_SECS)
}

/// Packets and bytes exchanged with one peer through the allocation, by carrier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    pub send_indications: u64,
    pub data_indications: u64,
    pub channel_data_to_peer: u64,
    pub channel_data_from_peer: u64,
    /// Application bytes (DATA values, ChannelData payloads without padding).
    pub bytes_to_peer: u64,
    pub bytes_from_peer: u64,
}

impl PeerTraffic {
    pub fn to_peer(&self) -> u64 {
        self.send_indications + self.channel_data_to_peer
    }
    pub fn from_peer(&self) -> u64 {
        self.data_indications + self.channel_data_from_peer
    }
}

/// Client traffic the server would drop without a word, of one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub packets: u64,
    pub bytes: u64,
    /// The first frames (at most [`MAX_EVIDENCE_FRAMES`]).
    pub frames: Vec<u64>,
    pub first_peer: Option<SocketAddr>,
    pub first_channel: Option<u16>,
}

impl Dropped {
    fn note(&mut self, at: At, bytes: usize, peer: Option<SocketAddr>, channel: Option<u16>) {
        self.packets += 1;
        self.bytes += bytes as u64;
        if self.frames.len() < MAX_EVIDENCE_FRAMES {
            self.frames.push(at.frame);
        }
        if self.first_peer.is_none() {
            self.first_peer = peer;
        }
        if self.first_channel.is_none() {
            self.first_channel = channel;
        }
    }
}

/// A client ↔ server flow's allocation ([`TurnState::allocation_of`]) and the flow's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocationLeg {
    /// Where the allocation is in [`TurnState::allocations`]; allocations are never removed, so it stays valid.
    pub position: usize,
    /// The client sent on this flow: what it carries goes toward the peer.
    pub client_sent: bool,
}

/// A ChannelData frame's channel as it stood when the frame passed.
#[derive(Clone, Copy, Debug)]
struct ChannelBinding {
    peer: SocketAddr,
    /// Bound and not lapsed, or a ChannelBind for it still in flight.
    usable: bool,
    /// A ChannelBind for it succeeded at some point.
    was_bound: bool,
}

/// An RFC 6062 peer connection of a TCP allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConnection {
    pub peer: Option<SocketAddr>,
    /// Connect from the client (§4.3), else ConnectionAttempt from a peer (§4.4).
    pub initiated_by_client: bool,
    pub at: At,
    /// The client's end of the data connection, once ConnectionBind succeeded.
    pub data_connection: Option<SocketAddr>,
    pub bound_at: Option<At>,
    pub failed: Option<u16>,
}

/// Consecutive 438 answers (RFC 8489 §9.2.4): one is routine, a run of them means client and server never
/// agree on a nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleNonces {
    pub total: u32,
    /// The current run of 438s with no success in between.
    pub run: u32,
    pub longest_run: u32,
    /// Frames of the 438s (the first [`MAX_EVIDENCE_FRAMES`]).
    pub frames: Vec<u64>,
    /// Requests that came back with the very NONCE the server had just declared stale.
    pub reused: u32,
    /// The nonce of the request last answered 438, until the next request.
    stale: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Allocation {
    /// An Allocate request (or its response) was captured: the capture saw how the allocation began, so
    /// permissions and channels it never saw really do not exist.
    pub allocate_seen: bool,
    /// [MS-TURN]: the peer of the last Set Active Destination request, where multiplexed TURN frames
    /// (channel 0xFF10) go and come from.
    pub active_destination: Option<SocketAddr>,
    pub requested_transport: Option<u8>,
    pub requested_family: Option<u8>,
    pub additional_family: Option<u8>,
    /// EVEN-PORT in the request: `Some(reserve_next)`.
    pub even_port: Option<bool>,
    /// RESERVATION-TOKEN the client asked to use (RFC 8656 §7.1).
    pub reservation_token_used: Option<u64>,
    /// RESERVATION-TOKEN the server granted with the allocation.
    pub reservation_token: Option<u64>,
    /// XOR-RELAYED-ADDRESS of the successful Allocate (two when two address families were allocated,
    /// RFC 8656 §7.1).
    pub relayed: Vec<SocketAddr>,
    pub mapped: Option<SocketAddr>,
    pub username: Option<String>,
    pub realm: Option<String>,
    /// The server's SOFTWARE.
    pub software: Option<String>,
    /// The successful Allocate response.
    pub created_at: Option<At>,
    /// The last granted lifetime, seconds.
    pub lifetime: Option<u32>,
    /// The last successful Allocate or Refresh: the lifetime runs from here.
    pub refreshed_at: Option<At>,
    /// Successful Refreshes with a non-zero lifetime.
    pub refreshes: u32,
    pub deleted_at: Option<At>,
    /// 437 to a Refresh: the server no longer knew the allocation.
    pub gone_at: Option<At>,
    pub errors: Vec<TurnError>,
    pub errors_not_kept: u64,
    /// Error responses by code (all of them; codes are 300-699, so the map stays small).
    pub error_counts: BTreeMap<u16, u32>,
    pub events: Vec<Event>,
    pub events_not_kept: u64,
    pub rejections: Vec<AuthRejection>,
    pub rejections_total: u32,
    pub stale_nonces: StaleNonces,
    pub permissions: BTreeMap<IpAddr, Permission>,
    pub permissions_not_tracked: u64,
    /// Channel number → binding. Filled from ChannelBind requests as well as their responses, so a capture
    /// that missed a response still decodes the channel.
    pub channels: BTreeMap<u16, Channel>,
    pub traffic: BTreeMap<SocketAddr, PeerTraffic>,
    pub peers_not_tracked: u64,
    /// Traffic with peers beyond [`MAX_PEERS`].
    pub other_peers: PeerTraffic,
    /// ChannelData on a channel with no known peer.
    pub unknown_channel: PeerTraffic,
    pub first_to_peer: Option<At>,
    /// Data toward a peer IP that never had a permission (RFC 8656 §9: dropped silently).
    pub no_permission: Dropped,
    /// Data toward a peer IP whose permission had lapsed.
    pub permission_lapsed: Dropped,
    /// ChannelData on a channel never bound (§12: dropped).
    pub unbound_channel: Dropped,
    /// ChannelData on a channel whose binding had lapsed.
    pub channel_lapsed: Dropped,
    /// Send indications and ChannelData after the allocation had expired.
    pub after_expiry: Dropped,
    /// ChannelBinds the RFC forbids (see [`EventKind::ChannelConflict`]); the server refuses them.
    pub channel_conflicts: Dropped,
    pub tcp_connections: BTreeMap<u32, TcpConnection>,
}

impl Allocation {
    /// An Allocate succeeded, or the allocation was in use before the capture began.
    pub fn succeeded(&self) -> bool {
        self.created_at.is_some() || self.refreshed_at.is_some() || !self.allocate_seen
    }

    /// When the lifetime runs out: the last successful Allocate/Refresh plus the granted lifetime, or the
    /// moment the server said it no longer had it. `None` when deleted or never granted.
    pub fn expires_at(&self) -> Option<Timestamp> {
        if self.deleted_at.is_some() {
            return None;
        }
        if let Some(g) = self.gone_at {
            return Some(g.ts);
        }
        let from = self.refreshed_at?;
        Some(from.ts.saturating_add_secs(f64::from(self.lifetime?)))
    }

    /// When the allocation ended, or will end: deleted, or its lifetime run out. Its permissions and
    /// channels end with it.
    pub fn end_of_life(&self) -> Option<Timestamp> {
        self.deleted_at.map(|d| d.ts).or_else(|| self.expires_at())
    }

    /// The state when the capture ended at `end`.
    pub fn state(&self, end: Timestamp) -> AllocationState {
        if self.deleted_at.is_some() {
            AllocationState::Deleted
        } else if self.gone_at.is_some() {
            AllocationState::Expired
        } else if let Some(e) = self.expires_at() {
            if e < end {
                AllocationState::Expired
            } else {
                AllocationState::Active
            }
        } else if self.succeeded() {
            AllocationState::Active
        } else {
            AllocationState::Failed
        }
    }

    /// The capture shows the allocation being created, so it shows every permission and channel too.
    fn start_seen(&self) -> bool {
        self.created_at.is_some()
    }

    /// Whether the allocation had expired (not deleted) at `ts`.
    fn expired_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts > e)
    }

    fn event(&mut self, at: At, kind: EventKind) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(Event { at, kind });
        } else {
            self.events_not_kept += 1;
        }
    }

    fn error(&mut self, e: TurnError) {
        *self.error_counts.entry(e.code).or_insert(0) += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.errors_not_kept += 1;
        }
    }

    fn permission(&mut self, ip: IpAddr, at: At) -> Option<&mut Permission> {
        if !self.permissions.contains_key(&ip) && self.permissions.len() >= MAX_PERMISSIONS {
            self.permissions_not_tracked += 1;
            return None;
        }
        Some(self.permissions.entry(ip).or_insert_with(|| Permission::new(at)))
    }

    fn peer(&mut self, peer: SocketAddr) -> &mut PeerTraffic {
        // One search of the map (this runs for every relayed packet).
        let full = self.traffic.len() >= MAX_PEERS;
        match self.traffic.entry(peer) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) if !full => e.insert(PeerTraffic::default()),
            std::collections::btree_map::Entry::Vacant(_) => {
                self.peers_not_tracked += 1;
                &mut self.other_peers
            }
        }
    }

    /// A success for a permission (CreatePermission, or ChannelBind for the peer's IP).
    fn install_permission(&mut self, ip: IpAddr, at: At, by_channel_bind: bool) {
        let Some(p) = self.permission(ip, at) else {
            return;
        };
        let first = p.installed_at.is_none();
        if first {
            p.installed_at = Some(at);
        } else {
            p.refreshes += 1;
        }
        p.refreshed_at = Some(at);
        p.by_channel_bind = by_channel_bind;
        p.pending_since = None;
        p.failed = None;
        push_frame(&mut p.frames, at.frame);
        let kind = if first {
            EventKind::PermissionInstalled {
                peer: ip,
                by_channel_bind,
            }
        } else {
            EventKind::PermissionRefreshed {
                peer: ip,
                by_channel_bind,
            }
        };
        self.event(at, kind);
    }

    /// Client → peer data at `at`: checks the allocation is alive and counts what the server would drop.
    fn note_outbound(&mut self, at: At, bytes: usize, peer: Option<SocketAddr>, channel: Option<u16>) {
        if self.expired_at(at.ts) {
            self.after_expiry.note(at, bytes, peer, channel);
        }
        if self.first_to_peer.is_none() {
            self.first_to_peer = Some(at);
        }
    }

    /// Any success ends a run of 438s.
    fn success(&mut self) {
        self.stale_nonces.run = 0;
    }
}

fn push_frame(frames: &mut Vec<u64>, frame: u64) {
    if frames.len() < MAX_FRAMES_PER_ENTRY && frames.last() != Some(&frame) {
        frames.push(frame);
    }
}

/// What a request asked for, kept until its response arrives.
#[derive(Clone, Debug)]
struct Pending {
    key: AllocationKey,
    at: At,
    authenticated: bool,
    credential: CredentialCheck,
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
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

/// The allocations by client/server 5-tuple. Every ChannelData frame looks its allocation up, so they are
/// hashed (B-tree searches comparing `SocketAddr`s were ~20 % of a TURN server capture's analysis, perf);
/// the outputs iterate them in key order, never in hash order.
#[derive(Debug, Default)]
pub struct Allocations {
    /// Key → position in `slab`. Allocations are never removed, so positions are stable.
    index: HashMap<AllocationKey, usize, FastHash>,
    slab: Vec<(AllocationKey, Allocation)>,
    /// Per position: changes whenever the allocation is reached mutably other than to count its media
    /// (`at_mut`), so what was read from it (its channels' peers, its relayed address) stays true while
    /// this is unchanged. A small array beside the slab: checking it does not touch the allocation.
    versions: Vec<u32>,
}

impl Allocations {
    pub fn len(&self) -> usize {
        self.slab.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }
    pub fn contains_key(&self, key: &AllocationKey) -> bool {
        self.index.contains_key(key)
    }
    pub fn get(&self, key: &AllocationKey) -> Option<&Allocation> {
        self.slab.get(*self.index.get(key)?).map(|(_, a)| a)
    }
    pub fn get_mut(&mut self, key: &AllocationKey) -> Option<&mut Allocation> {
        let i = *self.index.get(key)?;
        self.touch(i);
        self.slab.get_mut(i).map(|(_, a)| a)
    }
    /// See `versions`.
    fn touch(&mut self, position: usize) {
        if let Some(v) = self.versions.get_mut(position) {
            *v = v.wrapping_add(1);
        }
    }
    /// The version of the allocation at `position` (see `versions`).
    pub fn version(&self, position: usize) -> u32 {
        self.versions.get(position).copied().unwrap_or(0)
    }
    /// Where `key`'s allocation is, for [`Allocations::at_mut`]: one hash lookup where `contains_key`
    /// followed by `get_mut` would take two.
    fn position(&self, key: &AllocationKey) -> Option<usize> {
        self.index.get(key).copied()
    }
    fn at(&self, position: usize) -> Option<(&AllocationKey, &Allocation)> {
        self.slab.get(position).map(|(k, a)| (k, a))
    }
    /// For counting media only: the version does not change, so nothing read for a route may change
    /// through this.
    fn at_mut(&mut self, position: usize) -> Option<(AllocationKey, &mut Allocation)> {
        self.slab.get_mut(position).map(|(k, a)| (*k, a))
    }
    pub fn insert(&mut self, key: AllocationKey, a: Allocation) -> Option<Allocation> {
        match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                self.slab.get_mut(i).map(|(_, old)| std::mem::replace(old, a))
            }
            None => {
                self.index.insert(key, self.slab.len());
                self.slab.push((key, a));
                self.versions.push(0);
                None
            }
        }
    }
    fn entry(&mut self, key: AllocationKey) -> &mut Allocation {
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.touch(i);
                i
            }
            None => {
                self.index.insert(key, self.slab.len());
                self.slab.push((key, Allocation::default()));
                self.versions.push(0);
                self.slab.len() - 1
            }
        };
        &mut self.slab[i].1
    }
    /// In key order (client, server, transport).
    pub fn iter(&self) -> std::vec::IntoIter<(&AllocationKey, &Allocation)> {
        let mut all: Vec<_> = self.slab.iter().map(|(k, a)| (k, a)).collect();
        all.sort_unstable_by(|x, y| x.0.cmp(y.0));
        all.into_iter()
    }
    /// In key order.
    pub fn values(&self) -> impl Iterator<Item = &Allocation> {
        self.iter().map(|(_, a)| a)
    }
}

impl<'a> IntoIterator for &'a Allocations {
    type Item = (&'a AllocationKey, &'a Allocation);
    type IntoIter = std::vec::IntoIter<(&'a AllocationKey, &'a Allocation)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::Index<&AllocationKey> for Allocations {
    type Output = Allocation;
    fn index(&self, key: &AllocationKey) -> &Allocation {
        match self.get(key) {
            Some(a) => a,
            None => panic!("no allocation for {key:?}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct TurnState {
    pub allocations: Allocations,
    pub allocations_not_tracked: u64,
    /// Usernames for which a TURN password was given (`--credentials`): only for them does a failed
    /// MESSAGE-INTEGRITY check say "the client used another password".
    known_users: BTreeSet<String>,
    /// Requests in flight, by transaction index (bounded by [`MAX_PENDING`]).
    pending: BTreeMap<TxIndex, Pending>,
    /// RFC 6062: (server, CONNECTION-ID) → allocation (bounded by [`MAX_CONNECTION_IDS`]).
    connection_ids: BTreeMap<(SocketAddr, u32), AllocationKey>,
}

impl TurnState {
    /// Requests still awaiting their response: their transactions must not be retired.
    pub fn pending_txs(&self) -> impl Iterator<Item = TxIndex> + '_ {
        self.pending.keys().copied()
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

/// RFC 8489 §9.2.3: a long-term-credential request carries USERNAME and MESSAGE-INTEGRITY(-SHA256).
fn is_authenticated(msg: &StunMessage) -> bool {
    msg.attr(ATTR_USERNAME).is_some()
        && (msg.attr(ATTR_MESSAGE_INTEGRITY).is_some() || msg.attr(ATTR_MESSAGE_INTEGRITY_SHA256).is_some())
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

impl TurnState {
    /// Remembers which TURN users iceview has a password for, so a MESSAGE-INTEGRITY that does not verify
    /// can be told apart from one iceview had nothing to check with.
    pub fn set_credentials(&mut self, keys: &Keyring) {
        self.known_users = keys
            .keys()
            .iter()
            .filter(|k| matches!(k.kind, KeyKind::LongTerm { .. }))
            .map(|k| k.name.clone())
            .collect();
    }

    fn entry(&mut self, key: AllocationKey) -> Option<&mut Allocation> {
        if !self.allocations.contains_key(&key) && self.allocations.len() >= MAX_ALLOCATIONS {
            self.allocations_not_tracked += 1;
            return None;
        }
        Some(self.allocations.entry(key))
    }

    fn credential_check(&self, msg: &StunMessage) -> CredentialCheck {
        match &msg.integrity {
            Verdict::Ok(Some(label)) if label.starts_with("turn:") => CredentialCheck::Matches,
            Verdict::Bad
                if msg
                    .attr_value(ATTR_USERNAME)
                    .and_then(AttrValue::text)
                    .is_some_and(|u| self.known_users.contains(u)) =>
            {
                CredentialCheck::DiffersFromGiven
            }
            _ => CredentialCheck::Unchecked,
        }
    }

    /// Learns from one (non-relayed, non-duplicate) STUN message: requests are remembered until their
    /// response (matched by `transactions`), responses move the allocation's life on, indications count
    /// relayed traffic.
    pub fn on_stun(&mut self, dg: &Datagram<'_>, msg: &StunMessage, tx: TxEvent, _txs: &Transactions) {
        if msg.method == Method::MS_SET_ACTIVE_DESTINATION && msg.class == Class::Request {
            // [MS-TURN]: DESTINATION-ADDRESS (0x0011) names the peer of the multiplexed frames.
            let peer = msg
                .attr_value(crate::wire::dialect::ATTR_MS_DESTINATION_ADDRESS)
                .and_then(AttrValue::address);
            let at = self.allocations.position(&AllocationKey::up(&dg.flow));
            if let (Some(peer), Some((_, a))) = (peer, at.and_then(|at| self.allocations.at_mut(at))) {
                a.active_destination = Some(peer);
            }
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
    }

    fn on_request(&mut self, flow: &Flow, at: At, msg: &StunMessage, tx: TxEvent) {
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
        if let Some(u) = &pending.username {
            a.username = Some(u.clone());
        }
        if let Some(r) = &pending.realm {
            a.realm = Some(r.clone());
        }
        if first {
            let stale = a.stale_nonces.stale.take();
            if stale.is_some() && stale == pending.nonce {
                a.stale_nonces.reused += 1;
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
                    a.requested_family = Some(*f);
                }
                if let Some(AttrValue::AddressFamily(f)) = msg.attr_value(ATTR_ADDITIONAL_ADDRESS_FAMILY) {
                    a.additional_family = Some(*f);
                }
                if let Some(AttrValue::EvenPort { reserve_next }) = msg.attr_value(ATTR_EVEN_PORT) {
                    a.even_port = Some(*reserve_next);
                }
                if let Some(t) = msg.attr_value(ATTR_RESERVATION_TOKEN).and_then(AttrValue::as_u64) {
                    a.reservation_token_used = Some(t);
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
                        let c = a
                            .channels
                            .entry(channel)
                            .or_insert_with(|| Channel::new(peer, at));
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

    fn on_indication(&mut self, flow: &Flow, at: At, msg: &StunMessage) {
        match msg.method {
            Method::SEND => {
                // RFC 8656 §11.2: without XOR-PEER-ADDRESS the server discards the indication.
                let Some(peer) = peer_of(msg) else { return };
                let bytes = msg.attr(ATTR_DATA).map_or(0, |d| d.len as usize);
                let Some(a) = self.entry(AllocationKey::up(flow)) else {
                    return;
                };
                let t = a.peer(peer);
                t.send_indications += 1;
                t.bytes_to_peer += bytes as u64;
                a.note_outbound(at, bytes, Some(peer), None);
                if a.start_seen() {
                    match a.permissions.get(&peer.ip()) {
                        Some(p) if p.usable_at(at.ts) => {}
                        Some(p) if p.installed_at.is_some() => {
                            a.permission_lapsed.note(at, bytes, Some(peer), None)
                        }
                        _ => a.no_permission.note(at, bytes, Some(peer), None),
                    }
                }
            }
            Method::DATA => {
                let Some(peer) = peer_of(msg) else { return };
                let bytes = msg.attr(ATTR_DATA).map_or(0, |d| d.len as usize);
                let Some(a) = self.entry(AllocationKey::down(flow)) else {
                    return;
                };
                let t = a.peer(peer);
                t.data_indications += 1;
                t.bytes_from_peer += bytes as u64;
            }
            Method::CONNECTION_ATTEMPT => {
                let Some(connection_id) = u32_of(msg, ATTR_CONNECTION_ID) else {
                    return;
                };
                let peer = peer_of(msg);
                let key = AllocationKey::down(flow);
                self.new_connection(key, connection_id, peer, false, at);
            }
            _ => {}
        }
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
        if a.tcp_connections.len() < MAX_TCP_CONNECTIONS || a.tcp_connections.contains_key(&connection_id) {
            a.tcp_connections.insert(
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

    fn on_response(&mut self, flow: &Flow, at: At, msg: &StunMessage, tx: TxEvent) {
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
                on_error(a, at, msg.method, code, reason, pending.as_ref())
            }
            // An error response without a readable ERROR-CODE: nothing to learn.
            _ => {}
        }
    }

    /// For a Send or Data indication: the inner datagram's flow (relayed address ↔ peer), the relay
    /// context and where the DATA value sits in the message.
    pub fn relayed_payload(
        &mut self,
        dg: &Datagram<'_>,
        msg: &StunMessage,
    ) -> Option<(Flow, Relay, Range<usize>)> {
        let (to_peer, via) = match (msg.method, msg.class) {
            (Method::SEND, Class::Indication) => (true, RelayVia::SendIndication),
            (Method::DATA, Class::Indication) => (false, RelayVia::DataIndication),
            _ => return None,
        };
        let peer = peer_of(msg)?;
        let data = msg.attr(ATTR_DATA)?.value_range();
        let key = if to_peer {
            AllocationKey::up(&dg.flow)
        } else {
            AllocationKey::down(&dg.flow)
        };
        // An indication proves the allocation exists even if its Allocate was not captured.
        self.entry(key);
        let (flow, relay) = inner_route(&key, self.allocations.get(&key), via, peer, to_peer);
        Some((flow, relay, data))
    }

    /// The allocation whose client↔server leg `flow` is ([`TurnState::allocation_of`] found it), and
    /// whether the client sent it.
    pub fn allocation_of(&self, flow: &Flow) -> Option<AllocationLeg> {
        if let Some(position) = self.allocations.position(&AllocationKey::up(flow)) {
            return Some(AllocationLeg {
                position,
                client_sent: true,
            });
        }
        Some(AllocationLeg {
            position: self.allocations.position(&AllocationKey::down(flow))?,
            client_sent: false,
        })
    }

    /// Changes whenever an allocation is added (allocations are never removed): what
    /// [`TurnState::allocation_of`] answered stays true while this is unchanged.
    pub fn generation(&self) -> u64 {
        self.allocations.len() as u64
    }

    /// The version of the allocation at `at` ([`TurnState::allocation_of`]): while it is unchanged,
    /// [`TurnState::channel_route`] answers the same for it.
    pub fn version(&self, at: usize) -> u32 {
        self.allocations.version(at)
    }

    /// Counts one ChannelData frame on `dg.flow` (`len`: its application data, padding excluded) on the
    /// allocation at `leg` ([`TurnState::allocation_of`]), and notes client data the server would drop: it
    /// runs for every relayed media packet that is not itself relayed.
    pub fn count_channel_data(&mut self, leg: AllocationLeg, dg: &Datagram<'_>, channel: u16, len: usize) {
        let Some((_, a)) = self.allocations.at_mut(leg.position) else {
            return;
        };
        let at = At {
            ts: dg.ts,
            frame: dg.frame,
        };
        let binding = a.channels.get(&channel).map(|c| ChannelBinding {
            peer: c.peer,
            usable: c.usable_at(at.ts),
            was_bound: c.refreshed_at.is_some(),
        });
        count_channel_data(a, at, channel, len, leg.client_sent, binding);
    }

    /// For ChannelData on `channel` of the allocation at `leg` ([`TurnState::allocation_of`]): the inner
    /// datagram's flow and the relay context, when the channel's peer is known.
    pub fn channel_route(&self, leg: AllocationLeg, channel: u16) -> Option<(Flow, Relay)> {
        let (key, a) = self.allocations.at(leg.position)?;
        let peer = a.channels.get(&channel)?.peer;
        let via = RelayVia::ChannelData(channel);
        Some(inner_route(key, Some(a), via, peer, leg.client_sent))
    }

    /// For an [MS-TURN] multiplexed TURN frame (channel 0xFF10) of the allocation at `leg`: the inner
    /// datagram's flow and the relay context, when a Set Active Destination named the peer.
    pub fn mturn_route(&self, leg: AllocationLeg) -> Option<(Flow, Relay)> {
        let (key, a) = self.allocations.at(leg.position)?;
        let peer = a.active_destination?;
        let via = RelayVia::ChannelData(crate::wire::channel::MS_MULTIPLEXED_TURN);
        Some(inner_route(key, Some(a), via, peer, leg.client_sent))
    }

    /// For ChannelData on `dg.flow`: the inner datagram's flow and the relay context, when the channel's
    /// peer is known.
    pub fn channel_payload(&self, dg: &Datagram<'_>, channel: u16) -> Option<(Flow, Relay)> {
        self.channel_route(self.allocation_of(&dg.flow)?, channel)
    }

    /// Relayed addresses of all known allocations (their IPs), for telling relay candidates apart.
    pub fn relayed_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.allocations
            .values()
            .flat_map(|a| a.relayed.iter().map(|r| r.ip()))
    }
}

/// The relayed datagram's flow, between the relayed address (the server's IP, port 0, when the Allocate
/// was not seen) and `peer`: toward the peer when the client sent the carrier. With the relay context.
fn inner_route(
    key: &AllocationKey,
    a: Option<&Allocation>,
    via: RelayVia,
    peer: SocketAddr,
    to_peer: bool,
) -> (Flow, Relay) {
    let relayed = a.and_then(|a| a.relayed.first().copied());
    let relay = Relay {
        server: key.server,
        client: key.client,
        via,
        relayed_address_known: relayed.is_some(),
    };
    let relayed = relayed.unwrap_or(SocketAddr::new(key.server.ip(), 0));
    let (src, dst) = if to_peer { (relayed, peer) } else { (peer, relayed) };
    let flow = Flow {
        src,
        dst,
        transport: Transport::Udp,
    };
    (flow, relay)
}

/// Counts one ChannelData frame on its allocation; `binding` is its channel's, when the channel is known.
fn count_channel_data(
    a: &mut Allocation,
    at: At,
    channel: u16,
    len: usize,
    to_peer: bool,
    binding: Option<ChannelBinding>,
) {
    let bytes = len as u64;
    match binding {
        Some(ChannelBinding { peer, .. }) if to_peer => {
            let t = a.peer(peer);
            t.channel_data_to_peer += 1;
            t.bytes_to_peer += bytes;
        }
        Some(ChannelBinding { peer, .. }) => {
            let t = a.peer(peer);
            t.channel_data_from_peer += 1;
            t.bytes_from_peer += bytes;
        }
        None if to_peer => {
            a.unknown_channel.channel_data_to_peer += 1;
            a.unknown_channel.bytes_to_peer += bytes;
        }
        None => {
            a.unknown_channel.channel_data_from_peer += 1;
            a.unknown_channel.bytes_from_peer += bytes;
        }
    }
    if !to_peer {
        return;
    }
    let peer = binding.map(|b| b.peer);
    a.note_outbound(at, len, peer, Some(channel));
    if a.start_seen() {
        match binding {
            Some(ChannelBinding { usable: true, .. }) => {}
            Some(ChannelBinding { was_bound: true, .. }) => {
                a.channel_lapsed.note(at, len, peer, Some(channel))
            }
            _ => a.unbound_channel.note(at, len, peer, Some(channel)),
        }
    }
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
                a.reservation_token = Some(t);
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
                let c = a
                    .channels
                    .entry(channel)
                    .or_insert_with(|| Channel::new(peer, at));
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
                if let Some(c) = a.tcp_connections.get_mut(connection_id) {
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
        401 => {
            a.rejections_total += 1;
            if a.rejections.len() < MAX_REJECTIONS {
                a.rejections.push(AuthRejection {
                    method,
                    request: pending.map(|p| p.at),
                    response: at,
                    username: pending.and_then(|p| p.username.clone()),
                    realm: pending.and_then(|p| p.realm.clone()).or(a.realm.clone()),
                    credential: pending.map_or(CredentialCheck::Unchecked, |p| p.credential),
                });
            }
            a.event(at, EventKind::CredentialRejected { method });
        }
        438 => {
            let s = &mut a.stale_nonces;
            s.total += 1;
            s.run += 1;
            s.longest_run = s.longest_run.max(s.run);
            if s.frames.len() < MAX_EVIDENCE_FRAMES {
                s.frames.push(at.frame);
            }
            s.stale = pending.and_then(|p| p.nonce.clone());
            a.event(at, EventKind::StaleNonce { method });
        }
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
            if let Some(c) = a.tcp_connections.get_mut(connection_id) {
                c.failed = Some(code);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Each lifecycle path driven with constructed messages through the real transaction table; expected
    //! values are worked out by hand from the RFC timings in the comments.
    use super::*;
    use crate::analysis::findings::turn::findings;
    use crate::analysis::transactions::Seen;
    use crate::analysis::Model;
    use crate::wire::stun::{Attribute, TransactionId, MAGIC_COOKIE};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    const CLIENT: &str = "192.0.2.10:40000";

    /// `allocations` is public (reports' tests build models by hand): an allocation added without
    /// [`TurnState::entry`] is still found by 5-tuple, in both directions, and an unrelated flow is not.
    #[test]
    fn allocation_added_from_outside_is_found() {
        let mut t = TurnState::default();
        let key = AllocationKey {
            client: addr(CLIENT),
            server: addr("198.51.100.1:3478"),
            transport: Transport::Udp,
        };
        t.allocations.insert(key, Allocation::default());
        let up = Flow {
            src: key.client,
            dst: key.server,
            transport: Transport::Udp,
        };
        let key_for = |flow: &Flow| {
            t.allocation_of(flow)
                .and_then(|leg| Some((*t.allocations.at(leg.position)?.0, leg.client_sent)))
        };
        assert_eq!(key_for(&up), Some((key, true)));
        assert_eq!(key_for(&up.reversed()), Some((key, false)));
        let other = Flow {
            src: addr("192.0.2.11:40000"),
            ..up
        };
        assert_eq!(key_for(&other), None);
    }
    const SERVER: &str = "198.51.100.1:3478";
    const RELAYED: &str = "198.51.100.1:50000";
    const PEER: &str = "203.0.113.7:5000";
    const OTHER: &str = "203.0.113.99:7000";

    fn ms(t: u64) -> Timestamp {
        Timestamp(t * 1_000_000)
    }

    type Attr = (u16, AttrValue, u16);

    fn msg(method: Method, class: Class, id: u8, attrs: Vec<Attr>) -> StunMessage {
        let mut off = 20u16;
        let attributes = attrs
            .into_iter()
            .map(|(typ, value, len)| {
                let a = Attribute {
                    typ,
                    offset: off,
                    len,
                    value,
                };
                off += 4 + len.div_ceil(4) * 4;
                a
            })
            .collect();
        StunMessage {
            method,
            class,
            transaction_id: TransactionId([id; 12]),
            rfc5389: true,
            cookie: MAGIC_COOKIE,
            length: off as usize,
            dialect: Default::default(),
            attributes,
            fingerprint: Verdict::Absent,
            integrity: Verdict::Absent,
            malformed: None,
        }
    }

    fn lifetime(s: u32) -> Attr {
        (ATTR_LIFETIME, AttrValue::U32(s), 4)
    }
    fn peer(p: &str) -> Attr {
        (ATTR_XOR_PEER_ADDRESS, AttrValue::Address(addr(p)), 8)
    }
    fn nonce(n: &str) -> Attr {
        (ATTR_NONCE, AttrValue::Text(n.into()), n.len() as u16)
    }
    fn error(code: u16, reason: &str) -> Attr {
        (
            0x0009,
            AttrValue::ErrorCode {
                code,
                reason: reason.into(),
            },
            4 + reason.len() as u16,
        )
    }
    fn data(len: u16) -> Attr {
        (ATTR_DATA, AttrValue::Opaque { len: len as usize }, len)
    }
    fn channel(n: u16) -> Attr {
        (ATTR_CHANNEL_NUMBER, AttrValue::ChannelNumber(n), 4)
    }
    /// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY: an authenticated request (RFC 8489 §9.2.3).
    fn credentials(n: &str) -> Vec<Attr> {
        vec![
            (ATTR_USERNAME, AttrValue::Text("alice".into()), 5),
            (ATTR_REALM, AttrValue::Text("example.org".into()), 11),
            nonce(n),
            (ATTR_MESSAGE_INTEGRITY, AttrValue::Opaque { len: 20 }, 20),
        ]
    }

    struct Lab {
        turn: TurnState,
        txs: Transactions,
        frame: u64,
        transport: Transport,
    }

    impl Lab {
        fn new() -> Self {
            Lab {
                turn: TurnState::default(),
                txs: Transactions::default(),
                frame: 0,
                transport: Transport::Udp,
            }
        }

        /// One STUN message on the wire at `t` ms; returns its frame.
        fn stun(&mut self, t: u64, from: &str, to: &str, m: &StunMessage) -> u64 {
            self.frame += 1;
            let (src, dst) = (addr(from), addr(to));
            let seen = Seen {
                ts: ms(t),
                frame: self.frame,
                input: 0,
            };
            let tx = self.txs.on_message(seen, src, dst, self.transport, false, m);
            let dg = Datagram {
                ts: ms(t),
                frame: self.frame,
                input: 0,
                flow: Flow {
                    src,
                    dst,
                    transport: self.transport,
                },
                payload: &[],
            };
            self.turn.on_stun(&dg, m, tx, &self.txs);
            self.frame
        }

        fn up(&mut self, t: u64, m: StunMessage) -> u64 {
            self.stun(t, CLIENT, SERVER, &m)
        }

        fn down(&mut self, t: u64, m: StunMessage) -> u64 {
            self.stun(t, SERVER, CLIENT, &m)
        }

        fn channel_data(&mut self, t: u64, to_peer: bool, number: u16, len: usize) -> u64 {
            self.frame += 1;
            let (src, dst) = if to_peer {
                (addr(CLIENT), addr(SERVER))
            } else {
                (addr(SERVER), addr(CLIENT))
            };
            let dg = Datagram {
                ts: ms(t),
                frame: self.frame,
                input: 0,
                flow: Flow {
                    src,
                    dst,
                    transport: self.transport,
                },
                payload: &[],
            };
            if let Some(at) = self.turn.allocation_of(&dg.flow) {
                self.turn.count_channel_data(at, &dg, number, len);
            }
            self.frame
        }

        /// The usual start (RFC 8656 §7): unauthenticated Allocate at t, 401 at t+1, authenticated retry at
        /// t+2, success granting `life` s at t+3 ms.
        fn allocate(&mut self, t: u64, life: u32) {
            let transport = (ATTR_REQUESTED_TRANSPORT, AttrValue::RequestedTransport(17), 4);
            self.up(
                t,
                msg(Method::ALLOCATE, Class::Request, 1, vec![transport.clone()]),
            );
            self.down(
                t + 1,
                msg(
                    Method::ALLOCATE,
                    Class::Error,
                    1,
                    vec![
                        error(401, "Unauthorized"),
                        nonce("n1"),
                        (ATTR_REALM, AttrValue::Text("example.org".into()), 11),
                    ],
                ),
            );
            let mut attrs = vec![transport];
            attrs.extend(credentials("n1"));
            self.up(t + 2, msg(Method::ALLOCATE, Class::Request, 2, attrs));
            self.down(
                t + 3,
                msg(
                    Method::ALLOCATE,
                    Class::Success,
                    2,
                    vec![
                        (ATTR_XOR_RELAYED_ADDRESS, AttrValue::Address(addr(RELAYED)), 8),
                        (ATTR_XOR_MAPPED_ADDRESS, AttrValue::Address(addr(CLIENT)), 8),
                        lifetime(life),
                    ],
                ),
            );
        }

        fn create_permission(&mut self, t: u64, id: u8, p: &str) {
            let mut attrs = vec![peer(p)];
            attrs.extend(credentials("n1"));
            self.up(t, msg(Method::CREATE_PERMISSION, Class::Request, id, attrs));
            self.down(t + 1, msg(Method::CREATE_PERMISSION, Class::Success, id, vec![]));
        }

        /// ChannelBind request at t; `answer` None for success, Some(code) for an error, at t+1.
        fn channel_bind(&mut self, t: u64, id: u8, number: u16, p: &str, answer: Option<u16>) {
            let mut attrs = vec![channel(number), peer(p)];
            attrs.extend(credentials("n1"));
            self.up(t, msg(Method::CHANNEL_BIND, Class::Request, id, attrs));
            let response = match answer {
                None => msg(Method::CHANNEL_BIND, Class::Success, id, vec![]),
                Some(code) => msg(
                    Method::CHANNEL_BIND,
                    Class::Error,
                    id,
                    vec![error(code, "Bad Request")],
                ),
            };
            self.down(t + 1, response);
        }

        fn send(&mut self, t: u64, p: &str, len: u16) -> u64 {
            self.up(
                t,
                msg(Method::SEND, Class::Indication, 200, vec![peer(p), data(len)]),
            )
        }

        fn alloc(&self) -> &Allocation {
            let key = AllocationKey {
                client: addr(CLIENT),
                server: addr(SERVER),
                transport: self.transport,
            };
            &self.turn.allocations[&key]
        }

        fn codes(self, end: u64) -> Vec<&'static str> {
            let model = Model {
                turn: self.turn,
                transactions: self.txs,
                last_ts: Some(ms(end)),
                ..Model::default()
            };
            findings(&model).into_iter().map(|f| f.code).collect()
        }
    }

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
    fn an_allocation_not_refreshed_expires_and_later_traffic_is_flagged() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        lab.create_permission(1_000, 3, PEER);
        lab.send(250_000, PEER, 100);
        let late = lab.send(650_000, PEER, 100);
        let a = lab.alloc();
        // Granted at 3 ms for 600 s: it runs out at 600.003 s.
        assert_eq!(a.expires_at(), Some(ms(600_003)));
        assert_eq!(a.state(ms(500_000)), AllocationState::Active);
        assert_eq!(a.state(ms(700_000)), AllocationState::Expired);
        // 650 s is after 600.003 s; the permission (installed at 1.001 s) lapsed at 301.001 s.
        assert_eq!(a.after_expiry.packets, 1);
        assert_eq!(a.after_expiry.frames, vec![late]);
        assert_eq!(a.permission_lapsed.packets, 1);
        assert_eq!(a.no_permission.packets, 0);
        assert_eq!(a.permissions[&addr(PEER).ip()].expires_at(), Some(ms(301_001)));
        let codes = lab.codes(700_000);
        assert!(codes.contains(&"turn.allocation.expired-in-use"), "{codes:?}");
        assert!(codes.contains(&"turn.permission.expired"), "{codes:?}");
    }

    #[test]
    fn a_stale_nonce_is_renewed_and_the_refresh_counts() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let mut attrs = vec![lifetime(600)];
        attrs.extend(credentials("n1"));
        lab.up(540_000, msg(Method::REFRESH, Class::Request, 10, attrs));
        lab.down(
            540_001,
            msg(
                Method::REFRESH,
                Class::Error,
                10,
                vec![error(438, "Stale Nonce"), nonce("n2")],
            ),
        );
        let mut attrs = vec![lifetime(600)];
        attrs.extend(credentials("n2"));
        lab.up(540_002, msg(Method::REFRESH, Class::Request, 11, attrs));
        lab.down(
            540_003,
            msg(Method::REFRESH, Class::Success, 11, vec![lifetime(600)]),
        );
        let a = lab.alloc();
        assert_eq!(a.refreshes, 1);
        // Refreshed at 540.003 s for 600 s: expires at 1140.003 s.
        assert_eq!(a.expires_at(), Some(ms(1_140_003)));
        assert_eq!(a.state(ms(1_000_000)), AllocationState::Active);
        assert_eq!(a.stale_nonces.total, 1);
        assert_eq!(a.stale_nonces.longest_run, 1);
        assert_eq!(a.stale_nonces.reused, 0);
        assert_eq!(a.error_counts.get(&438), Some(&1));
        // One 438 followed by success is routine: no auth or refresh finding (the allocation carried
        // no traffic, which is worth an info line of its own).
        assert_eq!(lab.codes(1_000_000), vec!["turn.allocation.unused"]);
    }

    #[test]
    fn repeated_stale_nonces_with_the_old_nonce_are_a_loop() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        // The client keeps presenting n1 although each 438 hands it n2.
        for (i, t) in [(10u8, 100_000u64), (11, 100_010), (12, 100_020)] {
            let mut attrs = vec![lifetime(600)];
            attrs.extend(credentials("n1"));
            lab.up(t, msg(Method::REFRESH, Class::Request, i, attrs));
            lab.down(
                t + 1,
                msg(
                    Method::REFRESH,
                    Class::Error,
                    i,
                    vec![error(438, "Stale Nonce"), nonce("n2")],
                ),
            );
        }
        let s = &lab.alloc().stale_nonces;
        assert_eq!((s.total, s.longest_run), (3, 3));
        // The second and third requests reuse the nonce the previous 438 declared stale.
        assert_eq!(s.reused, 2);
        assert_eq!(s.frames, vec![6, 8, 10]);
        assert!(lab.codes(200_000).contains(&"turn.auth.stale-nonce-loop"));
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
    fn data_toward_a_peer_without_permission_is_dropped() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        let first = lab.send(1_000, PEER, 100);
        lab.create_permission(2_000, 3, PEER);
        // RFC 8656 §9: permissions are per IP; another port of the same IP is covered.
        lab.send(3_000, "203.0.113.7:6000", 50);
        let other = lab.send(4_000, OTHER, 70);
        // A Send right behind its CreatePermission, before the response: the server already has it.
        let mut attrs = vec![peer("203.0.113.50:9")];
        attrs.extend(credentials("n1"));
        lab.up(5_000, msg(Method::CREATE_PERMISSION, Class::Request, 4, attrs));
        lab.send(5_000, "203.0.113.50:9", 10);
        lab.down(5_001, msg(Method::CREATE_PERMISSION, Class::Success, 4, vec![]));
        let a = lab.alloc();
        assert_eq!(a.no_permission.packets, 2);
        assert_eq!(a.no_permission.bytes, 170);
        assert_eq!(a.no_permission.frames, vec![first, other]);
        assert_eq!(a.no_permission.first_peer, Some(addr(PEER)));
        assert_eq!(a.traffic[&addr(PEER)].send_indications, 1);
        assert_eq!(a.traffic[&addr("203.0.113.7:6000")].bytes_to_peer, 50);
        assert_eq!(a.permissions.len(), 2);
        assert!(lab.codes(6_000).contains(&"turn.permission.missing"));
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
        assert_eq!(a.unknown_channel.channel_data_to_peer, 1);
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
    fn traffic_is_counted_per_peer_and_direction() {
        let mut lab = Lab::new();
        lab.allocate(0, 600);
        lab.create_permission(1_000, 3, PEER);
        lab.send(2_000, PEER, 100);
        lab.down(
            2_010,
            msg(Method::DATA, Class::Indication, 201, vec![peer(PEER), data(60)]),
        );
        lab.channel_bind(3_000, 4, 0x4000, PEER, None);
        lab.channel_data(4_000, true, 0x4000, 30);
        lab.channel_data(4_010, true, 0x4000, 30);
        lab.channel_data(4_020, false, 0x4000, 40);
        let t = &lab.alloc().traffic[&addr(PEER)];
        assert_eq!(
            t,
            &PeerTraffic {
                send_indications: 1,
                data_indications: 1,
                channel_data_to_peer: 2,
                channel_data_from_peer: 1,
                bytes_to_peer: 100 + 30 + 30,
                bytes_from_peer: 60 + 40,
            }
        );
        assert_eq!(lab.alloc().permissions[&addr(PEER).ip()].refreshes, 1);
    }

    #[test]
    fn rejected_credentials_are_told_apart_with_the_password_given() {
        for (verdict, known, expect, code) in [
            (
                Verdict::Unchecked,
                false,
                CredentialCheck::Unchecked,
                "turn.auth.rejected",
            ),
            (
                Verdict::Ok(Some("turn:alice".into())),
                true,
                CredentialCheck::Matches,
                "turn.auth.unknown-user",
            ),
            (
                Verdict::Bad,
                true,
                CredentialCheck::DiffersFromGiven,
                "turn.auth.wrong-password",
            ),
            // Bad against keys that are not alice's proves nothing about alice's password.
            (
                Verdict::Bad,
                false,
                CredentialCheck::Unchecked,
                "turn.auth.rejected",
            ),
        ] {
            let mut lab = Lab::new();
            let mut ring = Keyring::new();
            if known {
                ring.add_turn("alice", "secret", None);
            } else {
                ring.add_ice("abcd", "efgh");
            }
            lab.turn.set_credentials(&ring);
            lab.up(0, msg(Method::ALLOCATE, Class::Request, 1, vec![]));
            lab.down(
                1,
                msg(
                    Method::ALLOCATE,
                    Class::Error,
                    1,
                    vec![error(401, "Unauthorized")],
                ),
            );
            let mut m = msg(Method::ALLOCATE, Class::Request, 2, credentials("n1"));
            m.integrity = verdict;
            lab.up(2, m);
            lab.down(
                3,
                msg(
                    Method::ALLOCATE,
                    Class::Error,
                    2,
                    vec![error(401, "Unauthorized")],
                ),
            );
            let a = lab.alloc();
            assert_eq!(a.state(ms(10)), AllocationState::Failed);
            assert_eq!(a.rejections_total, 1);
            assert_eq!(a.rejections[0].credential, expect);
            assert_eq!(a.rejections[0].request.map(|r| r.frame), Some(3));
            assert_eq!(lab.codes(10), vec![code]);
        }
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
        let f = findings(&model);
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
        let c = &a.tcp_connections[&7];
        assert!(c.initiated_by_client);
        assert_eq!(c.peer, Some(addr(PEER)));
        assert_eq!(c.data_connection, Some(addr(data_conn)));
        assert_eq!(c.bound_at, Some(At { ts: ms(21), frame: 6 }));
        let c = &a.tcp_connections[&9];
        assert!(!c.initiated_by_client);
        assert_eq!(c.data_connection, None);
    }
}
