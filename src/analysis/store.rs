//! The bytes of stored STUN messages, kept as they were on the wire, so that a stored message costs its
//! wire length and a small record instead of a decoded [`StunMessage`] (attributes, typed values and
//! strings: about 0.8 KB a message, most of a call-dense capture's memory). Outputs decode a message
//! again when they show it ([`super::Model::stun`]), as Wireshark dissects a packet again when it is
//! selected; the decoder is pure, so the second decode gives what the analysis saw.
//!
//! The bytes go into fixed-size chunks, a message never spanning two, so the store grows without moving
//! what it holds (no doubling and copying of one large buffer).

use crate::wire::credentials::Keyring;
use crate::wire::stun::{self, StunMessage};
use crate::wire::DecodeError;

/// Bytes per chunk: large enough that a chunk's allocation is rare (one per ~8,000 messages), small
/// enough that the unused tail of the last one is negligible. A STUN message is at most 20 + 65,535
/// bytes, so one always fits in an empty chunk.
const CHUNK: usize = 1 << 20;

/// Where a stored message's bytes are in the [`RawStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawRef {
    chunk: u32,
    start: u32,
    len: u32,
}

impl RawRef {
    /// The message's length on the wire (header included).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Append-only store of message bytes, with the credentials the analysis decoded them with.
#[derive(Clone, Debug, Default)]
pub struct RawStore {
    chunks: Vec<Vec<u8>>,
    keys: Keyring,
}

impl RawStore {
    pub fn new(keys: Keyring) -> Self {
        RawStore {
            chunks: Vec::new(),
            keys,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> RawRef {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK.max(bytes.len())));
        }
        let chunk = self.chunks.len() - 1;
        let c = &mut self.chunks[chunk];
        let start = c.len();
        c.extend_from_slice(bytes);
        RawRef {
            chunk: chunk as u32,
            start: start as u32,
            len: bytes.len() as u32,
        }
    }

    /// The bytes `at` refers to (empty for a reference this store did not make).
    pub fn get(&self, at: RawRef) -> &[u8] {
        let (start, len) = (at.start as usize, at.len as usize);
        self.chunks
            .get(at.chunk as usize)
            .and_then(|c| c.get(start..start + len))
            .unwrap_or_default()
    }

    /// The message `at` refers to, decoded again with the analysis's credentials.
    pub fn decode(&self, at: RawRef) -> Result<StunMessage, DecodeError> {
        stun::decode(self.get(at), &self.keys)
    }

    /// Bytes held (for the benchmarks' accounting).
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_byte_for_byte_across_chunks() {
        let mut store = RawStore::default();
        // Three messages of 400 KB cannot share a 1 MiB chunk: the third starts a new one.
        let a = vec![1u8; 400_000];
        let b = vec![2u8; 400_000];
        let c = vec![3u8; 400_000];
        let (ra, rb, rc) = (store.push(&a), store.push(&b), store.push(&c));
        assert_eq!((ra.chunk, rb.chunk, rc.chunk), (0, 0, 1));
        assert_eq!(store.get(ra), &a[..]);
        assert_eq!(store.get(rb), &b[..]);
        assert_eq!(store.get(rc), &c[..]);
        assert_eq!(store.bytes(), 1_200_000);
        // A reference from elsewhere yields nothing rather than a panic.
        let foreign = RawRef {
            chunk: 7,
            start: 0,
            len: 20,
        };
        assert!(store.get(foreign).is_empty());
    }
}
