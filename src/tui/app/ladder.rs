//! The ladder tab's keys, and which ladder row sits at which position on screen: the ladder shows the
//! signalling unless `c` asks for the ChannelData that carried media too, and keeps the same message
//! selected when it switches.
//!
//! The lifelines and arrows are laid out once per snapshot in `tui::data`; this module only selects,
//! scrolls and opens messages.
use super::{App, MessageContext};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

impl App {
    /// Number of ladder rows shown and the ladder row (index into the scope's ladder) at position `pos`.
    pub(crate) fn ladder_row_at(&self, pos: usize) -> Option<usize> {
        let st = self.session.as_ref()?;
        let scope = self.index.sessions.get(st.session)?;
        if st.ladder_media {
            (pos < scope.ladder.len()).then_some(pos)
        } else {
            scope.ladder_signalling.get(pos).copied()
        }
    }

    pub(crate) fn ladder_len(&self) -> usize {
        let Some(st) = self.session.as_ref() else { return 0 };
        let Some(scope) = self.index.sessions.get(st.session) else {
            return 0;
        };
        if st.ladder_media {
            scope.ladder.len()
        } else {
            scope.ladder_signalling.len()
        }
    }

    pub(super) fn ladder_key(&mut self, k: KeyEvent) {
        let len = self.ladder_len();
        let page = self.page();
        let ncols = self
            .session
            .as_ref()
            .and_then(|s| self.index.sessions.get(s.session))
            .map_or(0, |s| s.columns.len());
        let Some(st) = self.session.as_mut() else { return };
        if st.ladder.on_key(k.code, page, len) {
            return;
        }
        match k.code {
            KeyCode::Left | KeyCode::Char('h') => st.ladder_column = st.ladder_column.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => {
                st.ladder_column = (st.ladder_column + 1).min(ncols.saturating_sub(1));
            }
            KeyCode::Char('c') => {
                // Keep the same message selected when rows appear or disappear.
                let current = self.ladder_row_at(self.session.as_ref().map_or(0, |s| s.ladder.selected));
                let Some(st) = self.session.as_mut() else { return };
                st.ladder_media = !st.ladder_media;
                let media = st.ladder_media;
                let pos = current.and_then(|row| {
                    if media {
                        Some(row)
                    } else {
                        self.index
                            .sessions
                            .get(st.session)
                            .map(|s| s.ladder_signalling.partition_point(|&r| r < row))
                    }
                });
                st.ladder.selected = pos.unwrap_or(0);
                let len = self.ladder_len();
                if let Some(st) = self.session.as_mut() {
                    st.ladder.clamp(len);
                }
            }
            KeyCode::Enter => {
                let pos = st.ladder.selected;
                if let Some(mi) = self.ladder_message(pos) {
                    self.open_message(mi, MessageContext::Ladder);
                }
            }
            _ => {}
        }
    }

    /// The message drawn at ladder position `pos`.
    pub fn ladder_message(&self, pos: usize) -> Option<usize> {
        let st = self.session.as_ref()?;
        let row = self.ladder_row_at(pos)?;
        self.index
            .sessions
            .get(st.session)?
            .ladder
            .get(row)
            .map(|r| r.msg)
    }
}
