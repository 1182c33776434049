//! Criterion benches of the hot paths, on real bytes from fixtures/chrome-relay-udp (a Chromium call relayed
//! through coturn over TURN/UDP):
//!
//! - `stun/…`: decoding single STUN messages (header test, attribute walk, typed values, FINGERPRINT, and
//!   MESSAGE-INTEGRITY with and without the right key).
//! - `channel_data`: parsing one ChannelData frame.
//! - `demux/media`: RFC 7983 first-byte demultiplexing plus RTP/RTCP header check of one media packet (the
//!   path every media datagram takes).
//! - `capture/savefile_walk`: the mapped reader's walk over pcap records (file bytes in memory).
//! - `pipeline/…`: the whole `Analyzer` (link, IP, UDP, demux, decode, transactions, TURN, relayed
//!   payloads) over every packet of the capture, held in memory, per byte and per packet.
//!
//! Run with `cargo bench --bench decode`; BENCHMARKS.md has the figures and the machine.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use iceview::analysis::Analyzer;
use iceview::capture::file::FileReader;
use iceview::capture::savefile::Savefile;
use iceview::capture::{LinkType, Packet, Timestamp};
use iceview::net::{Net, NetEvent};
use iceview::wire::credentials::Keyring;
use iceview::wire::stun::{self, Class, Method};
use iceview::wire::{channel, demux, media};
use std::hint::black_box;
use std::path::{Path, PathBuf};

const CAPTURE: &str = "fixtures/chrome-relay-udp/capture.pcap";

/// One packet, owned (the reader lends its buffer only for the duration of a callback).
struct OwnedPacket {
    ts: Timestamp,
    frame: u64,
    link_type: LinkType,
    data: Vec<u8>,
    orig_len: u32,
}

impl OwnedPacket {
    fn packet(&self) -> Packet<'_> {
        Packet {
            ts: self.ts,
            frame: self.frame,
            input: 0,
            link_type: self.link_type,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read_capture() -> Vec<OwnedPacket> {
    let p = path(CAPTURE);
    let mut reader = FileReader::open(&[p.to_string_lossy().into_owned()], None).expect("fixture opens");
    let mut packets = Vec::new();
    reader.for_each(&mut |p| {
        packets.push(OwnedPacket {
            ts: p.ts,
            frame: p.frame,
            link_type: p.link_type,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
        });
        true
    });
    packets
}

/// Every UDP payload of the capture, in order.
fn udp_payloads(packets: &[OwnedPacket]) -> Vec<Vec<u8>> {
    let mut net = Net::new();
    let mut out = Vec::new();
    for p in packets {
        net.ingest(&p.packet(), &mut |ev| {
            if let NetEvent::Udp(dg) = ev {
                out.push(dg.payload.to_vec());
            }
        });
    }
    out
}

/// The ICE credentials the two browsers really used (truth.json, written by the lab).
fn ice_keys() -> Keyring {
    let text = std::fs::read_to_string(path("fixtures/chrome-relay-udp/truth.json")).expect("truth.json");
    let truth: serde_json::Value = serde_json::from_str(&text).expect("truth.json is JSON");
    let mut keys = Keyring::new();
    for pc in truth["pcs"].as_object().expect("pcs").values() {
        let ice = &pc["local_ice"];
        keys.add_ice(
            ice["ufrag"].as_str().expect("ufrag"),
            ice["pwd"].as_str().expect("pwd"),
        );
    }
    keys
}

fn find_stun(payloads: &[Vec<u8>], pred: impl Fn(&stun::StunMessage) -> bool) -> Vec<u8> {
    let none = Keyring::new();
    payloads
        .iter()
        .find(|b| stun::looks_like_stun(b) && stun::decode(b, &none).is_ok_and(|m| pred(&m)))
        .expect("the capture has such a message")
        .clone()
}

fn benches(c: &mut Criterion) {
    let packets = read_capture();
    let payloads = udp_payloads(&packets);
    let none = Keyring::new();
    let keys = ice_keys();

    // A connectivity check (Binding request with USERNAME, GOOG-NETWORK-INFO, ICE-CONTROLLED, PRIORITY,
    // MESSAGE-INTEGRITY, FINGERPRINT). In this relayed call the checks travel inside Send indications
    // and ChannelData, so look there too.
    let relayed: Vec<Vec<u8>> = payloads
        .iter()
        .filter_map(|b| {
            if demux::classify(b) == demux::Kind::ChannelData {
                return channel::parse_udp(b).ok().map(|cd| cd.data.to_vec());
            }
            let m = stun::decode(b, &none).ok()?;
            let data = m.attr(stun::ATTR_DATA)?.value_range();
            b.get(data).map(<[u8]>::to_vec)
        })
        .collect();
    let check = find_stun(&relayed, |m| {
        m.method == Method::BINDING
            && m.class == Class::Request
            && m.attr(stun::ATTR_MESSAGE_INTEGRITY).is_some()
            && m.attr(stun::ATTR_FINGERPRINT).is_some()
    });
    let allocate_success = find_stun(&payloads, |m| {
        m.method == Method::ALLOCATE && m.class == Class::Success
    });
    // A STUN server's answer to a gathering Binding request (coturn: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS,
    // RESPONSE-ORIGIN, OTHER-ADDRESS where configured, SOFTWARE, FINGERPRINT).
    let server_success = find_stun(&payloads, |m| {
        m.method == Method::BINDING && m.class == Class::Success && m.attr(0x802B).is_some()
    });
    let channel_frame = payloads
        .iter()
        .find(|b| demux::classify(b) == demux::Kind::ChannelData && channel::parse_udp(b).is_ok())
        .expect("the capture has ChannelData")
        .clone();
    // Media: the SRTP/SRTCP a ChannelData frame carries between the browsers.
    let media_packet = payloads
        .iter()
        .filter(|b| demux::classify(b) == demux::Kind::ChannelData)
        .filter_map(|b| b.get(4..).map(<[u8]>::to_vec))
        .find(|d| demux::classify(d) == demux::Kind::RtpOrRtcp && media::rtp(d).is_some())
        .expect("the capture has relayed RTP");
    assert!(
        stun::decode(&check, &keys).is_ok_and(|m| m.integrity.name() == "ok"),
        "the bench key verifies the check"
    );

    let mut g = c.benchmark_group("stun");
    g.throughput(Throughput::Elements(1));
    g.bench_function("binding_request_mi_fingerprint/unchecked", |b| {
        b.iter(|| stun::decode(black_box(&check), &none));
    });
    g.bench_function("binding_request_mi_fingerprint/verified", |b| {
        b.iter(|| stun::decode(black_box(&check), &keys));
    });
    g.bench_function("allocate_success", |b| {
        b.iter(|| stun::decode(black_box(&allocate_success), &none));
    });
    g.bench_function("binding_success_from_server", |b| {
        b.iter(|| stun::decode(black_box(&server_success), &none));
    });
    g.bench_function("header_test_only", |b| {
        b.iter(|| stun::looks_like_stun(black_box(&allocate_success)));
    });
    g.finish();

    let mut g = c.benchmark_group("channel_data");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_udp", |b| {
        b.iter(|| channel::parse_udp(black_box(&channel_frame)));
    });
    g.finish();

    let mut g = c.benchmark_group("demux");
    g.throughput(Throughput::Elements(1));
    g.bench_function("media", |b| {
        b.iter(|| {
            let p = black_box(&media_packet);
            (demux::classify(p), media::rtp(p))
        });
    });
    g.finish();

    let total_bytes: u64 = packets.iter().map(|p| p.data.len() as u64).sum();
    let run = |packets: &[OwnedPacket]| {
        let mut a = Analyzer::new(Keyring::new());
        for p in packets {
            a.ingest(&p.packet());
        }
        a.finish();
        a.into_model()
    };
    // The mapped reader's record walk, over the file's bytes in memory (no page faults): what reading costs
    // per packet before anything is decoded.
    let file = std::fs::read(path(CAPTURE)).expect("fixture");
    let walk = |file: &[u8]| {
        let mut sf = Savefile::open(file).expect("a pcap file");
        let mut n = 0usize;
        while let Some(Ok(r)) = sf.next(file) {
            n += r.data.len();
        }
        n
    };
    let mut g = c.benchmark_group("capture");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("savefile_walk/packets", |b| b.iter(|| walk(black_box(&file))));
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(30);
    g.throughput(Throughput::Bytes(total_bytes));
    g.bench_function("chrome-relay-udp/bytes", |b| {
        b.iter_batched(|| (), |()| run(black_box(&packets)), BatchSize::PerIteration);
    });
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("chrome-relay-udp/packets", |b| {
        b.iter_batched(|| (), |()| run(black_box(&packets)), BatchSize::PerIteration);
    });
    g.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
