//! Fuzzing entry points: one function per target, called by the cargo-fuzz targets in `fuzz/` (libFuzzer,
//! nightly) and by the fixed-seed stable tests in `tests/fuzz_stable.rs`, so each target's body and its
//! invariants live in one place. Every entry takes arbitrary bytes, must not panic on any of them, and
//! asserts what holds for every input (decode → encode → decode agrees, spans stay inside the input, tables
//! stay within their bounds, the report is valid JSON): a failed assertion is a bug, found like a crash.
//!
//! Also here: the seeded mutator the stable tests share ([`Rng`], [`mutate`], [`splice`]) and writers for
//! the targets' input formats ([`tcp_record`], [`ip_record`], [`pcap_file`]), so seed corpora and tests
//! build inputs the way the entries read them.
//!
//! Not part of iceview's API: hidden from the docs, no stability promise. Not used by the binary.
// The inputs built here take random numbers and lengths down to field widths: the truncation is the point
// (and the targets bound what they read).
#![allow(clippy::cast_possible_truncation)]
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use crate::analysis::{self, Analyzer};
use crate::capture::savefile::Savefile;
use crate::capture::{LinkType, Packet, Timestamp};
use crate::net::tcp::{self, Segment, Tcp};
use crate::net::{defrag, Flow, Net, NetEvent, NetStats, Transport};
use crate::pipeline::{self, EventBatch, NetStage};
use crate::report::{json, text, Report};
use crate::wire::attributes::{self, AttrValue};
use crate::wire::credentials::Keyring;
use crate::wire::dialect::Dialect;
use crate::wire::encode::{self, MessageBuilder};
use crate::wire::framing::{Frame, Framer, MAX_BUFFERED};
use crate::wire::{channel, demux, media, stun};

/// A short-term ICE credential, so that MESSAGE-INTEGRITY is actually computed, not only found absent.
fn keys() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| Keyring::parse("ice:evtj:pass\n").unwrap_or_else(|_| Keyring::new()))
}

/// One datagram (or TCP frame) into the STUN decoder, with a key loaded.
///
/// Invariants: whatever passes the cheap header tests decodes; a decoded message's span and every
/// attribute lie inside the input; stun_codec never changes an attribute's value (the in-house decoder is
/// the reference); re-encoding the decoded attributes with [`MessageBuilder`] and decoding again gives the
/// same attributes, and the same bytes and the same whole message when the input was well formed.
pub fn stun_decode(data: &[u8]) {
    let keys = keys();
    let cheap = stun::looks_like_stun(data) || stun::looks_like_classic_stun(data);
    if let Some(n) = stun::framed_len(data) {
        assert!((stun::HEADER_LEN..=stun::MAX_MESSAGE_LEN).contains(&n));
    }
    let m = match stun::decode(data, keys) {
        Ok(m) => m,
        Err(e) => {
            assert!(!cheap, "passed the header test but did not decode: {e}");
            assert!(!e.reason.is_empty());
            return;
        }
    };
    assert!(m.length >= stun::HEADER_LEN && m.length <= data.len());
    assert!(m.attributes.len() <= stun::MAX_ATTRIBUTES);
    let b = &data[..m.length];
    let mut header = [0u8; stun::HEADER_LEN];
    header.copy_from_slice(&b[..stun::HEADER_LEN]);
    for a in &m.attributes {
        let value = b.get(a.value_range());
        assert!(value.is_some(), "attribute {:#06x} outside the message", a.typ);
        let value = value.unwrap_or_default();
        assert_eq!(
            a.value,
            attributes::decode_value_reference_in(m.dialect, a.typ, value, &header),
            "stun_codec and the reference decoder disagree on {:#06x} {value:02x?}",
            a.typ
        );
        // stun_codec, where it decodes the type at all and accepts the value, reads it as we do (it is
        // an independent decoder; a standard-dialect message only, as MS-TURN lays some types out its way).
        if m.dialect == crate::wire::dialect::Dialect::Standard {
            if let Some(v) = attributes::codec_cross_check(a.typ, value, &header) {
                assert_eq!(
                    v,
                    attributes::decode_value_reference(a.typ, value, &header),
                    "stun_codec and the reference decoder disagree on {:#06x} {value:02x?}",
                    a.typ
                );
            }
        }
        let _ = a.value.to_string();
    }
    let _ = m.transaction_id_hex();
    // The encoder writes RFC 8489 layouts: MS-TURN's plain types and unpadded attributes, and a lenient
    // reading of an unpadded or odd-length message, do not survive it unchanged.
    let lenient = m.malformed.is_some_and(|e| {
        matches!(
            e.reason,
            "stun-attribute-unpadded" | "stun-length-not-multiple-of-4"
        )
    });
    if m.dialect == Dialect::MsTurn || lenient {
        return;
    }

    let again = reencode(b, &m);
    let m2 = stun::decode(&again, keys);
    assert!(m2.is_ok(), "the re-encoded message does not decode");
    let Ok(m2) = m2 else { return };
    assert_eq!(
        (m2.method, m2.class, m2.transaction_id, m2.rfc5389, m2.cookie),
        (m.method, m.class, m.transaction_id, m.rfc5389, m.cookie)
    );
    assert_eq!(m2.attributes, m.attributes, "attributes survive a re-encode");
    assert_eq!(m2.malformed, None, "the encoder writes well-formed messages");
    let zero_padding = m.attributes.iter().all(|a| {
        let pad = a.value_range().end..(a.value_range().end.div_ceil(4) * 4);
        b.get(pad).is_some_and(|p| p.iter().all(|&x| x == 0))
    });
    if m.malformed.is_none() && zero_padding {
        assert_eq!(again, b, "decoder and encoder agree on the layout");
    }
    if again == b {
        assert_eq!(m2, m, "same bytes, same message");
    }
    typed_round_trip(&m);
}

/// The message's attributes written back, raw, in order, with zero padding (classic messages get their
/// cookie field back).
fn reencode(b: &[u8], m: &stun::StunMessage) -> Vec<u8> {
    let mut builder = MessageBuilder::new(m.method, m.class, m.transaction_id);
    for a in &m.attributes {
        builder.raw(a.typ, b.get(a.value_range()).unwrap_or_default());
    }
    let out = builder.finish();
    assert!(out.is_ok(), "no longer than the original: {out:?}");
    let mut out = out.unwrap_or_default();
    if let Some(cookie) = out.get_mut(4..8) {
        cookie.copy_from_slice(&m.cookie.to_be_bytes());
    }
    out
}

/// Addresses and integers written with the encoder's typed methods decode to the same value.
fn typed_round_trip(m: &stun::StunMessage) {
    if !m.rfc5389 || m.dialect != Dialect::Standard {
        return;
    }
    for a in &m.attributes {
        let mut builder = MessageBuilder::new(m.method, m.class, m.transaction_id);
        match (a.typ, &a.value) {
            (
                stun::ATTR_XOR_MAPPED_ADDRESS | stun::ATTR_XOR_PEER_ADDRESS | stun::ATTR_XOR_RELAYED_ADDRESS,
                AttrValue::Address(addr),
            ) => {
                builder.xor_address(a.typ, *addr);
            }
            (stun::ATTR_MAPPED_ADDRESS, AttrValue::Address(addr)) => {
                builder.address(a.typ, *addr);
            }
            (stun::ATTR_LIFETIME | stun::ATTR_PRIORITY, AttrValue::U32(v)) => {
                builder.u32(a.typ, *v);
            }
            (stun::ATTR_ICE_CONTROLLING | stun::ATTR_ICE_CONTROLLED, AttrValue::U64(v)) => {
                builder.u64(a.typ, *v);
            }
            (stun::ATTR_CHANNEL_NUMBER, AttrValue::ChannelNumber(c)) => {
                builder.channel_number(*c);
            }
            _ => continue,
        }
        let bytes = builder.finish().unwrap_or_default();
        let back = stun::decode(&bytes, &Keyring::new()).map(|m| m.attributes.into_iter().next());
        assert_eq!(
            back.ok().flatten().map(|b| b.value),
            Some(a.value.clone()),
            "{:#06x} through the typed encoder",
            a.typ
        );
    }
}

/// One datagram / TCP frame as ChannelData (RFC 8656 §12.4/§12.5), and through the cheap classifiers.
///
/// Invariants: the data is inside the input and at most 3 bytes of padding follow it over UDP; a TCP frame
/// is a multiple of 4 long; a parsed frame written back with `encode::channel_data` parses the same.
pub fn channel_data(data: &[u8]) {
    let _ = demux::classify(data);
    let _ = media::rtp(data);
    let _ = media::dtls(data);
    let _ = media::looks_like_tls(data);
    if let Ok(m) = channel::parse_mturn(data) {
        // [MS-TURN] multiplexed TURN: the session id and the data lie inside the frame.
        assert_eq!(
            usize::from(m.length),
            channel::MTURN_SESSION_ID_LEN + m.data.len()
        );
        assert!(channel::HEADER_LEN + usize::from(m.length) <= data.len());
    }
    let udp = channel::parse_udp(data);
    if let Ok(cd) = udp {
        let used = channel::HEADER_LEN + cd.data.len();
        assert!(
            used <= data.len() && data.len() - used <= 3,
            "data within the datagram"
        );
        assert!((channel::MIN_CHANNEL..=channel::MAX_CHANNEL_RFC5766).contains(&cd.channel));
        let again = encode::channel_data(cd.channel, cd.data, false).unwrap_or_default();
        assert_eq!(again, data[..used], "the encoder writes what was parsed");
        assert_eq!(channel::parse_udp(&again), Ok(cd));
    }
    match channel::framed_len_tcp(data) {
        None => assert!(udp.is_err(), "a UDP frame has a TCP length too"),
        Some(n) => {
            assert!(n % 4 == 0 && (channel::HEADER_LEN..=MAX_BUFFERED).contains(&n));
            if let Some(frame) = data.get(..n) {
                let cd = channel::parse_tcp(frame);
                assert!(cd.is_ok(), "a whole framed TCP ChannelData parses: {cd:?}");
                if let Ok(cd) = cd {
                    assert!(channel::HEADER_LEN + cd.data.len() <= n);
                    let again = encode::channel_data(cd.channel, cd.data, true).unwrap_or_default();
                    assert_eq!(again.len(), n, "padded to the same length");
                    assert_eq!(channel::parse_tcp(&again), Ok(cd));
                }
            } else {
                let _ = channel::parse_tcp(data);
            }
        }
    }
}

/// TCP byte streams, two ways from the same bytes.
///
/// First the whole input as one stream cut into segments (a length byte, then a gap flag byte, then that
/// many bytes, repeated) through [`Framer`]. Then the input as TCP segments ([`tcp_record`]) of up to 8
/// directions, reordered, retransmitted, cut by the snap length, opened, closed and reset at will, through
/// `net::tcp` reassembly with one framer per direction.
///
/// Invariants: the framer holds at most [`MAX_BUFFERED`] bytes and never reports more bytes than it was
/// given; a STUN frame decodes and a ChannelData frame parses; reassembly never delivers more bytes than
/// the segments carried, stays within [`tcp::MAX_DIRECTIONS`] and [`tcp::MAX_HELD_BYTES_TOTAL`], and holds
/// nothing after `finish`.
pub fn tcp_framing(data: &[u8]) {
    let mut framer = Checked::default();
    let mut rest = data;
    while let [len, flags, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        framer.push(chunk, flags & 1 == 1);
        rest = next;
    }
    tcp_reassembly(data);
}

/// A framer with its invariants checked after every push.
#[derive(Default)]
struct Checked {
    framer: Framer,
    given: usize,
    framed: usize,
}

impl Checked {
    fn push(&mut self, data: &[u8], gap: bool) {
        self.given += data.len();
        let framed = &mut self.framed;
        self.framer.push(data, gap, &mut |f| {
            *framed += match f {
                Frame::Stun(b) => {
                    let m = stun::decode(b, &Keyring::new());
                    assert!(m.is_ok(), "a framed STUN message decodes: {m:?}");
                    b.len()
                }
                Frame::ChannelData(b) => {
                    assert!(channel::parse_tcp(b).is_ok(), "a framed ChannelData parses");
                    b.len()
                }
                Frame::Rfc4571(b) => b.len(),
                Frame::Skipped { len } | Frame::Opaque { len, .. } => len,
            };
        });
        assert!(
            self.framer.pending() <= MAX_BUFFERED,
            "the framer holds at most one frame"
        );
        assert!(
            self.framed + self.framer.pending() <= self.given,
            "no bytes invented: {} framed + {} pending > {} given",
            self.framed,
            self.framer.pending(),
            self.given
        );
    }
}

/// One segment in `tcp_framing`'s second reading: `ctl` bits 0-2 pick the direction (bit 0: which way,
/// bits 1-2: which of 4 connections), bit 3 SYN, bit 4 FIN, bit 5 RST, bits 6-7 how `seq` is chosen
/// (0: the next in-order byte; 1: `arg` × 8 bytes ahead, a hole; 2: `arg` bytes behind, a retransmission;
/// 3: `arg` × 100 ms later in capture time, then in order). `arg` also cuts the segment: bit 0 set means
/// the snap length dropped `arg` bytes after the payload.
pub fn tcp_record(ctl: u8, arg: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().min(u16::MAX as usize);
    let mut out = vec![ctl, arg];
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
    out
}

fn tcp_reassembly(data: &[u8]) {
    let flows: Vec<Flow> = (0..4u16)
        .flat_map(|c| {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50_000 + c);
            let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 3478);
            let f = Flow {
                src: a,
                dst: b,
                transport: Transport::Tcp,
            };
            [f, f.reversed()]
        })
        .collect();
    let mut next_seq: Vec<u32> = (0..8u32).map(|i| i.wrapping_mul(0x2000_0000)).collect();
    let mut given: HashMap<Flow, usize> = HashMap::new();
    let mut delivered: HashMap<Flow, usize> = HashMap::new();
    let mut framers: HashMap<Flow, Checked> = HashMap::new();
    let mut reassembly = Tcp::new();
    let mut stats = NetStats::default();
    let mut now = 0u64;
    let mut rest = data;
    let mut frame = 0;
    let mut sink = |ev: NetEvent<'_>| match ev {
        NetEvent::TcpData { datagram, gap } => {
            *delivered.entry(datagram.flow).or_default() += datagram.payload.len();
            framers
                .entry(datagram.flow)
                .or_default()
                .push(datagram.payload, gap);
        }
        NetEvent::TcpOpen { flow, .. } => {
            framers.insert(flow, Checked::default());
        }
        _ => {}
    };
    while let [ctl, arg, l0, l1, tail @ ..] = rest {
        let n = (u16::from_be_bytes([*l0, *l1]) as usize).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        frame += 1;
        let dir = (ctl & 7) as usize;
        let (syn, fin, rst) = (ctl & 0x08 != 0, ctl & 0x10 != 0, ctl & 0x20 != 0);
        let seq = match ctl >> 6 {
            1 => next_seq[dir].wrapping_add(u32::from(*arg) * 8),
            2 => next_seq[dir].wrapping_sub(u32::from(*arg)),
            3 => {
                now += u64::from(*arg) * 100_000_000;
                next_seq[dir]
            }
            _ => next_seq[dir],
        };
        if ctl >> 6 != 1 {
            next_seq[dir] = seq
                .wrapping_add(u32::from(syn))
                .wrapping_add(n as u32)
                .wrapping_add(u32::from(fin));
        }
        now += 1_000_000;
        let cut = if arg & 1 == 1 { *arg as usize } else { 0 };
        *given.entry(flows[dir]).or_default() += n;
        reassembly.poll(Timestamp(now), &mut stats, &mut sink);
        reassembly.segment(
            Segment {
                ts: Timestamp(now),
                frame,
                input: 0,
                flow: flows[dir],
                seq,
                syn,
                fin,
                rst,
                data: payload,
                wire_len: n + cut,
            },
            &mut stats,
            &mut sink,
        );
        assert!(reassembly.len() <= tcp::MAX_DIRECTIONS);
        assert!(reassembly.held_bytes() <= tcp::MAX_HELD_BYTES_TOTAL);
    }
    reassembly.finish(&mut stats, &mut sink);
    assert_eq!(reassembly.held_bytes(), 0, "nothing held after finish");
    for (flow, n) in &delivered {
        let g = given.get(flow).copied().unwrap_or(0);
        assert!(*n <= g, "{flow:?}: {n} bytes delivered, {g} captured");
    }
}

/// One raw IP packet in `ip_defrag`'s input: capture time advances by `dt` × 250 ms before it (so 120 of
/// 255 pass [`defrag::REASSEMBLY_TIMEOUT`]), then a 2-byte length and the packet.
pub fn ip_record(dt: u8, packet: &[u8]) -> Vec<u8> {
    let len = packet.len().min(u16::MAX as usize);
    let mut out = vec![dt];
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&packet[..len]);
    out
}

/// Raw IPv4/IPv6 packets ([`ip_record`]s), typically fragments, through `net::Net` (IP headers,
/// extension headers, reassembly, UDP/TCP/ICMP).
///
/// Invariants: every packet is counted; the reassembly table stays within [`defrag::MAX_REASSEMBLIES`]
/// and the TCP tables within their bounds; no datagram is longer than [`defrag::MAX_DATAGRAM_LEN`]; no
/// more datagrams are reassembled than fragments arrived; nothing is held after `finish`.
pub fn ip_defrag(data: &[u8]) {
    let mut net = Net::new();
    let mut rest = data;
    let mut frame = 0u64;
    let mut now = 0u64;
    let mut check = |ev: NetEvent<'_>| {
        if let NetEvent::Udp(d) | NetEvent::TcpData { datagram: d, .. } = ev {
            assert!(d.payload.len() <= defrag::MAX_DATAGRAM_LEN);
        }
    };
    while let [dt, l0, l1, tail @ ..] = rest {
        let n = (u16::from_be_bytes([*l0, *l1]) as usize).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        rest = next;
        frame += 1;
        now += u64::from(*dt) * 250_000_000;
        net.ingest(
            &Packet {
                ts: Timestamp(now),
                frame,
                input: 0,
                link_type: LinkType::RawIp,
                data: pkt,
                orig_len: pkt.len() as u32,
            },
            &mut check,
        );
        assert!(net.reassemblies() <= defrag::MAX_REASSEMBLIES);
        assert!(net.tcp().len() <= tcp::MAX_DIRECTIONS);
        assert!(net.tcp().held_bytes() <= tcp::MAX_HELD_BYTES_TOTAL);
    }
    net.finish(&mut check);
    let s = net.stats();
    assert_eq!(s.packets, frame, "every packet counted");
    assert!(s.reassembled <= s.fragments);
    assert_eq!(net.reassemblies(), 0, "nothing under reassembly after finish");
    assert_eq!(net.tcp().held_bytes(), 0);
}

/// libpcap's classic file header magic, microsecond timestamps.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;

/// A classic pcap file (little-endian, microseconds) holding `packets`, as [`pipeline`] and libpcap read.
pub fn pcap_file(link_type: LinkType, packets: &[(Timestamp, &[u8])]) -> Vec<u8> {
    let dlt = crate::tui::export::linktype(link_type);
    let mut out = Vec::new();
    for w in [PCAP_MAGIC_US, 0x0004_0002, 0, 0, 262_144, dlt] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    // The version is two u16s (2, 4), not one u32.
    out[4..8].copy_from_slice(&[2, 0, 4, 0]);
    for (ts, data) in packets {
        let len = data.len() as u32;
        for w in [
            (ts.0 / 1_000_000_000) as u32,
            (ts.0 % 1_000_000_000 / 1000) as u32,
            len,
            len,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(data);
    }
    out
}

/// A whole capture file (pcap in either byte order with micro- or nanosecond timestamps, or pcapng), read
/// by the same record walker `iceview read` uses on a mapped file ([`crate::capture::savefile`]), every
/// record through the network layer and the analysis the way `iceview read` runs them (a [`NetStage`]
/// filling [`EventBatch`]es that [`pipeline::apply`] takes, batch boundaries and where STUN is decoded
/// chosen by the input), then the report built and written as JSON (whole, and streamed in blocks: the
/// same bytes), summary text and packet lines.
///
/// Invariants: every record is counted; the stored messages stay within their bound; the JSON parses back
/// (with its schema tag); the text has no control characters but newlines and no bidi controls, whatever
/// the wire said.
pub fn pipeline(data: &[u8]) {
    let Some(mut file) = Savefile::open(data) else {
        return;
    };
    let mut analyzer = Analyzer::new(keys().clone());
    // STUN decoded by the analysis, or ahead on the network stage (as `iceview read` does), by input.
    let mut net = if data.get(2).is_some_and(|b| b & 1 == 1) {
        NetStage::for_analysis(&analyzer)
    } else {
        NetStage::new()
    };
    let mut batch = EventBatch::default();
    // Hand a batch over every `every` packets (1..=16, from the file's second byte).
    let every = u64::from(data.get(1).copied().unwrap_or(0) % 16) + 1;
    let mut frame = 0;
    while let Some(Ok(rec)) = file.next(data) {
        let (Some(link_type), Some(pkt)) = (LinkType::from_dlt(rec.dlt), data.get(rec.data.clone())) else {
            continue;
        };
        frame += 1;
        net.ingest(
            &Packet {
                ts: rec.ts,
                frame,
                input: 0,
                link_type,
                data: pkt,
                orig_len: rec.orig_len,
            },
            &mut batch,
        );
        if frame % every == 0 {
            pipeline::apply(&mut analyzer, &mut batch);
            batch.clear();
        }
    }
    net.finish(&mut batch);
    pipeline::apply(&mut analyzer, &mut batch);
    pipeline::finish(&mut analyzer, net);
    assert_eq!(analyzer.net_stats().packets, frame, "every record counted");
    let model = analyzer.model();
    assert!(model.messages.len() <= analysis::MAX_STORED_MESSAGES);
    let report = Report::build(model, &[], analyzer.net_stats());

    let mut out = Vec::new();
    assert!(json::write(&report, &mut out).is_ok());
    // The streamed writer (arrays rendered in blocks on all cores, messages field by field) writes the
    // same bytes, whatever the wire said and whatever the block size.
    let lean = Report::build_lean(model, &[], analyzer.net_stats());
    let block = usize::from(data.get(3).copied().unwrap_or(0) % 8) + 1;
    let mut streamed = Vec::new();
    assert!(json::write_streaming_in_blocks(&lean, model, &mut streamed, block).is_ok());
    assert!(streamed == out, "the streamed JSON is the full report's");
    let (mut lines, mut made) = (Vec::new(), Vec::new());
    assert!(text::write_packets(&report, &mut lines).is_ok());
    assert!(text::write_packets_from(&lean, model, &mut made).is_ok());
    assert!(
        lines == made,
        "--packets lines made one at a time are the full report's"
    );
    let parsed = serde_json::from_slice::<serde_json::Value>(&out);
    assert!(parsed.is_ok(), "the JSON report parses back: {parsed:?}");
    assert!(parsed.is_ok_and(|v| v.get("schema").is_some_and(|s| s.is_string())));

    for write in [text::write_summary, text::write_packets] {
        let mut out = Vec::new();
        assert!(write(&report, &mut out).is_ok());
        let text = String::from_utf8(out);
        assert!(text.is_ok(), "text output is UTF-8");
        let text = text.unwrap_or_default();
        let bad = text
            .chars()
            .find(|&c| (c != '\n' && c.is_control()) || text::is_bidi_control(c));
        assert_eq!(bad, None, "a control character reached the text output");
    }
}

/// xorshift64* (Vigna): enough randomness for mutations, no dependency, same sequence on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// One mutation of `b`: the kinds of damage real captures and hostile senders produce (bit flips,
/// truncation, a 16-bit length-like field set to an extreme, garbage appended, the head kept with a
/// random tail).
pub fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let n = rng.below(b.len() + 1);
            b.truncate(n);
        }
        2 | 3 => {
            // A 16-bit field (IP total length, UDP length, STUN/ChannelData length, fragment offset...) set
            // to an extreme: most length fields of these protocols are 16-bit big-endian.
            if b.len() >= 2 {
                let i = rng.below(b.len() - 1);
                let v: u16 = match rng.below(4) {
                    0 => 0,
                    1 => 0xFFFF,
                    2 => rng.next_u64() as u16,
                    _ => u16::from_be_bytes([b[i], b[i + 1]]).wrapping_add(4),
                };
                b[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        4 => {
            for _ in 0..rng.below(64) {
                b.push(rng.next_u64() as u8);
            }
        }
        _ => {
            let keep = rng.below(b.len() + 1);
            b.truncate(keep);
            for _ in 0..rng.below(200) {
                b.push(rng.next_u64() as u8);
            }
        }
    }
}

/// Splices two packets: the head of `b` with the tail of `donor`, each cut at a random point (a STUN
/// header with another message's attributes, an IP header with another packet's payload).
pub fn splice(rng: &mut Rng, b: &mut Vec<u8>, donor: &[u8]) {
    let keep = rng.below(b.len() + 1);
    b.truncate(keep);
    let from = rng.below(donor.len() + 1);
    b.extend_from_slice(&donor[from..]);
}

/// Structure-aware length damage for a STUN message: the header's length or one attribute's length set
/// off by a little or to an extreme, so the walk meets lengths that almost fit.
pub fn edit_stun_lengths(rng: &mut Rng, b: &mut [u8]) {
    let mut fields = vec![2usize];
    let mut off = stun::HEADER_LEN;
    while let Some(&[_, _, l0, l1]) = b.get(off..off + 4) {
        fields.push(off + 2);
        off += 4 + (u16::from_be_bytes([l0, l1]) as usize).div_ceil(4) * 4;
    }
    let i = fields[rng.below(fields.len())];
    let Some(field) = b.get_mut(i..i + 2) else { return };
    let old = u16::from_be_bytes([field[0], field[1]]);
    let new = match rng.below(5) {
        0 => old.wrapping_add(1 + rng.below(8) as u16),
        1 => old.wrapping_sub(1 + rng.below(8) as u16),
        2 => 0,
        3 => 0xFFFF,
        _ => old.wrapping_add(4),
    };
    field.copy_from_slice(&new.to_be_bytes());
}
