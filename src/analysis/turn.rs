//! TURN allocations as seen on the wire (RFC 8656), and the mapping that turns relayed payloads back into
//! datagrams between the relayed address and the peer.
//!
//! An allocation is keyed by the client's 5-tuple toward the server (§2.2). Send indications carry data
//! client → relayed address → peer (§11.3), Data indications peer → relayed address → client (§11.4),
//! ChannelData either way on a channel bound to one peer (§12). Channel bindings are taken from ChannelBind
//! requests as well as their responses, so a capture that missed a response still decodes the channel.
//! Bounded by [`MAX_ALLOCATIONS`].
use super::transactions::{Transactions, TxEvent};
use super::{Relay, RelayVia};
use crate::net::{Datagram, Flow, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{Class, Method, StunMessage, ATTR_DATA};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// Allocations tracked at once. A busy TURN server holds tens of thousands; past this bound new ones are
/// not tracked (counted), their relayed payloads then stay undecoded.
pub const MAX_ALLOCATIONS: usize = 65_536;
/// RFC 8656 §12: channel numbers 0x4000-0x4FFF, so at most 4096 channels per allocation.
pub const MAX_CHANNELS: usize = 4096;

const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_CHANNEL_NUMBER: u16 = 0x000C;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
}

#[derive(Clone, Debug, Default)]
pub struct Allocation {
    /// XOR-RELAYED-ADDRESS of the successful Allocate (the first one when two address families were
    /// allocated, RFC 8656 §7.1).
    pub relayed: Vec<SocketAddr>,
    pub mapped: Option<SocketAddr>,
    /// Channel number → peer.
    pub channels: HashMap<u16, SocketAddr>,
}

#[derive(Debug, Default)]
pub struct TurnState {
    pub allocations: HashMap<AllocationKey, Allocation>,
    pub allocations_not_tracked: u64,
}

fn peer_of(msg: &StunMessage) -> Option<SocketAddr> {
    msg.attr_value(ATTR_XOR_PEER_ADDRESS).and_then(AttrValue::address)
}

impl TurnState {
    fn entry(&mut self, key: AllocationKey) -> Option<&mut Allocation> {
        if !self.allocations.contains_key(&key) && self.allocations.len() >= MAX_ALLOCATIONS {
            self.allocations_not_tracked += 1;
            return None;
        }
        Some(self.allocations.entry(key).or_default())
    }

    /// Which side of `flow` is the client of a known allocation.
    fn key_for(&self, flow: &Flow) -> Option<(AllocationKey, bool)> {
        let up = AllocationKey {
            client: flow.src,
            server: flow.dst,
            transport: flow.transport,
        };
        if self.allocations.contains_key(&up) {
            return Some((up, true));
        }
        let down = AllocationKey {
            client: flow.dst,
            server: flow.src,
            transport: flow.transport,
        };
        self.allocations.contains_key(&down).then_some((down, false))
    }

    pub fn is_turn_flow(&self, flow: &Flow) -> bool {
        self.key_for(flow).is_some()
    }

    /// Learns allocations and channel bindings from a (non-relayed) STUN message.
    pub fn on_stun(&mut self, dg: &Datagram<'_>, msg: &StunMessage, _tx: TxEvent, _txs: &Transactions) {
        let flow = dg.flow;
        match (msg.method, msg.class) {
            (Method::ALLOCATE, Class::Request) => {
                self.entry(AllocationKey {
                    client: flow.src,
                    server: flow.dst,
                    transport: flow.transport,
                });
            }
            (Method::ALLOCATE, Class::Success) => {
                let key = AllocationKey {
                    client: flow.dst,
                    server: flow.src,
                    transport: flow.transport,
                };
                let relayed: Vec<SocketAddr> = msg
                    .attributes
                    .iter()
                    .filter(|a| a.typ == ATTR_XOR_RELAYED_ADDRESS)
                    .filter_map(|a| a.value.address())
                    .collect();
                let mapped = msg
                    .attr_value(ATTR_XOR_MAPPED_ADDRESS)
                    .and_then(AttrValue::address);
                if let Some(a) = self.entry(key) {
                    a.relayed = relayed;
                    a.mapped = mapped;
                }
            }
            (Method::CHANNEL_BIND, Class::Request) => {
                let channel = match msg.attr_value(ATTR_CHANNEL_NUMBER) {
                    Some(AttrValue::ChannelNumber(n)) => *n,
                    _ => return,
                };
                let Some(peer) = peer_of(msg) else { return };
                let key = AllocationKey {
                    client: flow.src,
                    server: flow.dst,
                    transport: flow.transport,
                };
                if let Some(a) = self.entry(key) {
                    if a.channels.len() < MAX_CHANNELS || a.channels.contains_key(&channel) {
                        a.channels.insert(channel, peer);
                    }
                }
            }
            _ => {}
        }
    }

    fn relay_context(&self, key: &AllocationKey, via: RelayVia) -> (SocketAddr, Relay) {
        let relayed = self.allocations.get(key).and_then(|a| a.relayed.first().copied());
        let relay = Relay {
            server: key.server,
            client: key.client,
            via,
            relayed_address_known: relayed.is_some(),
        };
        (relayed.unwrap_or(SocketAddr::new(key.server.ip(), 0)), relay)
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
            AllocationKey {
                client: dg.flow.src,
                server: dg.flow.dst,
                transport: dg.flow.transport,
            }
        } else {
            AllocationKey {
                client: dg.flow.dst,
                server: dg.flow.src,
                transport: dg.flow.transport,
            }
        };
        // An indication proves the allocation exists even if its Allocate was not captured.
        self.entry(key);
        let (relayed, relay) = self.relay_context(&key, via);
        let flow = if to_peer {
            Flow {
                src: relayed,
                dst: peer,
                transport: Transport::Udp,
            }
        } else {
            Flow {
                src: peer,
                dst: relayed,
                transport: Transport::Udp,
            }
        };
        Some((flow, relay, data))
    }

    /// For ChannelData on `dg.flow`: the inner datagram's flow and the relay context, when the channel's
    /// peer is known.
    pub fn channel_payload(&self, dg: &Datagram<'_>, channel: u16) -> Option<(Flow, Relay)> {
        let (key, to_peer) = self.key_for(&dg.flow)?;
        let peer = *self.allocations.get(&key)?.channels.get(&channel)?;
        let (relayed, relay) = self.relay_context(&key, RelayVia::ChannelData(channel));
        let flow = if to_peer {
            Flow {
                src: relayed,
                dst: peer,
                transport: Transport::Udp,
            }
        } else {
            Flow {
                src: peer,
                dst: relayed,
                transport: Transport::Udp,
            }
        };
        Some((flow, relay))
    }

    /// Relayed addresses of all known allocations (their IPs), for telling relay candidates apart.
    pub fn relayed_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.allocations
            .values()
            .flat_map(|a| a.relayed.iter().map(|r| r.ip()))
    }
}
