//! The relay round trip (RFC 8656 §10 Send and Data indications, §12 ChannelData): once every allocation
//! is ready, each leg sends a payload one way and waits for it to arrive the other. With `--peer` the
//! first allocation sends to a UDP echo peer, once as a Send indication and once as ChannelData, and the
//! echo comes back; without it, the two allocations relay to each other's relayed address, which proves
//! data flows both ways (A Send indication → B Data indication, A ChannelData → B Data indication,
//! B Send indication → A ChannelData). A leg is resent on the RFC 8489 §6.2.1 schedule of the
//! transport, and lost at its timeout.
//!
//! It checks what arrives (the payload, the peer a Data indication names, how it came), not how fast the
//! relay is: one payload per leg, no throughput or jitter figures.
use super::probe::CheckProbe;
use super::{verdict, CHANNEL};
use crate::probe::{SocketId, Transmit};
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Method};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// How relay data travels between the client and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    SendIndication,
    ChannelData,
    DataIndication,
}

impl Via {
    pub(super) fn name(self) -> &'static str {
        match self {
            Via::SendIndication => "send indication",
            Via::ChannelData => "channel data",
            Via::DataIndication => "data indication",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum LegState {
    Running,
    Received { rtt: Duration, via: Via, peer_ok: bool },
    Lost { waited: Duration },
}

/// A leg to run, before it has a payload and a schedule (the fields are [`Leg`]'s).
struct LegPlan {
    name: &'static str,
    from: usize,
    to: Option<usize>,
    out: Via,
    expect: Option<Via>,
}

/// One relay data test: a payload sent one way, expected to arrive the other.
#[derive(Clone, Debug)]
pub(super) struct Leg {
    pub(super) name: &'static str,
    from: usize,
    /// The allocation that should receive it; `None`: the peer echoes it back to `from`.
    to: Option<usize>,
    out: Via,
    /// How it should arrive (`None` for an echo peer: either way).
    expect: Option<Via>,
    payload: Vec<u8>,
    pub(super) state: LegState,
    pub(super) resend_at: VecDeque<Duration>,
    last_sent: Duration,
    pub(super) started: Duration,
    pub(super) deadline: Duration,
    pub(super) transmissions: u32,
}

impl CheckProbe {
    pub(super) fn start_legs(&mut self, now: Duration) {
        let mut plan: Vec<LegPlan> = Vec::new();
        if self.cfg.peer.is_some() {
            plan.push(LegPlan {
                name: "send indication → peer → echo",
                from: 0,
                to: None,
                out: Via::SendIndication,
                expect: None,
            });
            plan.push(LegPlan {
                name: "channel data → peer → echo",
                from: 0,
                to: None,
                out: Via::ChannelData,
                expect: None,
            });
        } else if self.self_relay() {
            plan.push(LegPlan {
                name: "A send indication → B data indication",
                from: 0,
                to: Some(1),
                out: Via::SendIndication,
                expect: Some(Via::DataIndication),
            });
            plan.push(LegPlan {
                name: "A channel data → B data indication",
                from: 0,
                to: Some(1),
                out: Via::ChannelData,
                expect: Some(Via::DataIndication),
            });
            plan.push(LegPlan {
                name: "B send indication → A channel data",
                from: 1,
                to: Some(0),
                out: Via::SendIndication,
                expect: Some(Via::ChannelData),
            });
        }
        let (sends, timeout) = self.cfg.timing.schedule(self.cfg.transport());
        for (n, p) in plan.into_iter().enumerate() {
            let payload = format!("iceview relay check {n} {:016x}", self.ids.next_u64()).into_bytes();
            let mut leg = Leg {
                name: p.name,
                from: p.from,
                to: p.to,
                out: p.out,
                expect: p.expect,
                payload,
                state: LegState::Running,
                resend_at: sends.iter().skip(1).map(|s| now + *s).collect(),
                last_sent: now,
                started: now,
                deadline: now + timeout,
                transmissions: 0,
            };
            self.transmit_leg(&mut leg, now);
            self.legs.push(leg);
        }
    }

    fn transmit_leg(&mut self, leg: &mut Leg, now: Duration) {
        let Some(a) = self.allocs.get(leg.from) else {
            return;
        };
        let peer = match leg.to {
            Some(t) => self.allocs.get(t).and_then(|b| b.relayed),
            None => self.cfg.peer,
        };
        let Some(peer) = peer else { return };
        let data = match leg.out {
            Via::ChannelData => encode::channel_data(CHANNEL, &leg.payload, self.tcp()),
            _ => {
                let id = self.ids.transaction_id();
                MessageBuilder::indication(Method::SEND, id)
                    .xor_address(stun::ATTR_XOR_PEER_ADDRESS, peer)
                    .raw(stun::ATTR_DATA, &leg.payload)
                    .fingerprint()
                    .finish()
                    .ok()
            }
        };
        if let Some(data) = data {
            self.tx.send(Transmit {
                socket: a.socket,
                to: self.cfg.server,
                data,
            });
            leg.transmissions += 1;
            leg.last_sent = now;
        }
    }

    pub(super) fn on_relayed(
        &mut self,
        now: Duration,
        socket: SocketId,
        payload: &[u8],
        via: Via,
        peer: Option<SocketAddr>,
    ) {
        let receiver_of = |l: &Leg| l.to.unwrap_or(l.from);
        let Some(k) = self.legs.iter().position(|l| {
            l.state == LegState::Running
                && self.allocs.get(receiver_of(l)).map(|a| a.socket) == Some(socket)
                && l.payload == payload
        }) else {
            return;
        };
        let sender_relay = self.allocs.get(self.legs[k].from).and_then(|a| a.relayed);
        let leg = &mut self.legs[k];
        let peer_ok = match (leg.to, peer) {
            // A Data indication names the sending peer: the other allocation's relayed address.
            (Some(_), Some(p)) => Some(p) == sender_relay,
            (None, Some(p)) => Some(p) == self.cfg.peer,
            _ => true,
        };
        if leg.expect.is_some_and(|e| e != via) {
            self.warnings.push(format!(
                "{}: arrived as {} rather than {}",
                leg.name,
                via.name(),
                leg.expect.map_or("", Via::name)
            ));
        }
        leg.state = LegState::Received {
            rtt: now.saturating_sub(leg.last_sent),
            via,
            peer_ok,
        };
        self.pump(now);
    }

    pub(super) fn leg_timeouts(&mut self, now: Duration) {
        for k in 0..self.legs.len() {
            let mut leg = self.legs[k].clone();
            if leg.state != LegState::Running {
                continue;
            }
            if now >= leg.deadline {
                leg.state = LegState::Lost {
                    waited: now.saturating_sub(leg.started),
                };
                let failure = verdict::relay_lost(self.cfg.peer, leg.name, &self.server_text());
                self.fail(failure);
            } else {
                let mut due = false;
                while leg.resend_at.front().is_some_and(|&t| t <= now) {
                    leg.resend_at.pop_front();
                    due = true;
                }
                if due {
                    self.transmit_leg(&mut leg, now);
                }
            }
            self.legs[k] = leg;
        }
        self.pump(now);
    }
}

#[cfg(test)]
mod tests {
    //! Relay legs through the simulated TURN server: lost, and echoed by a peer.
    use super::*;
    use crate::probe::sim::turn::{config, run, Turn};

    #[test]
    fn relaying_that_never_arrives_is_a_failure() {
        let server = Turn {
            no_relaying: true,
            ..Default::default()
        };
        let (r, _) = run(config(true, false, Some(("alice", "secret"))), server);
        let f = r.failure.unwrap();
        assert_eq!((f.code.as_str(), f.step.as_str()), ("relay-data-lost", "relay"));
        // The allocations are still deleted (run() asserts it).
        assert!(r.relay.unwrap().iter().all(|l| l.outcome == "lost"));
    }

    #[test]
    fn an_echo_peer_proves_the_relay() {
        let peer: SocketAddr = "198.51.100.7:7".parse().unwrap();
        let mut cfg = config(true, false, Some(("alice", "secret")));
        cfg.peer = Some(peer);
        assert_eq!(CheckProbe::sockets_needed(&cfg), 1);
        let server = Turn {
            echo_peer: Some(peer),
            ..Default::default()
        };
        let (r, _) = run(cfg.clone(), server);
        assert!(r.ok, "{:?}", r.failure);
        let legs = r.relay.unwrap();
        assert_eq!(legs.len(), 2);
        assert!(
            legs.iter()
                .all(|l| l.outcome == "received" && l.peer_ok != Some(false)),
            "{legs:?}"
        );
        // A peer that does not echo is named as the reason.
        let (r, _) = run(cfg, Turn::default());
        let f = r.failure.unwrap();
        assert_eq!(f.code, "peer-no-echo");
        assert!(
            f.message.contains("198.51.100.7:7") && f.message.contains("echo"),
            "{}",
            f.message
        );
    }
}
