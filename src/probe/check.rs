//! STUN/TURN server check: does this server work, and if not, why not.
//!
//! For `stun:` a Binding request (RFC 8489 §6): round trip time, the server-reflexive address, whether
//! the server does RFC 5780. For `turn:` (RFC 8656), over UDP or TCP (§12.5 framing, one connection per
//! allocation), at once a Binding request and an Allocate; then:
//! 1. the long-term credential dance (RFC 8489 §9.2): the first Allocate is answered 401 with REALM and
//!    NONCE, the second carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; 438 Stale Nonce is retried
//!    with the new nonce (at most [`MAX_STALE_RETRIES`] times); a 401 to an authenticated request means
//!    the credentials are wrong;
//! 2. the relayed and mapped addresses and lifetime, the response's MESSAGE-INTEGRITY checked;
//! 3. Refresh (§7), CreatePermission (§9), ChannelBind (§11) on channel 0x4000;
//! 4. a relay round trip: either to `--peer` (which must echo UDP), or through a second allocation to
//!    itself, proving data flows both ways: Send indication → Data indication, ChannelData → Data
//!    indication, Send indication → ChannelData (§10, §12);
//! 5. the allocations are deleted (Refresh with LIFETIME 0), also after a failure.
//!
//! Every failure is explained in one sentence (wrong credentials, unreachable, blocked, quota 486,
//! capacity 508, unsupported transport 442, ...). The candidates a browser would gather from this server
//! are listed as the Trickle ICE page lists them (host, srflx, relay), with RFC 8445 §5.1.2 priorities.
//!
//! `stuns:` and `turns:` run the same steps over TLS: the edge makes the handshake, this machine hears
//! how it went ([`Input::TlsEstablished`]: the TLS details and certificate warnings go into the report;
//! [`Input::TlsFailed`]: the check fails with [`super::tls`]'s one-line reason).
//!
//! It does not do DTLS, TCP relays (RFC 6062 Connect), or SHA-256 passwords (RFC 8489
//! PASSWORD-ALGORITHMS): MD5 long-term keys are what deployed servers use.
use super::tls::{self, TlsReport};
use super::transactions::{Answered, Expired, Transactions};
use super::url::{Scheme, ServerUrl};
use super::{ms, IdGen, Input, Probe, SocketId, Timing, Transmit, Transport};
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Class, Method, StunMessage, Verdict};
use crate::wire::{channel, demux};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// RFC 8489 §9.2.4 lets a server change nonces at any time; three fresh ones in a row without success is
/// a server that never accepts its own nonces.
pub const MAX_STALE_RETRIES: u32 = 3;
/// The channel the check binds (RFC 8656 §12: 0x4000-0x4FFF).
pub const CHANNEL: u16 = 0x4000;
/// The lifetime the Refresh asks for (RFC 8656 §3.2: the default allocation lifetime, 10 minutes).
const REFRESH_LIFETIME_S: u32 = 600;

/// TURN long-term credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub url: ServerUrl,
    /// The server's address (resolved from the URL's host).
    pub server: SocketAddr,
    pub credentials: Option<Credentials>,
    /// A UDP echo peer for the relay round trip.
    pub peer: Option<SocketAddr>,
    /// Without `peer`: prove relaying through a second allocation to itself.
    pub self_relay: bool,
    pub timing: Timing,
    pub software: Option<String>,
}

impl CheckConfig {
    fn transport(&self) -> Transport {
        self.url.transport
    }
    fn is_turn(&self) -> bool {
        self.url.scheme == Scheme::Turn
    }
    fn two_allocations(&self) -> bool {
        self.is_turn() && self.peer.is_none() && self.self_relay
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Binding,
    Allocate(usize),
    Refresh(usize),
    Permission(usize),
    ChannelBind(usize),
    Delete(usize),
}

impl Req {
    fn step_name(self) -> &'static str {
        match self {
            Req::Binding => "binding",
            Req::Allocate(_) => "allocate",
            Req::Refresh(_) => "refresh",
            Req::Permission(_) => "create-permission",
            Req::ChannelBind(_) => "channel-bind",
            Req::Delete(_) => "delete",
        }
    }
    fn alloc(self) -> Option<usize> {
        match self {
            Req::Binding => None,
            Req::Allocate(i)
            | Req::Refresh(i)
            | Req::Permission(i)
            | Req::ChannelBind(i)
            | Req::Delete(i) => Some(i),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Allocating,
    Allocated,
    Refreshing,
    Refreshed,
    Permitting,
    Permitted,
    Binding,
    Ready,
    Deleting,
    Gone,
}

#[derive(Clone, Debug)]
struct Alloc {
    socket: SocketId,
    stage: Stage,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<[u8; 16]>,
    stale_retries: u32,
    relayed: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    lifetime: Option<u32>,
    refreshed_lifetime: Option<u32>,
    integrity: Option<&'static str>,
    /// The socket is unusable (refused, closed, never connected).
    dead: bool,
    /// The second allocation was refused for a reason that says nothing against the server (a user
    /// quota of one): the check goes on with the first alone.
    dropped: bool,
    /// Its first Allocate was sent.
    requested: bool,
}

impl Alloc {
    fn new(socket: SocketId) -> Self {
        Alloc {
            socket,
            stage: Stage::Allocating,
            realm: None,
            nonce: None,
            key: None,
            stale_retries: 0,
            relayed: None,
            mapped: None,
            lifetime: None,
            refreshed_lifetime: None,
            integrity: None,
            dead: false,
            dropped: false,
            requested: socket == 0,
        }
    }
}

/// Why a socket stopped working.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Gone {
    Refused,
    ConnectTimeout,
    Closed,
    /// TLS failed: the failure code and its one-line reason.
    Tls(&'static str, String),
    /// A web server answered on the port (its status line).
    Http(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    SendIndication,
    ChannelData,
    DataIndication,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::SendIndication => "send indication",
            Via::ChannelData => "channel data",
            Via::DataIndication => "data indication",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum LegState {
    Running,
    Received { rtt: Duration, via: Via, peer_ok: bool },
    Lost { waited: Duration },
}

/// A leg to run: name, sending allocation, receiving allocation (`None`: the echo peer), how it is sent,
/// how it should arrive.
type LegPlan = (&'static str, usize, Option<usize>, Via, Option<Via>);

/// One relay data test: a payload sent one way, expected to arrive the other.
#[derive(Clone, Debug)]
struct Leg {
    name: &'static str,
    from: usize,
    /// The allocation that should receive it; `None`: the peer echoes it back to `from`.
    to: Option<usize>,
    out: Via,
    /// How it should arrive (`None` for an echo peer: either way).
    expect: Option<Via>,
    payload: Vec<u8>,
    state: LegState,
    resend_at: VecDeque<Duration>,
    last_sent: Duration,
    started: Duration,
    deadline: Duration,
    transmissions: u32,
}

/// Why the check failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// A stable id: `timeout`, `unreachable`, `connection-closed`, `credentials-required`,
    /// `wrong-credentials`, `stale-nonce`, `quota`, `capacity`, `unsupported-transport`, `forbidden`,
    /// `allocation-mismatch`, `try-alternate`, `relay-data-lost`, `peer-no-echo`, `error-NNN`, ...
    pub code: String,
    /// The step that failed (`binding`, `allocate`, `refresh`, ..., `relay`).
    pub step: String,
    /// One line for a human.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    /// `A` (the first allocation) or `B` (the second, for the relay round trip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation: Option<&'static str>,
    /// `ok`, `challenge` (the expected 401), `retry` (438), `error`, `timeout`, `refused`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transmissions: Option<u32>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BindingReport {
    pub rtt_ms: f64,
    pub transmissions: u32,
    pub mapped_address: Option<String>,
    /// The server named an alternate address (OTHER-ADDRESS): `iceview nat` can test NAT behaviour with it.
    pub rfc5780: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AllocationReport {
    pub realm: Option<String>,
    pub relayed_address: Option<String>,
    pub mapped_address: Option<String>,
    pub lifetime_s: Option<u32>,
    pub refreshed_lifetime_s: Option<u32>,
    /// MESSAGE-INTEGRITY of the Allocate success response: `ok`, `bad` or `absent`.
    pub integrity: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LegReport {
    pub name: &'static str,
    /// `received`, `lost`, `not-run`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    pub transmissions: u32,
    /// The Data indication named the sender's relayed address as the peer (false: someone else's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ok: Option<bool>,
}

/// A candidate as the Trickle ICE page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// `host`, `srflx` or `relay`.
    pub candidate_type: &'static str,
    pub protocol: &'static str,
    pub address: String,
    pub priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_address: Option<String>,
    /// For relay candidates: how the client reaches the TURN server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_protocol: Option<&'static str>,
}

/// The result of `iceview check`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub server: String,
    pub server_address: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// `stuns:`/`turns:`: the TLS layer (also when its handshake failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    pub ok: bool,
    pub failure: Option<Failure>,
    pub warnings: Vec<String>,
    /// The server's SOFTWARE attribute, as sent (escape before printing).
    pub software: Option<String>,
    pub binding: Option<BindingReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation: Option<AllocationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Vec<LegReport>>,
    pub steps: Vec<StepReport>,
    pub candidates: Vec<Candidate>,
}

/// The server check state machine. Needs [`CheckProbe::sockets_needed`] sockets: UDP sockets connected
/// to the server (so ICMP refusals are seen), or TCP connections to it.
#[derive(Debug)]
pub struct CheckProbe {
    cfg: CheckConfig,
    locals: Vec<SocketAddr>,
    ids: IdGen,
    tx: Transactions<Req>,
    allocs: Vec<Alloc>,
    binding: Option<(Answered<Req>, Option<SocketAddr>, bool)>,
    binding_expired: bool,
    legs: Vec<Leg>,
    /// The allocations were all ready and the relay legs (if any) started.
    relay_started: bool,
    steps: Vec<StepReport>,
    failure: Option<Failure>,
    warnings: Vec<String>,
    software: Option<String>,
    tls: Option<TlsReport>,
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
    fn self_relay(&self) -> bool {
        self.allocs.len() == 2 && !self.allocs[1].dropped
    }

    fn tcp(&self) -> bool {
        self.cfg.transport() == Transport::Tcp
    }

    /// `udp`, `tcp`, or `tls` for `stuns:`/`turns:`.
    fn transport_name(&self) -> &'static str {
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

    fn server_text(&self) -> String {
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

    /// The peer allocation `i` talks to: `--peer`, the other allocation's relayed address, or (with no
    /// relay test) this host's own server-reflexive address, a realistic ICE peer.
    fn peer_for(&self, i: usize) -> Option<SocketAddr> {
        if let Some(p) = self.cfg.peer {
            return Some(p);
        }
        if self.self_relay() {
            return self.allocs.get(1 - i).and_then(|a| a.relayed);
        }
        self.allocs.get(i).and_then(|a| a.mapped)
    }

    fn send_request(&mut self, now: Duration, req: Req) {
        let id = self.ids.transaction_id();
        let method = match req {
            Req::Binding => Method::BINDING,
            Req::Allocate(_) => Method::ALLOCATE,
            Req::Refresh(_) | Req::Delete(_) => Method::REFRESH,
            Req::Permission(_) => Method::CREATE_PERMISSION,
            Req::ChannelBind(_) => Method::CHANNEL_BIND,
        };
        let mut b = MessageBuilder::request(method, id);
        let peer = req.alloc().and_then(|i| self.peer_for(i));
        match req {
            Req::Binding => {}
            Req::Allocate(_) => {
                if let Some(sw) = &self.cfg.software {
                    b.text(stun::ATTR_SOFTWARE, sw);
                }
                b.requested_transport(encode::TRANSPORT_UDP);
            }
            Req::Refresh(_) => {
                b.u32(stun::ATTR_LIFETIME, REFRESH_LIFETIME_S);
            }
            Req::Delete(_) => {
                b.u32(stun::ATTR_LIFETIME, 0);
            }
            Req::Permission(_) => {
                let Some(p) = peer else { return };
                b.xor_address(stun::ATTR_XOR_PEER_ADDRESS, p);
            }
            Req::ChannelBind(_) => {
                let Some(p) = peer else { return };
                b.channel_number(CHANNEL);
                b.xor_address(stun::ATTR_XOR_PEER_ADDRESS, p);
            }
        }
        let socket = match req.alloc() {
            Some(i) => match self.allocs.get(i) {
                Some(a) if !a.dead => {
                    if let (Some(key), Some(realm), Some(nonce), Some(c)) =
                        (a.key, &a.realm, &a.nonce, &self.cfg.credentials)
                    {
                        b.text(stun::ATTR_USERNAME, &c.username);
                        b.text(stun::ATTR_REALM, realm);
                        b.text(stun::ATTR_NONCE, nonce);
                        b.message_integrity(&key);
                    }
                    a.socket
                }
                _ => return,
            },
            None => 0,
        };
        let Ok(data) = b.fingerprint().finish() else {
            return;
        };
        let (server, transport, timing) = (self.cfg.server, self.cfg.transport(), self.cfg.timing);
        self.tx
            .start(now, req, id, socket, server, data, transport, &timing);
    }

    fn step(
        &mut self,
        req: Req,
        outcome: &'static str,
        done: Option<&Answered<Req>>,
        code: Option<u16>,
        detail: String,
    ) {
        self.steps.push(StepReport {
            step: req.step_name(),
            allocation: req.alloc().map(|i| if i == 0 { "A" } else { "B" }),
            outcome,
            error_code: code,
            rtt_ms: done.map(|d| ms(d.rtt)),
            transmissions: done.map(|d| d.transmissions),
            detail,
        });
    }

    fn fail(&mut self, code: impl Into<String>, step: &str, message: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                code: code.into(),
                step: step.to_string(),
                message,
            });
        }
    }

    fn keyring(&self, i: usize) -> Keyring {
        let mut k = Keyring::new();
        if let (Some(c), Some(a)) = (&self.cfg.credentials, self.allocs.get(i)) {
            k.add_turn(&c.username, &c.password, a.realm.as_deref());
        }
        k
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

    fn on_response(&mut self, now: Duration, done: Answered<Req>, msg: &StunMessage) {
        let req = done.tag;
        let error = msg.attributes.iter().find_map(|a| match &a.value {
            AttrValue::ErrorCode { code, reason } => Some((*code, reason.clone())),
            _ => None,
        });
        if req == Req::Binding {
            let mapped = msg
                .attr_value(stun::ATTR_XOR_MAPPED_ADDRESS)
                .or_else(|| msg.attr_value(stun::ATTR_MAPPED_ADDRESS))
                .and_then(AttrValue::address);
            let rfc5780 = msg.attr(encode::ATTR_OTHER_ADDRESS).is_some();
            if msg.class == Class::Success {
                let mut detail = match mapped {
                    Some(m) => format!("mapped address {m}"),
                    None => "success without a mapped address".into(),
                };
                if rfc5780 {
                    detail.push_str(" (OTHER-ADDRESS: the server does RFC 5780, `iceview nat` can use it)");
                }
                self.step(req, "ok", Some(&done), None, detail);
                self.binding = Some((done, mapped, rfc5780));
            } else {
                let (code, reason) = error.unwrap_or((0, String::new()));
                self.step(req, "error", Some(&done), Some(code), format!("{code} {reason}"));
                if self.cfg.is_turn() {
                    self.warnings
                        .push(format!("the server answered Binding with error {code} {reason}"));
                } else {
                    self.fail(
                        format!("error-{code}"),
                        "binding",
                        format!(
                            "{} answered Binding with error {code} {reason}",
                            self.server_text()
                        ),
                    );
                }
            }
            return;
        }
        let Some(i) = req.alloc() else { return };
        if msg.class == Class::Success {
            self.on_success(i, req, &done, msg);
        } else {
            let (code, reason) = error.unwrap_or((0, "(no ERROR-CODE)".into()));
            self.on_error(now, i, req, &done, msg, code, &reason);
        }
        self.pump(now);
    }

    fn on_success(&mut self, i: usize, req: Req, done: &Answered<Req>, msg: &StunMessage) {
        let integrity = match &msg.integrity {
            Verdict::Ok(_) => "ok",
            Verdict::Bad => "bad",
            Verdict::Absent => "absent",
            Verdict::Unchecked => "unchecked",
        };
        let lifetime = msg.attr_value(stun::ATTR_LIFETIME).and_then(AttrValue::as_u32);
        let Some(authed) = self.allocs.get(i).map(|a| a.key.is_some()) else {
            return;
        };
        if authed && integrity == "bad" {
            self.warnings.push(format!(
                "the {} response's MESSAGE-INTEGRITY does not verify with these credentials",
                req.step_name()
            ));
        }
        let peer = self.peer_for(i);
        let a = &mut self.allocs[i];
        let detail = match req {
            Req::Allocate(_) => {
                let relayed = msg
                    .attr_value(stun::ATTR_XOR_RELAYED_ADDRESS)
                    .and_then(AttrValue::address);
                a.relayed = relayed;
                a.mapped = msg
                    .attr_value(stun::ATTR_XOR_MAPPED_ADDRESS)
                    .and_then(AttrValue::address);
                a.lifetime = lifetime;
                a.integrity = Some(integrity);
                a.stage = Stage::Allocated;
                if !authed {
                    self.warnings.push(
                        "the server allocated a relay without asking for credentials: anyone can use it"
                            .into(),
                    );
                }
                let mut d = match relayed {
                    Some(r) => format!("relayed address {r}"),
                    None => "no relayed address".into(),
                };
                if let Some(l) = lifetime {
                    d.push_str(&format!(", lifetime {l} s"));
                }
                d.push_str(&format!(", integrity {integrity}"));
                if relayed.is_none() {
                    self.fail(
                        "no-relayed-address",
                        "allocate",
                        "the Allocate success response has no XOR-RELAYED-ADDRESS".into(),
                    );
                }
                d
            }
            Req::Refresh(_) => {
                a.refreshed_lifetime = lifetime;
                a.stage = Stage::Refreshed;
                format!("lifetime {} s", lifetime.map_or("?".into(), |l| l.to_string()))
            }
            Req::Permission(_) => {
                a.stage = Stage::Permitted;
                format!("peer {}", peer.map_or("?".into(), |p| p.ip().to_string()))
            }
            Req::ChannelBind(_) => {
                a.stage = Stage::Ready;
                format!(
                    "channel 0x{CHANNEL:04x} → {}",
                    peer.map_or("?".into(), |p| p.to_string())
                )
            }
            Req::Delete(_) => {
                a.stage = Stage::Gone;
                "allocation released".into()
            }
            Req::Binding => String::new(),
        };
        self.step(req, "ok", Some(done), None, detail);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_error(
        &mut self,
        now: Duration,
        i: usize,
        req: Req,
        done: &Answered<Req>,
        msg: &StunMessage,
        code: u16,
        reason: &str,
    ) {
        let text = |t: u16| msg.attr_value(t).and_then(AttrValue::text).map(str::to_string);
        let (realm, nonce) = (text(stun::ATTR_REALM), text(stun::ATTR_NONCE));
        let server = self.server_text();
        let Some(authed) = self.allocs.get(i).map(|a| a.key.is_some()) else {
            return;
        };
        let step = req.step_name();
        // RFC 8489 §9.2.5: the 401 to a request without credentials is the challenge, not a failure.
        if code == 401 && !authed && matches!(req, Req::Allocate(_)) {
            let (Some(realm), Some(nonce)) = (realm, nonce) else {
                self.step(
                    req,
                    "error",
                    Some(done),
                    Some(code),
                    "401 without REALM and NONCE".into(),
                );
                self.fail(
                    "unauthorized",
                    step,
                    format!(
                        "{server} answered 401 without REALM and NONCE: not a long-term-credential TURN server"
                    ),
                );
                return;
            };
            let detail = format!("401 {reason}: realm \"{realm}\", nonce received");
            let Some(c) = self.cfg.credentials.clone() else {
                self.step(req, "error", Some(done), Some(code), detail);
                self.fail(
                    "credentials-required",
                    step,
                    format!("{server} wants credentials for realm \"{realm}\": give -u USER -p PASSWORD"),
                );
                return;
            };
            let a = &mut self.allocs[i];
            a.key = Some(encode::long_term_key(&c.username, &realm, &c.password));
            a.realm = Some(realm);
            a.nonce = Some(nonce);
            self.step(req, "challenge", Some(done), Some(code), detail);
            self.send_request(now, req);
            return;
        }
        if code == 438 && self.allocs[i].stale_retries < MAX_STALE_RETRIES {
            if let Some(n) = nonce {
                let credentials = self.cfg.credentials.clone();
                let a = &mut self.allocs[i];
                a.stale_retries += 1;
                a.nonce = Some(n);
                // The server may move to another realm with the new nonce; the key follows it.
                if let (Some(r), Some(c)) = (realm, credentials) {
                    if a.realm.as_deref() != Some(r.as_str()) {
                        a.key = Some(encode::long_term_key(&c.username, &r, &c.password));
                        a.realm = Some(r);
                    }
                }
                self.step(
                    req,
                    "retry",
                    Some(done),
                    Some(code),
                    "438 Stale Nonce: retrying with the new nonce".into(),
                );
                self.send_request(now, req);
                return;
            }
        }
        self.step(req, "error", Some(done), Some(code), format!("{code} {reason}"));
        // RFC 8656 §7.2: 486 is a per-user quota. The second allocation only serves the relay test, so
        // a quota of one is worth a warning, not a verdict against the server.
        if req == Req::Allocate(1) && code == 486 && self.allocs[0].stage != Stage::Gone {
            self.allocs[1].dropped = true;
            self.allocs[1].stage = Stage::Gone;
            self.warnings.push(format!(
                "a second allocation for the relay round trip was refused ({code} {reason}: the user may hold \
                 only one allocation); relaying was not tested: use --peer with a UDP echo peer"
            ));
            return;
        }
        if let Req::Delete(_) = req {
            self.allocs[i].stage = Stage::Gone;
            self.warnings
                .push(format!("deleting the allocation failed: {code} {reason}"));
            return;
        }
        let user = self.cfg.credentials.as_ref().map_or("", |c| c.username.as_str());
        let realm = self.allocs[i].realm.clone().unwrap_or_default();
        let alternate = msg
            .attr_value(encode::ATTR_ALTERNATE_SERVER)
            .and_then(AttrValue::address);
        let (id, message) = explain(req, code, reason, user, &realm, &server, alternate);
        self.fail(id, step, message);
    }

    fn on_expired(&mut self, e: Expired<Req>) {
        let req = e.tag;
        let waited = format!("{:.1} s", e.waited.as_secs_f64());
        let server = self.server_text();
        self.steps.push(StepReport {
            step: req.step_name(),
            allocation: req.alloc().map(|i| if i == 0 { "A" } else { "B" }),
            outcome: "timeout",
            error_code: None,
            rtt_ms: None,
            transmissions: Some(e.transmissions),
            detail: format!("no answer after {} transmissions in {waited}", e.transmissions),
        });
        match req {
            Req::Binding => {
                self.binding_expired = true;
                if self.cfg.is_turn() {
                    self.warnings
                        .push("the server did not answer the Binding request".to_string());
                } else {
                    self.fail("timeout", "binding", blocked_message(&server, &waited));
                }
            }
            Req::Allocate(_) if self.binding.is_some() => self.fail(
                "timeout",
                "allocate",
                format!(
                    "{server} answers STUN Binding but not TURN Allocate within {waited}: a STUN-only server, \
                     or TURN is disabled there"
                ),
            ),
            Req::Allocate(_) => self.fail("timeout", "allocate", blocked_message(&server, &waited)),
            Req::Delete(i) => {
                if let Some(a) = self.allocs.get_mut(i) {
                    a.stage = Stage::Gone;
                }
                self.warnings
                    .push(format!("no answer to the request deleting the allocation ({waited})"));
            }
            other => self.fail(
                "timeout",
                other.step_name(),
                format!("{server} stopped answering: no answer to {} within {waited}", other.step_name()),
            ),
        }
    }

    /// Moves every allocation one step on, starts the relay test when all are ready, and cleans up at
    /// the end (or after a failure).
    fn pump(&mut self, now: Duration) {
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

    fn start_legs(&mut self, now: Duration) {
        let mut plan: Vec<LegPlan> = Vec::new();
        if self.cfg.peer.is_some() {
            plan.push((
                "send indication → peer → echo",
                0,
                None,
                Via::SendIndication,
                None,
            ));
            plan.push(("channel data → peer → echo", 0, None, Via::ChannelData, None));
        } else if self.self_relay() {
            plan.push((
                "A send indication → B data indication",
                0,
                Some(1),
                Via::SendIndication,
                Some(Via::DataIndication),
            ));
            plan.push((
                "A channel data → B data indication",
                0,
                Some(1),
                Via::ChannelData,
                Some(Via::DataIndication),
            ));
            plan.push((
                "B send indication → A channel data",
                1,
                Some(0),
                Via::SendIndication,
                Some(Via::ChannelData),
            ));
        }
        let (sends, timeout) = self.cfg.timing.schedule(self.cfg.transport());
        for (n, (name, from, to, out, expect)) in plan.into_iter().enumerate() {
            let payload = format!("iceview relay check {n} {:016x}", self.ids.next_u64()).into_bytes();
            let mut leg = Leg {
                name,
                from,
                to,
                out,
                expect,
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

    fn on_relayed(
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

    fn leg_timeouts(&mut self, now: Duration) {
        for k in 0..self.legs.len() {
            let mut leg = self.legs[k].clone();
            if leg.state != LegState::Running {
                continue;
            }
            if now >= leg.deadline {
                leg.state = LegState::Lost {
                    waited: now.saturating_sub(leg.started),
                };
                let server = self.server_text();
                let (code, message) = match self.cfg.peer {
                    Some(p) => (
                        "peer-no-echo",
                        format!(
                            "no data came back from peer {p} through the relay ({}): the peer must echo UDP \
                             (e.g. socat UDP-LISTEN:{},fork EXEC:cat), or a firewall drops the relay's packets",
                            leg.name,
                            p.port()
                        ),
                    ),
                    None => (
                        "relay-data-lost",
                        format!(
                            "data sent through the relay never arrived ({}): {server} allocated and permitted, \
                             but does not relay between its own relayed addresses (peer address policy, or a \
                             firewall on the relay ports)",
                            leg.name
                        ),
                    ),
                };
                self.fail(code, "relay", message);
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

    fn on_socket_gone(&mut self, now: Duration, socket: SocketId, why: Gone) {
        let server = self.server_text();
        let port = self.cfg.server.port();
        let transport = self.cfg.transport().name();
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
            self.steps.push(StepReport {
                step: e.tag.step_name(),
                allocation: e.tag.alloc().map(|i| if i == 0 { "A" } else { "B" }),
                outcome,
                error_code: None,
                rtt_ms: None,
                transmissions: Some(e.transmissions),
                detail: detail.clone(),
            });
        }
        for a in self.allocs.iter_mut().filter(|a| a.socket == socket) {
            a.dead = true;
            if a.stage < Stage::Deleting {
                a.stage = Stage::Gone;
            }
        }
        let step = match (&why, self.tcp(), self.cfg.is_turn()) {
            (Gone::Tls(..), _, _) => "tls",
            (_, true, _) => "connect",
            (_, false, true) => "allocate",
            (_, false, false) => "binding",
        };
        let (code, message) =
            match why {
                Gone::Tls(code, message) => (code, message),
                Gone::Http(status) => (
                    "not-turn",
                    format!(
                    "{server}: a web server answered (\"{status}\"), not STUN/TURN: the port belongs to {}; \
                     give TURN a port of its own, or route it there in the proxy",
                    if self.cfg.url.tls { "an HTTPS server" } else { "an HTTP server" }
                ),
                ),
                Gone::Refused if self.tcp() => (
                    "unreachable",
                    format!("{server}: connection refused: nothing listens on {transport} port {port} there"),
                ),
                Gone::Refused => (
                    "unreachable",
                    format!(
                        "{server}: port unreachable (ICMP): nothing listens on {transport} port {port} there"
                    ),
                ),
                Gone::ConnectTimeout => ("timeout", blocked_message(&server, &cap)),
                Gone::Closed if self.cfg.url.tls => (
                    "connection-closed",
                    format!(
                        "{server} closed the TLS connection during {}",
                        first_step.unwrap_or("the check")
                    ),
                ),
                Gone::Closed => (
                    "connection-closed",
                    format!(
                        "{server} closed the connection during {}",
                        first_step.unwrap_or("the check")
                    ),
                ),
            };
        self.fail(code, step, message);
        self.pump(now);
    }

    pub fn report(&self) -> CheckReport {
        let a = self.allocs.first();
        let binding = self.binding.as_ref().map(|(d, mapped, rfc5780)| BindingReport {
            rtt_ms: ms(d.rtt),
            transmissions: d.transmissions,
            mapped_address: mapped.map(|m| m.to_string()),
            rfc5780: *rfc5780,
        });
        let allocation = a
            .filter(|a| a.realm.is_some() || a.relayed.is_some())
            .map(|a| AllocationReport {
                realm: a.realm.clone(),
                relayed_address: a.relayed.map(|r| r.to_string()),
                mapped_address: a.mapped.map(|m| m.to_string()),
                lifetime_s: a.lifetime,
                refreshed_lifetime_s: a.refreshed_lifetime,
                integrity: a.integrity,
            });
        let relay = (!self.legs.is_empty()).then(|| {
            self.legs
                .iter()
                .map(|l| {
                    let (outcome, via, rtt, peer_ok) = match &l.state {
                        LegState::Received { rtt, via, peer_ok } => {
                            ("received", Some(via.name()), Some(ms(*rtt)), Some(*peer_ok))
                        }
                        LegState::Lost { .. } => ("lost", None, None, None),
                        _ => ("not-run", None, None, None),
                    };
                    LegReport {
                        name: l.name,
                        outcome,
                        via,
                        rtt_ms: rtt,
                        transmissions: l.transmissions,
                        peer_ok,
                    }
                })
                .collect()
        });
        let mut candidates = Vec::new();
        let protocol = self.cfg.transport().name();
        // webrtc-stats relayProtocol: how the client reaches the TURN server (`tls` for turns:).
        let relay_protocol = self.transport_name();
        let host = self.locals.first().copied().filter(|h| h.port() != 0);
        if let Some(h) = host {
            candidates.push(Candidate {
                candidate_type: "host",
                protocol,
                address: h.to_string(),
                priority: priority(126, 1),
                related_address: None,
                relay_protocol: None,
            });
        }
        // Server-reflexive candidates come from STUN over UDP only (RFC 8445 §5.1.1.2).
        let srflx = self.binding.as_ref().and_then(|b| b.1).filter(|_| !self.tcp());
        if let Some(m) = srflx {
            candidates.push(Candidate {
                candidate_type: "srflx",
                protocol: "udp",
                address: m.to_string(),
                priority: priority(100, 1),
                related_address: host.map(|h| h.to_string()),
                relay_protocol: None,
            });
        }
        if let Some(r) = a.and_then(|a| a.relayed) {
            candidates.push(Candidate {
                candidate_type: "relay",
                protocol: "udp",
                address: r.to_string(),
                priority: priority(0, 1),
                related_address: a.and_then(|a| a.mapped).map(|m| m.to_string()),
                relay_protocol: Some(relay_protocol),
            });
        }
        CheckReport {
            server: self.cfg.url.to_string(),
            server_address: self.cfg.server.to_string(),
            transport: relay_protocol,
            tls: self.tls.clone(),
            ok: self.failure.is_none(),
            failure: self.failure.clone(),
            warnings: self.warnings.clone(),
            software: self.software.clone(),
            binding,
            allocation,
            relay,
            steps: self.steps.clone(),
            candidates,
        }
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

/// RFC 8445 §5.1.2.1 with a local preference of 65535 (one interface) and component `component`.
fn priority(type_preference: u32, component: u32) -> u32 {
    (type_preference << 24) + (65535 << 8) + (256 - component)
}

fn blocked_message(server: &str, waited: &str) -> String {
    format!(
        "no answer from {server} within {waited}: blocked (a firewall drops the packets) or no STUN/TURN \
         server there"
    )
}

/// The error response's meaning for a user (RFC 8489 §14.8, RFC 8656 §19).
fn explain(
    req: Req,
    code: u16,
    reason: &str,
    user: &str,
    realm: &str,
    server: &str,
    alternate: Option<SocketAddr>,
) -> (String, String) {
    let what = req.step_name();
    let (id, text): (&str, String) = match code {
        300 => (
            "try-alternate",
            match alternate {
                Some(a) => format!("{server} redirects to another server: check turn:{a} instead"),
                None => format!("{server} redirects to another server (300) but names none"),
            },
        ),
        400 => ("bad-request", format!("{server} rejected the {what} request as malformed (400 {reason})")),
        401 => (
            "wrong-credentials",
            format!(
                "wrong credentials: {server} rejected user \"{user}\" in realm \"{realm}\" (401 after an \
                 authenticated {what}); check the username and password"
            ),
        ),
        403 => (
            "forbidden",
            match req {
                Req::Permission(_) | Req::ChannelBind(_) => format!(
                    "{server} forbids relaying to that peer (403 {reason}): its peer address policy \
                     (e.g. coturn --denied-peer-ip) excludes it"
                ),
                _ => format!("{server} forbids this {what} (403 {reason})"),
            },
        ),
        420 => ("unknown-attribute", format!("{server} does not understand an attribute of {what} (420 {reason})")),
        437 => (
            "allocation-mismatch",
            format!(
                "{server} already has an allocation for this address and port (437): an earlier run's \
                 allocation still lives; run again from another port or wait for it to expire"
            ),
        ),
        438 => ("stale-nonce", format!("{server} kept rejecting its own nonces (438 Stale Nonce) on {what}")),
        440 => ("address-family", format!("{server} does not support the requested address family (440)")),
        441 => ("wrong-credentials", format!("the credentials differ from the allocation's (441 {reason})")),
        442 => (
            "unsupported-transport",
            format!("{server} does not relay UDP for this client (442 Unsupported Transport Protocol)"),
        ),
        443 => ("peer-address-family", format!("{server}: the peer's address family differs from the relay's (443)")),
        486 => (
            "quota",
            format!(
                "allocation quota reached: user \"{user}\" already has as many allocations as {server} allows \
                 (486 {reason}); close other sessions or raise the user quota"
            ),
        ),
        500 => ("server-error", format!("{server} had an internal error (500 {reason})")),
        508 => (
            "capacity",
            format!(
                "{server} is out of capacity (508 {reason}): no relay ports or bandwidth left, or the total \
                 allocation quota is reached"
            ),
        ),
        _ => ("", format!("{server} answered {what} with error {code} {reason}")),
    };
    let id = if id.is_empty() {
        format!("error-{code}")
    } else {
        id.to_string()
    };
    (id, text)
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
mod tests {
    //! The check against a simulated TURN server (no sockets, simulated time): long-term credentials
    //! verified with the decoder, nonces, allocations with permissions and channels, and relaying between
    //! its own allocations as Data indications or ChannelData. Failures are injected.
    use super::*;
    use crate::wire::encode::{channel_data, long_term_key, MessageBuilder};
    use std::collections::HashMap;
    use std::net::IpAddr;

    const LATENCY: Duration = Duration::from_millis(5);
    const SERVER: &str = "203.0.113.1:3478";

    #[derive(Default)]
    struct SimAlloc {
        relayed: Option<SocketAddr>,
        perms: Vec<IpAddr>,
        channels: Vec<(u16, SocketAddr)>,
    }

    #[derive(Default)]
    struct Turn {
        silent: bool,
        /// Answer the first authenticated request with 438 and a new nonce.
        stale_once: bool,
        allocate_error: Option<(u16, &'static str)>,
        /// Accepts everything but never relays data.
        no_relaying: bool,
        echo_peer: Option<SocketAddr>,
        /// A user may hold one allocation (coturn --user-quota 1).
        quota_one: bool,
        tcp: bool,
        /// Per client (RFC 8489 §9.2: servers bind nonces to the client's 5-tuple).
        nonces: HashMap<SocketId, String>,
        allocs: HashMap<SocketId, SimAlloc>,
        next_port: u16,
        out: Vec<(SocketId, Vec<u8>)>,
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

    fn config(turn: bool, tcp: bool, credentials: Option<(&str, &str)>) -> CheckConfig {
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

    fn run(cfg: CheckConfig, server: Turn) -> (CheckReport, Duration) {
        run_after(cfg, server, &[])
    }

    /// [`run`], with `first` (what the edge reports before any datagram: TLS) given to the probe first.
    fn run_after(cfg: CheckConfig, mut server: Turn, first: &[Input<'_>]) -> (CheckReport, Duration) {
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

    fn outcomes(r: &CheckReport) -> Vec<String> {
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
    fn wrong_password_is_explained() {
        let (r, _) = run(config(true, false, Some(("alice", "wrong"))), Turn::default());
        let f = r.failure.unwrap();
        assert_eq!(
            (f.code.as_str(), f.step.as_str()),
            ("wrong-credentials", "allocate")
        );
        assert!(
            f.message.contains("wrong credentials") && f.message.contains("\"alice\""),
            "{}",
            f.message
        );
        assert!(f.message.contains("lab.example"));
    }

    #[test]
    fn no_credentials_for_a_turn_server_is_explained() {
        let (r, _) = run(config(true, false, None), Turn::default());
        let f = r.failure.unwrap();
        assert_eq!(f.code, "credentials-required");
        assert!(f.message.contains("-u USER -p PASSWORD"));
    }

    #[test]
    fn a_stale_nonce_is_retried_with_the_new_one() {
        let server = Turn {
            stale_once: true,
            ..Default::default()
        };
        let (r, _) = run(config(true, false, Some(("alice", "secret"))), server);
        assert!(r.ok, "{:?}", r.failure);
        assert!(
            outcomes(&r).iter().any(|s| s.ends_with("retry")),
            "{:?}",
            outcomes(&r)
        );
    }

    #[test]
    fn allocation_errors_are_explained() {
        for (code, reason, id, words) in [
            (486, "Allocation Quota Reached", "quota", "quota"),
            (508, "Insufficient Capacity", "capacity", "capacity"),
            (
                442,
                "Unsupported Transport Protocol",
                "unsupported-transport",
                "does not relay UDP",
            ),
            (403, "Forbidden", "forbidden", "forbids"),
            (
                437,
                "Allocation Mismatch",
                "allocation-mismatch",
                "already has an allocation",
            ),
            (599, "Odd", "error-599", "599"),
        ] {
            let server = Turn {
                allocate_error: Some((code, reason)),
                ..Default::default()
            };
            let (r, _) = run(config(true, false, Some(("alice", "secret"))), server);
            let f = r.failure.unwrap();
            assert_eq!(f.code, id);
            assert!(f.message.contains(words), "{code}: {}", f.message);
            assert!(!f.message.contains('\n'));
        }
    }

    #[test]
    fn a_user_quota_of_one_only_skips_the_relay_test() {
        let server = Turn {
            quota_one: true,
            ..Default::default()
        };
        let (r, _) = run(config(true, false, Some(("alice", "secret"))), server);
        assert!(r.ok, "{:?}", r.failure);
        assert!(r.relay.is_none());
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("486") && w.contains("--peer")),
            "{:?}",
            r.warnings
        );
        assert!(outcomes(&r).contains(&"channel-bind[A] ok".to_string()));
    }

    #[test]
    fn a_silent_server_times_out_within_the_cap() {
        for tcp in [false, true] {
            let server = Turn {
                silent: true,
                ..Default::default()
            };
            let (r, took) = run(config(true, tcp, Some(("alice", "secret"))), server);
            let f = r.failure.unwrap();
            assert_eq!(f.code, "timeout");
            assert!(f.message.contains("blocked"), "{}", f.message);
            assert_eq!(
                took,
                Duration::from_secs(2),
                "the --timeout cap, not RFC 8489's 39.5 s"
            );
        }
        let (r, took) = run(
            config(false, false, None),
            Turn {
                silent: true,
                ..Default::default()
            },
        );
        assert_eq!(
            (r.failure.unwrap().step.as_str(), took),
            ("binding", Duration::from_secs(2))
        );
    }

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

    #[test]
    fn stun_check_reports_binding_and_candidates() {
        let (r, _) = run(config(false, false, None), Turn::default());
        assert!(r.ok);
        assert_eq!(
            r.binding.unwrap().mapped_address.as_deref(),
            Some("198.51.100.5:40000")
        );
        assert_eq!(r.candidates.len(), 2);
        assert!(r.allocation.is_none() && r.relay.is_none());
    }

    #[test]
    fn an_icmp_refusal_ends_the_check_at_once() {
        let cfg = config(true, false, Some(("alice", "secret")));
        let mut probe = CheckProbe::new(cfg, vec!["198.51.100.5:40000".parse().unwrap(); 2], 1);
        probe.handle_input(Duration::ZERO, Input::Refused { socket: 0 });
        probe.handle_input(Duration::ZERO, Input::Refused { socket: 1 });
        while probe.poll_transmit().is_some() {}
        assert!(probe.is_done());
        let f = probe.report().failure.unwrap();
        assert_eq!(f.code, "unreachable");
        assert!(
            f.message.contains("nothing listens on udp port 3478"),
            "{}",
            f.message
        );
    }
}
