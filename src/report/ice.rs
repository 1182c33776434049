//! The ICE part of the text summary: a few lines per session (the data is `analysis::sessions`).
use crate::analysis::ice::Role;
use crate::analysis::nat::NatBehaviour;
use crate::analysis::sessions::{PairState, SessionReport};
use crate::report::text::escape;
use std::io::{self, Write};

/// The ICE part of the text summary: a few lines per session.
pub(crate) fn write_text(sessions: &[SessionReport], out: &mut dyn Write) -> io::Result<()> {
    for s in sessions {
        let agents: Vec<String> = s
            .agents
            .iter()
            .map(|a| {
                format!(
                    "{} ({})",
                    escape(&a.ufrag),
                    a.role.map_or("role unknown", Role::name)
                )
            })
            .collect();
        writeln!(
            out,
            "ICE session {}: {} — {}",
            s.id,
            agents.join(" ↔ "),
            s.outcome.name().to_uppercase()
        )?;
        writeln!(out, "  {}", escape(&s.outcome_reason))?;
        if let Some(r) = &s.restart_of {
            writeln!(out, "  ICE restart of {r}")?;
        }
        let succeeded = s.pairs.iter().filter(|p| p.state == PairState::Succeeded).count();
        writeln!(
            out,
            "  {} candidate(s), {} pair(s) checked, {} succeeded",
            s.candidates.len(),
            s.pairs.len(),
            succeeded
        )?;
        if let Some(sel) = &s.selected_pair {
            let p = &s.pairs[sel.index];
            let rtt = p
                .a_to_b
                .current_round_trip_time
                .or(p.b_to_a.current_round_trip_time);
            writeln!(
                out,
                "  selected: {} {} ↔ {} {} ({}){}",
                sel.a_type.name(),
                sel.a,
                sel.b_type.name(),
                sel.b,
                sel.protocol.name(),
                rtt.map(|r| format!(", rtt {:.1} ms", r * 1000.0))
                    .unwrap_or_default()
            )?;
        }
        for n in &s.nat {
            let unknown = NatBehaviour::Unknown;
            if n.mapping == unknown && n.filtering == unknown && n.behind_nat.is_none() {
                continue;
            }
            let mut parts = Vec::new();
            if n.behind_nat == Some(true) {
                parts.push("behind NAT".to_string());
            }
            if n.mapping != unknown {
                parts.push(format!("{} mapping", n.mapping.name()));
            }
            if n.filtering != unknown {
                parts.push(format!("{} filtering", n.filtering.name()));
            }
            if let Some(p) = n.port_preserved {
                parts.push(if p {
                    "port preserved".into()
                } else {
                    "port not preserved".into()
                });
            }
            writeln!(out, "  NAT of {}: {}", escape(&n.agent), parts.join(", "))?;
        }
        let m = &s.milestones;
        let mut ms = Vec::new();
        for (name, v) in [
            ("first success", m.time_to_first_success),
            ("nominated", m.time_to_nomination),
            ("DTLS connected", m.time_to_dtls_connected),
            ("media", m.time_to_first_media),
        ] {
            if let Some(v) = v {
                ms.push(format!("{name} +{:.0} ms", v * 1000.0));
            }
        }
        if !ms.is_empty() {
            writeln!(out, "  {}", ms.join(", "))?;
        }
    }
    Ok(())
}
