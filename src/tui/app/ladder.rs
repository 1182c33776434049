//! The ladder tab's keys, and which ladder row sits at which position on screen: the ladder shows the
//! signalling unless `c` asks for the ChannelData that carried media too, and keeps the same message
//! selected when it switches.
//!
//! The lifelines and arrows are laid out in `tui::data` when the session is first opened; this module
//! only selects, scrolls and opens messages.
use super::{App, MessageContext};
use crate::tui::data::Ladder;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

impl App {
    /// The open session's ladder (laid out the first time it is asked for).
    pub(crate) fn ladder(&self) -> Option<&Ladder> {
        let st = self.session.as_ref()?;
        self.index.ladder(st.session, &self.snapshot)
    }

    /// The ladder row (index into the ladder's rows) at position `pos`.
    pub(crate) fn ladder_row_at(&self, pos: usize) -> Option<usize> {
        let st = self.session.as_ref()?;
        let ladder = self.ladder()?;
        if st.ladder_media {
            (pos < ladder.rows.len()).then_some(pos)
        } else {
            ladder.signalling.get(pos).copied()
        }
    }

    /// Number of ladder rows shown.
    pub fn ladder_len(&self) -> usize {
        let (Some(st), Some(ladder)) = (self.session.as_ref(), self.ladder()) else {
            return 0;
        };
        if st.ladder_media {
            ladder.rows.len()
        } else {
            ladder.signalling.len()
        }
    }

    pub(super) fn ladder_key(&mut self, k: KeyEvent) {
        let len = self.ladder_len();
        let page = self.page();
        let ncols = self.ladder().map_or(0, |l| l.columns.len());
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
                let media = self.session.as_ref().is_some_and(|s| !s.ladder_media);
                let pos = current.and_then(|row| {
                    if media {
                        Some(row)
                    } else {
                        self.ladder().map(|l| l.signalling.partition_point(|&r| r < row))
                    }
                });
                let Some(st) = self.session.as_mut() else { return };
                st.ladder_media = media;
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
        let row = self.ladder_row_at(pos)?;
        self.ladder()?.rows.get(row).map(|r| r.msg)
    }
}
