//! The message detail screen: one STUN/TURN message's header and attributes beside its bytes in hex.
//! `n`/`p` walk its transaction, ←/→ the list it was opened from; evidence frames open here too.
//!
//! Decoding is the model's (`Model::stun`, the decoder the analysis used); drawing the hex is
//! `views::message`'s.
use super::{App, Cursor, Pane, Screen};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use std::cell::Cell;

/// Where a message was opened from, for ←/→ (previous/next message of that list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageContext {
    Ladder,
    AllMessages,
    Single,
}

#[derive(Debug)]
pub struct MessageState {
    /// Index into `model.messages`.
    pub msg: usize,
    /// 0 = the header, i + 1 = attribute i.
    pub(crate) item: Cursor,
    pub(crate) pane: Pane,
    pub(crate) hex_scroll: Cell<usize>,
    pub(crate) context: MessageContext,
}

impl App {
    /// Opens the message detail for message `mi`.
    pub(crate) fn open_message(&mut self, mi: usize, context: MessageContext) {
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
                ));
            }
        }
    }

    /// On opening a message, select the attribute a reader most likely wants: the error code, the mapped
    /// or relayed address, else the header.
    fn select_interesting_attribute(&mut self) {
        let Some(st) = self.message.as_ref() else { return };
        let model = &self.snapshot.model;
        let Some(msg) = model.messages.get(st.msg).and_then(|m| model.stun(&m)) else {
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

    pub(super) fn message_key(&mut self, k: KeyEvent) {
        let Some(st) = self.message.as_ref() else {
            self.stack.pop();
            return;
        };
        let mi = st.msg;
        let items = self
            .model()
            .messages
            .get(mi)
            .and_then(|m| self.model().stun(&m))
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
                        ));
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
                if !st.item.on_key(k.code, page, items) {
                    return;
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
                    let pos = v.iter().position(|&x| x as usize == st.msg)?;
                    v.get(step(pos, v.len())?).map(|&i| i as usize)
                }
                None => step(st.msg, self.model().messages.len()),
            },
            MessageContext::Single => step(st.msg, self.model().messages.len()),
        }
    }
}
