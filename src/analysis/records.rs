//! The listed messages' records, in capture order, kept in fixed-size chunks that spill to a temporary file
//! once full, as [`super::store::RawStore`] does for their bytes: memory then holds the chunk being filled
//! and a few read back, however many messages a capture lists (one listing fewer than [`RECORDS_PER_CHUNK`]
//! never touches the temporary file).
//!
//! A spilled chunk is written in a compact encoding of its own ([`encode`]/[`decode`]: addresses as 6 or
//! 26 bytes, enums as one) and decoded whole when it is read back; outputs read records in order (the JSON
//! writer, the summaries) or near the one on screen (the TUI), so a small cache of decoded chunks serves
//! them. A chunk that cannot be read back (the temporary file's disk removed) yields no records and is
//! counted ([`Records::errors`]).

use super::store::{RawRef, ReadBack, Spill};
use super::{Body, MessageRecord, Path, Relay, RelayVia};
use crate::capture::Timestamp;
use crate::net::Transport;
use crate::wire::dialect::Dialect;
use crate::wire::stun::{Class, Method};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Records per chunk: a held chunk is ~0.8 MB (a record with its path is about 200 bytes), and a spilled
/// one is read back in one read of ~0.4 MB.
pub(crate) const RECORDS_PER_CHUNK: usize = 4096;
/// Decoded chunks kept after being read back: one per core rendering the JSON, and a spare for a view
/// that jumps back.
const CACHED_CHUNKS: usize = 3;

enum Chunk {
    Held(Vec<MessageRecord>),
    Spilled { offset: u64, len: usize, count: usize },
}

/// One chunk's records: in memory, or decoded from the spill.
pub(crate) enum ChunkRef<'a> {
    Held(&'a [MessageRecord]),
    Read(Arc<Vec<MessageRecord>>),
}

impl Deref for ChunkRef<'_> {
    type Target = [MessageRecord];
    fn deref(&self) -> &[MessageRecord] {
        match self {
            ChunkRef::Held(r) => r,
            ChunkRef::Read(r) => r,
        }
    }
}

/// The listed messages, in order.
#[derive(Default)]
pub struct Records {
    chunks: Vec<Chunk>,
    len: usize,
    spill: Option<Arc<dyn Spill>>,
    spilled_bytes: u64,
    cache: ReadBack<usize, Vec<MessageRecord>, CACHED_CHUNKS>,
    /// A spill write failed (a full disk): that chunk and all later ones stay in memory.
    write_failed: bool,
    errors: Arc<AtomicU64>,
}

impl Records {
    /// From now on, full chunks are written to `spill` and dropped from memory.
    pub(crate) fn set_spill(&mut self, spill: Arc<dyn Spill>) {
        self.spill = Some(spill);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, r: MessageRecord) {
        let full = match self.chunks.last() {
            Some(Chunk::Held(c)) => c.len() >= RECORDS_PER_CHUNK,
            _ => true,
        };
        if full {
            self.spill_last();
            self.chunks
                .push(Chunk::Held(Vec::with_capacity(RECORDS_PER_CHUNK)));
        }
        if let Some(Chunk::Held(c)) = self.chunks.last_mut() {
            c.push(r);
            self.len += 1;
        }
    }

    /// Every full chunk is spilled. The first two were held for the whole read (so that a capture listing
    /// fewer than 8,192 messages never paid for encoding its records), 1.5 MB of every larger capture's
    /// peak for a one-off encoding of 8,192 records: peak RSS media 1 GB 23.7 -> 23.0 MB, call-dense 4 GB
    /// 83.1 -> 82.2 MB, times the same (BENCHMARKS.md, session 30).
    fn spill_last(&mut self) {
        let (Some(spill), Some(last), false) = (&self.spill, self.chunks.last_mut(), self.write_failed)
        else {
            return;
        };
        let Chunk::Held(records) = last else { return };
        // A record encodes to 60-130 bytes (IPv4 without relay to IPv6 with one).
        let mut bytes = Vec::with_capacity(records.len() * 128);
        for r in records.iter() {
            encode(r, &mut bytes);
        }
        match spill.write_at(self.spilled_bytes, &bytes) {
            Ok(()) => {
                *last = Chunk::Spilled {
                    offset: self.spilled_bytes,
                    len: bytes.len(),
                    count: records.len(),
                };
                self.spilled_bytes += bytes.len() as u64;
            }
            Err(_) => self.write_failed = true,
        }
    }

    /// Chunk `k`'s records (empty when it could not be read back, counted in [`Records::errors`]).
    pub(crate) fn chunk(&self, k: usize) -> ChunkRef<'_> {
        match self.chunks.get(k) {
            Some(Chunk::Held(c)) => ChunkRef::Held(c),
            Some(&Chunk::Spilled { offset, len, count }) => match self.read_back(k, offset, len, count) {
                Some(c) => ChunkRef::Read(c),
                None => ChunkRef::Held(&[]),
            },
            None => ChunkRef::Held(&[]),
        }
    }

    /// Record `i` (None past the end, or in a chunk that could not be read back).
    pub fn get(&self, i: usize) -> Option<MessageRecord> {
        self.chunk(i / RECORDS_PER_CHUNK)
            .get(i % RECORDS_PER_CHUNK)
            .copied()
    }

    /// Records `range` (clamped to those held) with their indexes, in order, a chunk read back at a time:
    /// what a thread working on part of the list reads, without reading back the chunks before it.
    pub(crate) fn range(&self, range: Range<usize>) -> impl Iterator<Item = (usize, MessageRecord)> + '_ {
        let (start, end) = (range.start, range.end.min(self.len));
        let chunks = start / RECORDS_PER_CHUNK..end.div_ceil(RECORDS_PER_CHUNK);
        chunks.flat_map(move |k| {
            let chunk = self.chunk(k);
            let first = k * RECORDS_PER_CHUNK;
            (start.max(first)..end.min(first + chunk.len()))
                .filter_map(move |i| chunk.get(i - first).map(|r| (i, *r)))
        })
    }

    /// Every record in order, a chunk read back at a time.
    pub fn iter(&self) -> impl Iterator<Item = MessageRecord> + '_ {
        self.range(0..self.len).map(|(_, r)| r)
    }

    /// Every record with its index, in order: those of a chunk that cannot be read back are missing, so
    /// counting what [`Records::iter`] gives would number the records after it wrongly.
    pub(crate) fn indexed(&self) -> impl Iterator<Item = (usize, MessageRecord)> + '_ {
        self.range(0..self.len)
    }

    fn read_back(&self, k: usize, offset: u64, len: usize, count: usize) -> Option<Arc<Vec<MessageRecord>>> {
        let spill = self.spill.as_ref()?;
        self.cache.get_or_read(k, || {
            let mut buf = vec![0u8; len];
            let decoded = spill.read_at(offset, &mut buf).ok().and_then(|()| {
                let mut at = 0;
                let mut v = Vec::with_capacity(count.min(RECORDS_PER_CHUNK));
                for _ in 0..count {
                    v.push(decode(&buf, &mut at)?);
                }
                (at == buf.len()).then_some(v)
            });
            if decoded.is_none() {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            decoded
        })
    }

    /// Records held in memory (not counting the read-back cache).
    pub(crate) fn held(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Held(v) => v.len(),
                Chunk::Spilled { .. } => 0,
            })
            .sum()
    }

    /// Spilled chunks that could not be read back so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// A copy for a UI snapshot: held chunks are copied, spilled ones shared (the spill is append-only, and the
/// copy never writes).
impl Clone for Records {
    fn clone(&self) -> Self {
        Records {
            chunks: self
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Held(v) => Chunk::Held(v.clone()),
                    &Chunk::Spilled { offset, len, count } => Chunk::Spilled { offset, len, count },
                })
                .collect(),
            len: self.len,
            spill: self.spill.clone(),
            spilled_bytes: self.spilled_bytes,
            cache: ReadBack::default(),
            write_failed: true,
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("len", &self.len)
            .field("held", &self.held())
            .field("spilled_bytes", &self.spilled_bytes)
            .field("errors", &self.errors())
            .finish()
    }
}

fn put_addr(a: &SocketAddr, out: &mut Vec<u8>) {
    match a {
        SocketAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&v4.port().to_be_bytes());
        }
        SocketAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.port().to_be_bytes());
            out.extend_from_slice(&v6.flowinfo().to_be_bytes());
            out.extend_from_slice(&v6.scope_id().to_be_bytes());
        }
    }
}

/// The record's encoding in a spilled chunk.
pub(crate) fn encode(r: &MessageRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.ts.0.to_be_bytes());
    out.extend_from_slice(&r.frame.to_be_bytes());
    out.extend_from_slice(&r.input.to_be_bytes());
    out.push(u8::from(r.duplicate));
    let p = &r.path;
    put_addr(&p.src, out);
    put_addr(&p.dst, out);
    out.push(match p.transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    });
    match &p.relay {
        None => out.push(0),
        Some(relay) => {
            let (via, channel) = match relay.via {
                RelayVia::SendIndication => (1, 0),
                RelayVia::DataIndication => (2, 0),
                RelayVia::ChannelData(c) => (3, c),
            };
            out.push(via);
            out.extend_from_slice(&channel.to_be_bytes());
            out.push(u8::from(relay.relayed_address_known));
            put_addr(&relay.server, out);
            put_addr(&relay.client, out);
        }
    }
    match r.body {
        Body::Stun {
            method,
            class,
            dialect,
            malformed,
            raw,
        } => {
            out.push(0);
            out.extend_from_slice(&method.0.to_be_bytes());
            out.push(match class {
                Class::Request => 0,
                Class::Indication => 1,
                Class::Success => 2,
                Class::Error => 3,
            });
            out.push(match dialect {
                Dialect::Standard => 0,
                Dialect::Classic => 1,
                Dialect::MsTurn => 2,
                Dialect::WhatsApp => 3,
            });
            out.push(u8::from(malformed));
            for n in raw.parts() {
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Body::ChannelData {
            channel,
            length,
            mturn_session,
        } => {
            out.push(1);
            out.extend_from_slice(&channel.to_be_bytes());
            out.extend_from_slice(&length.to_be_bytes());
            match mturn_session {
                None => out.push(0),
                Some(id) => {
                    out.push(1);
                    out.extend_from_slice(&id);
                }
            }
        }
    }
}

/// Reads the spilled bytes a cursor at a time; every read is checked (a damaged file gives None).
struct Reader<'a> {
    buf: &'a [u8],
    at: &'a mut usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b: [u8; N] = self.buf.get(*self.at..*self.at + N)?.try_into().ok()?;
        *self.at += N;
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take()?))
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn addr(&mut self) -> Option<SocketAddr> {
        match self.u8()? {
            4 => {
                let ip = Ipv4Addr::from(self.take::<4>()?);
                Some(SocketAddr::new(IpAddr::V4(ip), self.u16()?))
            }
            6 => {
                let ip = Ipv6Addr::from(self.take::<16>()?);
                let port = self.u16()?;
                let (flow, scope) = (self.u32()?, self.u32()?);
                Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))
            }
            _ => None,
        }
    }
}

/// The record [`encode`] wrote at `*at` in `buf`; `*at` moves past it.
pub(crate) fn decode(buf: &[u8], at: &mut usize) -> Option<MessageRecord> {
    let mut r = Reader { buf, at };
    let ts = Timestamp(r.u64()?);
    let frame = r.u64()?;
    let input = r.u16()?;
    let duplicate = r.flag()?;
    let src = r.addr()?;
    let dst = r.addr()?;
    let transport = match r.u8()? {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        _ => return None,
    };
    let relay = match r.u8()? {
        0 => None,
        via => {
            let channel = r.u16()?;
            let via = match via {
                1 => RelayVia::SendIndication,
                2 => RelayVia::DataIndication,
                3 => RelayVia::ChannelData(channel),
                _ => return None,
            };
            let relayed_address_known = r.flag()?;
            Some(Relay {
                via,
                relayed_address_known,
                server: r.addr()?,
                client: r.addr()?,
            })
        }
    };
    let body = match r.u8()? {
        0 => {
            let method = Method(r.u16()?);
            let class = match r.u8()? {
                0 => Class::Request,
                1 => Class::Indication,
                2 => Class::Success,
                3 => Class::Error,
                _ => return None,
            };
            let dialect = match r.u8()? {
                0 => Dialect::Standard,
                1 => Dialect::Classic,
                2 => Dialect::MsTurn,
                3 => Dialect::WhatsApp,
                _ => return None,
            };
            let malformed = r.flag()?;
            let raw = RawRef::from_parts([r.u32()?, r.u32()?, r.u32()?]);
            Body::Stun {
                method,
                class,
                dialect,
                malformed,
                raw,
            }
        }
        1 => {
            let channel = r.u16()?;
            let length = r.u16()?;
            let mturn_session = match r.u8()? {
                0 => None,
                1 => Some(r.take::<8>()?),
                _ => return None,
            };
            Body::ChannelData {
                channel,
                length,
                mturn_session,
            }
        }
        _ => return None,
    };
    Some(MessageRecord {
        ts,
        frame,
        input,
        duplicate,
        path: Path {
            src,
            dst,
            transport,
            relay,
        },
        body,
    })
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::analysis::store::MemorySpill;

    fn sample() -> Vec<MessageRecord> {
        let v4: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let v6_scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3));
        let direct = Path {
            src: v4,
            dst: v6,
            transport: Transport::Tcp,
            relay: None,
        };
        let relayed = Path {
            src: v6_scoped,
            dst: v4,
            transport: Transport::Udp,
            relay: Some(Relay {
                server: v4,
                client: v6_scoped,
                via: RelayVia::ChannelData(0x4001),
                relayed_address_known: false,
            }),
        };
        let stun = Body::Stun {
            method: Method(0x0115),
            class: Class::Error,
            dialect: Dialect::MsTurn,
            malformed: true,
            raw: RawRef::from_parts([7, 65_000, 548]),
        };
        let channel = Body::ChannelData {
            channel: 0xFF10,
            length: 1200,
            mturn_session: Some(*b"sessions"),
        };
        let mut out = Vec::new();
        for (i, (path, body)) in [
            (direct, stun),
            (relayed, channel),
            (relayed, stun),
            (direct, channel),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(MessageRecord {
                ts: Timestamp(1_800_000_000_123_456_789 + i as u64),
                frame: u64::MAX - i as u64,
                input: i as u16,
                duplicate: i % 2 == 0,
                path,
                body,
            });
        }
        out
    }

    /// Every field survives the spill encoding: IPv6 with flow label and scope, every relay carrier,
    /// both bodies.
    #[test]
    fn records_come_back_from_the_spill_as_pushed() {
        let sample = sample();
        let spill = Arc::new(MemorySpill::default());
        let mut records = Records::default();
        records.set_spill(spill.clone());
        let n = 3 * RECORDS_PER_CHUNK + 5;
        for i in 0..n {
            records.push(sample[i % sample.len()]);
        }
        assert_eq!(records.len(), n);
        assert!(
            records.held() <= RECORDS_PER_CHUNK,
            "only the chunk being filled is held"
        );
        assert!(!spill.bytes.lock().unwrap().is_empty());
        for i in (0..n).rev().step_by(97).chain([0, RECORDS_PER_CHUNK, n - 1]) {
            assert_eq!(records.get(i), Some(sample[i % sample.len()]), "record {i}");
        }
        assert!(records.iter().eq((0..n).map(|i| sample[i % sample.len()])));
        // Any part of the list, held or spilled, across chunk boundaries or within one, and past the end.
        let c = RECORDS_PER_CHUNK;
        for (a, b) in [
            (0, n),
            (0, 1),
            (c - 1, c + 1),
            (5, 3 * c + 7),
            (2 * c, 2 * c),
            (n - 3, n + 10),
        ] {
            let want: Vec<(usize, MessageRecord)> =
                (a..b.min(n)).map(|i| (i, sample[i % sample.len()])).collect();
            assert_eq!(records.range(a..b).collect::<Vec<_>>(), want, "{a}..{b}");
        }
        assert_eq!(records.get(n), None);
        assert_eq!(records.errors(), 0);
    }

    /// With the first chunk unreadable, every record is still given with its own index: counting what
    /// `iter` gives would number the others from 0.
    #[test]
    fn records_after_an_unreadable_chunk_keep_their_indexes() {
        let spill = Arc::new(MemorySpill::default());
        let mut records = Records::default();
        records.set_spill(spill.clone());
        let n = 2 * RECORDS_PER_CHUNK + 10;
        for i in 0..n {
            records.push(sample()[i % 4]);
        }
        spill.bytes.lock().unwrap()[..64].fill(0xFF);
        let given: Vec<(usize, MessageRecord)> = records.indexed().collect();
        assert_eq!(
            given.len(),
            n - RECORDS_PER_CHUNK,
            "the first chunk's are missing"
        );
        assert!(records.errors() > 0);
        for (i, r) in &given {
            assert_eq!(Some(*r), records.get(*i), "record {i}");
            assert_eq!(*r, sample()[i % 4], "record {i}");
        }
        assert_eq!(given.first().map(|(i, _)| *i), Some(RECORDS_PER_CHUNK));
    }

    /// A damaged spill (every byte changed, or cut short) gives no records for its chunks, counted, and
    /// never a wrong record or a panic.
    #[test]
    fn a_damaged_spill_gives_no_records_and_counts() {
        for damage in [0usize, 1, 2] {
            let spill = Arc::new(MemorySpill::default());
            let mut records = Records::default();
            records.set_spill(spill.clone());
            for i in 0..RECORDS_PER_CHUNK + 1 {
                records.push(sample()[i % 4]);
            }
            {
                let mut bytes = spill.bytes.lock().unwrap();
                match damage {
                    0 => bytes.iter_mut().for_each(|b| *b = 0xFF),
                    1 => {
                        let keep = bytes.len() / 2;
                        bytes.truncate(keep);
                    }
                    _ => bytes.iter_mut().step_by(5).for_each(|b| *b = b.wrapping_add(1)),
                }
            }
            let first = records.get(0);
            assert!(first.is_none() || first == Some(sample()[0]), "damage {damage}");
            assert_eq!(
                records.get(RECORDS_PER_CHUNK),
                Some(sample()[0]),
                "the held chunk"
            );
            if first.is_none() {
                assert!(records.errors() > 0);
            }
        }
    }
}
