//! The check's state machine. What the edge saw goes in (datagrams, refusals, closed connections, the TLS
//! handshake's outcome), requests and relay data come out. It sends the Binding request and the first
//! Allocate at once, moves each allocation one step on when the previous step is answered (`pump`),
//! starts the relay legs when every allocation is ready, and deletes the allocations (RFC 8656 §7: a
//! Refresh with LIFETIME 0) at the end or after the first failure. Datagrams are told apart as RFC 7983
//! does (STUN or ChannelData; over TCP, the RFC 8656 §12.5 framing is undone by the edge).
//!
//! A connection that is refused, never set up, closed, or answered by a web server ends every step that
//! was using it. This file does not build requests or read answers (`steps`), send relay data (`relay`),
//! or word a failure (`verdict`).
use super::relay::{Leg, LegState, Via};
use super::report::{Failure, StepReport};
use super::steps::{Alloc, BindingAnswer, Req, Stage};
use super::{verdict, CheckConfig, CHANNEL};
use crate::probe::tls::{self, TlsReport};
use crate::probe::transactions::{Answered, Transactions};
use crate::probe::{ms, IdGen, Input, Probe, SocketId, Transmit, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::stun::{self, Class, Method, StunMessage};
use crate::wire::{channel, demux};
use std::net::SocketAddr;
use std::time::Duration;

/// Why a socket stopped working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Gone {
    Refused,
    ConnectTimeout,
    Closed,
    /// TLS failed: the failure code and its one-line reason.
    Tls(&'static str, String),
    /// A web server answered on the port (its status line).
    Http(String),
}

/// The server check state machine. Needs [`CheckProbe::sockets_needed`] sockets: UDP sockets connected
/// to the server (so ICMP refusals are seen), or TCP connections to it.
#[derive(Debug)]
pub struct CheckProbe {
    pub(super) cfg: CheckConfig,
    pub(super) locals: Vec<SocketAddr>,
    pub(super) ids: IdGen,
    pub(super) tx: Transactions<Req>,
    pub(super) allocs: Vec<Alloc>,
    pub(super) binding: Option<BindingAnswer>,
    pub(super) binding_expired: bool,
    pub(super) legs: Vec<Leg>,
    /// The allocations were all ready and the relay legs (if any) started.
    relay_started: bool,
    pub(super) steps: Vec<StepReport>,
    pub(super) failure: Option<Failure>,
    pub(super) warnings: Vec<String>,
    pub(super) software: Option<String>,
    pub(super) tls: Option<TlsReport>,
    started: bool,
}

impl CheckProbe {
    pub fn sockets_needed(cfg: &CheckConfig) -> usize {
        if cfg.two_allocations() {
            2
        } else {
            1
        }
    }

    pub fn new(cfg: CheckConfig, locals: Vec<SocketAddr>, seed: u64) -> Self {
        let allocs = if cfg.is_turn() {
            (0..Self::sockets_needed(&cfg)).map(Alloc::new).collect()
        } else {
            Vec::new()
        };
        CheckProbe {
            cfg,
            locals,
            ids: IdGen::new(seed),
            tx: Transactions::new(),
            allocs,
            binding: None,
            binding_expired: false,
            legs: Vec::new(),
            relay_started: false,
            steps: Vec::new(),
            failure: None,
            warnings: Vec::new(),
            software: None,
            tls: None,
            started: false,
        }
    }

    fn start(&mut self, now: Duration) {
        self.started = true;
        self.send_request(now, Req::Binding);
        // The second allocation (for the relay round trip) waits until the first exists, so that a
        // per-user quota of one refuses the second, never the first.
        if !self.allocs.is_empty() {
            self.send_request(now, Req::Allocate(0));
        }
    }

    /// The relay is tested through a second allocation (it exists and was not dropped).
    pub(super) fn self_relay(&self) -> bool {
        self.allocs.len() == 2 && !self.allocs[1].dropped
    }

    pub(super) fn tcp(&self) -> bool {
        self.cfg.transport() == Transport::Tcp
    }

    /// `udp`, `tcp`, or `tls` for `stuns:`/`turns:`.
    pub(super) fn transport_name(&self) -> &'static str {
        if self.cfg.url.tls {
            "tls"
        } else {
            self.cfg.transport().name()
        }
    }

    /// The server as messages name it: `host:port (address)`, or the address alone.
    fn server_name(&self) -> String {
        if self.cfg.url.host == self.cfg.server.ip().to_string() {
            self.cfg.server.to_string()
        } else {
            format!("{} ({})", self.cfg.url.host_port(), self.cfg.server)
        }
    }

    pub(super) fn server_text(&self) -> String {
        format!("{} over {}", self.server_name(), self.transport_name())
    }

    /// The first connection's TLS details go into the report; its warnings (a certificate about to
    /// expire, one let through by `--insecure`) once.
    fn on_tls(&mut self, report: TlsReport) {
        if self.tls.is_none() {
            self.warnings.extend(tls::warnings(&report));
            self.tls = Some(report);
        }
    }

    pub(super) fn step(
        &mut self,
        req: Req,
        outcome: &'static str,
        done: Option<&Answered<Req>>,
        code: Option<u16>,
        detail: String,
    ) {
        self.steps.push(StepReport {
            step: req.step_name(),
            allocation: req.allocation_name(),
            outcome,
            error_code: code,
            rtt_ms: done.map(|d| ms(d.rtt)),
            transmissions: done.map(|d| d.transmissions),
            detail,
        });
    }

    /// A step that ended without an answer: it timed out, or its connection went.
    pub(super) fn step_unanswered(
        &mut self,
        req: Req,
        outcome: &'static str,
        transmissions: u32,
        detail: String,
    ) {
        self.steps.push(StepReport {
            step: req.step_name(),
            allocation: req.allocation_name(),
            outcome,
            error_code: None,
            rtt_ms: None,
            transmissions: Some(transmissions),
            detail,
        });
    }

    /// Keeps the first failure: what fails after it is a consequence.
    pub(super) fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    fn on_datagram(&mut self, now: Duration, socket: SocketId, data: &[u8]) {
        // The edge hands over the start of a TCP stream that began like HTTP (no STUN message or
        // ChannelData starts with "HTTP/" before a channel is bound): port 443 taken by a web server.
        if self.tcp() && data.starts_with(b"HTTP/") {
            let status = data
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .unwrap_or_default();
            self.on_socket_gone(now, socket, Gone::Http(status));
            return;
        }
        match demux::classify(data) {
            demux::Kind::Stun => {}
            demux::Kind::ChannelData => {
                let parsed = if self.tcp() {
                    channel::parse_tcp(data)
                } else {
                    channel::parse_udp(data)
                };
                if let Ok(cd) = parsed {
                    if cd.channel == CHANNEL {
                        self.on_relayed(now, socket, cd.data, Via::ChannelData, None);
                    }
                }
                return;
            }
            _ => return,
        }
        if !stun::looks_like_stun(data) {
            return;
        }
        let alloc = self.allocs.iter().position(|a| a.socket == socket);
        let keys = alloc.map(|i| self.keyring(i)).unwrap_or_default();
        let Ok(msg) = stun::decode(data, &keys) else {
            return;
        };
        if msg.method == Method::DATA && msg.class == Class::Indication {
            let peer = msg
                .attr_value(stun::ATTR_XOR_PEER_ADDRESS)
                .and_then(AttrValue::address);
            if let Some(payload) = msg.attr(stun::ATTR_DATA).and_then(|a| data.get(a.value_range())) {
                self.on_relayed(now, socket, payload, Via::DataIndication, peer);
            }
            return;
        }
        if !msg.class.is_response() {
            return;
        }
        if self.tx.tag(&msg.transaction_id).is_some_and(|r| match r.alloc() {
            Some(i) => self.allocs.get(i).map(|a| a.socket) == Some(socket),
            None => socket == 0,
        }) {
            if let Some(done) = self.tx.answer(now, &msg.transaction_id) {
                if msg.software_text().is_some() && self.software.is_none() {
                    self.software = msg.software_text();
                }
                self.on_response(now, done, &msg);
            }
        }
    }

    /// Moves every allocation one step on, starts the relay test when all are ready, and cleans up at
    /// the end (or after a failure).
    pub(super) fn pump(&mut self, now: Duration) {
        if self.failure.is_some() {
            self.cleanup(now);
            return;
        }
        let all_at_least =
            |probe: &Self, s: Stage| probe.allocs.iter().filter(|a| !a.dropped).all(|a| a.stage >= s);
        if self.allocs.len() == 2 && self.allocs[0].stage >= Stage::Allocated && !self.allocs[1].requested {
            self.allocs[1].requested = true;
            self.send_request(now, Req::Allocate(1));
        }
        for i in 0..self.allocs.len() {
            match self.allocs[i].stage {
                Stage::Allocated => {
                    self.allocs[i].stage = Stage::Refreshing;
                    self.send_request(now, Req::Refresh(i));
                }
                Stage::Refreshed if all_at_least(self, Stage::Refreshed) => {
                    self.allocs[i].stage = Stage::Permitting;
                    self.send_request(now, Req::Permission(i));
                }
                Stage::Permitted => {
                    if i == 0 {
                        self.allocs[i].stage = Stage::Binding;
                        self.send_request(now, Req::ChannelBind(i));
                    } else {
                        self.allocs[i].stage = Stage::Ready;
                    }
                }
                _ => {}
            }
        }
        if !self.allocs.is_empty() && all_at_least(self, Stage::Ready) && !self.relay_started {
            self.relay_started = true;
            self.start_legs(now);
        }
        let legs_done = self
            .legs
            .iter()
            .all(|l| matches!(l.state, LegState::Received { .. } | LegState::Lost { .. }));
        if self.relay_started && legs_done {
            self.cleanup(now);
        }
    }

    fn cleanup(&mut self, now: Duration) {
        for i in 0..self.allocs.len() {
            let a = &self.allocs[i];
            if a.relayed.is_some() && !a.dead && a.stage < Stage::Deleting {
                self.allocs[i].stage = Stage::Deleting;
                self.send_request(now, Req::Delete(i));
            }
        }
        for l in &mut self.legs {
            if l.state == LegState::Running {
                l.state = LegState::Lost {
                    waited: now.saturating_sub(l.started),
                };
            }
        }
    }

    fn on_socket_gone(&mut self, now: Duration, socket: SocketId, why: Gone) {
        let cap = format!("{:.1} s", self.cfg.timing.cap.as_secs_f64());
        let (outcome, detail) = match &why {
            Gone::Refused if self.tcp() => ("refused", "connection refused".to_string()),
            Gone::Refused => ("refused", "ICMP port unreachable".to_string()),
            Gone::ConnectTimeout => ("timeout", format!("no TCP connection within {cap}")),
            Gone::Closed => ("closed", "the server closed the connection".to_string()),
            Gone::Tls(code, _) => ("tls-failed", format!("not sent: TLS failed ({code})")),
            Gone::Http(status) => ("error", format!("an HTTP answer: {status}")),
        };
        let mut first_step = None;
        for e in self.tx.abort_socket(now, socket) {
            first_step.get_or_insert(e.tag.step_name());
            self.step_unanswered(e.tag, outcome, e.transmissions, detail.clone());
        }
        for a in self.allocs.iter_mut().filter(|a| a.socket == socket) {
            a.dead = true;
            if a.stage < Stage::Deleting {
                a.stage = Stage::Gone;
            }
        }
        let failure = verdict::connection_lost(&self.cfg, &self.server_text(), &cap, why, first_step);
        self.fail(failure);
        self.pump(now);
    }
}

impl Probe for CheckProbe {
    fn handle_input(&mut self, now: Duration, input: Input<'_>) {
        if !self.started {
            self.start(now);
        }
        match input {
            Input::Datagram { socket, data, .. } => self.on_datagram(now, socket, data),
            Input::Refused { socket } => self.on_socket_gone(now, socket, Gone::Refused),
            Input::ConnectTimeout { socket } => self.on_socket_gone(now, socket, Gone::ConnectTimeout),
            Input::Closed { socket } => self.on_socket_gone(now, socket, Gone::Closed),
            Input::TlsEstablished { session, .. } => {
                let report = session.report_for(&self.server_name());
                self.on_tls(report);
            }
            Input::TlsFailed { socket, failure } => {
                self.on_tls(failure.report.clone());
                let message = failure.message(&self.server_name());
                self.on_socket_gone(now, socket, Gone::Tls(failure.problem.code(), message));
            }
        }
    }

    fn handle_timeout(&mut self, now: Duration) {
        if !self.started {
            self.start(now);
        }
        for e in self.tx.handle_timeout(now) {
            self.on_expired(e);
        }
        self.leg_timeouts(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.started {
            return Some(Duration::ZERO);
        }
        let legs = self
            .legs
            .iter()
            .filter(|l| l.state == LegState::Running)
            .map(|l| l.resend_at.front().copied().unwrap_or(l.deadline).min(l.deadline))
            .min();
        match (self.tx.poll_timeout(), legs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_done(&self) -> bool {
        self.started && self.tx.is_idle() && self.legs.iter().all(|l| l.state != LegState::Running)
    }
}

trait SoftwareText {
    fn software_text(&self) -> Option<String>;
}

impl SoftwareText for StunMessage {
    fn software_text(&self) -> Option<String> {
        self.attr_value(stun::ATTR_SOFTWARE)
            .and_then(AttrValue::text)
            .map(str::to_string)
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    //! Whole checks against the simulated TURN server (`probe::sim::turn`), and what the edge can report
    //! besides datagrams: TLS established or failed, a web server on the port, hostile bytes.
    use super::*;
    use crate::probe::sim::turn::{config, outcomes, run, run_after, Turn, SERVER};
    use crate::probe::url::ServerUrl;

    #[test]
    fn a_working_turn_server_relays_both_ways() {
        for tcp in [false, true] {
            let (r, _) = run(config(true, tcp, Some(("alice", "secret"))), Turn::default());
            assert!(r.ok, "{:?}", r.failure);
            let steps = outcomes(&r);
            for want in [
                "binding ok",
                "allocate[A] challenge",
                "allocate[A] ok",
                "allocate[B] ok",
                "refresh[A] ok",
                "create-permission[A] ok",
                "create-permission[B] ok",
                "channel-bind[A] ok",
                "delete[A] ok",
                "delete[B] ok",
            ] {
                assert!(
                    steps.contains(&want.to_string()),
                    "tcp={tcp}: {want} in {steps:?}"
                );
            }
            let alloc = r.allocation.as_ref().unwrap();
            assert_eq!(alloc.realm.as_deref(), Some("lab.example"));
            assert_eq!(alloc.integrity, Some("ok"));
            assert_eq!(alloc.lifetime_s, Some(600));
            let legs = r.relay.as_ref().unwrap();
            assert_eq!(legs.len(), 3);
            let vias: Vec<_> = legs.iter().map(|l| (l.outcome, l.via, l.peer_ok)).collect();
            assert_eq!(
                vias,
                [
                    ("received", Some("data indication"), Some(true)),
                    ("received", Some("data indication"), Some(true)),
                    ("received", Some("channel data"), Some(true)),
                ],
                "tcp={tcp}"
            );
            let types: Vec<_> = r.candidates.iter().map(|c| c.candidate_type).collect();
            assert_eq!(
                types,
                if tcp {
                    vec!["host", "relay"]
                } else {
                    vec!["host", "srflx", "relay"]
                }
            );
            // RFC 8445 §5.1.2.1: (2^24)·126 + (2^8)·65535 + 255 for a host candidate of component 1.
            assert_eq!(r.candidates[0].priority, 2_130_706_431);
            assert_eq!(r.candidates.last().unwrap().priority, 16_777_215);
            assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        }
    }

    /// A TLS layer as the edge would report it: one certificate for `names`, expiring at 2026-04-01T00:00:00Z
    /// (1_775_001_600, `date -u -d @1775001600`), `days` whole days after "now".
    fn tls_report(names: &[&str], days: i64) -> tls::TlsReport {
        tls::TlsReport {
            version: Some("TLS 1.3".into()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: None,
            sni: Some("turn.example.org".into()),
            verified: true,
            insecure: false,
            verification_error: None,
            chain: vec![tls::CertificateSummary {
                subject: "CN=turn.example.org".into(),
                issuer: "CN=Example CA".into(),
                sans: names.iter().map(|n| n.to_string()).collect(),
                not_before: Some("2026-01-01T00:00:00Z".into()),
                not_after: Some("2026-04-01T00:00:00Z".into()),
                days_to_expiry: Some(days),
                not_before_unix: Some(1_767_225_600),
                not_after_unix: Some(1_775_001_600),
            }],
        }
    }

    fn turns_config() -> CheckConfig {
        CheckConfig {
            url: ServerUrl::parse("turns:turn.example.org:3478").unwrap(),
            ..config(true, true, Some(("alice", "secret")))
        }
    }

    #[test]
    fn turns_runs_every_step_over_tls_and_reports_it() {
        let session = tls::TlsSession {
            report: tls_report(&["turn.example.org"], 3),
            insecure_problem: None,
            at_unix: 1_775_001_600 - 3 * 86_400 - 60,
        };
        let first = [0, 1].map(|socket| Input::TlsEstablished {
            socket,
            session: &session,
        });
        let (r, _) = run_after(turns_config(), Turn::default(), &first);
        assert!(r.ok, "{:?}", r.failure);
        assert_eq!(r.transport, "tls");
        assert_eq!(r.server, "turns:turn.example.org:3478?transport=tcp");
        assert_eq!(r.tls.as_ref().and_then(|t| t.version.as_deref()), Some("TLS 1.3"));
        assert_eq!(r.relay.as_ref().map(Vec::len), Some(3));
        let protocols: Vec<_> = r
            .candidates
            .iter()
            .map(|c| (c.candidate_type, c.protocol, c.relay_protocol))
            .collect();
        // webrtc-stats: a relay candidate reached over TLS has relayProtocol "tls".
        assert_eq!(protocols, [("host", "tcp", None), ("relay", "udp", Some("tls"))]);
        // Three days left: a warning, once, although both connections reported the certificate.
        assert_eq!(
            r.warnings,
            ["the server's TLS certificate expires in 3 days (2026-04-01): renew it"]
        );
    }

    #[test]
    fn a_tls_failure_ends_the_check_with_its_reason() {
        let failure = tls::TlsFailure {
            problem: tls::TlsProblem::NameMismatch {
                expected: "turn.example.org".into(),
                presented: vec![],
            },
            report: tls::TlsReport {
                version: None,
                cipher_suite: None,
                verified: false,
                ..tls_report(&["other.example"], 30)
            },
            at_unix: 1_772_409_600,
        };
        let first = [0, 1].map(|socket| Input::TlsFailed {
            socket,
            failure: &failure,
        });
        let (r, took) = run_after(turns_config(), Turn::default(), &first);
        assert_eq!(took, Duration::ZERO, "nothing to wait for");
        let f = r.failure.as_ref().unwrap();
        assert_eq!((f.code.as_str(), f.step.as_str()), ("tls-name-mismatch", "tls"));
        assert_eq!(
            f.message,
            "turn.example.org:3478 (203.0.113.1:3478): the TLS certificate is not valid for turn.example.org \
             (it names other.example): use one of its names in the URL, or give the server a certificate for \
             turn.example.org"
        );
        assert_eq!(
            r.tls.as_ref().map(|t| t.chain[0].sans.clone()),
            Some(vec!["other.example".to_string()])
        );
        assert!(
            r.allocation.is_none() && r.candidates.len() == 1,
            "{:?}",
            r.candidates
        );
        assert!(r.steps.iter().all(|s| s.outcome == "tls-failed"), "{:?}", r.steps);
    }

    #[test]
    fn a_web_server_on_the_port_is_named() {
        let mut probe = CheckProbe::new(turns_config(), vec!["198.51.100.5:40000".parse().unwrap(); 2], 1);
        probe.handle_timeout(Duration::ZERO);
        while probe.poll_transmit().is_some() {}
        let answer = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n";
        let from = SERVER.parse().unwrap();
        probe.handle_input(
            Duration::from_millis(3),
            Input::Datagram {
                socket: 0,
                from,
                data: answer,
            },
        );
        assert!(probe.is_done(), "nothing left to wait for");
        let f = probe.report().failure.unwrap();
        assert_eq!((f.code.as_str(), f.step.as_str()), ("not-turn", "connect"));
        assert!(
            f.message
                .contains("a web server answered (\"HTTP/1.1 400 Bad Request\"), not STUN/TURN")
                && f.message.contains("an HTTPS server"),
            "{}",
            f.message
        );
    }

    #[test]
    fn hostile_datagrams_never_panic() {
        // Random bytes, and random bytes behind a valid STUN header with a transaction id the probe
        // might be waiting for, at every stage of a check.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        let from: SocketAddr = SERVER.parse().unwrap();
        for tcp in [false, true] {
            let cfg = config(true, tcp, Some(("alice", "secret")));
            let mut probe = CheckProbe::new(cfg, vec!["198.51.100.5:40000".parse().unwrap(); 2], 3);
            probe.handle_timeout(Duration::ZERO);
            let mut sent = Vec::new();
            while let Some(t) = probe.poll_transmit() {
                sent.push(t.data);
            }
            for round in 0..3000u32 {
                let len = (round % 120) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| next()).collect();
                if len >= 20 && round % 3 == 0 {
                    let sent = &sent[round as usize % sent.len()];
                    b[..2].copy_from_slice(&[0x01, 0x13]);
                    b[2..4].copy_from_slice(&((len - 20) as u16 & !3).to_be_bytes());
                    b[4..20].copy_from_slice(&sent[4..20]);
                    b.truncate(20 + ((len - 20) & !3));
                }
                if round % 5 == 0 && !b.is_empty() {
                    b[0] = 0x40;
                }
                let now = Duration::from_millis(round as u64);
                probe.handle_input(
                    now,
                    Input::Datagram {
                        socket: (round % 2) as usize,
                        from,
                        data: &b,
                    },
                );
                probe.handle_timeout(now);
                while probe.poll_transmit().is_some() {}
            }
            let _ = probe.report();
        }
    }
}
