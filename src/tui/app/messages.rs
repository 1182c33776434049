//! The all-messages screen: every listed message in capture order, and its filter, plain words that must
//! all appear in a message's one-line summary, applied on Enter because the list can hold millions of
//! messages (`iceview read` lists every one).
//!
//! It does not use the home list's filter language (`tui::filter`), whose fields are a session's.
use super::{App, Cursor, MessageContext, Overlay, PromptKind, Screen};
use crate::report::Report;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

#[derive(Debug, Default)]
pub(crate) struct MessagesState {
    pub(crate) cursor: Cursor,
    pub(crate) filter: String,
    /// Indices into `model.messages` matching the filter (4 bytes each: a filter may match millions);
    /// `None` when there is no filter.
    pub(crate) visible: Option<Vec<u32>>,
}

impl App {
    pub(super) fn apply_messages_filter(&mut self) {
        let words: Vec<String> = self
            .messages
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            self.messages.visible = None;
        } else {
            let t0 = self.index.t0;
            // Each message's line is made, tested and dropped: the lean report does not hold them.
            let (model, multi) = (self.model(), self.report().multi_input());
            let v = model
                .messages
                .iter()
                .zip(0u32..)
                .filter(|(m, _)| {
                    let line = crate::report::text::packet_line(&Report::message_of(model, m, multi), t0);
                    let line = line.to_lowercase();
                    words.iter().all(|w| line.contains(w.as_str()))
                })
                .map(|(_, i)| i)
                .collect();
            self.messages.visible = Some(v);
        }
        self.messages.cursor.selected = 0;
    }

    pub(crate) fn messages_len(&self) -> usize {
        match &self.messages.visible {
            Some(v) => v.len(),
            None => self.model().messages.len(),
        }
    }

    pub(crate) fn messages_at(&self, pos: usize) -> Option<usize> {
        match &self.messages.visible {
            Some(v) => v.get(pos).map(|&i| i as usize),
            None => (pos < self.model().messages.len()).then_some(pos),
        }
    }

    pub(super) fn messages_key(&mut self, k: KeyEvent) {
        let len = self.messages_len();
        let page = self.page();
        if self.messages.cursor.on_key(k.code, page, len) {
            return;
        }
        match k.code {
            KeyCode::Char('/') => {
                let current = self.messages.filter.clone();
                self.overlay = Some(Overlay::Prompt {
                    kind: PromptKind::Filter(Screen::Messages),
                    input: current.clone(),
                    previous: current,
                });
            }
            KeyCode::Enter => {
                if let Some(mi) = self.messages_at(self.messages.cursor.selected) {
                    self.open_message(mi, MessageContext::AllMessages);
                }
            }
            _ => {}
        }
    }
}
