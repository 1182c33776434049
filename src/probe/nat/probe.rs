//! The NAT discovery state machine: which Binding request (RFC 8489 §6, with RFC 5780 §7.2
//! CHANGE-REQUEST and §7.5 RESPONSE-PORT) goes out on which socket and when, and what came back. Test I
//! goes out at once on the mapping socket and on the filtering socket; its answer names the alternate
//! address (OTHER-ADDRESS, RFC 5780 §7.4, or the classic CHANGED-ADDRESS of RFC 3489 §11.2.3), and the
//! rest follow together: mapping II and III, hairpinning, filtering II and III, the lifetime bindings.
//! Unconnected UDP sockets: an answer is matched by transaction id, on whichever socket it arrives.
//!
//! It records outcomes (answered, error, no answer after the RFC 8489 §6.2.1 schedule) and draws no
//! conclusion: that is `verdict`'s, and `report`'s to present.
use super::lifetime::{lifetime_waits, LifetimeSlot};
use super::NatConfig;
use crate::probe::transactions::{Answered, Expired, Transactions};
use crate::probe::{IdGen, Input, Probe, SocketId, Transmit, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Class, Method, StunMessage};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) const SOCKET_MAPPING: SocketId = 0;
pub(super) const SOCKET_FILTERING: SocketId = 1;
pub(super) const FIRST_LIFETIME_SOCKET: SocketId = 2;

/// A Binding request the probe sends: an RFC 5780 test, or a lifetime slot's binding or check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Test {
    MappingI,
    MappingII,
    MappingIII,
    Hairpin,
    FilteringI,
    FilteringII,
    FilteringIII,
    LifetimeBind(usize),
    LifetimeCheck(usize),
}

/// CHANGE-REQUEST (RFC 5780 §7.2): the server should answer from its alternate IP, its alternate port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ChangeRequest {
    ip: bool,
    port: bool,
}

/// What one Binding transaction brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Answer {
    /// Where the request went.
    pub(super) to: SocketAddr,
    pub(super) from: SocketAddr,
    /// The socket it arrived on (differs from the sender's for RESPONSE-PORT checks).
    pub(super) socket: SocketId,
    pub(super) class: Class,
    pub(super) xor_mapped: Option<SocketAddr>,
    pub(super) mapped: Option<SocketAddr>,
    pub(super) other: Option<SocketAddr>,
    pub(super) origin: Option<SocketAddr>,
    pub(super) software: Option<String>,
    pub(super) error: Option<(u16, String)>,
    pub(super) rtt: Duration,
    pub(super) transmissions: u32,
}

impl Answer {
    pub(super) fn reflexive(&self) -> Option<SocketAddr> {
        self.xor_mapped.or(self.mapped)
    }
    pub(super) fn success(&self) -> bool {
        self.class == Class::Success
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Outcome {
    #[default]
    NotRun,
    Pending {
        to: SocketAddr,
    },
    Answered(Box<Answer>),
    NoAnswer {
        to: SocketAddr,
        transmissions: u32,
        waited: Duration,
    },
}

impl Outcome {
    fn answer(&self) -> Option<&Answer> {
        match self {
            Outcome::Answered(a) => Some(a),
            _ => None,
        }
    }
    pub(super) fn success(&self) -> Option<&Answer> {
        self.answer().filter(|a| a.success())
    }
    pub(super) fn no_answer(&self) -> bool {
        matches!(self, Outcome::NoAnswer { .. })
    }
}

/// The NAT discovery state machine. Needs [`NatProbe::sockets_needed`] UDP sockets, bound to the local
/// address a host candidate would have.
#[derive(Debug)]
pub struct NatProbe {
    pub(super) config: NatConfig,
    pub(super) locals: Vec<SocketAddr>,
    ids: IdGen,
    tx: Transactions<Test>,
    ids_of: Vec<(stun::TransactionId, Test)>,
    pub(super) mapping: [Outcome; 3],
    pub(super) hairpin: Outcome,
    pub(super) filtering: [Outcome; 3],
    pub(super) lifetime: Vec<LifetimeSlot>,
    started: bool,
}

impl NatProbe {
    pub fn sockets_needed(config: &NatConfig) -> usize {
        match config.lifetime_max {
            // One socket per wait, plus Y, which sends the checks.
            Some(max) => FIRST_LIFETIME_SOCKET + lifetime_waits(max).len() + 1,
            None => FIRST_LIFETIME_SOCKET,
        }
    }

    /// `locals[i]` is the local address of socket `i`; `seed` seeds the transaction ids.
    pub fn new(config: NatConfig, locals: Vec<SocketAddr>, seed: u64) -> Self {
        let lifetime = config
            .lifetime_max
            .map(|max| {
                lifetime_waits(max)
                    .into_iter()
                    .map(|wait| LifetimeSlot {
                        wait,
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        NatProbe {
            config,
            locals,
            ids: IdGen::new(seed),
            tx: Transactions::new(),
            ids_of: Vec::new(),
            mapping: Default::default(),
            hairpin: Outcome::NotRun,
            filtering: Default::default(),
            lifetime,
            started: false,
        }
    }

    pub(super) fn local(&self, socket: SocketId) -> Option<SocketAddr> {
        self.locals.get(socket).copied()
    }

    fn outcome_mut(&mut self, test: Test) -> Option<&mut Outcome> {
        Some(match test {
            Test::MappingI => &mut self.mapping[0],
            Test::MappingII => &mut self.mapping[1],
            Test::MappingIII => &mut self.mapping[2],
            Test::Hairpin => &mut self.hairpin,
            Test::FilteringI => &mut self.filtering[0],
            Test::FilteringII => &mut self.filtering[1],
            Test::FilteringIII => &mut self.filtering[2],
            Test::LifetimeBind(i) => &mut self.lifetime.get_mut(i)?.bind,
            Test::LifetimeCheck(i) => &mut self.lifetime.get_mut(i)?.check,
        })
    }

    /// Sends a Binding request for `test`; `change` asks the answer to come from elsewhere (RFC 5780
    /// §7.2), `response_port` asks it to go elsewhere (RFC 5780 §7.5).
    pub(super) fn send(
        &mut self,
        now: Duration,
        test: Test,
        socket: SocketId,
        to: SocketAddr,
        change: Option<ChangeRequest>,
        response_port: Option<u16>,
    ) {
        if socket >= self.locals.len() {
            return;
        }
        let id = self.ids.transaction_id();
        let mut b = MessageBuilder::request(Method::BINDING, id);
        if let Some(sw) = &self.config.software {
            b.text(stun::ATTR_SOFTWARE, sw);
        }
        if let Some(c) = change {
            b.change_request(c.ip, c.port);
        }
        if let Some(p) = response_port {
            b.response_port(p);
        }
        let Ok(data) = b.fingerprint().finish() else {
            return;
        };
        self.ids_of.push((id, test));
        self.tx.start(
            now,
            test,
            id,
            socket,
            to,
            data,
            Transport::Udp,
            &self.config.timing,
        );
        if let Some(o) = self.outcome_mut(test) {
            *o = Outcome::Pending { to };
        }
    }

    fn start(&mut self, now: Duration) {
        self.started = true;
        let server = self.config.server;
        self.send(now, Test::MappingI, SOCKET_MAPPING, server, None, None);
        self.send(now, Test::FilteringI, SOCKET_FILTERING, server, None, None);
    }

    fn on_answer(&mut self, now: Duration, done: Answered<Test>, answer: Answer) {
        let test = done.tag;
        let success = answer.success();
        let other = answer.other;
        let reflexive = answer.reflexive();
        if let Some(o) = self.outcome_mut(test) {
            *o = Outcome::Answered(Box::new(answer));
        }
        if !success {
            return;
        }
        let server = self.config.server;
        match test {
            Test::MappingI => {
                if let Some(alt) = other {
                    let alt_ip_primary_port = SocketAddr::new(alt.ip(), server.port());
                    self.send(
                        now,
                        Test::MappingII,
                        SOCKET_MAPPING,
                        alt_ip_primary_port,
                        None,
                        None,
                    );
                    self.send(now, Test::MappingIII, SOCKET_MAPPING, alt, None, None);
                    for i in 0..self.lifetime.len() {
                        self.send(
                            now,
                            Test::LifetimeBind(i),
                            FIRST_LIFETIME_SOCKET + i,
                            server,
                            None,
                            None,
                        );
                    }
                }
                // RFC 5780 §4.5: send to our own mapped address; only meaningful behind a NAT.
                if let Some(m) = reflexive {
                    if Some(m) != self.local(SOCKET_MAPPING) {
                        self.send(now, Test::Hairpin, SOCKET_MAPPING, m, None, None);
                    }
                }
            }
            Test::FilteringI if other.is_some() => {
                self.send(
                    now,
                    Test::FilteringII,
                    SOCKET_FILTERING,
                    server,
                    Some(ChangeRequest { ip: true, port: true }),
                    None,
                );
                self.send(
                    now,
                    Test::FilteringIII,
                    SOCKET_FILTERING,
                    server,
                    Some(ChangeRequest {
                        ip: false,
                        port: true,
                    }),
                    None,
                );
            }
            Test::LifetimeBind(i) => {
                if let Some(slot) = self.lifetime.get_mut(i) {
                    slot.check_at = Some(now + slot.wait);
                }
            }
            _ => {}
        }
    }

    fn on_expired(&mut self, e: Expired<Test>) {
        if let Some(o) = self.outcome_mut(e.tag) {
            *o = Outcome::NoAnswer {
                to: e.to,
                transmissions: e.transmissions,
                waited: e.waited,
            };
        }
    }
}

impl Probe for NatProbe {
    fn handle_input(&mut self, now: Duration, input: Input<'_>) {
        if !self.started {
            self.start(now);
        }
        let Input::Datagram { socket, from, data } = input else {
            // Unconnected UDP sockets never see refusals; nothing to do with them.
            return;
        };
        if !stun::looks_like_stun(data) {
            return;
        }
        let Ok(msg) = stun::decode(data, &Keyring::new()) else {
            return;
        };
        if msg.method != Method::BINDING {
            return;
        }
        let Some(test) = self.tx.tag(&msg.transaction_id) else {
            return;
        };
        // The hairpinned packet is our own request; everything else must be a response.
        let expected = match test {
            Test::Hairpin => msg.class == Class::Request,
            _ => msg.class.is_response(),
        };
        if !expected {
            return;
        }
        let Some(done) = self.tx.answer(now, &msg.transaction_id) else {
            return;
        };
        let answer = answer_of(&msg, from, socket, &done);
        self.on_answer(now, done, answer);
    }

    fn handle_timeout(&mut self, now: Duration) {
        if !self.started {
            self.start(now);
        }
        for e in self.tx.handle_timeout(now) {
            self.on_expired(e);
        }
        self.due_lifetime_checks(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.started {
            return Some(Duration::ZERO);
        }
        let checks = self
            .lifetime
            .iter()
            .filter(|s| s.check == Outcome::NotRun)
            .filter_map(|s| s.check_at)
            .min();
        match (self.tx.poll_timeout(), checks) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_done(&self) -> bool {
        self.started
            && self.tx.is_idle()
            && self
                .lifetime
                .iter()
                .all(|s| s.check != Outcome::NotRun || s.check_at.is_none())
    }
}

fn answer_of(msg: &StunMessage, from: SocketAddr, socket: SocketId, done: &Answered<Test>) -> Answer {
    let addr = |typ| msg.attr_value(typ).and_then(AttrValue::address);
    let error = msg.attributes.iter().find_map(|a| match &a.value {
        AttrValue::ErrorCode { code, reason } => Some((*code, reason.clone())),
        _ => None,
    });
    Answer {
        to: done.to,
        from,
        socket,
        class: msg.class,
        xor_mapped: addr(stun::ATTR_XOR_MAPPED_ADDRESS).or_else(|| addr(0x8020)),
        mapped: addr(stun::ATTR_MAPPED_ADDRESS),
        // RFC 5780 §7.4; a classic RFC 3489 server names the same thing CHANGED-ADDRESS.
        other: addr(encode::ATTR_OTHER_ADDRESS).or_else(|| addr(encode::ATTR_CHANGED_ADDRESS)),
        origin: addr(encode::ATTR_RESPONSE_ORIGIN),
        software: msg
            .attr_value(stun::ATTR_SOFTWARE)
            .and_then(AttrValue::text)
            .map(str::to_string),
        error,
        rtt: done.rtt,
        transmissions: done.transmissions,
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    //! The state machine under loss, and under hostile datagrams.
    use super::*;
    use crate::probe::nat::Behaviour;
    use crate::probe::sim::nat::{config, nat, run, LAN};
    use crate::probe::sim::sa;
    use crate::probe::sim::stun::{ServerSim, P2};

    #[test]
    fn lost_requests_are_retransmitted() {
        let (r, _) = run(
            nat(Behaviour::EndpointIndependent, Behaviour::AddressDependent),
            ServerSim::default(),
            None,
            2,
        );
        assert_eq!(r.classic, "restricted-cone");
        let t1 = &r.tests[0];
        assert!(t1.transmissions.unwrap() >= 2, "{t1:?}");
    }

    #[test]
    fn hostile_datagrams_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        let cfg = config(Some(Duration::from_secs(5)));
        let n = NatProbe::sockets_needed(&cfg);
        let locals: Vec<SocketAddr> = (0..n).map(|i| sa(LAN, 50_000 + i as u16)).collect();
        let mut probe = NatProbe::new(cfg, locals, 5);
        probe.handle_timeout(Duration::ZERO);
        let mut sent = Vec::new();
        while let Some(t) = probe.poll_transmit() {
            sent.push(t.data);
        }
        for round in 0..3000u32 {
            let len = (round % 120) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next()).collect();
            if len >= 20 && round % 2 == 0 {
                // A plausible header with a transaction id the probe is waiting for, then junk.
                let s = &sent[round as usize % sent.len()];
                b[..2].copy_from_slice(if round % 4 == 0 {
                    &[0x01, 0x01]
                } else {
                    &[0x00, 0x01]
                });
                b[2..4].copy_from_slice(&((len - 20) as u16 & !3).to_be_bytes());
                b[4..20].copy_from_slice(&s[4..20]);
                b.truncate(20 + ((len - 20) & !3));
            }
            let now = Duration::from_millis(round as u64);
            let socket = round as usize % n;
            probe.handle_input(
                now,
                Input::Datagram {
                    socket,
                    from: sa(P2, 3479),
                    data: &b,
                },
            );
            probe.handle_timeout(now);
            while let Some(t) = probe.poll_transmit() {
                sent.push(t.data);
            }
        }
        let _ = probe.report();
    }
}
