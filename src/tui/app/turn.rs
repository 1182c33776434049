//! The TURN screen's state and keys: the allocations list and, beside it, the selected allocation's
//! detail, each line of which Enter follows to its frame.
//!
//! The detail lines are built by `data::allocation_lines`; this module only moves through them. Its state
//! is [`TurnViewState`], not to be confused with the analysis's TURN state (`analysis::turn::TurnState`).
use super::{App, Cursor, Pane, Screen};
use crate::tui::data::allocation_lines;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

#[derive(Debug, Default)]
pub(crate) struct TurnViewState {
    pub(crate) allocations: Cursor,
    pub(crate) detail: Cursor,
    pub(crate) pane: Pane,
}

impl App {
    pub(super) fn open_turn(&mut self, allocation: Option<usize>) {
        if let Some(i) = allocation {
            self.turn.allocations.selected = i;
            self.turn.detail = Cursor::default();
        }
        self.turn.pane = Pane::First;
        self.push_screen(Screen::Turn);
    }

    pub(super) fn turn_key(&mut self, k: KeyEvent) {
        let n = self.snapshot.allocation_count();
        let page = self.page();
        let lines = if self.turn.pane == Pane::Second || k.code == KeyCode::Enter {
            allocation_lines(&self.snapshot, &self.index, self.turn.allocations.selected)
        } else {
            Vec::new()
        };
        let t = &mut self.turn;
        if k.code == KeyCode::Tab || k.code == KeyCode::BackTab {
            t.pane.toggle();
            return;
        }
        let before = t.allocations.selected;
        let (c, len) = match t.pane {
            Pane::First => (&mut t.allocations, n),
            Pane::Second => (&mut t.detail, lines.len()),
        };
        let moved = c.on_key(k.code, page, len);
        if !moved && k.code == KeyCode::Enter {
            match t.pane {
                Pane::First => t.pane = Pane::Second,
                Pane::Second => match lines.get(t.detail.selected).and_then(|l| l.frame) {
                    Some(f) => self.open_frame(f),
                    None => self.status = Some("this line points at no frame".into()),
                },
            }
        }
        if self.turn.allocations.selected != before {
            self.turn.detail = Cursor::default();
        }
    }
}
