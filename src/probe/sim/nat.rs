//! A simulated NAT between `nat`'s probe and the simulated RFC 5780 server ([`super::stun`]), and the loop
//! that runs a probe through it. The NAT has the RFC 4787 behaviours the probe tells apart: mapping and
//! filtering each endpoint-independent, address-dependent or address-and-port-dependent, hairpinning or
//! not, port preservation or not, a binding lifetime (refreshed by traffic both ways, as Linux conntrack
//! does), or no translation at all (a host with a public address, behind a filter). Simulated time: a
//! whole run takes microseconds.
//!
//! It is not a NAT to test anything else against: one public address, UDP only, no port ranges.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
use super::stun::{ServerSim, P1};
use super::{ip, sa};
use crate::probe::nat::{Behaviour, NatConfig, NatProbe, NatReport};
use crate::probe::{Input, Probe, SocketId, Timing, Transmit};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The NAT's public address.
pub(crate) const PUBLIC: &str = "198.51.100.1";
/// The client's address behind it.
pub(crate) const LAN: &str = "192.168.1.10";
/// One way, client to server.
pub(crate) const LATENCY: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub(crate) struct NatSim {
    /// False: no translation (the host has a public address), only the filter.
    pub(crate) translate: bool,
    pub(crate) mapping: Behaviour,
    pub(crate) filtering: Behaviour,
    pub(crate) hairpin: bool,
    pub(crate) preserve_ports: bool,
    pub(crate) lifetime: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    local: SocketAddr,
    key: (Option<IpAddr>, Option<u16>),
    public: SocketAddr,
    contacted: Vec<SocketAddr>,
    last_used: Duration,
}

struct World {
    nat: NatSim,
    server: ServerSim,
    locals: Vec<SocketAddr>,
    table: Vec<Entry>,
    next_port: u16,
    queue: Vec<(Duration, SocketId, SocketAddr, Vec<u8>)>,
    /// Drop this many of the first datagrams the client sends (retransmissions must recover).
    drop_first: usize,
}

impl World {
    fn new(nat: NatSim, server: ServerSim, sockets: usize) -> Self {
        World {
            nat,
            server,
            locals: (0..sockets).map(|i| sa(LAN, 50_000 + i as u16)).collect(),
            table: Vec::new(),
            next_port: 61_000,
            queue: Vec::new(),
            drop_first: 0,
        }
    }

    fn key(&self, dst: SocketAddr) -> (Option<IpAddr>, Option<u16>) {
        match self.nat.mapping {
            Behaviour::EndpointIndependent => (None, None),
            Behaviour::AddressDependent => (Some(dst.ip()), None),
            Behaviour::AddressAndPortDependent => (Some(dst.ip()), Some(dst.port())),
        }
    }

    fn alive(&self, e: &Entry, now: Duration) -> bool {
        self.nat
            .lifetime
            .is_none_or(|l| now.saturating_sub(e.last_used) < l)
    }

    /// Outbound translation: the public source address for `local` → `dst`.
    fn outbound(&mut self, now: Duration, local: SocketAddr, dst: SocketAddr) -> SocketAddr {
        if !self.nat.translate {
            if let Some(e) = self.table.iter_mut().find(|e| e.local == local) {
                e.contacted.push(dst);
                e.last_used = now;
            } else {
                self.table.push(Entry {
                    local,
                    key: (None, None),
                    public: local,
                    contacted: vec![dst],
                    last_used: now,
                });
            }
            return local;
        }
        let key = self.key(dst);
        self.table.retain(|e| {
            self.nat
                .lifetime
                .is_none_or(|l| now.saturating_sub(e.last_used) < l)
        });
        if let Some(e) = self.table.iter_mut().find(|e| e.local == local && e.key == key) {
            e.contacted.push(dst);
            e.last_used = now;
            return e.public;
        }
        let taken = |p: u16, t: &[Entry]| t.iter().any(|e| e.public.port() == p);
        let port = if self.nat.preserve_ports && !taken(local.port(), &self.table) {
            local.port()
        } else {
            self.next_port += 7;
            self.next_port
        };
        let public = sa(PUBLIC, port);
        self.table.push(Entry {
            local,
            key,
            public,
            contacted: vec![dst],
            last_used: now,
        });
        public
    }

    /// Inbound: which socket gets a packet from `from` to public `to`, if the filter lets it in.
    fn inbound(&mut self, now: Duration, from: SocketAddr, to: SocketAddr) -> Option<SocketId> {
        let filtering = self.nat.filtering;
        let alive: Vec<bool> = self.table.iter().map(|e| self.alive(e, now)).collect();
        let e = self
            .table
            .iter_mut()
            .zip(alive)
            .filter(|(e, alive)| *alive && e.public == to)
            .map(|(e, _)| e)
            .find(|e| match filtering {
                Behaviour::EndpointIndependent => true,
                Behaviour::AddressDependent => e.contacted.iter().any(|c| c.ip() == from.ip()),
                Behaviour::AddressAndPortDependent => e.contacted.contains(&from),
            })?;
        // Linux conntrack refreshes on replies too.
        e.last_used = now;
        let local = e.local;
        self.locals.iter().position(|&l| l == local)
    }

    fn send(&mut self, now: Duration, t: Transmit) {
        if self.drop_first > 0 {
            self.drop_first -= 1;
            return;
        }
        let local = self.locals[t.socket];
        let src = self.outbound(now, local, t.to);
        // Hairpinning: a packet to one of the NAT's own public addresses.
        if self.nat.translate && t.to.ip() == ip(PUBLIC) {
            if self.nat.hairpin {
                if let Some(s) = self.inbound_hairpin(t.to) {
                    self.queue.push((now + LATENCY, s, src, t.data));
                }
            }
            return;
        }
        for (from, to, data) in self.server.serve(src, t.to, &t.data) {
            if let Some(s) = self.inbound(now + LATENCY, from, to) {
                self.queue.push((now + 2 * LATENCY, s, from, data));
            }
        }
    }

    fn inbound_hairpin(&self, to: SocketAddr) -> Option<SocketId> {
        let e = self.table.iter().find(|e| e.public == to)?;
        self.locals.iter().position(|&l| l == e.local)
    }
}

/// A NAT discovery against the simulated server's primary address, with the lifetime test up to
/// `lifetime_max`.
pub(crate) fn config(lifetime_max: Option<Duration>) -> NatConfig {
    NatConfig {
        server: sa(P1, 3478),
        label: "stun:sim".into(),
        timing: Timing::rfc8489(Duration::from_secs(3)),
        lifetime_max,
        software: Some("iceview test".into()),
    }
}

/// Runs the probe to completion; returns the report and the simulated time it took.
pub(crate) fn run(
    nat: NatSim,
    server: ServerSim,
    lifetime_max: Option<Duration>,
    drop_first: usize,
) -> (NatReport, Duration) {
    let cfg = config(lifetime_max);
    let mut world = World::new(nat, server, NatProbe::sockets_needed(&cfg));
    world.drop_first = drop_first;
    let mut probe = NatProbe::new(cfg, world.locals.clone(), 42);
    let mut now = Duration::ZERO;
    for _ in 0..100_000 {
        while let Some(t) = probe.poll_transmit() {
            world.send(now, t);
        }
        if probe.is_done() {
            return (probe.report(), now);
        }
        let next_arrival = world.queue.iter().map(|q| q.0).min();
        let next = match (probe.poll_timeout(), next_arrival) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).expect("the probe waits for something"),
        };
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = world.queue.drain(..).partition(|q| q.0 <= now);
        world.queue = later;
        for (_, socket, from, data) in due {
            probe.handle_input(
                now,
                Input::Datagram {
                    socket,
                    from,
                    data: &data,
                },
            );
        }
        if probe.poll_timeout().is_some_and(|t| t <= now) {
            probe.handle_timeout(now);
        }
    }
    panic!("the probe never finished");
}

/// A NAT with these behaviours, port preservation, no hairpinning, bindings that never expire.
pub(crate) fn nat(mapping: Behaviour, filtering: Behaviour) -> NatSim {
    NatSim {
        translate: true,
        mapping,
        filtering,
        hairpin: false,
        preserve_ports: true,
        lifetime: None,
    }
}
