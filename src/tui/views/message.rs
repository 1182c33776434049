//! Message detail: the decoded message as a tree (header facts, then each attribute with its type, length,
//! offset and value; integrity and fingerprint verdicts on their attributes) beside a hex dump of the
//! message in which the selected item's bytes are highlighted — the TLV from its type field to the end of
//! its value (RFC 8489 §14), or the 20-byte header.
use super::{clean, hit_list, Theme};
use crate::analysis::{MessageRecord, RelayVia};
use crate::report::model::attribute_name;
use crate::tui::app::{App, Pane};
use crate::wire::stun::{self, StunMessage, Verdict, HEADER_LEN};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use std::ops::Range;

/// The bytes item `item` covers: 0 is the header, i + 1 attribute i.
pub(crate) fn item_range(msg: &StunMessage, item: usize) -> Range<usize> {
    match item.checked_sub(1).and_then(|i| msg.attributes.get(i)) {
        Some(a) => a.offset as usize..a.value_range().end,
        None => 0..HEADER_LEN,
    }
}

/// Bytes per hex line that fit in `width` columns: offset (6) + 3 per byte + gap + 1 per byte.
pub(crate) fn bytes_per_line(width: u16) -> usize {
    match width {
        w if w >= 72 => 16,
        w if w >= 40 => 8,
        _ => 4,
    }
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Ok(Some(label)) => format!("ok ({})", clean(label)),
        other => other.name().to_string(),
    }
}

fn header_lines(app: &App, m: &MessageRecord, t: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let path = app.model().path(m);
    let transport = path.transport.name();
    lines.push(Line::from(format!(
        "    {} → {} {transport}  {:+.6}s",
        path.src,
        path.dst,
        m.ts.as_secs_f64() - app.index.t0
    )));
    if let Some(r) = &path.relay {
        let via = match r.via {
            RelayVia::SendIndication => "Send indication".to_string(),
            RelayVia::DataIndication => "Data indication".to_string(),
            RelayVia::ChannelData(c) => format!("ChannelData {c:#06x}"),
        };
        lines.push(Line::from(Span::styled(
            format!("    relayed by TURN {} for client {} ({via})", r.server, r.client),
            t.warn(),
        )));
    }
    if m.duplicate {
        lines.push(Line::from(Span::styled(
            "    the same datagram as one seen on the other side of the relay",
            t.dim(),
        )));
    }
    if let Some(msg) = app.model().stun(m) {
        let tx = app
            .index
            .transaction_of(app.model(), app.message.as_ref().map_or(0, |s| s.msg));
        let pos = app
            .message
            .as_ref()
            .and_then(|s| tx.iter().position(|&x| x == s.msg))
            .map_or(0, |p| p + 1);
        lines.push(Line::from(format!(
            "    transaction {} · message {pos} of {} (n/p)",
            msg.transaction_id_hex(),
            tx.len().max(1)
        )));
        let mut facts = format!(
            "    length {} · integrity {} · fingerprint {}",
            msg.length,
            verdict(&msg.integrity),
            verdict(&msg.fingerprint)
        );
        if !msg.rfc5389 {
            facts.push_str(" · classic RFC 3489 (no magic cookie)");
        } else if let Some(d) = msg.dialect.name() {
            facts.push_str(" · dialect ");
            facts.push_str(d);
        }
        let style = if msg.integrity == Verdict::Bad || msg.fingerprint == Verdict::Bad {
            t.bad()
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(facts, style)));
        if let Some(e) = msg.malformed {
            lines.push(Line::from(Span::styled(format!("    malformed: {e}"), t.bad())));
        }
    }
    lines
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.message.as_ref() else { return };
    let Some(m) = app.model().messages.get(st.msg) else {
        return;
    };
    let m = &m;
    let decoded = app.model().stun(m);
    let raw_bytes = app.model().raw_bytes(m);
    let (msg, raw): (Option<&StunMessage>, &[u8]) = (decoded.as_ref(), &raw_bytes);

    let hex_w: u16 = 74;
    let horizontal = area.width >= 120;
    let (tree_area, hex_area) = if horizontal {
        let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(hex_w)]).areas(area);
        (a, b)
    } else {
        let bpl = bytes_per_line(area.width.saturating_sub(2));
        let hex_lines = u16::try_from(raw.len().div_ceil(bpl))
            .unwrap_or(u16::MAX)
            .saturating_add(1);
        let [a, b] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(hex_lines.min(area.height / 2).max(2)),
        ])
        .areas(area);
        (a, b)
    };

    // Tree: (item, line) pairs; item 0 spans the header block.
    let mut tree: Vec<(usize, Line)> = Vec::new();
    let title = super::ladder::label(app.model(), m);
    tree.push((
        0,
        Line::from(vec![
            Span::styled(format!("▾ {title}"), t.header()),
            Span::styled(format!("  frame {}", m.frame), t.dim()),
        ]),
    ));
    for l in header_lines(app, m, &t) {
        tree.push((0, l));
    }
    match msg {
        Some(msg) => {
            let n = msg.attributes.len();
            for (i, a) in msg.attributes.iter().enumerate() {
                let branch = if i + 1 == n { "└" } else { "├" };
                let mut value = clean(&a.value.to_string()).into_owned();
                let mut style = Style::new();
                match a.typ {
                    stun::ATTR_MESSAGE_INTEGRITY | stun::ATTR_MESSAGE_INTEGRITY_SHA256 => {
                        value.push_str(&format!("  [{}]", verdict(&msg.integrity)));
                        if msg.integrity == Verdict::Bad {
                            style = t.bad();
                        }
                    }
                    stun::ATTR_FINGERPRINT => {
                        value.push_str(&format!("  [{}]", verdict(&msg.fingerprint)));
                        if msg.fingerprint == Verdict::Bad {
                            style = t.bad();
                        }
                    }
                    stun::ATTR_ERROR_CODE => style = t.bad(),
                    _ => {}
                }
                tree.push((
                    i + 1,
                    Line::from(vec![
                        Span::raw(format!("  {branch} ")),
                        Span::styled(attribute_name(msg, a), t.header()),
                        Span::styled(format!(" {:#06x} len {} @{}: ", a.typ, a.len, a.offset), t.dim()),
                        Span::styled(value, style),
                    ]),
                ));
            }
        }
        None => tree.push((
            0,
            Line::from(Span::styled(
                "    ChannelData: only its channel and length are kept (payloads are relayed media)",
                t.dim(),
            )),
        )),
    }
    let sel = st.item.selected;
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        " Message (↑/↓ attribute · n/p transaction · ←/→ list) ",
        if st.pane == Pane::First {
            t.header()
        } else {
            t.dim()
        },
    ));
    let inner = block.inner(tree_area);
    frame.render_widget(block, tree_area);
    let h = inner.height as usize;
    app.page.set(h.max(1));
    let sel_line = tree.iter().position(|(i, _)| *i == sel).unwrap_or(0);
    let last_line = tree.iter().rposition(|(i, _)| *i == sel).unwrap_or(0);
    let first = if last_line >= h {
        (last_line + 1 - h).min(sel_line)
    } else {
        0
    };
    let lines: Vec<Line> = tree
        .into_iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(k, (item, line))| {
            // The whole header block is one item; highlight its first line only.
            if item == sel && (item != 0 || k == 0) && st.pane == Pane::First {
                line.patch_style(t.selected())
            } else if item == sel && (item != 0 || k == 0) {
                line.patch_style(Style::new().add_modifier(Modifier::UNDERLINED))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
    // Mouse: a click on an attribute line selects it (rows map to items only for attribute lines).
    if first == 0 {
        let header_len = u16::try_from(1 + header_lines(app, m, &t).len()).unwrap_or(u16::MAX);
        hit_list(
            app,
            Rect {
                y: inner.y.saturating_add(header_len),
                height: inner.height.saturating_sub(header_len),
                ..inner
            },
            1,
        );
    }

    // Hex dump.
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(" {} bytes (Tab: scroll) ", raw.len()),
        if st.pane == Pane::Second {
            t.header()
        } else {
            t.dim()
        },
    ));
    let inner = block.inner(hex_area);
    frame.render_widget(block, hex_area);
    if raw.is_empty() {
        frame.render_widget(Paragraph::new(Span::styled(" no bytes kept", t.dim())), inner);
        return;
    }
    let bpl = bytes_per_line(inner.width);
    let range = msg.map_or(0..0, |msg| item_range(msg, sel));
    let total_lines = raw.len().div_ceil(bpl);
    let h = inner.height as usize;
    let max_first = total_lines.saturating_sub(h);
    let first = match st.hex_scroll.get() {
        usize::MAX => {
            let start_line = range.start / bpl;
            let end_line = range.end.saturating_sub(1) / bpl;
            if end_line < h {
                0
            } else {
                start_line.min(max_first)
            }
        }
        s => {
            let s = s.min(max_first);
            st.hex_scroll.set(s);
            s
        }
    };
    let hl = t.hex_highlight();
    let mut lines = Vec::new();
    for line in first..(first + h).min(total_lines) {
        let start = line * bpl;
        let end = (start + bpl).min(raw.len());
        let mut spans = vec![Span::styled(format!("{start:04x}  "), t.dim())];
        for i in start..start + bpl {
            match raw.get(i) {
                Some(b) if i < end => {
                    let style = if range.contains(&i) { hl } else { Style::new() };
                    spans.push(Span::styled(format!("{b:02x}"), style));
                    // The gap after a byte is highlighted when the next byte is too, so a range reads as one.
                    let gap = if range.contains(&i) && range.contains(&(i + 1)) && i + 1 < end {
                        hl
                    } else {
                        Style::new()
                    };
                    spans.push(Span::styled(" ", gap));
                }
                _ => spans.push(Span::raw("   ")),
            }
        }
        spans.push(Span::raw(" "));
        for (i, &b) in raw.iter().enumerate().take(end).skip(start) {
            let c = if (0x20..0x7f).contains(&b) { b as char } else { '.' };
            let style = if range.contains(&i) { hl } else { t.dim() };
            spans.push(Span::styled(c.to_string(), style));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
