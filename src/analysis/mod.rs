//! The analysis: one entry point, [`Analyzer::ingest`], fed with timestamped packets; it owns the
//! [`Model`] that every output renders.
//!
//! Sans-IO (docs/architecture.md): no clock, no files, no sockets. Per datagram it demultiplexes (RFC 7983), decodes
//! STUN/ChannelData, records each message, and feeds TURN-relayed payloads (Send/Data indications,
//! ChannelData; RFC 8656 §11-12) back in as inner datagrams between the relayed address and the peer, so
//! that traffic through a relay is analysed like direct traffic. TCP bytes are framed per stream
//! (`wire::framing`). Memory grows with STUN/TURN messages and TCP streams, each table bounded; media
//! packets are only counted.
pub(crate) mod ahead;
mod listed;
pub(crate) use listed::Listed;
mod classic;
mod datagram;
pub(crate) mod findings;
mod flows;
pub(crate) mod fold;
pub(crate) mod framing;
pub mod ice;
pub(crate) mod nat;
mod pack;
mod paged;
pub(crate) mod recent;
pub(crate) mod records;
pub mod sessions;
pub(crate) mod small_map;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod transactions;
pub(crate) mod turn;

use crate::capture::{Packet, Timestamp};
use crate::net::hash::{FastHash, FxHasher};
use crate::net::{Datagram, Flow, Net, NetEvent, NetStats, Transport};
use crate::wire::credentials::Keyring;
use crate::wire::stun::{self, StunMessage};
use crate::wire::{channel, demux, dialect, DecodeError};
use ahead::{content_hash, Ahead, Look};
use flows::{FlowFacts, FlowTable};
use framing::{FrameKind, FramingCounts, TcpFraming};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use transactions::{Seen, Transactions};

pub use fold::SLEEP_AFTER_SECS;
pub use pack::MakeSpill;

/// Messages kept for the report and the views when their records stay in memory (no
/// [`Analyzer::set_record_spill`]: live capture, or no temporary file). Past this bound messages are still
/// analysed and counted, only not stored (the report says how many were left out). 1M records stay within
/// a few hundred MB at worst and cover any single call's signalling. With the records spilled there is no
/// bound (ChannelData keeps its own, [`MAX_STORED_CHANNEL_DATA`]).
pub const MAX_STORED_MESSAGES: usize = 1_000_000;
/// TCP streams framed at once; matches the TCP reassembler's bound so every tracked stream can be framed.
pub(crate) const MAX_TCP_STREAMS: usize = 4096;
/// TURN inside TURN: a relayed payload that is itself a Send indication or ChannelData is decoded this
/// many levels deep and no deeper (a hostile capture could nest until the datagram runs out).
pub const MAX_RELAY_DEPTH: u8 = 2;
/// The IANA ports for STUN/TURN (3478 UDP/TCP, 5349 TLS/DTLS) and their RFC 5780 alternates: ChannelData
/// and classic RFC 3489 STUN are accepted on them even before a flow has shown any other STUN.
pub(crate) const STUN_PORTS: [u16; 4] = [3478, 3479, 5349, 5350];
/// A capture taken at a TURN server sees a relayed datagram twice: inside the client's Send indication (or
/// ChannelData) and on the relay's peer leg, or the other way round. A copy with the same addresses and
/// bytes on the other side of the relay within this window is the same datagram, not a retransmission;
/// a relay forwards in well under a millisecond, and a real retransmission comes ≥ 50 ms later (RFC 8445
/// §14.3 pacing, RFC 8489 RTO ≥ 500 ms), so 20 ms separates the two.
pub(crate) const DUPLICATE_WINDOW_SECS: f64 = 0.020;
/// ICMP destination-unreachable events kept for findings; more is the same story told again.
pub(crate) const MAX_UNREACHABLE: usize = 1000;
/// Several captures of one call (`iceview read a.pcap b.pcap`) see the same datagram at each capture
/// point, stamped by different clocks. NTP keeps hosts within milliseconds; 2 s also covers unsynchronised
/// lab machines while staying far below the interval at which STUN bytes repeat (a retransmission is
/// matched to its own copy, as each capture point sees every transmission once).
pub(crate) const CROSS_INPUT_WINDOW_SECS: f64 = 2.0;
/// ChannelData frames listed per allocation (per client/server 5-tuple); later frames are analysed and
/// counted (per peer and channel in the TURN report, and in `messages_not_stored`) but not stored. At a
/// TURN server every media packet is ChannelData, so storing them all would make memory grow with media
/// (docs/architecture.md: it must not); 10 000 frames cover a call's first minutes (50 packets/s × 2 directions),
/// which is where channel binding, permission and relaying problems show.
pub const MAX_STORED_CHANNEL_DATA_PER_ALLOCATION: u32 = 10_000;
/// ChannelData frames listed in all, whatever the number of allocations: a bound on the memory the
/// listing takes (~0.3 KB a record, ~15 MB, as much again while the report is built), so a server capture with thousands of allocations stays flat.
pub(crate) const MAX_STORED_CHANNEL_DATA: usize = 50_000;

/// Counts of what the datagrams carried, by kind (RFC 7983 classes), and decode errors by reason.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub stun: u64,
    pub channel_data: u64,
    pub(crate) dtls: u64,
    pub(crate) rtp: u64,
    pub(crate) rtcp: u64,
    pub(crate) zrtp: u64,
    pub(crate) tls: u64,
    pub other: u64,
    /// Bytes of TCP streams that were TLS or opaque (RFC 6062 data connections).
    pub(crate) tcp_opaque_bytes: u64,
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Messages analysed but not stored because [`MAX_STORED_MESSAGES`] was reached.
    pub messages_not_stored: u64,
    /// Relayed payloads not decoded because [`MAX_RELAY_DEPTH`] was reached.
    pub relay_depth_exceeded: u64,
    pub(crate) tcp_streams_evicted: u64,
    /// Relayed datagrams seen twice (both sides of a TURN server), analysed once.
    pub(crate) relay_duplicates: u64,
}

impl Stats {
    fn error(&mut self, e: DecodeError) {
        *self.decode_errors.entry(e.reason).or_insert(0) += 1;
    }
}

/// Where a relayed (inner) message came from: the TURN server and the client it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Relay {
    pub(crate) server: SocketAddr,
    pub(crate) client: SocketAddr,
    /// The carrier: Send/Data indication or ChannelData.
    pub(crate) via: RelayVia,
    /// False when the allocation's relayed address was never seen (capture started after Allocate): the
    /// inner message's relayed-side address then holds the server's IP with port 0.
    pub(crate) relayed_address_known: bool,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RelayVia {
    SendIndication,
    DataIndication,
    ChannelData(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// The message's bytes in the model's [`store::RawStore`], decoded again when an output shows it
    /// ([`Model::stun`]); its method and class are kept for the lists and counts that need only them.
    Stun {
        method: stun::Method,
        class: stun::Class,
        dialect: dialect::Dialect,
        /// Decoded with a problem ([`StunMessage::malformed`]).
        malformed: bool,
        raw: store::RawRef,
    },
    ChannelData {
        channel: u16,
        length: u16,
        /// [MS-TURN] multiplexed TURN (channel 0xFF10): the 8-byte session id the frame names.
        mturn_session: Option<[u8; 8]>,
    },
}

/// Where a message went: its addresses and transport, and the TURN relaying it was found in. A flow
/// carries many messages, so records share these and refer to one by number ([`Model::path`]): a record
/// is then 48 bytes instead of 112 (two `SocketAddr`s are 64 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub(crate) transport: Transport,
    /// Set for messages found inside TURN relaying.
    pub relay: Option<Relay>,
}

/// One message as seen on the wire (or inside a relay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub(crate) ts: Timestamp,
    pub frame: u64,
    pub(crate) input: u16,
    /// The same datagram was already seen on the other side of a TURN relay (capture at the server):
    /// listed, but not analysed twice.
    pub(crate) duplicate: bool,
    /// Its addresses, transport and relay.
    pub(crate) path: Path,
    pub body: Body,
}

impl MessageRecord {
    /// True for a STUN message (false for a ChannelData frame).
    pub fn is_stun(&self) -> bool {
        matches!(self.body, Body::Stun { .. })
    }
}

/// Stored STUN messages decoded again, read in about capture order ([`Model::stun_reader`]).
pub(crate) struct StunReader<'a>(store::RawReader<'a>);

impl StunReader<'_> {
    /// `m` decoded again from its stored bytes (None for ChannelData, or bytes that could not be read back).
    pub(crate) fn stun(&mut self, m: &MessageRecord) -> Option<StunMessage> {
        match m.body {
            Body::Stun { raw, .. } => self.0.decode(raw).ok(),
            Body::ChannelData { .. } => None,
        }
    }
}

/// An ICMP/ICMPv6 destination-unreachable for a packet of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unreachable {
    pub(crate) seen: Seen,
    /// The packet that could not be delivered.
    pub(crate) flow: Flow,
    pub(crate) reporter: std::net::IpAddr,
    pub(crate) icmp_type: u8,
    pub(crate) icmp_code: u8,
}

/// Everything the outputs show.
#[derive(Debug, Default)]
pub struct Model {
    pub stats: Stats,
    /// The listed messages, spilled a chunk at a time with a [`store::Spill`] ([`records`]).
    pub messages: records::Records,
    pub transactions: Transactions,
    pub(crate) turn: turn::TurnState,
    pub ice: ice::IceState,
    /// ICMP destination-unreachable quoting a UDP/TCP packet (at most [`MAX_UNREACHABLE`]).
    pub(crate) unreachable: Vec<Unreachable>,
    pub(crate) first_ts: Option<Timestamp>,
    pub(crate) last_ts: Option<Timestamp>,
    /// The bytes of the stored STUN messages.
    pub raw: store::RawStore,
    /// ICE sessions folded during the read ([`fold`]), rendered; `ice` keeps only their marks.
    pub ice_folded: fold::Folded,
    /// Answered Binding requests no ICE session holds, in the order they were answered, for
    /// [`Model::retire_answered_server_requests`].
    pub(crate) server_answers: fold::ServerAnswers,
    /// The listed messages counted as they are listed, so that no output reads every record back for a
    /// summary.
    pub(crate) listed: Listed,
}

impl Model {
    /// The model without the analysis state a finished read no longer needs once its report is built:
    /// the transaction table and the TURN and ICE tables of what was still open. What the terminal UI
    /// reads stays (the listed messages and their bytes, counters, time bounds, what folding kept). On a
    /// call-dense capture that state is a third of the heap.
    pub fn into_listing(self) -> Model {
        Model {
            transactions: Transactions::default(),
            turn: turn::TurnState::default(),
            ice: ice::IceState::default(),
            ..self
        }
    }

    /// Times an ICE session and a TURN allocation went to sleep, and woke: was read back to be changed,
    /// by a message or (a session) to settle its checks ([`Analyzer::sleep_quiet`]). Folding reads a
    /// sleeping one back without waking it.
    pub fn sleep_counts(&self) -> [(u64, u64); 2] {
        [
            self.ice.sessions.sleep_counts(),
            self.turn.allocations.sleep_counts(),
        ]
    }

    /// The sessions' and the allocations' sleep stores, where they sleep.
    fn sleep_stores(&self) -> [Option<&pack::SleepStore>; 2] {
        [
            self.ice.sessions.sleep_store(),
            self.turn.allocations.sleep_store(),
        ]
    }

    /// Times the sessions' and the allocations' sleep stores were rewritten with only what still sleeps
    /// ([`pack::SleepStore::compact`]).
    pub fn sleep_compactions(&self) -> [u64; 2] {
        self.sleep_stores()
            .map(|s| s.map_or(0, pack::SleepStore::compactions))
    }

    /// Sleeping sessions' and allocations' states that could not be read back from their temporary files.
    pub fn sleep_errors(&self) -> u64 {
        self.sleep_stores()
            .into_iter()
            .flatten()
            .map(pack::SleepStore::errors)
            .sum()
    }

    /// A listed message's addresses, transport and relay.
    pub fn path<'a>(&self, m: &'a MessageRecord) -> &'a Path {
        &m.path
    }

    /// A stored STUN message, decoded again from its bytes (None for ChannelData). The decoder is pure and
    /// uses the analysis's credentials, so this is the message the analysis saw.
    pub fn stun(&self, m: &MessageRecord) -> Option<StunMessage> {
        self.stun_reader().stun(m)
    }

    /// A reader of stored STUN messages for a run of records in capture order, sparing the shared
    /// read-back cache for each ([`store::RawReader`]); [`Model::stun`] reads one.
    pub(crate) fn stun_reader(&self) -> StunReader<'_> {
        StunReader(self.raw.reader())
    }

    /// A stored STUN message's transaction id, read from its header without decoding the rest.
    pub(crate) fn transaction_id(&self, m: &MessageRecord) -> Option<stun::TransactionId> {
        let id: [u8; 12] = self.raw_bytes(m).get(8..20)?.try_into().ok()?;
        Some(stun::TransactionId(id))
    }

    /// A stored STUN message's bytes (empty for ChannelData).
    pub(crate) fn raw_bytes(&self, m: &MessageRecord) -> store::RawBytes<'_> {
        match m.body {
            Body::Stun { raw, .. } => self.raw.get(raw),
            Body::ChannelData { .. } => store::RawBytes::Held(&[]),
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
    /// When the facts about flows touching an address last changed (`relayed_addrs`, and what the TURN and
    /// ICE tables note), so cached flow facts and routes hold until their own addresses change.
    stamps: flows::Stamps,
    /// Number of captures being merged (duplicates across capture points are matched when > 1).
    inputs: u16,
    /// Every TCP stream's framer (when this thread frames: [`Analyzer::ingest`]).
    framing: TcpFraming,
    /// ChannelData frames stored per carrier 5-tuple (client/server order-free), at most one entry per
    /// allocation the TURN analysis can hold.
    channel_data_stored: HashMap<(SocketAddr, SocketAddr, Transport), u32, FastHash>,
    channel_data_stored_total: usize,
    /// Messages listed at most, when [`Analyzer::set_store_limit`] set it.
    store_limit: Option<usize>,
    /// The records spill ([`Analyzer::set_record_spill`]): then nothing of a listed message stays in
    /// memory, and without a limit set every message is listed.
    records_spilled: bool,
    /// Classic RFC 3489 look-alike requests off the STUN ports, waiting for a response to pair with.
    classic: classic::ClassicPairs,
    /// No pass to make room in a full transaction table before this (`State::make_room_for_requests`).
    room_after: Option<Timestamp>,
    model: Model,
    tap: Option<MessageTap>,
}

impl State {
    /// Frees what only the packet path reads (flow facts, ChannelData routes, the duplicate detector's
    /// memory, the TCP frame buffers) and the ICE indexes' room, once a file read has ended and folded
    /// everything (the report is written from the model and the folded forms). These caches grow to the
    /// most flows ever open at once; the report's writing then has that memory back.
    fn drop_packet_caches(&mut self) {
        self.flows = FlowTable::default();
        self.other_flows = HashMap::default();
        self.routes = HashMap::default();
        self.recent = recent::Recent::default();
        self.framing = TcpFraming::default();
        self.channel_data_stored = HashMap::default();
        self.model.ice.shrink_indexes();
    }
}

/// Where ChannelData on a client↔server flow and channel goes ([`State::route`]): the flow's allocation
/// and the inner datagram (its flow, relay context and facts), valid while the facts' generation and the
/// allocation's version ([`turn::TurnState::version`]) are unchanged.
#[derive(Clone, Copy, Debug)]
struct Route {
    /// [`flows::Stamps::now`] when it was resolved.
    generation: u64,
    version: u32,
    allocation: Option<turn::AllocationLeg>,
    inner: Option<(Flow, Relay, FlowFacts)>,
}

/// Sees every message as it is recorded, stored or not (past [`MAX_STORED_MESSAGES`] too): the live event
/// stream is fed from here.
/// A STUN record comes with its decoded message.
pub(crate) type MessageTap = Box<dyn FnMut(&MessageRecord, &Path, Option<&StunMessage>) + Send>;

impl Analyzer {
    pub fn new(keys: Keyring) -> Self {
        let mut model = Model {
            raw: store::RawStore::new(keys.clone()),
            ..Model::default()
        };
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
                stamps: flows::Stamps::default(),
                inputs: 1,
                framing: TcpFraming::default(),
                channel_data_stored: HashMap::default(),
                channel_data_stored_total: 0,
                classic: classic::ClassicPairs::default(),
                store_limit: None,
                records_spilled: false,
                room_after: None,
                model,
                tap: None,
            },
        }
    }

    /// Lists at most `limit` messages (never more than [`MAX_STORED_MESSAGES`]); later ones are analysed and
    /// counted in `messages_not_stored`. Live capture uses it so that memory stops growing after the first
    /// `limit` messages of a run that may last hours (the rest still reach the message tap).
    pub fn set_store_limit(&mut self, limit: usize) {
        self.state.store_limit = Some(limit.min(MAX_STORED_MESSAGES));
    }

    /// Tells the analysis how many captures are merged, so the same datagram seen at several capture
    /// points is analysed once.
    pub fn set_inputs(&mut self, inputs: u16) {
        self.state.inputs = inputs.max(1);
    }

    pub fn ingest(&mut self, pkt: &Packet<'_>) {
        self.observe_span(Some(pkt.ts), Some(pkt.ts));
        let state = &mut self.state;
        self.net
            .ingest(pkt, &mut |ev| state.on_net_event(ev, &mut Ahead::default()));
    }

    /// End of input: flush TCP data held behind gaps; frames still incomplete are counted as lost. With
    /// folding on, what is still open is folded ([`Analyzer::fold_open`]).
    pub fn finish(&mut self) {
        self.finish_input();
        self.fold_open();
    }

    /// [`Analyzer::finish`] but what is still open stays open, for a last look at it (a live run's last
    /// comparison of views for events); [`Analyzer::fold_open`] then folds it.
    pub fn finish_input(&mut self) {
        let state = &mut self.state;
        self.net
            .finish(&mut |ev| state.on_net_event(ev, &mut Ahead::default()));
        self.finish_framing();
    }

    /// With folding on, folds every session and allocation still open, as the end of the capture shows
    /// it, one at a time rather than built all at once by the report, and frees the packet path's caches
    /// (nothing comes after). Without, does nothing.
    pub fn fold_open(&mut self) {
        if self.state.model.ice_folded.enabled() {
            self.state.model.fold_rest();
            self.state.drop_packet_caches();
        }
    }

    /// The credentials messages are decoded with (the pipeline decodes ahead with the same).
    pub(crate) fn keys(&self) -> &Keyring {
        &self.state.keys
    }

    /// The capture's time span grows to cover packets from `first` to `last` (one packet in
    /// [`Analyzer::ingest`]), and what is quiet is folded when a search is due ([`Analyzer::fold_search`],
    /// every [`fold::FOLD_EVERY_SECS`] of capture time).
    pub(crate) fn observe_span(&mut self, first: Option<Timestamp>, last: Option<Timestamp>) {
        self.extend_span(first, last);
        if let Some(now) = last {
            if self.state.model.ice_folded.due(now) {
                self.fold_search(now);
            }
        }
    }

    /// The capture's time span grows to cover packets from `first` to `last` (a batch in the pipeline,
    /// whose searches for what is quiet come as markers between its events: `pipeline::batch`).
    pub(crate) fn extend_span(&mut self, first: Option<Timestamp>, last: Option<Timestamp>) {
        let model = &mut self.state.model;
        if model.first_ts.is_none() {
            model.first_ts = first;
        }
        if last.is_some() {
            model.last_ts = last;
        }
    }

    /// With folding on, folds the sessions and allocations quiet at `now` (capture time), settles the
    /// checks and retires the requests as quiet, drops the routes that may lead to what went, and gives the
    /// whole pages this freed back to the system ([`crate::heap::release_freed`]). Runs
    /// before the packet at `now` is analysed, every [`fold::FOLD_EVERY_SECS`] of capture time: packet by
    /// packet ([`Analyzer::ingest`]) and in batches (the pipeline's markers) at the same packets.
    pub(crate) fn fold_search(&mut self, now: Timestamp) {
        let model = &mut self.state.model;
        if !model.ice_folded.enabled() {
            return;
        }
        model.fold_quiet_sessions(now);
        model.settle_checks(now);
        model.retire_settled_requests(now);
        let relayed = model.fold_finished_allocations(now);
        model.ice.sleep(now, &model.transactions);
        model.turn.allocations.sleep(now);
        let state = &mut self.state;
        for addr in relayed {
            if state.relayed_addrs.remove(&addr) {
                state.stamps.touch(addr);
            }
        }
        state.prune_routes();
        crate::heap::release_freed();
    }

    /// From now on, ICE sessions quiet for [`fold::FOLD_AFTER_SECS`] and TURN allocations over and as
    /// quiet are rendered by `render` and `render_allocation` as they end (their findings by
    /// `render_finding`) and dropped from memory ([`fold`]), their rendered bytes written to `spill`. The
    /// JSON writer and the text summary read those bytes back as they write; the TUI parses the JSON
    /// entries back into a whole report (`Report::unfold`).
    pub fn fold_sessions(
        &mut self,
        render: fold::Render,
        render_allocation: fold::RenderAllocation,
        render_finding: fold::RenderFinding,
        spill: Option<std::sync::Arc<dyn store::Spill>>,
    ) {
        self.state
            .model
            .ice_folded
            .enable(render, render_allocation, render_finding, spill);
    }

    /// With folding on ([`Analyzer::fold_sessions`]), ICE sessions and TURN allocations quiet for more
    /// than `after_secs` of capture time sleep until they fold or wake: their states go to storage `make`
    /// gives, one for the sessions and one for the allocations (to memory without it; when it gives none,
    /// nothing sleeps), and are read back when something reads or changes them. Each store is rewritten into new
    /// storage from `make` once it holds mostly states no longer asleep ([`pack::SleepStore`]).
    /// `iceview read` and `iceview live` pass [`SLEEP_AFTER_SECS`]; tests pass 0, so that everything
    /// sleeps at every search for quiet ones, and wakes at its next message.
    pub fn sleep_quiet(&mut self, make: Option<MakeSpill>, after_secs: f64) {
        let model = &mut self.state.model;
        model.ice.sessions.enable_sleep(make, after_secs);
        model.turn.allocations.enable_sleep(make, after_secs);
    }

    /// Tests: the sleep stores are rewritten once `bytes` of their states are no longer asleep (0: at
    /// every chance).
    #[cfg(test)]
    pub(crate) fn compact_sleep_after(&mut self, bytes: u64) {
        let model = &mut self.state.model;
        let stores = [
            model.ice.sessions.sleep_store_mut(),
            model.turn.allocations.sleep_store_mut(),
        ];
        for store in stores.into_iter().flatten() {
            store.compact_after(bytes);
        }
    }

    /// With folding on ([`Analyzer::fold_sessions`]), sessions fold once quiet for `secs` of capture time
    /// (never less than [`fold::FOLD_AFTER_SECS`], when every check's state is final), and allocations
    /// once over and as quiet: `iceview live --idle-timeout`.
    pub fn set_fold_after(&mut self, secs: f64) {
        self.state.model.ice_folded.set_after(secs);
    }

    /// Lets go of what folded so far and its rendered forms ([`fold::Folded::release`]): for a live run
    /// whose outputs do not read them (no report, no UI), once the event tracker has taken them in.
    pub fn release_folded(&mut self) {
        self.state.model.ice_folded.release();
    }

    /// One event of the network layer, with what the reading thread worked out for it.
    pub(crate) fn on_event(&mut self, ev: NetEvent<'_>, ahead: &mut Ahead<'_>) {
        self.state.on_net_event(ev, ahead);
    }

    /// A frame the pipeline's reading thread cut from a TCP stream ([`TcpFraming`], there), with what it
    /// worked out ahead.
    pub(crate) fn on_tcp_frame(&mut self, frame: &Datagram<'_>, kind: FrameKind, ahead: &mut Ahead<'_>) {
        self.state.on_tcp_frame(frame, kind, ahead);
    }

    /// What the pipeline's framing on the reading thread adds to the statistics.
    pub(crate) fn count_framing(&mut self, counts: FramingCounts) {
        self.state.count_framing(counts);
    }

    /// End of input when the network layer ran elsewhere (the pipeline's reading thread): it comes back
    /// for [`Analyzer::net_stats`], and framing is wrapped up as in [`Analyzer::finish`].
    pub(crate) fn finish_with(&mut self, net: Net) {
        self.net = net;
        self.finish_framing();
        self.fold_open();
    }

    fn finish_framing(&mut self) {
        let counts = self.state.framing.finish();
        self.state.count_framing(counts);
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

    /// Writes the listed messages' bytes to `spill` as they accumulate instead of holding them
    /// ([`store::RawStore`]): memory then stays flat however many messages are listed.
    pub fn set_spill(&mut self, spill: std::sync::Arc<dyn store::Spill>) {
        self.state.model.raw.set_spill(spill);
    }

    /// Writes the listed messages' records to `spill` a chunk at a time ([`records::Records`]). With both
    /// this and [`Analyzer::set_spill`], a listed message keeps nothing in memory, so every message is
    /// listed (no [`MAX_STORED_MESSAGES`] bound) unless [`Analyzer::set_store_limit`] set one.
    pub fn set_record_spill(&mut self, spill: std::sync::Arc<dyn store::Spill>) {
        self.state.model.messages.set_spill(spill);
        self.state.records_spilled = true;
    }

    pub fn set_message_tap(&mut self, tap: MessageTap) {
        self.state.tap = Some(tap);
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
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
                use crate::pipeline::{self, EventBatch, NetStage};
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
                pipeline::apply(&mut an, &mut batch);
                pipeline::finish(&mut an, net);
            } else {
                feed(&mut an, &packets, 0);
                an.finish();
            }
            let m = an.model();
            assert_eq!(m.stats.rtp, 7, "batched {batched}");
            let first = m.ice.sessions[0].pairs[0].media();
            assert_eq!((first.rtp, first.packets), (4, [2, 2]), "batched {batched}");
            let second = m.ice.sessions[1].pairs[0].media();
            assert_eq!((second.rtp, second.packets), (1, [1, 0]), "batched {batched}");
        }
    }

    /// A capture that goes on past 20,000 calls ([`ice::MAX_SESSIONS`], the bound on open sessions)
    /// keeps tracking new ones when it folds, as `iceview read` and `iceview live` do: a session quiet for
    /// 45 s folds and no longer counts. Without folding (`iceview live --idle-timeout 0`) the calls past
    /// the bound are counted as not tracked.
    #[test]
    fn folding_keeps_tracking_calls_past_the_open_sessions_bound() {
        let calls = ice::MAX_SESSIONS + 300;
        let run = |fold: bool| {
            let mut an = Analyzer::new(Keyring::new());
            if fold {
                crate::report::fold_as_reported(&mut an, None);
            }
            for i in 0..calls {
                let n = u32::try_from(i).unwrap();
                let [x, y] = [(n >> 8) as u8, n as u8];
                let a = SocketAddr::from(([10, 1, x, y], 5000));
                let b = SocketAddr::from(([10, 2, x, y], 6000));
                let mut id = [7u8; 12];
                id[..4].copy_from_slice(&n.to_be_bytes());
                let mut req = MessageBuilder::request(Method::BINDING, TransactionId(id));
                req.text(stun::ATTR_USERNAME, &format!("r{n}:l{n}"))
                    .u64(stun::ATTR_ICE_CONTROLLING, 7)
                    .flag(stun::ATTR_USE_CANDIDATE);
                let mut ok = MessageBuilder::new(Method::BINDING, Class::Success, TransactionId(id));
                ok.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, a);
                // A call every 100 ms: 45 s of calls (450) open at a time.
                let ms = u64::from(n) * 100;
                let packets = [
                    (ms, udp(a, b, &req.finish().unwrap())),
                    (ms + 1, udp(b, a, &ok.finish().unwrap())),
                ];
                feed(&mut an, &packets, u64::from(n) * 2);
            }
            an.finish();
            an.into_model()
        };
        let m = run(true);
        assert_eq!(m.ice.sessions_not_tracked, 0);
        assert_eq!(m.ice.sessions_started(), calls);
        assert_eq!(m.ice_folded.session_count(), calls);
        let m = run(false);
        assert_eq!(m.ice.sessions_not_tracked, 300);
        assert_eq!(m.ice.sessions_started(), ice::MAX_SESSIONS);
    }

    /// Sessions asleep (quiet for 10 s, their state in the sleep store) do not count against the bound on
    /// sessions held awake ([`ice::MAX_SESSIONS`]), only against the larger one on sessions open
    /// ([`ice::MAX_OPEN_SESSIONS`], 20,100 here): 20,300 calls a millisecond apart, each one check, none
    /// quiet for the 45 s it takes to fold, are all tracked while those quiet sleep, and past the open
    /// bound new ones are counted as not tracked. (Sleeping sessions counted against the first bound, and
    /// `iceview live` fed a busy server's capture five times as fast left a third of its sessions untracked.)
    #[test]
    fn sleeping_sessions_leave_room_for_new_ones() {
        let calls = ice::MAX_SESSIONS + 300;
        // Call `n`'s check and its answer, `again` a second one 21 s later (the first 20,300 start
        // within 20.3 s, a millisecond apart; none is quiet long enough to fold).
        let call = |an: &mut Analyzer, n: u32, again: bool| {
            let [x, y] = [(n >> 8) as u8, n as u8];
            let a = SocketAddr::from(([10, 1, x, y], 5000));
            let b = SocketAddr::from(([10, 2, x, y], 6000));
            let mut id = [9u8; 12];
            id[..4].copy_from_slice(&n.to_be_bytes());
            id[4] = u8::from(again);
            let mut req = MessageBuilder::request(Method::BINDING, TransactionId(id));
            req.text(stun::ATTR_USERNAME, &format!("r{n}:l{n}"))
                .u64(stun::ATTR_ICE_CONTROLLING, 7);
            let mut ok = MessageBuilder::new(Method::BINDING, Class::Success, TransactionId(id));
            ok.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, a);
            let ms = u64::from(n) + if again { 21_000 } else { 0 };
            let packets = [
                (ms, udp(a, b, &req.finish().unwrap())),
                (ms, udp(b, a, &ok.finish().unwrap())),
            ];
            let frame = u64::from(n) * 2 + if again { 100_000 } else { 0 };
            feed(an, &packets, frame);
        };
        let run = |open_limit: Option<usize>| {
            let mut an = Analyzer::new(Keyring::new());
            crate::report::fold_as_reported(&mut an, None);
            an.sleep_quiet(None, crate::analysis::SLEEP_AFTER_SECS);
            an.state.model.ice.open_limit = open_limit;
            for n in 0..u32::try_from(calls).unwrap() {
                call(&mut an, n, false);
            }
            // The first 1,000, asleep since, wake.
            for n in 0..1_000 {
                call(&mut an, n, true);
            }
            let sessions = &an.model().ice.sessions;
            let (slept, woke) = sessions.sleep_counts();
            assert_eq!(sessions.asleep(), sessions.asleep_slots());
            assert!(woke >= 1_000, "{woke} sessions woke");
            an.finish();
            let sessions = &an.model().ice.sessions;
            assert_eq!((sessions.asleep(), sessions.asleep_slots()), (0, 0));
            (an.into_model(), slept)
        };
        let (m, slept) = run(None);
        assert!(slept > 5_000, "{slept} sessions slept");
        assert_eq!(m.ice.sessions_not_tracked, 0);
        assert_eq!(m.ice.sessions_started(), calls);
        let (m, _) = run(Some(ice::MAX_SESSIONS + 100));
        assert_eq!(m.ice.sessions_not_tracked, 200);
        assert_eq!(m.ice.sessions_started(), ice::MAX_SESSIONS + 100);
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
        let relayed: Vec<MessageRecord> = model
            .messages
            .iter()
            .filter(|m| model.path(m).relay.is_some())
            .collect();
        assert_eq!(relayed.len(), 1);
        assert_eq!(model.path(&relayed[0]).dst, peer);
        assert_eq!(
            model.stun(&relayed[0]).map(|m| m.transaction_id),
            Some(TransactionId([2; 12]))
        );
    }

    /// With a spill, a capture holding more message bytes than a chunk keeps at most one chunk in memory,
    /// and every message comes back as it was sent: 20,000 Binding requests (about 3 MB of STUN), each
    /// with its own transaction id and SOFTWARE text, read back in order and out of order.
    #[test]
    fn spilled_messages_decode_as_they_were_sent() {
        let client: SocketAddr = "198.51.100.2:40000".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        const N: u32 = 20_000;
        let id = |i: u32| {
            let mut t = [0u8; 12];
            t[..4].copy_from_slice(&i.to_be_bytes());
            t[4..8].copy_from_slice(b"spil");
            TransactionId(t)
        };
        let software = |i: u32| format!("spill test message {i:05} {}", "x".repeat(100));
        let packets: Vec<(u64, Vec<u8>)> = (0..N)
            .map(|i| {
                let mut b = MessageBuilder::request(Method::BINDING, id(i));
                b.text(stun::ATTR_SOFTWARE, &software(i));
                (u64::from(i), udp(client, server, &b.finish().unwrap()))
            })
            .collect();
        let spill = std::sync::Arc::new(store::MemorySpill::default());
        let record_spill = std::sync::Arc::new(store::MemorySpill::default());
        let mut a = Analyzer::new(Keyring::new());
        a.set_spill(spill.clone());
        a.set_record_spill(record_spill.clone());
        feed(&mut a, &packets, 0);
        a.finish();
        let m = a.model();
        assert_eq!(m.messages.len(), N as usize);
        // Every full chunk of records is spilled (and read back below): only the one being filled is held.
        let held = records::RECORDS_PER_CHUNK;
        assert!(m.messages.held() <= held, "{} records held", m.messages.held());
        assert!(!record_spill.bytes.lock().unwrap().is_empty());
        assert!(m.raw.held_bytes() <= 1 << 20, "{} bytes held", m.raw.held_bytes());
        assert!(spill.bytes.lock().unwrap().len() > 2_000_000);
        let order = (0..N).chain((0..N).rev().step_by(7));
        for i in order {
            let msg = m
                .stun(&m.messages.get(i as usize).expect("listed"))
                .expect("decodes again");
            assert_eq!(msg.transaction_id, id(i));
            assert_eq!(
                msg.attr_value(stun::ATTR_SOFTWARE),
                Some(&crate::wire::attributes::AttrValue::Text(software(i)))
            );
        }
        assert_eq!(m.raw.errors(), 0);
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
        let relayed: Vec<MessageRecord> = model
            .messages
            .iter()
            .filter(|m| model.path(m).relay.is_some())
            .collect();
        assert_eq!(relayed.len(), 1, "only the frame after the binding is relayed");
        assert_eq!(model.path(&relayed[0]).dst, later_peer);
        assert_eq!(
            model.stun(&relayed[0]).map(|m| m.transaction_id),
            Some(TransactionId([4; 12]))
        );
    }
}
