//! The connectivity-check timeline: a time axis and one lane per candidate pair, a glyph per event
//! (check, retransmission, consent check, success, error, timeout, nomination, DTLS, media), the selected
//! pair's lane drawn double from the moment it was selected, and a cursor that walks the events.
//!
//! Several events in one column show the most telling one (an error over a success over a check); zoom in
//! to separate them.
use super::{clean, Theme};
use crate::analysis::sessions::{SessionReport, TimelineEvent, TimelineKind};
use crate::tui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Width of the lane labels (`#12 prflx↔relay*`).
const LABEL: u16 = 18;

/// The glyph, its precedence when events share a column, and its colour.
pub(crate) fn glyph(s: &SessionReport, e: &TimelineEvent, consent: bool) -> (char, u8, Color) {
    let from_a = s.agents.first().is_some_and(|a| *a.ufrag == *e.from);
    match e.event {
        TimelineKind::Timeout => ('T', 9, Color::Red),
        TimelineKind::Error => ('E', 9, Color::Red),
        TimelineKind::Nominated => ('N', 8, Color::Cyan),
        TimelineKind::Success => ('✓', 7, Color::Green),
        TimelineKind::DtlsConnected => ('d', 6, Color::Magenta),
        TimelineKind::DtlsStart => ('D', 5, Color::Magenta),
        TimelineKind::MediaStart => ('M', 5, Color::Magenta),
        TimelineKind::Check if consent => ('c', 2, Color::DarkGray),
        TimelineKind::Check if from_a => ('>', 4, Color::White),
        TimelineKind::Check => ('<', 4, Color::White),
        TimelineKind::Retransmission => ('r', 3, Color::Yellow),
        TimelineKind::RoleChange => ('^', 1, Color::Yellow),
    }
}

pub(crate) const LEGEND: &str =
    "> check A→B  < check B→A  r retransmit  c consent  ✓ success  E error  T timeout  N nominated  ═ selected  D DTLS  d DTLS up  M media";

/// A tick step of 1, 2 or 5 × 10^k seconds giving at least `min_cols` columns between ticks.
fn tick_step(span: f64, width: usize, min_cols: usize) -> f64 {
    let want = span * min_cols as f64 / width.max(1) as f64;
    let mut step = 1e-6;
    while step < want {
        step *= 10.0;
    }
    for f in [0.2, 0.5] {
        if step * f >= want {
            return step * f;
        }
    }
    step
}

fn tick_label(v: f64, step: f64) -> String {
    if step < 1e-3 {
        format!("{:+.0}µs", v * 1e6)
    } else if step < 1.0 {
        format!("{:+.0}ms", v * 1e3)
    } else {
        format!("{v:+.0}s")
    }
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.session.as_ref() else { return };
    let Some(s) = app.snapshot.session(st.session) else {
        return;
    };
    let consent = app.index.consent(st.session, s);
    let legend_h = if area.width as usize >= LEGEND.chars().count() + 2 {
        1
    } else {
        2
    };
    let [legend, axis, lanes_area, info] = Layout::vertical([
        Constraint::Length(legend_h),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(2),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(LEGEND, t.dim())).wrap(Wrap { trim: true }),
        legend,
    );
    if s.timeline.is_empty() {
        frame.render_widget(
            Paragraph::new(" no events in this session").style(t.dim()),
            lanes_area,
        );
        return;
    }

    let tl = &st.timeline;
    let plot_w = area.width.saturating_sub(LABEL + 1) as usize;
    if plot_w == 0 {
        return;
    }
    let origin = s.timeline.first().map_or(s.first_ts, |e| e.ts);
    // `0 <= x < plot_w`, so the float-to-integer casts below are exact in range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let col_of = |ts: f64| -> Option<usize> {
        let x = (ts - tl.start) / tl.span * plot_w as f64;
        (x >= 0.0 && x < plot_w as f64).then_some(x as usize)
    };

    // Axis: ticks at round offsets from the first event.
    let step = tick_step(tl.span, plot_w, 12);
    let mut axis_cells: Vec<char> = vec![' '; plot_w];
    #[allow(clippy::cast_possible_truncation)] // a float-to-integer `as` saturates; a tick count is small
    let first_tick = ((tl.start - origin) / step).ceil() as i64;
    let mut k = first_tick;
    loop {
        let v = k as f64 * step;
        let Some(c) = col_of(origin + v) else { break };
        let label = tick_label(v, step);
        axis_cells[c] = '┬';
        for (j, ch) in label.chars().enumerate() {
            if let Some(cell) = axis_cells.get_mut(c + 1 + j) {
                *cell = ch;
            }
        }
        k += 1;
        if k - first_tick > 200 {
            break;
        }
    }
    let cursor_event = s.timeline.get(tl.event);
    let cursor_col = cursor_event.and_then(|e| col_of(e.ts));
    let mut axis_spans = vec![Span::styled(
        format!(
            "{:<w$}",
            format!("{} span", tick_label(tl.span, step).trim_start_matches('+')),
            w = LABEL as usize + 1
        ),
        t.dim(),
    )];
    let axis_line: String = axis_cells.iter().collect();
    match cursor_col {
        Some(c) => {
            let before: String = axis_cells[..c].iter().collect();
            let after: String = axis_cells[c + 1..].iter().collect();
            axis_spans.push(Span::styled(before, t.dim()));
            axis_spans.push(Span::styled("▼", t.warn().add_modifier(Modifier::BOLD)));
            axis_spans.push(Span::styled(after, t.dim()));
        }
        None => axis_spans.push(Span::styled(axis_line, t.dim())),
    }
    frame.render_widget(Paragraph::new(Line::from(axis_spans)), axis);

    // Lanes: keep the selected one in view.
    let h = lanes_area.height as usize;
    let n = s.pairs.len();
    let first_lane = if tl.lane >= h { tl.lane + 1 - h } else { 0 }.min(n.saturating_sub(h.max(1)));
    let mut lines = Vec::new();
    for lane in first_lane..(first_lane + h).min(n) {
        let p = &s.pairs[lane];
        let since = p
            .nominated_ts
            .or(p.media.first_dtls_ts)
            .or(p.media.first_rtp_ts)
            .filter(|_| p.selected);
        let mut cells: Vec<(char, u8, Style)> = (0..plot_w)
            .map(|c| {
                let ts = tl.start + (c as f64 + 0.5) / plot_w as f64 * tl.span;
                match since {
                    Some(from) if ts >= from => ('═', 0, t.good()),
                    _ => ('·', 0, t.dim()),
                }
            })
            .collect();
        for (i, e) in s.timeline.iter().enumerate().filter(|(_, e)| e.pair == lane) {
            let Some(c) = col_of(e.ts) else { continue };
            let (g, prio, color) = glyph(s, e, consent.get(i).copied().unwrap_or(false));
            if prio >= cells[c].1 || cells[c].0 == '·' || cells[c].0 == '═' {
                cells[c] = (g, prio.max(1), t.fg(color).add_modifier(Modifier::BOLD));
            }
        }
        if lane == tl.lane {
            if let (Some(c), Some(e)) = (cursor_col, cursor_event) {
                if e.pair == lane {
                    cells[c].2 = t.selected().add_modifier(Modifier::BOLD);
                }
            }
        }
        let label = format!(
            "#{:<2} {}↔{}{}",
            p.index,
            p.a_type.name(),
            p.b_type.name(),
            if p.selected { "*" } else { "" }
        );
        let label_style = if lane == tl.lane {
            t.selected()
        } else if p.selected {
            t.good()
        } else {
            Style::new()
        };
        let mut spans = vec![
            Span::styled(super::fit(&label, LABEL as usize), label_style),
            Span::raw(" "),
        ];
        // Merge runs of one style into one span.
        let mut run = String::new();
        let mut run_style = cells.first().map_or(Style::new(), |c| c.2);
        for (g, _, style) in cells {
            if style != run_style {
                spans.push(Span::styled(std::mem::take(&mut run), run_style));
                run_style = style;
            }
            run.push(g);
        }
        spans.push(Span::styled(run, run_style));
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), lanes_area);

    // The event under the cursor.
    let info_lines = match cursor_event {
        Some(e) => {
            let p = s.pairs.get(e.pair);
            let mut what = format!(
                " {}/{}  {:+.1}ms  frame {}  #{} {}  {} from {}",
                tl.event + 1,
                s.timeline.len(),
                (e.ts - origin) * 1e3,
                e.frame,
                e.pair,
                p.map_or(String::new(), |p| format!(
                    "{}↔{}",
                    p.a_type.name(),
                    p.b_type.name()
                )),
                e.event.name(),
                clean(&e.from)
            );
            if consent.get(tl.event).copied().unwrap_or(false) {
                what.push_str(" (consent)");
            }
            if e.use_candidate {
                what.push_str(" USE-CANDIDATE");
            }
            if let Some(c) = e.error_code {
                what.push_str(&format!(" code {c}"));
            }
            if let Some(r) = e.rtt {
                what.push_str(&format!(" rtt {}", super::ms(Some(r))));
            }
            if let Some(tx) = &e.transaction_id {
                what.push_str(&format!(" tx {tx}"));
            }
            vec![
                Line::from(Span::styled(what, t.warn())),
                Line::from(Span::styled(
                    " ←/→ event  ↑/↓ lane  +/- zoom  H/L pan  0 fit  Enter message",
                    t.dim(),
                )),
            ]
        }
        None => vec![],
    };
    frame.render_widget(Paragraph::new(info_lines), info);
}
