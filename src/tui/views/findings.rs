//! The findings tab: what went wrong (or is worth knowing) about the session and its allocations, each
//! with its explanation and evidence frames; Enter opens the chosen frame's message.
use super::{clean, hit_list, Theme};
use crate::analysis::findings::Severity;
use crate::tui::app::App;
use crate::tui::data::severity_name;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.session.as_ref() else { return };
    let Some(scope) = app.index.sessions.get(st.session) else {
        return;
    };
    if scope.findings.is_empty() {
        frame.render_widget(
            Paragraph::new(" No findings: nothing in this session looked wrong.").style(t.good()),
            area,
        );
        return;
    }
    let list_h = u16::try_from(scope.findings.len())
        .unwrap_or(u16::MAX)
        .saturating_add(1)
        .min(area.height / 2)
        .max(3);
    let [list, detail] = Layout::vertical([Constraint::Length(list_h), Constraint::Fill(1)]).areas(area);
    let h = list.height.saturating_sub(1) as usize;
    app.page.set(h.max(1));
    let (from, to) = st.findings.window(scope.findings.len(), h);
    let sev_style = |s: Severity| match s {
        Severity::Error => t.bad(),
        Severity::Warning => t.warn(),
        Severity::Info => t.dim(),
    };
    let rows: Vec<Row> = (from..to)
        .filter_map(|i| Some((i, app.snapshot.finding(*scope.findings.get(i)?)?)))
        .map(|(i, f)| {
            let mut r = Row::new(vec![
                Span::styled(severity_name(f.severity), sev_style(f.severity)),
                Span::raw(f.code),
                Span::raw(clean(&f.message).into_owned()),
            ]);
            if i == st.findings.selected {
                r = r.style(t.selected());
            }
            r
        })
        .collect();
    frame.render_widget(
        Table::new(
            rows,
            [Constraint::Length(5), Constraint::Length(30), Constraint::Fill(1)],
        )
        .header(Row::new(["sev", "code", "what"]).style(t.header()))
        .column_spacing(1),
        list,
    );
    hit_list(
        app,
        Rect {
            y: list.y + 1,
            height: list.height.saturating_sub(1),
            ..list
        },
        from,
    );

    let Some(f) = scope
        .findings
        .get(st.findings.selected)
        .and_then(|&i| app.snapshot.finding(i))
    else {
        return;
    };
    let mut evidence = vec![Span::styled(" evidence: ", t.dim())];
    if f.frames.is_empty() {
        evidence.push(Span::styled(
            "no frame (inferred from the whole session)",
            t.dim(),
        ));
    }
    let chosen = st.evidence.min(f.frames.len().saturating_sub(1));
    for (i, fr) in f.frames.iter().enumerate() {
        let style = if i == chosen {
            t.selected().add_modifier(Modifier::BOLD)
        } else {
            t.fg(ratatui::style::Color::Cyan)
        };
        evidence.push(Span::styled(format!("#{fr}"), style));
        evidence.push(Span::raw(" "));
    }
    let lines = vec![
        Line::from(vec![
            Span::styled(format!(" {} ", severity_name(f.severity)), sev_style(f.severity)),
            Span::styled(f.code, t.header()),
        ]),
        Line::from(format!(" {}", clean(&f.message))),
        Line::from(""),
        Line::from(evidence),
        Line::from(Span::styled(
            " ←/→ choose a frame · Enter open its message",
            t.dim(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP)),
        detail,
    );
}
