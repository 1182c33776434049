//! The pairs tab: both agents' candidates (and the NAT mappings seen for them), the candidate-pair table
//! with webrtc-stats counters per direction, and the selected pair's full counters.
use super::{clean, hit_list, ms, Theme};
use crate::analysis::ice::CandidateType;
use crate::analysis::sessions::{DirectionReport, PairReport, PairState};
use crate::tui::app::{App, Pane};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// Terminal width from which types, addresses and every counter get a column (they need 137).
const WIDE: u16 = 140;

fn marker(p: &PairReport) -> &'static str {
    match (p.selected, p.nominated) {
        (true, true) => "*N",
        (true, false) => "* ",
        (false, true) => " N",
        _ => "  ",
    }
}

fn dir_cell(d: &DirectionReport) -> String {
    format!("{}/{}", d.requests_sent, d.responses_received)
}

fn dir_text(label: &str, d: &DirectionReport, wide: bool) -> String {
    let errors: Vec<String> = d
        .error_responses_received
        .iter()
        .map(|(c, n)| format!("{n}×{c}"))
        .collect();
    if !wide {
        return format!(
            "{label}: {} req {} rtx {} resp, err {}, {} t/o, rtt {}",
            d.requests_sent,
            d.retransmissions_sent,
            d.responses_received,
            if errors.is_empty() {
                "-".to_string()
            } else {
                errors.join(" ")
            },
            d.timeouts,
            ms(d.current_round_trip_time),
        );
    }
    format!(
        "{label}: {} req ({} retrans, {} consent, {} USE-CANDIDATE), {} resp, errors {}, {} timeouts, {} unanswered, rtt {} (min {} max {})",
        d.requests_sent,
        d.retransmissions_sent,
        d.consent_requests_sent,
        d.use_candidate_sent,
        d.responses_received,
        if errors.is_empty() { "-".to_string() } else { errors.join(" ") },
        d.timeouts,
        d.unanswered,
        ms(d.current_round_trip_time),
        ms(d.min_round_trip_time),
        ms(d.max_round_trip_time),
    )
}

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let Some(st) = app.session.as_ref() else { return };
    let Some(s) = app.snapshot.session(st.session) else {
        return;
    };
    let wide = area.width >= WIDE;
    let ncand = s.candidates.len() + s.nat_mappings.len();
    let cand_h = u16::try_from(ncand + 3)
        .unwrap_or(u16::MAX)
        .min(area.height / 3)
        .max(4);
    let [cand_area, pair_area, detail_area] = Layout::vertical([
        Constraint::Length(cand_h),
        Constraint::Fill(1),
        Constraint::Length(5),
    ])
    .areas(area);

    let focus = |p: Pane| {
        if st.pane == p {
            t.header()
        } else {
            t.dim()
        }
    };

    // Candidates.
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(" Candidates ({ncand}) ",),
        focus(Pane::First),
    ));
    let inner = block.inner(cand_area);
    frame.render_widget(block, cand_area);
    let h = inner.height.saturating_sub(1) as usize;
    let (from, to) = st.candidates.window(ncand, h);
    let all: Vec<_> = s.candidates.iter().chain(&s.nat_mappings).collect();
    let rows: Vec<Row> = (from..to)
        .filter_map(|i| all.get(i).map(|c| (i, c)))
        .map(|(i, c)| {
            let mut cells = vec![
                Span::raw(clean(&c.agent).into_owned()),
                Span::styled(
                    c.candidate_type.name(),
                    if c.candidate_type == CandidateType::Relay {
                        t.warn()
                    } else {
                        t.fg(ratatui::style::Color::Reset)
                    },
                ),
                Span::raw(c.address.clone()),
                Span::raw(c.protocol.name()),
                Span::raw(c.priority.map_or("-".into(), |p| p.to_string())),
                Span::styled(clean(&c.inferred_from).into_owned(), t.dim()),
            ];
            if !wide {
                cells.truncate(5);
                cells.push(Span::styled(clean(&c.inferred_from).into_owned(), t.dim()));
            }
            let mut r = Row::new(cells);
            if st.pane == Pane::First && i == st.candidates.selected {
                r = r.style(t.selected());
            }
            r
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(if wide { 40 } else { 22 }),
        Constraint::Length(3),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "agent",
        "type",
        "address",
        "pro",
        "priority",
        "how it was inferred",
    ])
    .style(t.header());
    frame.render_widget(Table::new(rows, widths).header(header).column_spacing(1), inner);
    if st.pane == Pane::First {
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

    // Pairs.
    let ua = s
        .agents
        .first()
        .map_or("A".into(), |a| clean(&a.ufrag).into_owned());
    let ub = s
        .agents
        .get(1)
        .map_or("B".into(), |a| clean(&a.ufrag).into_owned());
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(
            " Pairs ({}) — A = {ua}, B = {ub}; req/resp per direction; * selected, N nominated ",
            s.pairs.len()
        ),
        focus(Pane::Second),
    ));
    let inner = block.inner(pair_area);
    frame.render_widget(block, pair_area);
    let h = inner.height.saturating_sub(1) as usize;
    app.page.set(h.max(1));
    let (from, to) = st.pairs.window(s.pairs.len(), h);
    let rows: Vec<Row> = s.pairs[from..to]
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let i = from + k;
            let state_style = match p.state {
                PairState::Succeeded => t.good(),
                PairState::Failed => t.bad(),
                PairState::InProgress => t.warn(),
            };
            let mut cells: Vec<Span> = vec![
                Span::raw(p.index.to_string()),
                Span::styled(
                    marker(p),
                    if p.selected {
                        t.good().add_modifier(Modifier::BOLD)
                    } else {
                        t.fg(ratatui::style::Color::Cyan)
                    },
                ),
            ];
            if wide {
                cells.extend([
                    Span::raw(p.a_type.name()),
                    Span::raw(p.a.clone()),
                    Span::raw(p.b_type.name()),
                    Span::raw(p.b.clone()),
                    Span::raw(p.protocol.name()),
                ]);
            } else {
                cells.push(Span::raw(format!("{} {}", p.a_type.name(), p.a)));
                cells.push(Span::raw(format!("{} {}", p.b_type.name(), p.b)));
            }
            cells.push(Span::styled(p.state.name(), state_style));
            cells.push(Span::raw(dir_cell(&p.a_to_b)));
            cells.push(Span::raw(dir_cell(&p.b_to_a)));
            if wide {
                let rtx = p.a_to_b.retransmissions_sent + p.b_to_a.retransmissions_sent;
                let errs: u64 = p.a_to_b.error_responses_received.values().sum::<u64>()
                    + p.b_to_a.error_responses_received.values().sum::<u64>();
                let to = p.a_to_b.timeouts + p.b_to_a.timeouts;
                cells.push(Span::raw(rtx.to_string()));
                cells.push(Span::styled(
                    errs.to_string(),
                    if errs > 0 { t.bad() } else { t.dim() },
                ));
                cells.push(Span::styled(
                    to.to_string(),
                    if to > 0 { t.bad() } else { t.dim() },
                ));
                cells.push(Span::raw(ms(p
                    .a_to_b
                    .current_round_trip_time
                    .or(p.b_to_a.current_round_trip_time))));
                cells.push(Span::raw(
                    (p.media.dtls_packets + p.media.rtp_packets + p.media.rtcp_packets).to_string(),
                ));
            }
            let mut r = Row::new(cells);
            if st.pane == Pane::Second && i == st.pairs.selected {
                r = r.style(t.selected());
            }
            r
        })
        .collect();
    let (widths, header): (Vec<Constraint>, Vec<&str>) = if wide {
        (
            vec![
                Constraint::Length(2),
                Constraint::Length(2),
                Constraint::Length(11),
                Constraint::Length(22),
                Constraint::Length(11),
                Constraint::Length(22),
                Constraint::Length(3),
                Constraint::Length(11),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(4),
                Constraint::Length(4),
                Constraint::Length(4),
                Constraint::Length(7),
                Constraint::Length(6),
            ],
            vec![
                "#",
                "",
                "A type",
                "A address",
                "B type",
                "B address",
                "pro",
                "state",
                "A→B",
                "B→A",
                "rtx",
                "err",
                "t/o",
                "rtt",
                "media",
            ],
        )
    } else {
        (
            vec![
                Constraint::Length(2),
                Constraint::Length(2),
                Constraint::Length(24),
                Constraint::Length(24),
                Constraint::Length(11),
                Constraint::Length(5),
                Constraint::Length(5),
            ],
            vec!["#", "", "A", "B", "state", "A→B", "B→A"],
        )
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.header()))
            .column_spacing(1),
        inner,
    );
    if st.pane == Pane::Second {
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

    // The selected pair in full.
    let lines = match s.pairs.get(st.pairs.selected) {
        Some(p) => {
            let mut head = vec![
                Span::styled(format!(" #{} ", p.index), t.header()),
                Span::raw(format!(
                    "{} {} ↔ {} {}",
                    p.a_type.name(),
                    p.a,
                    p.b_type.name(),
                    p.b
                )),
            ];
            if p.selected {
                head.push(Span::styled("  SELECTED", t.good().add_modifier(Modifier::BOLD)));
            }
            if let Some(n) = p.nominated_ts {
                head.push(Span::styled(
                    format!("  nominated {}", super::rel(app, n)),
                    t.fg(ratatui::style::Color::Cyan),
                ));
            }
            let m = &p.media;
            head.push(Span::styled(
                format!(
                    "  media: {} DTLS, {} RTP, {} RTCP, {} bytes",
                    m.dtls_packets, m.rtp_packets, m.rtcp_packets, m.bytes
                ),
                t.dim(),
            ));
            vec![
                Line::from(head),
                Line::from(format!(" {}", dir_text(&format!("A→B ({ua})"), &p.a_to_b, wide))),
                Line::from(format!(" {}", dir_text(&format!("B→A ({ub})"), &p.b_to_a, wide))),
            ]
        }
        None => vec![Line::from(Span::styled(
            " no candidate pair was checked",
            t.dim(),
        ))],
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP)),
        detail_area,
    );
}
