//! A session's screen: which of its tabs is shown, and the keys its tabs share (Tab, Shift-Tab, `1`-`4`).
//! A session opens on the pairs tab with its selected pair under the cursor.
//!
//! Each tab's own keys are in its module (`pairs`, `timeline`, `ladder`, `findings`). What a session holds
//! beyond the report (its messages, ladder, findings) is derived once per snapshot in `tui::data`, not here.
use super::{timeline_extent, App, Cursor, Pane, Screen, TimelineState};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Pairs,
    Timeline,
    Ladder,
    Findings,
}

impl Tab {
    pub(crate) const ALL: [Tab; 4] = [Tab::Pairs, Tab::Timeline, Tab::Ladder, Tab::Findings];
    pub(crate) fn title(self) -> &'static str {
        match self {
            Tab::Pairs => "Pairs",
            Tab::Timeline => "Timeline",
            Tab::Ladder => "Ladder",
            Tab::Findings => "Findings",
        }
    }
    pub(super) fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct SessionState {
    /// Index into the snapshot's sessions.
    pub(crate) session: usize,
    pub tab: Tab,
    /// Pairs tab: candidates (first) or pairs (second).
    pub(crate) pane: Pane,
    pub(crate) candidates: Cursor,
    pub(crate) pairs: Cursor,
    pub timeline: TimelineState,
    /// Index into the ladder's shown rows.
    pub ladder: Cursor,
    /// First ladder column drawn (when the columns do not fit).
    pub(crate) ladder_column: usize,
    /// Show ChannelData that carried media.
    pub(crate) ladder_media: bool,
    pub(crate) findings: Cursor,
    /// Which evidence frame of the selected finding Enter opens.
    pub(crate) evidence: usize,
}

impl App {
    /// Opens session `i` (index into the snapshot's sessions) on its pairs tab.
    pub(crate) fn open_session(&mut self, i: usize) {
        // Whole: a folded session's timeline is read back now.
        let Some(s) = self.snapshot.session(i) else {
            if let Some(b) = self.snapshot.session_brief(i) {
                self.status = Some(format!(
                    "session {} could not be read back from the temporary file",
                    b.id
                ));
            }
            return;
        };
        let (start, span) = timeline_extent(s);
        let selected_pair = s.pairs.iter().position(|p| p.selected).unwrap_or(0);
        self.session = Some(SessionState {
            session: i,
            tab: Tab::Pairs,
            pane: Pane::Second,
            candidates: Cursor::default(),
            pairs: Cursor {
                selected: selected_pair,
                ..Cursor::default()
            },
            timeline: TimelineState {
                event: 0,
                lane: s.timeline.first().map_or(0, |e| e.pair),
                start,
                span,
            },
            ladder: Cursor::default(),
            ladder_column: 0,
            ladder_media: false,
            findings: Cursor::default(),
            evidence: 0,
        });
        self.stack.retain(|s| *s == Screen::Home);
        self.stack.push(Screen::Session);
    }

    pub(super) fn session_key(&mut self, k: KeyEvent) {
        let Some(tab) = self.session.as_ref().map(|s| s.tab) else {
            self.stack.pop();
            return;
        };
        match k.code {
            KeyCode::Tab => return self.switch_tab((tab.index() + 1) % Tab::ALL.len()),
            KeyCode::BackTab => return self.switch_tab((tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()),
            KeyCode::Char(c @ '1'..='4') => return self.switch_tab(c as usize - '1' as usize),
            _ => {}
        }
        match tab {
            Tab::Pairs => self.pairs_key(k),
            Tab::Timeline => self.timeline_key(k),
            Tab::Ladder => self.ladder_key(k),
            Tab::Findings => self.findings_key(k),
        }
    }

    pub(crate) fn switch_tab(&mut self, i: usize) {
        if let Some(s) = self.session.as_mut() {
            s.tab = Tab::ALL[i.min(Tab::ALL.len() - 1)];
        }
    }

    pub(super) fn session_report(&self) -> Option<&crate::analysis::sessions::SessionReport> {
        self.session
            .as_ref()
            .and_then(|s| self.snapshot.session(s.session))
    }
}
