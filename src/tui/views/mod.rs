//! Render functions: `fn render(frame, area, &App)` and nothing else. They read the snapshot through the
//! app, format only the rows that fit, and register mouse targets; they never change what the app shows.
//!
//! Colours carry meaning only as a second channel: every state is also a word or a glyph, and with
//! `NO_COLOR` (<https://no-color.org>) selection and highlights fall back to reverse video and bold.
pub(crate) mod findings;
pub(crate) mod help;
pub(crate) mod ladder;
pub(crate) mod message;
pub(crate) mod messages;
pub(crate) mod pairs;
pub(crate) mod session;
pub(crate) mod sessions;
pub(crate) mod timeline;
pub(crate) mod turn;

use super::app::{App, Hit, Overlay, PromptKind, Screen};
use super::data::Status;
use crate::analysis::sessions::Outcome;
use crate::analysis::turn::AllocationState;
use crate::report::text::{escape, is_bidi_control};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use std::borrow::Cow;

/// Draws the whole screen for the app's state.
pub fn render(frame: &mut Frame, app: &App) {
    app.hits.borrow_mut().clear();
    let area = frame.area();
    let [title, body, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    render_title(frame, title, app);
    match app.screen() {
        Screen::Home => sessions::render(frame, body, app),
        Screen::Session => session::render(frame, body, app),
        Screen::Turn => turn::render(frame, body, app),
        Screen::Message => message::render(frame, body, app),
        Screen::Messages => messages::render(frame, body, app),
    }
    render_status(frame, status, app);
    match &app.overlay {
        Some(Overlay::Help) => help::render(frame, body, app),
        Some(Overlay::Prompt { kind, input, .. }) => render_prompt(frame, status, app, kind, input),
        None => {}
    }
}

/// Styles, with and without colour.
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub(crate) fn of(app: &App) -> Theme {
        Theme { color: app.color }
    }
    pub(crate) fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub(crate) fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub(crate) fn header(&self) -> Style {
        let s = Style::new().add_modifier(Modifier::BOLD);
        if self.color {
            s.fg(Color::Cyan)
        } else {
            s
        }
    }
    pub(crate) fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub(crate) fn bar(&self) -> Style {
        if self.color {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
    pub(crate) fn good(&self) -> Style {
        self.fg(Color::Green)
    }
    pub(crate) fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub(crate) fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub(crate) fn outcome(&self, o: Outcome) -> Style {
        match o {
            Outcome::Connected => self.good(),
            Outcome::Failed => self.bad(),
            Outcome::Incomplete => self.warn(),
        }
    }
    pub(crate) fn allocation(&self, s: AllocationState) -> Style {
        match s {
            AllocationState::Active | AllocationState::Deleted => self.good(),
            AllocationState::Failed | AllocationState::Expired => self.bad(),
        }
    }
    /// A home row's session outcome or allocation state.
    pub(crate) fn status(&self, s: Status) -> Style {
        match s {
            Status::Session(o) => self.outcome(o),
            Status::Allocation(a) => self.allocation(a),
        }
    }
    /// The bytes of the selected attribute in the hex dump.
    pub fn hex_highlight(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Yellow)
                .fg(Color::Black)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
}

/// Text from the wire (or a report string holding some), made safe for the terminal.
pub(crate) fn clean(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        let u = c as u32;
        u < 0x20 || u == 0x7F || (0x80..0xA0).contains(&u) || c == '\\' || is_bidi_control(c)
    };
    if s.chars().any(bad) {
        Cow::Owned(escape(s))
    } else {
        Cow::Borrowed(s)
    }
}

/// Seconds relative to the capture start in at most 8 columns: `+0.128s`, `+12.35s`, `+1041s`.
pub(crate) fn rel(app: &App, ts: f64) -> String {
    let d = ts - app.index.t0;
    match d.abs() {
        a if a < 10.0 => format!("{d:+.3}s"),
        a if a < 100.0 => format!("{d:+.2}s"),
        a if a < 1000.0 => format!("{d:+.1}s"),
        a if a < 1e6 => format!("{d:+.0}s"),
        _ => format!("{:+.0}h", d / 3600.0),
    }
}

/// Milliseconds, `1.1 ms`, or `-`.
pub(crate) fn ms(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 0.01 => format!("{:.1}ms", s * 1e3),
        Some(s) => format!("{:.0}ms", s * 1e3),
        None => "-".into(),
    }
}

/// Registers a list area for mouse clicks (row = offset + line).
pub(crate) fn hit_list(app: &App, area: Rect, offset: usize) {
    app.hits.borrow_mut().push((area, Hit::List { offset }));
}

fn render_title(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let mut crumbs = vec!["iceview".to_string()];
    for s in &app.stack {
        crumbs.push(match s {
            Screen::Home => format!(
                "Sessions ({} ICE, {} TURN)",
                app.snapshot.session_count(),
                app.snapshot.allocation_count()
            ),
            Screen::Session => app
                .session
                .as_ref()
                .and_then(|st| app.snapshot.session_brief(st.session))
                .map_or("Session".into(), |s| {
                    let u: Vec<String> = s.ufrags.iter().map(|u| clean(u).into_owned()).collect();
                    format!("Session {} {}", s.id, u.join("↔"))
                }),
            Screen::Turn => "TURN".into(),
            Screen::Message => app
                .message
                .as_ref()
                .and_then(|m| app.model().messages.get(m.msg))
                .map_or("Message".into(), |m| format!("Frame {}", m.frame)),
            Screen::Messages => "Messages".into(),
        });
    }
    let mut spans = vec![Span::styled(format!(" {} ", crumbs.join(" › ")), t.bar())];
    if app.paused {
        spans.push(Span::styled(" PAUSED ", t.bad().add_modifier(Modifier::REVERSED)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.bar()), area);
}

fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let report = app.report();
    let line = if let Some(msg) = &app.status {
        Line::from(Span::styled(
            format!(" {}", clean(msg)),
            t.bar().add_modifier(Modifier::BOLD),
        ))
    } else {
        let src = &app.snapshot.source;
        let packets: u64 = report.inputs.iter().map(|i| i.packets).sum();
        let errors: u64 = report.stats.decode_errors.values().sum();
        let mut parts = match &app.live {
            // Live: the capture's own counters, which move while the display is paused.
            Some(c) => vec![
                match &c.ended {
                    Some(why) => format!("{} {}", clean(&src.label), clean(why)),
                    None => format!("live {}", clean(&src.label)),
                },
                format!("{} pkts", c.captured),
                // First after the count: at 80 columns the end of the line is cut.
                format!(
                    "drops: kernel {}, queue {}",
                    c.kernel_dropped + c.interface_dropped,
                    c.queue_dropped
                ),
                format!("{} msgs", c.messages),
                format!("{errors} decode errors"),
            ],
            None => vec![
                if src.live {
                    format!("live {}", clean(&src.label))
                } else {
                    clean(&src.label).into_owned()
                },
                format!("{packets} pkts"),
                format!("{} msgs", app.model().messages.len()),
                format!("{errors} decode errors"),
            ],
        };
        if let (None, Some(d)) = (&app.live, src.dropped) {
            parts.push(format!("{d} dropped"));
        }
        if report.stats.messages_not_stored > 0 {
            parts.push(format!("{} not stored", report.stats.messages_not_stored));
        }
        parts.push("?:help q:quit".into());
        Line::from(Span::raw(format!(" {}", parts.join(" │ "))))
    };
    frame.render_widget(Paragraph::new(line).style(t.bar()), area);
}

fn render_prompt(frame: &mut Frame, area: Rect, app: &App, kind: &PromptKind, input: &str) {
    let t = Theme::of(app);
    let label = match kind {
        PromptKind::Filter(_) => "filter: ",
        PromptKind::SavePcap(_) => "save pcap to: ",
        PromptKind::ExportJson(_) => "export JSON to: ",
    };
    frame.render_widget(Clear, area);
    let text = clean(input);
    let line = Line::from(vec![
        Span::styled(label, t.header()),
        Span::raw(text.clone()),
        Span::styled(" ", t.selected()),
        Span::styled("  Enter ok · Esc cancel", t.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// Pads or cuts `s` to exactly `w` columns (cut text ends in `…`).
pub(crate) fn fit(s: &str, w: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let total = Span::raw(s).width();
    for c in s.chars() {
        let cw = Span::raw(c.to_string()).width();
        if total > w && used + cw + 1 > w {
            if used < w {
                out.push('…');
                used += 1;
            }
            break;
        }
        if used + cw > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    while used < w {
        out.push(' ');
        used += 1;
    }
    out
}
