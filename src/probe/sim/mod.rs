//! Simulated peers for the probes' unit tests: a TURN server (`turn`), an RFC 5780 STUN server (`stun`),
//! and a NAT in front of the client (`nat`). The probes are sans-IO, so a test hands their datagrams to a
//! simulator and its answers back, in simulated time: a whole check or NAT discovery runs in
//! microseconds, with failures injected at will. Trippy keeps its simulator in `tests/sim/`; ours drive
//! the state machines directly, so they live beside them and are compiled for tests only.
//!
//! They implement what the probes' tests need and no more: they are not servers or NATs to test anything
//! else against, and what they do not expect panics.
pub(crate) mod nat;
pub(crate) mod stun;
pub(crate) mod turn;

use std::net::{IpAddr, SocketAddr};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn sa(ip_: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_), port)
}
