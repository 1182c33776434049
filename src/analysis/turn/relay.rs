//! Relayed traffic (RFC 8656 §11-§12): per allocation, peer and direction, the packets and bytes carried by
//! Send indications (§11.1), Data indications (§11.4) and ChannelData (§12.4), and the client data the
//! server would drop without a word: toward a peer with no permission or a lapsed one (§9), on a channel
//! never bound or lapsed (§12), on an allocation that had expired (§8). It also names the inner datagram
//! of a relayed payload (relayed address ↔ peer) for the pipeline to decode, including [MS-TURN]
//! multiplexed frames (channel 0xFF10) sent to the peer a Set Active Destination named. A channel is
//! routed by the number its ChannelBind gave it, RFC 5766 §11's 0x5000-0x7FFF included.
//!
//! Only carrier messages on the client ↔ server leg are counted, so a capture taken at the server, which
//! also shows the relay ↔ peer leg, counts each relayed datagram once. It does not decode the payloads,
//! and it does not install permissions or channels: `requests` does, from the requests and responses.
use super::allocation::Allocation;
use super::{peer_of, AllocationKey, At, TurnState};
use crate::analysis::findings::MAX_EVIDENCE_FRAMES;
use crate::analysis::{Relay, RelayVia};
use crate::net::{Datagram, Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{Class, Method, StunMessage, ATTR_DATA};
use std::net::SocketAddr;
use std::ops::Range;

/// Packets and bytes exchanged with one peer through the allocation, by carrier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerTraffic {
    pub(crate) send_indications: u64,
    pub(crate) data_indications: u64,
    pub(crate) channel_data_to_peer: u64,
    pub(crate) channel_data_from_peer: u64,
    /// Application bytes (DATA values, ChannelData payloads without padding).
    pub(crate) bytes_to_peer: u64,
    pub(crate) bytes_from_peer: u64,
}

impl PeerTraffic {
    pub(crate) fn to_peer(&self) -> u64 {
        self.send_indications + self.channel_data_to_peer
    }
    #[allow(clippy::wrong_self_convention)] // "traffic from the peer", a count, not a conversion
    pub(crate) fn from_peer(&self) -> u64 {
        self.data_indications + self.channel_data_from_peer
    }
}

/// Client traffic the server would drop without a word, of one kind. Boxed, and allocated only once
/// such traffic is seen: an allocation has six of these, nearly always empty, and a busy server's
/// capture holds thousands of allocations at once (80 bytes each inline, 8 boxed). Reads see the
/// counts through `Deref`, zero when nothing was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped(pub(super) Option<Box<DroppedCounts>>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DroppedCounts {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    /// The first frames (at most [`MAX_EVIDENCE_FRAMES`]).
    pub(crate) frames: Vec<u64>,
    pub(crate) first_peer: Option<SocketAddr>,
    pub(crate) first_channel: Option<u16>,
}

static NOTHING_DROPPED: DroppedCounts = DroppedCounts {
    packets: 0,
    bytes: 0,
    frames: Vec::new(),
    first_peer: None,
    first_channel: None,
};

impl std::ops::Deref for Dropped {
    type Target = DroppedCounts;

    fn deref(&self) -> &DroppedCounts {
        self.0.as_deref().unwrap_or(&NOTHING_DROPPED)
    }
}

impl Dropped {
    pub(super) fn note(&mut self, at: At, bytes: usize, peer: Option<SocketAddr>, channel: Option<u16>) {
        let d = self.0.get_or_insert_with(Box::default);
        d.packets += 1;
        d.bytes += bytes as u64;
        if d.frames.len() < MAX_EVIDENCE_FRAMES {
            d.frames.push(at.frame);
        }
        if d.first_peer.is_none() {
            d.first_peer = peer;
        }
        if d.first_channel.is_none() {
            d.first_channel = channel;
        }
    }
}

/// A client ↔ server flow's allocation ([`TurnState::allocation_of`]) and the flow's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllocationLeg {
    /// Where the allocation is in [`TurnState::allocations`]: valid while [`TurnState::generation`] is
    /// unchanged (a removed allocation's position is reused).
    pub(crate) position: usize,
    /// The client sent on this flow: what it carries goes toward the peer.
    pub(crate) client_sent: bool,
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

impl TurnState {
    /// [MS-TURN] Set Active Destination: where the allocation's multiplexed frames go from now on.
    pub(super) fn on_set_active_destination(&mut self, flow: &Flow, msg: &StunMessage) {
        // [MS-TURN]: DESTINATION-ADDRESS (0x0011) names the peer of the multiplexed frames.
        let peer = msg
            .attr_value(crate::wire::dialect::ATTR_MS_DESTINATION_ADDRESS)
            .and_then(AttrValue::address);
        let at = self.allocations.position(&AllocationKey::up(flow));
        if let (Some(peer), Some((_, a))) = (peer, at.and_then(|at| self.allocations.at_mut(at))) {
            a.rare_mut().active_destination = Some(peer);
        }
    }

    pub(super) fn on_indication(&mut self, flow: &Flow, at: At, msg: &StunMessage) {
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
                            a.permission_lapsed.note(at, bytes, Some(peer), None);
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
            Method::CONNECTION_ATTEMPT => self.on_connection_attempt(flow, at, msg),
            _ => {}
        }
    }

    /// For a Send or Data indication: the inner datagram's flow (relayed address ↔ peer), the relay
    /// context and where the DATA value sits in the message.
    pub(crate) fn relayed_payload(
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
    pub(crate) fn allocation_of(&self, flow: &Flow) -> Option<AllocationLeg> {
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

    /// The client and server addresses of allocations added or removed since the last call: what
    /// [`TurnState::allocation_of`] answered for other flows stays true.
    pub(crate) fn allocations_changed(&mut self) -> &mut crate::analysis::flows::Dirty {
        self.allocations.changed()
    }

    /// The version of the allocation at `at` ([`TurnState::allocation_of`]): while it is unchanged,
    /// [`TurnState::channel_route`] answers the same for it.
    pub(crate) fn version(&self, at: usize) -> u32 {
        self.allocations.version(at)
    }

    /// Counts one ChannelData frame on `dg.flow` (`len`: its application data, padding excluded) on the
    /// allocation at `leg` ([`TurnState::allocation_of`]), and notes client data the server would drop: it
    /// runs for every relayed media packet that is not itself relayed.
    pub(crate) fn count_channel_data(
        &mut self,
        leg: AllocationLeg,
        dg: &Datagram<'_>,
        channel: u16,
        len: usize,
    ) {
        let Some((_, a)) = self.allocations.at_mut(leg.position) else {
            return;
        };
        let at = At {
            ts: dg.ts,
            frame: dg.frame,
        };
        a.last_seen = a.last_seen.max(dg.ts);
        let binding = a.channels.get(&channel).map(|c| ChannelBinding {
            peer: c.peer,
            usable: c.usable_at(at.ts),
            was_bound: c.refreshed_at.is_some(),
        });
        count_channel_data(a, at, channel, len, leg.client_sent, binding);
    }

    /// For ChannelData on `channel` of the allocation at `leg` ([`TurnState::allocation_of`]): the inner
    /// datagram's flow and the relay context, when the channel's peer is known.
    pub(crate) fn channel_route(&self, leg: AllocationLeg, channel: u16) -> Option<(Flow, Relay)> {
        let (key, a) = self.allocations.at(leg.position)?;
        let peer = a.channels.get(&channel)?.peer;
        let via = RelayVia::ChannelData(channel);
        Some(inner_route(key, Some(a), via, peer, leg.client_sent))
    }

    /// For an [MS-TURN] multiplexed TURN frame (channel 0xFF10) of the allocation at `leg`: the inner
    /// datagram's flow and the relay context, when a Set Active Destination named the peer.
    pub(crate) fn mturn_route(&self, leg: AllocationLeg) -> Option<(Flow, Relay)> {
        let (key, a) = self.allocations.at(leg.position)?;
        let peer = a.rare().active_destination?;
        let via = RelayVia::ChannelData(crate::wire::channel::MS_MULTIPLEXED_TURN);
        Some(inner_route(key, Some(a), via, peer, leg.client_sent))
    }

    /// For ChannelData on `dg.flow`: the inner datagram's flow and the relay context, when the channel's
    /// peer is known.
    pub(crate) fn channel_payload(&self, dg: &Datagram<'_>, channel: u16) -> Option<(Flow, Relay)> {
        self.channel_route(self.allocation_of(&dg.flow)?, channel)
    }
}

impl Allocation {
    /// Client → peer data at `at`: checks the allocation is alive and counts what the server would drop.
    fn note_outbound(&mut self, at: At, bytes: usize, peer: Option<SocketAddr>, channel: Option<u16>) {
        if self.expired_at(at.ts) {
            self.after_expiry.note(at, bytes, peer, channel);
        }
        if self.first_to_peer.is_none() {
            self.first_to_peer = Some(at);
        }
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
            let t = &mut a.rare_mut().unknown_channel;
            t.channel_data_to_peer += 1;
            t.bytes_to_peer += bytes;
        }
        None => {
            let t = &mut a.rare_mut().unknown_channel;
            t.channel_data_from_peer += 1;
            t.bytes_from_peer += bytes;
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
                a.channel_lapsed.note(at, len, peer, Some(channel));
            }
            _ => a.unbound_channel.note(at, len, peer, Some(channel)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Relayed traffic counted and routed, driven through the lab.
    use super::*;
    use crate::analysis::turn::lab::*;

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
}
