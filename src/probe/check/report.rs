//! The result of `iceview check`, as `--json` writes it in an `iceview.probe/1` document (docs/probes.md)
//! and the text output prints it: the steps as they went, the failure and warnings, the Binding and the
//! first allocation's facts, the relay legs, and the candidates a browser would gather from this server,
//! as the Trickle ICE page lists them (host, srflx, relay) with RFC 8445 §5.1.2.1 priorities.
//!
//! Strings here are the output's: fixed ids for scripts, and text from the server (SOFTWARE, reason
//! phrases), which the printer escapes. Nothing here sends or decides anything.
use super::probe::CheckProbe;
use super::relay::LegState;
use super::steps::Integrity;
use crate::probe::ms;
use crate::probe::tls::TlsReport;
use serde::Serialize;

/// Why the check failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// A stable id: `timeout`, `unreachable`, `connection-closed`, `credentials-required`,
    /// `wrong-credentials`, `stale-nonce`, `quota`, `capacity`, `unsupported-transport`, `forbidden`,
    /// `allocation-mismatch`, `try-alternate`, `relay-data-lost`, `peer-no-echo`, `error-NNN`, ...
    pub(crate) code: String,
    /// The step that failed (`binding`, `allocate`, `refresh`, ..., `relay`).
    pub(crate) step: String,
    /// One line for a human.
    pub message: String,
}

impl Failure {
    pub(super) fn new(code: impl Into<String>, step: &str, message: String) -> Self {
        Failure {
            code: code.into(),
            step: step.to_string(),
            message,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct StepReport {
    pub(crate) step: &'static str,
    /// `A` (the first allocation) or `B` (the second, for the relay round trip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allocation: Option<&'static str>,
    /// `ok`, `challenge` (the expected 401), `retry` (438), `error`, `timeout`, `refused`.
    pub(crate) outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transmissions: Option<u32>,
    pub(crate) detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct BindingReport {
    pub(crate) rtt_ms: f64,
    pub(crate) transmissions: u32,
    pub(crate) mapped_address: Option<String>,
    /// The server named an alternate address (OTHER-ADDRESS): `iceview nat` can test NAT behaviour with it.
    pub(crate) rfc5780: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct AllocationReport {
    pub(crate) realm: Option<String>,
    pub(crate) relayed_address: Option<String>,
    pub(crate) mapped_address: Option<String>,
    pub(crate) lifetime_s: Option<u32>,
    pub(crate) refreshed_lifetime_s: Option<u32>,
    /// MESSAGE-INTEGRITY of the Allocate success response: `ok`, `bad` or `absent`.
    pub(crate) integrity: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct LegReport {
    pub(crate) name: &'static str,
    /// `received`, `lost`, `not-run`.
    pub(crate) outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) via: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) transmissions: u32,
    /// The Data indication named the sender's relayed address as the peer (false: someone else's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peer_ok: Option<bool>,
}

/// A candidate as the Trickle ICE page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Candidate {
    /// `host`, `srflx` or `relay`.
    pub(crate) candidate_type: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) address: String,
    pub(crate) priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) related_address: Option<String>,
    /// For relay candidates: how the client reaches the TURN server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay_protocol: Option<&'static str>,
}

/// The result of `iceview check`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub(crate) server: String,
    pub(crate) server_address: String,
    /// `udp`, `tcp` or `tls`.
    pub(crate) transport: &'static str,
    /// `stuns:`/`turns:`: the TLS layer (also when its handshake failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls: Option<TlsReport>,
    pub(crate) ok: bool,
    pub failure: Option<Failure>,
    pub(crate) warnings: Vec<String>,
    /// The server's SOFTWARE attribute, as sent (escape before printing).
    pub(crate) software: Option<String>,
    pub(crate) binding: Option<BindingReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allocation: Option<AllocationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay: Option<Vec<LegReport>>,
    pub(crate) steps: Vec<StepReport>,
    pub(crate) candidates: Vec<Candidate>,
}

impl CheckProbe {
    pub fn report(&self) -> CheckReport {
        let a = self.allocs.first();
        let binding = self.binding.as_ref().map(|b| BindingReport {
            rtt_ms: ms(b.answered.rtt),
            transmissions: b.answered.transmissions,
            mapped_address: b.mapped.map(|m| m.to_string()),
            rfc5780: b.rfc5780,
        });
        let allocation = a
            .filter(|a| a.realm.is_some() || a.relayed.is_some())
            .map(|a| AllocationReport {
                realm: a.realm.clone(),
                relayed_address: a.relayed.map(|r| r.to_string()),
                mapped_address: a.mapped.map(|m| m.to_string()),
                lifetime_s: a.lifetime,
                refreshed_lifetime_s: a.refreshed_lifetime,
                integrity: a.integrity.map(Integrity::name),
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
        let srflx = self
            .binding
            .as_ref()
            .and_then(|b| b.mapped)
            .filter(|_| !self.tcp());
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

/// RFC 8445 §5.1.2.1 with a local preference of 65535 (one interface) and component `component`.
fn priority(type_preference: u32, component: u32) -> u32 {
    (type_preference << 24) + (65535 << 8) + (256 - component)
}

#[cfg(test)]
mod tests {
    //! The report of a `stun:` check: its Binding and its candidates.
    use crate::probe::sim::turn::{config, run, Turn};

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
}
