//! The cargo-fuzz targets' stable, always-run counterpart: each `iceview::fuzzing` entry (the same body the
//! libFuzzer targets in `fuzz/` call, invariants included) over seeds taken from every bundled capture,
//! then over a fixed number of structure-aware mutations of them (bit flips, truncation, 16-bit length
//! fields set to extremes, STUN header/attribute length edits, splices between packets, records dropped,
//! duplicated and reordered). A fixed seed per test, so a failure reproduces exactly; the panic message
//! names the case. Coverage-guided exploration is the long local run documented in fuzz/README.md; what it
//! finds lands in tests/fuzz_regressions.rs.
//!
//! `cargo test --test fuzz_stable -- --ignored write_fuzz_seeds` writes the same seeds, in each target's
//! input format, to fuzz/corpus/<target>/ for that run.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use iceview::capture::file::FileReader;
use iceview::capture::{LinkType, Timestamp};
use iceview::fuzzing::{self, edit_stun_lengths, mutate, splice, Rng};
use iceview::net::link;
use iceview::net::{Net, NetEvent};
use iceview::wire::framing::{Frame, Framer};
use iceview::wire::{channel, stun};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

#[derive(Clone)]
struct Capture {
    link_type: LinkType,
    packets: Vec<(Timestamp, Vec<u8>)>,
}

/// Every classic pcap bundled in fixtures/ (pcapng ones hold the same packets as a pcap beside them).
fn captures() -> Vec<Capture> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::fixtures())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok())
        .flat_map(|dir| std::fs::read_dir(dir.path()).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let mut r = FileReader::open(&[path.display().to_string()], None).expect("fixture opens");
            let mut packets = Vec::new();
            let mut link_type = LinkType::Ethernet;
            r.for_each(&mut |p| {
                link_type = p.link_type;
                packets.push((p.ts, p.data.to_vec()));
                true
            });
            Capture { link_type, packets }
        })
        .collect()
}

/// What `net` hands the decoders, per capture: UDP payloads, and each TCP direction's in-order chunks.
struct Decoded {
    udp: Vec<Vec<u8>>,
    tcp: Vec<Vec<Vec<u8>>>,
}

fn decode_net(c: &Capture) -> Decoded {
    let mut net = Net::new();
    let mut udp = Vec::new();
    let mut tcp: BTreeMap<_, Vec<Vec<u8>>> = BTreeMap::new();
    let mut sink = |ev: NetEvent<'_>| match ev {
        NetEvent::Udp(d) => udp.push(d.payload.to_vec()),
        NetEvent::TcpData { datagram, .. } => tcp
            .entry(datagram.flow)
            .or_default()
            .push(datagram.payload.to_vec()),
        _ => {}
    };
    for (i, (ts, data)) in c.packets.iter().enumerate() {
        net.ingest(
            &iceview::capture::Packet {
                ts: *ts,
                frame: i as u64 + 1,
                input: 0,
                link_type: c.link_type,
                data,
                orig_len: data.len() as u32,
            },
            &mut sink,
        );
    }
    net.finish(&mut sink);
    Decoded {
        udp,
        tcp: tcp.into_values().collect(),
    }
}

/// Seeds for every target, in the target's input format.
struct Seeds {
    stun: Vec<Vec<u8>>,
    channel: Vec<Vec<u8>>,
    /// TCP streams as (ctl, arg, payload) records, before [`fuzzing::tcp_record`] joins them.
    tcp: Vec<Vec<(u8, u8, Vec<u8>)>>,
    /// IP packets as (time step, packet), before [`fuzzing::ip_record`] joins them.
    ip: Vec<Vec<(u8, Vec<u8>)>>,
    /// Captures cut to at most 64 KiB.
    pcap: Vec<Capture>,
}

/// Keeps the first `n` distinct items.
fn distinct(items: impl IntoIterator<Item = Vec<u8>>, n: usize) -> Vec<Vec<u8>> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .into_iter()
        .filter(|b| seen.insert(b.clone()))
        .take(n)
        .collect()
}

fn seeds() -> Seeds {
    let caps = captures();
    let mut stun_msgs = Vec::new();
    let mut channel_frames = Vec::new();
    let mut tcp = Vec::new();
    let mut ip = Vec::new();
    let mut pcap = Vec::new();
    for c in &caps {
        let d = decode_net(c);
        for p in &d.udp {
            if stun::looks_like_stun(p) || stun::looks_like_classic_stun(p) {
                stun_msgs.push(p.clone());
            } else if channel::parse_udp(p).is_ok() {
                channel_frames.push(p.clone());
            }
        }
        for (dir, chunks) in d.tcp.iter().enumerate().take(8) {
            let mut framer = Framer::new();
            for chunk in chunks {
                framer.push(chunk, false, &mut |f| match f {
                    Frame::Stun(b) => stun_msgs.push(b.to_vec()),
                    Frame::ChannelData(b) => channel_frames.push(b.to_vec()),
                    _ => {}
                });
            }
            // One stream per direction: its chunks in order, as the first record of each direction says.
            let records: Vec<_> = chunks
                .iter()
                .take(64)
                .map(|c| (dir as u8, 0, c.clone()))
                .collect();
            if !records.is_empty() {
                tcp.push(records);
            }
        }
        let packets: Vec<(u8, Vec<u8>)> = c
            .packets
            .iter()
            .filter_map(|(_, data)| link::strip(c.link_type, data).ok())
            .take(200)
            .map(|p| (1, p.bytes.to_vec()))
            .collect();
        if !packets.is_empty() {
            ip.push(packets);
        }
        // At most 64 KiB of a capture: libFuzzer's -max_len for this target, and quick to analyse.
        let mut size = 24;
        let packets: Vec<_> = c
            .packets
            .iter()
            .take_while(|(_, d)| {
                size += 16 + d.len();
                size <= 65_536
            })
            .cloned()
            .collect();
        pcap.push(Capture {
            link_type: c.link_type,
            packets,
        });
    }
    // Both directions of the TCP captures' first streams, interleaved, as one input of two directions.
    let two: Vec<_> = tcp.iter().take(2).flatten().cloned().collect();
    tcp.push(two);
    Seeds {
        stun: distinct(stun_msgs, 2000),
        channel: distinct(channel_frames, 500),
        tcp,
        ip,
        pcap,
    }
}

/// Runs `entry` on `input`; on a panic, fails naming the test case and printing the input, so it can be
/// pasted into tests/fuzz_regressions.rs as it is.
fn run(target: &str, case: usize, input: &[u8], entry: fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| entry(input))).is_err() {
        panic!(
            "{target} case {case} failed on input ({} bytes): {input:02x?}",
            input.len()
        );
    }
}

/// One to three mutations; splices take the donor from `pool`.
fn damage(rng: &mut Rng, b: &mut Vec<u8>, pool: &[Vec<u8>], stun_lengths: bool) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(8) {
            0 => {
                let donor = &pool[rng.below(pool.len())];
                splice(rng, b, donor);
            }
            1 if stun_lengths => edit_stun_lengths(rng, b),
            _ => mutate(rng, b),
        }
    }
}

const STUN_CASES: usize = 300_000;
const CHANNEL_DATA_CASES: usize = 300_000;
const TCP_CASES: usize = 3_000;
const IP_CASES: usize = 16_000;
const PIPELINE_CASES: usize = 2_500;

/// A target whose input is one datagram: every seed, then `cases` damaged copies.
fn datagrams(target: &str, seeds: &[Vec<u8>], rng: u64, cases: usize, stun_lengths: bool, entry: fn(&[u8])) {
    for (i, s) in seeds.iter().enumerate() {
        run(&format!("{target} seed"), i, s, entry);
    }
    let mut rng = Rng(rng);
    for case in 0..cases {
        let mut b = seeds[rng.below(seeds.len())].clone();
        damage(&mut rng, &mut b, seeds, stun_lengths);
        run(target, case, &b, entry);
    }
}

#[test]
fn stun_decode_seeds_and_mutations() {
    let seeds = seeds().stun;
    assert!(seeds.len() > 300, "{} STUN seeds", seeds.len());
    datagrams(
        "stun_decode",
        &seeds,
        0xF022_0001,
        STUN_CASES,
        true,
        fuzzing::stun_decode,
    );
}

#[test]
fn channel_data_seeds_and_mutations() {
    let seeds = seeds().channel;
    assert!(seeds.len() > 50, "{} ChannelData seeds", seeds.len());
    datagrams(
        "channel_data",
        &seeds,
        0xF022_0002,
        CHANNEL_DATA_CASES,
        false,
        fuzzing::channel_data,
    );
}

fn tcp_input(records: &[(u8, u8, Vec<u8>)]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|(ctl, arg, p)| fuzzing::tcp_record(*ctl, *arg, p))
        .collect()
}

#[test]
fn tcp_framing_seeds_and_mutations() {
    let seeds = seeds().tcp;
    assert!(seeds.len() >= 3, "{} TCP seeds", seeds.len());
    let chunks: Vec<Vec<u8>> = seeds.iter().flatten().map(|r| r.2.clone()).collect();
    for (i, s) in seeds.iter().enumerate() {
        run("tcp_framing seed", i, &tcp_input(s), fuzzing::tcp_framing);
    }
    let mut rng = Rng(0xF022_0003);
    for case in 0..TCP_CASES {
        let mut records = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(records.len());
            match rng.below(6) {
                // Another direction, SYN/FIN/RST and a sequence mode.
                0 => records[i].0 = rng.next_u64() as u8,
                // A hole, a retransmission, a time step or a snap-length cut.
                1 => records[i].1 = rng.next_u64() as u8,
                2 => {
                    let r = records[i].clone();
                    records.insert(rng.below(records.len() + 1), r);
                }
                3 if records.len() > 1 => {
                    records.remove(i);
                }
                4 => {
                    let j = rng.below(records.len());
                    records.swap(i, j);
                }
                _ => damage(&mut rng, &mut records[i].2, &chunks, true),
            }
        }
        run("tcp_framing", case, &tcp_input(&records), fuzzing::tcp_framing);
    }
}

fn ip_input(packets: &[(u8, Vec<u8>)]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|(dt, p)| fuzzing::ip_record(*dt, p))
        .collect()
}

#[test]
fn ip_defrag_seeds_and_mutations() {
    let seeds = seeds().ip;
    assert!(seeds.len() > 10, "{} IP seeds", seeds.len());
    let all: Vec<Vec<u8>> = seeds.iter().flatten().map(|p| p.1.clone()).collect();
    for (i, s) in seeds.iter().enumerate() {
        run("ip_defrag seed", i, &ip_input(s), fuzzing::ip_defrag);
    }
    let mut rng = Rng(0xF022_0004);
    for case in 0..IP_CASES {
        let seed = &seeds[rng.below(seeds.len())];
        // A window of up to 40 packets keeps each case small.
        let start = rng.below(seed.len());
        let mut packets: Vec<_> = seed[start..].iter().take(1 + rng.below(40)).cloned().collect();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(packets.len());
            match rng.below(6) {
                0 => packets[i].0 = rng.next_u64() as u8,
                1 => {
                    // Fragment fields (IPv4 id, flags and offset) rewritten: overlaps, endless datagrams.
                    if let Some(f) = packets[i].1.get_mut(4..8) {
                        f.copy_from_slice(&(rng.next_u64() as u32).to_be_bytes());
                    }
                }
                2 => {
                    let p = packets[i].clone();
                    packets.insert(rng.below(packets.len() + 1), p);
                }
                3 => {
                    let j = rng.below(packets.len());
                    packets.swap(i, j);
                }
                _ => damage(&mut rng, &mut packets[i].1, &all, false),
            }
        }
        run("ip_defrag", case, &ip_input(&packets), fuzzing::ip_defrag);
    }
}

fn pcap_file(c: &Capture) -> Vec<u8> {
    let refs: Vec<(Timestamp, &[u8])> = c.packets.iter().map(|(t, d)| (*t, d.as_slice())).collect();
    fuzzing::pcap_file(c.link_type, &refs)
}

#[test]
fn pipeline_seeds_and_mutations() {
    let seeds = seeds().pcap;
    assert!(seeds.len() > 20, "{} captures", seeds.len());
    let all: Vec<Vec<u8>> = seeds
        .iter()
        .flat_map(|c| c.packets.iter().map(|p| p.1.clone()))
        .collect();
    for (i, c) in seeds.iter().enumerate() {
        run("pipeline seed", i, &pcap_file(c), fuzzing::pipeline);
    }
    let mut rng = Rng(0xF022_0005);
    for case in 0..PIPELINE_CASES {
        let c = &seeds[rng.below(seeds.len())];
        let start = rng.below(c.packets.len());
        let mut packets: Vec<_> = c.packets[start..]
            .iter()
            .take(1 + rng.below(120))
            .cloned()
            .collect();
        for _ in 0..1 + rng.below(10) {
            let i = rng.below(packets.len());
            match rng.below(4) {
                0 => {
                    let p = packets[i].clone();
                    packets.insert(rng.below(packets.len() + 1), p);
                }
                1 => packets[i].0 = Timestamp(rng.next_u64() % 4_000_000_000_000_000_000),
                _ => damage(&mut rng, &mut packets[i].1, &all, true),
            }
        }
        let mut bytes = pcap_file(&Capture {
            link_type: c.link_type,
            packets,
        });
        // Now and then the file itself: record headers (lengths, times) and the link type.
        if rng.below(4) == 0 {
            mutate(&mut rng, &mut bytes);
        }
        run("pipeline", case, &bytes, fuzzing::pipeline);
    }
}

/// Writes the seeds to fuzz/corpus/<target>/ for a libFuzzer run (see fuzz/README.md).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = common::fixtures().join("../fuzz/corpus");
    let s = seeds();
    let write = |target: &str, inputs: Vec<Vec<u8>>| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (i, b) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), b).expect("seed written");
        }
    };
    write("stun_decode", s.stun.clone());
    write("channel_data", s.channel.clone());
    write("tcp_framing", s.tcp.iter().map(|r| tcp_input(r)).collect());
    write("ip_defrag", s.ip.iter().map(|p| ip_input(p)).collect());
    write("pipeline", s.pcap.iter().map(pcap_file).collect());
}
