//! What STUN and TURN servers told clients outside any ICE session: server-reflexive addresses from
//! Binding successes (RFC 8445 §5.1.1.1; XOR-MAPPED-ADDRESS, RFC 5389 §15.2 / RFC 8489 §14.2, or an
//! RFC 3489 server's MAPPED-ADDRESS) and from an Allocate's XOR-MAPPED-ADDRESS (RFC 8656 §7.3), relayed
//! addresses from XOR-RELAYED-ADDRESS (relay candidates, RFC 8445 §5.1.1.2), and the indexes that find them
//! by client, by mapped address and by relayed address. Allocations themselves (permissions, channels,
//! lifetimes, authentication) are `analysis::turn`'s; this keeps only the addresses `candidates` needs.
use super::{candidates, IceState, Observed, BINDING_HORIZON_SECS};
use crate::analysis::transactions::{Few, Seen};
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::hash::FastHash;
use crate::net::Transport;
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

/// STUN-server bindings (srflx discovery) remembered.
pub(crate) const MAX_SERVER_BINDINGS: usize = 65_536;

/// A Binding to a STUN/TURN server (no ICE USERNAME): how server-reflexive candidates are found
/// (RFC 8445 §5.1.1.1), and an Allocate's XOR-MAPPED-ADDRESS (RFC 8656 §7.3) does the same.
///
/// In 88 bytes, was 128 (addresses as [`SortAddr`], the `Seen` laid out flat): a busy server's capture
/// holds every binding of the last 45-90 s (`IceState::retire_bindings`), tens of thousands when a round
/// of calls gathers its candidates, and their list was the largest thing held then after the transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerBinding {
    ts: Timestamp,
    frame: u64,
    client: SortAddr,
    server: SortAddr,
    mapped: SortAddr,
    input: u16,
    pub(crate) transport: Transport,
    /// From an Allocate success rather than a Binding.
    pub(crate) via_allocate: bool,
    /// RFC 5780 RESPONSE-ORIGIN / OTHER-ADDRESS present: a NAT-behaviour-discovery server.
    pub(crate) rfc5780: bool,
}

const _: () = assert!(std::mem::size_of::<ServerBinding>() == 88);

impl ServerBinding {
    /// The client's (base) address.
    pub(crate) fn client(&self) -> SocketAddr {
        self.client.addr()
    }

    /// The STUN or TURN server's address.
    pub(crate) fn server(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The address the server saw the client at (XOR-MAPPED-ADDRESS).
    pub(crate) fn mapped(&self) -> SocketAddr {
        self.mapped.addr()
    }

    /// When and where the answer was seen.
    pub(crate) fn seen(&self) -> Seen {
        Seen {
            ts: self.ts,
            frame: self.frame,
            input: self.input,
        }
    }
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
/// IP; positions in `relayed_addresses` (in order) by address. Each map is keyed by a 64-bit hash of its
/// key (8 bytes an entry where an address took 32): a busy server's capture holds tens of thousands of
/// bindings at once, each in three maps. Keys that share a hash share an entry, so what a lookup gives
/// is every position under the hash, and the caller keeps those whose binding has the key
/// ([`BindingIndex::client`] and the others say which).
#[derive(Debug, Default)]
pub(super) struct BindingIndex {
    by_client: HashMap<u64, Positions, FastHash>,
    by_mapped: HashMap<u64, Positions, FastHash>,
    by_mapped_ip: HashMap<u64, Positions, FastHash>,
    relayed: HashMap<u64, Positions, FastHash>,
    hash: FastHash,
    /// Every key gets the same hash (tests of what keys sharing one give).
    #[cfg(test)]
    same_hash: bool,
}

impl BindingIndex {
    fn note(map: &mut HashMap<u64, Positions, FastHash>, key: u64, at: usize) {
        map.entry(key).or_default().push(at);
    }

    fn hash_of(&self, key: impl std::hash::Hash) -> u64 {
        #[cfg(test)]
        if self.same_hash {
            return 7;
        }
        self.hash.hash_one(key)
    }

    /// Notes server binding `b` at position `at`.
    fn note_binding(&mut self, b: &ServerBinding, at: usize) {
        let (client, mapped) = (self.hash_of(b.client()), self.hash_of((b.mapped(), b.transport)));
        let ip = self.hash_of(b.mapped().ip());
        Self::note(&mut self.by_client, client, at);
        Self::note(&mut self.by_mapped, mapped, at);
        Self::note(&mut self.by_mapped_ip, ip, at);
    }

    /// Notes relayed address `r` at position `at`.
    fn note_relayed(&mut self, r: &RelayedAddress, at: usize) {
        let address = self.hash_of(r.address);
        Self::note(&mut self.relayed, address, at);
    }

    fn positions<'a>(
        map: &'a HashMap<u64, Positions, FastHash>,
        key: u64,
    ) -> impl Iterator<Item = usize> + 'a {
        map.get(&key).into_iter().flat_map(Positions::iter)
    }

    /// Positions of the server bindings whose client may be `client` (those whose is), in order.
    pub(super) fn client(&self, client: SocketAddr) -> impl Iterator<Item = usize> + '_ {
        Self::positions(&self.by_client, self.hash_of(client))
    }

    /// Positions of the server bindings whose mapped address and transport may be these, in order.
    pub(super) fn mapped(
        &self,
        mapped: SocketAddr,
        transport: Transport,
    ) -> impl Iterator<Item = usize> + '_ {
        Self::positions(&self.by_mapped, self.hash_of((mapped, transport)))
    }

    /// Positions of the server bindings whose mapped IP may be `ip`, in order.
    pub(super) fn mapped_ip(&self, ip: IpAddr) -> impl Iterator<Item = usize> + '_ {
        Self::positions(&self.by_mapped_ip, self.hash_of(ip))
    }

    /// Positions of the relayed addresses that may be `address`, in order.
    pub(super) fn relayed(&self, address: SocketAddr) -> impl Iterator<Item = usize> + '_ {
        Self::positions(&self.relayed, self.hash_of(address))
    }
}

/// The positions under one key of a [`BindingIndex`] map, in order: nearly always one, kept inline (16
/// bytes). A `Vec<usize>` took 24 inline and a heap block for four (32 bytes and the allocator's own) for
/// every key of every map: a busy server's capture holds tens of thousands of bindings at once.
#[derive(Debug, Default)]
struct Positions(Few<u32>);

impl Positions {
    /// Adds `at` (a position past `u32::MAX` cannot happen: the tables are bounded far below).
    fn push(&mut self, at: usize) {
        if let Ok(at) = u32::try_from(at) {
            self.0.push(at);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|&i| i as usize)
    }
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
        // The bound counts every binding kept, retired ones too: which bindings count does not depend on
        // whether a read folds.
        if self.server_bindings_kept >= MAX_SERVER_BINDINGS {
            self.server_bindings_not_kept += 1;
            return;
        }
        self.server_bindings_kept += 1;
        if o.msg.method == Method::ALLOCATE {
            for address in o
                .msg
                .attributes
                .iter()
                .filter(|a| a.typ == stun::ATTR_XOR_RELAYED_ADDRESS)
            {
                if let Some(address) = address.value.address() {
                    let r = RelayedAddress {
                        address,
                        client: o.flow.dst,
                        server: o.flow.src,
                        transport: o.flow.transport,
                        seen: o.seen,
                    };
                    self.index.note_relayed(&r, self.relayed_addresses.len());
                    self.relayed_addresses.push(r);
                }
            }
        }
        let rfc5780 = o.msg.attr(0x802B).is_some() || o.msg.attr(0x802C).is_some();
        self.mappings.note(o.flow.dst, o.flow.src, mapped, o.seen);
        let b = ServerBinding {
            ts: o.seen.ts,
            frame: o.seen.frame,
            client: SortAddr::of(o.flow.dst),
            server: SortAddr::of(o.flow.src),
            mapped: SortAddr::of(mapped),
            input: o.seen.input,
            transport: o.flow.transport,
            via_allocate: o.msg.method == Method::ALLOCATE,
            rfc5780,
        };
        self.index.note_binding(&b, self.server_bindings.len());
        self.server_bindings.push(b);
    }

    /// Retires what no session can classify its candidates by any more (`candidates`' window): the server
    /// bindings and relayed addresses seen more than [`BINDING_HORIZON_SECS`] before `now` but those an
    /// open session's agent address could still be classified by (its client address or an address on its
    /// mapped IP; a relayed address itself) that are no older than the horizon before that session's first
    /// message; and the mapping comparisons of clients with no binding for as long ([`super::mappings`]).
    /// Only file reads that fold call this; what a session is classified by stays what a read that does
    /// not fold classifies it by (but for an address a session first uses after the horizon has passed
    /// over a binding of it).
    pub(crate) fn retire_bindings(&mut self, now: Timestamp) {
        let old = |ts: Timestamp| now.secs_since(ts) > BINDING_HORIZON_SECS;
        self.mappings.retire(old);
        // Retiring reads every open session's addresses and rebuilds the indexes of every binding kept:
        // run at each fold search (5 s), that was ~10 % of a 4 GB call-dense read (tens of thousands of
        // bindings kept, rebuilt every 5 s of capture time). Once per horizon keeps a binding at most twice
        // the horizon past its time (or while an open session may need it), as nothing is classified from a
        // binding outside the session's window anyway.
        if self.next_binding_retire.is_some_and(|t| now < t) {
            return;
        }
        if !self.server_bindings.iter().any(|b| old(b.seen().ts))
            && !self.relayed_addresses.iter().any(|r| old(r.seen.ts))
        {
            return;
        }
        self.next_binding_retire = Some(now.saturating_add_secs(BINDING_HORIZON_SECS));
        // For each address and IP an old binding has, the earliest time a binding of it can matter to an
        // open session that uses it, if one does. Keyed by a 64-bit hash of the address (16 bytes an entry
        // where the address took 40): two addresses sharing one only keep a binding longer, never drop one
        // an open session could use. Only the old bindings' addresses are keys, and each open session's
        // address is looked up in them: inserting every open address (tens of thousands) into two maps
        // instead was a third of a retire, itself ~5 % of the call-dense 4 GB read's analysis thread (perf).
        let hash = FastHash::default();
        let mut addresses: HashMap<u64, Option<Timestamp>, FastHash> = HashMap::default();
        let mut ips: HashMap<u64, Option<Timestamp>, FastHash> = HashMap::default();
        for b in self.server_bindings.iter().filter(|b| old(b.seen().ts)) {
            addresses.insert(hash.hash_one(b.client()), None);
            ips.insert(hash.hash_one(b.mapped().ip()), None);
        }
        for r in self.relayed_addresses.iter().filter(|r| old(r.seen.ts)) {
            addresses.insert(hash.hash_one(r.address), None);
        }
        for (a, first) in self.open_addresses() {
            let since = candidates::horizon_before(first);
            for e in [
                addresses.get_mut(&hash.hash_one(a)),
                ips.get_mut(&hash.hash_one(a.ip())),
            ]
            .into_iter()
            .flatten()
            {
                *e = Some(e.map_or(since, |e| e.min(since)));
            }
        }
        let wanted = |at: Option<&Option<Timestamp>>, ts: Timestamp| {
            at.copied().flatten().is_some_and(|since| since <= ts)
        };
        let (bindings, relayed) = (self.server_bindings.len(), self.relayed_addresses.len());
        self.server_bindings.retain(|b| {
            !old(b.seen().ts)
                || wanted(addresses.get(&hash.hash_one(b.client())), b.seen().ts)
                || wanted(ips.get(&hash.hash_one(b.mapped().ip())), b.seen().ts)
        });
        self.relayed_addresses
            .retain(|r| !old(r.seen.ts) || wanted(addresses.get(&hash.hash_one(r.address)), r.seen.ts));
        if self.server_bindings.len() != bindings || self.relayed_addresses.len() != relayed {
            shrink(&mut self.server_bindings);
            shrink(&mut self.relayed_addresses);
            self.rebuild_index();
        }
    }

    /// The indexes of `server_bindings` and `relayed_addresses` made again, in their order.
    fn rebuild_index(&mut self) {
        // The old index goes first: both at once were the read's peak on a busy server's capture.
        self.index = BindingIndex::default();
        let mut index = BindingIndex::default();
        for (at, b) in self.server_bindings.iter().enumerate() {
            index.note_binding(b, at);
        }
        for (at, r) in self.relayed_addresses.iter().enumerate() {
            index.note_relayed(r, at);
        }
        self.index = index;
    }

    /// The server bindings whose client (base) address is `client`, in the order seen, with their positions
    /// in `server_bindings`.
    pub(crate) fn bindings_of(
        &self,
        client: SocketAddr,
    ) -> impl Iterator<Item = (usize, &ServerBinding)> + '_ {
        self.index
            .client(client)
            .filter_map(|i| Some((i, self.server_bindings.get(i)?)))
            .filter(move |(_, b)| b.client() == client)
    }
}

/// Gives back most of a vector's spare room once it holds far fewer than it did.
fn shrink<T>(v: &mut Vec<T>) {
    if v.capacity() > 2 * v.len() + 64 {
        v.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{msg, success, Driver, A, B};
    use super::*;

    /// Keys that share a hash share an index entry: every lookup keeps only the bindings with its key. With
    /// every key given one hash, a binding for another client, seen first, is neither this client's
    /// binding nor where its server-reflexive address came from.
    #[test]
    fn bindings_whose_keys_share_a_hash_are_told_apart() {
        let mut d = Driver::new();
        d.ice.index.same_hash = true;
        let c = "192.0.2.9:5000";
        for (id, client, mapped) in [(4, c, "203.0.113.19:5000"), (5, A, "203.0.113.11:5000")] {
            d.feed(
                client,
                "203.0.113.1:3478",
                msg(Method::BINDING, Class::Request, id, vec![]),
            );
            d.feed("203.0.113.1:3478", client, success(id, mapped.parse().unwrap()));
        }
        let a: SocketAddr = A.parse().unwrap();
        let of_a: Vec<SocketAddr> = d.ice.bindings_of(a).map(|(_, b)| b.mapped()).collect();
        assert_eq!(of_a, ["203.0.113.11:5000".parse::<SocketAddr>().unwrap()]);
        // A session whose agent checks from A's mapped address: server-reflexive, based on A.
        d.feed(
            "203.0.113.11:5000",
            B,
            crate::analysis::testkit::check(8, "bbbb:aaaa", true, true),
        );
        let s = d.ice.sessions.get(0).expect("a session");
        let srflx = d.ice.candidates(s, 0);
        let c0 = srflx.first().expect("a candidate");
        assert_eq!(
            (c0.typ, c0.related),
            (super::super::CandidateType::Srflx, Some(a))
        );
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
        assert_eq!(d.ice.server_bindings[0].mapped().to_string(), "203.0.113.11:5000");
        assert!(d.ice.sessions.is_empty());
    }

    /// A binding older than the horizon goes once no open session uses its client address or its mapped
    /// IP; while one does, it stays; the mapping change it showed is still reported.
    #[test]
    fn old_bindings_retire_unless_an_open_session_uses_them() {
        let mut d = Driver::new();
        let (s1, s2) = ("203.0.113.1:3478", "203.0.113.2:3478");
        d.feed(A, s1, msg(Method::BINDING, Class::Request, 5, vec![]));
        d.feed(s1, A, success(5, "203.0.113.11:5000".parse().unwrap()));
        d.feed(A, s2, msg(Method::BINDING, Class::Request, 6, vec![]));
        d.feed(s2, A, success(6, "203.0.113.11:5001".parse().unwrap()));
        assert_eq!(d.ice.server_bindings.len(), 2);
        assert_eq!(d.ice.mappings.changes().len(), 1);
        d.ice.retire_bindings(Timestamp::from_secs_f64(10.0));
        assert_eq!(d.ice.server_bindings.len(), 2, "not old yet");
        d.ice.retire_bindings(Timestamp::from_secs_f64(100.0));
        assert!(d.ice.server_bindings.is_empty());
        assert!(d.ice.bindings_of(A.parse().unwrap()).next().is_none());
        assert_eq!(d.ice.mappings.changes().len(), 1, "the change found stays");

        // A session whose agent uses the client address keeps its bindings while it is open.
        d.feed(
            A,
            "203.0.113.1:3478",
            msg(Method::BINDING, Class::Request, 7, vec![]),
        );
        d.feed(
            "203.0.113.1:3478",
            A,
            success(7, "203.0.113.11:5000".parse().unwrap()),
        );
        d.feed(A, B, crate::analysis::testkit::check(8, "bbbb:aaaa", true, true));
        d.ice.retire_bindings(Timestamp::from_secs_f64(100.0));
        assert_eq!(d.ice.server_bindings.len(), 1);
        assert_eq!(d.ice.bindings_of(A.parse().unwrap()).count(), 1);

        // Asleep (its state in the store, not read back), the session still keeps them.
        d.ice.sessions.enable_sleep(None, 0.0);
        assert_eq!(d.ice.sleep(Timestamp::from_secs_f64(150.0), &d.txs), 1);
        d.ice.retire_bindings(Timestamp::from_secs_f64(200.0));
        assert_eq!(d.ice.server_bindings.len(), 1, "kept for the sleeping session");
        assert_eq!(d.ice.sessions.sleep_counts(), (1, 0), "the session slept through");
    }

    /// An old binding whose client address no session uses stays while an open session uses an address
    /// on its mapped IP (a server-reflexive candidate's base may be another host's port), and goes with the
    /// session; one on neither goes at once.
    #[test]
    fn an_old_binding_stays_for_a_session_on_its_mapped_ip() {
        let mut d = Driver::new();
        let (client, other, server) = ("192.0.2.50:4000", "192.0.2.51:4000", "203.0.113.1:3478");
        d.feed(client, server, msg(Method::BINDING, Class::Request, 5, vec![]));
        d.feed(server, client, success(5, "198.51.100.7:6000".parse().unwrap()));
        d.feed(other, server, msg(Method::BINDING, Class::Request, 6, vec![]));
        d.feed(server, other, success(6, "198.51.100.9:6000".parse().unwrap()));
        // A session whose agent sends from another port of the first mapped IP.
        d.feed(
            "198.51.100.7:7000",
            B,
            crate::analysis::testkit::check(7, "bbbb:aaaa", true, true),
        );
        d.ice.retire_bindings(Timestamp::from_secs_f64(100.0));
        let kept: Vec<SocketAddr> = d.ice.server_bindings.iter().map(ServerBinding::client).collect();
        assert_eq!(kept, vec![client.parse::<SocketAddr>().unwrap()]);
        d.ice.fold(&[0]);
        d.ice.next_binding_retire = None;
        d.ice.retire_bindings(Timestamp::from_secs_f64(200.0));
        assert!(d.ice.server_bindings.is_empty(), "gone with the session");
    }
}
