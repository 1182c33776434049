//! The timeline tab: the window of time shown, and the keys that move between check events, across the
//! pairs' lanes, zoom and pan. Enter opens the message of the event under the cursor.
//!
//! Times are the report's epoch seconds. Which events a session has is the report's to say, and how they
//! are drawn is `views::timeline`'s.
use super::App;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug)]
pub struct TimelineState {
    /// Index into the session's timeline events.
    pub(crate) event: usize,
    /// The pair whose lane is selected.
    pub lane: usize,
    /// Visible window: start (epoch seconds) and span (seconds).
    pub(crate) start: f64,
    pub(crate) span: f64,
}

impl App {
    pub(super) fn timeline_key(&mut self, k: KeyEvent) {
        let Some(sr) = self.session_report() else { return };
        let n = sr.timeline.len();
        let lanes = sr.pairs.len();
        let Some(st) = self.session.as_ref() else { return };
        let tl = &st.timeline;
        let shift = k.modifiers.contains(KeyModifiers::SHIFT);
        match k.code {
            KeyCode::Left | KeyCode::Char('h') if !shift => {
                self.timeline_to_event(tl.event.saturating_sub(1));
            }
            KeyCode::Right | KeyCode::Char('l') if !shift => {
                self.timeline_to_event((tl.event + 1).min(n.saturating_sub(1)));
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

    pub(super) fn pan(&mut self, fraction: f64) {
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
    pub(super) fn timeline_to_lane(&mut self, lane: usize, near: Option<usize>) {
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
}

/// The window that shows a whole session's timeline, with a little margin.
pub(crate) fn timeline_extent(s: &crate::analysis::sessions::SessionReport) -> (f64, f64) {
    let first = s.timeline.first().map_or(s.first_ts, |e| e.ts);
    let last = s.timeline.last().map_or(s.last_ts, |e| e.ts);
    let span = (last - first).max(1e-3);
    (first - span * 0.02, span * 1.04)
}
