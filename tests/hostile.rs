//! Hostile and broken input through the whole pipeline (`Analyzer` fed in-memory packets, or the binary on a
//! file): nothing panics, every problem lands in a named counter, and a valid message after the garbage is
//! still reported.
//!
//! The packets are built here byte by byte (Ethernet / IPv4 / UDP or TCP / STUN per RFC 8489 §5 and §14), so
//! every expected value is a hand calculation: what the bytes say, not what iceview said before.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use iceview::analysis::{self, Analyzer, Model};
use iceview::capture::{LinkType, Packet, Timestamp};
use iceview::net::NetStats;
use iceview::wire::credentials::Keyring;

const T0_NANOS: u64 = 1_795_600_000_000_000_000;
const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 1];

// --- packet building ---------------------------------------------------------------------------------------

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(20 + l4.len()).expect("fits one IPv4 packet");
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    f.extend(l4);
    f
}

/// UDP over IPv4 over Ethernet; checksum 0 ("not computed", allowed for IPv4 by RFC 768).
fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("fits one UDP datagram");
    let mut l4 = Vec::new();
    l4.extend(src.1.to_be_bytes());
    l4.extend(dst.1.to_be_bytes());
    l4.extend(len.to_be_bytes());
    l4.extend([0, 0]);
    l4.extend(payload);
    ethernet_ipv4(src.0, dst.0, 17, &l4)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend(src.1.to_be_bytes());
    l4.extend(dst.1.to_be_bytes());
    l4.extend(seq.to_be_bytes());
    l4.extend(1u32.to_be_bytes()); // ack number: the peer sends nothing here
    l4.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    l4.extend(payload);
    ethernet_ipv4(src.0, dst.0, 6, &l4)
}

/// A STUN message (RFC 8489 §5): 14-bit type, body length, magic cookie, transaction id, attributes padded
/// to 4 bytes (§14).
fn stun(typ: u16, tid: [u8; 12], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend(t.to_be_bytes());
        body.extend(u16::try_from(v.len()).expect("attribute fits").to_be_bytes());
        body.extend(*v);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let mut m = Vec::new();
    m.extend(typ.to_be_bytes());
    m.extend(u16::try_from(body.len()).expect("message fits").to_be_bytes());
    m.extend(COOKIE);
    m.extend(tid);
    m.extend(body);
    m
}

fn tid(tag: &str) -> [u8; 12] {
    assert!(tag.len() <= 12, "transaction id tag {tag:?} longer than 12 bytes");
    let mut t = [b'.'; 12];
    t[..tag.len()].copy_from_slice(tag.as_bytes());
    t
}

fn hex(t: [u8; 12]) -> String {
    t.iter().map(|b| format!("{b:02x}")).collect()
}

const BINDING_REQUEST: u16 = 0x0001;
const SEND_INDICATION: u16 = 0x0016;
const ALLOCATE_SUCCESS: u16 = 0x0103;
const CHANNEL_BIND_REQUEST: u16 = 0x0009;
const XOR_PEER_ADDRESS: u16 = 0x0012;
const XOR_RELAYED_ADDRESS: u16 = 0x0016;
const DATA: u16 = 0x0013;
const CHANNEL_NUMBER: u16 = 0x000C;

/// XOR-*-ADDRESS value for IPv4 (RFC 8489 §14.2): port ^ 0x2112, address ^ cookie.
fn xor_v4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = vec![0, 1];
    v.extend((port ^ 0x2112).to_be_bytes());
    v.extend(ip.iter().zip(COOKIE).map(|(a, b)| a ^ b));
    v
}

fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(channel.to_be_bytes());
    m.extend(u16::try_from(data.len()).expect("fits").to_be_bytes());
    m.extend(data);
    m
}

// --- running -----------------------------------------------------------------------------------------------

/// One captured frame: bytes and the original length the record claims.
struct Frame {
    data: Vec<u8>,
    orig_len: u32,
}

impl From<Vec<u8>> for Frame {
    fn from(data: Vec<u8>) -> Frame {
        let orig_len = data.len() as u32;
        Frame { data, orig_len }
    }
}

/// Feeds the frames (1 ms apart, numbered from 1) through the whole analysis.
fn analyse(frames: Vec<Frame>) -> (Model, NetStats) {
    let mut a = Analyzer::new(Keyring::new());
    feed(&mut a, &frames);
    let net = a.net_stats().clone();
    (a.into_model(), net)
}

/// Feeds the frames (1 ms apart, numbered from 1) to `a` and finishes it.
fn feed(a: &mut Analyzer, frames: &[Frame]) {
    for (i, f) in frames.iter().enumerate() {
        a.ingest(&Packet {
            ts: Timestamp::from_nanos(T0_NANOS + i as u64 * 1_000_000),
            frame: i as u64 + 1,
            input: 0,
            link_type: LinkType::Ethernet,
            data: &f.data,
            orig_len: f.orig_len,
        });
    }
    a.finish();
}

/// A Binding request C → S:3478 that must be reported whatever came before it.
fn canary(tag: &str) -> Frame {
    udp(
        (CLIENT, 5000),
        (SERVER, 3478),
        &stun(BINDING_REQUEST, tid(tag), &[]),
    )
    .into()
}

fn assert_reported(model: &Model, tag: &str, frame: u64) {
    let want = hex(tid(tag));
    let found = model
        .messages
        .iter()
        .find(|m| model.stun(m).is_some_and(|msg| msg.transaction_id_hex() == want));
    let m = found.unwrap_or_else(|| panic!("the valid message {tag:?} after the garbage was not reported"));
    assert_eq!(m.frame, frame, "{tag}");
}

fn decode_error(model: &Model, reason: &str) -> u64 {
    model.stats.decode_errors.get(reason).copied().unwrap_or(0)
}

// --- the cases ---------------------------------------------------------------------------------------------

#[test]
fn zero_length_and_runt_frames() {
    let (model, net) = analyse(vec![
        Vec::new().into(),
        vec![0xff; 5].into(),
        vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08].into(), // ends inside the EtherType
        canary("after-runts"),
    ]);
    assert_eq!(net.packets, 4);
    assert_eq!(net.truncated_link, 3);
    assert_eq!(model.stats.stun, 1);
    assert_reported(&model, "after-runts", 4);
}

#[test]
fn ip_and_udp_lengths_that_lie() {
    let good = udp(
        (CLIENT, 5000),
        (SERVER, 3478),
        &stun(BINDING_REQUEST, tid("x"), &[]),
    );
    // IPv4 total length 1000 in a 62-byte frame the snap length did not cut (orig_len = captured).
    let mut long_ip = good.clone();
    long_ip[16..18].copy_from_slice(&1000u16.to_be_bytes());
    // UDP length 500 in a 28-byte UDP datagram.
    let mut long_udp = good.clone();
    long_udp[38..40].copy_from_slice(&500u16.to_be_bytes());
    // IHL 4 (< 5): not a valid IPv4 header.
    let mut bad_ihl = good;
    bad_ihl[14] = 0x44;
    let (model, net) = analyse(vec![
        long_ip.into(),
        long_udp.into(),
        bad_ihl.into(),
        canary("after-lies"),
    ]);
    assert_eq!(net.truncated_ip, 1);
    assert_eq!(net.bad_udp_length, 1);
    assert_eq!(net.bad_ip_header, 1);
    assert_eq!(model.stats.stun, 1);
    assert_reported(&model, "after-lies", 4);
}

/// A record whose captured length exceeds its original length (a writer bug: pcap says caplen ≤ len).
/// The captured bytes are all there, so they are decoded; nothing is mistaken for a snap-length cut.
#[test]
fn caplen_greater_than_len() {
    let data = udp(
        (CLIENT, 5000),
        (SERVER, 3478),
        &stun(BINDING_REQUEST, tid("caplen>len"), &[]),
    );
    let (model, net) = analyse(vec![Frame { data, orig_len: 10 }, canary("after-caplen")]);
    assert_eq!(net.packets, 2);
    assert_eq!(net.snaplen_truncated, 0);
    assert_eq!(model.stats.stun, 2);
    assert_reported(&model, "caplen>len", 1);
    assert_reported(&model, "after-caplen", 2);
}

/// The same through libpcap: a pcap record with caplen 62 > len 10 is read, not rejected.
#[test]
fn caplen_greater_than_len_in_a_file() {
    let data = udp(
        (CLIENT, 5000),
        (SERVER, 3478),
        &stun(BINDING_REQUEST, tid("file"), &[]),
    );
    let mut file = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend(v.to_le_bytes());
    }
    for (caplen, len) in [(data.len() as u32, 10u32), (data.len() as u32, data.len() as u32)] {
        file.extend(1_795_600_000u32.to_le_bytes());
        file.extend(0u32.to_le_bytes());
        file.extend(caplen.to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(&data);
    }
    let path = std::env::temp_dir().join(format!("iceview-hostile-{}-caplen.pcap", std::process::id()));
    std::fs::write(&path, &file).expect("temp file");
    let out = common::iceview_with_env(&["read", path.to_str().expect("utf-8"), "--json", "-"], &[]);
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["inputs"][0]["packets"], 2);
    assert_eq!(report["messages"].as_array().map(Vec::len), Some(2));
}

/// RFC 8489 §5: a STUN header whose length (65535, not even a multiple of 4) runs far past the 60-byte
/// datagram. Not decodable: it must not panic, must be counted, and the next message must be read.
#[test]
fn stun_length_beyond_the_datagram_is_survived() {
    let (model, _) = analyse(vec![oversized_stun(), canary("after-65535")]);
    let errors: u64 = model.stats.decode_errors.values().sum();
    assert_eq!(model.stats.other + errors, 1, "counted once, somewhere");
    assert_reported(&model, "after-65535", 2);
}

fn oversized_stun() -> Frame {
    let mut m = stun(BINDING_REQUEST, tid("65535"), &[]);
    m[2..4].copy_from_slice(&0xffffu16.to_be_bytes());
    m.resize(60, 0xab);
    udp((CLIENT, 5000), (SERVER, 3478), &m).into()
}

/// The issue asks for "lengths beyond the buffer" to be counted as decode errors: a datagram with the
/// magic cookie whose length is wrong is a broken STUN message, not "other".
#[test]
fn stun_length_beyond_the_datagram_is_a_decode_error() {
    let (model, _) = analyse(vec![oversized_stun(), canary("after-65535")]);
    assert_eq!(
        decode_error(&model, "stun-length-not-multiple-of-4")
            + decode_error(&model, "stun-length-beyond-buffer"),
        1,
        "decode errors: {:?}",
        model.stats.decode_errors
    );
    // With a length that is a multiple of 4 (0xfffc) the reason can only be the buffer.
    let mut m = stun(BINDING_REQUEST, tid("65532"), &[]);
    m[2..4].copy_from_slice(&0xfffcu16.to_be_bytes());
    m.resize(60, 0xab);
    let (model, _) = analyse(vec![udp((CLIENT, 5000), (SERVER, 3478), &m).into()]);
    assert_eq!(decode_error(&model, "stun-length-beyond-buffer"), 1);
}

/// RFC 8489 §14: an attribute whose length runs past the end of the message. The attributes before it
/// are kept, the message is listed as malformed, the error is counted by reason.
#[test]
fn attribute_length_overflow() {
    let mut m = stun(
        BINDING_REQUEST,
        tid("attr-ovf"),
        &[(0x8022, b"ok"), (0x8022, b"abcd")],
    );
    // The second SOFTWARE claims 200 bytes; 4 remain.
    let second = 20 + 8;
    m[second + 2..second + 4].copy_from_slice(&200u16.to_be_bytes());
    let (model, _) = analyse(vec![
        udp((CLIENT, 5000), (SERVER, 3478), &m).into(),
        canary("after-ovf"),
    ]);
    assert_eq!(decode_error(&model, "stun-attribute-length-overflow"), 1);
    let first = model
        .messages
        .get(0)
        .and_then(|m| model.stun(&m))
        .expect("listed");
    assert_eq!(
        first.attributes.len(),
        1,
        "SOFTWARE \"ok\" before the bad one is kept"
    );
    assert!(first.malformed.is_some());
    assert_reported(&model, "after-ovf", 2);
}

/// 1000 Send indications nested in each other's DATA (RFC 8656 §11): the first level's DATA is decoded as
/// the relayed datagram; what that inner indication carries is not unwrapped again, so depth (and stack)
/// stay bounded.
#[test]
fn a_thousand_nested_send_indications() {
    let peer = ([203, 0, 113, 9], 7000);
    let peer_attr = xor_v4(peer.0, peer.1);
    let mut inner = stun(BINDING_REQUEST, tid("innermost"), &[]);
    for level in 0..1000 {
        inner = stun(
            SEND_INDICATION,
            tid(&format!("send-{level}")),
            &[(XOR_PEER_ADDRESS, &peer_attr), (DATA, &inner)],
        );
    }
    assert!(inner.len() < 65_507, "one UDP datagram");
    let (model, _) = analyse(vec![
        udp((CLIENT, 5000), (SERVER, 3478), &inner).into(),
        canary("after-nest"),
    ]);
    let from_frame_1: Vec<_> = model.messages.iter().filter(|m| m.frame == 1).collect();
    assert_eq!(
        from_frame_1.len(),
        2,
        "the outer indication and the datagram it relays"
    );
    assert!(model.path(&from_frame_1[1]).relay.is_some());
    assert_eq!(model.stats.stun, 3);
    assert_reported(&model, "after-nest", 2);
}

/// TURN inside TURN inside TURN (a client at one server's relayed address using a second server, and so
/// on), and 1000 levels of ChannelData in one datagram. iceview follows [`analysis::MAX_RELAY_DEPTH`] (2)
/// levels and counts the rest as `relay_depth_exceeded`.
#[test]
fn nested_channel_data_stops_at_the_relay_depth_bound() {
    // Server k (port 3478) gives its client the relayed address relayed[k]; the client of server k+1 is
    // relayed[k]; each binds channel 0x4000+k to the next server.
    let servers: [[u8; 4]; 4] = [
        [198, 51, 100, 1],
        [198, 51, 100, 2],
        [198, 51, 100, 3],
        [198, 51, 100, 4],
    ];
    let relayed: Vec<([u8; 4], u16)> = servers.iter().map(|s| (*s, 50_000)).collect();
    let clients: Vec<([u8; 4], u16)> = std::iter::once((CLIENT, 5000))
        .chain(relayed.iter().copied())
        .collect();
    let mut frames: Vec<Frame> = Vec::new();
    for k in 0..3 {
        let server = (servers[k], 3478);
        let ok = stun(
            ALLOCATE_SUCCESS,
            tid(&format!("alloc-{k}")),
            &[(XOR_RELAYED_ADDRESS, &xor_v4(relayed[k].0, relayed[k].1))],
        );
        frames.push(udp(server, clients[k], &ok).into());
        let channel = (0x4000u16 + k as u16).to_be_bytes();
        let bind = stun(
            CHANNEL_BIND_REQUEST,
            tid(&format!("bind-{k}")),
            &[
                (CHANNEL_NUMBER, &[channel[0], channel[1], 0, 0]),
                (XOR_PEER_ADDRESS, &xor_v4(servers[k + 1], 3478)),
            ],
        );
        frames.push(udp(clients[k], server, &bind).into());
    }
    // Channel 0x4000 carries ChannelData for 0x4001, which carries 0x4002, ... 1000 levels deep.
    let mut payload = stun(BINDING_REQUEST, tid("deepest"), &[]);
    for level in (0..1000u16).rev() {
        payload = channel_data(0x4000 + level.min(0x0fff), &payload);
    }
    frames.push(udp((CLIENT, 5000), (servers[0], 3478), &payload).into());
    frames.push(canary("after-chan"));
    let (model, _) = analyse(frames);

    assert_eq!(model.stats.relay_depth_exceeded, 1);
    let nested: Vec<_> = model.messages.iter().filter(|m| m.frame == 7).collect();
    assert_eq!(nested.len(), 1 + usize::from(analysis::MAX_RELAY_DEPTH));
    assert_eq!(model.stats.channel_data, 3);
    assert_reported(&model, "after-chan", 8);
}

/// TURN over TCP (RFC 8656 §12.5 framing): a STUN header claiming a 65 KB body, then garbage, then the
/// connection closes. The partial frame is dropped and counted; a later connection and UDP still work.
#[test]
fn tcp_stream_claiming_a_huge_frame_then_closing() {
    let (c, s) = ((CLIENT, 6000), (SERVER, 3478));
    let mut claim = stun(BINDING_REQUEST, tid("huge"), &[]);
    claim[2..4].copy_from_slice(&0xfffcu16.to_be_bytes());
    claim.extend([0xab; 300]);
    let frames = vec![
        tcp(c, s, 0, SYN, &[]).into(),
        tcp(s, c, 0, SYN | ACK, &[]).into(),
        tcp(c, s, 1, PSH_ACK, &claim).into(),
        tcp(c, s, 1 + claim.len() as u32, FIN_ACK, &[]).into(),
        canary("after-close"),
    ];
    let (model, _) = analyse(frames);
    assert_eq!(
        decode_error(&model, "tcp-unframed-bytes"),
        1,
        "{:?}",
        model.stats.decode_errors
    );
    assert_reported(&model, "after-close", 5);
}

/// The same claim followed by more than 65 KB of garbage and then a valid STUN message in the same stream:
/// the claimed frame is decoded as what it says (and found malformed), the framer resynchronises on the
/// next provable STUN header, and that message is reported.
#[test]
fn tcp_stream_claiming_a_huge_frame_then_garbage_then_a_message() {
    let (c, s) = ((CLIENT, 6001), (SERVER, 3478));
    let mut stream = stun(BINDING_REQUEST, tid("huge"), &[]);
    stream[2..4].copy_from_slice(&0xfffcu16.to_be_bytes());
    stream.extend(std::iter::repeat_n(0xab, 0xfffc + 5000));
    let good = stun(BINDING_REQUEST, tid("tcp-resync"), &[]);
    stream.extend(&good);
    let mut frames: Vec<Frame> = vec![tcp(c, s, 0, SYN, &[]).into(), tcp(s, c, 0, SYN | ACK, &[]).into()];
    let mut seq = 1u32;
    for chunk in stream.chunks(1400) {
        frames.push(tcp(c, s, seq, PSH_ACK, chunk).into());
        seq += chunk.len() as u32;
    }
    let last_segment = frames.len() as u64;
    frames.push(canary("after-tcp"));
    let (model, net) = analyse(frames);
    assert_eq!(net.tcp_segments, last_segment);
    // The claimed 65552-byte message: all 0xab attributes, whose first "length" (0xabab) overflows.
    assert_eq!(decode_error(&model, "stun-attribute-length-overflow"), 1);
    // The 5000 garbage bytes after it (stream bytes 65552..70552) are skipped while resynchronising; they
    // came in 5 segments (1400-byte segments 46 to 50), and the reason is counted once per skip.
    let skips = decode_error(&model, "tcp-unframed-bytes");
    assert!((1..=5).contains(&skips), "tcp-unframed-bytes {skips}");
    assert_reported(&model, "tcp-resync", last_segment);
    assert_reported(&model, "after-tcp", last_segment + 1);
}

/// 10^5 transactions, each with its own id: every table stays within its bound and the run completes.
#[test]
fn a_hundred_thousand_transaction_ids() {
    const N: u32 = 100_000;
    let mut frames = Vec::with_capacity(N as usize + 1);
    for i in 0..N {
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&i.to_be_bytes());
        frames.push(udp((CLIENT, 5000), (SERVER, 3478), &stun(BINDING_REQUEST, t, &[])).into());
    }
    frames.push(canary("after-100k"));
    let (model, _) = analyse(frames);
    assert_eq!(model.stats.stun, u64::from(N) + 1);
    assert_eq!(model.transactions.list.len(), N as usize + 1);
    assert!(model.transactions.list.len() <= analysis::transactions::MAX_TRANSACTIONS);
    assert!(model.messages.len() <= analysis::MAX_STORED_MESSAGES);
    assert_reported(&model, "after-100k", u64::from(N) + 1);
}

/// Deterministic random datagrams to the TURN port, many starting like STUN or ChannelData: no panic, each
/// counted under one kind or one decode error.
#[test]
fn random_datagrams_to_the_stun_port() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut frames = Vec::new();
    for _ in 0..5000 {
        let len = (next() % 120) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match next() % 3 {
            // A STUN-looking header with a consistent length over random attributes.
            0 if len >= 20 => {
                p[0] &= 0x3f;
                p[2..4].copy_from_slice(&(((len - 20) & !3) as u16).to_be_bytes());
                p[4..8].copy_from_slice(&COOKIE);
                p.truncate(20 + ((len - 20) & !3));
            }
            1 if len >= 4 => p[0] = 0x40 | (p[0] & 0x0f),
            _ => {}
        }
        frames.push(udp((CLIENT, 5000), (SERVER, 3478), &p).into());
    }
    frames.push(canary("after-random"));
    let (model, net) = analyse(frames);
    assert_eq!(net.udp, 5001);
    assert_reported(&model, "after-random", 5001);
}

/// Terminal escapes in SOFTWARE, USERNAME, REALM, NONCE and reason phrases (fixtures/extra-crafted/
/// escapes.pcap) never reach stdout raw: not in `--packets` lines, not in the summary, not in the JSON.
#[test]
fn terminal_escapes_never_reach_stdout_raw() {
    let f = common::fixture("extra-crafted/escapes.pcap");
    for args in [vec!["read", f.as_str(), "--packets"], vec!["read", f.as_str()]] {
        let out = common::iceview_with_env(&args, &[]);
        assert!(out.status.success());
        common::assert_no_raw_controls(&out.stdout);
    }
    // JSON escapes C0 controls itself (\u001b); ESC must never appear as a byte.
    let out = common::iceview_with_env(&["read", f.as_str(), "--json", "-"], &[]);
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // ...and the value is still the exact wire text once decoded.
    assert_eq!(
        report["messages"][0]["attributes"][1]["value"],
        "\u{1b}]0;pwned\u{7}tool"
    );
}

/// The spill files (unlinked temporary files) this process holds open, as /proc/self/fd paths.
fn spill_fds() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let t = target.to_string_lossy();
            (t.contains(".iceview-") && t.ends_with("(deleted)")).then(|| e.path().display().to_string())
        })
        .collect()
}

/// `a`'s JSON report as the streaming writer writes it, parsed (it must be valid JSON).
fn written_report(a: &Analyzer) -> serde_json::Value {
    use iceview::report::{json, Report};
    let report = Report::build_lean(a.model(), &[], a.net_stats());
    let mut out = Vec::new();
    json::write_streaming(&report, a.model(), &mut out).expect("the report is written");
    serde_json::from_slice(&out).expect("the report is valid JSON")
}

/// The bytes `iceview read` spills to its temporary files come back through the same checks as a capture's:
/// here the files are changed after the analysis wrote them (through /proc/self/fd, as another process of the
/// same user could), and the report must neither panic nor show what the changed bytes would decode to. The
/// spill verifies each block it reads back (`capture::spill`); a changed one counts as unreadable, its
/// messages are listed without their attributes, and the run knows (the binary ends with an error).
#[test]
fn spill_files_changed_after_writing_are_detected_not_decoded() {
    use iceview::capture::spill::FileSpill;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    let before = spill_fds();
    let mut a = Analyzer::new(Keyring::new());
    a.set_spill(Arc::new(FileSpill::create().expect("a temporary file")));
    a.set_record_spill(Arc::new(FileSpill::create().expect("a temporary file")));
    // 72,000 Binding requests with a 64-byte SOFTWARE attribute (104 bytes each, 7.5 MB): the message
    // bytes fill 28 chunks of 256 KiB and the records 17 chunks of 4,096, each spilled once full.
    let n = 72_000u32;
    let software = [b'x'; 64];
    let frames: Vec<Frame> = (0..n)
        .map(|i| {
            let mut t = tid("spill");
            t[8..12].copy_from_slice(&i.to_be_bytes());
            udp(
                (CLIENT, 40_000),
                (SERVER, 3478),
                &stun(BINDING_REQUEST, t, &[(0x8022, &software)]),
            )
            .into()
        })
        .collect();
    feed(&mut a, &frames);
    let ours: Vec<String> = spill_fds().difference(&before).cloned().collect();
    assert_eq!(ours.len(), 2, "the two spill files: {ours:?}");
    assert_eq!(a.model().raw.errors(), 0);
    // Change one byte in the first block of the message bytes' file (the larger: a record takes ~60 bytes
    // where its message took 104), and one in a block in the middle of the records' file: the records of
    // the first messages still come back, so their changed bytes are read (and refused).
    let mut files: Vec<(u64, std::fs::File)> = ours
        .iter()
        .map(|fd| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(fd)
                .expect("the spill, through /proc");
            (f.metadata().expect("its size").len(), f)
        })
        .collect();
    files.sort_by_key(|(len, _)| *len);
    let [(records_len, records), (_, bytes)] = &files[..] else {
        panic!("two spill files");
    };
    bytes.write_all_at(&[0xee], 100).expect("a changed byte");
    records
        .write_all_at(&[0xee], records_len / 2)
        .expect("a changed byte");
    let v = written_report(&a);
    assert!(a.model().raw.errors() > 0, "the changed message chunk is counted");
    assert!(
        a.model().messages.errors() > 0,
        "the changed record chunk is counted"
    );
    let listed = v["messages"].as_array().expect("messages");
    // The first message's bytes were changed: it must not be listed with attributes read from them.
    let with_software = listed
        .iter()
        .filter(|m| {
            m["attributes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["name"] == "SOFTWARE"))
        })
        .count();
    assert!(
        with_software < n as usize,
        "{with_software} of {n} messages listed with attributes"
    );
    assert!(with_software > 0, "messages in unchanged chunks keep theirs");
}

/// When the first records' chunk cannot be read back, the report's `messages` array starts with the first
/// message whose record can: still valid JSON, listing the others. (Its blocks are rendered on several
/// cores, each element after a comma but the array's first; the first was the first block's, which here has
/// none.)
#[test]
fn a_report_whose_first_records_cannot_be_read_back_is_valid_json() {
    use iceview::capture::spill::FileSpill;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    let before = spill_fds();
    let mut a = Analyzer::new(Keyring::new());
    a.set_record_spill(Arc::new(FileSpill::create().expect("a temporary file")));
    // Three chunks of records (4,096 each): the first two spilled, the third held.
    let n = 10_000u32;
    let frames: Vec<Frame> = (0..n)
        .map(|i| {
            let mut t = tid("first");
            t[8..12].copy_from_slice(&i.to_be_bytes());
            udp((CLIENT, 40_000), (SERVER, 3478), &stun(BINDING_REQUEST, t, &[])).into()
        })
        .collect();
    feed(&mut a, &frames);
    let ours: Vec<String> = spill_fds().difference(&before).cloned().collect();
    let [fd] = &ours[..] else {
        panic!("one spill file: {ours:?}");
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(fd)
        .expect("the spill, through /proc")
        .write_all_at(&[0xee], 100)
        .expect("a changed byte");
    let v = written_report(&a);
    assert!(a.model().messages.errors() > 0, "the changed chunk is counted");
    let listed = v["messages"].as_array().expect("messages");
    assert_eq!(listed.len(), (n - 4096) as usize, "all but the first chunk's");
    assert_eq!(listed[0]["frame"], 4097, "the first of the second chunk");
}
