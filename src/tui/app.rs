//! The UI state and what each key does to it: pure, no terminal, unit-tested with key sequences.
//!
//! Screens stack like sngrep's (sessions list → session → message; `Esc` pops). Keys that need the outside
//! world (saving a pcap, writing JSON, quitting) come back as an [`Action`] for the event loop to carry out.
//! Lists keep their scroll offset in a `Cell` so that a render, which only sees `&App`, can keep the
//! selection in view the way ratatui's stateful widgets do; only visible rows are ever formatted.
use super::data::{allocation_lines, Index, LiveCounters, RowRef, RowSummary, Snapshot};
use crate::analysis::Model;
use crate::report::Report;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Rows a mouse wheel notch scrolls.
const WHEEL_ROWS: usize = 3;

/// A selection in a list, and the first row shown (kept by the renderer).
#[derive(Debug, Default)]
pub struct Cursor {
    pub selected: usize,
    offset: Cell<usize>,
}

impl Cursor {
    pub fn up(&mut self, n: usize) {
        self.selected = self.selected.saturating_sub(n);
    }
    pub fn down(&mut self, n: usize, len: usize) {
        self.selected = (self.selected + n).min(len.saturating_sub(1));
    }
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }
    /// Rows `offset..end` to draw in `height` lines with the selection in view; remembers the offset so
    /// scrolling is sticky (the view moves only when the selection leaves it).
    pub fn window(&self, len: usize, height: usize) -> (usize, usize) {
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
    pub fn offset(&self) -> usize {
        self.offset.get()
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Pairs,
    Timeline,
    Ladder,
    Findings,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Pairs, Tab::Timeline, Tab::Ladder, Tab::Findings];
    pub fn title(self) -> &'static str {
        match self {
            Tab::Pairs => "Pairs",
            Tab::Timeline => "Timeline",
            Tab::Ladder => "Ladder",
            Tab::Findings => "Findings",
        }
    }
    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Start,
    Agents,
    Outcome,
    Pair,
    Rtt,
    Pairs,
    Findings,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        SortKey::Start,
        SortKey::Agents,
        SortKey::Outcome,
        SortKey::Pair,
        SortKey::Rtt,
        SortKey::Pairs,
        SortKey::Findings,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Start => "start",
            SortKey::Agents => "agents",
            SortKey::Outcome => "outcome",
            SortKey::Pair => "pair",
            SortKey::Rtt => "rtt",
            SortKey::Pairs => "pairs",
            SortKey::Findings => "findings",
        }
    }
}

/// What is saved or exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Index into `report.sessions`.
    Session(usize),
    /// Index into `report.turn.allocations`.
    Allocation(usize),
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    SavePcap { path: PathBuf, targets: Vec<Target> },
    ExportJson { path: PathBuf, target: Target },
}

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

/// Which pane of a two-pane screen has the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pane {
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

/// A row key that survives a new snapshot (rows can move when live data arrives).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKey {
    Session(String),
    Allocation(String, String),
}

#[derive(Debug)]
pub struct HomeState {
    pub cursor: Cursor,
    pub filter: String,
    pub sort: SortKey,
    pub descending: bool,
    /// Indices into `index.rows`, filtered and sorted.
    pub visible: Vec<usize>,
    pub marked: BTreeSet<RowKey>,
}

#[derive(Debug)]
pub struct TimelineState {
    /// Index into the session's timeline events.
    pub event: usize,
    /// The pair whose lane is selected.
    pub lane: usize,
    /// Visible window: start (epoch seconds) and span (seconds).
    pub start: f64,
    pub span: f64,
}

#[derive(Debug)]
pub struct SessionState {
    /// Index into `report.sessions`.
    pub session: usize,
    pub tab: Tab,
    /// Pairs tab: candidates (first) or pairs (second).
    pub pane: Pane,
    pub candidates: Cursor,
    pub pairs: Cursor,
    pub timeline: TimelineState,
    /// Index into the ladder's shown rows.
    pub ladder: Cursor,
    /// First ladder column drawn (when the columns do not fit).
    pub ladder_column: usize,
    /// Show ChannelData that carried media.
    pub ladder_media: bool,
    pub findings: Cursor,
    /// Which evidence frame of the selected finding Enter opens.
    pub evidence: usize,
}

#[derive(Debug, Default)]
pub struct TurnState {
    pub allocations: Cursor,
    pub detail: Cursor,
    pub pane: Pane,
}

/// Where a message was opened from, for ←/→ (previous/next message of that list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageContext {
    Ladder,
    AllMessages,
    Single,
}

#[derive(Debug)]
pub struct MessageState {
    /// Index into `model.messages`.
    pub msg: usize,
    /// 0 = the header, i + 1 = attribute i.
    pub item: Cursor,
    pub pane: Pane,
    pub hex_scroll: Cell<usize>,
    pub context: MessageContext,
}

#[derive(Debug, Default)]
pub struct MessagesState {
    pub cursor: Cursor,
    pub filter: String,
    /// Indices into `model.messages` matching the filter; `None` when there is no filter.
    pub visible: Option<Vec<usize>>,
}

/// Something the mouse can hit, registered by the last render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// The current list: row `offset + (y - area.y)`.
    List {
        offset: usize,
    },
    Tab(Tab),
}

pub struct App {
    pub snapshot: Snapshot,
    pub index: Index,
    pub stack: Vec<Screen>,
    pub home: HomeState,
    pub session: Option<SessionState>,
    pub turn: TurnState,
    pub message: Option<MessageState>,
    pub messages: MessagesState,
    pub overlay: Option<Overlay>,
    pub help_scroll: usize,
    /// A one-line result of the last action (saved to …), shown in the status bar until the next key.
    pub status: Option<String>,
    pub color: bool,
    pub paused: bool,
    /// A live snapshot that arrived while paused, shown on resume (only the newest is kept).
    pub pending: Option<Snapshot>,
    /// A live capture's counters, refreshed every tick whether paused or not (the status bar shows them).
    pub live: Option<LiveCounters>,
    /// Lines of the last drawn list (for PgUp/PgDn).
    pub page: Cell<usize>,
    pub hits: RefCell<Vec<(Rect, Hit)>>,
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

impl App {
    pub fn new(snapshot: Snapshot) -> App {
        let index = Index::build(&snapshot.report, &snapshot.model);
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
            turn: TurnState::default(),
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

    /// A new snapshot (live mode): keeps what is open by id, re-derives everything else.
    pub fn replace(&mut self, snapshot: Snapshot) {
        let home_key = self.home_selected_key();
        let session_id = self
            .session
            .as_ref()
            .and_then(|s| self.report().sessions.get(s.session))
            .map(|s| s.id.clone());
        self.index = Index::build(&snapshot.report, &snapshot.model);
        self.snapshot = snapshot;
        self.refresh_home();
        if let Some(k) = home_key {
            if let Some(pos) = self.home.visible.iter().position(|&r| self.row_key(r) == k) {
                self.home.cursor.selected = pos;
            }
        }
        if let (Some(id), Some(st)) = (session_id, self.session.as_mut()) {
            match self.snapshot.report.sessions.iter().position(|s| s.id == id) {
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
        self.turn
            .allocations
            .clamp(self.snapshot.report.turn.allocations.len());
    }

    fn row_key(&self, row: usize) -> RowKey {
        match self.index.rows.get(row) {
            Some(RowRef::Session(i)) => RowKey::Session(self.report().sessions[*i].id.clone()),
            Some(RowRef::Allocation(i)) => {
                let a = &self.report().turn.allocations[*i];
                RowKey::Allocation(a.client.clone(), a.server.clone())
            }
            None => RowKey::Session(String::new()),
        }
    }

    fn home_selected_key(&self) -> Option<RowKey> {
        self.home
            .visible
            .get(self.home.cursor.selected)
            .map(|&r| self.row_key(r))
    }

    /// The home row under the cursor.
    pub fn home_row(&self) -> Option<RowRef> {
        self.home
            .visible
            .get(self.home.cursor.selected)
            .and_then(|&r| self.index.rows.get(r).copied())
    }

    /// Re-applies the home filter and sort.
    pub fn refresh_home(&mut self) {
        let filter = Filter::parse(&self.home.filter);
        let report = &self.snapshot.report;
        let mut rows: Vec<(usize, RowSummary)> = self
            .index
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i, RowSummary::of(report, &self.index, *r)))
            .filter(|(_, s)| filter.matches(s))
            .collect();
        let key = self.home.sort;
        rows.sort_by(|(ia, a), (ib, b)| {
            let ord = match key {
                SortKey::Start => a.start.total_cmp(&b.start),
                SortKey::Agents => a.agents.cmp(&b.agents),
                SortKey::Outcome => a.outcome.cmp(b.outcome),
                SortKey::Pair => a.pair.cmp(&b.pair),
                SortKey::Rtt => a
                    .rtt
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.rtt.unwrap_or(f64::INFINITY)),
                SortKey::Pairs => a.pairs.cmp(&b.pairs),
                SortKey::Findings => b.findings.cmp(&a.findings),
            };
            ord.then(ia.cmp(ib))
        });
        if self.home.descending {
            rows.reverse();
        }
        self.home.visible = rows.into_iter().map(|(i, _)| i).collect();
        self.home.cursor.clamp(self.home.visible.len());
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

    fn on_overlay_key(&mut self, overlay: Overlay, k: KeyEvent) -> Action {
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

    fn apply_messages_filter(&mut self) {
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
            let v = self
                .report()
                .messages
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    let line = crate::report::text::packet_line(m, t0).to_lowercase();
                    words.iter().all(|w| line.contains(w.as_str()))
                })
                .map(|(i, _)| i)
                .collect();
            self.messages.visible = Some(v);
        }
        self.messages.cursor.selected = 0;
    }

    fn open_prompt(&mut self, kind: PromptKind, input: String) {
        self.overlay = Some(Overlay::Prompt {
            kind,
            input,
            previous: String::new(),
        });
    }

    /// What `w` saves on this screen: marked home rows, else the row, session or allocation in view.
    pub fn save_targets(&self) -> Vec<Target> {
        let to_target = |r: RowRef| match r {
            RowRef::Session(i) => Target::Session(i),
            RowRef::Allocation(i) => Target::Allocation(i),
        };
        match self.screen() {
            Screen::Home => {
                let marked: Vec<Target> = self
                    .index
                    .rows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.home.marked.contains(&self.row_key(*i)))
                    .map(|(_, r)| to_target(*r))
                    .collect();
                if marked.is_empty() {
                    self.home_row().map(to_target).into_iter().collect()
                } else {
                    marked
                }
            }
            Screen::Turn if !self.report().turn.allocations.is_empty() => {
                vec![Target::Allocation(self.turn.allocations.selected)]
            }
            _ => {
                let on_stack = |s: Screen| self.stack.contains(&s);
                if on_stack(Screen::Session) {
                    self.session.iter().map(|s| Target::Session(s.session)).collect()
                } else if on_stack(Screen::Turn) && !self.report().turn.allocations.is_empty() {
                    vec![Target::Allocation(self.turn.allocations.selected)]
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn target_name(&self, t: Target) -> String {
        match t {
            Target::Session(i) => self
                .report()
                .sessions
                .get(i)
                .map_or("session".into(), |s| s.id.clone()),
            Target::Allocation(i) => self
                .report()
                .turn
                .allocations
                .get(i)
                .and_then(|a| a.client.parse::<std::net::SocketAddr>().ok())
                .map_or("allocation".into(), |a| format!("turn-{}", a.port())),
        }
    }

    fn default_name(&self, targets: &[Target], ext: &str) -> String {
        let stem = self
            .report()
            .inputs
            .first()
            .map(|i| {
                std::path::Path::new(&i.path)
                    .file_stem()
                    .map_or("capture".into(), |s| s.to_string_lossy().into_owned())
            })
            .filter(|s| s != "-" && !s.is_empty())
            .unwrap_or_else(|| "capture".into());
        let names: Vec<String> = targets.iter().map(|t| self.target_name(*t)).collect();
        format!("{stem}-{}.{ext}", names.join("+"))
    }

    fn open_save_prompt(&mut self) {
        let src = &self.snapshot.source;
        if src.live && src.inputs.is_empty() {
            // The analysis keeps messages, not packets: only a `-w` savefile can be re-read.
            self.status = Some(
                "saving packets needs -w FILE: run iceview live -w capture.pcap (e exports JSON)".into(),
            );
            return;
        }
        let targets = self.save_targets();
        if targets.is_empty() {
            self.status = Some("nothing to save here: select a session or an allocation".into());
            return;
        }
        let name = self.default_name(&targets, "pcap");
        self.open_prompt(PromptKind::SavePcap(targets), name);
    }

    fn open_export_prompt(&mut self) {
        let Some(&target) = self.save_targets().first() else {
            self.status = Some("nothing to export here: select a session or an allocation".into());
            return;
        };
        let name = self.default_name(&[target], "json");
        self.open_prompt(PromptKind::ExportJson(target), name);
    }

    // ---- home ------------------------------------------------------------------------------------

    fn home_key(&mut self, k: KeyEvent) {
        let len = self.home.visible.len();
        let page = self.page();
        let c = &mut self.home.cursor;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => c.up(1),
            KeyCode::Down | KeyCode::Char('j') => c.down(1, len),
            KeyCode::PageUp => c.up(page),
            KeyCode::PageDown => c.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
            KeyCode::End | KeyCode::Char('G') => c.down(len, len),
            KeyCode::Enter => self.open_home_row(),
            KeyCode::Char(' ') => {
                if let Some(&r) = self.home.visible.get(self.home.cursor.selected) {
                    let key = self.row_key(r);
                    if !self.home.marked.remove(&key) {
                        self.home.marked.insert(key);
                    }
                    self.home.cursor.down(1, len);
                }
            }
            KeyCode::Char('/') => {
                let current = self.home.filter.clone();
                self.overlay = Some(Overlay::Prompt {
                    kind: PromptKind::Filter(Screen::Home),
                    input: current.clone(),
                    previous: current,
                });
            }
            KeyCode::Char('s') => {
                let i = SortKey::ALL
                    .iter()
                    .position(|s| *s == self.home.sort)
                    .unwrap_or(0);
                self.home.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
                self.refresh_home();
            }
            KeyCode::Char('S') => {
                self.home.descending = !self.home.descending;
                self.refresh_home();
            }
            _ => {}
        }
    }

    fn open_home_row(&mut self) {
        match self.home_row() {
            Some(RowRef::Session(i)) => self.open_session(i),
            Some(RowRef::Allocation(i)) => self.open_turn(Some(i)),
            None => {}
        }
    }

    /// Opens session `i` (index into `report.sessions`) on its pairs tab.
    pub fn open_session(&mut self, i: usize) {
        let Some(s) = self.report().sessions.get(i) else {
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

    fn open_turn(&mut self, allocation: Option<usize>) {
        if let Some(i) = allocation {
            self.turn.allocations.selected = i;
            self.turn.detail = Cursor::default();
        }
        self.turn.pane = Pane::First;
        self.push_screen(Screen::Turn);
    }

    /// Shows `screen`: back to it if it is already open further down (so going back never revisits a
    /// screen twice and the stack stays as deep as there are kinds of screen), else on top.
    fn push_screen(&mut self, screen: Screen) {
        match self.stack.iter().position(|s| *s == screen) {
            Some(i) => self.stack.truncate(i + 1),
            None => self.stack.push(screen),
        }
    }

    /// Opens the message detail for message `mi`.
    pub fn open_message(&mut self, mi: usize, context: MessageContext) {
        if mi >= self.model().messages.len() {
            return;
        }
        self.message = Some(MessageState {
            msg: mi,
            item: Cursor::default(),
            pane: Pane::First,
            hex_scroll: Cell::new(usize::MAX),
            context,
        });
        self.push_screen(Screen::Message);
        self.select_interesting_attribute();
    }

    /// Opens the message recorded for `frame`, or says why not.
    pub fn open_frame(&mut self, frame: u64) {
        match self.index.message_at_frame(self.model(), frame) {
            Some(mi) => self.open_message(mi, MessageContext::Single),
            None => {
                self.status = Some(format!(
                    "frame {frame} holds no STUN/TURN message (ICMP, media or not stored)"
                ))
            }
        }
    }

    /// On opening a message, select the attribute a reader most likely wants: the error code, the mapped
    /// or relayed address, else the header.
    fn select_interesting_attribute(&mut self) {
        let Some(st) = self.message.as_ref() else { return };
        let model = &self.snapshot.model;
        let Some(msg) = model.messages.get(st.msg).and_then(|m| model.stun(m)) else {
            return;
        };
        use crate::wire::stun as s;
        let want = [
            s::ATTR_ERROR_CODE,
            s::ATTR_XOR_MAPPED_ADDRESS,
            s::ATTR_XOR_RELAYED_ADDRESS,
        ];
        let pos = want
            .iter()
            .find_map(|t| msg.attributes.iter().position(|a| a.typ == *t));
        if let (Some(p), Some(st)) = (pos, self.message.as_mut()) {
            st.item.selected = p + 1;
        }
    }

    // ---- session ---------------------------------------------------------------------------------

    fn session_key(&mut self, k: KeyEvent) {
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

    pub fn switch_tab(&mut self, i: usize) {
        if let Some(s) = self.session.as_mut() {
            s.tab = Tab::ALL[i.min(Tab::ALL.len() - 1)];
        }
    }

    fn session_report(&self) -> Option<&crate::analysis::sessions::SessionReport> {
        self.session
            .as_ref()
            .and_then(|s| self.snapshot.report.sessions.get(s.session))
    }

    fn pairs_key(&mut self, k: KeyEvent) {
        let Some(sr) = self.session_report() else { return };
        let (np, nc) = (sr.pairs.len(), sr.candidates.len() + sr.nat_mappings.len());
        let page = self.page();
        let Some(st) = self.session.as_mut() else { return };
        let (c, len) = match st.pane {
            Pane::First => (&mut st.candidates, nc),
            Pane::Second => (&mut st.pairs, np),
        };
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => c.up(1),
            KeyCode::Down | KeyCode::Char('j') => c.down(1, len),
            KeyCode::PageUp => c.up(page),
            KeyCode::PageDown => c.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
            KeyCode::End | KeyCode::Char('G') => c.down(len, len),
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

    fn timeline_key(&mut self, k: KeyEvent) {
        let Some(sr) = self.session_report() else { return };
        let n = sr.timeline.len();
        let lanes = sr.pairs.len();
        let Some(st) = self.session.as_ref() else { return };
        let tl = &st.timeline;
        let shift = k.modifiers.contains(KeyModifiers::SHIFT);
        match k.code {
            KeyCode::Left | KeyCode::Char('h') if !shift => {
                self.timeline_to_event(tl.event.saturating_sub(1))
            }
            KeyCode::Right | KeyCode::Char('l') if !shift => {
                self.timeline_to_event((tl.event + 1).min(n.saturating_sub(1)))
            }
            KeyCode::Home | KeyCode::Char('g') => self.timeline_to_event(0),
            KeyCode::End | KeyCode::Char('G') => self.timeline_to_event(n.saturating_sub(1)),
            KeyCode::Up | KeyCode::Char('k') if lanes > 0 => {
                let lane = tl.lane.saturating_sub(1);
                self.timeline_to_lane(lane, Some(tl.event));
            }
            KeyCode::Down | KeyCode::Char('j') if lanes > 0 => {
                let lane = (tl.lane + 1).min(lanes - 1);
                self.timeline_to_lane(lane, Some(tl.event));
            }
            KeyCode::Char('+') | KeyCode::Char('=') => self.zoom(0.5),
            KeyCode::Char('-') | KeyCode::Char('_') => self.zoom(2.0),
            KeyCode::Char('0') => {
                let (start, span) = timeline_extent(sr);
                if let Some(st) = self.session.as_mut() {
                    st.timeline.start = start;
                    st.timeline.span = span;
                }
            }
            KeyCode::Left | KeyCode::Char('H') => self.pan(-0.25),
            KeyCode::Right | KeyCode::Char('L') => self.pan(0.25),
            KeyCode::Enter => {
                if let Some(e) = sr.timeline.get(tl.event) {
                    let frame = e.frame;
                    self.open_frame(frame);
                }
            }
            _ => {}
        }
    }

    fn zoom(&mut self, factor: f64) {
        let Some(sr) = self.session_report() else { return };
        let (_, full) = timeline_extent(sr);
        let cursor_ts = self
            .session
            .as_ref()
            .and_then(|st| sr.timeline.get(st.timeline.event))
            .map(|e| e.ts);
        let Some(st) = self.session.as_mut() else { return };
        let tl = &mut st.timeline;
        // A microsecond per column is finer than pcap timestamps; twice the whole session is coarse enough.
        let span = (tl.span * factor).clamp(1e-6, full * 2.0);
        let centre = cursor_ts.unwrap_or(tl.start + tl.span / 2.0);
        let rel = if tl.span > 0.0 {
            ((centre - tl.start) / tl.span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        tl.start = centre - rel * span;
        tl.span = span;
    }

    fn pan(&mut self, fraction: f64) {
        if let Some(st) = self.session.as_mut() {
            st.timeline.start += st.timeline.span * fraction;
        }
    }

    /// Moves the timeline cursor to event `i`, its lane along, and scrolls the window to show it.
    fn timeline_to_event(&mut self, i: usize) {
        let Some(sr) = self.session_report() else { return };
        let Some(e) = sr.timeline.get(i) else { return };
        let (ts, pair) = (e.ts, e.pair);
        let Some(st) = self.session.as_mut() else { return };
        let tl = &mut st.timeline;
        tl.event = i;
        tl.lane = pair;
        if ts < tl.start || ts > tl.start + tl.span {
            tl.start = ts - tl.span / 2.0;
        }
    }

    /// Selects a lane and moves the cursor to that lane's event nearest in time to event `near`.
    fn timeline_to_lane(&mut self, lane: usize, near: Option<usize>) {
        let Some(sr) = self.session_report() else { return };
        let at = near.and_then(|i| sr.timeline.get(i)).map(|e| e.ts);
        let best = sr
            .timeline
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pair == lane)
            .min_by(|(_, a), (_, b)| match at {
                Some(t) => (a.ts - t).abs().total_cmp(&(b.ts - t).abs()),
                None => a.ts.total_cmp(&b.ts),
            })
            .map(|(i, _)| i);
        match best {
            Some(i) => self.timeline_to_event(i),
            None => {
                if let Some(st) = self.session.as_mut() {
                    st.timeline.lane = lane;
                }
            }
        }
    }

    /// Number of ladder rows shown and the ladder row (index into the scope's ladder) at position `pos`.
    pub fn ladder_row_at(&self, pos: usize) -> Option<usize> {
        let st = self.session.as_ref()?;
        let scope = self.index.sessions.get(st.session)?;
        if st.ladder_media {
            (pos < scope.ladder.len()).then_some(pos)
        } else {
            scope.ladder_signalling.get(pos).copied()
        }
    }

    pub fn ladder_len(&self) -> usize {
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

    fn ladder_key(&mut self, k: KeyEvent) {
        let len = self.ladder_len();
        let page = self.page();
        let ncols = self
            .session
            .as_ref()
            .and_then(|s| self.index.sessions.get(s.session))
            .map_or(0, |s| s.columns.len());
        let Some(st) = self.session.as_mut() else { return };
        let c = &mut st.ladder;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => c.up(1),
            KeyCode::Down | KeyCode::Char('j') => c.down(1, len),
            KeyCode::PageUp => c.up(page),
            KeyCode::PageDown => c.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
            KeyCode::End | KeyCode::Char('G') => c.down(len, len),
            KeyCode::Left | KeyCode::Char('h') => st.ladder_column = st.ladder_column.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => {
                st.ladder_column = (st.ladder_column + 1).min(ncols.saturating_sub(1))
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
                let pos = c.selected;
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

    fn findings_key(&mut self, k: KeyEvent) {
        let Some(st) = self.session.as_ref() else { return };
        let Some(scope) = self.index.sessions.get(st.session) else {
            return;
        };
        let list: Vec<usize> = scope.findings.clone();
        let len = list.len();
        let page = self.page();
        let frames: Vec<u64> = list
            .get(st.findings.selected)
            .and_then(|&f| self.report().findings.get(f))
            .map_or(Vec::new(), |f| f.frames.clone());
        let Some(st) = self.session.as_mut() else { return };
        let before = st.findings.selected;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => st.findings.up(1),
            KeyCode::Down | KeyCode::Char('j') => st.findings.down(1, len),
            KeyCode::PageUp => st.findings.up(page),
            KeyCode::PageDown => st.findings.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => st.findings.selected = 0,
            KeyCode::End | KeyCode::Char('G') => st.findings.down(len, len),
            KeyCode::Left | KeyCode::Char('h') => st.evidence = st.evidence.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => {
                st.evidence = (st.evidence + 1).min(frames.len().saturating_sub(1))
            }
            KeyCode::Enter => match frames.get(st.evidence.min(frames.len().saturating_sub(1))) {
                Some(&f) => self.open_frame(f),
                None => self.status = Some("this finding names no evidence frame".into()),
            },
            _ => {}
        }
        if let Some(st) = self.session.as_mut() {
            if st.findings.selected != before {
                st.evidence = 0;
            }
        }
    }

    // ---- TURN ------------------------------------------------------------------------------------

    fn turn_key(&mut self, k: KeyEvent) {
        let n = self.report().turn.allocations.len();
        let page = self.page();
        let lines = if self.turn.pane == Pane::Second || k.code == KeyCode::Enter {
            allocation_lines(self.report(), &self.index, self.turn.allocations.selected)
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
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => c.up(1),
            KeyCode::Down | KeyCode::Char('j') => c.down(1, len),
            KeyCode::PageUp => c.up(page),
            KeyCode::PageDown => c.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
            KeyCode::End | KeyCode::Char('G') => c.down(len, len),
            KeyCode::Enter => match t.pane {
                Pane::First => t.pane = Pane::Second,
                Pane::Second => match lines.get(t.detail.selected).and_then(|l| l.frame) {
                    Some(f) => self.open_frame(f),
                    None => self.status = Some("this line points at no frame".into()),
                },
            },
            _ => {}
        }
        if self.turn.allocations.selected != before {
            self.turn.detail = Cursor::default();
        }
    }

    // ---- message detail --------------------------------------------------------------------------

    fn message_key(&mut self, k: KeyEvent) {
        let Some(st) = self.message.as_ref() else {
            self.stack.pop();
            return;
        };
        let mi = st.msg;
        let items = self
            .model()
            .messages
            .get(mi)
            .and_then(|m| self.model().stun(m))
            .map_or(1, |m| m.attributes.len() + 1);
        let page = self.page();
        match k.code {
            KeyCode::Char('n') | KeyCode::Char('p') => {
                let tx = self.index.transaction_of(self.model(), mi);
                let pos = tx.iter().position(|&x| x == mi);
                let next = match (k.code, pos) {
                    (KeyCode::Char('n'), Some(p)) => tx.get(p + 1).copied(),
                    (KeyCode::Char('p'), Some(p)) if p > 0 => tx.get(p - 1).copied(),
                    _ => None,
                };
                match next {
                    Some(n) => {
                        let ctx = st.context;
                        self.open_message(n, ctx);
                    }
                    None => {
                        self.status = Some(format!(
                            "{} message of this transaction ({} in all)",
                            if k.code == KeyCode::Char('n') {
                                "last"
                            } else {
                                "first"
                            },
                            tx.len().max(1)
                        ))
                    }
                }
                return;
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char('[') | KeyCode::Char(']') => {
                let forward = matches!(k.code, KeyCode::Right | KeyCode::Char(']'));
                if let Some(n) = self.neighbour_message(forward) {
                    let ctx = st.context;
                    self.open_message(n, ctx);
                }
                return;
            }
            _ => {}
        }
        let Some(st) = self.message.as_mut() else { return };
        if k.code == KeyCode::Tab || k.code == KeyCode::BackTab {
            st.pane.toggle();
            return;
        }
        match st.pane {
            Pane::First => {
                let c = &mut st.item;
                match k.code {
                    KeyCode::Up | KeyCode::Char('k') => c.up(1),
                    KeyCode::Down | KeyCode::Char('j') => c.down(1, items),
                    KeyCode::PageUp => c.up(page),
                    KeyCode::PageDown => c.down(page, items),
                    KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
                    KeyCode::End | KeyCode::Char('G') => c.down(items, items),
                    _ => return,
                }
                // Let the hex view follow the newly selected item.
                st.hex_scroll.set(usize::MAX);
            }
            Pane::Second => {
                let s = st.hex_scroll.get();
                let s = if s == usize::MAX { 0 } else { s };
                let ns = match k.code {
                    KeyCode::Up | KeyCode::Char('k') => s.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => s + 1,
                    KeyCode::PageUp => s.saturating_sub(page),
                    KeyCode::PageDown => s + page,
                    KeyCode::Home | KeyCode::Char('g') => 0,
                    KeyCode::End | KeyCode::Char('G') => usize::MAX - 1,
                    _ => s,
                };
                st.hex_scroll.set(ns);
            }
        }
    }

    /// The message before or after the open one in the list it was opened from.
    fn neighbour_message(&self, forward: bool) -> Option<usize> {
        let st = self.message.as_ref()?;
        let step = |pos: usize, len: usize| -> Option<usize> {
            if forward {
                (pos + 1 < len).then_some(pos + 1)
            } else {
                pos.checked_sub(1)
            }
        };
        match st.context {
            MessageContext::Ladder => {
                let len = self.ladder_len();
                let pos = (0..len).find(|&p| self.ladder_message(p) == Some(st.msg))?;
                self.ladder_message(step(pos, len)?)
            }
            MessageContext::AllMessages => match &self.messages.visible {
                Some(v) => {
                    let pos = v.iter().position(|&x| x == st.msg)?;
                    v.get(step(pos, v.len())?).copied()
                }
                None => step(st.msg, self.model().messages.len()),
            },
            MessageContext::Single => step(st.msg, self.model().messages.len()),
        }
    }

    // ---- all messages ----------------------------------------------------------------------------

    pub fn messages_len(&self) -> usize {
        match &self.messages.visible {
            Some(v) => v.len(),
            None => self.model().messages.len(),
        }
    }

    pub fn messages_at(&self, pos: usize) -> Option<usize> {
        match &self.messages.visible {
            Some(v) => v.get(pos).copied(),
            None => (pos < self.model().messages.len()).then_some(pos),
        }
    }

    fn messages_key(&mut self, k: KeyEvent) {
        let len = self.messages_len();
        let page = self.page();
        let c = &mut self.messages.cursor;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => c.up(1),
            KeyCode::Down | KeyCode::Char('j') => c.down(1, len),
            KeyCode::PageUp => c.up(page),
            KeyCode::PageDown => c.down(page, len),
            KeyCode::Home | KeyCode::Char('g') => c.selected = 0,
            KeyCode::End | KeyCode::Char('G') => c.down(len, len),
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

    // ---- mouse -----------------------------------------------------------------------------------

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
                c.down(WHEEL_ROWS, len)
            } else {
                c.up(WHEEL_ROWS)
            }
        }
    }

    fn current_len(&self) -> usize {
        match self.screen() {
            Screen::Home => self.home.visible.len(),
            Screen::Messages => self.messages_len(),
            Screen::Turn => match self.turn.pane {
                Pane::First => self.report().turn.allocations.len(),
                Pane::Second => {
                    allocation_lines(self.report(), &self.index, self.turn.allocations.selected).len()
                }
            },
            Screen::Message => self
                .message
                .as_ref()
                .and_then(|m| self.model().messages.get(m.msg))
                .and_then(|m| self.model().stun(m))
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

/// The window that shows a whole session's timeline, with a little margin.
pub fn timeline_extent(s: &crate::analysis::sessions::SessionReport) -> (f64, f64) {
    let first = s.timeline.first().map_or(s.first_ts, |e| e.ts);
    let last = s.timeline.last().map_or(s.last_ts, |e| e.ts);
    let span = (last - first).max(1e-3);
    (first - span * 0.02, span * 1.04)
}

/// A home-list filter: words all of which must match. `key:value` words test one field (`outcome:failed`,
/// `type:relay`, `cand:prflx`, `code:ice.failed`, `severity:error`, `turn:relay`, `kind:turn`, `id:s1`);
/// other words are looked up in the row's text (ufrags, addresses, outcome, finding codes).
#[derive(Debug, Default)]
pub struct Filter {
    terms: Vec<(Option<String>, String)>,
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        let terms = text
            .split_whitespace()
            .map(|w| {
                let w = w.to_lowercase();
                match w.split_once(':') {
                    Some((k, v))
                        if matches!(
                            k,
                            "outcome"
                                | "type"
                                | "cand"
                                | "code"
                                | "finding"
                                | "severity"
                                | "turn"
                                | "kind"
                                | "id"
                        ) =>
                    {
                        (Some(k.to_string()), v.to_string())
                    }
                    _ => (None, w),
                }
            })
            .collect();
        Filter { terms }
    }

    pub fn matches(&self, r: &RowSummary) -> bool {
        self.terms.iter().all(|(k, v)| match k.as_deref() {
            None => r.haystack.contains(v.as_str()),
            Some("outcome") => r.outcome.starts_with(v.as_str()),
            Some("type") => r.pair.to_lowercase().contains(v.as_str()),
            Some("cand") => r.candidate_types.iter().any(|t| t.starts_with(v.as_str())),
            Some("code") | Some("finding") => r.finding_codes.iter().any(|c| c.contains(v.as_str())),
            Some("severity") => match v.as_str() {
                "error" | "errors" => r.findings.0 > 0,
                "warning" | "warn" | "warnings" => r.findings.1 > 0,
                "info" => r.findings.2 > 0,
                _ => false,
            },
            Some("turn") => match v.as_str() {
                "yes" | "relay" => r.turn == "relay",
                "no" => r.turn == "-",
                other => r.turn == other,
            },
            Some("kind") => {
                let is_turn = r.id == "turn";
                match v.as_str() {
                    "turn" | "allocation" => is_turn,
                    "session" | "ice" => !is_turn,
                    _ => false,
                }
            }
            Some("id") => r.id == *v,
            Some(_) => false,
        })
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

    fn row(outcome: &'static str, pair: &str, codes: Vec<&'static str>) -> RowSummary {
        RowSummary {
            id: "s1".into(),
            outcome,
            pair: pair.into(),
            findings: (codes.len(), 0, 0),
            finding_codes: codes,
            candidate_types: vec!["host", "prflx"],
            turn: "-",
            haystack: "s1 abcd efgh 192.0.2.1:5000".into(),
            ..RowSummary::default()
        }
    }

    #[test]
    fn filter_terms_all_have_to_match() {
        let failed = row("failed", "", vec!["ice.failed.no-response"]);
        let relay = row("connected", "prflx↔relay", vec![]);
        let f = Filter::parse("outcome:failed");
        assert!(f.matches(&failed) && !f.matches(&relay));
        let f = Filter::parse("type:relay");
        assert!(!f.matches(&failed) && f.matches(&relay));
        let f = Filter::parse("code:no-response severity:error");
        assert!(f.matches(&failed) && !f.matches(&relay));
        let f = Filter::parse("cand:prflx ABCD 192.0.2.1");
        assert!(
            f.matches(&failed) && f.matches(&relay),
            "words are case-insensitive"
        );
        let f = Filter::parse("outcome:failed efgh nope");
        assert!(!f.matches(&failed));
        // An unknown key is an ordinary word (an IPv6 address has colons too).
        let f = Filter::parse("2001:db8::1");
        assert!(!f.matches(&failed));
        assert!(Filter::parse("").matches(&relay));
        assert!(Filter::parse("kind:session").matches(&relay));
        assert!(!Filter::parse("kind:turn").matches(&relay));
    }
}
