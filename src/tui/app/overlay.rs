//! Keys while an overlay is open: the help page scrolls, and a prompt edits one line of text, a filter
//! (the home list refilters as the user types) or the name of the file a save or export will write. Esc
//! closes a prompt and puts a filter's previous text back.
//!
//! What a save applies to is decided in `save`; writing the file is the event loop's, asked for with an
//! [`Action`].
use super::{Action, App, Screen, Target};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Filter(Screen),
    SavePcap(Vec<Target>),
    ExportJson(Target),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Prompt {
        kind: PromptKind,
        input: String,
        /// The filter before the prompt opened (restored by Esc).
        previous: String,
    },
}

impl App {
    pub(super) fn on_overlay_key(&mut self, overlay: Overlay, k: KeyEvent) -> Action {
        match overlay {
            Overlay::Help => {
                match k.code {
                    KeyCode::Esc
                    | KeyCode::Char('?')
                    | KeyCode::Char('q')
                    | KeyCode::Enter
                    | KeyCode::F(1) => {}
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.help_scroll += 1;
                        self.overlay = Some(Overlay::Help);
                    }
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.help_scroll = self.help_scroll.saturating_sub(1);
                        self.overlay = Some(Overlay::Help);
                    }
                    KeyCode::PageDown => {
                        self.help_scroll += self.page();
                        self.overlay = Some(Overlay::Help);
                    }
                    KeyCode::PageUp => {
                        self.help_scroll = self.help_scroll.saturating_sub(self.page());
                        self.overlay = Some(Overlay::Help);
                    }
                    _ => self.overlay = Some(Overlay::Help),
                }
                Action::None
            }
            Overlay::Prompt {
                kind,
                mut input,
                previous,
            } => match k.code {
                KeyCode::Esc => {
                    if let PromptKind::Filter(screen) = kind {
                        self.set_filter(screen, previous, true);
                    }
                    Action::None
                }
                KeyCode::Enter => match kind {
                    PromptKind::Filter(screen) => {
                        self.set_filter(screen, input, true);
                        Action::None
                    }
                    PromptKind::SavePcap(targets) if !input.trim().is_empty() => Action::SavePcap {
                        path: PathBuf::from(input.trim()),
                        targets,
                    },
                    PromptKind::ExportJson(target) if !input.trim().is_empty() => Action::ExportJson {
                        path: PathBuf::from(input.trim()),
                        target,
                    },
                    _ => Action::None,
                },
                KeyCode::Backspace => {
                    input.pop();
                    self.prompt_edited(kind, input, previous);
                    Action::None
                }
                KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    input.clear();
                    self.prompt_edited(kind, input, previous);
                    Action::None
                }
                KeyCode::Char(c) if !c.is_control() => {
                    input.push(c);
                    self.prompt_edited(kind, input, previous);
                    Action::None
                }
                _ => {
                    self.overlay = Some(Overlay::Prompt {
                        kind,
                        input,
                        previous,
                    });
                    Action::None
                }
            },
        }
    }

    fn prompt_edited(&mut self, kind: PromptKind, input: String, previous: String) {
        // The home list is small: filter as the user types. The message list may hold 100k rows: on Enter.
        if kind == PromptKind::Filter(Screen::Home) {
            self.set_filter(Screen::Home, input.clone(), false);
        }
        self.overlay = Some(Overlay::Prompt {
            kind,
            input,
            previous,
        });
    }

    fn set_filter(&mut self, screen: Screen, text: String, final_: bool) {
        match screen {
            Screen::Messages => {
                if final_ {
                    self.messages.filter = text;
                    self.apply_messages_filter();
                }
            }
            _ => {
                self.home.filter = text;
                self.refresh_home();
            }
        }
    }

    pub(super) fn open_prompt(&mut self, kind: PromptKind, input: String) {
        self.overlay = Some(Overlay::Prompt {
            kind,
            input,
            previous: String::new(),
        });
    }
}
