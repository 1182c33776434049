//! NAT behaviour discovery against one STUN server (RFC 5780), with the classic RFC 3489 names and what
//! they mean for WebRTC.
//!
//! Tests, all Binding requests (RFC 5780 §4):
//! - mapping (§4.3), on socket 0: test I to the server's primary address, test II to the alternate IP and
//!   primary port, test III to the alternate IP and port. Same mapped address in I and II: endpoint-
//!   independent; II = III: address-dependent; otherwise address-and-port-dependent.
//! - filtering (§4.4), on socket 1, which talks to the primary address only (so no pinhole towards the
//!   alternate address exists): test I, then test II (CHANGE-REQUEST change IP and port) and test III
//!   (change port) at once. An answer to II: endpoint-independent; only to III: address-dependent;
//!   neither: address-and-port-dependent.
//! - hairpinning (§4.5): socket 0 sends a Binding request to its own mapped address; if it comes back in,
//!   the NAT hairpins.
//! - binding lifetime (§4.6), with `--lifetime`: sockets X₁..Xₙ each create a binding at once; after Tᵢ
//!   socket Y sends a Binding request with RESPONSE-PORT = Xᵢ's mapped port; the answer reaches Xᵢ only
//!   while its binding lives. Every Tᵢ has its own socket, so one check never refreshes another's binding
//!   and the whole search takes the longest Tᵢ (a bounded grid, not RFC 5780's open-ended search).
//! - port preservation (mapped port = local port) and ALG detection (MAPPED-ADDRESS ≠ XOR-MAPPED-ADDRESS).
//!
//! Tests on different sockets run concurrently; mapping II and III, and filtering II and III, are sent
//! together, so a run takes about one round trip plus one `--timeout` (the filtering tests that get no
//! answer). A server without OTHER-ADDRESS (nor the classic CHANGED-ADDRESS) does not do RFC 5780: the
//! mapping, filtering and lifetime tests are then reported as not tested, with the reason.
//!
//! The classic names (RFC 3489 §5, as RFC 5780 §1 relates them): no NAT with endpoint-independent
//! filtering is "open internet", no NAT otherwise a "symmetric UDP firewall"; endpoint-independent
//! mapping with endpoint-independent / address-dependent / address-and-port-dependent filtering is a
//! full / restricted / port-restricted cone; any other mapping is "symmetric"; no answer at all is "UDP
//! blocked".
use super::transactions::{Answered, Expired, Transactions};
use super::{ms, IdGen, Input, Probe, SocketId, Timing, Transmit, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Class, Method, StunMessage};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

const SOCKET_MAPPING: SocketId = 0;
const SOCKET_FILTERING: SocketId = 1;
const FIRST_LIFETIME_SOCKET: SocketId = 2;

/// The binding-lifetime grid (seconds): each entry costs one socket. Dense where common NATs expire
/// UDP bindings (Linux conntrack: 30 s unreplied, 120-180 s for streams; many home routers 30-60 s;
/// RFC 4787 REQ-5 asks for at least 2 minutes).
const LIFETIME_GRID_S: &[u64] = &[
    1, 2, 3, 5, 8, 12, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600,
];

/// What to run.
#[derive(Clone, Debug)]
pub struct NatConfig {
    /// The server's primary address (resolved).
    pub server: SocketAddr,
    /// How the user named it, for the report (`stun:example.org`).
    pub label: String,
    pub timing: Timing,
    /// Measure the binding lifetime, up to this long.
    pub lifetime_max: Option<Duration>,
    /// SOFTWARE attribute to send (RFC 8489 §14.14), if any.
    pub software: Option<String>,
}

/// The waits the lifetime test checks: a baseline right after the binding (proves RESPONSE-PORT works),
/// then the grid up to `max`, then `max` itself.
pub fn lifetime_waits(max: Duration) -> Vec<Duration> {
    let mut waits = vec![Duration::ZERO];
    waits.extend(
        LIFETIME_GRID_S
            .iter()
            .map(|&s| Duration::from_secs(s))
            .filter(|&d| d < max),
    );
    if max > Duration::ZERO {
        waits.push(max);
    }
    waits
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
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

/// RFC 4787 / RFC 5780 behaviour of mapping or filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

/// The RFC 3489 §5 classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classic {
    OpenInternet,
    FullCone,
    RestrictedCone,
    PortRestrictedCone,
    Symmetric,
    SymmetricUdpFirewall,
    UdpBlocked,
    /// Not enough was tested to name it (no RFC 5780 server, or answers missing).
    Unknown,
}

impl Classic {
    pub fn id(self) -> &'static str {
        match self {
            Classic::OpenInternet => "open-internet",
            Classic::FullCone => "full-cone",
            Classic::RestrictedCone => "restricted-cone",
            Classic::PortRestrictedCone => "port-restricted-cone",
            Classic::Symmetric => "symmetric",
            Classic::SymmetricUdpFirewall => "symmetric-udp-firewall",
            Classic::UdpBlocked => "udp-blocked",
            Classic::Unknown => "unknown",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Classic::OpenInternet => "open internet (no NAT, no filtering)",
            Classic::FullCone => "full cone NAT",
            Classic::RestrictedCone => "restricted cone NAT",
            Classic::PortRestrictedCone => "port-restricted cone NAT",
            Classic::Symmetric => "symmetric NAT",
            Classic::SymmetricUdpFirewall => {
                "symmetric UDP firewall (no NAT, but unsolicited packets dropped)"
            }
            Classic::UdpBlocked => "UDP blocked (no answer from the server)",
            Classic::Unknown => "unknown",
        }
    }
}

/// What one Binding transaction brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    /// Where the request went.
    to: SocketAddr,
    from: SocketAddr,
    /// The socket it arrived on (differs from the sender's for RESPONSE-PORT checks).
    socket: SocketId,
    class: Class,
    xor_mapped: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    other: Option<SocketAddr>,
    origin: Option<SocketAddr>,
    software: Option<String>,
    error: Option<(u16, String)>,
    rtt: Duration,
    transmissions: u32,
}

impl Answer {
    fn reflexive(&self) -> Option<SocketAddr> {
        self.xor_mapped.or(self.mapped)
    }
    fn success(&self) -> bool {
        self.class == Class::Success
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Outcome {
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
    fn success(&self) -> Option<&Answer> {
        self.answer().filter(|a| a.success())
    }
    fn no_answer(&self) -> bool {
        matches!(self, Outcome::NoAnswer { .. })
    }
}

#[derive(Clone, Debug, Default)]
struct LifetimeSlot {
    wait: Duration,
    bind: Outcome,
    check_at: Option<Duration>,
    check: Outcome,
}

/// The NAT discovery state machine. Needs [`NatProbe::sockets_needed`] UDP sockets, bound to the local
/// address a host candidate would have.
#[derive(Debug)]
pub struct NatProbe {
    config: NatConfig,
    locals: Vec<SocketAddr>,
    ids: IdGen,
    tx: Transactions<Test>,
    ids_of: Vec<(stun::TransactionId, Test)>,
    mapping: [Outcome; 3],
    hairpin: Outcome,
    filtering: [Outcome; 3],
    lifetime: Vec<LifetimeSlot>,
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

    fn local(&self, socket: SocketId) -> Option<SocketAddr> {
        self.locals.get(socket).copied()
    }

    fn lifetime_y(&self) -> SocketId {
        FIRST_LIFETIME_SOCKET + self.lifetime.len()
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

    /// Sends a Binding request for `test`; `change` is (change IP, change port), `response_port` asks
    /// the answer to go elsewhere (RFC 5780 §7.3).
    fn send(
        &mut self,
        now: Duration,
        test: Test,
        socket: SocketId,
        to: SocketAddr,
        change: Option<(bool, bool)>,
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
        if let Some((ip, port)) = change {
            b.change_request(ip, port);
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
                    Some((true, true)),
                    None,
                );
                self.send(
                    now,
                    Test::FilteringIII,
                    SOCKET_FILTERING,
                    server,
                    Some((false, true)),
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

    fn due_lifetime_checks(&mut self, now: Duration) {
        let y = self.lifetime_y();
        let server = self.config.server;
        for i in 0..self.lifetime.len() {
            let slot = &self.lifetime[i];
            if slot.check != Outcome::NotRun || slot.check_at.is_none_or(|t| t > now) {
                continue;
            }
            let Some(port) = slot.bind.success().and_then(Answer::reflexive).map(|m| m.port()) else {
                continue;
            };
            self.send(now, Test::LifetimeCheck(i), y, server, None, Some(port));
        }
    }

    /// The verdicts and the evidence, as reported.
    pub fn report(&self) -> NatReport {
        let obs = Observations {
            server: self.config.server,
            local: self.local(SOCKET_MAPPING),
            mapping: &self.mapping,
            hairpin: &self.hairpin,
            filtering: &self.filtering,
        };
        let v = conclude(&obs);
        let lifetime = (!self.lifetime.is_empty()).then(|| lifetime_report(&self.lifetime));
        let first = self.mapping[0].success().or(self.filtering[0].success());
        let mut untested = v.untested.clone();
        if let Some(l) = &lifetime {
            if let Some(why) = &l.untested {
                untested.push(format!("binding lifetime: {why}"));
            }
        }
        let mut tests = Vec::new();
        let names = [
            ("mapping I", "RFC 5780 §4.3 test I: primary address"),
            ("mapping II", "RFC 5780 §4.3 test II: alternate IP, primary port"),
            ("mapping III", "RFC 5780 §4.3 test III: alternate IP and port"),
        ];
        for (o, (name, what)) in self.mapping.iter().zip(names) {
            tests.push(test_report(name, what, SOCKET_MAPPING, &self.locals, o, None));
        }
        tests.push(test_report(
            "hairpinning",
            "RFC 5780 §4.5: Binding request to our own mapped address",
            SOCKET_MAPPING,
            &self.locals,
            &self.hairpin,
            None,
        ));
        let names = [
            ("filtering I", "RFC 5780 §4.4 test I: primary address", None),
            (
                "filtering II",
                "RFC 5780 §4.4 test II: answer from the alternate IP and port",
                Some("change-ip change-port"),
            ),
            (
                "filtering III",
                "RFC 5780 §4.4 test III: answer from the alternate port",
                Some("change-port"),
            ),
        ];
        for (o, (name, what, change)) in self.filtering.iter().zip(names) {
            tests.push(test_report(name, what, SOCKET_FILTERING, &self.locals, o, change));
        }
        let webrtc = webrtc_advice(v.classic, v.mapping, v.filtering, v.hairpinning, v.nat);
        NatReport {
            server: self.config.label.clone(),
            server_address: self.config.server.to_string(),
            rfc5780: first.map(|a| a.other.is_some()),
            other_address: first.and_then(|a| a.other).map(|a| a.to_string()),
            software: first.and_then(|a| a.software.clone()),
            local_address: self.local(SOCKET_MAPPING).map(|a| a.to_string()),
            mapped_address: v.mapped.map(|a| a.to_string()),
            nat: v.nat,
            mapping: v.mapping.map(Behaviour::name),
            filtering: v.filtering.map(Behaviour::name),
            hairpinning: v.hairpinning,
            port_preservation: v.port_preservation,
            alg: v.alg,
            lifetime,
            classic: v.classic.id(),
            classic_name: v.classic.name(),
            webrtc,
            untested,
            tests,
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

/// The outcomes the verdicts are drawn from.
struct Observations<'a> {
    server: SocketAddr,
    local: Option<SocketAddr>,
    mapping: &'a [Outcome; 3],
    hairpin: &'a Outcome,
    filtering: &'a [Outcome; 3],
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdicts {
    mapped: Option<SocketAddr>,
    nat: Option<bool>,
    mapping: Option<Behaviour>,
    filtering: Option<Behaviour>,
    hairpinning: Option<bool>,
    port_preservation: Option<bool>,
    alg: Option<bool>,
    classic: Classic,
    untested: Vec<String>,
}

fn conclude(o: &Observations<'_>) -> Verdicts {
    let mut untested = Vec::new();
    let first = o.mapping[0].success();
    let mapped = first.and_then(Answer::reflexive);
    let Some(m1) = mapped else {
        let why = match (&o.mapping[0], o.filtering[0].success()) {
            (Outcome::Answered(a), _) => match &a.error {
                Some((code, reason)) => format!("the server answered error {code} ({reason})"),
                None => "the server's answer had no mapped address".to_string(),
            },
            (_, Some(_)) => "test I got no answer on one socket but did on the other (packet loss?)".into(),
            _ => "no answer from the server".into(),
        };
        untested.push(format!("everything: {why}"));
        let blocked = o.mapping[0].no_answer() && o.filtering[0].no_answer();
        return Verdicts {
            mapped: None,
            nat: None,
            mapping: None,
            filtering: None,
            hairpinning: None,
            port_preservation: None,
            alg: None,
            classic: if blocked {
                Classic::UdpBlocked
            } else {
                Classic::Unknown
            },
            untested,
        };
    };
    let nat = o.local.map(|l| l != m1);
    let other = first.and_then(|a| a.other);
    let alt_text = other.map(|a| a.to_string()).unwrap_or_default();

    // RFC 5780 §4.3.
    let mut not_endpoint_independent = false;
    let mapping = if nat == Some(false) {
        // Without a NAT every destination sees the host's own address: endpoint-independent by definition.
        Some(Behaviour::EndpointIndependent)
    } else if other.is_none() {
        untested.push(
            "mapping behaviour: the server sent no OTHER-ADDRESS (it does not do RFC 5780), so there is \
             no second address to compare mappings with"
                .into(),
        );
        None
    } else {
        match o.mapping[1].success().and_then(Answer::reflexive) {
            None => {
                untested.push(format!(
                    "mapping behaviour: no answer from the alternate address {} (test II)",
                    SocketAddr::new(other.map_or(o.server.ip(), |a| a.ip()), o.server.port())
                ));
                None
            }
            Some(m2) if m2 == m1 => Some(Behaviour::EndpointIndependent),
            Some(m2) => match o.mapping[2].success().and_then(Answer::reflexive) {
                Some(m3) if m3 == m2 => Some(Behaviour::AddressDependent),
                Some(_) => Some(Behaviour::AddressAndPortDependent),
                None => {
                    not_endpoint_independent = true;
                    untested.push(format!(
                        "mapping behaviour: a new mapping for the alternate IP, but no answer from {alt_text} \
                         (test III) to tell address- from address-and-port-dependent"
                    ));
                    None
                }
            },
        }
    };

    // RFC 5780 §4.4. An answer that comes from the primary address means the server ignored
    // CHANGE-REQUEST, which proves nothing about the NAT.
    let changed_source = |a: &Answer, want_ip_change: bool| {
        let ip_changed = a.from.ip() != o.server.ip();
        let port_changed = a.from.port() != o.server.port();
        port_changed && ip_changed == want_ip_change
    };
    let filtering_other = o.filtering[0].success().and_then(|a| a.other);
    let filtering = if o.filtering[0].success().is_none() {
        untested.push("filtering behaviour: no answer to filtering test I".into());
        None
    } else if filtering_other.is_none() {
        untested.push(
            "filtering behaviour: the server sent no OTHER-ADDRESS (it does not do RFC 5780), so it cannot \
             answer from another address (CHANGE-REQUEST)"
                .into(),
        );
        None
    } else {
        let verdict_of = |i: usize, ip: bool| -> Result<bool, String> {
            match &o.filtering[i] {
                Outcome::Answered(a) if a.success() && changed_source(a, ip) => Ok(true),
                Outcome::Answered(a) if a.success() => Err(format!(
                    "the server answered CHANGE-REQUEST from {} instead of another address",
                    a.from
                )),
                Outcome::Answered(a) => Err(match &a.error {
                    Some((code, reason)) => format!("the server refused CHANGE-REQUEST: {code} {reason}"),
                    None => "the server refused CHANGE-REQUEST".into(),
                }),
                Outcome::NoAnswer { .. } => Ok(false),
                Outcome::NotRun | Outcome::Pending { .. } => Err("test not finished".into()),
            }
        };
        match (verdict_of(1, true), verdict_of(2, false)) {
            (Ok(true), _) => Some(Behaviour::EndpointIndependent),
            (Ok(false), Ok(true)) => Some(Behaviour::AddressDependent),
            (Ok(false), Ok(false)) => Some(Behaviour::AddressAndPortDependent),
            (Err(why), _) | (_, Err(why)) => {
                untested.push(format!("filtering behaviour: {why}"));
                None
            }
        }
    };

    let hairpinning = match o.hairpin {
        Outcome::Answered(_) => Some(true),
        Outcome::NoAnswer { .. } => Some(false),
        _ => None,
    };
    let port_preservation = match (nat, o.local) {
        (Some(true), Some(l)) => Some(l.port() == m1.port()),
        _ => None,
    };
    // RFC 5780 §4.1 / RFC 8489 §14.2: an ALG that rewrites addresses in payloads changes MAPPED-ADDRESS
    // but cannot recognise the XOR-ed one.
    let pairs: Vec<bool> = o
        .mapping
        .iter()
        .chain(o.filtering.iter())
        .filter_map(Outcome::success)
        .filter_map(|a| Some(a.mapped? != a.xor_mapped?))
        .collect();
    let alg = (!pairs.is_empty()).then(|| pairs.iter().any(|&d| d));

    let classic = match (nat, mapping, filtering) {
        (Some(false), _, Some(Behaviour::EndpointIndependent)) => Classic::OpenInternet,
        (Some(false), _, Some(_)) => Classic::SymmetricUdpFirewall,
        (Some(true), Some(Behaviour::EndpointIndependent), Some(f)) => match f {
            Behaviour::EndpointIndependent => Classic::FullCone,
            Behaviour::AddressDependent => Classic::RestrictedCone,
            Behaviour::AddressAndPortDependent => Classic::PortRestrictedCone,
        },
        (Some(true), Some(Behaviour::AddressDependent | Behaviour::AddressAndPortDependent), _) => {
            Classic::Symmetric
        }
        (Some(true), None, _) if not_endpoint_independent => Classic::Symmetric,
        _ => Classic::Unknown,
    };
    Verdicts {
        mapped,
        nat,
        mapping,
        filtering,
        hairpinning,
        port_preservation,
        alg,
        classic,
        untested,
    }
}

/// What the verdict means for a WebRTC call from this network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebRtcAdvice {
    /// `yes`, `mostly`, `limited`, `no` or `unknown`: will a direct (non-relayed) path form?
    pub direct: &'static str,
    /// `not-needed`, `for-some-peers`, `recommended` or `required-over-tcp`.
    pub turn: &'static str,
    pub explanation: String,
}

fn webrtc_advice(
    classic: Classic,
    mapping: Option<Behaviour>,
    filtering: Option<Behaviour>,
    hairpinning: Option<bool>,
    nat: Option<bool>,
) -> WebRtcAdvice {
    use Behaviour::*;
    let (direct, turn, mut explanation) = match (classic, mapping, filtering) {
        (Classic::UdpBlocked, _, _) => (
            "no",
            "required-over-tcp",
            "No UDP reached the STUN server: media over UDP will not flow. Only TURN over TCP or TLS \
             (turn:HOST?transport=tcp, or turns: on port 443) can connect calls from this network \
             (or the server is down: try another one)."
                .to_string(),
        ),
        (_, Some(EndpointIndependent), Some(EndpointIndependent)) => (
            "yes",
            "not-needed",
            if nat == Some(true) {
                "The server-reflexive candidate accepts packets from anyone: direct connections work with \
                 every peer that can send UDP."
            } else {
                "Host candidates are reachable from anywhere: direct connections work with every peer \
                 that can send UDP."
            }
            .to_string(),
        ),
        (_, Some(EndpointIndependent), Some(AddressDependent)) => (
            "yes",
            "not-needed",
            "The mapping is stable and packets are accepted from any address this side has sent to: ICE's \
             simultaneous checks open the way to peers behind any kind of NAT."
                .to_string(),
        ),
        (_, Some(EndpointIndependent), Some(AddressAndPortDependent)) => (
            "mostly",
            "for-some-peers",
            "The mapping is stable, but packets are accepted only from the exact address and port this \
             side has sent to: direct connections work with peers that have no NAT or a cone NAT; a peer \
             behind a symmetric NAT answers from a port ICE never learned, so those calls need TURN."
                .to_string(),
        ),
        (_, Some(AddressDependent | AddressAndPortDependent), _) | (Classic::Symmetric, _, _) => (
            "limited",
            "recommended",
            "Every destination gets a new mapping, so the server-reflexive candidate is no use to peers: \
             direct connections work only with peers that have no NAT or a full-cone or restricted-cone \
             NAT (they learn this side as a peer-reflexive candidate). With port-restricted or symmetric \
             peers the call needs TURN."
                .to_string(),
        ),
        _ => (
            "unknown",
            "recommended",
            if nat == Some(true) {
                "Behind a NAT whose type could not be tested with this server: a server-reflexive \
                 candidate exists, but whether direct connections form depends on the NAT's mapping and \
                 filtering. Keep a TURN server configured, or test against a server with RFC 5780 \
                 support (two IP addresses, e.g. coturn with two listening IPs)."
            } else {
                "Whether direct connections form could not be tested with this server; keep a TURN \
                 server configured."
            }
            .to_string(),
        ),
    };
    if hairpinning == Some(false) && classic != Classic::UdpBlocked {
        explanation.push_str(
            " No hairpinning: two clients behind this same NAT reach each other only through host \
             candidates (same LAN) or TURN.",
        );
    }
    WebRtcAdvice {
        direct,
        turn,
        explanation,
    }
}

/// One RFC 5780 test as run.
#[derive(Clone, Debug, Serialize)]
pub struct TestReport {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_request: Option<&'static str>,
    /// `answered`, `error`, `no-answer` or `not-run`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transmissions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<f64>,
}

fn test_report(
    name: &'static str,
    description: &'static str,
    socket: SocketId,
    locals: &[SocketAddr],
    o: &Outcome,
    change_request: Option<&'static str>,
) -> TestReport {
    let mut r = TestReport {
        name,
        description,
        local: locals.get(socket).map(|a| a.to_string()),
        to: None,
        change_request,
        outcome: "not-run",
        from: None,
        mapped: None,
        error_code: None,
        rtt_ms: None,
        transmissions: None,
        waited_ms: None,
    };
    match o {
        Outcome::NotRun => {}
        Outcome::Pending { to } => {
            r.to = Some(to.to_string());
            r.outcome = "no-answer";
        }
        Outcome::Answered(a) => {
            r.to = Some(a.to.to_string());
            // The hairpinned "answer" is our own request coming back in.
            r.outcome = if a.success() || a.class == Class::Request {
                "answered"
            } else {
                "error"
            };
            r.from = Some(a.from.to_string());
            r.mapped = a.reflexive().map(|m| m.to_string());
            r.error_code = a.error.as_ref().map(|e| e.0);
            r.rtt_ms = Some(ms(a.rtt));
            r.transmissions = Some(a.transmissions);
        }
        Outcome::NoAnswer {
            to,
            transmissions,
            waited,
        } => {
            r.to = Some(to.to_string());
            r.outcome = "no-answer";
            r.transmissions = Some(*transmissions);
            r.waited_ms = Some(ms(*waited));
        }
    }
    r
}

/// RFC 5780 §4.6 binding lifetime, as measured on the grid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifetimeReport {
    /// The longest wait after which the binding still worked (seconds).
    pub at_least_s: Option<f64>,
    /// The shortest wait after which it had expired, when longer than `at_least_s` (seconds).
    pub less_than_s: Option<f64>,
    /// Why the lifetime could not be measured, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untested: Option<String>,
    /// Checks that disagree with the bracket (a binding dead after a shorter wait than a live one):
    /// packet loss, or a NAT that expires bindings irregularly.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inconsistent: Vec<f64>,
    pub checks: Vec<LifetimeCheckReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifetimeCheckReport {
    pub wait_s: f64,
    /// `alive`, `expired`, `not-run`, or `answered-elsewhere` (the server ignored RESPONSE-PORT).
    pub result: &'static str,
}

fn lifetime_report(slots: &[LifetimeSlot]) -> LifetimeReport {
    let mut checks = Vec::new();
    let mut alive = Vec::new();
    let mut dead = Vec::new();
    let mut elsewhere = false;
    for (i, s) in slots.iter().enumerate() {
        let result = match &s.check {
            Outcome::Answered(a) if a.socket == FIRST_LIFETIME_SOCKET + i => {
                alive.push(s.wait);
                "alive"
            }
            Outcome::Answered(_) => {
                elsewhere = true;
                "answered-elsewhere"
            }
            Outcome::NoAnswer { .. } => {
                dead.push(s.wait);
                "expired"
            }
            _ => "not-run",
        };
        checks.push(LifetimeCheckReport {
            wait_s: s.wait.as_secs_f64(),
            result,
        });
    }
    let baseline = slots.first().map(|s| &s.check);
    let untested = if slots.first().is_some_and(|s| s.bind.success().is_none()) {
        Some("no binding could be created (no answer from the server, or no RFC 5780 support)".to_string())
    } else if elsewhere {
        Some("the server ignored RESPONSE-PORT (RFC 5780 §7.3) and answered the checking socket".to_string())
    } else if baseline.is_some_and(Outcome::no_answer) {
        Some(
            "even an immediate check with RESPONSE-PORT got no answer: the server may not support \
             RESPONSE-PORT (RFC 5780 §7.3)"
                .to_string(),
        )
    } else {
        None
    };
    if untested.is_some() {
        return LifetimeReport {
            at_least_s: None,
            less_than_s: None,
            untested,
            inconsistent: Vec::new(),
            checks,
        };
    }
    let at_least = alive.iter().max().copied();
    let less_than = dead.iter().filter(|&&d| Some(d) > at_least).min().copied();
    let inconsistent = dead
        .iter()
        .filter(|&&d| Some(d) <= at_least && d > Duration::ZERO)
        .map(Duration::as_secs_f64)
        .collect();
    LifetimeReport {
        at_least_s: at_least.map(|d| d.as_secs_f64()),
        less_than_s: less_than.map(|d| d.as_secs_f64()),
        untested: None,
        inconsistent,
        checks,
    }
}

/// The result of `iceview nat`.
#[derive(Clone, Debug, Serialize)]
pub struct NatReport {
    pub server: String,
    pub server_address: String,
    /// Whether the server supports RFC 5780 (it sent OTHER-ADDRESS); `None` when it never answered.
    pub rfc5780: Option<bool>,
    pub other_address: Option<String>,
    /// The server's SOFTWARE attribute, as sent (escape before printing).
    pub software: Option<String>,
    pub local_address: Option<String>,
    /// The server-reflexive address of the mapping socket (test I).
    pub mapped_address: Option<String>,
    /// Whether a NAT translates this host's address (mapped ≠ local).
    pub nat: Option<bool>,
    /// RFC 4787 mapping behaviour; `None` when not tested (see `untested`).
    pub mapping: Option<&'static str>,
    pub filtering: Option<&'static str>,
    pub hairpinning: Option<bool>,
    pub port_preservation: Option<bool>,
    /// An application-level gateway rewrote MAPPED-ADDRESS (it differs from XOR-MAPPED-ADDRESS).
    pub alg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<LifetimeReport>,
    /// RFC 3489 classification: `open-internet`, `full-cone`, `restricted-cone`, `port-restricted-cone`,
    /// `symmetric`, `symmetric-udp-firewall`, `udp-blocked`, `unknown`.
    pub classic: &'static str,
    pub classic_name: &'static str,
    pub webrtc: WebRtcAdvice,
    /// What could not be tested, and why.
    pub untested: Vec<String>,
    pub tests: Vec<TestReport>,
}

impl NatReport {
    /// The server never answered at all.
    pub fn no_answer(&self) -> bool {
        self.mapped_address.is_none() && self.rfc5780.is_none()
    }
}

#[cfg(test)]
mod tests {
    //! The probe against a simulated network: a NAT with configurable mapping, filtering, hairpinning,
    //! port preservation and binding lifetime, and an RFC 5780 server on two IPs and two ports whose
    //! answers are built with the encoder. Simulated time: a whole run takes microseconds.
    use super::*;
    use crate::wire::encode::MessageBuilder;
    use std::net::IpAddr;

    const P1: &str = "203.0.113.1";
    const P2: &str = "203.0.113.2";
    const PUBLIC: &str = "198.51.100.1";
    const LAN: &str = "192.168.1.10";
    const LATENCY: Duration = Duration::from_millis(10);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn sa(ip_: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip(ip_), port)
    }

    #[derive(Clone, Debug)]
    struct NatSim {
        /// False: no translation (the host has a public address), only the filter.
        translate: bool,
        mapping: Behaviour,
        filtering: Behaviour,
        hairpin: bool,
        preserve_ports: bool,
        lifetime: Option<Duration>,
    }

    #[derive(Debug)]
    struct Entry {
        local: SocketAddr,
        key: (Option<IpAddr>, Option<u16>),
        public: SocketAddr,
        contacted: Vec<SocketAddr>,
        last_used: Duration,
    }

    #[derive(Clone, Debug)]
    struct ServerSim {
        rfc5780: bool,
        honours_response_port: bool,
        down: bool,
        /// An ALG that rewrites MAPPED-ADDRESS on the way back.
        alg: bool,
    }

    impl Default for ServerSim {
        fn default() -> Self {
            ServerSim {
                rfc5780: true,
                honours_response_port: true,
                down: false,
                alg: false,
            }
        }
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
            for (from, to, data) in self.serve(src, t.to, &t.data) {
                if let Some(s) = self.inbound(now + LATENCY, from, to) {
                    self.queue.push((now + 2 * LATENCY, s, from, data));
                }
            }
        }

        fn inbound_hairpin(&self, to: SocketAddr) -> Option<SocketId> {
            let e = self.table.iter().find(|e| e.public == to)?;
            self.locals.iter().position(|&l| l == e.local)
        }

        /// The RFC 5780 server: answers a Binding request received on `dst` from `src`.
        fn serve(
            &self,
            src: SocketAddr,
            dst: SocketAddr,
            data: &[u8],
        ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
            let s = &self.server;
            let ours = [sa(P1, 3478), sa(P1, 3479), sa(P2, 3478), sa(P2, 3479)];
            if s.down || !ours.contains(&dst) || (!s.rfc5780 && dst != ours[0]) {
                return Vec::new();
            }
            let msg = stun::decode(data, &Keyring::new()).unwrap();
            let mut from = dst;
            let mut to = src;
            let mut b = MessageBuilder::new(Method::BINDING, Class::Success, msg.transaction_id);
            if s.rfc5780 {
                if let Some(AttrValue::ChangeRequest {
                    change_ip,
                    change_port,
                }) = msg.attr_value(encode::ATTR_CHANGE_REQUEST)
                {
                    if *change_ip {
                        from.set_ip(if from.ip() == ip(P1) { ip(P2) } else { ip(P1) });
                    }
                    if *change_port {
                        from.set_port(if from.port() == 3478 { 3479 } else { 3478 });
                    }
                }
                if let Some(AttrValue::ResponsePort(p)) = msg.attr_value(encode::ATTR_RESPONSE_PORT) {
                    if s.honours_response_port {
                        to.set_port(*p);
                    }
                }
            } else if msg.attr(encode::ATTR_CHANGE_REQUEST).is_some() {
                // RFC 8489 §7.3.1: an unknown comprehension-required attribute gets a 420.
                let err = MessageBuilder::new(Method::BINDING, Class::Error, msg.transaction_id)
                    .error_code(420, "Unknown Attribute")
                    .finish()
                    .unwrap();
                return vec![(from, to, err)];
            }
            let mapped = if s.alg { sa("10.9.9.9", 9) } else { src };
            b.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, src)
                .address(stun::ATTR_MAPPED_ADDRESS, mapped)
                .text(stun::ATTR_SOFTWARE, "sim\x1b[31m");
            if s.rfc5780 {
                let other = SocketAddr::new(
                    if dst.ip() == ip(P1) { ip(P2) } else { ip(P1) },
                    if dst.port() == 3478 { 3479 } else { 3478 },
                );
                b.address(encode::ATTR_OTHER_ADDRESS, other)
                    .address(encode::ATTR_RESPONSE_ORIGIN, from);
            }
            vec![(from, to, b.fingerprint().finish().unwrap())]
        }
    }

    fn config(lifetime_max: Option<Duration>) -> NatConfig {
        NatConfig {
            server: sa(P1, 3478),
            label: "stun:sim".into(),
            timing: Timing::rfc8489(Duration::from_secs(3)),
            lifetime_max,
            software: Some("iceview test".into()),
        }
    }

    /// Runs the probe to completion; returns the report and the simulated time it took.
    fn run(
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

    fn nat(mapping: Behaviour, filtering: Behaviour) -> NatSim {
        NatSim {
            translate: true,
            mapping,
            filtering,
            hairpin: false,
            preserve_ports: true,
            lifetime: None,
        }
    }

    #[test]
    fn every_mapping_and_filtering_combination_gets_its_rfc3489_name() {
        use Behaviour::*;
        for (mapping, filtering, classic) in [
            (EndpointIndependent, EndpointIndependent, "full-cone"),
            (EndpointIndependent, AddressDependent, "restricted-cone"),
            (
                EndpointIndependent,
                AddressAndPortDependent,
                "port-restricted-cone",
            ),
            (AddressDependent, EndpointIndependent, "symmetric"),
            (AddressDependent, AddressDependent, "symmetric"),
            (AddressDependent, AddressAndPortDependent, "symmetric"),
            (AddressAndPortDependent, EndpointIndependent, "symmetric"),
            (AddressAndPortDependent, AddressDependent, "symmetric"),
            (AddressAndPortDependent, AddressAndPortDependent, "symmetric"),
        ] {
            let (r, took) = run(nat(mapping, filtering), ServerSim::default(), None, 0);
            let what = format!("{mapping:?}/{filtering:?}");
            assert_eq!(r.mapping, Some(mapping.name()), "{what}");
            assert_eq!(r.filtering, Some(filtering.name()), "{what}");
            assert_eq!(r.classic, classic, "{what}");
            assert_eq!(r.nat, Some(true), "{what}");
            assert_eq!(r.rfc5780, Some(true));
            assert_eq!(r.other_address.as_deref(), Some("203.0.113.2:3479"));
            assert_eq!(r.hairpinning, Some(false), "{what}");
            assert!(r.untested.is_empty(), "{what}: {:?}", r.untested);
            assert_eq!(r.alg, Some(false));
            // One round trip for test I, then everything else at once: the run ends when the slowest
            // test (an unanswered one) times out, never later.
            assert!(took <= 2 * LATENCY + Duration::from_secs(3), "{what}: {took:?}");
        }
    }

    #[test]
    fn what_it_means_for_webrtc() {
        use Behaviour::*;
        let advice = |m, f| run(nat(m, f), ServerSim::default(), None, 0).0.webrtc;
        assert_eq!(advice(EndpointIndependent, EndpointIndependent).direct, "yes");
        assert_eq!(advice(EndpointIndependent, AddressDependent).turn, "not-needed");
        let prc = advice(EndpointIndependent, AddressAndPortDependent);
        assert_eq!((prc.direct, prc.turn), ("mostly", "for-some-peers"));
        assert!(prc.explanation.contains("symmetric NAT"), "{}", prc.explanation);
        let sym = advice(AddressAndPortDependent, AddressAndPortDependent);
        assert_eq!((sym.direct, sym.turn), ("limited", "recommended"));
        assert!(sym.explanation.contains("No hairpinning"));
    }

    #[test]
    fn no_nat_is_open_internet_or_a_symmetric_udp_firewall() {
        let mut open = nat(Behaviour::EndpointIndependent, Behaviour::EndpointIndependent);
        open.translate = false;
        let (r, _) = run(open.clone(), ServerSim::default(), None, 0);
        assert_eq!((r.nat, r.classic), (Some(false), "open-internet"));
        assert_eq!(r.mapped_address, r.local_address);
        assert_eq!(r.hairpinning, None, "not applicable without a NAT");
        assert_eq!(r.port_preservation, None);
        assert_eq!(r.mapping, Some("endpoint-independent"));
        let mut firewall = open;
        firewall.filtering = Behaviour::AddressAndPortDependent;
        let (r, _) = run(firewall, ServerSim::default(), None, 0);
        assert_eq!(r.classic, "symmetric-udp-firewall");
    }

    #[test]
    fn hairpinning_and_port_preservation_are_seen() {
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::EndpointIndependent);
        n.hairpin = true;
        n.preserve_ports = false;
        let (r, _) = run(n, ServerSim::default(), None, 0);
        assert_eq!(r.hairpinning, Some(true));
        assert_eq!(r.port_preservation, Some(false));
        let hp = r.tests.iter().find(|t| t.name == "hairpinning").unwrap();
        assert_eq!(hp.outcome, "answered");
    }

    #[test]
    fn a_server_without_rfc5780_gives_the_reduced_answer() {
        let server = ServerSim {
            rfc5780: false,
            ..Default::default()
        };
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        n.hairpin = true;
        let (r, _) = run(n, server, Some(Duration::from_secs(30)), 0);
        assert_eq!(r.rfc5780, Some(false));
        assert_eq!((r.mapping, r.filtering), (None, None));
        assert_eq!(r.classic, "unknown");
        assert_eq!(r.nat, Some(true));
        // What does not need a second address is still tested.
        assert_eq!(r.hairpinning, Some(true));
        assert_eq!(r.port_preservation, Some(true));
        assert_eq!(r.webrtc.direct, "unknown");
        let untested = r.untested.join("\n");
        assert!(
            untested.contains("mapping behaviour: the server sent no OTHER-ADDRESS"),
            "{untested}"
        );
        assert!(
            untested.contains("filtering behaviour: the server sent no OTHER-ADDRESS"),
            "{untested}"
        );
        assert!(untested.contains("binding lifetime"), "{untested}");
    }

    #[test]
    fn silence_is_udp_blocked() {
        let server = ServerSim {
            down: true,
            ..Default::default()
        };
        let (r, took) = run(
            nat(Behaviour::EndpointIndependent, Behaviour::EndpointIndependent),
            server,
            None,
            0,
        );
        assert_eq!(r.classic, "udp-blocked");
        assert!(r.no_answer());
        assert_eq!(r.webrtc.turn, "required-over-tcp");
        // RFC 8489 schedule capped at 3 s: sent at 0, 0.5 and 1.5 s, given up at 3 s.
        assert_eq!(took, Duration::from_secs(3));
        let t1 = &r.tests[0];
        assert_eq!((t1.outcome, t1.transmissions), ("no-answer", Some(3)));
    }

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
    fn an_alg_that_rewrites_mapped_address_is_detected() {
        let server = ServerSim {
            alg: true,
            ..Default::default()
        };
        let (r, _) = run(
            nat(Behaviour::EndpointIndependent, Behaviour::EndpointIndependent),
            server,
            None,
            0,
        );
        assert_eq!(r.alg, Some(true));
        // The XOR-ed address is what the verdicts use.
        assert_eq!(r.classic, "full-cone");
    }

    #[test]
    fn binding_lifetime_is_bracketed_by_the_grid() {
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        n.lifetime = Some(Duration::from_secs(25));
        let (r, took) = run(n, ServerSim::default(), Some(Duration::from_secs(60)), 0);
        let l = r.lifetime.unwrap();
        assert_eq!((l.at_least_s, l.less_than_s), (Some(20.0), Some(30.0)), "{l:?}");
        assert!(l.inconsistent.is_empty());
        assert!(l.untested.is_none());
        // Bounded: the longest wait plus one timeout.
        assert!(took <= Duration::from_secs(60 + 3) + 4 * LATENCY, "{took:?}");
        let waits: Vec<f64> = l.checks.iter().map(|c| c.wait_s).collect();
        assert_eq!(
            waits,
            [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 45.0, 60.0]
        );
        // Longer than the search: "at least".
        let mut n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        n.lifetime = Some(Duration::from_secs(100));
        let l = run(n, ServerSim::default(), Some(Duration::from_secs(10)), 0)
            .0
            .lifetime
            .unwrap();
        assert_eq!((l.at_least_s, l.less_than_s), (Some(10.0), None));
    }

    #[test]
    fn a_server_that_ignores_response_port_cannot_measure_lifetime() {
        let server = ServerSim {
            honours_response_port: false,
            ..Default::default()
        };
        let n = nat(Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent);
        let l = run(n, server, Some(Duration::from_secs(5)), 0)
            .0
            .lifetime
            .unwrap();
        assert!(l.untested.as_deref().unwrap().contains("RESPONSE-PORT"), "{l:?}");
        assert_eq!(l.at_least_s, None);
    }

    #[test]
    fn verdicts_from_constructed_outcomes() {
        // conclude() alone, on outcomes built by hand: a server that ignored CHANGE-REQUEST (answered
        // from its primary address) proves nothing about filtering.
        let server = sa(P1, 3478);
        let answer = |from: SocketAddr, mapped: SocketAddr| {
            Outcome::Answered(Box::new(Answer {
                to: server,
                from,
                socket: 0,
                class: Class::Success,
                xor_mapped: Some(mapped),
                mapped: None,
                other: Some(sa(P2, 3479)),
                origin: None,
                software: None,
                error: None,
                rtt: LATENCY,
                transmissions: 1,
            }))
        };
        let m = sa(PUBLIC, 4000);
        let mapping = [
            answer(server, m),
            answer(sa(P2, 3478), m),
            answer(sa(P2, 3479), m),
        ];
        let filtering = [answer(server, m), answer(server, m), answer(server, m)];
        let v = conclude(&Observations {
            server,
            local: Some(sa(LAN, 4000)),
            mapping: &mapping,
            hairpin: &Outcome::NotRun,
            filtering: &filtering,
        });
        assert_eq!(v.mapping, Some(Behaviour::EndpointIndependent));
        assert_eq!(v.filtering, None);
        assert_eq!(v.classic, Classic::Unknown);
        assert!(
            v.untested[0].contains("instead of another address"),
            "{:?}",
            v.untested
        );
        assert_eq!(v.port_preservation, Some(true));
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

    #[test]
    fn server_text_is_escaped_in_the_text_output() {
        let (r, _) = run(
            nat(Behaviour::EndpointIndependent, Behaviour::EndpointIndependent),
            ServerSim::default(),
            None,
            0,
        );
        assert_eq!(r.software.as_deref(), Some("sim\x1b[31m"));
        let mut out = Vec::new();
        crate::probe::text::write_nat(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("sim\\x1b[31m"));
        assert!(text.contains("RFC 3489 type: full cone NAT"));
    }
}
