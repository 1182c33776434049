//! One TURN allocation as the capture shows it (RFC 8656): when it was granted and for how long (§7.2, §8:
//! LIFETIME, the 600 s default, deletion by a Refresh with LIFETIME 0), the state it was in when the capture
//! ended, its permissions (§9: per peer IP, 300 s, no lifetime of their own), its channels (§12: 600 s, and
//! the 5 minutes after a binding lapses during which neither its number nor its peer may be bound
//! differently), its peers, its RFC 6062 peer connections (§4.3-4.4), and the events and error responses
//! that tell its story. Each table here is bounded by a constant beside it; what goes past a bound is
//! counted, not kept.
//!
//! It does not read messages: `requests` and `relay` work out what a message means and call the small
//! mutators here, and `auth` keeps the record of credentials and nonces. It does not judge either: the
//! diagnoses are in `findings::turn`.
use super::auth::{AuthRejection, StaleNonces};
use super::relay::{Dropped, PeerTraffic};
use super::At;
use crate::analysis::small_map::SmallMap;
use crate::analysis::transactions::GIVE_UP_SECS;
use crate::capture::Timestamp;
use crate::wire::stun::Method;
use std::net::{IpAddr, SocketAddr};

/// RFC 8656 §12: channel numbers 0x4000-0x4FFF, so at most 4096 channels per allocation.
pub(crate) const MAX_CHANNELS: usize = 4096;
/// Permissions per allocation. An ICE agent asks for one per remote candidate IP, a handful in a call; an
/// SFU behind a relay may ask for more. Past this bound further peers are counted, not tracked.
pub(crate) const MAX_PERMISSIONS: usize = 1024;
/// Peers (transport addresses) with traffic counters per allocation, for the same reason as
/// [`MAX_PERMISSIONS`]; traffic to further peers is counted in [`Allocation::peers_not_tracked`].
pub(crate) const MAX_PEERS: usize = 1024;
/// Lifecycle events kept per allocation. A one-hour call refreshes the allocation ~6 times and each
/// permission or channel 6-12 times (lifetimes of 600 s and 300 s, RFC 8656 §8, §9, §12); 256 events tell
/// the story of any real call, later ones are only counted.
pub(crate) const MAX_EVENTS: usize = 256;
/// Error responses kept per allocation. A failing client retries a handful of times (a 401 after the
/// authenticated retry ends the attempt, RFC 8656 §7.3); later errors are counted in `errors_not_kept`.
pub(crate) const MAX_ERRORS: usize = 64;
/// Frames listed per permission or channel: the first requests and responses show how it was set up.
pub(crate) const MAX_FRAMES_PER_ENTRY: usize = 16;
/// RFC 6062 TCP connections remembered per allocation (each peer connection has one).
pub(crate) const MAX_TCP_CONNECTIONS: usize = 1024;

/// RFC 8656 §9: a permission lasts 300 s and cannot be given another lifetime.
pub(crate) const PERMISSION_LIFETIME_SECS: f64 = 300.0;
/// RFC 8656 §12: a channel binding lasts 600 s unless refreshed.
pub(crate) const CHANNEL_LIFETIME_SECS: f64 = 600.0;
/// RFC 8656 §12: after a binding lapses, neither its number nor its peer may be bound differently for
/// another 5 minutes.
pub(crate) const CHANNEL_REUSE_GUARD_SECS: f64 = 300.0;
/// RFC 8656 §3.2 / §7.2: the default allocation lifetime, used when a success response omits LIFETIME.
pub(crate) const DEFAULT_LIFETIME_SECS: u32 = 600;

/// An allocation's state at the end of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllocationState {
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
    pub(crate) fn name(self) -> &'static str {
        match self {
            AllocationState::Active => "active",
            AllocationState::Deleted => "deleted",
            AllocationState::Expired => "expired",
            AllocationState::Failed => "failed",
        }
    }
}

/// One error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TurnError {
    pub(crate) at: At,
    pub(crate) request: Option<At>,
    pub(crate) method: Method,
    pub(crate) code: u16,
    pub(crate) reason: String,
    /// For an ADDRESS-ERROR-CODE (RFC 8656 §18.12) in a success response: the address family (1 = IPv4,
    /// 2 = IPv6) that could not be allocated.
    pub(crate) family: Option<u8>,
    /// The request carried USERNAME and MESSAGE-INTEGRITY: a 401 then means "credential rejected", not
    /// the challenge every client gets first.
    pub(crate) authenticated_request: bool,
}

/// A step in an allocation's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
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
pub(crate) struct Event {
    pub(crate) at: At,
    pub(crate) kind: EventKind,
}

/// A permission for one peer IP (RFC 8656 §9: the port does not matter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Permission {
    pub(crate) requested_at: At,
    /// First success.
    pub(crate) installed_at: Option<At>,
    /// Last success: the 300 s run from here.
    pub(crate) refreshed_at: Option<At>,
    /// Successes after the first.
    pub(crate) refreshes: u32,
    /// The last success came from a ChannelBind (§12.2 installs or refreshes the peer's permission).
    pub(crate) by_channel_bind: bool,
    /// A request for it is in flight since then; the server acts on it before the client sees the answer.
    pub(crate) pending_since: Option<Timestamp>,
    /// The last error response to a request for it.
    pub(crate) failed: Option<u16>,
    pub(crate) frames: Vec<u64>,
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
    pub(crate) fn expires_at(&self) -> Option<Timestamp> {
        self.refreshed_at
            .map(|r| r.ts.saturating_add_secs(PERMISSION_LIFETIME_SECS))
    }
    /// Whether the server would accept data for this peer at `ts`: installed and not lapsed, or a
    /// request for it is still in flight (and the client has not yet given up on it).
    pub(crate) fn usable_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts <= e) || in_flight(self.pending_since, ts)
    }
}

/// A channel (RFC 8656 §12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Channel {
    pub(crate) peer: SocketAddr,
    pub(crate) requested_at: At,
    pub(crate) bound_at: Option<At>,
    /// Last success: the 600 s run from here.
    pub(crate) refreshed_at: Option<At>,
    pub(crate) refreshes: u32,
    pub(crate) pending_since: Option<Timestamp>,
    pub(crate) failed: Option<u16>,
    pub(crate) frames: Vec<u64>,
}

impl Channel {
    pub(super) fn new(peer: SocketAddr, at: At) -> Self {
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
    pub(crate) fn expires_at(&self) -> Option<Timestamp> {
        self.refreshed_at
            .map(|r| r.ts.saturating_add_secs(CHANNEL_LIFETIME_SECS))
    }
    pub(crate) fn usable_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts <= e) || in_flight(self.pending_since, ts)
    }
    /// Bound, or lapsed less than [`CHANNEL_REUSE_GUARD_SECS`] ago: its number and peer are taken.
    pub(super) fn reserved_at(&self, ts: Timestamp) -> bool {
        self.expires_at()
            .is_some_and(|e| ts <= e.saturating_add_secs(CHANNEL_REUSE_GUARD_SECS))
    }
}

/// A request in flight counts as granted until the RFC 8489 give-up time: a server acts on it before the
/// client sees the response, and clients send data right behind it.
fn in_flight(since: Option<Timestamp>, ts: Timestamp) -> bool {
    since.is_some_and(|p| ts >= p && ts.secs_since(p) <= GIVE_UP_SECS)
}

/// An RFC 6062 peer connection of a TCP allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TcpConnection {
    pub(crate) peer: Option<SocketAddr>,
    /// Connect from the client (§4.3), else ConnectionAttempt from a peer (§4.4).
    pub(crate) initiated_by_client: bool,
    pub(crate) at: At,
    /// The client's end of the data connection, once ConnectionBind succeeded.
    pub(crate) data_connection: Option<SocketAddr>,
    pub(crate) bound_at: Option<At>,
    pub(crate) failed: Option<u16>,
}

/// The parts of an [`Allocation`] most allocations never use, boxed together and allocated on first use
/// ([`Allocation::rare_mut`]): [MS-TURN]'s active destination, the rarer Allocate attributes, the stale
/// nonces, the traffic past the peer bound or on an unknown channel, RFC 6062 connections, the counts past
/// each bound. Inline they took ~300 of an allocation's 824 bytes, and a busy server's capture holds tens
/// of thousands of allocations open (BENCHMARKS.md).
#[derive(Clone, Debug, Default)]
pub(crate) struct Rare {
    /// [MS-TURN]: the peer of the last Set Active Destination request, where multiplexed TURN frames
    /// (channel 0xFF10) go and come from.
    pub(crate) active_destination: Option<SocketAddr>,
    pub(crate) requested_family: Option<u8>,
    pub(crate) additional_family: Option<u8>,
    /// EVEN-PORT in the request: `Some(reserve_next)`.
    pub(crate) even_port: Option<bool>,
    /// RESERVATION-TOKEN the client asked to use (RFC 8656 §7.1).
    pub(crate) reservation_token_used: Option<u64>,
    /// RESERVATION-TOKEN the server granted with the allocation.
    pub(crate) reservation_token: Option<u64>,
    pub(crate) errors_not_kept: u64,
    pub(crate) events_not_kept: u64,
    pub(crate) stale_nonces: StaleNonces,
    pub(crate) permissions_not_tracked: u64,
    pub(crate) peers_not_tracked: u64,
    /// Traffic with peers beyond [`MAX_PEERS`].
    pub(crate) other_peers: PeerTraffic,
    /// ChannelData on a channel with no known peer.
    pub(crate) unknown_channel: PeerTraffic,
    pub(crate) tcp_connections: SmallMap<u32, TcpConnection>,
}

/// What [`Allocation::rare`] gives when nothing rare came.
static NO_RARE: std::sync::LazyLock<Rare> = std::sync::LazyLock::new(Rare::default);

#[derive(Clone, Debug, Default)]
pub struct Allocation {
    /// The last time anything of it was seen: a STUN message between client and server, or ChannelData.
    pub(crate) last_seen: Timestamp,
    /// An Allocate request (or its response) was captured: the capture saw how the allocation began, so
    /// permissions and channels it never saw really do not exist.
    pub(crate) allocate_seen: bool,
    /// An Allocate transaction of it that had been answered was retired as settled
    /// (`fold::retire_settled_requests`): what its findings read of the ones still in the table.
    pub(crate) allocate_answered: bool,
    pub(crate) requested_transport: Option<u8>,
    /// XOR-RELAYED-ADDRESS of the successful Allocate (two when two address families were allocated,
    /// RFC 8656 §7.1).
    pub(crate) relayed: Vec<SocketAddr>,
    pub(crate) mapped: Option<SocketAddr>,
    pub(crate) username: Option<String>,
    pub(crate) realm: Option<String>,
    /// The server's SOFTWARE.
    pub(crate) software: Option<String>,
    /// The successful Allocate response.
    pub(crate) created_at: Option<At>,
    /// The last granted lifetime, seconds.
    pub(crate) lifetime: Option<u32>,
    /// The last successful Allocate or Refresh: the lifetime runs from here.
    pub(crate) refreshed_at: Option<At>,
    /// Successful Refreshes with a non-zero lifetime.
    pub(crate) refreshes: u32,
    pub(crate) deleted_at: Option<At>,
    /// 437 to a Refresh: the server no longer knew the allocation.
    pub(crate) gone_at: Option<At>,
    pub(crate) errors: Vec<TurnError>,
    /// Error responses by code (all of them; codes are 300-699, so the map stays small).
    pub(crate) error_counts: SmallMap<u16, u32>,
    pub(crate) events: Vec<Event>,
    pub(crate) rejections: Vec<AuthRejection>,
    pub(crate) rejections_total: u32,
    pub(crate) permissions: SmallMap<IpAddr, Permission>,
    /// Channel number → binding. Filled from ChannelBind requests as well as their responses, so a capture
    /// that missed a response still decodes the channel.
    pub(crate) channels: SmallMap<u16, Channel>,
    pub(crate) traffic: SmallMap<SocketAddr, PeerTraffic>,
    pub(crate) first_to_peer: Option<At>,
    /// Data toward a peer IP that never had a permission (RFC 8656 §9: dropped silently).
    pub(crate) no_permission: Dropped,
    /// Data toward a peer IP whose permission had lapsed.
    pub(crate) permission_lapsed: Dropped,
    /// ChannelData on a channel never bound (§12: dropped).
    pub(crate) unbound_channel: Dropped,
    /// ChannelData on a channel whose binding had lapsed.
    pub(crate) channel_lapsed: Dropped,
    /// Send indications and ChannelData after the allocation had expired.
    pub(crate) after_expiry: Dropped,
    /// ChannelBinds the RFC forbids (see [`EventKind::ChannelConflict`]); the server refuses them.
    pub(crate) channel_conflicts: Dropped,
    /// What most allocations never have ([`Rare`]): allocated when the first of it comes.
    pub(crate) rare: Option<Box<Rare>>,
}

impl Allocation {
    /// An Allocate succeeded, or the allocation was in use before the capture began.
    pub(crate) fn succeeded(&self) -> bool {
        self.created_at.is_some() || self.refreshed_at.is_some() || !self.allocate_seen
    }

    /// When the lifetime runs out: the last successful Allocate/Refresh plus the granted lifetime, or the
    /// moment the server said it no longer had it. `None` when deleted or never granted.
    pub(crate) fn expires_at(&self) -> Option<Timestamp> {
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
    pub(crate) fn end_of_life(&self) -> Option<Timestamp> {
        self.deleted_at.map(|d| d.ts).or_else(|| self.expires_at())
    }

    /// Whether the allocation is over at `now`, whatever comes later: deleted, gone (437), past its
    /// lifetime, or never granted although the server answered (a later success would be a new
    /// allocation's). One seen only mid-stream, with no lifetime known, is never over.
    pub(crate) fn over_at(&self, now: Timestamp) -> bool {
        self.over_whatever_the_time() || self.expires_at().is_some_and(|e| e < now)
    }

    /// [`Allocation::over_at`] but for its lifetime running out: deleted, gone, or never granted.
    pub(crate) fn over_whatever_the_time(&self) -> bool {
        self.deleted_at.is_some()
            || self.gone_at.is_some()
            || (!self.succeeded() && (!self.error_counts.is_empty() || self.rejections_total > 0))
    }

    /// The state when the capture ended at `end`.
    pub(crate) fn state(&self, end: Timestamp) -> AllocationState {
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

    /// Its rare parts ([`Rare`]), all empty when none came.
    pub(crate) fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// Its rare parts, allocated now if none came before.
    pub(crate) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Its RFC 6062 connection `id`, if it has one (nothing allocated when it has none).
    pub(super) fn tcp_connection_mut(&mut self, id: u32) -> Option<&mut TcpConnection> {
        self.rare.as_deref_mut()?.tcp_connections.get_mut(&id)
    }

    /// The capture shows the allocation being created, so it shows every permission and channel too.
    pub(super) fn start_seen(&self) -> bool {
        self.created_at.is_some()
    }

    /// Whether the allocation had expired (not deleted) at `ts`.
    pub(super) fn expired_at(&self, ts: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| ts > e)
    }

    pub(super) fn event(&mut self, at: At, kind: EventKind) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(Event { at, kind });
        } else {
            self.rare_mut().events_not_kept += 1;
        }
    }

    pub(super) fn error(&mut self, e: TurnError) {
        *self.error_counts.get_or_insert_with(e.code, || 0) += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.rare_mut().errors_not_kept += 1;
        }
    }

    pub(super) fn permission(&mut self, ip: IpAddr, at: At) -> Option<&mut Permission> {
        if !self.permissions.contains_key(&ip) && self.permissions.len() >= MAX_PERMISSIONS {
            self.rare_mut().permissions_not_tracked += 1;
            return None;
        }
        Some(self.permissions.get_or_insert_with(ip, || Permission::new(at)))
    }

    pub(super) fn peer(&mut self, peer: SocketAddr) -> &mut PeerTraffic {
        // One search of the map when the peer is known (this runs for every relayed packet).
        if self.traffic.len() >= MAX_PEERS && !self.traffic.contains_key(&peer) {
            let rare = self.rare_mut();
            rare.peers_not_tracked += 1;
            return &mut rare.other_peers;
        }
        self.traffic.get_or_insert_with(peer, PeerTraffic::default)
    }

    /// A success for a permission (CreatePermission, or ChannelBind for the peer's IP).
    pub(super) fn install_permission(&mut self, ip: IpAddr, at: At, by_channel_bind: bool) {
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

    /// Any success ends a run of 438s.
    pub(super) fn success(&mut self) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.stale_nonces.run = 0;
        }
    }
}

pub(super) fn push_frame(frames: &mut Vec<u64>, frame: u64) {
    if frames.len() < MAX_FRAMES_PER_ENTRY && frames.last() != Some(&frame) {
        frames.push(frame);
    }
}

#[cfg(test)]
mod tests {
    //! An allocation's lifetime and state, driven through the lab.
    use super::*;
    use crate::analysis::turn::lab::*;

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
}
