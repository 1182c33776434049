//! Every STUN/TURN message of the capture, one line each as `iceview read --packets` prints them, for
//! captures (or parts of them) that belong to no session. Only the visible lines are formatted, so a
//! capture of 100k messages scrolls as fast as one of ten.
use super::{clean, hit_list, Theme};
use crate::report::text::packet_line;
use crate::tui::app::App;
use crate::wire::stun::Class;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let [info, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let len = app.messages_len();
    let mut spans = vec![Span::styled(
        format!(" {len} of {} messages", app.model().messages.len()),
        t.dim(),
    )];
    if !app.messages.filter.is_empty() {
        spans.push(Span::styled("  filter: ", t.dim()));
        spans.push(Span::styled(clean(&app.messages.filter).into_owned(), t.warn()));
    }
    spans.push(Span::styled("  (/ filter · Enter detail)", t.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), info);

    let h = body.height as usize;
    app.page.set(h.max(1));
    let (from, to) = app.messages.cursor.window(len, h);
    // Only the visible lines' messages are made (`Snapshot::message`).
    let lines: Vec<Line> = (from..to)
        .filter_map(|pos| app.messages_at(pos).map(|mi| (pos, mi)))
        .filter_map(|(pos, mi)| app.snapshot.message(mi).map(|m| (pos, m)))
        .map(|(pos, m)| {
            // packet_line escapes the wire text it prints (as `--packets` does).
            let text = packet_line(&m, app.index.t0);
            let style = if pos == app.messages.cursor.selected {
                t.selected()
            } else if m.class == Some(Class::Error) {
                t.bad()
            } else if m.relayed {
                t.warn()
            } else {
                ratatui::style::Style::new()
            };
            Line::from(Span::styled(text, style))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), body);
    hit_list(app, body, from);
}
