//! The home screen, the sessions list (`views::sessions` draws it): its filter and sort, the rows marked
//! for saving, and its keys. Its rows are the sessions and the TURN allocations no session used.
//!
//! Rows are remembered by [`RowKey`] (a session's id, an allocation's addresses), not by position, so the
//! selection and the marks survive a live snapshot that moves rows. It neither parses the filter
//! (`tui::filter`) nor works out what a row shows (`data::RowSummary`).
use super::{App, Cursor, Overlay, PromptKind, Screen};
use crate::tui::data::{RowRef, RowSummary};
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
    pub(super) fn row_key(&self, row: usize) -> RowKey {
        match self.index.rows.get(row) {
            Some(RowRef::Session(i)) => RowKey::Session(self.report().sessions[*i].id.clone()),
            Some(RowRef::Allocation(i)) => {
                let a = &self.report().turn.allocations[*i];
                RowKey::Allocation(a.client.clone(), a.server.clone())
            }
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

    /// Re-applies the home filter and sort.
    pub(crate) fn refresh_home(&mut self) {
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
                SortKey::Outcome => a.status.name().cmp(b.status.name()),
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
