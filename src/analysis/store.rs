//! The bytes of stored STUN messages, kept as they were on the wire, so that a stored message costs its
//! wire length and a small record instead of a decoded [`StunMessage`] (attributes, typed values and
//! strings: about 0.8 KB a message, most of a call-dense capture's memory). Outputs decode a message
//! again when they show it ([`super::Model::stun`]), as Wireshark dissects a packet again when it is
//! selected; the decoder is pure, so the second decode gives what the analysis saw.
//!
//! The bytes go into fixed-size chunks, a message never spanning two, so the store grows without moving
//! what it holds. With a [`Spill`] (given by the I/O edge: `iceview read` passes a temporary file), every
//! chunk but the one being filled is written out and dropped from memory, so the store's memory stays
//! flat however many messages a capture holds; reading a message back reads its whole chunk once into a
//! small cache, as outputs read messages in order.

use crate::wire::credentials::Keyring;
use crate::wire::stun::{self, StunMessage};
use crate::wire::DecodeError;
use std::fmt;
use std::io;
use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes per chunk: large enough that a chunk's allocation (and, spilled, its write and its read back)
/// is rare (one per ~2,000 messages), small enough that the chunks being filled, one per store (listed
/// messages' bytes and records, folded forms, sleeping states), stay small: at 1 MiB they were ~4 MB of
/// a call-dense read's heap peak, and 256 KiB took 3-4.5 MB off the peak RSS of both `scripts/bench`
/// profiles (BENCHMARKS.md). A STUN message is at most 20 + 65,535 bytes, so one always fits in an
/// empty chunk.
const CHUNK: usize = 1 << 18;
/// Spilled chunks kept after being read back: one per core rendering the JSON in order, and a spare for
/// a view that jumps back.
const CACHED_CHUNKS: usize = 3;

/// What was read back from a spill, most recently used first, at most `N` entries: outputs read nearly in
/// the order things were stored, so a few serve them (the message bytes' chunks, the records' chunks,
/// the folded items' pages). A copy of its owner starts with none.
pub(crate) struct ReadBack<K, V, const N: usize>(Mutex<Vec<(K, Arc<V>)>>);

impl<K, V, const N: usize> Default for ReadBack<K, V, N> {
    fn default() -> Self {
        ReadBack(Mutex::new(Vec::new()))
    }
}

impl<K, V, const N: usize> fmt::Debug for ReadBack<K, V, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.0.lock().map_or(0, |c| c.len());
        f.debug_struct("ReadBack").field("kept", &kept).finish()
    }
}

impl<K: Copy + PartialEq, V, const N: usize> ReadBack<K, V, N> {
    /// Entry `key`, read by `read` (under the lock, so two readers never read it twice) if it is not
    /// kept; None when `read` gives none.
    pub(crate) fn get_or_read(&self, key: K, read: impl FnOnce() -> Option<V>) -> Option<Arc<V>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| *k == key) {
            let hit = cache.remove(i);
            cache.insert(0, (hit.0, hit.1.clone()));
            return Some(hit.1);
        }
        let v = Arc::new(read()?);
        cache.truncate(N.saturating_sub(1));
        cache.insert(0, (key, v.clone()));
        Some(v)
    }

    /// Lets go of every entry.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Where chunks go when they are full: append-only storage that can be read back at any offset. The
/// store calls it from the analysis and from the outputs (both `&self`; implementations synchronise).
pub trait Spill: Send + Sync {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Where a stored message's bytes are in the [`RawStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawRef {
    chunk: u32,
    start: u32,
    len: u32,
}

impl RawRef {
    /// The message's length on the wire (header included).
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Its three numbers, for [`super::records`]'s encoding.
    pub(crate) fn parts(&self) -> [u32; 3] {
        [self.chunk, self.start, self.len]
    }

    pub(crate) fn from_parts([chunk, start, len]: [u32; 3]) -> RawRef {
        RawRef { chunk, start, len }
    }

    /// The `len` bytes from `offset` on of what `self` refers to (clamped to it): one part of bytes
    /// stored together ([`RawStore::push_parts`]).
    pub(crate) fn slice(&self, offset: u32, len: u32) -> RawRef {
        let offset = offset.min(self.len);
        RawRef {
            chunk: self.chunk,
            start: self.start.saturating_add(offset),
            len: len.min(self.len - offset),
        }
    }

    fn range(&self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

enum Chunk {
    Held(Vec<u8>),
    Spilled { offset: u64, len: usize },
}

/// A message's bytes: in memory, or in a chunk read back from the spill.
pub(crate) enum RawBytes<'a> {
    Held(&'a [u8]),
    Read(Arc<Vec<u8>>, Range<usize>),
}

impl Deref for RawBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RawBytes::Held(b) => b,
            RawBytes::Read(chunk, range) => chunk.get(range.clone()).unwrap_or_default(),
        }
    }
}

/// Reads references in about the order they were stored (a block of listed messages, rendered on one
/// thread): the spilled chunk read last is kept here, so the store's shared cache, its lock and its
/// reference count are touched once a chunk, not once a message (two threads rendering a call-dense
/// report's messages took turns on them ~4,000 times a chunk).
pub(crate) struct RawReader<'a> {
    store: &'a RawStore,
    last: Option<(u32, Arc<Vec<u8>>)>,
}

impl RawReader<'_> {
    /// The bytes `at` refers to, as [`RawStore::get`] gives them.
    pub(crate) fn get(&mut self, at: RawRef) -> &[u8] {
        let store = self.store;
        match store.chunks.get(at.chunk as usize) {
            Some(Chunk::Held(c)) => c.get(at.range()).unwrap_or_default(),
            Some(&Chunk::Spilled { offset, len }) => {
                if self.last.as_ref().is_none_or(|(k, _)| *k != at.chunk) {
                    self.last = store.read_back(at.chunk, offset, len).map(|c| (at.chunk, c));
                }
                match &self.last {
                    Some((_, chunk)) => chunk.get(at.range()).unwrap_or_default(),
                    None => &[],
                }
            }
            None => &[],
        }
    }

    /// The message `at` refers to, decoded again with the analysis's credentials.
    pub(crate) fn decode(&mut self, at: RawRef) -> Result<StunMessage, DecodeError> {
        let keys = &self.store.keys;
        stun::decode(self.get(at), keys)
    }
}

/// Append-only store of message bytes, with the credentials the analysis decoded them with.
#[derive(Default)]
pub struct RawStore {
    chunks: Vec<Chunk>,
    keys: Keyring,
    spill: Option<Arc<dyn Spill>>,
    spilled_bytes: u64,
    /// Chunks read back from the spill, most recently used first.
    cache: ReadBack<u32, Vec<u8>, CACHED_CHUNKS>,
    /// A spill write failed (a full disk): that chunk and all later ones stay in memory; nothing is lost.
    write_failed: bool,
    /// Spilled chunks that could not be read back: their messages are shown without their bytes, and the
    /// run reports it.
    errors: Arc<AtomicU64>,
}

impl RawStore {
    pub(crate) fn new(keys: Keyring) -> Self {
        RawStore {
            keys,
            ..RawStore::default()
        }
    }

    /// From now on, full chunks are written to `spill` and dropped from memory.
    pub(crate) fn set_spill(&mut self, spill: Arc<dyn Spill>) {
        self.spill = Some(spill);
    }

    /// Whether full chunks go to a spill ([`RawStore::set_spill`]).
    pub(crate) fn spills(&self) -> bool {
        self.spill.is_some()
    }

    /// Lets go of everything stored: references made before give nothing from now on (those made after
    /// start again from the first chunk). What was spilled stays in the spill, unused.
    pub(crate) fn clear(&mut self) {
        self.chunks = Vec::new();
        self.cache.clear();
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> RawRef {
        self.push_parts(&[bytes])
    }

    /// Stores `parts` one after the other, in one chunk: the reference covers them all, and
    /// [`RawRef::slice`] gives each.
    pub(crate) fn push_parts(&mut self, parts: &[&[u8]]) -> RawRef {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let fits = match self.chunks.last() {
            Some(Chunk::Held(c)) => c.capacity() - c.len() >= total,
            _ => false,
        };
        if !fits {
            self.spill_last();
            self.chunks
                .push(Chunk::Held(Vec::with_capacity(CHUNK.max(total))));
        }
        let chunk = self.chunks.len() - 1;
        let Some(Chunk::Held(c)) = self.chunks.last_mut() else {
            return RawRef::default();
        };
        let start = c.len();
        for p in parts {
            c.extend_from_slice(p);
        }
        // Chunks are 256 KiB (or one message's size), so passing 2^32 chunks or a start or length of 2^32
        // would need petabytes held; the references stay u32 to keep every listed message small.
        #[allow(clippy::cast_possible_truncation)]
        let raw = RawRef {
            chunk: chunk as u32,
            start: start as u32,
            len: total as u32,
        };
        raw
    }

    /// Writes the last chunk (full: a message did not fit) to the spill, if there is one.
    fn spill_last(&mut self) {
        let (Some(spill), Some(last), false) = (&self.spill, self.chunks.last_mut(), self.write_failed)
        else {
            return;
        };
        let Chunk::Held(data) = last else { return };
        let len = data.len();
        match spill.write_at(self.spilled_bytes, data) {
            Ok(()) => {
                *last = Chunk::Spilled {
                    offset: self.spilled_bytes,
                    len,
                };
                self.spilled_bytes += len as u64;
            }
            Err(_) => self.write_failed = true,
        }
    }

    /// The bytes `at` refers to (empty for a reference this store did not make, or a spilled chunk that
    /// could not be read back: counted in [`RawStore::errors`]).
    pub(crate) fn get(&self, at: RawRef) -> RawBytes<'_> {
        match self.chunks.get(at.chunk as usize) {
            Some(Chunk::Held(c)) => RawBytes::Held(c.get(at.range()).unwrap_or_default()),
            Some(&Chunk::Spilled { offset, len }) => match self.read_back(at.chunk, offset, len) {
                Some(chunk) => RawBytes::Read(chunk, at.range()),
                None => RawBytes::Held(&[]),
            },
            None => RawBytes::Held(&[]),
        }
    }

    /// Appends the bytes `at` refers to to `buf`, reading only them from the spill when their chunk is not
    /// cached: for items read out of the order they were stored in (a folded session's rendered forms),
    /// where reading whole chunks would read each many times. False when they could not be read back
    /// (counted in [`RawStore::errors`]).
    pub(crate) fn read_into(&self, at: RawRef, buf: &mut Vec<u8>) -> bool {
        match self.chunks.get(at.chunk as usize) {
            Some(Chunk::Held(c)) => match c.get(at.range()) {
                Some(b) => {
                    buf.extend_from_slice(b);
                    true
                }
                None => false,
            },
            Some(&Chunk::Spilled { offset, len }) => {
                let Some(spill) = &self.spill else { return false };
                // A reference read back from the spill itself (a folded page's) may be damaged: it must
                // lie inside its chunk before anything is allocated for it.
                if at.range().end > len {
                    self.note_unreadable();
                    return false;
                }
                let start = buf.len();
                buf.resize(start + at.len(), 0);
                if spill
                    .read_at(offset + u64::from(at.start), &mut buf[start..])
                    .is_err()
                {
                    buf.truncate(start);
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                true
            }
            None => false,
        }
    }

    fn read_back(&self, chunk: u32, offset: u64, len: usize) -> Option<Arc<Vec<u8>>> {
        let spill = self.spill.as_ref()?;
        self.cache.get_or_read(chunk, || {
            let mut buf = vec![0u8; len];
            if spill.read_at(offset, &mut buf).is_err() {
                self.errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Some(buf)
        })
    }

    /// What `decode` makes of the bytes at `at`; None when they cannot be read back (counted by
    /// [`RawStore::read_into`]) or do not decode (counted here: as unreadable as a chunk that could not
    /// be read).
    pub(crate) fn decode<T>(&self, at: RawRef, decode: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        let mut buf = Vec::new();
        if !self.read_into(at, &mut buf) {
            return None;
        }
        let x = decode(&buf);
        if x.is_none() {
            self.note_unreadable();
        }
        x
    }

    /// A reader for references read in the order they were stored ([`RawReader`]).
    pub(crate) fn reader(&self) -> RawReader<'_> {
        RawReader {
            store: self,
            last: None,
        }
    }

    /// Bytes held in memory (not counting the read-back cache).
    pub(crate) fn held_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Held(v) => v.len(),
                Chunk::Spilled { .. } => 0,
            })
            .sum()
    }

    /// Counts bytes that were read back but are not what was stored (they do not decode as what the
    /// store was given): as unreadable as a chunk that could not be read.
    pub(crate) fn note_unreadable(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Spilled chunks that could not be read back so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// A copy for a UI snapshot: held chunks are copied, spilled ones shared (the spill is append-only, and
/// the copy never writes).
impl Clone for RawStore {
    fn clone(&self) -> Self {
        RawStore {
            chunks: self
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Held(v) => Chunk::Held(v.clone()),
                    &Chunk::Spilled { offset, len } => Chunk::Spilled { offset, len },
                })
                .collect(),
            keys: self.keys.clone(),
            spill: self.spill.clone(),
            spilled_bytes: self.spilled_bytes,
            write_failed: self.write_failed,
            cache: ReadBack::default(),
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Debug for RawStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStore")
            .field("chunks", &self.chunks.len())
            .field("held_bytes", &self.held_bytes())
            .field("spilled_bytes", &self.spilled_bytes)
            .field("errors", &self.errors())
            .finish()
    }
}

/// A [`Spill`] in memory, for tests.
#[derive(Default)]
pub struct MemorySpill {
    pub(crate) bytes: Mutex<Vec<u8>>,
    /// Reads fail (a test of the error path).
    pub(crate) fail_reads: bool,
    /// Writes fail (a full disk).
    pub(crate) fail_writes: bool,
}

// A test double: offsets index a Vec in memory, so they fit a usize.
#[allow(clippy::cast_possible_truncation)]
impl Spill for MemorySpill {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if self.fail_writes {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
        }
        let mut v = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let end = offset as usize + bytes.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let v = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        match v.get(offset as usize..offset as usize + buf.len()) {
            Some(src) if !self.fail_reads => {
                buf.copy_from_slice(src);
                Ok(())
            }
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "not written")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of each of [`three`]'s messages: two fit in a chunk, three do not.
    const PART: usize = CHUNK * 2 / 5;

    /// Three messages of [`PART`] bytes cannot share a chunk: the third starts a new one.
    fn three(store: &mut RawStore) -> [(RawRef, Vec<u8>); 3] {
        [1u8, 2, 3].map(|b| {
            let v = vec![b; PART];
            (store.push(&v), v)
        })
    }

    #[test]
    fn messages_come_back_byte_for_byte_across_chunks() {
        let mut store = RawStore::default();
        let msgs = three(&mut store);
        assert_eq!(msgs.iter().map(|(r, _)| r.chunk).collect::<Vec<_>>(), [0, 0, 1]);
        for (r, v) in &msgs {
            assert_eq!(&*store.get(*r), &v[..]);
        }
        assert_eq!(store.held_bytes(), 3 * PART);
        // A reference from elsewhere yields nothing rather than a panic.
        let foreign = RawRef {
            chunk: 7,
            start: 0,
            len: 20,
        };
        assert!(store.get(foreign).is_empty());
    }

    #[test]
    fn full_chunks_are_spilled_and_read_back() {
        let spill = Arc::new(MemorySpill::default());
        let mut store = RawStore::default();
        store.set_spill(spill.clone());
        let msgs = three(&mut store);
        // The first chunk (two messages) went out when the third did not fit; the third is held.
        assert_eq!(store.held_bytes(), PART);
        assert_eq!(spill.bytes.lock().unwrap().len(), 2 * PART);
        for (r, v) in msgs.iter().rev() {
            assert_eq!(&*store.get(*r), &v[..]);
        }
        // A snapshot shares the spilled chunk and copies the held one.
        let copy = store.clone();
        assert_eq!(&*copy.get(msgs[0].0), &msgs[0].1[..]);
        assert_eq!(store.errors(), 0);
    }

    #[test]
    fn a_failed_read_back_is_counted_not_fatal() {
        let spill = Arc::new(MemorySpill {
            fail_reads: true,
            ..MemorySpill::default()
        });
        let mut store = RawStore::default();
        store.set_spill(spill);
        let msgs = three(&mut store);
        assert!(store.get(msgs[0].0).is_empty());
        assert_eq!(store.errors(), 1);
        assert_eq!(&*store.get(msgs[2].0), &msgs[2].1[..]);
    }

    /// A reader gives each message's bytes as the store does, held or spilled, in order or not, and a
    /// chunk that cannot be read back is counted as the store counts it: once for each message asked for.
    #[test]
    fn a_reader_gives_what_the_store_gives() {
        for fail_reads in [false, true] {
            let spill = Arc::new(MemorySpill {
                fail_reads,
                ..MemorySpill::default()
            });
            let mut store = RawStore::default();
            store.set_spill(spill);
            // Chunks 0 and 1 spilled, 2 held.
            let msgs = [three(&mut store), three(&mut store)].concat();
            assert_eq!(
                msgs.iter().map(|(r, _)| r.chunk).collect::<Vec<_>>(),
                [0, 0, 1, 1, 2, 2]
            );
            let mut reader = store.reader();
            for i in [0, 2, 1, 3, 5, 4, 0] {
                let (r, v) = &msgs[i];
                let expected: &[u8] = if fail_reads && i < 4 { &[] } else { v };
                assert_eq!(
                    reader.get(*r),
                    expected,
                    "message {i}, failing reads {fail_reads}"
                );
            }
            assert_eq!(store.errors(), if fail_reads { 5 } else { 0 });
        }
    }

    #[test]
    fn a_failed_write_keeps_the_bytes_in_memory() {
        let spill = Arc::new(MemorySpill {
            fail_writes: true,
            ..MemorySpill::default()
        });
        let mut store = RawStore::default();
        store.set_spill(spill);
        let msgs = three(&mut store);
        assert_eq!(store.held_bytes(), 3 * PART);
        for (r, v) in &msgs {
            assert_eq!(&*store.get(*r), &v[..]);
        }
        assert_eq!(store.errors(), 0);
    }
}
