//! Passive NAT insight: what the packets of one ICE session say about the NAT in front of each agent,
//! phrased as evidence-based guesses with frames (RFC 4787 terms: mapping and filtering behaviour).
//!
//! - Behind a NAT: a server-reflexive address whose base differs (seen when the capture is inside the NAT),
//!   or per-destination mappings on the wire (seen outside it).
//! - Mapping: *endpoint-independent* when the agent's checks to its peer leave from the same public
//!   address:port a STUN server reported (RFC 4787 §4.1 EIM); *address-dependent* when they leave from
//!   another port of the same public IP (a new mapping per destination: "symmetric").
//! - Port preservation: the mapped port equals the base's.
//! - Filtering: a check from the peer to the agent's public address that arrived before the agent had sent
//!   anything to that peer, and still got answered, shows endpoint-independent filtering; one that was
//!   dropped while later ones (after the agent's own check opened the pinhole) passed shows
//!   address(-and-port)-dependent filtering (RFC 4787 §5).
//!
//! It does not probe anything (that is `probe::nat`); with one capture point some questions stay open,
//! and the answer says "unknown" rather than guess.
use super::ice::CandidateType;
use super::sessions::{CandidateReport, PairReport};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct NatReport {
    pub(crate) agent: String,
    /// `true`, `false` or absent (unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) behind_nat: Option<bool>,
    pub(crate) mapping: NatBehaviour,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) port_preserved: Option<bool>,
    /// Address-dependent stands for address- or address-and-port-dependent: one capture point cannot
    /// tell them apart.
    pub(crate) filtering: NatBehaviour,
    /// The reasoning, one sentence per conclusion, with frames.
    pub(crate) evidence: Vec<String>,
}

/// A NAT's mapping or filtering behaviour (RFC 4787 §4.1, §5), as far as the packets show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum NatBehaviour {
    /// The packets do not say.
    #[default]
    Unknown,
    EndpointIndependent,
    AddressDependent,
}

impl NatBehaviour {
    pub(crate) fn name(self) -> &'static str {
        match self {
            NatBehaviour::Unknown => "unknown",
            NatBehaviour::EndpointIndependent => "endpoint-independent",
            NatBehaviour::AddressDependent => "address-dependent",
        }
    }
}

/// Infers NAT behaviour for the agent `ufrag` (index `agent` in the session: 0 = `a` side of the pairs).
pub(crate) fn infer(
    ufrag: &str,
    agent: usize,
    candidates: &[CandidateReport],
    nat_mappings: &[CandidateReport],
    pairs: &[PairReport],
) -> NatReport {
    let mut r = NatReport {
        agent: ufrag.to_string(),
        ..Default::default()
    };
    let mine = |c: &&CandidateReport| c.agent == ufrag;
    let srflx: Vec<&CandidateReport> = candidates
        .iter()
        .filter(mine)
        .filter(|c| c.candidate_type == CandidateType::Srflx)
        .collect();
    let mappings: Vec<&CandidateReport> = nat_mappings.iter().filter(mine).collect();
    let prflx_remapped: Vec<&CandidateReport> = candidates
        .iter()
        .filter(mine)
        .filter(|c| c.candidate_type == CandidateType::Prflx && c.inferred_from.contains("another port"))
        .collect();

    for c in &srflx {
        if let Some(base) = &c.related_address {
            let (b_ip, b_port) = split(base);
            let (m_ip, m_port) = split(&c.address);
            if b_ip != m_ip {
                r.behind_nat = Some(true);
                r.evidence.push(format!(
                    "base {base} is seen by the STUN server as {} (frame {}): behind a NAT",
                    c.address, c.first_frame
                ));
            }
            r.port_preserved = Some(b_port == m_port);
            r.evidence.push(format!(
                "the NAT {} the port ({base} → {})",
                if b_port == m_port {
                    "preserved"
                } else {
                    "did not preserve"
                },
                c.address
            ));
        }
    }

    if let Some(m) = mappings.first().or(prflx_remapped.first()) {
        r.behind_nat = Some(true);
        r.mapping = NatBehaviour::AddressDependent;
        r.evidence.push(format!(
            "checks toward the peer left from {} (frame {}) while a STUN server saw another port of the same IP: a new mapping per destination (symmetric NAT)",
            m.address, m.first_frame
        ));
    } else {
        // Checks to the peer leaving from the very address the STUN server reported.
        let side = |p: &PairReport| if agent == 0 { p.a.clone() } else { p.b.clone() };
        if let Some(c) = srflx
            .iter()
            .find(|c| pairs.iter().any(|p| side(p) == c.address && sent(p, agent) > 0))
        {
            // (Whether there is a NAT at all is not shown by this: a public host without one looks the
            // same from outside.)
            r.mapping = NatBehaviour::EndpointIndependent;
            r.evidence.push(format!(
                "checks toward the peer left from {}, the address a STUN server reported: the same mapping for every destination",
                c.address
            ));
        }
    }

    // Filtering: inbound checks to this agent's public (srflx) address.
    for p in pairs {
        let my_addr = if agent == 0 { &p.a } else { &p.b };
        if !srflx.iter().any(|c| &c.address == my_addr) {
            continue;
        }
        let (inbound, outbound) = if agent == 0 {
            (&p.b_to_a, &p.a_to_b)
        } else {
            (&p.a_to_b, &p.b_to_a)
        };
        let (Some(in_first), Some(out_first)) = (inbound.first_request_ts, outbound.first_request_ts) else {
            continue;
        };
        if in_first < out_first {
            let answered_first = inbound.first_response_ts.is_some_and(|t| t < out_first);
            if answered_first {
                r.filtering = NatBehaviour::EndpointIndependent;
                r.evidence.push(format!(
                    "a check from the peer to {my_addr} was answered before this agent had sent anything to the peer: unsolicited inbound packets pass"
                ));
            } else if inbound.responses_received > 0 {
                // Dropped at first, answered later: the pinhole this agent's own check opened let the
                // peer in. (Never answered at all proves nothing about filtering: the path may be blocked.)
                r.filtering = NatBehaviour::AddressDependent;
                r.evidence.push(format!(
                    "the peer's first check to {my_addr} went unanswered until this agent sent its own check to the peer: the NAT drops unsolicited inbound packets (address- or address-and-port-dependent filtering)"
                ));
            }
        }
    }
    r
}

fn sent(p: &PairReport, agent: usize) -> u64 {
    if agent == 0 {
        p.a_to_b.requests_sent
    } else {
        p.b_to_a.requests_sent
    }
}

fn split(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((ip, port)) => (ip.to_string(), port.to_string()),
        None => (addr.to_string(), String::new()),
    }
}
