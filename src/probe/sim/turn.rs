//! A simulated TURN server for `check`'s tests (no sockets, simulated time), and the loop that runs a
//! check against it. Long-term credentials are verified with the decoder (user `alice`, password
//! `secret`, realm `lab.example`; RFC 8489 §9.2), nonces are bound to the client's socket, allocations
//! keep their permissions and channels (RFC 8656 §9, §11), and data is relayed between the server's own
//! allocations, or to and from an echo peer, as Data indications or ChannelData (§10, §12; padded over
//! TCP, §12.5). Failures are injected through its flags.
//!
//! It is not a TURN server: no lifetimes expire, no ports are bound, and what it does not expect panics,
//! so that a check that sends something wrong fails its test.
use crate::probe::check::{CheckConfig, CheckProbe, CheckReport, Credentials};
use crate::probe::url::ServerUrl;
use crate::probe::{Input, Probe, SocketId, Timing, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{channel_data, long_term_key, MessageBuilder};
use crate::wire::stun::{self, Class, Method, StunMessage, Verdict};
use crate::wire::{channel, demux};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const LATENCY: Duration = Duration::from_millis(5);
/// The simulated server's address.
pub(crate) const SERVER: &str = "203.0.113.1:3478";

#[derive(Default)]
pub(crate) struct SimAlloc {
    relayed: Option<SocketAddr>,
    perms: Vec<IpAddr>,
    channels: Vec<(u16, SocketAddr)>,
}

#[derive(Default)]
pub(crate) struct Turn {
    pub(crate) silent: bool,
    /// Answer the first authenticated request with 438 and a new nonce.
    pub(crate) stale_once: bool,
    pub(crate) allocate_error: Option<(u16, &'static str)>,
    /// Accepts everything but never relays data.
    pub(crate) no_relaying: bool,
    pub(crate) echo_peer: Option<SocketAddr>,
    /// A user may hold one allocation (coturn --user-quota 1).
    pub(crate) quota_one: bool,
    pub(crate) tcp: bool,
    /// Per client (RFC 8489 §9.2: servers bind nonces to the client's 5-tuple).
    pub(crate) nonces: HashMap<SocketId, String>,
    pub(crate) allocs: HashMap<SocketId, SimAlloc>,
    pub(crate) next_port: u16,
    pub(crate) out: Vec<(SocketId, Vec<u8>)>,
}

impl Turn {
    fn nonce(&mut self, socket: SocketId) -> String {
        self.nonces.entry(socket).or_insert_with(|| "n1".into()).clone()
    }

    fn key() -> [u8; 16] {
        long_term_key("alice", "lab.example", "secret")
    }

    fn reply(&mut self, socket: SocketId, b: &mut MessageBuilder, sign: bool) {
        if sign {
            b.message_integrity(&Self::key());
        }
        self.out.push((socket, b.fingerprint().finish().unwrap()));
    }

    fn error(&mut self, socket: SocketId, msg: &StunMessage, code: u16, reason: &str, nonce: bool) {
        let mut b = MessageBuilder::new(msg.method, Class::Error, msg.transaction_id);
        b.error_code(code, reason);
        if nonce {
            let nonce = self.nonce(socket);
            b.text(stun::ATTR_REALM, "lab.example")
                .text(stun::ATTR_NONCE, &nonce);
        }
        self.reply(socket, &mut b, false);
    }

    fn relay_to(&mut self, from_relay: SocketAddr, to_relay: SocketAddr, data: &[u8]) {
        if self.no_relaying {
            return;
        }
        if Some(to_relay) == self.echo_peer {
            // An external UDP echo peer: the reply comes back to the sender's relayed address.
            let Some(&s) = self
                .allocs
                .iter()
                .find(|(_, a)| a.relayed == Some(from_relay))
                .map(|(s, _)| s)
            else {
                return;
            };
            let a = &self.allocs[&s];
            let bytes = match a.channels.iter().find(|c| c.1 == to_relay) {
                Some(&(ch, _)) => channel_data(ch, data, self.tcp).unwrap(),
                None => MessageBuilder::indication(Method::DATA, stun::TransactionId([8; 12]))
                    .xor_address(stun::ATTR_XOR_PEER_ADDRESS, to_relay)
                    .raw(stun::ATTR_DATA, data)
                    .finish()
                    .unwrap(),
            };
            self.out.push((s, bytes));
            return;
        }
        let Some((&t, dest)) = self.allocs.iter().find(|(_, a)| a.relayed == Some(to_relay)) else {
            return;
        };
        if !dest.perms.contains(&from_relay.ip()) {
            return;
        }
        let bytes = match dest.channels.iter().find(|c| c.1 == from_relay) {
            Some(&(ch, _)) => channel_data(ch, data, self.tcp).unwrap(),
            None => MessageBuilder::indication(Method::DATA, stun::TransactionId([9; 12]))
                .xor_address(stun::ATTR_XOR_PEER_ADDRESS, from_relay)
                .raw(stun::ATTR_DATA, data)
                .finish()
                .unwrap(),
        };
        self.out.push((t, bytes));
    }

    fn handle(&mut self, socket: SocketId, client: SocketAddr, data: &[u8]) {
        if self.silent {
            return;
        }
        if demux::classify(data) == demux::Kind::ChannelData {
            let cd = if self.tcp {
                channel::parse_tcp(data)
            } else {
                channel::parse_udp(data)
            }
            .unwrap();
            if self.tcp {
                assert_eq!(data.len() % 4, 0, "RFC 8656 §12.5: padded over TCP");
            }
            let a = &self.allocs[&socket];
            let (from, to) = (
                a.relayed.unwrap(),
                a.channels.iter().find(|c| c.0 == cd.channel).unwrap().1,
            );
            self.relay_to(from, to, cd.data);
            return;
        }
        let mut keys = Keyring::new();
        keys.add_turn("alice", "secret", None);
        let msg = stun::decode(data, &keys).unwrap();
        assert_eq!(msg.fingerprint, Verdict::Ok(None));
        if msg.method == Method::BINDING {
            let mut b = MessageBuilder::new(Method::BINDING, Class::Success, msg.transaction_id);
            b.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, client);
            return self.reply(socket, &mut b, false);
        }
        if msg.method == Method::SEND {
            let peer = msg
                .attr_value(stun::ATTR_XOR_PEER_ADDRESS)
                .and_then(AttrValue::address)
                .unwrap();
            let payload = data[msg.attr(stun::ATTR_DATA).unwrap().value_range()].to_vec();
            let from = self.allocs[&socket].relayed.unwrap();
            return self.relay_to(from, peer, &payload);
        }
        // RFC 8489 §9.2.4: authenticate every request.
        if msg.attr(stun::ATTR_MESSAGE_INTEGRITY).is_none() {
            return self.error(socket, &msg, 401, "Unauthorized", true);
        }
        if msg.integrity != Verdict::Ok(Some("turn:alice".into())) {
            return self.error(socket, &msg, 401, "Unauthorized", true);
        }
        let nonce = self.nonce(socket);
        if msg.attr_value(stun::ATTR_NONCE).and_then(AttrValue::text) != Some(nonce.as_str())
            || self.stale_once
        {
            self.stale_once = false;
            self.nonces.insert(socket, format!("{nonce}x"));
            return self.error(socket, &msg, 438, "Stale Nonce", true);
        }
        let mut b = MessageBuilder::new(msg.method, Class::Success, msg.transaction_id);
        let peer = msg
            .attr_value(stun::ATTR_XOR_PEER_ADDRESS)
            .and_then(AttrValue::address);
        match msg.method {
            Method::ALLOCATE => {
                if let Some((code, reason)) = self.allocate_error {
                    return self.error(socket, &msg, code, reason, false);
                }
                if self.quota_one && !self.allocs.is_empty() {
                    return self.error(socket, &msg, 486, "Allocation Quota Reached", false);
                }
                assert_eq!(
                    msg.attr_value(stun::ATTR_REQUESTED_TRANSPORT),
                    Some(&AttrValue::RequestedTransport(17))
                );
                self.next_port += 2;
                let relayed: SocketAddr = format!("203.0.113.1:{}", 49_160 + self.next_port)
                    .parse()
                    .unwrap();
                self.allocs.entry(socket).or_default().relayed = Some(relayed);
                b.xor_address(stun::ATTR_XOR_RELAYED_ADDRESS, relayed)
                    .xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, client)
                    .u32(stun::ATTR_LIFETIME, 600);
            }
            Method::REFRESH => {
                let l = msg
                    .attr_value(stun::ATTR_LIFETIME)
                    .and_then(AttrValue::as_u32)
                    .unwrap_or(600);
                if l == 0 {
                    self.allocs.remove(&socket);
                }
                b.u32(stun::ATTR_LIFETIME, l);
            }
            Method::CREATE_PERMISSION => {
                self.allocs
                    .get_mut(&socket)
                    .unwrap()
                    .perms
                    .push(peer.unwrap().ip());
            }
            Method::CHANNEL_BIND => {
                let ch = match msg.attr_value(stun::ATTR_CHANNEL_NUMBER) {
                    Some(AttrValue::ChannelNumber(c)) => *c,
                    other => panic!("{other:?}"),
                };
                let a = self.allocs.get_mut(&socket).unwrap();
                a.channels.push((ch, peer.unwrap()));
                a.perms.push(peer.unwrap().ip());
            }
            m => panic!("unexpected {m}"),
        }
        self.reply(socket, &mut b, true);
    }
}

/// A check of the simulated server: `stun:` or `turn:`, over UDP or TCP, with these credentials.
pub(crate) fn config(turn: bool, tcp: bool, credentials: Option<(&str, &str)>) -> CheckConfig {
    let url = if turn {
        ServerUrl::parse(if tcp {
            "turn:203.0.113.1?transport=tcp"
        } else {
            "turn:203.0.113.1"
        })
        .unwrap()
    } else {
        ServerUrl::parse("stun:203.0.113.1").unwrap()
    };
    CheckConfig {
        url,
        server: SERVER.parse().unwrap(),
        credentials: credentials.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        }),
        peer: None,
        self_relay: true,
        timing: Timing::rfc8489(Duration::from_secs(2)),
        software: None,
    }
}

/// Runs the check against `server` to the end; returns its report and the simulated time it took.
pub(crate) fn run(cfg: CheckConfig, server: Turn) -> (CheckReport, Duration) {
    run_after(cfg, server, &[])
}

/// [`run`], with `first` (what the edge reports before any datagram: TLS) given to the probe first.
pub(crate) fn run_after(cfg: CheckConfig, mut server: Turn, first: &[Input<'_>]) -> (CheckReport, Duration) {
    server.tcp = cfg.url.transport == Transport::Tcp;
    let n = CheckProbe::sockets_needed(&cfg);
    let locals: Vec<SocketAddr> = (0..n)
        .map(|i| format!("198.51.100.5:{}", 40_000 + i).parse().unwrap())
        .collect();
    let mut probe = CheckProbe::new(cfg, locals.clone(), 7);
    for input in first {
        probe.handle_input(Duration::ZERO, *input);
    }
    let mut now = Duration::ZERO;
    let mut queue: Vec<(Duration, SocketId, Vec<u8>)> = Vec::new();
    for _ in 0..10_000 {
        while let Some(t) = probe.poll_transmit() {
            assert_eq!(t.to, SERVER.parse().unwrap());
            server.handle(t.socket, locals[t.socket], &t.data);
            for (s, d) in server.out.drain(..) {
                queue.push((now + LATENCY, s, d));
            }
        }
        if probe.is_done() {
            assert!(server.allocs.is_empty(), "every allocation deleted");
            return (probe.report(), now);
        }
        let next = match (probe.poll_timeout(), queue.iter().map(|q| q.0).min()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).expect("waits for something"),
        };
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = queue.drain(..).partition(|q| q.0 <= now);
        queue = later;
        for (_, socket, data) in due {
            let from = SERVER.parse().unwrap();
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
    panic!("never finished");
}

/// The steps as `step[allocation] outcome`, for tests that look for one.
pub(crate) fn outcomes(r: &CheckReport) -> Vec<String> {
    r.steps
        .iter()
        .map(|s| {
            format!(
                "{}{} {}",
                s.step,
                s.allocation.map(|a| format!("[{a}]")).unwrap_or_default(),
                s.outcome
            )
        })
        .collect()
}
