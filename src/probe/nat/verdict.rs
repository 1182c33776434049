//! The verdicts drawn from the tests' outcomes: mapping behaviour (RFC 5780 §4.3: does test II's mapped
//! address equal test I's, test III's equal test II's?), filtering behaviour (§4.4: did the answer to
//! CHANGE-REQUEST from another IP, or only from another port, get in?), hairpinning (§4.5), port
//! preservation, an ALG that rewrote MAPPED-ADDRESS, the classic RFC 3489 §5 name, and what it all means
//! for a WebRTC call (direct path or TURN). An answer the server sent from the wrong address, or a test
//! that could not run, leaves its verdict open with the reason, rather than guessing.
//!
//! Pure: outcomes in, verdicts out; it sends nothing and keeps no state, so it can be tested on outcomes
//! built by hand.
use super::probe::{Answer, Outcome};
use serde::Serialize;
use std::net::SocketAddr;

/// RFC 4787 / RFC 5780 behaviour of mapping or filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Behaviour {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

impl Behaviour {
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) enum Classic {
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
    pub(crate) fn id(self) -> &'static str {
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

    pub(crate) fn name(self) -> &'static str {
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

/// The outcomes the verdicts are drawn from.
pub(super) struct Observations<'a> {
    pub(super) server: SocketAddr,
    pub(super) local: Option<SocketAddr>,
    pub(super) mapping: &'a [Outcome; 3],
    pub(super) hairpin: &'a Outcome,
    pub(super) filtering: &'a [Outcome; 3],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Verdicts {
    pub(super) mapped: Option<SocketAddr>,
    pub(super) nat: Option<bool>,
    pub(super) mapping: Option<Behaviour>,
    pub(super) filtering: Option<Behaviour>,
    pub(super) hairpinning: Option<bool>,
    pub(super) port_preservation: Option<bool>,
    pub(super) alg: Option<bool>,
    pub(super) classic: Classic,
    pub(super) untested: Vec<String>,
}

pub(super) fn conclude(o: &Observations<'_>) -> Verdicts {
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
pub(crate) struct WebRtcAdvice {
    /// `yes`, `mostly`, `limited`, `no` or `unknown`: will a direct (non-relayed) path form?
    pub(crate) direct: &'static str,
    /// `not-needed`, `for-some-peers`, `recommended` or `required-over-tcp`.
    pub(crate) turn: &'static str,
    pub(crate) explanation: String,
}

pub(super) fn webrtc_advice(
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

#[cfg(test)]
mod tests {
    //! Each verdict from a run through the simulated NAT (`probe::sim::nat`) with the behaviour it
    //! should find, and `conclude` alone on outcomes built by hand.
    use super::*;
    use crate::probe::sim::nat::{nat, run, LAN, LATENCY, PUBLIC};
    use crate::probe::sim::sa;
    use crate::probe::sim::stun::{ServerSim, P1, P2};
    use crate::wire::stun::Class;
    use std::time::Duration;

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
}
