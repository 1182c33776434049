//! The batches that carry the network layer's output from the reading thread to the analysis thread:
//! [`NetStage`] fills an [`EventBatch`] (payloads copied into it, or referred to in the capture file's
//! shared mapping, with what was worked out ahead: `Digest`, `Decoded`, and TCP streams cut into frames);
//! [`apply`] feeds one to the analysis in order.
use crate::analysis::ahead::{Ahead, Decoded, Digest};
use crate::analysis::fold::SearchSchedule;
use crate::analysis::framing::{FrameKind, FramingCounts, TcpFraming};
use crate::analysis::Analyzer;
use crate::capture::file::Mapping;
use crate::capture::{Packet, Timestamp};
use crate::net::{Datagram, Flow, Net, NetEvent, Transport};
use crate::wire::credentials::Keyring;
use std::net::SocketAddr;

/// The network layer (link, IP, defragmentation, TCP reassembly) on its own, to run on the thread that reads
/// the capture while another runs the analysis: its output goes into [`EventBatch`]es, which [`apply`]
/// gives the analysis in order. Same results as [`Analyzer::ingest`], on two cores.
#[derive(Default)]
pub(crate) struct NetStage {
    net: Net,
    /// The analysis's credentials, when this stage decodes STUN messages ahead for it
    /// ([`NetStage::for_analysis`]).
    keys: Option<Keyring>,
    /// TCP streams' framers, when this stage frames them ahead for the analysis (with `keys`): a frame
    /// then reaches the analysis as a UDP payload does, with its digest and STUN message.
    framing: Option<TcpFraming>,
    /// When the analysis searches for what is quiet ([`Batched::Search`]): as it would packet by packet.
    searches: SearchSchedule,
}

impl NetStage {
    /// A network stage that leaves all decoding to the analysis.
    pub(crate) fn new() -> Self {
        NetStage::default()
    }

    /// A network stage that also decodes STUN messages for `analyzer`, with its credentials, so that the
    /// reading thread takes that work.
    pub(crate) fn for_analysis(analyzer: &Analyzer) -> Self {
        NetStage {
            net: Net::new(),
            keys: Some(analyzer.keys().clone()),
            framing: Some(TcpFraming::default()),
            searches: SearchSchedule::default(),
        }
    }

    pub(crate) fn ingest(&mut self, pkt: &Packet<'_>, batch: &mut EventBatch) {
        if batch.first_ts.is_none() {
            batch.first_ts = Some(pkt.ts);
        }
        batch.last_ts = Some(pkt.ts);
        // The analysis searches for what is quiet before this packet, as `Analyzer::ingest` would.
        if self.searches.due(pkt.ts) {
            batch.events.push(Batched::Search(pkt.ts));
        }
        let keys = self.keys.as_ref();
        let framing = &mut self.framing;
        self.net
            .ingest(pkt, &mut |ev| batch.push(ev, keys, framing.as_mut()));
    }

    /// End of input: TCP data still held behind gaps goes into `batch`, and what the framers still hold
    /// is counted.
    pub(crate) fn finish(&mut self, batch: &mut EventBatch) {
        let keys = self.keys.as_ref();
        let framing = &mut self.framing;
        self.net.finish(&mut |ev| batch.push(ev, keys, framing.as_mut()));
        if let Some(framing) = self.framing.as_mut() {
            batch.count(framing.finish());
        }
    }
}

/// The network layer's output for a run of packets, owned (payloads copied into one buffer, or referred to
/// in the capture file's shared mapping), so it can cross to the analysis thread. Reused:
/// [`EventBatch::clear`] keeps the allocations.
#[derive(Default)]
pub(crate) struct EventBatch {
    /// Copied payloads.
    bytes: Vec<u8>,
    /// The capture file's bytes: a payload that lies in them is referred to, not copied.
    mapping: Option<Mapping>,
    /// Each event with its payload emptied and where the payload is, with what the reading thread worked
    /// out from a UDP payload while its bytes were in cache (digest, STUN message).
    events: Vec<Batched>,
    /// The events that are not UDP between IPv4 addresses, whole ([`Batched::Other`] refers to them).
    others: Vec<Whole>,
    /// Frames cut from TCP streams ([`Batched::Frame`] refers to them).
    frames: Vec<Framed>,
    /// Where the last payload referred to in the mapping ends: once the batch is analysed, nothing
    /// before it is needed (packets are batched in file order).
    mapped_end: usize,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
}

impl EventBatch {
    /// A batch whose payloads are referred to in `mapping` when they lie in it (a packet's UDP payload or
    /// in-order TCP bytes do; reassembled ones are copied).
    pub(crate) fn with_mapping(mapping: Option<Mapping>) -> Self {
        EventBatch {
            mapping,
            ..EventBatch::default()
        }
    }

    fn push(&mut self, ev: NetEvent<'_>, keys: Option<&Keyring>, framing: Option<&mut TcpFraming>) {
        if let Some(framing) = framing {
            match ev {
                NetEvent::TcpData { datagram, gap } => {
                    return self.push_frames(&datagram, gap, keys, framing)
                }
                // The analysis's only use of these is its framers'.
                NetEvent::TcpOpen { flow, .. } => return framing.open(&flow),
                NetEvent::TcpClose { flow, .. } => return self.count(framing.close(&flow)),
                _ => {}
            }
        }
        let (ev, payload) = ev.detach();
        let at = self.place(payload);
        let NetEvent::Udp(dg) = ev else {
            self.other(Whole {
                ev,
                at,
                digest: None,
                decoded: None,
            });
            return;
        };
        let digest = Digest::of(payload);
        let decoded = keys.and_then(|keys| Decoded::ahead(&digest, payload, keys));
        match (dg.flow.src, dg.flow.dst, dg.flow.transport) {
            (SocketAddr::V4(src), SocketAddr::V4(dst), Transport::Udp) => {
                self.events.push(Batched::Udp4(Udp4 {
                    ts: dg.ts,
                    frame: dg.frame,
                    at,
                    decoded,
                    digest,
                    src,
                    dst,
                    input: dg.input,
                }));
            }
            _ => self.other(Whole {
                ev,
                at,
                digest: Some(digest),
                decoded,
            }),
        }
    }

    /// Where `payload` will be: referred to in the mapping when it lies there, else copied.
    fn place(&mut self, payload: &[u8]) -> Payload {
        match self.mapping.as_ref().and_then(|m| m.range_of(payload)) {
            Some(range) => {
                self.mapped_end = self.mapped_end.max(range.end);
                Payload::mapped(range)
            }
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(payload);
                Payload::copied(start..self.bytes.len())
            }
        }
    }

    /// A TCP segment's frames, each with its digest and STUN message worked out here, as a UDP payload's.
    fn push_frames(
        &mut self,
        dg: &Datagram<'_>,
        gap: bool,
        keys: Option<&Keyring>,
        framing: &mut TcpFraming,
    ) {
        let counts = framing.segment(&dg.flow, dg.payload, gap);
        self.count(counts);
        for (kind, frame) in framing.frames(dg.payload) {
            let Ok(i) = u32::try_from(self.frames.len()) else {
                return;
            };
            let at = self.place(frame);
            let digest = Digest::of(frame);
            let decoded = keys.and_then(|keys| Decoded::ahead(&digest, frame, keys));
            self.frames.push(Framed {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
                flow: dg.flow,
                kind,
                at,
                digest,
                decoded,
            });
            self.events.push(Batched::Frame(i));
        }
    }

    fn count(&mut self, counts: FramingCounts) {
        if !counts.is_empty() {
            self.events.push(Batched::Counts(counts));
        }
    }

    fn other(&mut self, whole: Whole) {
        let Ok(i) = u32::try_from(self.others.len()) else {
            return;
        };
        self.others.push(whole);
        self.events.push(Batched::Other(i));
    }

    /// Payload bytes copied into the batch: it is handed over when this (or the event count) is large
    /// enough.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn events(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.events.clear();
        self.others.clear();
        self.frames.clear();
        self.mapped_end = 0;
        self.first_ts = None;
        self.last_ts = None;
    }
}

/// One event of a batch, its payload emptied (see [`EventBatch`]). Events cross from one core to the other
/// through memory, so their size counts: a UDP datagram between IPv4 addresses (nearly every event of a
/// large capture) is packed in 88 bytes where the network layer's event with a digest took 200.
enum Batched {
    Udp4(Udp4),
    /// Any other event: its index in [`EventBatch::others`].
    Other(u32),
    /// A frame cut from a TCP stream: its index in [`EventBatch::frames`].
    Frame(u32),
    /// What framing a segment (or a stream's end) adds to the analysis's statistics.
    Counts(FramingCounts),
    /// The analysis searches for what is quiet at this time ([`Analyzer::fold_search`]), before the
    /// events of the packet that carried it.
    Search(Timestamp),
}

/// A UDP datagram between IPv4 addresses, packed.
struct Udp4 {
    ts: Timestamp,
    frame: u64,
    at: Payload,
    decoded: Option<Box<Decoded>>,
    digest: Digest,
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    input: u16,
}

/// Any other event, whole (with the digest of a UDP payload).
struct Whole {
    ev: NetEvent<'static>,
    at: Payload,
    digest: Option<Digest>,
    decoded: Option<Box<Decoded>>,
}

/// A frame cut from a TCP stream, with what was worked out from it as from a UDP payload.
struct Framed {
    ts: Timestamp,
    frame: u64,
    input: u16,
    flow: Flow,
    kind: FrameKind,
    at: Payload,
    digest: Digest,
    decoded: Option<Box<Decoded>>,
}

/// An event's payload bytes.
fn payload_of<'a>(bytes: &'a [u8], mapping: Option<&'a Mapping>, at: &Payload) -> &'a [u8] {
    let range = at.range();
    if at.mapped {
        mapping.and_then(|m| m.bytes().get(range))
    } else {
        bytes.get(range)
    }
    .unwrap_or_default()
}

/// Where an event's payload is: copied into the batch, or in the capture file's mapping.
#[derive(Clone, Copy, Debug)]
struct Payload {
    start: u64,
    len: u32,
    mapped: bool,
}

impl Payload {
    fn mapped(range: std::ops::Range<usize>) -> Payload {
        Payload::of(range, true)
    }

    fn copied(range: std::ops::Range<usize>) -> Payload {
        Payload::of(range, false)
    }

    /// An empty range if it does not fit (no payload of a packet is 4 GB long).
    fn of(range: std::ops::Range<usize>, mapped: bool) -> Payload {
        let len = u32::try_from(range.len()).unwrap_or(0);
        Payload {
            start: range.start as u64,
            len,
            mapped,
        }
    }

    fn range(&self) -> std::ops::Range<usize> {
        let start = usize::try_from(self.start).unwrap_or(usize::MAX);
        start..start.saturating_add(self.len as usize)
    }
}

/// The analysis of a [`NetStage`]'s output, batch by batch, in order: the same as [`Analyzer::ingest`] of
/// the packets the batch was made from.
pub(crate) fn apply(analyzer: &mut Analyzer, batch: &mut EventBatch) {
    analyzer.extend_span(batch.first_ts, batch.last_ts);
    let EventBatch {
        bytes,
        mapping,
        events,
        others,
        frames,
        mapped_end,
        ..
    } = batch;
    let mapping = mapping.as_ref();
    for b in events.iter_mut() {
        match b {
            Batched::Udp4(u) => {
                let payload = payload_of(bytes, mapping, &u.at);
                let mut ahead = Ahead::of(payload, Some(&u.digest), u.decoded.as_deref());
                let dg = Datagram {
                    ts: u.ts,
                    frame: u.frame,
                    input: u.input,
                    flow: Flow {
                        src: SocketAddr::V4(u.src),
                        dst: SocketAddr::V4(u.dst),
                        transport: Transport::Udp,
                    },
                    payload,
                };
                analyzer.on_event(NetEvent::Udp(dg), &mut ahead);
            }
            Batched::Search(now) => analyzer.fold_search(*now),
            Batched::Frame(i) => {
                let Some(f) = frames.get(*i as usize) else {
                    continue;
                };
                let payload = payload_of(bytes, mapping, &f.at);
                let mut ahead = Ahead::of(payload, Some(&f.digest), f.decoded.as_deref());
                let frame = Datagram {
                    ts: f.ts,
                    frame: f.frame,
                    input: f.input,
                    flow: f.flow,
                    payload,
                };
                analyzer.on_tcp_frame(&frame, f.kind, &mut ahead);
            }
            Batched::Counts(counts) => analyzer.count_framing(*counts),
            Batched::Other(i) => {
                let Some(w) = others.get_mut(*i as usize) else {
                    continue;
                };
                let payload = payload_of(bytes, mapping, &w.at);
                let mut ahead = Ahead::of(payload, w.digest.as_ref(), w.decoded.as_deref());
                analyzer.on_event(w.ev.with_payload(payload), &mut ahead);
            }
        }
    }
    if let (Some(m), true) = (mapping, *mapped_end > 0) {
        m.consumed(*mapped_end);
    }
}

/// End of input after [`apply`] took every batch, the last one from [`NetStage::finish`]: the network
/// layer goes back to the analysis (for [`Analyzer::net_stats`]) and framing is wrapped up as in
/// [`Analyzer::finish`].
pub(crate) fn finish(analyzer: &mut Analyzer, net: NetStage) {
    analyzer.finish_with(net.net);
}
