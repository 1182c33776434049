//! The result of `iceview nat`, as `--json` writes it in an `iceview.probe/1` document (docs/probes.md)
//! and the text output prints it: the verdicts, what could not be tested and why, and each RFC 5780 test
//! as it ran (where it went, from which local address, what came back, from where, after how many
//! transmissions).
//!
//! Strings here are the output's: fixed ids for scripts, and text from the server (SOFTWARE), which the
//! printer escapes. Nothing here sends or decides anything.
use super::lifetime::{lifetime_report, LifetimeReport};
use super::probe::{NatProbe, Outcome, SOCKET_FILTERING, SOCKET_MAPPING};
use super::verdict::{conclude, webrtc_advice, Behaviour, Observations, WebRtcAdvice};
use crate::probe::{ms, SocketId};
use crate::wire::stun::Class;
use serde::Serialize;
use std::net::SocketAddr;

impl NatProbe {
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

/// One RFC 5780 test as run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TestReport {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) change_request: Option<&'static str>,
    /// `answered`, `error`, `no-answer` or `not-run`.
    pub(crate) outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mapped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transmissions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) waited_ms: Option<f64>,
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

/// The result of `iceview nat`.
#[derive(Clone, Debug, Serialize)]
pub struct NatReport {
    pub(crate) server: String,
    pub(crate) server_address: String,
    /// Whether the server supports RFC 5780 (it sent OTHER-ADDRESS); `None` when it never answered.
    pub(crate) rfc5780: Option<bool>,
    pub(crate) other_address: Option<String>,
    /// The server's SOFTWARE attribute, as sent (escape before printing).
    pub(crate) software: Option<String>,
    pub(crate) local_address: Option<String>,
    /// The server-reflexive address of the mapping socket (test I).
    pub(crate) mapped_address: Option<String>,
    /// Whether a NAT translates this host's address (mapped ≠ local).
    pub(crate) nat: Option<bool>,
    /// RFC 4787 mapping behaviour; `None` when not tested (see `untested`).
    pub(crate) mapping: Option<&'static str>,
    pub(crate) filtering: Option<&'static str>,
    pub(crate) hairpinning: Option<bool>,
    pub(crate) port_preservation: Option<bool>,
    /// An application-level gateway rewrote MAPPED-ADDRESS (it differs from XOR-MAPPED-ADDRESS).
    pub(crate) alg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lifetime: Option<LifetimeReport>,
    /// RFC 3489 classification: `open-internet`, `full-cone`, `restricted-cone`, `port-restricted-cone`,
    /// `symmetric`, `symmetric-udp-firewall`, `udp-blocked`, `unknown`.
    pub(crate) classic: &'static str,
    pub(crate) classic_name: &'static str,
    pub(crate) webrtc: WebRtcAdvice,
    /// What could not be tested, and why.
    pub(crate) untested: Vec<String>,
    pub(crate) tests: Vec<TestReport>,
}

impl NatReport {
    /// The server never answered at all.
    pub fn no_answer(&self) -> bool {
        self.mapped_address.is_none() && self.rfc5780.is_none()
    }
}

#[cfg(test)]
mod tests {
    //! What the server sent, as the report keeps it and the text output prints it.
    use super::*;
    use crate::probe::sim::nat::{nat, run};
    use crate::probe::sim::stun::ServerSim;

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
