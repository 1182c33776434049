//! The analysis: one entry point, [`Analyzer::ingest`], fed with timestamped packets; it owns the
//! [`Model`] that every output renders.
//!
//! Sans-IO (DESIGN.md): no clock, no files, no sockets. Per datagram it demultiplexes (RFC 7983), decodes
//! STUN/ChannelData, records each message, and feeds TURN-relayed payloads (Send/Data indications,
//! ChannelData; RFC 8656 §11-12) back in as inner datagrams between the relayed address and the peer, so
//! that traffic through a relay is analysed like direct traffic. TCP bytes are framed per stream
//! (`wire::framing`). Memory grows with STUN/TURN messages and TCP streams, each table bounded; media
//! packets are only counted.
mod classic;
pub mod findings;
mod flows;
pub mod ice;
pub mod nat;
pub mod recent;
pub mod sessions;
#[cfg(test)]
pub(crate) mod testkit;
pub mod transactions;
pub mod turn;

use crate::capture::file::Mapping;
use crate::capture::{Packet, Timestamp};
use crate::net::hash::{FastHash, FxHasher};
use crate::net::{Datagram, Flow, Net, NetEvent, NetStats, Transport};
use crate::wire::credentials::Keyring;
use crate::wire::framing::{Frame, Framer};
use crate::wire::stun::{self, StunMessage};
use crate::wire::{channel, demux, dialect, media, DecodeError};
use flows::{FlowFacts, FlowTable};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use transactions::{Seen, Transactions};

/// Messages kept for the report and the views. A busy TURN server capture holds millions of ChannelData
/// frames; past this bound messages are still analysed and counted, only not stored (the report says how
/// many were left out). 1M compact records stay within a few hundred MB at worst and cover any single
/// call's signalling.
pub const MAX_STORED_MESSAGES: usize = 1_000_000;
/// TCP streams framed at once; matches the TCP reassembler's bound so every tracked stream can be framed.
pub const MAX_TCP_STREAMS: usize = 4096;
/// TURN inside TURN: a relayed payload that is itself a Send indication or ChannelData is decoded this
/// many levels deep and no deeper (a hostile capture could nest until the datagram runs out).
pub const MAX_RELAY_DEPTH: u8 = 2;
/// The IANA ports for STUN/TURN (3478 UDP/TCP, 5349 TLS/DTLS) and their RFC 5780 alternates: ChannelData
/// and classic RFC 3489 STUN are accepted on them even before a flow has shown any other STUN.
pub const STUN_PORTS: [u16; 4] = [3478, 3479, 5349, 5350];
/// A capture taken at a TURN server sees a relayed datagram twice: inside the client's Send indication (or
/// ChannelData) and on the relay's peer leg, or the other way round. A copy with the same addresses and
/// bytes on the other side of the relay within this window is the same datagram, not a retransmission;
/// a relay forwards in well under a millisecond, and a real retransmission comes ≥ 50 ms later (RFC 8445
/// §14.3 pacing, RFC 8489 RTO ≥ 500 ms), so 20 ms separates the two.
pub const DUPLICATE_WINDOW_SECS: f64 = 0.020;
/// ICMP destination-unreachable events kept for findings; more is the same story told again.
pub const MAX_UNREACHABLE: usize = 1000;
/// Several captures of one call (`iceview read a.pcap b.pcap`) see the same datagram at each capture
/// point, stamped by different clocks. NTP keeps hosts within milliseconds; 2 s also covers unsynchronised
/// lab machines while staying far below the interval at which STUN bytes repeat (a retransmission is
/// matched to its own copy, as each capture point sees every transmission once).
pub const CROSS_INPUT_WINDOW_SECS: f64 = 2.0;
pub use recent::DUPLICATE_MEMORY;
/// ChannelData frames listed per allocation (per client/server 5-tuple); later frames are analysed and
/// counted (per peer and channel in the TURN report, and in `messages_not_stored`) but not stored. At a
/// TURN server every media packet is ChannelData, so storing them all would make memory grow with media
/// (DESIGN.md: it must not); 10 000 frames cover a call's first minutes (50 packets/s × 2 directions),
/// which is where channel binding, permission and relaying problems show.
pub const MAX_STORED_CHANNEL_DATA_PER_ALLOCATION: u32 = 10_000;
/// ChannelData frames listed in all, whatever the number of allocations: a bound on the memory the
/// listing takes (~0.3 KB a record, ~15 MB, as much again while the report is built), so a server capture with thousands of allocations stays flat.
pub const MAX_STORED_CHANNEL_DATA: usize = 50_000;

/// Counts of what the datagrams carried, by kind (RFC 7983 classes), and decode errors by reason.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub stun: u64,
    pub channel_data: u64,
    pub dtls: u64,
    pub rtp: u64,
    pub rtcp: u64,
    pub zrtp: u64,
    pub tls: u64,
    pub other: u64,
    /// Bytes of TCP streams that were TLS or opaque (RFC 6062 data connections).
    pub tcp_opaque_bytes: u64,
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Messages analysed but not stored because [`MAX_STORED_MESSAGES`] was reached.
    pub messages_not_stored: u64,
    /// Relayed payloads not decoded because [`MAX_RELAY_DEPTH`] was reached.
    pub relay_depth_exceeded: u64,
    pub tcp_streams_evicted: u64,
    /// Relayed datagrams seen twice (both sides of a TURN server), analysed once.
    pub relay_duplicates: u64,
}

impl Stats {
    fn error(&mut self, e: DecodeError) {
        *self.decode_errors.entry(e.reason).or_insert(0) += 1;
    }
}

/// Where a relayed (inner) message came from: the TURN server and the client it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    pub server: SocketAddr,
    pub client: SocketAddr,
    /// The carrier: Send/Data indication or ChannelData.
    pub via: RelayVia,
    /// False when the allocation's relayed address was never seen (capture started after Allocate): the
    /// inner message's relayed-side address then holds the server's IP with port 0.
    pub relayed_address_known: bool,
}

/// A relayed datagram's context inside the pipeline: the relay and which way it went.
#[derive(Clone, Copy, Debug)]
struct Inner {
    relay: Relay,
    /// Client → server → peer (Send indication, upstream ChannelData); else peer → client.
    to_peer: bool,
    /// The inner flow's facts, when the carrier's [`Route`] knew them.
    facts: Option<FlowFacts>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayVia {
    SendIndication,
    DataIndication,
    ChannelData(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Boxed: a record is stored for every ChannelData frame up to a bound too, and an inline message
    /// would make each of those as large as a STUN record (312 bytes instead of 192).
    Stun {
        msg: Box<StunMessage>,
        raw: Vec<u8>,
    },
    ChannelData {
        channel: u16,
        length: u16,
    },
}

/// One message as seen on the wire (or inside a relay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub ts: Timestamp,
    pub frame: u64,
    pub input: u16,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    /// Set for messages found inside TURN relaying.
    pub relay: Option<Box<Relay>>,
    /// The same datagram was already seen on the other side of a TURN relay (capture at the server):
    /// listed, but not analysed twice.
    pub duplicate: bool,
    pub body: Body,
}

impl MessageRecord {
    pub fn stun(&self) -> Option<&StunMessage> {
        match &self.body {
            Body::Stun { msg, .. } => Some(msg),
            Body::ChannelData { .. } => None,
        }
    }
}

/// An ICMP/ICMPv6 destination-unreachable for a packet of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub seen: Seen,
    /// The packet that could not be delivered.
    pub flow: Flow,
    pub reporter: std::net::IpAddr,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

/// Everything the outputs show.
#[derive(Debug, Default)]
pub struct Model {
    pub stats: Stats,
    pub messages: Vec<MessageRecord>,
    pub transactions: Transactions,
    pub turn: turn::TurnState,
    pub ice: ice::IceState,
    /// ICMP destination-unreachable quoting a UDP/TCP packet (at most [`MAX_UNREACHABLE`]).
    pub unreachable: Vec<Unreachable>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// What one [`Analyzer::age_out`] pass froze and retired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgeOut {
    pub sessions: usize,
    pub transactions: usize,
}

/// The network layer (link, IP, defragmentation, TCP reassembly) on its own, to run on the thread that reads
/// the capture while another runs the analysis: its output goes into [`EventBatch`]es, which
/// [`Analyzer::apply`] takes in order. Same results as [`Analyzer::ingest`], on two cores.
#[derive(Default)]
pub struct NetStage {
    net: Net,
    /// The analysis's credentials, when this stage decodes STUN messages ahead for it
    /// ([`Analyzer::net_stage`]).
    keys: Option<Keyring>,
}

impl NetStage {
    /// A network stage that leaves all decoding to the analysis.
    pub fn new() -> Self {
        NetStage::default()
    }

    pub fn ingest(&mut self, pkt: &Packet<'_>, batch: &mut EventBatch) {
        if batch.first_ts.is_none() {
            batch.first_ts = Some(pkt.ts);
        }
        batch.last_ts = Some(pkt.ts);
        let keys = self.keys.as_ref();
        self.net.ingest(pkt, &mut |ev| batch.push(ev, keys));
    }

    /// End of input: TCP data still held behind gaps goes into `batch`.
    pub fn finish(&mut self, batch: &mut EventBatch) {
        let keys = self.keys.as_ref();
        self.net.finish(&mut |ev| batch.push(ev, keys));
    }
}

/// The network layer's output for a run of packets, owned (payloads copied into one buffer, or referred to
/// in the capture file's shared mapping), so it can cross to the analysis thread. Reused:
/// [`EventBatch::clear`] keeps the allocations.
#[derive(Default)]
pub struct EventBatch {
    /// Copied payloads.
    bytes: Vec<u8>,
    /// The capture file's bytes: a payload that lies in them is referred to, not copied.
    mapping: Option<Mapping>,
    /// Each event with its payload emptied and where the payload is, with what the reading thread worked
    /// out from a UDP payload while its bytes were in cache (digest, STUN message).
    events: Vec<Batched>,
    /// The events that are not UDP between IPv4 addresses, whole ([`Batched::Other`] refers to them).
    others: Vec<Whole>,
    /// Where the last payload referred to in the mapping ends: once the batch is analysed, nothing
    /// before it is needed (packets are batched in file order).
    mapped_end: usize,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
}

impl EventBatch {
    /// A batch whose payloads are referred to in `mapping` when they lie in it (a packet's UDP payload or
    /// in-order TCP bytes do; reassembled ones are copied).
    pub fn with_mapping(mapping: Option<Mapping>) -> Self {
        EventBatch {
            mapping,
            ..EventBatch::default()
        }
    }

    fn push(&mut self, ev: NetEvent<'_>, keys: Option<&Keyring>) {
        let (ev, payload) = ev.detach();
        let at = match self.mapping.as_ref().and_then(|m| m.range_of(payload)) {
            Some(range) => {
                self.mapped_end = self.mapped_end.max(range.end);
                Payload::mapped(range)
            }
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(payload);
                Payload::copied(start..self.bytes.len())
            }
        };
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
                }))
            }
            _ => self.other(Whole {
                ev,
                at,
                digest: Some(digest),
                decoded,
            }),
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
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn events(&self) -> usize {
        self.events.len()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.events.clear();
        self.others.clear();
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

/// A STUN message decoded on the reading thread (the payload itself, or the application data of the
/// ChannelData frame it is, from `offset`): decoding is a pure function of the bytes and the credentials,
/// and it was the analysis thread's largest cost while a capture's calls were being set up.
struct Decoded {
    offset: usize,
    len: usize,
    result: Result<Box<StunMessage>, DecodeError>,
}

impl Decoded {
    /// Decodes what [`State::on_datagram`] would hand to [`State::on_stun`] as it is: a payload (or
    /// ChannelData application data) with the magic cookie and a consistent length.
    fn ahead(digest: &Digest, payload: &[u8], keys: &Keyring) -> Option<Box<Decoded>> {
        let (offset, b) = match digest.channel_look {
            _ if digest.look.kind == demux::Kind::Stun => (0, payload),
            Some(look) if look.kind == demux::Kind::Stun => {
                (channel::HEADER_LEN, digest.channel_data_of(payload)?)
            }
            _ => return None,
        };
        if !stun::looks_like_stun(b) {
            return None;
        }
        Some(Box::new(Decoded {
            offset,
            len: b.len(),
            result: stun::decode(b, keys).map(Box::new),
        }))
    }
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

/// What [`State::on_datagram`] decides from a payload's bytes alone: its RFC 7983 kind and, for the
/// DTLS/RTP range, what the record is (`None`: not media after all).
#[derive(Clone, Copy, Debug)]
struct Look {
    kind: demux::Kind,
    media: Option<ice::MediaKind>,
}

impl Look {
    fn of(b: &[u8]) -> Look {
        let kind = demux::classify(b);
        let media = match kind {
            demux::Kind::Dtls => media::dtls(b).map(|rec| ice::MediaKind::Dtls {
                application_data: rec.content_type == 23,
            }),
            demux::Kind::RtpOrRtcp => match media::rtp(b) {
                Some(media::Rtp::Rtp { .. }) => Some(ice::MediaKind::Rtp),
                Some(media::Rtp::Rtcp { .. }) => Some(ice::MediaKind::Rtcp),
                None => None,
            },
            _ => None,
        };
        Look { kind, media }
    }
}

/// A UDP payload's [`Look`] and [`content_hash`], and the same for its application data when it parses as
/// ChannelData (with the channel number, and where the data is): worked out on the reading thread while
/// the bytes are in its cache, so that the analysis of a relayed media packet never reads its payload (the
/// first read of each payload was the analysis thread's largest stall).
#[derive(Clone, Copy, Debug)]
struct Digest {
    hash: u64,
    channel_hash: u64,
    len: u32,
    /// The ChannelData frame's application data length, and its channel number.
    channel_len: u32,
    channel: u16,
    look: Look,
    /// The application data's look, when the payload parses as ChannelData (its data starts at
    /// [`channel::HEADER_LEN`]).
    channel_look: Option<Look>,
}

impl Digest {
    fn of(payload: &[u8]) -> Digest {
        let look = Look::of(payload);
        let mut digest = Digest {
            hash: content_hash(payload),
            channel_hash: 0,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            channel_len: 0,
            channel: 0,
            look,
            channel_look: None,
        };
        if matches!(look.kind, demux::Kind::ChannelData | demux::Kind::Other) {
            if let Ok(cd) = channel::parse_udp(payload) {
                digest.channel = cd.channel;
                digest.channel_len = u32::try_from(cd.data.len()).unwrap_or(u32::MAX);
                digest.channel_look = Some(Look::of(cd.data));
                digest.channel_hash = content_hash(cd.data);
            }
        }
        digest
    }

    /// (look, hash) of `b` if it is the payload (at address `base`) or its ChannelData application data.
    fn lookup(&self, base: usize, b: &[u8]) -> Option<(Look, u64)> {
        let at = b.as_ptr() as usize;
        if at == base && b.len() == self.len as usize {
            return Some((self.look, self.hash));
        }
        match self.channel_look {
            Some(look)
                if at == base.wrapping_add(channel::HEADER_LEN) && b.len() == self.channel_len as usize =>
            {
                Some((look, self.channel_hash))
            }
            _ => None,
        }
    }

    /// The ChannelData frame `b` (the payload at `base`) parses as.
    fn channel_data<'a>(&self, base: usize, b: &'a [u8]) -> Option<channel::ChannelData<'a>> {
        self.channel_look?;
        if b.as_ptr() as usize != base || b.len() != self.len as usize {
            return None;
        }
        Some(channel::ChannelData {
            channel: self.channel,
            data: self.channel_data_of(b)?,
        })
    }

    /// The ChannelData application data in `payload`, the frame this digest was made from.
    fn channel_data_of<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        let end = channel::HEADER_LEN.checked_add(self.channel_len as usize)?;
        payload.get(channel::HEADER_LEN..end)
    }
}

/// What the reading thread worked out for the batched UDP event being analysed: its payload's [`Digest`]
/// and the STUN message [`Decoded`] ahead. Both are matched to the bytes the analysis is looking at by
/// address and length, so the datagram relayed inside the payload finds its part and bytes from anywhere
/// else (TCP frames, events that were not batched) find nothing and are worked out on the spot.
#[derive(Default)]
struct Ahead<'a> {
    /// The payload's address.
    base: usize,
    digest: Option<&'a Digest>,
    decoded: Option<Box<Decoded>>,
}

impl Ahead<'_> {
    /// (look, content hash) of `b`, if the digest covers it.
    fn lookup(&self, b: &[u8]) -> Option<(Look, u64)> {
        self.digest?.lookup(self.base, b)
    }

    /// `channel::parse_udp(b)`, from the digest when `b` is the payload it was made from.
    fn parse_channel_data<'b>(&self, b: &'b [u8]) -> Result<channel::ChannelData<'b>, DecodeError> {
        match self.digest.and_then(|d| d.channel_data(self.base, b)) {
            Some(cd) => Ok(cd),
            None => channel::parse_udp(b),
        }
    }

    /// The decoding of `b`, if it is what was decoded ahead (once: the message moves out).
    fn take_decoded(&mut self, b: &[u8]) -> Option<Result<Box<StunMessage>, DecodeError>> {
        let d = self.decoded.as_ref()?;
        if self.base.wrapping_add(d.offset) != b.as_ptr() as usize || d.len != b.len() {
            return None;
        }
        self.decoded.take().map(|d| d.result)
    }
}

/// The length, the first 64 bytes and the last 16 tell datagrams with the same addresses apart: an
/// RTP/SRTP header (sequence number, timestamp, SSRC) and its authentication tag, a STUN header
/// (transaction id) and its FINGERPRINT, a DTLS record header (epoch, sequence number). Hashing every
/// byte of every relayed media packet cost ~10 % of a TURN server capture's analysis.
fn content_hash(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(b.len());
    h.write(b.get(..64).unwrap_or(b));
    h.write(b.get(b.len().saturating_sub(16)..).unwrap_or_default());
    h.finish()
}

/// Feeds an address to `h` in one word when it is IPv4 (the derived `Hash` takes five), in a marked
/// form otherwise: the duplicate detector hashes two or four addresses per relayed packet.
fn hash_addr(h: &mut FxHasher, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => h.write_u64(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port())),
        SocketAddr::V6(_) => {
            h.write_u64(u64::MAX);
            a.hash(h);
        }
    }
}

/// The pipeline after capture: packets in, [`Model`] out.
pub struct Analyzer {
    net: Net,
    state: State,
}

struct State {
    keys: Keyring,
    /// Recent datagrams that may be seen twice (hash of addresses and payload), with the paths they were
    /// seen through: a hash of the capture and of the TURN client and server that relayed it, if any.
    recent: recent::Recent,
    /// Per IPv4 flow: what its media needs looked up (bounded; emptied when full).
    flows: FlowTable,
    /// The same for IPv6 (and mixed) flows (at most [`flows::MAX_FLOW_FACTS`]; emptied when full).
    other_flows: HashMap<Flow, FlowFacts, FastHash>,
    /// Per IPv4 client↔server flow and channel number: where its ChannelData goes (as many as flows).
    routes: HashMap<(flows::Key, u16), Route, FastHash>,
    /// Relayed addresses of allocations seen (bounded like the allocation table), so media to or from
    /// them, which a TURN server capture sees twice, is deduplicated.
    relayed_addrs: HashSet<SocketAddr, FastHash>,
    /// Number of captures being merged (duplicates across capture points are matched when > 1).
    inputs: u16,
    framers: HashMap<Flow, Framer, FastHash>,
    /// ChannelData frames stored per carrier 5-tuple (client/server order-free), at most one entry per
    /// allocation the TURN analysis can hold.
    channel_data_stored: HashMap<(SocketAddr, SocketAddr, Transport), u32, FastHash>,
    channel_data_stored_total: usize,
    /// Messages listed at most ([`MAX_STORED_MESSAGES`] unless [`Analyzer::set_store_limit`] lowered it).
    store_limit: usize,
    /// Classic RFC 3489 look-alike requests off the STUN ports, waiting for a response to pair with.
    classic: classic::ClassicPairs,
    model: Model,
    tap: Option<MessageTap>,
}

/// Where ChannelData on a client↔server flow and channel goes ([`State::route`]): the flow's allocation
/// and the inner datagram (its flow, relay context and facts), valid while the facts' generation and the
/// allocation's version ([`turn::TurnState::version`]) are unchanged.
#[derive(Clone, Copy, Debug)]
struct Route {
    generation: u64,
    version: u32,
    allocation: Option<(usize, bool)>,
    inner: Option<(Flow, Relay, FlowFacts)>,
}

/// Sees every message as it is recorded, stored or not (past [`MAX_STORED_MESSAGES`] too): the live event
/// stream is fed from here.
pub type MessageTap = Box<dyn FnMut(&MessageRecord) + Send>;

impl Analyzer {
    pub fn new(keys: Keyring) -> Self {
        let mut model = Model::default();
        model.turn.set_credentials(&keys);
        Analyzer {
            net: Net::new(),
            state: State {
                keys,
                recent: recent::Recent::default(),
                flows: FlowTable::default(),
                other_flows: HashMap::default(),
                routes: HashMap::default(),
                relayed_addrs: HashSet::default(),
                inputs: 1,
                framers: HashMap::default(),
                channel_data_stored: HashMap::default(),
                channel_data_stored_total: 0,
                classic: classic::ClassicPairs::default(),
                store_limit: MAX_STORED_MESSAGES,
                model,
                tap: None,
            },
        }
    }

    /// A [`NetStage`] that also decodes STUN messages for this analysis, with its credentials, so that the
    /// reading thread takes that work.
    pub fn net_stage(&self) -> NetStage {
        NetStage {
            net: Net::new(),
            keys: Some(self.state.keys.clone()),
        }
    }

    /// Lists at most `limit` messages (never more than [`MAX_STORED_MESSAGES`]); later ones are analysed and
    /// counted in `messages_not_stored`. Live capture uses it so that memory stops growing after the first
    /// `limit` messages of a run that may last hours (the rest still reach the message tap).
    pub fn set_store_limit(&mut self, limit: usize) {
        self.state.store_limit = limit.min(MAX_STORED_MESSAGES);
    }

    /// Tells the analysis how many captures are merged, so the same datagram seen at several capture
    /// points is analysed once.
    pub fn set_inputs(&mut self, inputs: u16) {
        self.state.inputs = inputs.max(1);
    }

    pub fn ingest(&mut self, pkt: &Packet<'_>) {
        let model = &mut self.state.model;
        if model.first_ts.is_none() {
            model.first_ts = Some(pkt.ts);
        }
        model.last_ts = Some(pkt.ts);
        let state = &mut self.state;
        self.net
            .ingest(pkt, &mut |ev| state.on_net_event(ev, &mut Ahead::default()));
    }

    /// End of input: flush TCP data held behind gaps; frames still incomplete are counted as lost.
    pub fn finish(&mut self) {
        let state = &mut self.state;
        self.net
            .finish(&mut |ev| state.on_net_event(ev, &mut Ahead::default()));
        self.finish_framing();
    }

    /// The analysis of a [`NetStage`]'s output, batch by batch, in order: the same as [`Analyzer::ingest`]
    /// of the packets the batch was made from.
    pub fn apply(&mut self, batch: &mut EventBatch) {
        let model = &mut self.state.model;
        if model.first_ts.is_none() {
            model.first_ts = batch.first_ts;
        }
        if batch.last_ts.is_some() {
            model.last_ts = batch.last_ts;
        }
        let EventBatch {
            bytes,
            mapping,
            events,
            others,
            mapped_end,
            ..
        } = batch;
        let mapping = mapping.as_ref();
        for b in events.iter_mut() {
            match b {
                Batched::Udp4(u) => {
                    let payload = payload_of(bytes, mapping, &u.at);
                    let mut ahead = Ahead {
                        base: payload.as_ptr() as usize,
                        digest: Some(&u.digest),
                        decoded: u.decoded.take(),
                    };
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
                    self.state.on_net_event(NetEvent::Udp(dg), &mut ahead);
                }
                Batched::Other(i) => {
                    let Some(w) = others.get_mut(*i as usize) else {
                        continue;
                    };
                    let payload = payload_of(bytes, mapping, &w.at);
                    let mut ahead = Ahead {
                        base: payload.as_ptr() as usize,
                        digest: w.digest.as_ref(),
                        decoded: w.decoded.take(),
                    };
                    self.state.on_net_event(w.ev.with_payload(payload), &mut ahead);
                }
            }
        }
        if let (Some(m), true) = (mapping, *mapped_end > 0) {
            m.consumed(*mapped_end);
        }
    }

    /// End of input after [`Analyzer::apply`] took every batch, the last one from [`NetStage::finish`]:
    /// the network layer comes back (for [`Analyzer::net_stats`]) and framing is wrapped up as in
    /// [`Analyzer::finish`].
    pub fn finish_applied(&mut self, net: NetStage) {
        self.net = net.net;
        self.finish_framing();
    }

    fn finish_framing(&mut self) {
        let state = &mut self.state;
        let incomplete = state.framers.values().filter(|f| f.pending() > 0).count() as u64;
        if incomplete > 0 {
            *state
                .model
                .stats
                .decode_errors
                .entry("tcp-incomplete-frame-at-end")
                .or_insert(0) += incomplete;
        }
        state.framers.clear();
    }

    /// Live mode's ageing: ICE sessions idle for more than `idle_secs` before `now` are frozen into their
    /// final view (kept in the report; their detail dropped), and transactions idle that long that no live
    /// session or pending TURN request refers to are retired so their slots are reused. This keeps hours of
    /// traffic within the tables' bounds. File reads do not call it: a capture file is analysed whole.
    pub fn age_out(&mut self, now: Timestamp, idle_secs: f64) -> AgeOut {
        let model = &mut self.state.model;
        let mut out = AgeOut::default();
        for s in model.ice.idle_sessions(now, idle_secs) {
            let view = sessions::session(&model.ice, s, &model.transactions, now);
            model.ice.freeze(s, view);
            out.sessions += 1;
        }
        let keep: HashSet<transactions::TxIndex> = model
            .ice
            .referenced_txs()
            .chain(model.turn.pending_txs())
            .collect();
        let old: Vec<transactions::TxIndex> = (0..model.transactions.list.len())
            .filter(|i| !keep.contains(i))
            .filter(|&i| {
                model.transactions.get(i).is_some_and(|t| {
                    t.last_activity()
                        .is_some_and(|last| now.secs_since(last) > idle_secs)
                })
            })
            .collect();
        for i in old {
            model.transactions.retire(i);
            out.transactions += 1;
        }
        out
    }

    pub fn model(&self) -> &Model {
        &self.state.model
    }

    pub fn net_stats(&self) -> &NetStats {
        self.net.stats()
    }

    pub fn into_model(self) -> Model {
        self.state.model
    }

    pub fn set_message_tap(&mut self, tap: MessageTap) {
        self.state.tap = Some(tap);
    }
}

impl State {
    fn on_net_event(&mut self, ev: NetEvent<'_>, ahead: &mut Ahead<'_>) {
        match ev {
            NetEvent::Udp(dg) => self.on_datagram(&dg, None, 0, ahead),
            NetEvent::TcpData { datagram, gap } => self.on_tcp(&datagram, gap),
            NetEvent::TcpOpen { flow, .. } => {
                self.framers.remove(&flow);
            }
            NetEvent::TcpClose { flow, .. } => {
                // A frame cut short by the end of the stream is lost data: count it.
                if self.framers.remove(&flow).is_some_and(|f| f.pending() > 0) {
                    self.model.stats.error(DecodeError::new(0, "tcp-unframed-bytes"));
                }
            }
            NetEvent::Unreachable {
                ts,
                frame,
                input,
                flow,
                reporter,
                icmp_type,
                icmp_code,
            } => {
                if self.model.unreachable.len() < MAX_UNREACHABLE {
                    self.model.unreachable.push(Unreachable {
                        seen: Seen { ts, frame, input },
                        flow,
                        reporter,
                        icmp_type,
                        icmp_code,
                    });
                }
            }
        }
    }

    fn on_tcp(&mut self, dg: &Datagram<'_>, gap: bool) {
        if !self.framers.contains_key(&dg.flow) && self.framers.len() >= MAX_TCP_STREAMS {
            // Evict an arbitrary stream: a capture with this many concurrent TURN/ICE-TCP streams is a
            // server under load, and losing one stream's partial frame costs at most one message.
            if let Some(k) = self.framers.keys().next().copied() {
                self.framers.remove(&k);
                self.model.stats.tcp_streams_evicted += 1;
            }
        }
        let mut framer = self.framers.remove(&dg.flow).unwrap_or_default();
        let mut frames: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut skipped = 0usize;
        let mut opaque = (0usize, false);
        framer.push(dg.payload, gap, &mut |f| match f {
            Frame::Stun(b) => frames.push((0, b.to_vec())),
            Frame::ChannelData(b) => frames.push((1, b.to_vec())),
            Frame::Rfc4571(b) => frames.push((2, b.to_vec())),
            Frame::Skipped { len } => skipped += len,
            Frame::Opaque { len, tls } => {
                opaque.0 += len;
                opaque.1 |= tls;
            }
        });
        self.framers.insert(dg.flow, framer);
        if skipped > 0 {
            self.model.stats.error(DecodeError::new(0, "tcp-unframed-bytes"));
        }
        if opaque.0 > 0 {
            if opaque.1 {
                self.model.stats.tls += 1;
            }
            self.model.stats.tcp_opaque_bytes += opaque.0 as u64;
        }
        for (kind, bytes) in frames {
            let frame = Datagram {
                payload: &bytes,
                ..*dg
            };
            match kind {
                0 => self.on_stun(&frame, None, 0, &mut Ahead::default()),
                1 => match channel::parse_tcp(&bytes) {
                    Ok(cd) => self.on_channel_data(&frame, cd, None, 0, &mut Ahead::default()),
                    Err(e) => self.model.stats.error(e),
                },
                _ => self.on_datagram(&frame, None, 0, &mut Ahead::default()),
            }
        }
    }

    /// One datagram's payload (UDP, an RFC 4571 frame, or a relayed inner datagram).
    fn on_datagram(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, depth: u8, ahead: &mut Ahead<'_>) {
        let b = dg.payload;
        let look = match ahead.lookup(b) {
            Some((look, _)) => look,
            None => Look::of(b),
        };
        let media = match look.kind {
            demux::Kind::Stun => {
                if stun::looks_like_stun(b)
                    || (self.classic_plausible(dg) && stun::looks_like_classic_stun(b))
                {
                    self.on_stun(dg, relay, depth, ahead);
                } else if b.len() >= stun::HEADER_LEN
                    && b.get(4..8) == Some(&stun::MAGIC_COOKIE.to_be_bytes()[..])
                {
                    // The magic cookie says STUN, the length field disagrees with the datagram: a broken
                    // message, not some other protocol (RFC 8489 §5).
                    match stun::decode(b, &self.keys) {
                        Err(e) => self.model.stats.error(e),
                        Ok(_) => self
                            .model
                            .stats
                            .error(DecodeError::new(2, "stun-length-short-of-datagram")),
                    }
                } else if relay.is_none() && stun::looks_like_classic_stun(b) {
                    self.on_classic_offport(dg, ahead);
                } else {
                    self.model.stats.other += 1;
                }
                return;
            }
            demux::Kind::ChannelData if self.channel_data_plausible(dg) => {
                match ahead.parse_channel_data(b) {
                    Ok(cd) => self.on_channel_data(dg, cd, relay, depth, ahead),
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            demux::Kind::Dtls | demux::Kind::RtpOrRtcp => match look.media {
                Some(m) => {
                    match m {
                        ice::MediaKind::Dtls { .. } => self.model.stats.dtls += 1,
                        ice::MediaKind::Rtp => self.model.stats.rtp += 1,
                        ice::MediaKind::Rtcp => self.model.stats.rtcp += 1,
                    }
                    m
                }
                None => {
                    self.model.stats.other += 1;
                    return;
                }
            },
            demux::Kind::Zrtp => {
                self.model.stats.zrtp += 1;
                return;
            }
            // RFC 5766 channels 0x5000-0x7FFF, only where a ChannelBind for that number was seen on this
            // flow (RFC 7983/9443 give first bytes 80-127 to other protocols otherwise).
            demux::Kind::Other if matches!(b.first(), Some(0x50..=0x7F)) && self.legacy_channel_bound(dg) => {
                match ahead.parse_channel_data(b) {
                    Ok(cd) => self.on_channel_data(dg, cd, relay, depth, ahead),
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            // [MS-TURN] multiplexed TURN (channel 0xFF10, outside RFC 8656's range) between a client and
            // its server: listed as ChannelData; its data is relayed to or from the allocation's active
            // destination (the last Set Active Destination's peer), and decoded as such when it is known.
            demux::Kind::Other
                if b.get(..2) == Some(&channel::MS_MULTIPLEXED_TURN.to_be_bytes()[..])
                    && self.channel_data_plausible(dg) =>
            {
                match channel::parse_mturn(b) {
                    Ok(m) => {
                        self.model.stats.channel_data += 1;
                        self.record_channel_data(dg, relay, false, channel::MS_MULTIPLEXED_TURN, m.length);
                        let route = match (relay, self.facts(&dg.flow).allocation) {
                            (None, Some(at)) => self.model.turn.mturn_route(at),
                            _ => None,
                        };
                        if let Some((inner, inner_relay)) = route {
                            let facts = self.facts(&inner);
                            self.relay_inner(dg, (inner, inner_relay, Some(facts)), m.data, depth, ahead);
                        }
                    }
                    Err(e) => self.model.stats.error(e),
                }
                return;
            }
            // WhatsApp's message types 0x0800-0x0805 (first byte 0x08, outside RFC 7983's STUN range): STUN
            // when the header is (magic cookie, exact length) and the flow talks STUN.
            demux::Kind::Other
                if b.first() == Some(&0x08)
                    && stun::looks_like_stun(b)
                    && b.get(..2).is_some_and(|t| {
                        dialect::WHATSAPP_TYPES.contains(&u16::from_be_bytes([t[0], t[1]]))
                    })
                    && self.channel_data_plausible(dg) =>
            {
                self.on_stun(dg, relay, depth, ahead);
                return;
            }
            _ => {
                self.model.stats.other += 1;
                return;
            }
        };
        // Media is only attributed to pairs; relayed media (or media to/from a relayed address, at a TURN
        // server) may be seen twice and is counted once.
        let facts = match relay.and_then(|r| r.facts) {
            Some(f) => f,
            None => self.facts(&dg.flow),
        };
        if (relay.is_some() || facts.relayed_end) && self.is_relay_duplicate(dg, relay, ahead) {
            return;
        }
        if let Some(pair) = facts.pair {
            let seen = Seen {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
            };
            self.model.ice.on_media(pair, seen, media, b.len());
        }
    }

    /// What `flow`'s media needs looked up, from the cache while the tables it comes from are unchanged.
    fn facts(&mut self, flow: &Flow) -> FlowFacts {
        let generation = self.generation();
        let key = flows::Key::of(flow);
        let cached = match key {
            Some(k) => self.flows.get(&k),
            None => self.other_flows.get(flow).copied(),
        };
        if let Some(f) = cached.filter(|f| f.generation == generation) {
            return f;
        }
        let facts = FlowFacts {
            generation,
            relayed_end: self.relayed_addrs.contains(&flow.src) || self.relayed_addrs.contains(&flow.dst),
            allocation: self.model.turn.allocation_of(flow),
            pair: self.model.ice.pair_of(flow),
        };
        match key {
            Some(k) => self.flows.insert(k, &facts),
            None => {
                if self.other_flows.len() >= flows::MAX_FLOW_FACTS {
                    self.other_flows.clear();
                }
                self.other_flows.insert(*flow, facts);
            }
        }
        facts
    }

    /// The generations of the tables [`FlowFacts`] come from, summed (each only grows).
    fn generation(&self) -> u64 {
        self.model.turn.generation() + self.model.ice.flow_generation() + self.relayed_addrs.len() as u64
    }

    /// Where ChannelData on `flow` and `channel` goes, from the cache while the tables the flows' facts
    /// come from and the allocation are unchanged: one lookup per relayed media packet instead of two
    /// flows' and the channel's.
    fn route(&mut self, flow: &Flow, channel: u16) -> Route {
        let generation = self.generation();
        let key = flows::Key::of(flow).map(|k| (k, channel));
        if let Some(r) = key.and_then(|k| self.routes.get(&k)) {
            let current = match r.allocation {
                Some((at, _)) => self.model.turn.version(at) == r.version,
                None => true,
            };
            if r.generation == generation && current {
                return *r;
            }
        }
        let allocation = self.facts(flow).allocation;
        let version = allocation.map_or(0, |(at, _)| self.model.turn.version(at));
        let inner = allocation
            .and_then(|at| self.model.turn.channel_route(at, channel))
            .map(|(inner, relay)| (inner, relay, self.facts(&inner)));
        let route = Route {
            generation,
            version,
            allocation,
            inner,
        };
        if let Some(k) = key {
            if self.routes.len() >= flows::MAX_FLOW_FACTS {
                self.routes.clear();
            }
            self.routes.insert(k, route);
        }
        route
    }

    /// A ChannelBind for this datagram's channel number (0x5000-0x7FFF) was seen on its client↔server flow.
    fn legacy_channel_bound(&self, dg: &Datagram<'_>) -> bool {
        let [c0, c1, ..] = *dg.payload else { return false };
        self.model
            .turn
            .channel_payload(dg, u16::from_be_bytes([c0, c1]))
            .is_some()
    }

    /// A classic RFC 3489 look-alike off the STUN ports ([`classic`]): counted as `other` until its
    /// request and response pair up, then both are STUN (the request with its own time and frame).
    fn on_classic_offport(&mut self, dg: &Datagram<'_>, ahead: &mut Ahead<'_>) {
        let Some(req) = self.classic.offer(dg) else {
            self.model.stats.other += 1;
            return;
        };
        // The request was counted as `other` when it came.
        self.model.stats.other = self.model.stats.other.saturating_sub(1);
        let request = Datagram {
            ts: req.ts,
            frame: req.frame,
            input: req.input,
            flow: req.flow,
            payload: &req.bytes,
        };
        self.on_stun(&request, None, 0, &mut Ahead::default());
        self.on_stun(dg, None, 0, ahead);
    }

    /// RFC 3489 messages have no cookie: only trust them on the STUN ports.
    fn classic_plausible(&self, dg: &Datagram<'_>) -> bool {
        STUN_PORTS.contains(&dg.flow.src.port()) || STUN_PORTS.contains(&dg.flow.dst.port())
    }

    /// ChannelData only between a TURN client and its server (RFC 8656 §12): a known allocation's flow or
    /// a STUN port.
    fn channel_data_plausible(&mut self, dg: &Datagram<'_>) -> bool {
        STUN_PORTS.contains(&dg.flow.src.port())
            || STUN_PORTS.contains(&dg.flow.dst.port())
            || self.facts(&dg.flow).allocation.is_some()
    }

    fn on_stun(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, depth: u8, ahead: &mut Ahead<'_>) {
        let decoded = ahead
            .take_decoded(dg.payload)
            .unwrap_or_else(|| stun::decode(dg.payload, &self.keys).map(Box::new));
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.model.stats.error(e);
                return;
            }
        };
        self.model.stats.stun += 1;
        if let Some(e) = msg.malformed {
            self.model.stats.error(e);
        }
        let duplicate = self.is_relay_duplicate(dg, relay, ahead);
        if duplicate {
            self.model.stats.relay_duplicates += 1;
        }
        let mut inner = None;
        if !duplicate {
            let seen = Seen {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
            };
            let flow = dg.flow;
            let tx = self.model.transactions.on_message(
                seen,
                flow.src,
                flow.dst,
                flow.transport,
                relay.is_some(),
                &msg,
            );
            if relay.is_none() {
                if msg.method == stun::Method::ALLOCATE && msg.class == stun::Class::Success {
                    for a in msg
                        .attributes
                        .iter()
                        .filter(|a| a.typ == stun::ATTR_XOR_RELAYED_ADDRESS)
                    {
                        if let (Some(addr), true) = (
                            a.value.address(),
                            self.relayed_addrs.len() < turn::MAX_ALLOCATIONS,
                        ) {
                            self.relayed_addrs.insert(addr);
                        }
                    }
                }
                let model = &mut self.model;
                model.turn.on_stun(dg, &msg, tx, &model.transactions);
                inner = model.turn.relayed_payload(dg, &msg);
            }
            self.model.ice.on_stun(&ice::Observed {
                seen,
                flow,
                relay: relay.map(|r| r.relay),
                relay_to_peer: relay.is_some_and(|r| r.to_peer),
                msg: &msg,
                tx,
            });
        }
        self.store(MessageRecord {
            ts: dg.ts,
            frame: dg.frame,
            input: dg.input,
            src: dg.flow.src,
            dst: dg.flow.dst,
            transport: dg.flow.transport,
            relay: relay.map(|r| Box::new(r.relay)),
            duplicate,
            body: Body::Stun {
                msg,
                raw: dg.payload.to_vec(),
            },
        });
        if let Some((inner_flow, inner_relay, range)) = inner {
            let Some(payload) = dg.payload.get(range) else {
                return;
            };
            self.relay_inner(dg, (inner_flow, inner_relay, None), payload, depth, ahead);
        }
    }

    /// True when this datagram is a copy, seen through another path (the wire, or another TURN
    /// allocation: relay↔relay calls show each check leaving one allocation and entering the other), of
    /// one seen within [`DUPLICATE_WINDOW_SECS`].
    fn is_relay_duplicate(&mut self, dg: &Datagram<'_>, relay: Option<Inner>, ahead: &Ahead<'_>) -> bool {
        // The path a copy was seen through: its capture (input) and the TURN allocation that carried it.
        let path = {
            let mut h = FxHasher::default();
            h.write_u16(dg.input);
            if let Some(r) = relay {
                hash_addr(&mut h, &r.relay.client);
                hash_addr(&mut h, &r.relay.server);
            }
            h.finish()
        };
        let window = if self.inputs > 1 {
            CROSS_INPUT_WINDOW_SECS
        } else {
            DUPLICATE_WINDOW_SECS
        };
        let content = ahead.lookup(dg.payload).map(|(_, hash)| hash);
        let mut h = FxHasher::default();
        hash_addr(&mut h, &dg.flow.src);
        hash_addr(&mut h, &dg.flow.dst);
        h.write_u64(content.unwrap_or_else(|| content_hash(dg.payload)));
        let window_nanos = (window * 1e9) as u64;
        self.recent.is_copy(h.finish(), path, dg.ts, window_nanos)
    }

    fn on_channel_data(
        &mut self,
        dg: &Datagram<'_>,
        cd: channel::ChannelData<'_>,
        relay: Option<Inner>,
        depth: u8,
        ahead: &mut Ahead<'_>,
    ) {
        self.model.stats.channel_data += 1;
        // With several captures of one call, a ChannelData frame may be the same one another capture point
        // saw: count and decode it once. (One capture never sees a carrier twice, and hashing every media
        // carrier would cost the common case.)
        let duplicate = self.inputs > 1 && self.is_relay_duplicate(dg, relay, ahead);
        if duplicate {
            self.model.stats.relay_duplicates += 1;
        }
        // Counted on its allocation only on the client↔server leg, not when itself relayed.
        let route = self.route(&dg.flow, cd.channel);
        let inner = match route.allocation {
            Some(at) if !duplicate => {
                if relay.is_none() {
                    self.model
                        .turn
                        .count_channel_data(at, dg, cd.channel, cd.data.len());
                }
                route.inner
            }
            _ => None,
        };
        self.record_channel_data(dg, relay, duplicate, cd.channel, cd.data.len() as u16);
        if let Some((inner_flow, inner_relay, facts)) = inner {
            self.relay_inner(dg, (inner_flow, inner_relay, Some(facts)), cd.data, depth, ahead);
        }
    }

    /// Lists a ChannelData frame (`length`: as its header states it), within the ChannelData bounds.
    fn record_channel_data(
        &mut self,
        dg: &Datagram<'_>,
        relay: Option<Inner>,
        duplicate: bool,
        channel: u16,
        length: u16,
    ) {
        let storable = self.channel_data_storable(dg);
        if !storable {
            self.model.stats.messages_not_stored += 1;
        }
        // Past the ChannelData bounds a frame is counted, and still shown to the live event stream.
        if storable || self.tap.is_some() {
            let rec = MessageRecord {
                ts: dg.ts,
                frame: dg.frame,
                input: dg.input,
                src: dg.flow.src,
                dst: dg.flow.dst,
                transport: dg.flow.transport,
                relay: relay.map(|r| Box::new(r.relay)),
                duplicate,
                body: Body::ChannelData { channel, length },
            };
            if storable {
                self.store(rec);
            } else if let Some(tap) = self.tap.as_mut() {
                tap(&rec);
            }
        }
    }

    /// Decodes a relayed payload as a datagram between the relayed address and the peer. The carrier
    /// going from the TURN client to the server means the datagram leaves toward the peer.
    fn relay_inner(
        &mut self,
        carrier: &Datagram<'_>,
        (flow, relay, facts): (Flow, Relay, Option<FlowFacts>),
        payload: &[u8],
        depth: u8,
        ahead: &mut Ahead<'_>,
    ) {
        if depth >= MAX_RELAY_DEPTH {
            self.model.stats.relay_depth_exceeded += 1;
            return;
        }
        let inner = Datagram {
            flow,
            payload,
            ..*carrier
        };
        let to_peer = carrier.flow.src == relay.client;
        self.on_datagram(
            &inner,
            Some(Inner {
                relay,
                to_peer,
                facts,
            }),
            depth + 1,
            ahead,
        );
    }

    /// Whether this ChannelData frame is still listed: [`MAX_STORED_CHANNEL_DATA_PER_ALLOCATION`] per
    /// carrier 5-tuple, [`MAX_STORED_CHANNEL_DATA`] in all. Counts it when it is.
    fn channel_data_storable(&mut self, dg: &Datagram<'_>) -> bool {
        if self.channel_data_stored_total >= MAX_STORED_CHANNEL_DATA {
            return false;
        }
        let (a, b) = if dg.flow.src <= dg.flow.dst {
            (dg.flow.src, dg.flow.dst)
        } else {
            (dg.flow.dst, dg.flow.src)
        };
        let key = (a, b, dg.flow.transport);
        let full = self.channel_data_stored.len() >= turn::MAX_ALLOCATIONS;
        let n = match self.channel_data_stored.get_mut(&key) {
            Some(n) => n,
            None if full => return false,
            None => self.channel_data_stored.entry(key).or_insert(0),
        };
        if *n >= MAX_STORED_CHANNEL_DATA_PER_ALLOCATION {
            return false;
        }
        *n += 1;
        self.channel_data_stored_total += 1;
        true
    }

    fn store(&mut self, rec: MessageRecord) {
        if let Some(tap) = self.tap.as_mut() {
            tap(&rec);
        }
        let messages = &mut self.model.messages;
        if messages.len() < self.store_limit {
            // Grow by a quarter rather than double: at the bound this list is the largest thing in memory
            // (~190 MB), and doubling would leave up to half of it unused.
            if messages.len() == messages.capacity() {
                messages.reserve_exact((messages.len() / 4).max(1024));
            }
            messages.push(rec);
        } else {
            self.model.stats.messages_not_stored += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::wire::encode::{channel_data, MessageBuilder};
    use crate::wire::stun::{Class, Method, TransactionId};
    use std::net::SocketAddr;

    fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
            panic!("v4 only")
        };
        let builder =
            etherparse::PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64).udp(s.port(), d.port());
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn run(packets: &[Vec<u8>]) -> Model {
        let mut a = Analyzer::new(Keyring::new());
        let timed: Vec<(u64, Vec<u8>)> = packets
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64, p.clone()))
            .collect();
        feed(&mut a, &timed, 0);
        a.finish();
        a.into_model()
    }

    /// Feeds (milliseconds, packet) pairs; frames are numbered from `first_frame` + 1.
    fn feed(a: &mut Analyzer, packets: &[(u64, Vec<u8>)], first_frame: u64) {
        for (i, (ms, data)) in packets.iter().enumerate() {
            a.ingest(&Packet {
                ts: Timestamp(1_000_000_000 + ms * 1_000_000),
                frame: first_frame + i as u64 + 1,
                input: 0,
                link_type: LinkType::RawIp,
                data,
                orig_len: data.len() as u32,
            });
        }
    }

    /// A connectivity check `from` → `to` (USERNAME "RFRAG:LFRAG", controlling) and its success.
    fn check_and_success(id: u8, user: &str, from: SocketAddr, to: SocketAddr) -> [Vec<u8>; 2] {
        let mut req = MessageBuilder::request(Method::BINDING, TransactionId([id; 12]));
        req.text(stun::ATTR_USERNAME, user)
            .u64(stun::ATTR_ICE_CONTROLLING, 7)
            .flag(stun::ATTR_USE_CANDIDATE);
        let mut ok = MessageBuilder::new(Method::BINDING, Class::Success, TransactionId([id; 12]));
        ok.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, from);
        [
            udp(from, to, &req.finish().unwrap()),
            udp(to, from, &ok.finish().unwrap()),
        ]
    }

    /// The per-flow cache of lookups (`State::facts`) must notice a pair that appears after a flow's first
    /// media: RTP before the checks counts on no pair, RTP after them on the new pair, both directions;
    /// and a second session on other addresses does not disturb the first one's counts.
    #[test]
    fn media_counts_on_a_pair_formed_after_the_flow_was_first_seen() {
        let a: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:6000".parse().unwrap();
        let c: SocketAddr = "192.0.2.3:5000".parse().unwrap();
        let d: SocketAddr = "192.0.2.4:6000".parse().unwrap();
        let rtp = |seq: u8| {
            let mut p = vec![0x80, 96, 0, seq, 0, 0, 0, 1, 0, 0, 0, 9];
            p.extend_from_slice(&[0xAB; 100]);
            p
        };
        let [r1, s1] = check_and_success(1, "bbbb:aaaa", a, b);
        let [r2, s2] = check_and_success(2, "dddd:cccc", c, d);
        let packets = vec![
            (0, udp(a, b, &rtp(1))),
            (1, udp(b, a, &rtp(2))),
            (2, r1),
            (3, s1),
            (4, udp(a, b, &rtp(3))),
            (5, udp(b, a, &rtp(4))),
            (6, udp(b, a, &rtp(5))),
            (7, r2),
            (8, s2),
            (9, udp(a, b, &rtp(6))),
            (10, udp(c, d, &rtp(7))),
        ];
        for batched in [false, true] {
            let mut an = Analyzer::new(Keyring::new());
            if batched {
                let mut net = NetStage::new();
                let mut batch = EventBatch::default();
                for (i, (ms, data)) in packets.iter().enumerate() {
                    net.ingest(
                        &Packet {
                            ts: Timestamp(1_000_000_000 + ms * 1_000_000),
                            frame: i as u64 + 1,
                            input: 0,
                            link_type: LinkType::RawIp,
                            data,
                            orig_len: data.len() as u32,
                        },
                        &mut batch,
                    );
                }
                net.finish(&mut batch);
                an.apply(&mut batch);
                an.finish_applied(net);
            } else {
                feed(&mut an, &packets, 0);
                an.finish();
            }
            let m = an.model();
            assert_eq!(m.stats.rtp, 7, "batched {batched}");
            let first = &m.ice.sessions[0].pairs[0].media;
            assert_eq!((first.rtp, first.packets), (4, [2, 2]), "batched {batched}");
            let second = &m.ice.sessions[1].pairs[0].media;
            assert_eq!((second.rtp, second.packets), (1, [1, 0]), "batched {batched}");
        }
    }

    /// Live ageing: an idle session is frozen with exactly the view it had, its transactions are retired and
    /// their slots reused; a session still active keeps everything, old checks included.
    #[test]
    fn age_out_freezes_idle_sessions_and_recycles_their_transactions() {
        let a1: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b1: SocketAddr = "192.0.2.2:6000".parse().unwrap();
        let a2: SocketAddr = "192.0.2.3:5000".parse().unwrap();
        let b2: SocketAddr = "192.0.2.4:6000".parse().unwrap();
        let mut an = Analyzer::new(Keyring::new());
        // Session 1 at 0 s only; session 2 at 0 s and again at 350 s (consent checks).
        let [r1, s1] = check_and_success(1, "bbbb:aaaa", a1, b1);
        let [r2, s2] = check_and_success(2, "dddd:cccc", a2, b2);
        let [r3, s3] = check_and_success(3, "dddd:cccc", a2, b2);
        feed(
            &mut an,
            &[(0, r1), (1, s1), (2, r2), (3, s2), (350_000, r3), (350_001, s3)],
            0,
        );
        let now = Timestamp(1_000_000_000 + 400_000 * 1_000_000);
        let before = sessions::build(an.model());
        assert_eq!(before.len(), 2);

        let aged = an.age_out(now, 300.0);
        // Session 1 idle 400 s > 300 s: frozen; its one transaction retired. Session 2's last check was 50 s
        // ago: kept, and so are both its transactions (the one from 0 s too: the session still reads it).
        assert_eq!(
            aged,
            AgeOut {
                sessions: 1,
                transactions: 1
            }
        );
        let m = an.model();
        assert!(m.ice.sessions[0].frozen.is_some());
        assert!(m.ice.sessions[0].pairs.is_empty());
        assert!(m.ice.sessions[1].frozen.is_none());
        let after = sessions::build(m);
        let json = |v: &Vec<sessions::SessionReport>| serde_json::to_string(v).unwrap();
        assert_eq!(
            json(&after),
            json(&before),
            "the report is the same before and after ageing"
        );
        assert_eq!(m.transactions.iter().count(), 2);

        // A new session's check reuses the freed slot instead of growing the table.
        let slots = m.transactions.list.len();
        let [r4, s4] = check_and_success(4, "ffff:eeee", a1, b1);
        feed(&mut an, &[(400_000, r4), (400_001, s4)], 6);
        let m = an.model();
        assert_eq!(m.transactions.list.len(), slots);
        let views = sessions::build(m);
        assert_eq!(views.len(), 3);
        assert_eq!(views[2].outcome, "connected");
        // Ageing again immediately changes nothing.
        assert_eq!(an.age_out(now, 300.0), AgeOut::default());
    }

    /// RFC 5766 §11 channel numbers above 0x4FFF (coturn's turnutils_uclient uses 0x5000-0x7FFF) are
    /// ChannelData once bound on the flow, and their payload is decoded as relayed traffic; the same first
    /// byte on a flow without that binding stays "other" (RFC 9443 gives it to QUIC).
    #[test]
    fn rfc5766_upper_channel_range_once_bound() {
        let client: SocketAddr = "198.51.100.2:40000".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let peer: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let mut bind = MessageBuilder::request(Method::CHANNEL_BIND, TransactionId([1; 12]));
        bind.channel_number(0x5001)
            .xor_address(stun::ATTR_XOR_PEER_ADDRESS, peer);
        let bind = bind.finish().unwrap();
        let ok = MessageBuilder::new(Method::CHANNEL_BIND, Class::Success, TransactionId([1; 12]))
            .finish()
            .unwrap();
        let inner = MessageBuilder::request(Method::BINDING, TransactionId([2; 12]))
            .finish()
            .unwrap();
        let cd = channel_data(0x5001, &inner, false).unwrap();
        let stray = channel_data(0x5002, &inner, false).unwrap();
        let model = run(&[
            udp(client, server, &bind),
            udp(server, client, &ok),
            udp(client, server, &cd),
            udp(client, server, &stray),
        ]);
        assert_eq!(model.stats.channel_data, 1);
        assert_eq!(model.stats.other, 1);
        let relayed: Vec<&MessageRecord> = model.messages.iter().filter(|m| m.relay.is_some()).collect();
        assert_eq!(relayed.len(), 1);
        assert_eq!(relayed[0].dst, peer);
        assert_eq!(
            relayed[0].stun().map(|m| m.transaction_id),
            Some(TransactionId([2; 12]))
        );
    }

    /// The ChannelData route cache (`State::route`) must notice a channel bound after its first frame was
    /// seen: nothing else changes (same flow, same allocation, no new pair or relayed address), only the
    /// allocation's version. The frame before the binding relays nothing; the one after reaches the
    /// peer the binding named.
    #[test]
    fn channel_data_follows_a_binding_made_after_its_first_frame() {
        let client: SocketAddr = "198.51.100.2:40000".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let first_peer: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let later_peer: SocketAddr = "203.0.113.7:6000".parse().unwrap();
        let bind = |id: u8, channel: u16, peer: SocketAddr| {
            let mut req = MessageBuilder::request(Method::CHANNEL_BIND, TransactionId([id; 12]));
            req.channel_number(channel)
                .xor_address(stun::ATTR_XOR_PEER_ADDRESS, peer);
            let ok = MessageBuilder::new(Method::CHANNEL_BIND, Class::Success, TransactionId([id; 12]))
                .finish()
                .unwrap();
            [
                udp(client, server, &req.finish().unwrap()),
                udp(server, client, &ok),
            ]
        };
        let check = |id: u8| {
            let inner = MessageBuilder::request(Method::BINDING, TransactionId([id; 12]))
                .finish()
                .unwrap();
            udp(client, server, &channel_data(0x4001, &inner, false).unwrap())
        };
        let [bind_first, bound_first] = bind(1, 0x4000, first_peer);
        let [bind_later, bound_later] = bind(2, 0x4001, later_peer);
        let model = run(&[
            bind_first,
            bound_first,
            check(3),
            bind_later,
            bound_later,
            check(4),
        ]);
        assert_eq!(model.stats.channel_data, 2);
        let relayed: Vec<&MessageRecord> = model.messages.iter().filter(|m| m.relay.is_some()).collect();
        assert_eq!(relayed.len(), 1, "only the frame after the binding is relayed");
        assert_eq!(relayed[0].dst, later_peer);
        assert_eq!(
            relayed[0].stun().map(|m| m.transaction_id),
            Some(TransactionId([4; 12]))
        );
    }
}
