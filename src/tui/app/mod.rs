//! The UI state and what each key does to it: pure, no terminal, unit-tested with key sequences.
//!
//! Screens stack like sngrep's (sessions list → session → message; `Esc` pops). Keys that need the outside
//! world (saving a pcap, writing JSON, quitting) come back as an [`Action`] for the event loop to carry out.
//! Lists keep their scroll offset in a `Cell` so that a render, which only sees `&App`, can keep the
//! selection in view the way ratatui's stateful widgets do; only visible rows are ever formatted.
//!
//! This file is the map: the [`App`] that holds every screen's state, the screen stack, live snapshots,
//! and [`App::on_key`], which handles the keys every screen shares and hands the rest to the screen on
//! top. Each screen's state and keys live in a module named like its render function under `views/`:
//! `sessions` (the home list), `session` and its tabs `pairs`, `timeline`, `ladder` and `findings`, `turn`,
//! `message` and `messages`. `overlay` takes the keys of help and prompts, `save` decides what `w` and `e`
//! write, `mouse` turns clicks and the wheel into the same moves. The home filter's language is
//! `tui::filter`. Nothing here draws, and nothing here derives data from the report (`tui::data` does).
mod findings;
mod ladder;
mod message;
mod messages;
mod mouse;
mod overlay;
mod pairs;
mod save;
mod session;
mod sessions;
mod timeline;
mod turn;

pub(crate) use message::{MessageContext, MessageState};
pub(crate) use messages::MessagesState;
pub(crate) use mouse::Hit;
pub(crate) use overlay::{Overlay, PromptKind};
pub use save::Target;
pub(crate) use session::SessionState;
pub use session::Tab;
pub(crate) use sessions::{HomeState, SortKey};
pub(crate) use timeline::{timeline_extent, TimelineState};
pub(crate) use turn::TurnViewState;

use super::data::{Index, LiveCounters, Snapshot};
use crate::analysis::Model;
use crate::report::Report;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A selection in a list, and the first row shown (kept by the renderer).
#[derive(Debug, Default)]
pub struct Cursor {
    pub selected: usize,
    offset: Cell<usize>,
}

impl Cursor {
    pub(crate) fn up(&mut self, n: usize) {
        self.selected = self.selected.saturating_sub(n);
    }
    pub(crate) fn down(&mut self, n: usize, len: usize) {
        self.selected = (self.selected + n).min(len.saturating_sub(1));
    }
    pub(crate) fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }
    /// Rows `offset..end` to draw in `height` lines with the selection in view; remembers the offset so
    /// scrolling is sticky (the view moves only when the selection leaves it).
    pub(crate) fn window(&self, len: usize, height: usize) -> (usize, usize) {
        if height == 0 || len == 0 {
            return (0, 0);
        }
        let sel = self.selected.min(len - 1);
        let mut off = self.offset.get().min(len.saturating_sub(1));
        if sel < off {
            off = sel;
        } else if sel >= off + height {
            off = sel + 1 - height;
        }
        off = off.min(len.saturating_sub(height));
        self.offset.set(off);
        (off, (off + height).min(len))
    }
    /// The keys every list shares (↑↓ jk, PgUp PgDn, Home End gG): true when `code` was one of them and
    /// moved the selection in a list of `len` rows, `page` rows to a page.
    fn on_key(&mut self, code: KeyCode, page: usize, len: usize) -> bool {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.up(1),
            KeyCode::Down | KeyCode::Char('j') => self.down(1, len),
            KeyCode::PageUp => self.up(page),
            KeyCode::PageDown => self.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.down(len, len),
            _ => return false,
        }
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Home,
    Session,
    Turn,
    Message,
    Messages,
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    SavePcap { path: PathBuf, targets: Vec<Target> },
    ExportJson { path: PathBuf, target: Target },
}

/// Which pane of a two-pane screen has the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Pane {
    #[default]
    First,
    Second,
}

impl Pane {
    fn toggle(&mut self) {
        *self = match self {
            Pane::First => Pane::Second,
            Pane::Second => Pane::First,
        }
    }
}

/// Folded items read back whole, and ladders laid out, kept at most per kind before those not shown go
/// ([`App::trim_cache`]): reading one back again takes milliseconds, so only browsing far keeps paying it.
pub const KEPT_WHOLE: usize = 64;

pub struct App {
    pub snapshot: Snapshot,
    pub index: Index,
    pub stack: Vec<Screen>,
    pub home: HomeState,
    pub session: Option<SessionState>,
    pub(crate) turn: TurnViewState,
    pub message: Option<MessageState>,
    pub(crate) messages: MessagesState,
    pub overlay: Option<Overlay>,
    pub(crate) help_scroll: usize,
    /// A one-line result of the last action (saved to …), shown in the status bar until the next key.
    pub status: Option<String>,
    pub color: bool,
    pub paused: bool,
    /// A live snapshot that arrived while paused, shown on resume (only the newest is kept).
    pub(crate) pending: Option<Snapshot>,
    /// A live capture's counters, refreshed every tick whether paused or not (the status bar shows them).
    pub live: Option<LiveCounters>,
    /// Lines of the last drawn list (for PgUp/PgDn).
    pub(crate) page: Cell<usize>,
    pub(crate) hits: RefCell<Vec<(Rect, Hit)>>,
}

impl App {
    pub fn new(snapshot: Snapshot) -> App {
        let index = Index::build(&snapshot);
        let mut app = App {
            snapshot,
            index,
            stack: vec![Screen::Home],
            home: HomeState {
                cursor: Cursor::default(),
                filter: String::new(),
                sort: SortKey::Start,
                descending: false,
                visible: Vec::new(),
                marked: BTreeSet::new(),
            },
            session: None,
            turn: TurnViewState::default(),
            message: None,
            messages: MessagesState::default(),
            overlay: None,
            help_scroll: 0,
            status: None,
            color: true,
            paused: false,
            pending: None,
            live: None,
            page: Cell::new(10),
            hits: RefCell::new(Vec::new()),
        };
        app.refresh_home();
        app
    }

    pub fn report(&self) -> &Report {
        &self.snapshot.report
    }

    pub fn model(&self) -> &Model {
        &self.snapshot.model
    }

    /// The session the session view shows (an index into the snapshot's sessions), if one is open.
    pub fn shown_session(&self) -> Option<usize> {
        self.session.as_ref().map(|s| s.session)
    }

    pub fn screen(&self) -> Screen {
        self.stack.last().copied().unwrap_or(Screen::Home)
    }

    /// A new live snapshot: shown at once, or held back while paused (`p`) and shown on resume. True when
    /// the display changed.
    pub fn offer(&mut self, snapshot: Snapshot) -> bool {
        if self.paused {
            self.pending = Some(snapshot);
            false
        } else {
            self.replace(snapshot);
            true
        }
    }

    /// Lets go of what views read back or laid out for items no longer shown, once more than
    /// [`KEPT_WHOLE`] of a kind are kept ([`Snapshot::forget_wholes`], [`Index::forget_ladders`]): the
    /// open session, its allocations and the TURN view's selected allocation stay. The event loop calls it
    /// after each key. Returns how many items' went.
    pub fn trim_cache(&mut self) -> usize {
        self.trim_cache_to(KEPT_WHOLE)
    }

    /// [`App::trim_cache`] with another bound than [`KEPT_WHOLE`].
    pub fn trim_cache_to(&mut self, bound: usize) -> usize {
        let open = self.shown_session();
        let mut allocations: Vec<usize> = open
            .and_then(|si| self.index.sessions.get(si))
            .map(|scope| scope.allocations.clone())
            .unwrap_or_default();
        allocations.push(self.turn.allocations.selected);
        let sessions: Vec<usize> = open.into_iter().collect();
        self.snapshot.forget_wholes(bound, &sessions, &allocations) + self.index.forget_ladders(bound, open)
    }

    /// A new snapshot (live mode): keeps what is open by id, re-derives everything else.
    pub fn replace(&mut self, snapshot: Snapshot) {
        let home_key = self.home_selected_key();
        let session_id = self
            .session
            .as_ref()
            .and_then(|s| self.snapshot.session_brief(s.session))
            .map(|s| s.id.clone());
        self.index = Index::build(&snapshot);
        self.snapshot = snapshot;
        self.refresh_home();
        if let Some(k) = home_key {
            if let Some(pos) = self.home.visible.iter().position(|&r| self.row_key(r) == k) {
                self.home.cursor.selected = pos;
            }
        }
        if let (Some(id), Some(st)) = (session_id, self.session.as_mut()) {
            match self.snapshot.session_briefs().position(|s| s.id == id) {
                Some(i) => st.session = i,
                None => {
                    self.session = None;
                    self.stack.retain(|s| *s != Screen::Session);
                }
            }
        }
        let n = self.snapshot.model.messages.len();
        if self.message.as_ref().is_some_and(|m| m.msg >= n) {
            self.message = None;
            self.stack.retain(|s| *s != Screen::Message);
        }
        if !self.messages.filter.is_empty() {
            self.apply_messages_filter();
        }
        self.turn.allocations.clamp(self.snapshot.allocation_count());
    }

    fn page(&self) -> usize {
        self.page.get().max(1)
    }

    // ---- keys ------------------------------------------------------------------------------------

    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            return Action::Quit;
        }
        self.status = None;
        if let Some(overlay) = self.overlay.take() {
            return self.on_overlay_key(overlay, k);
        }
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.overlay = Some(Overlay::Help);
                self.help_scroll = 0;
                return Action::None;
            }
            KeyCode::Esc | KeyCode::Backspace => {
                self.back();
                return Action::None;
            }
            KeyCode::Char('w') | KeyCode::F(2) => {
                self.open_save_prompt();
                return Action::None;
            }
            KeyCode::Char('e') => {
                self.open_export_prompt();
                return Action::None;
            }
            KeyCode::Char('t') if self.screen() != Screen::Turn => {
                self.open_turn(None);
                return Action::None;
            }
            KeyCode::Char('m') if self.screen() != Screen::Messages => {
                self.push_screen(Screen::Messages);
                return Action::None;
            }
            KeyCode::Char('P') => {
                self.toggle_pause();
                return Action::None;
            }
            KeyCode::Char('p') if self.screen() != Screen::Message => {
                self.toggle_pause();
                return Action::None;
            }
            _ => {}
        }
        match self.screen() {
            Screen::Home => self.home_key(k),
            Screen::Session => self.session_key(k),
            Screen::Turn => self.turn_key(k),
            Screen::Message => self.message_key(k),
            Screen::Messages => self.messages_key(k),
        }
        Action::None
    }

    fn toggle_pause(&mut self) {
        if self.snapshot.source.live {
            // No status message: the title says PAUSED, and the status bar keeps the live counters.
            self.paused = !self.paused;
            if !self.paused {
                if let Some(s) = self.pending.take() {
                    self.replace(s);
                }
            }
        } else {
            self.status = Some("pause applies to live captures; this is a file".into());
        }
    }

    fn back(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        } else if !self.home.filter.is_empty() {
            self.home.filter.clear();
            self.refresh_home();
        }
    }

    /// Shows `screen`: back to it if it is already open further down (so going back never revisits a
    /// screen twice and the stack stays as deep as there are kinds of screen), else on top.
    fn push_screen(&mut self, screen: Screen) {
        match self.stack.iter().position(|s| *s == screen) {
            Some(i) => self.stack.truncate(i + 1),
            None => self.stack.push(screen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cursor_window_keeps_the_selection_in_view_and_scrolls_only_when_it_leaves() {
        let mut c = Cursor::default();
        assert_eq!(c.window(100, 10), (0, 10));
        c.down(9, 100);
        assert_eq!(c.window(100, 10), (0, 10), "still in view: no scroll");
        c.down(1, 100);
        assert_eq!(c.window(100, 10), (1, 11), "one past the bottom: one line");
        c.up(3);
        assert_eq!(c.window(100, 10), (1, 11), "back inside: the view stays");
        c.down(1000, 100);
        assert_eq!(c.selected, 99);
        assert_eq!(c.window(100, 10), (90, 100));
        // The list shrank (a new filter): the offset follows.
        c.clamp(5);
        assert_eq!(c.window(5, 10), (0, 5));
        assert_eq!(c.window(0, 10), (0, 0));
        assert_eq!(c.window(5, 0), (0, 0));
    }
}
