//! The whole pipeline from pcap bytes: a classic pcap file (any link type, records as the input says)
//! walked here without libpcap (it needs a file), every record through `Analyzer`, then the report built
//! and written as JSON and text. Seed it with fixtures/*/capture.pcap.
#![no_main]
use iceview::analysis::Analyzer;
use iceview::capture::{LinkType, Packet, Timestamp};
use iceview::report::{json, text, Report};
use iceview::wire::credentials::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(header) = data.get(..24) else { return };
    let le = header[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || header[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |b: &[u8], i: usize| -> u32 {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let Some(link_type) = LinkType::from_dlt((u32_at(header, 20) & 0x0FFF_FFFF) as i32) else {
        return;
    };
    let mut analyzer = Analyzer::new(Keyring::new());
    let mut off = 24;
    let mut frame = 0;
    while let Some(h) = data.get(off..off + 16) {
        let incl = u32_at(h, 8) as usize;
        let Some(pkt) = data.get(off + 16..off + 16 + incl) else {
            break;
        };
        frame += 1;
        analyzer.ingest(&Packet {
            ts: Timestamp(u64::from(u32_at(h, 0)) * 1_000_000_000 + u64::from(u32_at(h, 4)) * 1000),
            frame,
            input: 0,
            link_type,
            data: pkt,
            orig_len: u32_at(h, 12),
        });
        off += 16 + incl;
    }
    analyzer.finish();
    let report = Report::build(analyzer.model(), &[], analyzer.net_stats());
    let _ = json::write(&report, &mut std::io::sink());
    let _ = text::write_summary(&report, &mut std::io::sink());
});
