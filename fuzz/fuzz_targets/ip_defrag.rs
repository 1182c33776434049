//! IPv4/IPv6 fragment storms through `net::Net` (link → IP → reassembly → UDP/TCP): the input is a list
//! of raw IP packets (2-byte length prefix each), every one a fragment the fuzzer shapes freely.
#![no_main]
use iceview::capture::{LinkType, Packet, Timestamp};
use iceview::net::Net;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut net = Net::new();
    let mut rest = data;
    let mut frame = 0u64;
    while let [a, b, tail @ ..] = rest {
        let n = (u16::from_be_bytes([*a, *b]) as usize).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        frame += 1;
        net.ingest(
            &Packet {
                ts: Timestamp(frame * 1_000_000),
                frame,
                input: 0,
                link_type: LinkType::RawIp,
                data: pkt,
                orig_len: pkt.len() as u32,
            },
            &mut |_| {},
        );
        rest = next;
    }
    net.finish(&mut |_| {});
    assert_eq!(net.stats().packets, frame);
});
