//! What `w` (save the packets as pcap) and `e` (export JSON) apply to on the current screen, and the file
//! name the prompt proposes.
//!
//! It only prepares the prompt; reading the capture again and writing files is `tui::export`'s, run by the
//! event loop when the prompt's [`Action`](super::Action) comes back.
use super::{App, PromptKind, Screen};
use crate::tui::data::RowRef;

/// What is saved or exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Index into the snapshot's sessions.
    Session(usize),
    /// Index into the snapshot's allocations.
    Allocation(usize),
}

impl App {
    /// What `w` saves on this screen: marked home rows, else the row, session or allocation in view.
    pub(crate) fn save_targets(&self) -> Vec<Target> {
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
            Screen::Turn if self.snapshot.allocation_count() > 0 => {
                vec![Target::Allocation(self.turn.allocations.selected)]
            }
            _ => {
                let on_stack = |s: Screen| self.stack.contains(&s);
                if on_stack(Screen::Session) {
                    self.session.iter().map(|s| Target::Session(s.session)).collect()
                } else if on_stack(Screen::Turn) && self.snapshot.allocation_count() > 0 {
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
                .snapshot
                .session_brief(i)
                .map_or("session".into(), |s| s.id.clone()),
            Target::Allocation(i) => self
                .snapshot
                .allocation_brief(i)
                .map(|a| a.client)
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

    pub(super) fn open_save_prompt(&mut self) {
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

    pub(super) fn open_export_prompt(&mut self) {
        let Some(&target) = self.save_targets().first() else {
            self.status = Some("nothing to export here: select a session or an allocation".into());
            return;
        };
        let name = self.default_name(&[target], "json");
        self.open_prompt(PromptKind::ExportJson(target), name);
    }
}
