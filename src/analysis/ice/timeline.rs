//! The frozen part of a session's timeline: entries whose checks have settled never change again, so a
//! long call's are kept as compact blocks of what the view shows of them (the transaction id and
//! round-trip time written in, not referred to), and the settled checks only they referred to go.
//!
//! A session's timeline is then, in the order its entries were recorded: its frozen blocks, then its live
//! entries ([`super::session::Session::timeline`], whose checks may still be in the transaction table). What
//! it shows is the same as before freezing: the first [`TIMELINE_HEAD`] entries and the latest
//! `MAX_TIMELINE_EVENTS - TIMELINE_HEAD`, the entries in between counted as not kept. A frozen block whose
//! entries all fall in between is dropped; one that straddles stays, and the view skips those entries.
//!
//! An entry in 25-30 bytes, where a live one takes 32 and its settled check 20 more (shared by a check
//! and its answer) in vectors that grow by doubling; and the blocks go to the sessions' sleep store, whose
//! file is on disk, so an open call holds in memory the entries of its last minute or so: a busy server's
//! long calls' timelines were the largest thing held open at once (`BENCHMARKS.md`, session 22).

use super::session::{EventKind, Role, MAX_TIMELINE_EVENTS, TIMELINE_HEAD};
use crate::analysis::pack::{Pack, Reader, SleepStore};
use crate::analysis::store::RawRef;
use crate::capture::Timestamp;
use crate::wire::stun::TransactionId;
use std::borrow::Cow;

/// A timeline entry as a view shows it: when and where its message was seen, its pair, the agent (0/1)
/// that sent it, what it was, and its check's transaction id and round-trip time (for a check, an answer
/// or an error) when known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Shown {
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
    pub(crate) pair: u16,
    pub(crate) from: u8,
    /// Its kind (a frozen entry's with every check reference [`super::TxRef::GONE`]: `id` and `rtt` say
    /// what its check showed).
    pub(crate) kind: EventKind,
    pub(crate) id: Option<TransactionId>,
    pub(crate) rtt: Option<f64>,
}

/// Consecutive frozen entries, from entry `first` of the timeline on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Block {
    first: u64,
    count: u32,
    bytes: Bytes,
}

/// Where a block's entries are: in memory, or in the sessions' sleep store (its temporary file), where an
/// open session's blocks go as they freeze. A sleeping session's state holds its blocks' bytes: they are
/// read back into it as it goes to sleep ([`Frozen::hold`]), and go back to the store at its next freeze.
#[derive(Clone, Debug, PartialEq)]
enum Bytes {
    Held(Box<[u8]>),
    Stored(RawRef),
}

/// A session's frozen blocks, in order, and how many entries were recorded before its live ones (those
/// frozen, the dropped ones included).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Frozen {
    blocks: Vec<Block>,
    pub(crate) events: u64,
}

/// Whether entry `i` of a timeline of `total` entries is shown: in the first [`TIMELINE_HEAD`] or the
/// latest `MAX_TIMELINE_EVENTS - TIMELINE_HEAD`.
pub(crate) fn kept(i: u64, total: u64) -> bool {
    i < TIMELINE_HEAD as u64 || i + (MAX_TIMELINE_EVENTS - TIMELINE_HEAD) as u64 >= total
}

impl Frozen {
    /// Appends `entries`, the live entries that came next, as one block: to `store` when there is one.
    pub(crate) fn push(&mut self, entries: &[Shown], store: Option<&mut SleepStore>) {
        let count = entries.len();
        let mut bytes = Vec::with_capacity(count * 24);
        let mut prev = (Timestamp(0), 0u64);
        for e in entries {
            encode(e, prev, &mut bytes);
            prev = (e.ts, e.frame);
        }
        let bytes = match store {
            Some(store) => Bytes::Stored(store.put_bytes(&bytes)),
            None => Bytes::Held(bytes.into_boxed_slice()),
        };
        self.blocks.push(Block {
            first: self.events,
            // Live entries are at most MAX_TIMELINE_EVENTS.
            count: u32::try_from(count).unwrap_or(u32::MAX),
            bytes,
        });
        self.events += count as u64;
    }

    /// Drops the blocks whose entries a timeline of `total` entries no longer shows (let go of in `store`).
    pub(crate) fn drop_unkept(&mut self, total: u64, mut store: Option<&mut SleepStore>) {
        self.blocks.retain(|b| {
            let end = b.first + u64::from(b.count);
            let keep = b.first < TIMELINE_HEAD as u64 || (end > 0 && kept(end - 1, total));
            if let (false, Bytes::Stored(at), Some(store)) = (keep, &b.bytes, store.as_deref_mut()) {
                store.free(*at);
            }
            keep
        });
    }

    /// The shown entries of a timeline of `total` entries that are frozen, in order, those stored read
    /// back from `store`. A block that cannot be read back (the temporary file damaged: counted in the
    /// store's errors, which the run reports) gives what could be read of it.
    pub(crate) fn shown<'a>(
        &'a self,
        total: u64,
        store: Option<&'a SleepStore>,
    ) -> impl Iterator<Item = Shown> + 'a {
        self.blocks.iter().flat_map(move |b| {
            let bytes: Cow<'a, [u8]> = match &b.bytes {
                Bytes::Held(bytes) => Cow::Borrowed(bytes),
                Bytes::Stored(at) => {
                    let mut buf = Vec::new();
                    if let Some(store) = store {
                        store.read_bytes(*at, &mut buf);
                    }
                    Cow::Owned(buf)
                }
            };
            let mut at = 0usize;
            let mut prev = (Timestamp(0), 0u64);
            (b.first..b.first + u64::from(b.count)).filter_map(move |i| {
                let mut r = Reader::new(bytes.get(at..)?);
                let e = decode(&mut r, prev)?;
                at += r.read();
                prev = (e.ts, e.frame);
                kept(i, total).then_some(e)
            })
        })
    }

    /// Reads the stored blocks back into memory and lets go of them in `store`: the session goes to sleep,
    /// and its state holds them. One that cannot be read back is held empty (its entries are not shown;
    /// the store counts the error).
    pub(crate) fn hold(&mut self, store: &mut SleepStore) {
        for b in &mut self.blocks {
            if let Bytes::Stored(at) = b.bytes {
                let mut buf = Vec::new();
                store.read_bytes(at, &mut buf);
                store.free(at);
                b.bytes = Bytes::Held(buf.into_boxed_slice());
            }
        }
    }

    /// Writes the blocks held in memory (read back when the session slept) to `store`.
    pub(crate) fn store(&mut self, store: &mut SleepStore) {
        for b in &mut self.blocks {
            if let Bytes::Held(bytes) = &b.bytes {
                b.bytes = Bytes::Stored(store.put_bytes(bytes));
            }
        }
    }

    /// Lets go of the stored blocks in `store`: the session folded.
    pub(crate) fn free(&mut self, store: &mut SleepStore) {
        for b in &self.blocks {
            if let Bytes::Stored(at) = b.bytes {
                store.free(at);
            }
        }
        self.blocks.clear();
    }

    /// Blocks held in memory, and stored.
    #[cfg(test)]
    pub(crate) fn blocks(&self) -> (usize, usize) {
        let held = self
            .blocks
            .iter()
            .filter(|b| matches!(b.bytes, Bytes::Held(_)))
            .count();
        (held, self.blocks.len() - held)
    }

    /// Where the stored blocks are, for the store to move them ([`SleepStore::compact`]).
    pub(crate) fn stored(&mut self) -> impl Iterator<Item = &mut RawRef> {
        self.blocks.iter_mut().filter_map(|b| match &mut b.bytes {
            Bytes::Stored(at) => Some(at),
            Bytes::Held(_) => None,
        })
    }
}

// Flags of an encoded entry's first byte: its kind in the low four bits, then these.
const FROM_B: u8 = 0x10;
const HAS_ID: u8 = 0x20;
/// A check's retransmit, a role change's new role (controlled).
const BIT_A: u8 = 0x40;
/// A check's USE-CANDIDATE, an answer's round-trip time.
const BIT_B: u8 = 0x80;

/// Appends `e`: a flags byte, its time and frame as differences from the entry before (`prev`), its pair,
/// and what its kind carries.
fn encode(e: &Shown, prev: (Timestamp, u64), out: &mut Vec<u8>) {
    let (tag, a, b, code) = match e.kind {
        EventKind::Check {
            retransmit,
            use_candidate,
            ..
        } => (0u8, retransmit, use_candidate, None),
        EventKind::Success { .. } => (1, false, e.rtt.is_some(), None),
        EventKind::Error { code, .. } => (2, false, false, Some(code)),
        EventKind::Nominated => (3, false, false, None),
        EventKind::RoleChange { role } => (4, role == Role::Controlled, false, None),
        EventKind::DtlsStart => (5, false, false, None),
        EventKind::DtlsConnected => (6, false, false, None),
        EventKind::MediaStart => (7, false, false, None),
    };
    let mut flags = tag;
    for (on, bit) in [
        (e.from != 0, FROM_B),
        (e.id.is_some(), HAS_ID),
        (a, BIT_A),
        (b, BIT_B),
    ] {
        if on {
            flags |= bit;
        }
    }
    out.push(flags);
    varint(zigzag(e.ts.0.wrapping_sub(prev.0 .0)), out);
    varint(zigzag(e.frame.wrapping_sub(prev.1)), out);
    varint(u64::from(e.pair), out);
    if let Some(id) = e.id {
        id.put(out);
    }
    if let (1, Some(rtt)) = (tag, e.rtt) {
        rtt.put(out);
    }
    if let Some(code) = code {
        varint(u64::from(code), out);
    }
}

/// The entry `r` is at, written by [`encode`] after `prev`.
fn decode(r: &mut Reader<'_>, prev: (Timestamp, u64)) -> Option<Shown> {
    let flags = u8::get(r)?;
    let ts = Timestamp(prev.0 .0.wrapping_add(unzigzag(read_varint(r)?)));
    let frame = prev.1.wrapping_add(unzigzag(read_varint(r)?));
    let pair = u16::try_from(read_varint(r)?).ok()?;
    let id = if flags & HAS_ID != 0 {
        Some(TransactionId::get(r)?)
    } else {
        None
    };
    let (a, b) = (flags & BIT_A != 0, flags & BIT_B != 0);
    let gone = super::TxRef::GONE;
    let mut rtt = None;
    let kind = match flags & 0x0f {
        0 => EventKind::Check {
            tx: gone,
            retransmit: a,
            use_candidate: b,
        },
        1 => {
            if b {
                rtt = Some(f64::get(r)?);
            }
            EventKind::Success { tx: gone }
        }
        2 => EventKind::Error {
            tx: gone,
            code: u16::try_from(read_varint(r)?).ok()?,
        },
        3 => EventKind::Nominated,
        4 => EventKind::RoleChange {
            role: if a { Role::Controlled } else { Role::Controlling },
        },
        5 => EventKind::DtlsStart,
        6 => EventKind::DtlsConnected,
        7 => EventKind::MediaStart,
        _ => return None,
    };
    Some(Shown {
        ts,
        frame,
        pair,
        from: u8::from(flags & FROM_B != 0),
        kind,
        id,
        rtt,
    })
}

fn zigzag(x: u64) -> u64 {
    // The difference as a signed number, small either way.
    #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
    let z = ((x as i64) << 1 ^ ((x as i64) >> 63)) as u64;
    z
}

fn unzigzag(z: u64) -> u64 {
    (z >> 1) ^ (z & 1).wrapping_neg()
}

fn varint(mut x: u64, out: &mut Vec<u8>) {
    while x >= 0x80 {
        // The low seven bits, with the continuation bit.
        #[allow(clippy::cast_possible_truncation)]
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(x as u8);
}

fn read_varint(r: &mut Reader<'_>) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = u8::get(r)?;
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(x);
        }
    }
    None
}

/// A block in a sleeping session's state: its bytes, which [`Frozen::hold`] read back before it slept. A
/// block still stored is written as its place in the store (which a rewrite of the store would move: it is
/// not made so).
impl Pack for Block {
    fn put(&self, out: &mut Vec<u8>) {
        self.first.put(out);
        self.count.put(out);
        match &self.bytes {
            Bytes::Held(bytes) => {
                out.push(0);
                bytes.to_vec().put(out);
            }
            Bytes::Stored(at) => {
                out.push(1);
                for part in at.parts() {
                    part.put(out);
                }
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        let first = u64::get(r)?;
        let count = u32::get(r)?;
        let bytes = match u8::get(r)? {
            0 => Bytes::Held(Vec::<u8>::get(r)?.into_boxed_slice()),
            1 => Bytes::Stored(RawRef::from_parts([u32::get(r)?, u32::get(r)?, u32::get(r)?])),
            _ => return None,
        };
        Some(Block { first, count, bytes })
    }
}

crate::analysis::pack::pack_struct!(Frozen { blocks, events });

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: u64, frame: u64, kind: EventKind, id: Option<u8>, rtt: Option<f64>) -> Shown {
        Shown {
            ts: Timestamp(ts),
            frame,
            pair: u16::try_from(frame % 7).unwrap_or(0),
            from: u8::from(frame % 2 == 1),
            kind,
            id: id.map(|b| TransactionId([b; 12])),
            rtt,
        }
    }

    /// Every kind of entry, with and without its transaction, times and frames that go back as well as
    /// forward (a merged capture), comes back as it was frozen, in order.
    #[test]
    fn frozen_entries_come_back_as_they_were() {
        let gone = super::super::TxRef::GONE;
        let entries = vec![
            entry(
                1_800_000_000_123_456_789,
                5,
                EventKind::Check {
                    tx: gone,
                    retransmit: false,
                    use_candidate: true,
                },
                Some(1),
                None,
            ),
            entry(
                1_800_000_000_123_456_000,
                4,
                EventKind::Check {
                    tx: gone,
                    retransmit: true,
                    use_candidate: false,
                },
                None,
                None,
            ),
            entry(
                1_800_000_001_000_000_000,
                9,
                EventKind::Success { tx: gone },
                Some(2),
                Some(0.000_512),
            ),
            entry(
                1_800_000_001_000_000_000,
                9,
                EventKind::Success { tx: gone },
                Some(3),
                None,
            ),
            entry(
                1_800_000_002_000_000_000,
                300_000,
                EventKind::Error { tx: gone, code: 487 },
                Some(4),
                None,
            ),
            entry(
                1_800_000_003_000_000_000,
                300_001,
                EventKind::Nominated,
                None,
                None,
            ),
            entry(
                1_800_000_003_000_000_001,
                300_002,
                EventKind::RoleChange {
                    role: Role::Controlled,
                },
                None,
                None,
            ),
            entry(
                1_800_000_003_000_000_002,
                300_003,
                EventKind::RoleChange {
                    role: Role::Controlling,
                },
                None,
                None,
            ),
            entry(7, u64::MAX, EventKind::DtlsStart, None, None),
            entry(u64::MAX, 0, EventKind::DtlsConnected, None, None),
            entry(0, 1, EventKind::MediaStart, None, None),
        ];
        let mut frozen = Frozen::default();
        frozen.push(&entries[..4], None);
        frozen.push(&entries[4..], None);
        assert_eq!(frozen.events, entries.len() as u64);
        let back: Vec<Shown> = frozen.shown(frozen.events, None).collect();
        assert_eq!(back, entries);
        let mut packed = Vec::new();
        frozen.put(&mut packed);
        assert_eq!(Reader::whole(&packed, Frozen::get), Some(frozen));
    }

    /// Past the timeline's bound, the entries between its head and its latest ones are not shown, and the
    /// blocks holding only those go.
    #[test]
    fn the_entries_between_head_and_tail_are_not_shown_and_their_blocks_go() {
        let mut frozen = Frozen::default();
        for start in (0..8_000).step_by(500) {
            let block: Vec<Shown> = (start..start + 500)
                .map(|i| entry(i, i, EventKind::Nominated, None, None))
                .collect();
            frozen.push(&block, None);
        }
        let total = 8_000 + 10;
        let shown: Vec<u64> = frozen.shown(total, None).map(|e| e.frame).collect();
        let tail = (MAX_TIMELINE_EVENTS - TIMELINE_HEAD) as u64;
        let want: Vec<u64> = (0..TIMELINE_HEAD as u64).chain(total - tail..8_000).collect();
        assert_eq!(shown, want);
        frozen.drop_unkept(total, None);
        // Blocks 0-1 (the head) and those from entry 4,000 on (the tail from 4,010 lies in block 8).
        assert_eq!(
            frozen.blocks.iter().map(|b| b.first).collect::<Vec<_>>(),
            [0, 500, 4000, 4500, 5000, 5500, 6000, 6500, 7000, 7500]
        );
        assert_eq!(
            frozen.shown(total, None).map(|e| e.frame).collect::<Vec<_>>(),
            want
        );
    }
}
