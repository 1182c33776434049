//! Active probes: send STUN/TURN requests and explain what comes back. `iceview nat` discovers the NAT's
//! mapping, filtering, hairpinning and binding lifetime (RFC 5780, with the classic RFC 3489 names);
//! `iceview check` exercises a STUN or TURN server (RFC 8489 Binding, RFC 8656 Allocate with long-term
//! credentials, Refresh, CreatePermission, ChannelBind, data through the relay).
//!
//! The protocol logic is sans-IO, like the rest of iceview: a probe ([`nat::NatProbe`],
//! [`check::CheckProbe`]) is a state machine fed with `(now, datagram)` and timer expiries, which answers
//! with datagrams to send ([`Transmit`]) and the next time it wants to be woken ([`Probe::poll_timeout`]).
//! Time is an argument (a [`Duration`] since the probe started), so tests drive probes with constructed
//! responses and simulated time. [`io`] is the only part that opens sockets; it runs a probe against the
//! network. Retransmissions follow RFC 8489 §6.2.1 ([`Timing`]), capped so that nobody waits forever.
//!
//! `stuns:` and `turns:` run the same checks over TLS: the handshake is made at the edge
//! ([`io::tls`], rustls), and the probe hears how it went ([`Input::TlsEstablished`],
//! [`Input::TlsFailed`]); [`tls`] turns certificates and failures into report fields and one-line reasons.
//!
//! This module does not resolve names (the caller hands it socket addresses), speak DTLS
//! (`turns:...?transport=udp` is refused), or use ICE (no candidate pairing: the candidates are only
//! listed).
pub mod check;
pub mod io;
pub mod nat;
#[cfg(test)]
mod sim;
pub mod text;
pub(crate) mod tls;
mod transactions;
pub mod url;

use crate::wire::stun::TransactionId;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

pub use url::{Scheme, ServerUrl};

/// JSON document schema of `iceview nat|check --json` (docs/probes.md).
pub(crate) const SCHEMA: &str = "iceview.probe/1";

/// Which of a probe's local sockets (or TCP connections) a datagram belongs to.
pub(crate) type SocketId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// A datagram (or, over TCP, one framed STUN message / ChannelData) a probe wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub(crate) socket: SocketId,
    pub(crate) to: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// What the network did, as the edge saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A UDP datagram, or one STUN message or ChannelData frame cut from a TCP stream.
    Datagram {
        socket: SocketId,
        from: SocketAddr,
        data: &'a [u8],
    },
    /// The server's port refused us: ICMP port unreachable on a connected UDP socket, or a TCP connection
    /// refused or reset.
    Refused { socket: SocketId },
    /// The TCP connection could not be set up within the cap (SYNs unanswered: a firewall drops them).
    ConnectTimeout { socket: SocketId },
    /// The TCP connection was closed by the other side.
    Closed { socket: SocketId },
    /// The TLS handshake on this connection succeeded (before any datagram).
    TlsEstablished {
        socket: SocketId,
        session: &'a tls::TlsSession,
    },
    /// TCP connected but TLS failed: the connection is unusable.
    TlsFailed {
        socket: SocketId,
        failure: &'a tls::TlsFailure,
    },
}

/// The sans-IO interface every probe implements (str0m's `handle_input`/`poll_output` shape).
pub trait Probe {
    fn handle_input(&mut self, now: Duration, input: Input<'_>);
    /// Called when the time [`Probe::poll_timeout`] asked for has come (or later).
    fn handle_timeout(&mut self, now: Duration);
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When the probe next needs [`Probe::handle_timeout`]; `None` when it waits for nothing.
    fn poll_timeout(&self) -> Option<Duration>;
    /// True once every test has an answer or has timed out: the report can be taken.
    fn is_done(&self) -> bool;
}

/// RFC 8489 §6.2.1 retransmission parameters, plus iceview's cap on how long one transaction may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Initial retransmission timeout; doubles after each retransmission (RFC 8489: 500 ms).
    pub(crate) rto: Duration,
    /// Transmissions in all, the first included (Rc, RFC 8489: 7).
    pub(crate) rc: u32,
    /// After the last transmission, wait this many RTOs for an answer (Rm, RFC 8489: 16).
    pub(crate) rm: u32,
    /// Over TCP there are no retransmissions; the transaction fails after Ti (RFC 8489: 39.5 s).
    pub(crate) ti: Duration,
    /// No transaction waits longer than this, whatever the schedule says (`--timeout`).
    pub cap: Duration,
}

impl Timing {
    /// RFC 8489's values with the given cap.
    pub fn rfc8489(cap: Duration) -> Self {
        Timing {
            rto: Duration::from_millis(500),
            rc: 7,
            rm: 16,
            ti: Duration::from_millis(39_500),
            cap,
        }
    }

    /// Offsets from the first transmission at which a request is (re)sent, and the offset at which it
    /// times out, before the cap: over UDP 0, 500, 1500, 3500, 7500, 15500, 31500 ms and 39.5 s
    /// (RFC 8489 §6.2.1's example); over TCP one transmission and Ti.
    pub(crate) fn uncapped_schedule(&self, transport: Transport) -> (Vec<Duration>, Duration) {
        match transport {
            Transport::Tcp => (vec![Duration::ZERO], self.ti),
            Transport::Udp => {
                let mut sends = Vec::with_capacity(self.rc as usize);
                let mut at = Duration::ZERO;
                let mut rto = self.rto;
                for _ in 0..self.rc.max(1) {
                    sends.push(at);
                    at += rto;
                    rto *= 2;
                }
                let last = sends.last().copied().unwrap_or_default();
                (sends, last + self.rto * self.rm)
            }
        }
    }

    /// [`Self::uncapped_schedule`] with [`Self::cap`] applied: no send at or after the cap, and the
    /// timeout no later than the cap.
    pub(crate) fn schedule(&self, transport: Transport) -> (Vec<Duration>, Duration) {
        let (mut sends, timeout) = self.uncapped_schedule(transport);
        let timeout = timeout.min(self.cap);
        sends.retain(|&s| s == Duration::ZERO || s < timeout);
        (sends, timeout)
    }
}

/// Transaction ids from a seed: a splitmix64 stream. RFC 8489 §5 wants ids that are hard to guess; the
/// edge seeds this from the operating system's randomness, tests with a constant.
#[derive(Clone, Debug)]
pub(crate) struct IdGen(u64);

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        IdGen(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn transaction_id(&mut self) -> TransactionId {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes()[..4]);
        TransactionId(id)
    }
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub(crate) schema: &'static str,
    pub(crate) generator: crate::report::model::Generator,
    pub(crate) probes: Vec<ProbeReport<'a>>,
}

/// One probe's result in [`Document::probes`].
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeReport<'a> {
    Nat(&'a nat::NatReport),
    Check(&'a check::CheckReport),
}

impl<'a> Document<'a> {
    pub fn new(probes: Vec<ProbeReport<'a>>) -> Self {
        Document {
            schema: SCHEMA,
            generator: crate::report::model::Generator {
                name: "iceview",
                version: env!("CARGO_PKG_VERSION"),
            },
            probes,
        }
    }
}

/// Milliseconds with microsecond precision, as the JSON carries durations.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8489_schedule_is_the_rfcs_example() {
        // RFC 8489 §6.2.1: "requests would be sent at times 0 ms, 500 ms, 1500 ms, 3500 ms, 7500 ms,
        // 15500 ms, and 31500 ms. If the client has not received a response after 39500 ms, the client
        // will consider the transaction to have timed out."
        let t = Timing::rfc8489(Duration::from_secs(3600));
        let (sends, timeout) = t.schedule(Transport::Udp);
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timeout, Duration::from_millis(39_500));
        assert_eq!(
            t.schedule(Transport::Tcp),
            (vec![Duration::ZERO], Duration::from_millis(39_500))
        );
    }

    #[test]
    fn the_cap_shortens_the_schedule() {
        let t = Timing::rfc8489(Duration::from_secs(2));
        let (sends, timeout) = t.schedule(Transport::Udp);
        assert_eq!(sends, [0, 500, 1500].map(Duration::from_millis));
        assert_eq!(timeout, Duration::from_secs(2));
        assert_eq!(t.schedule(Transport::Tcp).1, Duration::from_secs(2));
        let tiny = Timing::rfc8489(Duration::from_millis(1));
        assert_eq!(tiny.schedule(Transport::Udp).0, [Duration::ZERO]);
    }

    #[test]
    fn ids_differ() {
        let mut g = IdGen::new(1);
        let a = g.transaction_id();
        let b = g.transaction_id();
        assert_ne!(a, b);
        assert_ne!(IdGen::new(2).transaction_id(), IdGen::new(3).transaction_id());
    }
}
