//! The TURN screen: every allocation with its state, and the selected one's lifecycle (401 → success →
//! refreshes → delete or expiry), errors, permissions, channels, traffic per peer and drops.
use super::{hit_list, Theme};
use crate::tui::app::{App, Pane};
use crate::tui::data::{allocation_lines, LineKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let snapshot = &app.snapshot;
    let count = snapshot.allocation_count();
    if count == 0 {
        frame.render_widget(
            Paragraph::new(" No TURN allocation in this capture.").style(t.dim()),
            area,
        );
        return;
    }
    let wide = area.width >= 140;
    let (list_area, detail_area) = if wide {
        let [a, b] = Layout::horizontal([Constraint::Percentage(40), Constraint::Fill(1)]).areas(area);
        (a, b)
    } else {
        let h = u16::try_from(count)
            .unwrap_or(u16::MAX)
            .saturating_add(2)
            .min(area.height / 3)
            .max(4);
        let [a, b] = Layout::vertical([Constraint::Length(h), Constraint::Fill(1)]).areas(area);
        (a, b)
    };
    let focus = |p: Pane| if app.turn.pane == p { t.header() } else { t.dim() };

    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(" Allocations ({count}) "),
        focus(Pane::First),
    ));
    let inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    let h = inner.height.saturating_sub(1) as usize;
    if app.turn.pane == Pane::First {
        app.page.set(h.max(1));
    }
    let (from, to) = app.turn.allocations.window(count, h);
    let rows: Vec<Row> = (from..to)
        .filter_map(|i| {
            let a = snapshot.allocation_brief(i)?;
            let used = app
                .index
                .allocations
                .get(i)
                .and_then(|s| s.session)
                .and_then(|s| snapshot.session_brief(s))
                .map_or("-".to_string(), |s| s.id.clone());
            let mut r = Row::new(vec![
                Span::raw(format!("{} → {}", a.client, a.server)),
                Span::raw(a.transport.name()),
                Span::styled(a.state.name(), t.allocation(a.state)),
                Span::raw(a.relayed.first().map_or_else(|| "-".into(), ToString::to_string)),
                Span::raw(used),
            ]);
            if i == app.turn.allocations.selected {
                r = r.style(t.selected());
            }
            Some(r)
        })
        .collect();
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(40),
                Constraint::Length(3),
                Constraint::Length(8),
                Constraint::Length(22),
                Constraint::Length(4),
            ],
        )
        .header(Row::new(["client → server", "pro", "state", "relayed", "ice"]).style(t.header()))
        .column_spacing(1),
        inner,
    );
    if app.turn.pane == Pane::First {
        hit_list(
            app,
            Rect {
                y: inner.y + 1,
                height: inner.height.saturating_sub(1),
                ..inner
            },
            from,
        );
    }

    let lines = allocation_lines(snapshot, &app.index, app.turn.allocations.selected);
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        " Allocation (Tab: focus · Enter: open the line's frame) ",
        focus(Pane::Second),
    ));
    let inner = block.inner(detail_area);
    frame.render_widget(block, detail_area);
    let h = inner.height as usize;
    if app.turn.pane == Pane::Second {
        app.page.set(h.max(1));
    }
    let (from, to) = app.turn.detail.window(lines.len(), h);
    let text: Vec<Line> = lines[from..to]
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let style = match l.kind {
                LineKind::Heading => t.header(),
                LineKind::Error => t.bad(),
                LineKind::Good => t.good(),
                LineKind::Dim => t.dim(),
                LineKind::Normal => ratatui::style::Style::new(),
            };
            let style = if app.turn.pane == Pane::Second && from + k == app.turn.detail.selected {
                style.patch(t.selected())
            } else {
                style
            };
            Line::from(Span::styled(format!(" {}", l.text), style))
        })
        .collect();
    frame.render_widget(Paragraph::new(text), inner);
    if app.turn.pane == Pane::Second {
        hit_list(app, inner, from);
    }
}
