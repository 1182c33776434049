//! The check's STUN/TURN transactions, one step each: Binding (RFC 8489 §6), Allocate (RFC 8656 §7.1,
//! UDP relay), Refresh (§7.2), CreatePermission (§9), ChannelBind (§11) and the Refresh with LIFETIME 0
//! that deletes an allocation. For each: what the request carries (the long-term credentials of RFC 8489
//! §9.2 once the server's 401 has named its realm and nonce; SOFTWARE on Allocate), and what its success,
//! error response or silence means for the allocation's stage, the warnings, and the check.
//!
//! The credential dance lives here: the 401 to the first Allocate is the challenge, not a failure; 438
//! Stale Nonce is retried with the new nonce (and a new realm, if the server moved); a 401 to an
//! authenticated request is a failure. It does not decide the order of the steps (`probe`'s `pump`), or
//! word the failures it finds (`verdict`).
use super::probe::CheckProbe;
use super::report::Failure;
use super::verdict;
use crate::probe::transactions::{Answered, Expired};
use crate::probe::SocketId;
use crate::wire::attributes::AttrValue;
use crate::wire::credentials::Keyring;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::stun::{self, Class, Method, StunMessage, Verdict};
use std::net::SocketAddr;
use std::time::Duration;

/// RFC 8489 §9.2.4 lets a server change nonces at any time; three fresh ones in a row without success is
/// a server that never accepts its own nonces.
pub(crate) const MAX_STALE_RETRIES: u32 = 3;
/// The channel the check binds (RFC 8656 §12: 0x4000-0x4FFF).
pub(crate) const CHANNEL: u16 = 0x4000;
/// The lifetime the Refresh asks for (RFC 8656 §3.2: the default allocation lifetime, 10 minutes).
const REFRESH_LIFETIME_S: u32 = 600;

/// A request the check sends; the number is the allocation's (0 is `A`, 1 is `B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Req {
    Binding,
    Allocate(usize),
    Refresh(usize),
    Permission(usize),
    ChannelBind(usize),
    Delete(usize),
}

impl Req {
    pub(super) fn step_name(self) -> &'static str {
        match self {
            Req::Binding => "binding",
            Req::Allocate(_) => "allocate",
            Req::Refresh(_) => "refresh",
            Req::Permission(_) => "create-permission",
            Req::ChannelBind(_) => "channel-bind",
            Req::Delete(_) => "delete",
        }
    }
    pub(super) fn alloc(self) -> Option<usize> {
        match self {
            Req::Binding => None,
            Req::Allocate(i)
            | Req::Refresh(i)
            | Req::Permission(i)
            | Req::ChannelBind(i)
            | Req::Delete(i) => Some(i),
        }
    }
    /// The allocation as the report names it (`StepReport::allocation`).
    pub(super) fn allocation_name(self) -> Option<&'static str> {
        self.alloc().map(|i| if i == 0 { "A" } else { "B" })
    }
}

/// Where an allocation is in its life; ordered, so that "at least refreshed" is a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
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
pub(super) struct Alloc {
    pub(super) socket: SocketId,
    pub(super) stage: Stage,
    pub(super) realm: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) key: Option<[u8; 16]>,
    pub(super) stale_retries: u32,
    pub(super) relayed: Option<SocketAddr>,
    pub(super) mapped: Option<SocketAddr>,
    pub(super) lifetime: Option<u32>,
    pub(super) refreshed_lifetime: Option<u32>,
    pub(super) integrity: Option<Integrity>,
    /// The socket is unusable (refused, closed, never connected).
    pub(super) dead: bool,
    /// The second allocation was refused for a reason that says nothing against the server (a user
    /// quota of one): the check goes on with the first alone.
    pub(super) dropped: bool,
    /// Its first Allocate was sent.
    pub(super) requested: bool,
}

impl Alloc {
    pub(super) fn new(socket: SocketId) -> Self {
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

/// MESSAGE-INTEGRITY of a success response, as the decoder judged it with the allocation's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Integrity {
    Ok,
    Bad,
    Absent,
    Unchecked,
}

impl Integrity {
    fn of(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Ok(_) => Integrity::Ok,
            Verdict::Bad => Integrity::Bad,
            Verdict::Absent => Integrity::Absent,
            Verdict::Unchecked => Integrity::Unchecked,
        }
    }

    /// Its name in the report (`AllocationReport::integrity`) and in step details.
    pub(super) fn name(self) -> &'static str {
        match self {
            Integrity::Ok => "ok",
            Integrity::Bad => "bad",
            Integrity::Absent => "absent",
            Integrity::Unchecked => "unchecked",
        }
    }
}

/// The Binding request's success: its round trip, and what it said.
#[derive(Debug)]
pub(super) struct BindingAnswer {
    pub(super) answered: Answered<Req>,
    /// XOR-MAPPED-ADDRESS, or the classic MAPPED-ADDRESS.
    pub(super) mapped: Option<SocketAddr>,
    /// The server named an OTHER-ADDRESS (RFC 5780 §7.4).
    pub(super) rfc5780: bool,
}

impl CheckProbe {
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

    pub(super) fn send_request(&mut self, now: Duration, req: Req) {
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

    pub(super) fn keyring(&self, i: usize) -> Keyring {
        let mut k = Keyring::new();
        if let (Some(c), Some(a)) = (&self.cfg.credentials, self.allocs.get(i)) {
            k.add_turn(&c.username, &c.password, a.realm.as_deref());
        }
        k
    }

    pub(super) fn on_response(&mut self, now: Duration, done: Answered<Req>, msg: &StunMessage) {
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
                self.binding = Some(BindingAnswer {
                    answered: done,
                    mapped,
                    rfc5780,
                });
            } else {
                let (code, reason) = error.unwrap_or((0, String::new()));
                self.step(req, "error", Some(&done), Some(code), format!("{code} {reason}"));
                if self.cfg.is_turn() {
                    self.warnings
                        .push(format!("the server answered Binding with error {code} {reason}"));
                } else {
                    self.fail(Failure::new(
                        format!("error-{code}"),
                        "binding",
                        format!(
                            "{} answered Binding with error {code} {reason}",
                            self.server_text()
                        ),
                    ));
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
        let integrity = Integrity::of(&msg.integrity);
        let lifetime = msg.attr_value(stun::ATTR_LIFETIME).and_then(AttrValue::as_u32);
        let Some(authed) = self.allocs.get(i).map(|a| a.key.is_some()) else {
            return;
        };
        if authed && integrity == Integrity::Bad {
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
                d.push_str(&format!(", integrity {}", integrity.name()));
                if relayed.is_none() {
                    self.fail(Failure::new(
                        "no-relayed-address",
                        "allocate",
                        "the Allocate success response has no XOR-RELAYED-ADDRESS".into(),
                    ));
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
                self.fail(Failure::new(
                    "unauthorized",
                    step,
                    format!(
                        "{server} answered 401 without REALM and NONCE: not a long-term-credential TURN server"
                    ),
                ));
                return;
            };
            let detail = format!("401 {reason}: realm \"{realm}\", nonce received");
            let Some(c) = self.cfg.credentials.clone() else {
                self.step(req, "error", Some(done), Some(code), detail);
                self.fail(Failure::new(
                    "credentials-required",
                    step,
                    format!("{server} wants credentials for realm \"{realm}\": give -u USER -p PASSWORD"),
                ));
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
        self.fail(verdict::explain(
            req, code, reason, user, &realm, &server, alternate,
        ));
    }

    pub(super) fn on_expired(&mut self, e: Expired<Req>) {
        let req = e.tag;
        let waited = format!("{:.1} s", e.waited.as_secs_f64());
        let server = self.server_text();
        let detail = format!("no answer after {} transmissions in {waited}", e.transmissions);
        self.step_unanswered(req, "timeout", e.transmissions, detail);
        match req {
            Req::Binding => {
                self.binding_expired = true;
                if self.cfg.is_turn() {
                    self.warnings
                        .push("the server did not answer the Binding request".to_string());
                } else {
                    self.fail(verdict::timeout(req, &server, &waited, false));
                }
            }
            Req::Delete(i) => {
                if let Some(a) = self.allocs.get_mut(i) {
                    a.stage = Stage::Gone;
                }
                self.warnings.push(format!(
                    "no answer to the request deleting the allocation ({waited})"
                ));
            }
            _ => {
                let binding_answered = self.binding.is_some();
                self.fail(verdict::timeout(req, &server, &waited, binding_answered));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The credential dance and the second allocation, against the simulated TURN server.
    use crate::probe::sim::turn::{config, outcomes, run, Turn};

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
}
