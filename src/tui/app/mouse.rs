//! The mouse: a click selects a list row (a click on the row already selected acts as Enter) or switches
//! a session's tab; the wheel scrolls the list in view or the help page, and pans the timeline.
//!
//! Each render registers what can be hit ([`Hit`]); this module only looks clicks up there, it never lays
//! anything out.
use super::{Action, App, Cursor, Overlay, Pane, Screen, Tab};
use crate::tui::data::allocation_lines;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

/// Rows a mouse wheel notch scrolls.
const WHEEL_ROWS: usize = 3;

/// Something the mouse can hit, registered by the last render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The current list: row `offset + (y - area.y)`.
    List {
        offset: usize,
    },
    Tab(Tab),
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

impl App {
    pub fn on_mouse(&mut self, ev: MouseEvent) -> Action {
        match ev.kind {
            MouseEventKind::ScrollDown => self.scroll(true),
            MouseEventKind::ScrollUp => self.scroll(false),
            MouseEventKind::Down(MouseButton::Left) => {
                let hit = self
                    .hits
                    .borrow()
                    .iter()
                    .find(|(r, _)| {
                        ev.column >= r.x
                            && ev.column < r.x + r.width
                            && ev.row >= r.y
                            && ev.row < r.y + r.height
                    })
                    .map(|(r, h)| (*r, *h));
                match hit {
                    Some((_, Hit::Tab(t))) => self.switch_tab(t.index()),
                    Some((r, Hit::List { offset })) => {
                        let row = offset + (ev.row - r.y) as usize;
                        if self.current_cursor().is_some_and(|c| c.selected == row) {
                            return self.on_key(key(KeyCode::Enter));
                        }
                        let len = self.current_len();
                        if row < len {
                            if let Some(c) = self.current_cursor_mut() {
                                c.selected = row;
                            }
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
        Action::None
    }

    fn scroll(&mut self, down: bool) {
        if self.overlay == Some(Overlay::Help) {
            self.help_scroll = if down {
                self.help_scroll + WHEEL_ROWS
            } else {
                self.help_scroll.saturating_sub(WHEEL_ROWS)
            };
            return;
        }
        if self.screen() == Screen::Session && self.session.as_ref().is_some_and(|s| s.tab == Tab::Timeline) {
            self.pan(if down { 0.1 } else { -0.1 });
            return;
        }
        let len = self.current_len();
        if let Some(c) = self.current_cursor_mut() {
            if down {
                c.down(WHEEL_ROWS, len);
            } else {
                c.up(WHEEL_ROWS);
            }
        }
    }

    fn current_len(&self) -> usize {
        match self.screen() {
            Screen::Home => self.home.visible.len(),
            Screen::Messages => self.messages_len(),
            Screen::Turn => match self.turn.pane {
                Pane::First => self.snapshot.allocation_count(),
                Pane::Second => {
                    allocation_lines(&self.snapshot, &self.index, self.turn.allocations.selected).len()
                }
            },
            Screen::Message => self
                .message
                .as_ref()
                .and_then(|m| self.model().messages.get(m.msg))
                .and_then(|m| self.model().stun(&m))
                .map_or(1, |m| m.attributes.len() + 1),
            Screen::Session => {
                let Some(st) = self.session.as_ref() else { return 0 };
                let Some(sr) = self.session_report() else { return 0 };
                match st.tab {
                    Tab::Pairs => match st.pane {
                        Pane::First => sr.candidates.len() + sr.nat_mappings.len(),
                        Pane::Second => sr.pairs.len(),
                    },
                    Tab::Timeline => sr.timeline.len(),
                    Tab::Ladder => self.ladder_len(),
                    Tab::Findings => self
                        .index
                        .sessions
                        .get(st.session)
                        .map_or(0, |s| s.findings.len()),
                }
            }
        }
    }

    fn current_cursor(&self) -> Option<&Cursor> {
        Some(match self.screen() {
            Screen::Home => &self.home.cursor,
            Screen::Messages => &self.messages.cursor,
            Screen::Turn => match self.turn.pane {
                Pane::First => &self.turn.allocations,
                Pane::Second => &self.turn.detail,
            },
            Screen::Message => &self.message.as_ref()?.item,
            Screen::Session => {
                let st = self.session.as_ref()?;
                match st.tab {
                    Tab::Pairs => match st.pane {
                        Pane::First => &st.candidates,
                        Pane::Second => &st.pairs,
                    },
                    Tab::Ladder => &st.ladder,
                    Tab::Findings => &st.findings,
                    Tab::Timeline => return None,
                }
            }
        })
    }

    fn current_cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(match self.screen() {
            Screen::Home => &mut self.home.cursor,
            Screen::Messages => &mut self.messages.cursor,
            Screen::Turn => match self.turn.pane {
                Pane::First => &mut self.turn.allocations,
                Pane::Second => &mut self.turn.detail,
            },
            Screen::Message => &mut self.message.as_mut()?.item,
            Screen::Session => {
                let st = self.session.as_mut()?;
                match st.tab {
                    Tab::Pairs => match st.pane {
                        Pane::First => &mut st.candidates,
                        Pane::Second => &mut st.pairs,
                    },
                    Tab::Ladder => &mut st.ladder,
                    Tab::Findings => &mut st.findings,
                    Tab::Timeline => return None,
                }
            }
        })
    }
}
