//! What STUN and TURN servers told clients outside any ICE session: server-reflexive addresses from
//! Binding successes (RFC 8445 §5.1.1.1; XOR-MAPPED-ADDRESS, RFC 5389 §15.2 / RFC 8489 §14.2, or an
//! RFC 3489 server's MAPPED-ADDRESS) and from an Allocate's XOR-MAPPED-ADDRESS (RFC 8656 §7.3), relayed
//! addresses from XOR-RELAYED-ADDRESS (relay candidates, RFC 8445 §5.1.1.2), and the indexes that find them
//! by client, by mapped address and by relayed address. Allocations themselves (permissions, channels,
//! lifetimes, authentication) are `analysis::turn`'s; this keeps only the addresses `candidates` needs.
use super::{IceState, Observed};
use crate::analysis::transactions::Seen;
use crate::net::hash::FastHash;
use crate::net::Transport;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// STUN-server bindings (srflx discovery) remembered.
pub(crate) const MAX_SERVER_BINDINGS: usize = 65_536;

/// A Binding to a STUN/TURN server (no ICE USERNAME): how server-reflexive candidates are found
/// (RFC 8445 §5.1.1.1), and an Allocate's XOR-MAPPED-ADDRESS (RFC 8656 §7.3) does the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerBinding {
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) mapped: SocketAddr,
    pub(crate) seen: Seen,
    /// From an Allocate success rather than a Binding.
    pub(crate) via_allocate: bool,
    /// RFC 5780 RESPONSE-ORIGIN / OTHER-ADDRESS present: a NAT-behaviour-discovery server.
    pub(crate) rfc5780: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RelayedAddress {
    pub(crate) address: SocketAddr,
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    /// Client ↔ server transport (webrtc-stats `relayProtocol`).
    pub(crate) transport: Transport,
    pub(crate) seen: Seen,
}

/// Positions in `server_bindings` (in order) by client address, by mapped address and transport, by mapped
/// IP; the first relayed address entry per address.
#[derive(Debug, Default)]
pub(super) struct BindingIndex {
    pub(super) by_client: HashMap<SocketAddr, Vec<usize>, FastHash>,
    pub(super) by_mapped: HashMap<(SocketAddr, Transport), usize, FastHash>,
    pub(super) by_mapped_ip: HashMap<IpAddr, Vec<usize>, FastHash>,
    pub(super) relayed: HashMap<SocketAddr, usize, FastHash>,
}

impl IceState {
    /// A Binding (or Allocate) success from a server, not from an ICE peer: a server-reflexive address.
    pub(super) fn maybe_server_binding(&mut self, o: &Observed<'_>) {
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

    /// The server bindings whose client (base) address is `client`, in the order seen, with their positions
    /// in `server_bindings`.
    pub(crate) fn bindings_of(
        &self,
        client: SocketAddr,
    ) -> impl Iterator<Item = (usize, &ServerBinding)> + '_ {
        self.index
            .by_client
            .get(&client)
            .into_iter()
            .flatten()
            .filter_map(|&i| Some((i, self.server_bindings.get(i)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{msg, success, Driver, A};
    use super::*;

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
}
