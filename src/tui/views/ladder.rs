//! The ladder (sngrep's call flow): a lifeline per transport address — agent A's on the left, the TURN
//! server(s) in the middle, agent B's on the right — and one arrow per message in capture order, labelled
//! with method and class (or error code). A message relayed by TURN is drawn from the TURN client through
//! the server (◆) to the peer, or back.
use super::{clean, fit, hit_list, Theme};
use crate::analysis::{Body, MessageRecord, Model, RelayVia};
use crate::tui::app::App;
use crate::tui::data::{Column, LadderRow, Side};
use crate::wire::stun::Class;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Frame number, time and label in front of the diagram.
const FRAME_W: usize = 5;
const TIME_W: usize = 7;
const LABEL_W: usize = 21;
/// On wide terminals the label column fits the longest (`create-permission success (dup)`).
const LABEL_W_WIDE: usize = 31;
const WIDE: u16 = 120;
/// Narrowest spacing between lifelines that still shows an arrow head and a shaft (`│─▶│`).
const MIN_SPACING: usize = 4;

/// `binding request`, `allocate 401`, `ChannelData 0x4003`.
pub(crate) fn label(model: &Model, m: &MessageRecord) -> String {
    match &m.body {
        // An error response's code is read by decoding it again; the rest is in the record.
        Body::Stun { method, class, .. } => {
            let code = match class {
                Class::Error => model.stun(m).and_then(|msg| msg.error_code()),
                _ => None,
            };
            match code {
                Some(code) => format!("{method} {code}"),
                None => format!("{method} {}", class.name()),
            }
        }
        Body::ChannelData { channel, length, .. } => format!("ChannelData {channel:#06x} {length}B"),
    }
}

fn arrow_color(m: &MessageRecord) -> Color {
    match &m.body {
        Body::Stun { class, .. } => match class {
            Class::Request => Color::White,
            Class::Success => Color::Green,
            Class::Error => Color::Red,
            Class::Indication => Color::Cyan,
        },
        Body::ChannelData { .. } => Color::DarkGray,
    }
}

/// Draws one arrow into `cells` (lifelines already drawn): returns nothing, edits in place.
fn draw_arrow(cells: &mut [char], x: &dyn Fn(usize) -> Option<usize>, r: &LadderRow, first_col: usize) {
    let w = cells.len();
    // Columns scrolled off to the left sit at the left edge, those off to the right at the right edge.
    let pos = |c: usize| -> usize {
        if c < first_col {
            0
        } else {
            x(c).unwrap_or(w.saturating_sub(1))
        }
    };
    let (a, b) = (pos(r.from), pos(r.to));
    if a == b {
        if let Some(cell) = cells.get_mut(a + 1) {
            *cell = '↺';
        }
        return;
    }
    let (lo, hi) = (a.min(b), a.max(b));
    for cell in cells.iter_mut().take(hi).skip(lo + 1) {
        *cell = '─';
    }
    if b > a {
        cells[b - 1] = '▶';
    } else if let Some(cell) = cells.get_mut(b + 1) {
        *cell = '◀';
    }
    if let Some(v) = r.via.filter(|v| *v >= first_col).and_then(x) {
        if v > lo && v < hi {
            cells[v] = '◆';
        }
    }
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.session.as_ref() else { return };
    let Some(ladder) = app.ladder() else {
        return;
    };
    let model = app.model();
    let cols: &[Column] = &ladder.columns;
    let label_w = if area.width >= WIDE { LABEL_W_WIDE } else { LABEL_W };
    let prefix = FRAME_W + 1 + TIME_W + 1 + label_w + 1;
    let diagram_w = (area.width as usize).saturating_sub(prefix);

    let first_col = st.ladder_column.min(cols.len().saturating_sub(1));
    let shown = cols.len() - first_col.min(cols.len());
    let spacing = diagram_w
        .checked_div(shown)
        .map_or(diagram_w, |s| s.max(MIN_SPACING));
    let visible = diagram_w.checked_div(spacing).map_or(0, |v| v.min(shown));
    let x = |c: usize| -> Option<usize> {
        (c >= first_col && c < first_col + visible).then(|| (c - first_col) * spacing + spacing / 2)
    };

    // Footer: the selected message's path, then what each tag stands for.
    let legend: Vec<String> = cols.iter().map(|c| format!("{} {}", c.tag, c.detail)).collect();
    let legend_text = legend.join("  ");
    let legend_lines =
        u16::try_from(((Span::raw(legend_text.as_str()).width() / area.width.max(1) as usize) + 1).min(4))
            .unwrap_or(4);
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1 + legend_lines),
    ])
    .areas(area);

    // Header: tags over the lifelines; addresses too when there is room.
    let mut tags = vec![' '; diagram_w];
    let mut addrs = vec![' '; diagram_w];
    for (c, col) in cols.iter().enumerate() {
        let Some(cx) = x(c) else { continue };
        let put = |buf: &mut Vec<char>, text: &str| {
            let n = text.chars().count();
            let start = cx.saturating_sub(n / 2);
            for (j, ch) in text.chars().enumerate() {
                if let Some(cell) = buf.get_mut(start + j) {
                    *cell = ch;
                }
            }
        };
        put(&mut tags, &col.tag);
        if spacing > 8 {
            let a = col.address.to_string();
            let a = if a.chars().count() >= spacing {
                format!(":{}", col.address.port())
            } else {
                a
            };
            put(&mut addrs, &a);
        }
    }
    if first_col + visible < cols.len() {
        if let Some(last) = tags.last_mut() {
            *last = '▶';
        }
    }
    if first_col > 0 {
        if let Some(first) = tags.first_mut() {
            *first = '◀';
        }
    }
    let side_hint = format!(
        "{:<w$}",
        format!("{:>FRAME_W$} {:<TIME_W$} message", "frame", "time"),
        w = prefix
    );
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(side_hint, t.header()),
                Span::styled(tags.iter().collect::<String>(), t.header()),
            ]),
            Line::from(vec![
                Span::raw(" ".repeat(prefix)),
                Span::styled(addrs.iter().collect::<String>(), t.dim()),
            ]),
        ]),
        head,
    );

    // Where the listing was bounded (live capture's `--max-messages`, or a read with no temporary file:
    // `MAX_STORED_MESSAGES`), a session still active after the last message listed has arrows missing at
    // the end, or none at all; a line under the last row says so.
    let unlisted = app.report().stats.messages_not_stored;
    let last_listed = app.index.last_listed;
    let cut = match (app.snapshot.session(st.session), last_listed) {
        (Some(s), Some((ts, _))) => unlisted > 0 && s.last_ts > ts,
        _ => false,
    };

    // Rows.
    let len = app.ladder_len();
    let h = (body.height as usize).saturating_sub(usize::from(cut));
    app.page.set(h.max(1));
    let (from, to) = st.ladder.window(len, h);
    let mut lines = Vec::with_capacity(to - from);
    for pos in from..to {
        let Some(ri) = app.ladder_row_at(pos) else {
            continue;
        };
        let Some(r) = ladder.rows.get(ri) else { continue };
        let Some(m) = model.messages.get(r.msg) else {
            continue;
        };
        let m = &m;
        let mut cells = vec![' '; diagram_w];
        for c in first_col..first_col + visible {
            if let Some(cx) = x(c) {
                cells[cx] = '│';
            }
        }
        draw_arrow(&mut cells, &x, r, first_col);
        let selected = pos == st.ladder.selected;
        let mut lab = label(model, m);
        if m.duplicate {
            lab.push_str(" (dup)");
        }
        let base = if selected { t.selected() } else { Style::new() };
        let text_style = if m.duplicate { base.patch(t.dim()) } else { base };
        let arrow_style = base.patch(t.fg(arrow_color(m))).add_modifier(if selected {
            Modifier::BOLD
        } else {
            Modifier::empty()
        });
        // Lifelines dim, arrows in the message's colour.
        let mut spans = vec![
            Span::styled(format!("{:>w$} ", m.frame, w = FRAME_W), base.patch(t.dim())),
            Span::styled(
                fit(&format!("{:+.3}", m.ts.as_secs_f64() - app.index.t0), TIME_W),
                base.patch(t.dim()),
            ),
            Span::styled(" ", base),
            Span::styled(fit(&lab, label_w), text_style.patch(t.fg(arrow_color(m)))),
            Span::styled(" ", base),
        ];
        let mut run = String::new();
        let mut run_is_line = true;
        for ch in cells {
            let is_line = ch == '│' || ch == ' ';
            if is_line != run_is_line && !run.is_empty() {
                let style = if run_is_line {
                    base.patch(t.dim())
                } else {
                    arrow_style
                };
                spans.push(Span::styled(std::mem::take(&mut run), style));
            }
            run_is_line = is_line;
            run.push(ch);
        }
        let style = if run_is_line {
            base.patch(t.dim())
        } else {
            arrow_style
        };
        spans.push(Span::styled(run, style));
        lines.push(Line::from(spans));
    }
    if cut && to == len {
        let after = match last_listed {
            Some((_, frame)) if len > 0 => format!(" after frame {frame}"),
            _ => String::new(),
        };
        lines.push(Line::from(Span::styled(
            format!(
                " not listed{after}: the listing stopped at {} messages ({unlisted} more not stored)",
                model.messages.len()
            ),
            t.warn(),
        )));
    } else if len == 0 {
        lines.push(Line::from(Span::styled(" no messages for this session", t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), body);
    hit_list(app, body, from);

    // The selected message's path in words.
    let path = app
        .ladder_row_at(st.ladder.selected)
        .and_then(|ri| ladder.rows.get(ri))
        .and_then(|r| model.messages.get(r.msg).map(|m| (r, m)))
        .map(|(r, m)| {
            let m = &m;
            let name = |c: usize| {
                cols.get(c)
                    .map_or("?".into(), |c| format!("{} {}", c.tag, c.detail))
            };
            let mut s = format!(" {} → {}", name(r.from), name(r.to));
            let path = model.path(m);
            if let Some(relay) = &path.relay {
                let via = match relay.via {
                    RelayVia::SendIndication => "Send indication".to_string(),
                    RelayVia::DataIndication => "Data indication".to_string(),
                    RelayVia::ChannelData(c) => format!("ChannelData {c:#06x}"),
                };
                s.push_str(&format!(
                    "  relayed by {} ({via}); on the peer leg {} → {}",
                    relay.server, path.src, path.dst
                ));
            }
            if m.duplicate {
                s.push_str("  (the same datagram seen on the other side of the relay)");
            }
            s
        })
        .unwrap_or_default();
    let mut foot_lines = vec![Line::from(Span::styled(path, t.warn()))];
    let side_style = |s: Side| match s {
        Side::A => t.fg(Color::Cyan),
        Side::Middle => t.fg(Color::Yellow),
        Side::B => t.fg(Color::Magenta),
    };
    let mut legend_spans = vec![Span::raw(" ")];
    for c in cols {
        legend_spans.push(Span::styled(
            c.tag.clone(),
            side_style(c.side).add_modifier(Modifier::BOLD),
        ));
        legend_spans.push(Span::styled(format!(" {}  ", clean(&c.detail)), t.dim()));
    }
    let mut hint = String::from("c: media ChannelData ");
    hint.push_str(if st.ladder_media { "shown" } else { "hidden" });
    legend_spans.push(Span::styled(hint, t.dim()));
    foot_lines.push(Line::from(legend_spans));
    frame.render_widget(Paragraph::new(foot_lines).wrap(Wrap { trim: false }), foot);
}
