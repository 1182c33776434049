//! Property-style robustness tests: real packets from the bundled captures, mutated (bit flips, truncation,
//! length fields set to 0 / 0xFFFF / random, garbage appended), fed to every decoder and through the whole
//! `Analyzer` and report. The property is the one DESIGN.md states: no input panics, every table stays
//! within its bound, and the damage lands in `stats`.
//!
//! Deterministic: a fixed-seed xorshift generator and fixed case counts, so a failure reproduces exactly
//! (the panic message names the case). The generator and the mutator are `iceview::fuzzing`'s, shared with
//! tests/fuzz_stable.rs (the cargo-fuzz targets' stable counterpart, invariants included); the longer,
//! coverage-guided runs are in `fuzz/` and what they find lands in tests/fuzz_regressions.rs.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use iceview::analysis::{self, Analyzer};
use iceview::capture::file::FileReader;
use iceview::capture::{LinkType, Packet, Timestamp};
use iceview::fuzzing::{mutate, Rng};
use iceview::net::{Net, NetEvent};
use iceview::report::{json, text, Report};
use iceview::wire::credentials::Keyring;
use iceview::wire::framing::Framer;
use iceview::wire::{channel, demux, media, stun};

struct Owned {
    ts: Timestamp,
    link_type: LinkType,
    data: Vec<u8>,
}

/// Every packet of a few captures covering each link type, IPv4/IPv6, fragments, TURN/UDP and TURN/TCP.
fn corpus() -> Vec<Owned> {
    let files = [
        "chrome-relay-udp/capture.pcap",
        "turn-tcp/capture.pcap",
        "extra-crafted/fragments.pcap",
        "extra-crafted/ipv6.pcap",
        "extra-crafted/classic.pcap",
        "extra-crafted/escapes.pcap",
        "extra-links/ipv6-sll2.pcap",
        "extra-links/ipv6-null.pcap",
        "extra-links/ipv6-raw.pcap",
        "turn-auth-fail/capture.pcap",
    ];
    let mut out = Vec::new();
    for f in files {
        let mut r = FileReader::open(&[common::fixture(f)], None).expect("fixture opens");
        r.for_each(&mut |p| {
            out.push(Owned {
                ts: p.ts,
                link_type: p.link_type,
                data: p.data.to_vec(),
            });
            true
        });
    }
    out
}

fn analyse(packets: &[Owned]) -> (Analyzer, usize) {
    let mut a = Analyzer::new(Keyring::new());
    for (i, p) in packets.iter().enumerate() {
        a.ingest(&Packet {
            ts: p.ts,
            frame: i as u64 + 1,
            input: 0,
            link_type: p.link_type,
            data: &p.data,
            orig_len: p.data.len() as u32,
        });
    }
    a.finish();
    (a, packets.len())
}

/// Builds the report and renders it every way `iceview read` can: the rendering must not panic either.
fn render(a: &Analyzer) -> Report {
    let report = Report::build(a.model(), &[], a.net_stats());
    json::write(&report, &mut std::io::sink()).expect("JSON to a sink");
    text::write_packets(&report, &mut std::io::sink()).expect("text to a sink");
    text::write_summary(&report, &mut std::io::sink()).expect("text to a sink");
    report
}

#[test]
fn mutated_captures_through_the_whole_pipeline() {
    let corpus = corpus();
    let mut rng = Rng(0x1CE_0001);
    // 6 rounds over the corpus: every packet kept, plus a mutated copy of a random one after each.
    for round in 0..6 {
        let mut packets = Vec::with_capacity(corpus.len() * 2);
        for p in &corpus {
            packets.push(Owned {
                ts: p.ts,
                link_type: p.link_type,
                data: p.data.clone(),
            });
            let src = &corpus[rng.below(corpus.len())];
            let mut data = src.data.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut data);
            }
            packets.push(Owned {
                ts: src.ts,
                link_type: src.link_type,
                data,
            });
        }
        let (a, n) = analyse(&packets);
        let m = a.model();
        assert!(m.messages.len() <= analysis::MAX_STORED_MESSAGES);
        assert_eq!(
            a.net_stats().packets,
            n as u64,
            "round {round}: every packet counted"
        );
        let damage: u64 = m.stats.decode_errors.values().sum::<u64>()
            + a.net_stats().truncated_ip
            + a.net_stats().bad_ip_header
            + a.net_stats().bad_udp_length
            + a.net_stats().truncated_link
            + m.stats.other;
        assert!(damage > 0, "round {round}: the damage shows in stats");
        let report = render(&a);
        // The undamaged packets are still analysed: the relayed Chromium call is found every round.
        assert!(!report.sessions.is_empty(), "round {round}: sessions still found");
    }
}

#[test]
fn random_bytes_on_every_link_type() {
    let mut rng = Rng(0x1CE_0002);
    let links = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Null,
        LinkType::Loop,
    ];
    let mut packets = Vec::new();
    for i in 0..3000u64 {
        let len = rng.below(120);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        // Half of them start with a plausible IPv4/IPv6 header so they get past the link layer.
        if i % 2 == 0 && len > 1 {
            data[0] = if rng.below(2) == 0 { 0x45 } else { 0x60 };
        }
        packets.push(Owned {
            ts: Timestamp(1_000_000_000 * i),
            link_type: links[rng.below(links.len())],
            data,
        });
    }
    let (a, n) = analyse(&packets);
    assert_eq!(a.net_stats().packets, n as u64);
    render(&a);
}

/// Every UDP payload of the corpus (STUN, ChannelData, RTP, DTLS), as the decoders see them.
fn payloads(corpus: &[Owned]) -> Vec<Vec<u8>> {
    let mut net = Net::new();
    let mut out = Vec::new();
    for (i, p) in corpus.iter().enumerate() {
        let pkt = Packet {
            ts: p.ts,
            frame: i as u64 + 1,
            input: 0,
            link_type: p.link_type,
            data: &p.data,
            orig_len: p.data.len() as u32,
        };
        net.ingest(&pkt, &mut |ev| match ev {
            NetEvent::Udp(dg) => out.push(dg.payload.to_vec()),
            NetEvent::TcpData { datagram, .. } => out.push(datagram.payload.to_vec()),
            _ => {}
        });
    }
    out
}

#[test]
fn mutated_payloads_through_each_decoder() {
    let corpus = corpus();
    let payloads = payloads(&corpus);
    assert!(payloads.len() > 500, "corpus has payloads");
    let keys = Keyring::parse("ice:evtj:x\n").unwrap_or_else(|_| Keyring::new());
    let mut rng = Rng(0x1CE_0003);
    let (mut stun_ok, mut stun_err) = (0, 0);
    for case in 0..20_000 {
        let mut b = payloads[rng.below(payloads.len())].clone();
        mutate(&mut rng, &mut b);
        // The cheap tests must agree with the decoder: whatever passes them decodes or fails cleanly.
        let _ = demux::classify(&b);
        let _ = media::rtp(&b);
        let _ = media::dtls(&b);
        let _ = media::looks_like_tls(&b);
        if stun::looks_like_stun(&b) || stun::looks_like_classic_stun(&b) || case % 4 == 0 {
            match stun::decode(&b, &keys) {
                Ok(m) => {
                    stun_ok += 1;
                    assert!(m.length <= b.len(), "case {case}: span within the datagram");
                }
                Err(e) => {
                    stun_err += 1;
                    assert!(!e.reason.is_empty());
                }
            }
        }
        if let Ok(cd) = channel::parse_udp(&b) {
            assert!(cd.data.len() + channel::HEADER_LEN <= b.len(), "case {case}");
        }
        if let Some(n) = channel::framed_len_tcp(&b) {
            if let Some(frame) = b.get(..n) {
                let _ = channel::parse_tcp(frame);
            }
        }
    }
    assert!(
        stun_ok > 1000 && stun_err > 1000,
        "both paths exercised: {stun_ok} ok, {stun_err} errors"
    );
}

#[test]
fn tcp_framing_of_mutated_streams_in_random_pieces() {
    let corpus = corpus();
    let payloads = payloads(&corpus);
    let mut rng = Rng(0x1CE_0004);
    for case in 0..300 {
        // A stream: a run of real payloads, some mutated, cut into random segment sizes.
        let mut stream = Vec::new();
        for _ in 0..1 + rng.below(20) {
            let mut b = payloads[rng.below(payloads.len())].clone();
            if rng.below(3) == 0 {
                mutate(&mut rng, &mut b);
            }
            stream.extend(b);
        }
        let mut framer = Framer::new();
        let mut pos = 0;
        let mut framed = 0usize;
        while pos < stream.len() {
            let n = (1 + rng.below(300)).min(stream.len() - pos);
            let gap = rng.below(50) == 0;
            framer.push(&stream[pos..pos + n], gap, &mut |f| {
                framed += match f {
                    iceview::wire::framing::Frame::Stun(b)
                    | iceview::wire::framing::Frame::ChannelData(b)
                    | iceview::wire::framing::Frame::Rfc4571(b) => b.len(),
                    iceview::wire::framing::Frame::Skipped { len }
                    | iceview::wire::framing::Frame::Opaque { len, .. } => len,
                };
            });
            assert!(
                framer.pending() <= iceview::wire::framing::MAX_BUFFERED,
                "case {case}: framer holds at most one frame"
            );
            pos += n;
        }
        assert!(
            framed + framer.pending() <= stream.len() + 3,
            "case {case}: no bytes invented"
        );
    }
}

#[test]
fn fragment_storms_stay_bounded() {
    // IPv4 fragments with random ids, offsets, lengths and MF flags, plus mutated real fragments: the
    // reassembly table never exceeds its bound and everything is counted.
    let corpus = corpus();
    let frags: Vec<&Owned> = corpus
        .iter()
        .filter(|p| {
            p.link_type == LinkType::Ethernet
                && p.data.len() > 34
                && p.data[12..14] == [0x08, 0x00]
                && (u16::from_be_bytes([p.data[20], p.data[21]]) & 0x3FFF) != 0
        })
        .collect();
    assert!(!frags.is_empty(), "fragments.pcap has fragments");
    let mut rng = Rng(0x1CE_0005);
    let mut packets = Vec::new();
    for i in 0..4000u64 {
        let mut data = frags[rng.below(frags.len())].data.clone();
        // id, then flags+offset: new datagrams, overlapping and endless fragments.
        let id = rng.next_u64() as u16 % 2000;
        data[18..20].copy_from_slice(&id.to_be_bytes());
        let off = (rng.next_u64() as u16) & 0x3FFF | if rng.below(4) == 0 { 0 } else { 0x2000 };
        data[20..22].copy_from_slice(&off.to_be_bytes());
        if rng.below(5) == 0 {
            mutate(&mut rng, &mut data);
        }
        packets.push(Owned {
            ts: Timestamp(1_000_000 * i),
            link_type: LinkType::Ethernet,
            data,
        });
    }
    let (a, n) = analyse(&packets);
    let s = a.net_stats();
    assert_eq!(s.packets, n as u64);
    assert!(s.fragments > 3000, "fragments counted: {}", s.fragments);
    assert!(
        s.defrag_overlaps
            + s.defrag_dropped_bounds
            + s.defrag_oversize
            + s.defrag_bad_fragment
            + s.defrag_unfinished
            > 0,
        "the storm's damage is counted"
    );
    render(&a);
}

#[test]
fn recorded_channel_data_is_bounded_but_counted() {
    // A long relayed call: the same allocation's ChannelData repeated far past the per-allocation bound.
    let corpus = corpus();
    let relay: Vec<&Owned> = corpus.iter().take(959).collect(); // chrome-relay-udp comes first
    let mut packets = Vec::new();
    // ~900 ChannelData frames a round over at most 3 client/server 5-tuples.
    let rounds = analysis::MAX_STORED_CHANNEL_DATA_PER_ALLOCATION / 250 + 2;
    for r in 0..rounds as u64 {
        for p in &relay {
            packets.push(Owned {
                ts: Timestamp(p.ts.0 + r * 200_000_000_000),
                link_type: p.link_type,
                data: p.data.clone(),
            });
        }
    }
    let (a, _) = analyse(&packets);
    let m = a.model();
    let stored = m
        .messages
        .iter()
        .filter(|r| matches!(r.body, analysis::Body::ChannelData { .. }))
        .count() as u64;
    assert!(m.stats.messages_not_stored > 0, "the bound was reached");
    assert_eq!(
        stored + m.stats.messages_not_stored,
        m.stats.channel_data,
        "every ChannelData frame is either listed or counted as not stored"
    );
    // Every STUN message is still listed.
    let stun = m.messages.iter().filter(|r| m.stun(r).is_some()).count() as u64;
    assert_eq!(stun, m.stats.stun);
}
