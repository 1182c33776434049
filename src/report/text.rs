//! Text output for people: a summary of the report, and with `--packets` one line per message (like
//! `tshark -Y stun`). Every string that came from the wire goes through [`escape`] first.
use super::json::SessionItem;
use super::model::{MessageReport, Report};
use crate::analysis::findings::{Finding, FindingSlot};
use crate::analysis::fold::{Folded, Form};
use crate::analysis::Model;
use crate::wire::stun::Class;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Escapes control characters (C0, DEL, C1) so wire text can never drive the terminal: `\x1b` becomes the
/// four characters `\x1b`. Backslashes are doubled so the escape is unambiguous.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xA0).contains(&(c as u32)) || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode bidirectional controls (UAX #9: embeddings, overrides, isolates and marks). Not terminal
/// escapes, but they reorder how the rest of a line reads ("Trojan Source", CVE-2021-42574): a USERNAME
/// with U+202E can make a file name or an address read backwards.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One line per message.
pub fn packet_line(m: &MessageReport, t0: f64) -> String {
    let mut line = format!(
        "{:>6} {:>10.6} {} {} → {}",
        m.frame,
        m.ts - t0,
        if m.transport == crate::net::Transport::Udp {
            "UDP"
        } else {
            "TCP"
        },
        m.src,
        m.dst
    );
    if m.relayed {
        line.push_str(" (relayed)");
    }
    if let Some(ch) = m.channel {
        let _ = write!(line, " ChannelData 0x{ch:04x} len={}", m.length);
        return line;
    }
    let _ = write!(
        line,
        " {} {} {}",
        m.method.as_deref().unwrap_or("?"),
        m.class.map_or("?", Class::name),
        m.transaction_id.as_deref().unwrap_or("")
    );
    for a in m.attributes.iter().flatten() {
        let _ = write!(line, " {}={}", a.name, escape(&a.value.to_string()));
    }
    if let Some(v) = &m.integrity {
        let _ = write!(line, " integrity={}", v.verdict);
    }
    if let Some(d) = m.dialect {
        let _ = write!(line, " dialect={d}");
    }
    if let Some(e) = &m.malformed {
        let _ = write!(line, " MALFORMED({e})");
    }
    line
}

pub fn write_packets(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let t0 = packets_t0(report);
    for m in &report.messages {
        writeln!(out, "{}", packet_line(m, t0))?;
    }
    Ok(())
}

/// [`write_packets`] for a lean report ([`Report::build_lean`]): each line is made from `model`'s stored
/// message as it is written, so `--packets` holds one message at a time, not the whole list. The same
/// lines as [`write_packets`] on the full report (a test compares them).
pub fn write_packets_from(report: &Report, model: &Model, out: &mut dyn Write) -> io::Result<()> {
    let t0 = packets_t0(report);
    let multi = report.multi_input();
    for m in model.messages.iter() {
        writeln!(out, "{}", packet_line(&Report::message_of(model, &m, multi), t0))?;
    }
    Ok(())
}

/// The time `--packets` lines count from: the earliest input's first packet.
fn packets_t0(report: &Report) -> f64 {
    let t0 = report
        .inputs
        .iter()
        .filter_map(|i| i.first_ts)
        .fold(f64::INFINITY, f64::min);
    if t0.is_finite() {
        t0
    } else {
        0.0
    }
}

pub fn write_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    write_summary_with(report, None, out)
}

/// [`write_summary`] for a report whose model folded sessions during the read: their text, rendered then,
/// is read back from `folded` in its place among the sessions.
pub fn write_summary_with(report: &Report, folded: Option<&Folded>, out: &mut dyn Write) -> io::Result<()> {
    for i in &report.inputs {
        let span = match (i.first_ts, i.last_ts) {
            (Some(a), Some(b)) => format!(", {:.3} s", b - a),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}: {} packets, {} bytes ({}){}",
            escape(&i.path),
            i.packets,
            i.bytes,
            i.link_type.unwrap_or("?"),
            span
        )?;
        if i.matched != i.packets {
            writeln!(out, "  {} packets matched the filter", i.matched)?;
        }
        if let Some(w) = &i.warning {
            writeln!(out, "  warning: {}", escape(w))?;
        }
    }
    let p = &report.stats.packets;
    let kinds: Vec<String> = p
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(
        out,
        "carried: {}",
        if kinds.is_empty() {
            "nothing iceview decodes".into()
        } else {
            kinds.join(", ")
        }
    )?;

    let summary = &report.message_summary;
    let by_method = &summary.by_method;
    if !by_method.is_empty() {
        writeln!(
            out,
            "messages: {} ({} relayed through TURN)",
            summary.total, summary.relayed
        )?;
        for (method, classes) in by_method {
            let cs: Vec<String> = classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            writeln!(out, "  {method:<20} {}", cs.join(", "))?;
        }
        if !summary.by_dialect.is_empty() {
            let ds: Vec<String> = summary
                .by_dialect
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            writeln!(out, "  dialects: {}", ds.join(", "))?;
        }
        if summary.malformed > 0 {
            writeln!(
                out,
                "  malformed: {} (decoded and analysed anyway; reasons under decode errors)",
                summary.malformed
            )?;
        }
    }
    match folded {
        Some(folded) => {
            let mut buf = Vec::new();
            for item in SessionItem::merge(&report.sessions, folded) {
                match item {
                    SessionItem::Held(s) => super::ice::write_text(std::slice::from_ref(s), out)?,
                    SessionItem::Folded(f) => {
                        buf.clear();
                        folded.read_session(&f, Form::Text, &mut buf)?;
                        out.write_all(&buf)?;
                    }
                }
            }
        }
        None => super::ice::write_text(&report.sessions, out)?,
    }
    super::turn::write_text_with(&report.turn, folded, out)?;
    write_findings(report, folded, out)?;
    let errors = &report.stats.decode_errors;
    if !errors.is_empty() {
        let es: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(out, "decode errors: {}", es.join(", "))?;
    }
    if report.stats.messages_not_stored > 0 {
        writeln!(
            out,
            "note: {} messages analysed but not listed (store bound reached)",
            report.stats.messages_not_stored
        )?;
    }
    let st = &report.stats;
    for (n, what) in [
        (
            st.transactions_not_tracked,
            "STUN messages not tracked as transactions (transaction table full)",
        ),
        (
            st.sessions_not_tracked,
            "ICE checks past the session bound, not given a session",
        ),
        (
            st.allocations_not_tracked,
            "TURN allocations past the allocation bound, not tracked",
        ),
        (
            st.tcp_streams_evicted,
            "TCP streams dropped from framing (too many open at once)",
        ),
    ] {
        if n > 0 {
            writeln!(out, "note: {n} {what}")?;
        }
    }
    Ok(())
}

fn write_findings(report: &Report, folded: Option<&Folded>, out: &mut dyn Write) -> io::Result<()> {
    if report.finding_order.is_empty() {
        for f in &report.findings {
            write_finding(f, out)?;
        }
        return Ok(());
    }
    let mut buf = Vec::new();
    for slot in &report.finding_order {
        match slot {
            FindingSlot::Held(i) => {
                if let Some(f) = report.findings.get(*i) {
                    write_finding(f, out)?;
                }
            }
            FindingSlot::Folded(i) => {
                buf.clear();
                folded
                    .ok_or_else(|| io::Error::other("a folded finding without what folding kept"))?
                    .read_finding(*i, Form::Text, &mut buf)?;
                out.write_all(&buf)?;
            }
        }
    }
    Ok(())
}

/// A finding's line of the summary.
pub(crate) fn write_finding(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    let sev = match f.severity {
        crate::analysis::findings::Severity::Error => "ERROR",
        crate::analysis::findings::Severity::Warning => "WARNING",
        crate::analysis::findings::Severity::Info => "info",
    };
    write!(out, "{sev}: {} [{}]", escape(&f.message), f.code)?;
    // A finding about the absence of something (media that stopped) has no frame to cite.
    if f.frames.is_empty() {
        return writeln!(out);
    }
    let frames: Vec<String> = f.frames.iter().map(u64::to_string).collect();
    writeln!(out, " (frames {})", frames.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_cites_its_frames_and_only_when_it_has_some() {
        let mut f = Finding {
            severity: crate::analysis::findings::Severity::Warning,
            code: "ice.media-stopped",
            message: "Media on the selected pair stopped 33 s before the capture ended.".into(),
            subject: crate::analysis::findings::Subject::Session { id: "s1".into() },
            frames: Vec::new(),
        };
        let line = |f: &Finding| {
            let mut out = Vec::new();
            write_finding(f, &mut out).map(|()| String::from_utf8_lossy(&out).into_owned())
        };
        assert_eq!(
            line(&f).ok().as_deref(),
            Some("WARNING: Media on the selected pair stopped 33 s before the capture ended. [ice.media-stopped]\n")
        );
        f.frames = vec![7, 9];
        assert_eq!(
            line(&f).ok().as_deref(),
            Some(
                "WARNING: Media on the selected pair stopped 33 s before the capture ended. [ice.media-stopped] \
                 (frames 7, 9)\n"
            )
        );
    }

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(escape("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("tab\there\n"), "tab\\x09here\\x0a");
        assert_eq!(escape("\u{9b}x"), "\\u{9b}x");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("Coturn-4.6.1 'Gorst' ✓"), "Coturn-4.6.1 'Gorst' ✓");
    }
}
