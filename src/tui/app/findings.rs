//! The findings tab's keys: a list of the session's findings, ←/→ choose which of the selected finding's
//! evidence frames Enter opens.
//!
//! Which findings concern a session is worked out in `tui::data`; what they say is the analysis's.
use super::App;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

impl App {
    pub(super) fn findings_key(&mut self, k: KeyEvent) {
        let Some(st) = self.session.as_ref() else { return };
        let Some(scope) = self.index.sessions.get(st.session) else {
            return;
        };
        let list: Vec<usize> = scope.findings.clone();
        let len = list.len();
        let page = self.page();
        let frames: Vec<u64> = list
            .get(st.findings.selected)
            .and_then(|&f| self.snapshot.finding(f))
            .map_or(Vec::new(), |f| f.frames.clone());
        let Some(st) = self.session.as_mut() else { return };
        let before = st.findings.selected;
        if !st.findings.on_key(k.code, page, len) {
            match k.code {
                KeyCode::Left | KeyCode::Char('h') => st.evidence = st.evidence.saturating_sub(1),
                KeyCode::Right | KeyCode::Char('l') => {
                    st.evidence = (st.evidence + 1).min(frames.len().saturating_sub(1));
                }
                KeyCode::Enter => match frames.get(st.evidence.min(frames.len().saturating_sub(1))) {
                    Some(&f) => self.open_frame(f),
                    None => self.status = Some("this finding names no evidence frame".into()),
                },
                _ => {}
            }
        }
        if let Some(st) = self.session.as_mut() {
            if st.findings.selected != before {
                st.evidence = 0;
            }
        }
    }
}
