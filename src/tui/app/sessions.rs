//! The home screen, the sessions list (`views::sessions` draws it): its filter and sort, the rows marked
//! for saving, and its keys. Its rows are the sessions and the TURN allocations no session used.
//!
//! Rows are remembered by [`RowKey`] (a session's id, an allocation's addresses), not by position, so the
//! selection and the marks survive a live snapshot that moves rows. It neither parses the filter
//! (`tui::filter`) nor works out what a row shows (`data::RowSummary`).
use super::{App, Cursor, Overlay, PromptKind, Screen};
use crate::tui::data::{RowRef, RowSummary, SeverityCounts};
use crate::tui::filter::Filter;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortKey {
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
    pub(crate) fn name(self) -> &'static str {
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

/// What a home row sorts by under one [`SortKey`], taken from its summary.
#[derive(Debug)]
enum RowOrder {
    Number(f64),
    Text(String),
    Name(&'static str),
    Count(usize),
    Findings(SeverityCounts),
}

impl RowOrder {
    fn of(key: SortKey, s: RowSummary) -> RowOrder {
        match key {
            SortKey::Start => RowOrder::Number(s.start),
            SortKey::Agents => RowOrder::Text(s.agents),
            SortKey::Outcome => RowOrder::Name(s.status.name()),
            SortKey::Pair => RowOrder::Text(s.pair),
            SortKey::Rtt => RowOrder::Number(s.rtt.unwrap_or(f64::INFINITY)),
            SortKey::Pairs => RowOrder::Count(s.pairs),
            SortKey::Findings => RowOrder::Findings(s.findings),
        }
    }

    /// Ascending order; for findings, the most severe first.
    fn cmp(&self, other: &RowOrder) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (RowOrder::Number(a), RowOrder::Number(b)) => a.total_cmp(b),
            (RowOrder::Text(a), RowOrder::Text(b)) => a.cmp(b),
            (RowOrder::Name(a), RowOrder::Name(b)) => a.cmp(b),
            (RowOrder::Count(a), RowOrder::Count(b)) => a.cmp(b),
            (RowOrder::Findings(a), RowOrder::Findings(b)) => b.cmp(a),
            // One refresh sorts by one key: every row has the same kind.
            _ => Ordering::Equal,
        }
    }
}

/// A row key that survives a new snapshot (rows can move when live data arrives).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RowKey {
    Session(String),
    Allocation(String, String),
}

#[derive(Debug)]
pub struct HomeState {
    pub(crate) cursor: Cursor,
    pub filter: String,
    pub(crate) sort: SortKey,
    pub(crate) descending: bool,
    /// Indices into `index.rows`, filtered and sorted.
    pub visible: Vec<usize>,
    pub(crate) marked: BTreeSet<RowKey>,
}

impl App {
    /// What keeps home row `row` (index into `index.rows`) across snapshots: its session's id, or its
    /// allocation's client and server.
    pub(crate) fn row_key(&self, row: usize) -> RowKey {
        let snapshot = &self.snapshot;
        match self.index.rows.get(row) {
            Some(RowRef::Session(i)) => RowKey::Session(
                snapshot
                    .session_brief(*i)
                    .map_or_else(String::new, |s| s.id.clone()),
            ),
            Some(RowRef::Allocation(i)) => match snapshot.allocation_brief(*i) {
                Some(a) => RowKey::Allocation(a.client.to_string(), a.server.to_string()),
                None => RowKey::Allocation(String::new(), String::new()),
            },
            None => RowKey::Session(String::new()),
        }
    }

    pub(super) fn home_selected_key(&self) -> Option<RowKey> {
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

    /// Re-applies the home filter and sort. Each row's summary is made, filtered and reduced to its sort
    /// key at once: holding every row's summary until the sort (their strings and lists) was a large
    /// part of the UI's peak on a busy server's capture.
    pub(crate) fn refresh_home(&mut self) {
        let filter = Filter::parse(&self.home.filter);
        let key = self.home.sort;
        let mut rows: Vec<(usize, RowOrder)> = self
            .index
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let s = RowSummary::of(&self.snapshot, &self.index, *r)?;
                filter.matches(&s).then(|| (i, RowOrder::of(key, s)))
            })
            .collect();
        rows.sort_by(|(ia, a), (ib, b)| a.cmp(b).then(ia.cmp(ib)));
        if self.home.descending {
            rows.reverse();
        }
        self.home.visible = rows.into_iter().map(|(i, _)| i).collect();
        self.home.cursor.clamp(self.home.visible.len());
    }

    pub(super) fn home_key(&mut self, k: KeyEvent) {
        let len = self.home.visible.len();
        let page = self.page();
        if self.home.cursor.on_key(k.code, page, len) {
            return;
        }
        match k.code {
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
}
