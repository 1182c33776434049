//! The TURN screen's detail of one allocation, as lines of text: who and where, lifecycle, errors,
//! permissions, channels, traffic per peer, what the server dropped, RFC 6062 connections and findings.
//! Each line keeps the frame it comes from, for Enter, and a kind, for colour.
//!
//! Text from the wire is escaped here; styles are `views::turn`'s, and the allocation's facts the
//! report's.
use super::{severity_name, Index, Snapshot};
use crate::analysis::findings::Severity;
use crate::analysis::turn::AllocationState;

/// What a detail line of the TURN view is about (for colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineKind {
    Heading,
    Normal,
    Error,
    Good,
    Dim,
}

/// One line of an allocation's detail: text (wire text already escaped) and the frame it points at.
#[derive(Clone, Debug)]
pub struct DetailLine {
    pub(crate) text: String,
    pub frame: Option<u64>,
    pub(crate) kind: LineKind,
}

fn line(text: String, frame: Option<u64>, kind: LineKind) -> DetailLine {
    DetailLine { text, frame, kind }
}

/// The TURN view's detail for one allocation: identity, lifecycle, errors, permissions, channels, traffic
/// per peer, drops, and its findings.
pub fn allocation_lines(snapshot: &Snapshot, index: &Index, ai: usize) -> Vec<DetailLine> {
    use crate::report::text::escape;
    // Whole: a folded allocation is read back now (then kept).
    let Some(a) = snapshot.allocation(ai) else {
        return match snapshot.allocation_brief(ai) {
            Some(b) => vec![line(
                format!(
                    "{} → {}: could not be read back from the temporary file",
                    b.client, b.server
                ),
                None,
                LineKind::Error,
            )],
            None => Vec::new(),
        };
    };
    let t = |ts: f64| format!("{:+.3}s", ts - index.t0);
    let opt = |s: &Option<String>| {
        s.as_deref()
            .map_or("(none)".to_string(), |s| format!("\"{}\"", escape(s)))
    };
    let mut out = Vec::new();
    let transport = a.transport.name();
    out.push(line(
        format!(
            "{} → {} {transport}  {}",
            a.client,
            a.server,
            a.state.name().to_uppercase()
        ),
        a.created_frame,
        match a.state {
            AllocationState::Failed | AllocationState::Expired => LineKind::Error,
            AllocationState::Active | AllocationState::Deleted => LineKind::Heading,
        },
    ));
    out.push(line(
        format!(
            "user {} realm {}  software {}",
            opt(&a.username),
            opt(&a.realm),
            opt(&a.software)
        ),
        None,
        LineKind::Normal,
    ));
    if !a.relayed.is_empty() || a.mapped.is_some() {
        out.push(line(
            format!(
                "relayed {}  mapped {}  relays {}",
                if a.relayed.is_empty() {
                    "-".to_string()
                } else {
                    a.relayed.join(", ")
                },
                a.mapped.as_deref().unwrap_or("-"),
                a.requested_transport.as_deref().unwrap_or("?")
            ),
            None,
            LineKind::Normal,
        ));
    }
    if let Some(l) = a.lifetime {
        out.push(line(
            format!("lifetime {l} s, {} refresh(es)", a.refreshes),
            None,
            LineKind::Normal,
        ));
    }
    if let Some(s) = index
        .allocations
        .get(ai)
        .and_then(|s| s.session)
        .and_then(|si| snapshot.session_brief(si))
    {
        out.push(line(
            format!("used by ICE session {}", s.id),
            None,
            LineKind::Good,
        ));
    }
    out.push(line("Lifecycle".into(), None, LineKind::Heading));
    for e in &a.events {
        let kind =
            if e.what.contains("failed") || e.what.contains("rejected") || e.what.starts_with("expired") {
                LineKind::Error
            } else {
                LineKind::Normal
            };
        let frame = e.frame.map_or("      ".to_string(), |f| format!("#{f:<5}"));
        out.push(line(
            format!("  {} {frame} {}", t(e.ts), escape(&e.what)),
            e.frame,
            kind,
        ));
    }
    if a.events_not_kept > 0 {
        out.push(line(
            format!("  ({} more events not kept)", a.events_not_kept),
            None,
            LineKind::Dim,
        ));
    }
    if !a.errors.is_empty() {
        out.push(line("Errors".into(), None, LineKind::Heading));
        for e in &a.errors {
            out.push(line(
                format!(
                    "  {} #{:<5} {} {} {}: {}",
                    t(e.ts),
                    e.frame,
                    e.method,
                    e.code,
                    escape(&e.reason),
                    e.meaning
                ),
                Some(e.frame),
                LineKind::Error,
            ));
        }
    }
    if !a.permissions.is_empty() {
        out.push(line("Permissions".into(), None, LineKind::Heading));
        for p in &a.permissions {
            let state = match (p.installed_at, p.failed) {
                (_, Some(code)) => format!("failed {code}"),
                (Some(at), None) => format!("installed {}", t(at)),
                (None, None) => "never granted".into(),
            };
            out.push(line(
                format!(
                    "  {:<16} {state}, refreshed {}×{}{}",
                    p.peer,
                    p.refreshed,
                    if p.by_channel_bind { ", by ChannelBind" } else { "" },
                    p.expires_at
                        .map_or(String::new(), |e| format!(", expires {}", t(e)))
                ),
                p.frames.first().copied(),
                if p.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if !a.channels.is_empty() {
        out.push(line("Channels".into(), None, LineKind::Heading));
        for c in &a.channels {
            let state = match (c.bound_at, c.failed) {
                (_, Some(code)) => format!("failed {code}"),
                (Some(at), None) => format!("bound {}", t(at)),
                (None, None) => "not bound".into(),
            };
            out.push(line(
                format!(
                    "  {:#06x} → {:<22} {state}, refreshed {}×",
                    c.number, c.peer, c.refreshed
                ),
                c.frames.first().copied(),
                if c.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if !a.traffic.is_empty() {
        out.push(line("Traffic per peer".into(), None, LineKind::Heading));
        for p in &a.traffic {
            out.push(line(
                format!(
                    "  {:<22} → {} send + {} chan ({} B)   ← {} data + {} chan ({} B)",
                    p.peer,
                    p.send_indications,
                    p.channel_data_to_peer,
                    p.bytes_to_peer,
                    p.data_indications,
                    p.channel_data_from_peer,
                    p.bytes_from_peer
                ),
                None,
                LineKind::Normal,
            ));
        }
        if a.totals.unknown_channel_data > 0 {
            out.push(line(
                format!(
                    "  {} ChannelData on channels whose binding was not captured",
                    a.totals.unknown_channel_data
                ),
                None,
                LineKind::Dim,
            ));
        }
    }
    let d = &a.dropped;
    let drops = [
        ("no permission", &d.no_permission),
        ("permission expired", &d.permission_expired),
        ("unbound channel", &d.unbound_channel),
        ("channel expired", &d.channel_expired),
        ("after expiry", &d.after_expiry),
    ];
    if drops.iter().any(|(_, c)| c.packets > 0) {
        out.push(line("Dropped by the server".into(), None, LineKind::Heading));
        for (what, c) in drops.iter().filter(|(_, c)| c.packets > 0) {
            out.push(line(
                format!("  {what}: {} packets, {} bytes", c.packets, c.bytes),
                c.frames.first().copied(),
                LineKind::Error,
            ));
        }
    }
    if !a.tcp_connections.is_empty() {
        out.push(line(
            "TCP peer connections (RFC 6062)".into(),
            None,
            LineKind::Heading,
        ));
        for c in &a.tcp_connections {
            out.push(line(
                format!(
                    "  #{} {} by {}{}",
                    c.connection_id,
                    c.peer.as_deref().unwrap_or("?"),
                    c.initiated_by.name(),
                    c.data_connection
                        .as_ref()
                        .map_or(" (no ConnectionBind)".to_string(), |d| format!(", data via {d}"))
                ),
                Some(c.frame),
                if c.failed.is_some() {
                    LineKind::Error
                } else {
                    LineKind::Normal
                },
            ));
        }
    }
    if let Some(scope) = index.allocations.get(ai) {
        if !scope.findings.is_empty() {
            out.push(line("Findings".into(), None, LineKind::Heading));
            for f in scope.findings.iter().filter_map(|&fi| snapshot.finding(fi)) {
                out.push(line(
                    format!(
                        "  {} [{}] {}",
                        severity_name(f.severity),
                        f.code,
                        escape(&f.message)
                    ),
                    f.frames.first().copied(),
                    match f.severity {
                        Severity::Error => LineKind::Error,
                        _ => LineKind::Normal,
                    },
                ));
            }
        }
    }
    out
}
