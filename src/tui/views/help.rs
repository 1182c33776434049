//! The `?` overlay: every key, by screen.
use super::Theme;
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// (key, what it does); a key of "" starts a section named by the second field.
pub(crate) const KEYS: &[(&str, &str)] = &[
    ("", "Everywhere"),
    ("↑/↓ j/k", "move the selection"),
    ("PgUp/PgDn", "move a page"),
    ("g/G Home/End", "first / last"),
    ("Enter", "open the selected row"),
    ("Esc Backspace", "back (on the sessions list: clear the filter)"),
    ("q Ctrl-C", "quit"),
    ("?  F1", "this help"),
    ("t", "TURN allocations"),
    ("m", "all STUN/TURN messages"),
    ("w  F2", "save the selected session(s)/allocation to a pcap"),
    ("e", "export the selected session's JSON report"),
    ("p  P", "pause / resume a live capture (P in message detail)"),
    ("mouse", "wheel scrolls, click selects, click again opens"),
    ("", "Sessions list"),
    ("/", "filter: words, outcome:failed type:relay cand:prflx code:ice. severity:error turn:relay kind:turn id:s1"),
    ("s  S", "sort by the next column / reverse the order"),
    ("Space", "mark a row (w saves every marked row)"),
    ("", "Session"),
    ("Tab Shift-Tab 1-4", "Pairs · Timeline · Ladder · Findings"),
    ("←/→ (Pairs)", "candidates pane / pairs pane"),
    ("Enter (Pairs)", "the pair's lane on the timeline"),
    ("←/→ h/l (Timeline)", "previous / next event"),
    ("↑/↓ (Timeline)", "previous / next pair lane"),
    ("+ / -", "zoom in / out around the cursor"),
    ("H/L Shift-←/→", "pan the time axis"),
    ("0", "fit the whole session"),
    ("Enter (Timeline)", "the message of the event under the cursor"),
    ("←/→ (Ladder)", "scroll the columns when they do not fit"),
    ("c (Ladder)", "show / hide ChannelData carrying media"),
    ("←/→ (Findings)", "choose an evidence frame; Enter opens it"),
    ("", "TURN"),
    ("Tab", "allocations / allocation detail"),
    ("Enter", "open the detail line's frame"),
    ("", "Message"),
    ("↑/↓", "select the header or an attribute (its bytes are highlighted)"),
    ("n / p", "next / previous message of the same transaction"),
    ("←/→ [ ]", "previous / next message of the list it was opened from"),
    ("Tab", "attribute tree / hex dump (scroll)"),
];

pub(crate) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = Theme::of(app);
    let w = area.width.saturating_sub(4).min(100);
    let h = area.height.saturating_sub(2);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + 1,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys (Esc closes, ↑/↓ scroll) ", t.header()));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            if k.is_empty() {
                Line::from(Span::styled(*what, t.header()))
            } else {
                Line::from(vec![
                    Span::styled(format!("  {k:<20}"), t.warn()),
                    Span::raw(*what),
                ])
            }
        })
        .collect();
    let max = lines.len().saturating_sub(inner.height as usize);
    let scroll = app.help_scroll.min(max);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        inner,
    );
}
