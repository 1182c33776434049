//! The home screen: one row per ICE session and per TURN allocation no session used, like sngrep's call
//! list. Wide terminals get more columns; 80 columns keep the ones that answer "did it connect, how".
use super::{clean, hit_list, ms, rel, Theme};
use crate::tui::app::{App, SortKey};
use crate::tui::data::{RowRef, RowSummary, SeverityCounts};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// Terminal width from which the id, addresses and check counts get columns of their own: the fixed
/// columns take 100, the addresses at least 30.
const WIDE: u16 = 130;

struct Col {
    title: &'static str,
    width: Constraint,
    sort: Option<SortKey>,
}

fn findings_cell(c: SeverityCounts) -> String {
    let mut parts = Vec::new();
    if c.errors > 0 {
        parts.push(format!("{}E", c.errors));
    }
    if c.warnings > 0 {
        parts.push(format!("{}W", c.warnings));
    }
    if c.infos > 0 {
        parts.push(format!("{}I", c.infos));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    // Findings about the capture as a whole (no checks at all, ICMP unreachable) belong to no row.
    let capture_findings = &app.index.capture_findings;
    let capture_h = if capture_findings.is_empty() {
        0
    } else {
        u16::try_from(capture_findings.len())
            .unwrap_or(u16::MAX)
            .saturating_add(1)
            .min(area.height / 4)
            .max(2)
    };
    let [info, table_area, capture, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(capture_h),
        Constraint::Length(2),
    ])
    .areas(area);
    let wide = area.width >= WIDE;

    let mut info_spans = vec![
        Span::styled(" sort: ", t.dim()),
        Span::raw(format!(
            "{} {}",
            app.home.sort.name(),
            if app.home.descending { "▼" } else { "▲" }
        )),
    ];
    if !app.home.filter.is_empty() {
        info_spans.push(Span::styled("  filter: ", t.dim()));
        info_spans.push(Span::styled(clean(&app.home.filter).into_owned(), t.warn()));
    }
    if !app.home.marked.is_empty() {
        info_spans.push(Span::styled(
            format!("  {} marked", app.home.marked.len()),
            t.warn(),
        ));
    }
    info_spans.push(Span::styled(
        format!("  {}/{} rows", app.home.visible.len(), app.index.rows.len()),
        t.dim(),
    ));
    frame.render_widget(Paragraph::new(Line::from(info_spans)), info);

    let mut cols = vec![
        Col {
            title: " ",
            width: Constraint::Length(1),
            sort: None,
        },
        Col {
            title: "start",
            width: Constraint::Length(8),
            sort: Some(SortKey::Start),
        },
    ];
    if wide {
        cols.push(Col {
            title: "id",
            width: Constraint::Length(4),
            sort: None,
        });
    }
    cols.push(Col {
        title: "agents",
        width: Constraint::Length(if wide { 24 } else { 18 }),
        sort: Some(SortKey::Agents),
    });
    if wide {
        cols.push(Col {
            title: "addresses",
            // The addresses take what is left (the other widths are what their contents need).
            width: Constraint::Fill(1),
            sort: None,
        });
    }
    cols.extend([
        Col {
            title: "outcome",
            width: Constraint::Length(10),
            sort: Some(SortKey::Outcome),
        },
        Col {
            title: "pair",
            width: Constraint::Length(11),
            sort: Some(SortKey::Pair),
        },
        Col {
            title: "rtt",
            width: Constraint::Length(6),
            sort: Some(SortKey::Rtt),
        },
    ]);
    // Pairs checked and checks sent; wide terminals also say how many pairs succeeded.
    if wide {
        cols.push(Col {
            title: "pairs",
            width: Constraint::Length(9),
            sort: Some(SortKey::Pairs),
        });
        cols.push(Col {
            title: "checks",
            width: Constraint::Length(6),
            sort: None,
        });
    } else {
        cols.push(Col {
            title: "pair/chk",
            width: Constraint::Length(8),
            sort: Some(SortKey::Pairs),
        });
    }
    cols.push(Col {
        title: "turn",
        width: Constraint::Length(5),
        sort: None,
    });
    // Findings by severity: "1E 2W".
    cols.push(Col {
        title: if wide { "findings" } else { "E/W/I" },
        width: Constraint::Length(if wide { 8 } else { 5 }),
        sort: Some(SortKey::Findings),
    });

    let header = Row::new(cols.iter().map(|c| {
        let mut title = c.title.to_string();
        if c.sort == Some(app.home.sort) {
            title.push(if app.home.descending { '▼' } else { '▲' });
        }
        title
    }))
    .style(t.header());

    let body_height = table_area.height.saturating_sub(1) as usize;
    app.page.set(body_height.max(1));
    let (from, to) = app.home.cursor.window(app.home.visible.len(), body_height);
    let mut rows = Vec::with_capacity(to - from);
    let mut selected_summary: Option<(RowRef, RowSummary)> = None;
    for pos in from..to {
        let ri = app.home.visible[pos];
        let Some(&row) = app.index.rows.get(ri) else {
            continue;
        };
        let Some(s) = RowSummary::of(&app.snapshot, &app.index, row) else {
            continue;
        };
        let marked = app.home.marked.contains(&app.row_key(ri));
        let mut cells: Vec<Span> = vec![
            Span::raw(if marked { "●" } else { " " }),
            Span::raw(rel(app, s.start)),
        ];
        if wide {
            cells.push(Span::raw(s.id.clone()));
        }
        cells.push(Span::raw(clean(&s.agents).into_owned()));
        if wide {
            cells.push(Span::raw(s.addresses.clone()));
        }
        cells.push(Span::styled(s.status.name(), t.status(s.status)));
        cells.push(Span::raw(s.pair.clone()));
        cells.push(Span::raw(ms(s.rtt)));
        match (row, wide) {
            (RowRef::Allocation(_), true) => cells.extend([Span::raw("-"), Span::raw("-")]),
            (RowRef::Allocation(_), false) => cells.push(Span::raw("-")),
            (RowRef::Session(_), true) => {
                cells.push(Span::raw(format!("{} ({} ok)", s.pairs, s.succeeded)));
                cells.push(Span::raw(s.checks.to_string()));
            }
            (RowRef::Session(_), false) => cells.push(Span::raw(format!("{}/{}", s.pairs, s.checks))),
        }
        cells.push(Span::raw(s.turn.name()));
        let fstyle = if s.findings.errors > 0 {
            t.bad()
        } else if s.findings.warnings > 0 {
            t.warn()
        } else {
            t.dim()
        };
        cells.push(Span::styled(findings_cell(s.findings), fstyle));
        let mut r = Row::new(cells);
        if pos == app.home.cursor.selected {
            r = r.style(t.selected());
            selected_summary = Some((row, s));
        }
        rows.push(r);
    }
    let widths: Vec<Constraint> = cols.iter().map(|c| c.width).collect();
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table_area,
    );
    hit_list(
        app,
        Rect {
            y: table_area.y + 1,
            height: table_area.height.saturating_sub(1),
            ..table_area
        },
        from,
    );

    if app.home.visible.is_empty() {
        let msg = if app.index.rows.is_empty() {
            format!(
                "No ICE session or TURN allocation in this capture. Press m for all {} STUN/TURN messages.",
                app.model().messages.len()
            )
        } else {
            "No row matches the filter (Esc clears it).".to_string()
        };
        let r = Rect {
            y: table_area.y + 2.min(table_area.height),
            height: table_area.height.saturating_sub(2),
            ..table_area
        };
        frame.render_widget(Paragraph::new(msg).style(t.dim()).wrap(Wrap { trim: true }), r);
    }

    let detail_line = match selected_summary {
        Some((RowRef::Session(i), _)) => match app.snapshot.session_brief(i) {
            Some(s) => Line::from(vec![
                Span::styled(format!(" {} ", s.id), t.header()),
                Span::styled(s.outcome.name(), t.outcome(s.outcome)),
                Span::raw(": "),
                Span::raw(clean(&s.outcome_reason).into_owned()),
            ]),
            None => Line::default(),
        },
        Some((RowRef::Allocation(i), _)) => match app.snapshot.allocation_brief(i) {
            Some(a) => {
                let err = a.last_error().map_or(String::new(), |(method, code, reason)| {
                    format!(" — last error {method} {code} {}", clean(reason))
                });
                Line::from(vec![
                    Span::styled(" TURN ", t.header()),
                    Span::raw(format!("{} → {} ", a.client, a.server)),
                    Span::styled(a.state.name(), t.allocation(a.state)),
                    Span::raw(err),
                ])
            }
            None => Line::default(),
        },
        None => Line::from(Span::styled(
            " Enter open · / filter · s sort · Space mark · w save · ? help",
            t.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(detail_line).wrap(Wrap { trim: true }), detail);

    if capture_h > 0 {
        let mut lines = vec![Line::from(Span::styled(" About the whole capture:", t.header()))];
        for f in capture_findings.iter().filter_map(|&i| app.snapshot.finding(i)) {
            let style = match f.severity {
                crate::analysis::findings::Severity::Error => t.bad(),
                crate::analysis::findings::Severity::Warning => t.warn(),
                crate::analysis::findings::Severity::Info => t.dim(),
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} ", crate::tui::data::severity_name(f.severity)),
                    style,
                ),
                Span::styled(format!("{} ", f.code), t.header()),
                Span::raw(clean(&f.message).into_owned()),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), capture);
    }
}
