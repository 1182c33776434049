//! The session screen: a two-line summary (agents, outcome, milestones), the tab bar, and the open tab.
use super::{clean, findings, ladder, pairs, timeline, Theme};
use crate::analysis::ice::Role;
use crate::tui::app::{App, Hit, Tab};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn since(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("+{:.0}ms", s * 1e3))
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.session.as_ref() else { return };
    let Some(s) = app.snapshot.session(st.session) else {
        return;
    };
    let [head, tabs, body] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(1), Constraint::Fill(1)]).areas(area);

    let mut l1 = vec![Span::styled(format!(" {} ", s.id), t.header())];
    for (i, a) in s.agents.iter().enumerate() {
        if i > 0 {
            l1.push(Span::raw(" ↔ "));
        }
        l1.push(Span::styled(clean(&a.ufrag).into_owned(), t.header()));
        l1.push(Span::styled(
            format!(" ({})", a.role.map_or("role?", Role::name)),
            t.dim(),
        ));
    }
    l1.push(Span::raw("  "));
    l1.push(Span::styled(
        s.outcome.name().to_uppercase(),
        t.outcome(s.outcome),
    ));
    if let Some(r) = &s.restart_of {
        l1.push(Span::styled(format!("  restart of {r}"), t.warn()));
    }
    let m = &s.milestones;
    let l2 = Line::from(vec![
        Span::styled(" success ", t.dim()),
        Span::raw(since(m.time_to_first_success)),
        Span::styled("  nominated ", t.dim()),
        Span::raw(since(m.time_to_nomination)),
        Span::styled("  DTLS ", t.dim()),
        Span::raw(since(m.time_to_dtls_connected)),
        Span::styled("  media ", t.dim()),
        Span::raw(since(m.time_to_first_media)),
        Span::styled("  — ", t.dim()),
        Span::raw(clean(&s.outcome_reason).into_owned()),
    ]);
    frame.render_widget(Paragraph::new(vec![Line::from(l1), l2]), head);

    let nfind = app.index.sessions.get(st.session).map_or(0, |x| x.findings.len());
    let mut spans = Vec::new();
    let mut x = tabs.x;
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let label = match tab {
            Tab::Findings => format!(" {} {} ({nfind}) ", i + 1, tab.title()),
            Tab::Pairs => format!(" {} {} ({}) ", i + 1, tab.title(), s.pairs.len()),
            _ => format!(" {} {} ", i + 1, tab.title()),
        };
        let w = u16::try_from(Span::raw(label.as_str()).width()).unwrap_or(u16::MAX);
        let style = if *tab == st.tab {
            t.selected().add_modifier(Modifier::BOLD)
        } else {
            t.dim()
        };
        if x < tabs.x + tabs.width {
            let r = Rect {
                x,
                y: tabs.y,
                width: w.min(tabs.x + tabs.width - x),
                height: 1,
            };
            app.hits.borrow_mut().push((r, Hit::Tab(*tab)));
        }
        x = x.saturating_add(w + 1);
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs);

    match st.tab {
        Tab::Pairs => pairs::render(frame, body, app),
        Tab::Timeline => timeline::render(frame, body, app),
        Tab::Ladder => ladder::render(frame, body, app),
        Tab::Findings => findings::render(frame, body, app),
    }
}
