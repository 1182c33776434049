//! The all-messages screen: every listed message in capture order, and its filter, plain words that must
//! all appear in a message's one-line summary, applied on Enter because the list can hold millions of
//! messages (`iceview read` lists every one).
//!
//! It does not use the home list's filter language (`tui::filter`), whose fields are a session's.
use super::{App, Cursor, MessageContext, Overlay, PromptKind, Screen};
use crate::analysis::Model;
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

/// The indexes of the messages whose one-line summary holds every one of `words` (lower case), in order.
/// Each message's line is made, tested and dropped (the lean report does not hold them), on every core, a
/// contiguous part of the list each: the UI waits for it, and a busy server's capture lists millions
/// (call-dense 4 GB, 1.93 M: 4.6 s on one core).
fn matching(model: &Model, words: &[String], multi: bool, t0: f64, cores: usize) -> Vec<u32> {
    let len = model.messages.len().min(u32::MAX as usize);
    let part = len.div_ceil(cores.max(1)).max(1);
    let find = |range: std::ops::Range<usize>| -> Vec<u32> {
        model
            .messages
            .range(range)
            .filter(|(_, m)| {
                let line = crate::report::text::packet_line(&Report::message_of(model, m, multi), t0);
                let line = line.to_lowercase();
                words.iter().all(|w| line.contains(w.as_str()))
            })
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect()
    };
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..len)
            .step_by(part)
            .map(|start| scope.spawn(move || find(start..(start + part).min(len))))
            .collect();
        // A part's thread that panicked (a bug) panics the UI, as the filter did on one thread: never a
        // list silently missing a part.
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
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
            let (model, multi) = (self.model(), self.report().multi_input());
            let cores = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 8);
            self.messages.visible = Some(matching(model, &words, multi, self.index.t0, cores));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::capture::file::FileReader;
    use crate::wire::credentials::Keyring;

    /// However many parts the list is cut into, the matches come back once each and in capture order:
    /// every line of symmetric-relay's listing is UDP, so "udp" keeps them all, 0 to the last.
    #[test]
    fn matches_come_back_in_order_whatever_the_parts() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/symmetric-relay/capture.pcap"
        )
        .to_string();
        let mut reader = FileReader::open(&[path], None).expect("fixture opens");
        let mut an = Analyzer::new(Keyring::new());
        reader.for_each(&mut |p| {
            an.ingest(p);
            true
        });
        an.finish();
        let model = an.into_model();
        let len = u32::try_from(model.messages.len()).expect("a small capture");
        assert!(len > 100, "{len} messages");
        let all: Vec<u32> = (0..len).collect();
        for cores in 1..=5 {
            assert_eq!(
                matching(&model, &["udp".to_string()], false, 0.0, cores),
                all,
                "{cores} parts"
            );
        }
        assert!(matching(
            &model,
            &["udp".to_string(), "no such word".to_string()],
            false,
            0.0,
            3
        )
        .is_empty());
    }
}
