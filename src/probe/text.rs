//! Text rendering of probe results: what `iceview nat` and `iceview check` print. The same reports are
//! what `--json` writes; text that came from the server (SOFTWARE, reason phrases, realms) is escaped.
use super::check::CheckReport;
use super::nat::NatReport;
use super::tls::TlsReport;
use crate::report::text::escape;
use std::io::{self, Write};

/// Prose is wrapped to this many columns (the tables are not).
const WIDTH: usize = 100;

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn yes_no(v: Option<bool>, yes: &str, no: &str, unknown: &str) -> String {
    match v {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => unknown.to_string(),
    }
}

pub fn write_nat(r: &NatReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "NAT behaviour towards {} ({})",
        escape(&r.server),
        r.server_address
    )?;
    let support = match (r.rfc5780, &r.other_address) {
        (Some(true), Some(o)) => format!("yes, alternate address {o}"),
        (Some(false), _) => "no (no OTHER-ADDRESS): mapping and filtering cannot be tested".into(),
        _ => "unknown (no answer)".into(),
    };
    writeln!(out, "  server RFC 5780    {support}")?;
    if let Some(sw) = &r.software {
        writeln!(out, "  server software    {}", escape(sw))?;
    }
    writeln!(
        out,
        "  local address      {}",
        r.local_address.as_deref().unwrap_or("?")
    )?;
    let mapped = match (&r.mapped_address, r.nat) {
        (Some(m), Some(true)) => format!("{m} (behind a NAT)"),
        (Some(m), Some(false)) => format!("{m} (no NAT: same as the local address)"),
        (Some(m), None) => m.clone(),
        (None, _) => "none (no answer)".into(),
    };
    writeln!(out, "  mapped address     {mapped}")?;
    writeln!(out, "  mapping            {}", r.mapping.unwrap_or("not tested"))?;
    writeln!(
        out,
        "  filtering          {}",
        r.filtering.unwrap_or("not tested")
    )?;
    let hairpin = if r.nat == Some(false) {
        "not applicable (no NAT)".to_string()
    } else {
        yes_no(r.hairpinning, "yes", "no", "not tested")
    };
    writeln!(out, "  hairpinning        {hairpin}")?;
    let preserved = if r.nat == Some(false) {
        "not applicable (no NAT)".to_string()
    } else {
        yes_no(r.port_preservation, "yes", "no", "not tested")
    };
    writeln!(out, "  port preservation  {preserved}")?;
    if r.alg == Some(true) {
        writeln!(
            out,
            "  ALG                yes: something rewrote MAPPED-ADDRESS (it differs from XOR-MAPPED-ADDRESS)"
        )?;
    }
    match &r.lifetime {
        None => writeln!(out, "  binding lifetime   not measured (use --lifetime)")?,
        Some(l) => {
            let text = match (&l.untested, l.at_least_s, l.less_than_s) {
                (Some(why), _, _) => format!("not measured: {why}"),
                (None, Some(a), Some(b)) => format!("between {a} s and {b} s"),
                (None, Some(a), None) => format!("at least {a} s (alive at every wait tried)"),
                (None, None, Some(b)) => format!("less than {b} s"),
                (None, None, None) => "unknown".into(),
            };
            writeln!(out, "  binding lifetime   {text}")?;
            if !l.inconsistent.is_empty() {
                writeln!(
                    out,
                    "                     (inconsistent checks at {:?} s: packet loss, or irregular expiry)",
                    l.inconsistent
                )?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "Tests:")?;
    for t in &r.tests {
        if t.outcome == "not-run" {
            continue;
        }
        let mut line = format!("  {:<14} {:<9}", t.name, t.outcome);
        if let Some(m) = &t.mapped {
            line.push_str(&format!(" mapped {m}"));
        }
        if let Some(f) = &t.from {
            line.push_str(&format!(" from {f}"));
        }
        if let Some(rtt) = t.rtt_ms {
            line.push_str(&format!(" rtt {rtt:.1} ms"));
        }
        if let (Some(to), Some(w)) = (&t.to, t.waited_ms) {
            line.push_str(&format!(" (sent to {to}, waited {:.1} s)", w / 1000.0));
        }
        if let Some(c) = t.error_code {
            line.push_str(&format!(" error {c}"));
        }
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    writeln!(out, "RFC 3489 type: {}", r.classic_name)?;
    writeln!(
        out,
        "WebRTC: direct connections: {}; TURN: {}.",
        r.webrtc.direct, r.webrtc.turn
    )?;
    for line in wrap(&r.webrtc.explanation, WIDTH - 2) {
        writeln!(out, "  {line}")?;
    }
    if !r.untested.is_empty() {
        writeln!(out, "Not tested:")?;
        for u in &r.untested {
            writeln!(out, "  - {}", escape(u))?;
        }
    }
    Ok(())
}

pub fn write_check(r: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Checking {} ({} over {})",
        escape(&r.server),
        r.server_address,
        r.transport
    )?;
    if let Some(sw) = &r.software {
        writeln!(out, "  server software: {}", escape(sw))?;
    }
    if let Some(t) = &r.tls {
        write_tls(t, out)?;
    }
    for s in &r.steps {
        let who = s.allocation.map(|a| format!(" [{a}]")).unwrap_or_default();
        let mut line = format!("  {:<9} {:<22}", s.outcome, format!("{}{who}", s.step));
        if let Some(rtt) = s.rtt_ms {
            line.push_str(&format!(" rtt {rtt:>6.1} ms "));
        }
        line.push_str(&escape(&s.detail));
        writeln!(out, "{}", line.trim_end())?;
    }
    if let Some(legs) = &r.relay {
        writeln!(out, "Relay round trip:")?;
        for l in legs {
            let mut line = format!("  {:<9} {}", l.outcome, l.name);
            if let Some(rtt) = l.rtt_ms {
                line.push_str(&format!(", {rtt:.1} ms"));
            }
            if l.transmissions > 1 {
                line.push_str(&format!(" ({} transmissions)", l.transmissions));
            }
            if l.peer_ok == Some(false) {
                line.push_str(" (the Data indication named another peer)");
            }
            writeln!(out, "{line}")?;
        }
    }
    if !r.candidates.is_empty() {
        writeln!(out, "Candidates (as the Trickle ICE page lists them):")?;
        for c in &r.candidates {
            let mut line = format!(
                "  {:<5} {} {:<28} priority {}",
                c.candidate_type, c.protocol, c.address, c.priority
            );
            if let Some(rel) = &c.related_address {
                line.push_str(&format!("  related {rel}"));
            }
            if let Some(p) = c.relay_protocol {
                line.push_str(&format!("  relay protocol {p}"));
            }
            writeln!(out, "{line}")?;
        }
    }
    for w in &r.warnings {
        writeln!(out, "warning: {}", escape(w))?;
    }
    match &r.failure {
        None => writeln!(out, "Result: ok")?,
        Some(f) => writeln!(out, "Result: failed at {}: {}", f.step, escape(&f.message))?,
    }
    Ok(())
}

fn write_tls(t: &TlsReport, out: &mut dyn Write) -> io::Result<()> {
    let mut line = format!(
        "  TLS: {}, {}",
        t.version.as_deref().unwrap_or("no handshake"),
        t.cipher_suite.as_deref().unwrap_or("no cipher suite")
    );
    match &t.sni {
        Some(sni) => line.push_str(&format!(", SNI {}", escape(sni))),
        None => line.push_str(", no SNI (an IP address)"),
    }
    if let Some(alpn) = &t.alpn {
        line.push_str(&format!(", ALPN {}", escape(alpn)));
    }
    line.push_str(match (t.verified, t.insecure, t.version.is_some()) {
        (true, _, _) => ", certificate verified",
        (false, true, true) => ", certificate NOT VERIFIED (--insecure)",
        (false, _, _) => ", certificate not verified",
    });
    writeln!(out, "{line}")?;
    for (i, c) in t.chain.iter().enumerate() {
        let role = if i == 0 { "certificate" } else { "issued by" };
        writeln!(out, "    {role:<11} {}", escape(&c.subject))?;
        if i == 0 || c.subject != c.issuer {
            writeln!(out, "      issuer    {}", escape(&c.issuer))?;
        }
        if !c.sans.is_empty() {
            let names: Vec<String> = c.sans.iter().map(|n| escape(n)).collect();
            writeln!(out, "      names     {}", names.join(", "))?;
        }
        if let (Some(nb), Some(na)) = (&c.not_before, &c.not_after) {
            let left = match c.days_to_expiry {
                Some(d) if d < 0 => " (EXPIRED)".to_string(),
                Some(d) => format!(" ({d} days left)"),
                None => String::new(),
            };
            writeln!(out, "      valid     {nb} to {na}{left}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{wrap, write_tls};
    use crate::probe::tls::{summarize, TlsReport};

    #[test]
    fn certificate_text_is_escaped() {
        // A certificate whose subject and name carry terminal control sequences (X.509 allows them in
        // UTF8String and IA5String).
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            rcgen::DnValue::Utf8String("evil\x1b[2J".into()),
        );
        p.subject_alt_names = vec![rcgen::SanType::DnsName(
            rcgen::string::Ia5String::try_from("x\x1b]0;t\x07.example").unwrap(),
        )];
        let der = p.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        let c = summarize(der.der(), 0);
        assert!(
            c.subject.contains('\x1b'),
            "the summary keeps the text as sent: {c:?}"
        );
        let report = TlsReport {
            version: Some("TLS 1.3".into()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: Some("h2\x1b[0m".into()),
            sni: Some("x.example".into()),
            verified: true,
            insecure: false,
            verification_error: None,
            chain: vec![c],
        };
        let mut out = Vec::new();
        write_tls(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert!(
            text.contains("CN=evil\\x1b[2J") && text.contains("x\\x1b]0;t\\x07.example"),
            "{text}"
        );
    }

    #[test]
    fn wraps_on_words() {
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("averylongword x", 4), ["averylongword", "x"]);
        assert!(wrap("", 10).is_empty());
    }
}
