//! The pairs tab's keys: the candidates (left) and the candidate pairs (right) are two lists, ←/→ move
//! between them, and Enter on a pair opens its lane on the timeline.
//!
//! It keeps no state of its own (`SessionState` holds both cursors) and draws nothing (`views::pairs`).
use super::{App, Pane, Tab};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

impl App {
    pub(super) fn pairs_key(&mut self, k: KeyEvent) {
        let Some(sr) = self.session_report() else { return };
        let (np, nc) = (sr.pairs.len(), sr.candidates.len() + sr.nat_mappings.len());
        let page = self.page();
        let Some(st) = self.session.as_mut() else { return };
        let (c, len) = match st.pane {
            Pane::First => (&mut st.candidates, nc),
            Pane::Second => (&mut st.pairs, np),
        };
        if c.on_key(k.code, page, len) {
            return;
        }
        match k.code {
            KeyCode::Left | KeyCode::Right | KeyCode::Char('h') | KeyCode::Char('l') => st.pane.toggle(),
            KeyCode::Enter if st.pane == Pane::Second => {
                // The pair's lane on the timeline, at its first event.
                let pair = st.pairs.selected;
                st.tab = Tab::Timeline;
                self.timeline_to_lane(pair, None);
            }
            _ => {}
        }
    }
}
