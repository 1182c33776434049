//! TCP stream reassembly: turns captured segments into in-order byte chunks per direction.
//!
//! Framed protocols over TCP (TURN-over-TCP, RFC 8656 §12 and RFC 6062; RFC 4571 length prefixes) need
//! their bytes in order and need to know when some are missing. Each direction (a [`Flow`]) starts at its
//! SYN's ISN + 1 (RFC 9293 §3.4), or at the first segment seen when the capture began mid-stream. Sequence
//! numbers are compared with serial-number arithmetic (RFC 1982) and mapped onto a 64-bit stream offset, so
//! streams longer than 4 GiB and the wrap at 2^32 need no special case. Bytes already delivered are trimmed
//! (retransmissions, repacketised overlaps); segments beyond a hole are held until the hole fills, and a hole
//! is given up on — delivered past with `gap = true` — when the held bytes reach [`MAX_HELD_BYTES`], after
//! [`HOLE_TIMEOUT`] of capture time, on FIN or RST, on eviction, and at the end of input.
//!
//! This is an observer, not an endpoint: it does not check checksums, windows, ACKs or the handshake's
//! validity, and when retransmitted bytes differ from the ones delivered the first copy wins (no attempt to
//! guess which one the receiver kept). Data carried in RST segments (RFC 9293 §3.5.3 diagnostics) is not
//! stream data and is ignored.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::net::{Datagram, Flow, NetEvent, NetStats};

/// Directions tracked at once. A TURN server capture has one TCP connection (two directions) per TCP
/// client allocation or RFC 6062 data connection; 4096 covers ~2000 concurrent connections at a few hundred
/// bytes of state each (without held data). When full, the least recently active direction is evicted
/// (counted as `tcp_flows_evicted`) after delivering what it held.
pub(crate) const MAX_DIRECTIONS: usize = 4096;

/// Out-of-order bytes held per direction while waiting for a hole to fill. 256 KiB is above what a
/// signalling connection has in flight (TURN messages are a few hundred bytes; a receive window full of
/// ChannelData on a fast path is the realistic worst case) yet keeps one hostile direction small.
pub(crate) const MAX_HELD_BYTES: usize = 256 * 1024;

/// What one held segment costs against [`MAX_HELD_BYTES`] beyond its payload: a map node and a `Vec`
/// header. Charging it stops a flood of 1-byte segments from holding 256 Ki allocations per direction.
pub(crate) const HELD_SEGMENT_OVERHEAD: usize = 64;

/// Out-of-order bytes held across all directions. [`MAX_DIRECTIONS`] × [`MAX_HELD_BYTES`] would be 1 GiB;
/// 64 MiB is far beyond any legitimate capture's reordering. When it is reached, the direction that just
/// grew skips its holes (counted as `tcp_gaps_held_bound`).
pub(crate) const MAX_HELD_BYTES_TOTAL: usize = 64 * 1024 * 1024;

/// How long (capture time) a hole may stay open. RFC 6298 §2 starts the retransmission timeout at 1 s and
/// doubles it, so a lost segment is normally retransmitted well within 5 s; a hole older than that is
/// usually a segment the capture missed (a drop in the capturing host, or asymmetric routing), and waiting
/// longer would only delay every message behind it.
pub(crate) const HOLE_TIMEOUT: u64 = 5 * 1_000_000_000;

/// Capture time after which a silent direction is forgotten. 600 s is longer than any TURN allocation
/// refresh interval (RFC 8656 §7: the default lifetime is 600 s), so a live connection is never dropped
/// for idleness alone.
pub(crate) const IDLE_TIMEOUT: u64 = 600 * 1_000_000_000;

/// One captured TCP segment, as the IP layer found it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment<'a> {
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
    pub(crate) input: u16,
    pub(crate) flow: Flow,
    pub(crate) seq: u32,
    pub(crate) syn: bool,
    pub(crate) fin: bool,
    pub(crate) rst: bool,
    /// The captured payload.
    pub(crate) data: &'a [u8],
    /// The payload length on the wire; larger than `data.len()` when the snap length cut the segment, in
    /// which case the missing tail is a gap.
    pub(crate) wire_len: usize,
}

/// A segment waiting behind a hole; it keeps its own frame and time for when it is delivered.
struct Held {
    ts: Timestamp,
    frame: u64,
    input: u16,
    data: Vec<u8>,
    wire_len: usize,
}

impl Held {
    fn cost(&self) -> usize {
        self.data.len() + HELD_SEGMENT_OVERHEAD
    }
}

struct Direction {
    /// Its latest entry in `Tcp::lru`: older entries for the same flow are stale.
    tick: u64,
    last_ts: Timestamp,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Stream offset of the next byte to deliver.
    next: u64,
    /// Bytes before `next` were lost: the next chunk delivered carries `gap = true`.
    gap: bool,
    syn_seen: bool,
    /// FIN or RST seen: later segments are late copies and are ignored until a new SYN.
    closed: bool,
    /// Held segments by stream offset.
    held: BTreeMap<u64, Held>,
    held_cost: usize,
    /// Earliest arrival among held segments: the first hole has been missing at least since then.
    hole_since: Option<Timestamp>,
    /// The deadline this direction has in `Tcp::deadlines`, if any.
    deadline: Option<Timestamp>,
}

impl Direction {
    fn new(tick: u64, ts: Timestamp, base: u32, syn_seen: bool) -> Direction {
        Direction {
            tick,
            last_ts: ts,
            base,
            next: 0,
            // Without the SYN we joined mid-stream: the bytes before the first one seen are unknown, so
            // the consumer must look for a message boundary.
            gap: !syn_seen,
            syn_seen,
            closed: false,
            held: BTreeMap::new(),
            held_cost: 0,
            hole_since: None,
            deadline: None,
        }
    }

    /// Stream offset of sequence number `seq`, taken as the one within ±2^31 of the next expected byte
    /// (RFC 1982 serial-number comparison). Negative when it lies before the start of the stream.
    // Sequence numbers are offsets modulo 2^32: the truncation to u32 and the reading of the difference
    // as signed are the serial-number arithmetic itself.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn offset_of(&self, seq: u32) -> i64 {
        let expected = self.base.wrapping_add(self.next as u32);
        signed(self.next) + i64::from(seq.wrapping_sub(expected) as i32)
    }
}

/// One activity in `Tcp::lru`.
#[derive(Clone, Copy, Debug)]
struct LruEntry {
    tick: u64,
    flow: Flow,
    ts: Timestamp,
}

/// The LRU queue is compacted when it holds more than `LRU_SLACK` entries per direction plus
/// `LRU_SLACK_MIN`: compaction costs a lookup per entry, so this keeps it at 1.5 lookups per segment. A
/// slack of 4 (1.25 lookups) let the queue reach 20,480 entries of 88 bytes at the direction bound, a
/// 32,768-entry ring (2.9 MB, call-dense 4 GB read, heaptrack); 2 keeps it within 16,384 (1.4 MB).
const LRU_SLACK: usize = 2;
const LRU_SLACK_MIN: usize = 4096;

/// Where one delivery goes: the direction's flow and the shared held-bytes total.
struct Sink<'o> {
    flow: Flow,
    held_total: &'o mut usize,
    stats: &'o mut NetStats,
    out: &'o mut dyn FnMut(NetEvent<'_>),
}

/// Per-direction TCP reassembly for every tracked flow.
#[derive(Default)]
pub(crate) struct Tcp {
    dirs: HashMap<Flow, Direction, FastHash>,
    /// Directions by last activity (arrival order, which stays monotonic even when timestamps do not),
    /// with that activity's time, so the idle check that runs for every packet needs no table lookup.
    /// Activity appends an entry and leaves the direction's older ones behind, stale (its `tick` moved on):
    /// an ordered map moved the entry instead, two tree searches a segment (6 % of a call-dense read, where
    /// thousands of TURN/TCP connections are open). Stale entries are skipped where the queue is read and
    /// dropped when they outnumber the directions ([`Tcp::compact_lru`]), so it stays within
    /// `LRU_SLACK * MAX_DIRECTIONS + LRU_SLACK_MIN` entries.
    lru: VecDeque<LruEntry>,
    /// Hole deadlines, so a timed-out hole is skipped even when its direction falls silent.
    deadlines: BTreeSet<(Timestamp, Flow)>,
    tick: u64,
    held_total: usize,
}

impl Tcp {
    pub(crate) fn new() -> Tcp {
        Tcp::default()
    }

    /// Directions currently tracked.
    pub(crate) fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Out-of-order bytes (plus per-segment overhead) currently held across all directions.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_total
    }

    /// Advances capture time: skips holes older than [`HOLE_TIMEOUT`] and forgets directions idle for more
    /// than [`IDLE_TIMEOUT`].
    pub(crate) fn poll(&mut self, now: Timestamp, stats: &mut NetStats, out: &mut dyn FnMut(NetEvent<'_>)) {
        while let Some(&(deadline, flow)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.remove(&(deadline, flow));
            let Some(dir) = self.dirs.get_mut(&flow) else {
                continue;
            };
            dir.deadline = None;
            stats.tcp_gaps_timeout += 1;
            let mut sink = Sink {
                flow,
                held_total: &mut self.held_total,
                stats,
                out,
            };
            skip_hole(dir, &mut sink);
            sync_deadline(&mut self.deadlines, flow, dir);
        }

        while let Some(&oldest) = self.lru.front() {
            if now.0.saturating_sub(oldest.ts.0) <= IDLE_TIMEOUT {
                break;
            }
            self.lru.pop_front();
            if self.is_current(oldest) {
                stats.tcp_flows_idle += 1;
                self.drop_direction(oldest.flow, stats, out);
            }
        }
    }

    /// Takes one segment.
    pub(crate) fn segment(
        &mut self,
        seg: Segment<'_>,
        stats: &mut NetStats,
        out: &mut dyn FnMut(NetEvent<'_>),
    ) {
        let flow = seg.flow;
        self.compact_lru();
        if seg.rst {
            self.reset(&seg, stats, out);
            return;
        }

        let existing = self.dirs.get(&flow);
        let data_seq = if seg.syn { seg.seq.wrapping_add(1) } else { seg.seq };
        if seg.syn {
            // A retransmitted SYN (same ISN, stream not closed) is not a new stream.
            let same = existing.is_some_and(|d| d.syn_seen && !d.closed && d.base == data_seq);
            if !same {
                if existing.is_some() {
                    self.drop_direction(flow, stats, out);
                }
                self.insert(flow, seg.ts, data_seq, true, stats, out);
                out(NetEvent::TcpOpen {
                    ts: seg.ts,
                    frame: seg.frame,
                    input: seg.input,
                    flow,
                });
            }
        } else if existing.is_none() {
            if seg.wire_len == 0 && !seg.fin {
                // A pure ACK says nothing about a stream we do not track; do not spend a slot on it.
                return;
            }
            stats.tcp_midstream += 1;
            self.insert(flow, seg.ts, data_seq, false, stats, out);
        }

        self.tick += 1;
        let tick = self.tick;
        let Some(dir) = self.dirs.get_mut(&flow) else {
            return;
        };
        if dir.closed {
            stats.tcp_segments_after_close += 1;
            return;
        }
        dir.tick = tick;
        dir.last_ts = seg.ts;
        self.lru.push_back(LruEntry {
            tick,
            flow,
            ts: seg.ts,
        });

        let mut sink = Sink {
            flow,
            held_total: &mut self.held_total,
            stats,
            out,
        };
        let start = dir.offset_of(data_seq);
        accept(dir, start, &seg, &mut sink);

        let over = |dir: &Direction, total: usize| {
            !dir.held.is_empty() && (dir.held_cost > MAX_HELD_BYTES || total > MAX_HELD_BYTES_TOTAL)
        };
        if over(dir, *sink.held_total) {
            sink.stats.tcp_gaps_held_bound += 1;
            while over(dir, *sink.held_total) {
                skip_hole(dir, &mut sink);
            }
        }

        if seg.fin {
            // Nothing after the FIN can arrive, so every hole left is final.
            while !dir.held.is_empty() {
                skip_hole(dir, &mut sink);
            }
            dir.closed = true;
            (sink.out)(NetEvent::TcpClose {
                ts: seg.ts,
                frame: seg.frame,
                input: seg.input,
                flow,
                reset: false,
            });
        }
        sync_deadline(&mut self.deadlines, flow, dir);
    }

    /// End of input: delivers everything still held, in flow order so the output is deterministic.
    pub(crate) fn finish(&mut self, stats: &mut NetStats, out: &mut dyn FnMut(NetEvent<'_>)) {
        let mut flows: Vec<Flow> = self
            .dirs
            .iter()
            .filter(|(_, d)| !d.held.is_empty())
            .map(|(f, _)| *f)
            .collect();
        flows.sort_unstable();
        for flow in flows {
            if let Some(dir) = self.dirs.get_mut(&flow) {
                let mut sink = Sink {
                    flow,
                    held_total: &mut self.held_total,
                    stats: &mut *stats,
                    out: &mut *out,
                };
                while !dir.held.is_empty() {
                    skip_hole(dir, &mut sink);
                }
                sync_deadline(&mut self.deadlines, flow, dir);
            }
        }
    }

    /// RFC 9293 §3.10.7: a RST aborts the connection, both directions.
    fn reset(&mut self, seg: &Segment<'_>, stats: &mut NetStats, out: &mut dyn FnMut(NetEvent<'_>)) {
        for (flow, announce_untracked) in [(seg.flow, true), (seg.flow.reversed(), false)] {
            let tracked = self.dirs.get_mut(&flow).map(|dir| {
                let was_open = !dir.closed;
                let mut sink = Sink {
                    flow,
                    held_total: &mut self.held_total,
                    stats: &mut *stats,
                    out: &mut *out,
                };
                while !dir.held.is_empty() {
                    skip_hole(dir, &mut sink);
                }
                dir.closed = true;
                sync_deadline(&mut self.deadlines, flow, dir);
                was_open
            });
            if tracked.unwrap_or(announce_untracked) {
                out(NetEvent::TcpClose {
                    ts: seg.ts,
                    frame: seg.frame,
                    input: seg.input,
                    flow,
                    reset: true,
                });
            }
        }
    }

    fn insert(
        &mut self,
        flow: Flow,
        ts: Timestamp,
        base: u32,
        syn_seen: bool,
        stats: &mut NetStats,
        out: &mut dyn FnMut(NetEvent<'_>),
    ) {
        while self.dirs.len() >= MAX_DIRECTIONS {
            let Some(oldest) = self.lru.pop_front() else {
                break;
            };
            if self.is_current(oldest) {
                stats.tcp_flows_evicted += 1;
                self.drop_direction(oldest.flow, stats, out);
            }
        }
        self.tick += 1;
        self.lru.push_back(LruEntry {
            tick: self.tick,
            flow,
            ts,
        });
        self.dirs
            .insert(flow, Direction::new(self.tick, ts, base, syn_seen));
        self.compact_lru();
    }

    /// Whether an LRU entry is its direction's latest activity (not stale).
    fn is_current(&self, e: LruEntry) -> bool {
        self.dirs.get(&e.flow).is_some_and(|d| d.tick == e.tick)
    }

    /// Drops stale entries once they outnumber the live ones by the slack (amortised: the queue then
    /// holds one entry per direction, and the next compaction is that many pushes away).
    fn compact_lru(&mut self) {
        if self.lru.len() <= LRU_SLACK * self.dirs.len() + LRU_SLACK_MIN {
            return;
        }
        let dirs = &self.dirs;
        self.lru
            .retain(|e| dirs.get(&e.flow).is_some_and(|d| d.tick == e.tick));
    }

    /// Forgets a direction, first delivering what it held (with a gap before each hole).
    fn drop_direction(&mut self, flow: Flow, stats: &mut NetStats, out: &mut dyn FnMut(NetEvent<'_>)) {
        // Its entries in `lru` become stale.
        let Some(mut dir) = self.dirs.remove(&flow) else {
            return;
        };
        if let Some(d) = dir.deadline.take() {
            self.deadlines.remove(&(d, flow));
        }
        let mut sink = Sink {
            flow,
            held_total: &mut self.held_total,
            stats,
            out,
        };
        while !dir.held.is_empty() {
            skip_hole(&mut dir, &mut sink);
        }
    }
}

/// Places one segment's payload at stream offset `start`: delivers what is new and in order, trims what
/// was already delivered, holds what lies beyond a hole.
fn accept(dir: &mut Direction, start: i64, seg: &Segment<'_>, sink: &mut Sink<'_>) {
    let wire_len = seg.wire_len.max(seg.data.len());
    if wire_len == 0 {
        return;
    }
    let next = signed(dir.next);
    if start <= next {
        deliver_at(dir, start, seg.ts, seg.frame, seg.input, seg.data, wire_len, sink);
        drain(dir, sink);
        return;
    }

    sink.stats.tcp_out_of_order += 1;
    // `start > next >= 0`, so this is exact.
    let start = start.unsigned_abs();
    let held = Held {
        ts: seg.ts,
        frame: seg.frame,
        input: seg.input,
        data: seg.data.to_vec(),
        wire_len,
    };
    // Two copies starting at the same offset: keep the longer one (a repacketised retransmission).
    if let Some(old) = dir.held.get(&start) {
        if old.wire_len >= held.wire_len {
            sink.stats.tcp_retransmitted_bytes += seg.data.len() as u64;
            return;
        }
    }
    let cost = held.cost();
    if let Some(old) = dir.held.insert(start, held) {
        sink.stats.tcp_retransmitted_bytes += old.data.len() as u64;
        dir.held_cost -= old.cost();
        *sink.held_total -= old.cost();
    }
    dir.held_cost += cost;
    *sink.held_total += cost;
    dir.hole_since = Some(dir.hole_since.map_or(seg.ts, |t| t.min(seg.ts)));
}

/// Delivers the part of a segment at `start` (≤ `dir.next`) that is not yet delivered.
#[allow(clippy::too_many_arguments)]
fn deliver_at(
    dir: &mut Direction,
    start: i64,
    ts: Timestamp,
    frame: u64,
    input: u16,
    data: &[u8],
    wire_len: usize,
    sink: &mut Sink<'_>,
) {
    let next = signed(dir.next);
    // `start <= next`, so the difference is non-negative; a segment cannot be 2^63 bytes long.
    let already = usize::try_from(next - start).unwrap_or(usize::MAX);
    sink.stats.tcp_retransmitted_bytes += already.min(data.len()) as u64;
    if let Some(fresh) = data.get(already..).filter(|d| !d.is_empty()) {
        let datagram = Datagram {
            ts,
            frame,
            input,
            flow: sink.flow,
            payload: fresh,
        };
        (sink.out)(NetEvent::TcpData {
            datagram,
            gap: dir.gap,
        });
        dir.gap = false;
        dir.next += fresh.len() as u64;
    }
    if wire_len > data.len() {
        // The snap length cut this segment: its tail is lost for good.
        let end = start.saturating_add(i64::try_from(wire_len).unwrap_or(i64::MAX));
        if end > signed(dir.next) {
            // `end > next >= 0`, so this is exact.
            let end = end.unsigned_abs();
            sink.stats.tcp_gaps += 1;
            sink.stats.tcp_skipped_bytes += end - dir.next;
            dir.next = end;
            dir.gap = true;
        }
    }
}

/// A stream offset as the signed offsets `offset_of` returns. A stream would need 2^63 bytes to pass
/// i64::MAX (each segment moves it by less than 2^32); saturate rather than wrap if a capture claims so.
fn signed(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Delivers held segments that the stream has now reached.
fn drain(dir: &mut Direction, sink: &mut Sink<'_>) {
    let mut removed = false;
    while let Some(entry) = dir.held.first_entry() {
        if *entry.key() > dir.next {
            break;
        }
        let start = signed(*entry.key());
        let h = entry.remove();
        dir.held_cost -= h.cost();
        *sink.held_total -= h.cost();
        removed = true;
        deliver_at(dir, start, h.ts, h.frame, h.input, &h.data, h.wire_len, sink);
    }
    if removed {
        dir.hole_since = dir.held.values().map(|h| h.ts).min();
    }
}

/// Gives up on the first hole: jumps to the first held segment and delivers from there with a gap.
fn skip_hole(dir: &mut Direction, sink: &mut Sink<'_>) {
    if let Some((&first, _)) = dir.held.first_key_value() {
        if first > dir.next {
            sink.stats.tcp_gaps += 1;
            sink.stats.tcp_skipped_bytes += first - dir.next;
            dir.next = first;
            dir.gap = true;
        }
    }
    drain(dir, sink);
}

/// Keeps `deadlines` in step with the direction's oldest hole.
fn sync_deadline(deadlines: &mut BTreeSet<(Timestamp, Flow)>, flow: Flow, dir: &mut Direction) {
    let wanted = if dir.held.is_empty() {
        None
    } else {
        dir.hole_since
            .map(|t| Timestamp(t.0.saturating_add(HOLE_TIMEOUT)))
    };
    if wanted != dir.deadline {
        if let Some(old) = dir.deadline {
            deadlines.remove(&(old, flow));
        }
        if let Some(new) = wanted {
            deadlines.insert((new, flow));
        }
        dir.deadline = wanted;
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::net::Transport;
    use std::net::{Ipv4Addr, SocketAddr};

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Data {
            flow: Flow,
            frame: u64,
            bytes: Vec<u8>,
            gap: bool,
        },
        Open(Flow),
        Close(Flow, bool),
    }

    fn flow(port: u16) -> Flow {
        Flow {
            src: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), port)),
            dst: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 2), 3478)),
            transport: Transport::Tcp,
        }
    }

    struct Harness {
        tcp: Tcp,
        stats: NetStats,
        events: Vec<Ev>,
        frame: u64,
    }

    const SECOND: u64 = 1_000_000_000;

    impl Harness {
        fn new() -> Harness {
            Harness {
                tcp: Tcp::new(),
                stats: NetStats::default(),
                events: Vec::new(),
                frame: 0,
            }
        }

        fn seg(&mut self, at_secs: u64, f: Flow, seq: u32, flags: &str, data: &[u8]) {
            self.seg_cut(at_secs, f, seq, flags, data, data.len());
        }

        fn seg_cut(&mut self, at_secs: u64, f: Flow, seq: u32, flags: &str, data: &[u8], wire_len: usize) {
            self.frame += 1;
            let ts = Timestamp(at_secs * SECOND);
            let seg = Segment {
                ts,
                frame: self.frame,
                input: 0,
                flow: f,
                seq,
                syn: flags.contains('S'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
                data,
                wire_len,
            };
            let events = &mut self.events;
            let mut out = |e: NetEvent<'_>| events.push(Ev::from(e));
            self.tcp.poll(ts, &mut self.stats, &mut out);
            self.tcp.segment(seg, &mut self.stats, &mut out);
        }

        fn poll(&mut self, at_secs: u64) {
            let events = &mut self.events;
            self.tcp
                .poll(Timestamp(at_secs * SECOND), &mut self.stats, &mut |e| {
                    events.push(Ev::from(e));
                });
        }

        fn finish(&mut self) {
            let events = &mut self.events;
            self.tcp
                .finish(&mut self.stats, &mut |e| events.push(Ev::from(e)));
        }

        fn take(&mut self) -> Vec<Ev> {
            std::mem::take(&mut self.events)
        }
    }

    impl From<NetEvent<'_>> for Ev {
        fn from(e: NetEvent<'_>) -> Ev {
            match e {
                NetEvent::TcpData { datagram, gap } => Ev::Data {
                    flow: datagram.flow,
                    frame: datagram.frame,
                    bytes: datagram.payload.to_vec(),
                    gap,
                },
                NetEvent::TcpOpen { flow, .. } => Ev::Open(flow),
                NetEvent::TcpClose { flow, reset, .. } => Ev::Close(flow, reset),
                other => panic!("unexpected event {:?}", std::mem::discriminant(&other)),
            }
        }
    }

    fn data(f: Flow, frame: u64, bytes: &[u8], gap: bool) -> Ev {
        Ev::Data {
            flow: f,
            frame,
            bytes: bytes.to_vec(),
            gap,
        }
    }

    #[test]
    fn in_order_after_syn_then_fin() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 7000, "S", b"");
        h.seg(1, a, 7001, "", b"hello ");
        h.seg(1, a, 7007, "", b"world");
        h.seg(1, a, 7012, "", b""); // a pure ACK
        h.seg(1, a, 7012, "F", b"!");
        assert_eq!(
            h.take(),
            vec![
                Ev::Open(a),
                data(a, 2, b"hello ", false),
                data(a, 3, b"world", false),
                data(a, 5, b"!", false),
                Ev::Close(a, false),
            ]
        );
        // A late copy of the FIN segment is ignored.
        h.seg(2, a, 7012, "F", b"!");
        assert_eq!(h.take(), vec![]);
        assert_eq!(h.stats.tcp_segments_after_close, 1);
    }

    #[test]
    fn retransmissions_are_trimmed() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 100, "S", b"");
        h.seg(1, a, 101, "", b"abcd");
        h.seg(1, a, 101, "", b"abcd"); // exact copy: 4 bytes retransmitted
        h.seg(1, a, 103, "", b"cdefg"); // overlaps "cd", brings "efg"
        assert_eq!(
            h.take(),
            vec![Ev::Open(a), data(a, 2, b"abcd", false), data(a, 4, b"efg", false)]
        );
        assert_eq!(h.stats.tcp_retransmitted_bytes, 4 + 2);
        // A retransmitted SYN does not restart the stream.
        h.seg(1, a, 100, "S", b"");
        assert_eq!(h.take(), vec![]);
    }

    #[test]
    fn out_of_order_is_held_until_the_hole_fills() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        h.seg(1, a, 4, "", b"DEF"); // frame 2, bytes 3..6
        h.seg(1, a, 7, "", b"GH"); // frame 3, bytes 6..8
        assert_eq!(h.take(), vec![Ev::Open(a)]);
        assert_eq!(h.stats.tcp_out_of_order, 2);
        h.seg(1, a, 1, "", b"ABC"); // frame 4 fills 0..3
        assert_eq!(
            h.take(),
            vec![
                data(a, 4, b"ABC", false),
                data(a, 2, b"DEF", false),
                data(a, 3, b"GH", false)
            ]
        );
        assert_eq!(h.tcp.held_bytes(), 0);
        assert_eq!(h.stats.tcp_gaps, 0);
    }

    #[test]
    fn hole_skipped_after_timeout() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(10, a, 0, "S", b"");
        h.seg(10, a, 11, "", b"later"); // bytes 10..15; 0..10 missing
        h.poll(14);
        assert_eq!(h.take(), vec![Ev::Open(a)]);
        // 5 s after the held segment arrived, the hole is given up on, with no traffic on this flow.
        h.poll(15);
        assert_eq!(h.take(), vec![data(a, 2, b"later", true)]);
        assert_eq!(
            (
                h.stats.tcp_gaps,
                h.stats.tcp_gaps_timeout,
                h.stats.tcp_skipped_bytes
            ),
            (1, 1, 10)
        );
        // The missing bytes arriving late are old news.
        h.seg(16, a, 1, "", b"0123456789");
        h.seg(16, a, 16, "", b"next");
        assert_eq!(h.take(), vec![data(a, 4, b"next", false)]);
        assert_eq!(h.stats.tcp_retransmitted_bytes, 10);
    }

    #[test]
    fn hole_skipped_when_held_bytes_exceed_the_bound() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        let chunk = vec![b'x'; 1000];
        // Byte 0 is missing; held segments start at offset 1.
        let per_segment = chunk.len() + HELD_SEGMENT_OVERHEAD;
        let fits = MAX_HELD_BYTES / per_segment;
        for i in 0..fits {
            h.seg(1, a, 2 + (i * chunk.len()) as u32, "", &chunk);
        }
        assert_eq!(h.take(), vec![Ev::Open(a)]);
        assert_eq!(h.tcp.held_bytes(), fits * per_segment);
        // One more goes over the bound: everything held is delivered, the first chunk with a gap.
        h.seg(1, a, 2 + (fits * chunk.len()) as u32, "", &chunk);
        let events = h.take();
        assert_eq!(events.len(), fits + 1);
        assert_eq!(events.first(), Some(&data(a, 2, &chunk, true)));
        assert!(events
            .iter()
            .skip(1)
            .all(|e| matches!(e, Ev::Data { gap: false, .. })));
        assert_eq!(
            (
                h.stats.tcp_gaps,
                h.stats.tcp_gaps_held_bound,
                h.stats.tcp_skipped_bytes
            ),
            (1, 1, 1)
        );
        assert_eq!(h.tcp.held_bytes(), 0);
    }

    #[test]
    fn fin_and_finish_skip_holes() {
        let (a, b) = (flow(1000), flow(2000));
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        h.seg(1, a, 5, "F", b"end"); // bytes 4..7; 0..4 never seen
        assert_eq!(
            h.take(),
            vec![Ev::Open(a), data(a, 2, b"end", true), Ev::Close(a, false)]
        );

        // Mid-stream start: the first chunk is flagged as a gap (bytes before the capture are unknown).
        h.seg(1, b, 5000, "", b"abc");
        h.seg(1, b, 5010, "", b"xyz");
        h.finish();
        assert_eq!(h.take(), vec![data(b, 3, b"abc", true), data(b, 4, b"xyz", true)]);
        assert_eq!(h.stats.tcp_gaps, 2);
        assert_eq!(h.stats.tcp_midstream, 1);
    }

    #[test]
    fn rst_closes_both_directions() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        h.seg(1, a.reversed(), 900, "S", b"");
        h.seg(1, a.reversed(), 901, "", b"hi");
        h.seg(1, a, 1, "R", b"");
        assert_eq!(
            h.take(),
            vec![
                Ev::Open(a),
                Ev::Open(a.reversed()),
                data(a.reversed(), 3, b"hi", false),
                Ev::Close(a, true),
                Ev::Close(a.reversed(), true),
            ]
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, u32::MAX - 3, "S", b""); // data starts at 2^32 - 3
        h.seg(1, a, 1, "", b"DEFG"); // stream bytes 4..8, past the wrap, out of order
        h.seg(1, a, u32::MAX - 2, "", b"ABCD"); // bytes 0..4: 2^32-3 .. 2^32 (wraps to 0) + 1 more
        assert_eq!(
            h.take(),
            vec![
                Ev::Open(a),
                data(a, 3, b"ABCD", false),
                data(a, 2, b"DEFG", false)
            ]
        );
        // A copy of bytes 2..9 (sequence numbers 2^32-1 .. 6) across the wrap: only byte 8 is new.
        h.seg(1, a, u32::MAX, "", b"CDEFGHI");
        assert_eq!(h.take(), vec![data(a, 4, b"I", false)]);
        assert_eq!(h.stats.tcp_retransmitted_bytes, 6);
        assert_eq!(h.stats.tcp_gaps, 0);
    }

    #[test]
    fn snaplen_cut_segment_delivers_its_head_and_flags_the_tail() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        h.seg_cut(1, a, 1, "", b"head", 10); // 6 bytes not captured
        h.seg(1, a, 11, "", b"more");
        assert_eq!(
            h.take(),
            vec![Ev::Open(a), data(a, 2, b"head", false), data(a, 3, b"more", true)]
        );
        assert_eq!((h.stats.tcp_gaps, h.stats.tcp_skipped_bytes), (1, 6));
    }

    #[test]
    fn many_flows_stay_within_the_bound() {
        let mut h = Harness::new();
        for i in 0..10_000u32 {
            let f = Flow {
                src: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 40_000)),
                dst: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 2), 443)),
                transport: Transport::Tcp,
            };
            // Each holds a segment behind a hole, so eviction must deliver it.
            h.seg(1, f, 100, "", b"a");
            h.seg(1, f, 200, "", b"b");
            assert!(h.tcp.len() <= MAX_DIRECTIONS);
            assert!(h.tcp.lru.len() <= LRU_SLACK * h.tcp.len() + LRU_SLACK_MIN);
        }
        assert_eq!(h.tcp.len(), MAX_DIRECTIONS);
        assert_eq!(h.stats.tcp_flows_evicted, 10_000 - MAX_DIRECTIONS as u64);
        // 2 chunks per flow: the first at once, the held one on eviction or at finish.
        h.finish();
        assert_eq!(h.take().len(), 20_000);
        assert_eq!(h.tcp.held_bytes(), 0);
        assert!(h.tcp.deadlines.is_empty());
    }

    #[test]
    fn held_bytes_across_directions_stay_within_the_total_bound() {
        let mut h = Harness::new();
        let chunk = vec![0u8; 1000];
        // 240 held segments cost 240 × 1064 = 255,360 bytes, under the per-direction bound; 263 such
        // directions would hold 67,159,680 bytes, over the 64 MiB (67,108,864) total.
        for port in 0..300u16 {
            let f = flow(port);
            h.seg(1, f, 0, "S", b"");
            for i in 0..240u32 {
                h.seg(1, f, 2 + i * 1000, "", &chunk);
                assert!(h.tcp.held_bytes() <= MAX_HELD_BYTES_TOTAL);
            }
        }
        assert!(h.stats.tcp_gaps_held_bound >= 1);
        h.finish();
        assert_eq!(h.tcp.held_bytes(), 0);
        // Every chunk came out exactly once, whether flushed by the bound or at finish.
        let chunks = h.take().iter().filter(|e| matches!(e, Ev::Data { .. })).count();
        assert_eq!(chunks, 300 * 240);
    }

    #[test]
    fn idle_directions_are_forgotten() {
        let a = flow(1000);
        let mut h = Harness::new();
        h.seg(1, a, 0, "S", b"");
        h.poll(601);
        assert_eq!(h.tcp.len(), 1);
        h.poll(602);
        assert_eq!((h.tcp.len(), h.stats.tcp_flows_idle), (0, 1));
    }
}
