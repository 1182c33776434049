//! Every input iceview reads, against tshark's decoding of the same bytes: pcap (µs, ns) and pcapng, standard
//! input, several files merged by time, trailing BPF filters, each link type, IPv6, IPv4 fragments and
//! classic RFC 3489 STUN.
//!
//! The captures and their oracles are in fixtures/extra-*/ (made by scripts/make-extra-fixtures; each oracle
//! is tshark 4.0.17's decoding flattened by scripts/tshark_messages.py). Expected values come from those
//! oracles, from the bundled tshark-messages.json files, or from how scripts/craft.py built a capture.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// The report without what legitimately differs between two reads of the same packets: the paths.
fn without_paths(mut report: Value) -> Value {
    if let Some(inputs) = report["inputs"].as_array_mut() {
        for i in inputs {
            i["path"] = Value::Null;
        }
    }
    report
}

#[test]
fn pcap_microseconds_nanoseconds_and_pcapng_give_identical_reports() {
    let original = fixture("symmetric-relay/capture.pcap");
    let base = report_of(&[&original]);
    let mut compared = 0;
    for (file, oracle_file) in [
        (
            "extra-formats/symmetric-relay-ns.pcap",
            "extra-formats/symmetric-relay-ns-pcap.tshark.json",
        ),
        (
            "extra-formats/symmetric-relay.pcapng",
            "extra-formats/symmetric-relay-pcapng.tshark.json",
        ),
        (
            "extra-formats/symmetric-relay-ns.pcapng",
            "extra-formats/symmetric-relay-ns-pcapng.tshark.json",
        ),
    ] {
        let report = report_of(&[&fixture(file)]);
        compared += assert_agrees(file, &wire_messages(&report), &fixtures().join(oracle_file));
        // Everything, relayed messages, stats, TURN and findings included, is the same as from the
        // microsecond pcap: only the container changed.
        assert_eq!(
            without_paths(report),
            without_paths(base.clone()),
            "{file} and the µs pcap give different reports"
        );
    }
    assert_agrees(
        "µs pcap",
        &wire_messages(&base),
        &fixtures().join("symmetric-relay/tshark-messages.json"),
    );
    assert_eq!(compared, 3 * 140);
}

fn read_stdin(bytes: &[u8]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args(["read", "-", "--json", "-"])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iceview starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let bytes = bytes.to_vec();
    // Write from another thread: the report may fill the stdout pipe before stdin is drained.
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().expect("iceview finishes");
    writer.join().expect("writer thread").expect("stdin written");
    assert!(
        out.status.success(),
        "iceview read - failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

#[test]
fn standard_input_gives_the_same_report_as_the_file() {
    for file in [
        "chrome-relay-udp/capture.pcap",
        "extra-formats/symmetric-relay-ns.pcapng",
    ] {
        let path = fixture(file);
        let from_stdin = read_stdin(&std::fs::read(&path).expect("fixture readable"));
        assert_eq!(from_stdin["inputs"][0]["path"], "-");
        assert_eq!(
            without_paths(from_stdin),
            without_paths(report_of(&[&path])),
            "{file}: stdin and file differ"
        );
    }
}

/// Two captures of the same failed TURN login, one at the browser and one at the server, interleaved to
/// the microsecond: the merged report is the union of both files' messages in time order, each with its
/// input index and its frame number in that input, exactly as tshark numbers a mergecap of the two.
#[test]
fn merged_inputs_agree_with_mergecap_and_with_the_single_file_reports() {
    let a = fixture("chrome-turn-badauth/capture.pcap");
    let b = fixture("chrome-turn-badauth/capture-server.pcap");
    let merged = report_of(&[&a, &b]);
    assert_eq!(merged["inputs"].as_array().map(Vec::len), Some(2));
    let n = assert_agrees(
        "a + b",
        &wire_messages(&merged),
        &fixtures().join("extra-merge/chrome-turn-badauth-both.tshark.json"),
    );
    assert_eq!(n, 40);

    // The same union derived from the two single-file reports: ordered by time, ties in input order
    // (a stable sort of a's messages followed by b's).
    let mut union: Vec<(f64, u64, Value)> = Vec::new();
    for (input, path) in [&a, &b].into_iter().enumerate() {
        for mut m in report_of(&[path])["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            m["input"] = Value::from(input);
            union.push((m["ts"].as_f64().unwrap_or(0.0), input as u64, m));
        }
    }
    union.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let key = |m: &Value| {
        let mut m = m.clone();
        // Which copy of a datagram seen at both points is the "duplicate" depends on what was read
        // before it; that is the merge's business, not the listing's.
        m.as_object_mut().map(|o| o.remove("duplicate"));
        m
    };
    let expected: Vec<Value> = union.iter().map(|(_, _, m)| key(m)).collect();
    let got: Vec<Value> = merged["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(key)
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
}

/// Three inputs of three link types and eras (Linux SLL, crafted IPv6 over Ethernet, Ethernet).
#[test]
fn three_inputs_of_different_link_types() {
    let files = [
        fixture("chrome-host/capture-server.pcap"),
        fixture("extra-crafted/ipv6.pcap"),
        fixture("nat-srflx/capture.pcap"),
    ];
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let report = report_of(&args);
    let links: Vec<&str> = report["inputs"]
        .as_array()
        .expect("inputs[]")
        .iter()
        .map(|i| i["link_type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(links, ["LINUX_SLL", "EN10MB", "EN10MB"]);
    let n = assert_agrees(
        "three inputs",
        &wire_messages(&report),
        &fixtures().join("extra-merge/three-inputs.tshark.json"),
    );
    assert_eq!(n, 8 + 18 + 9);
}

#[test]
fn trailing_bpf_filter_keeps_the_file_frame_numbers() {
    let path = fixture("symmetric-relay/capture.pcap");
    let report = report_of(&[&path, "udp", "port", "3478"]);
    let n = assert_agrees(
        "udp port 3478",
        &wire_messages(&report),
        &fixtures().join("extra-filter/symmetric-relay-udp-port-3478.tshark.json"),
    );
    // `tcpdump -r capture.pcap 'udp port 3478'` matches 132 of the file's 244 frames, each one STUN or
    // ChannelData by tshark's account; the ICE checks and DTLS between the peers are gone.
    assert_eq!(n, 132);
    assert_eq!(report["inputs"][0]["packets"], 244);
    assert_eq!(report["inputs"][0]["matched"], 132);
}

#[test]
fn repeated_r_files_then_a_filter_over_two_link_types() {
    let a = fixture("turn-tcp/capture.pcap");
    let b = fixture("extra-filter/chrome-relay-tcp-head80.pcap");
    let report = report_of(&["-r", &a, "-r", &b, "tcp"]);
    let n = assert_agrees(
        "-r a -r b tcp",
        &wire_messages(&report),
        &fixtures().join("extra-filter/turn-tcp-and-chrome-head80-tcp.tshark.json"),
    );
    // tshark: 128 messages over TCP in turn-tcp, 55 in the first 80 frames of chrome-relay-tcp (some
    // segments carry two); tcpdump's `tcp` matches 221 and 80 frames.
    assert_eq!(n, 128 + 55);
    assert_eq!(report["inputs"][0]["matched"], 221);
    assert_eq!(report["inputs"][1]["matched"], 80);
    assert!(wire_messages(&report).iter().all(|m| m["transport"] == "tcp"));
}

/// One Ethernet capture rewritten under every other link type by scripts/relink.py. tshark decodes each
/// rewrite exactly like the original (the oracles are equal but for the frame numbers of the link types
/// that cannot carry ARP), and so must iceview.
#[test]
fn every_link_type_gives_the_messages_of_the_ethernet_original() {
    let original = oracle(&fixtures().join("symmetric-relay/tshark-messages.json"));
    let ours_original = report_of(&[&fixture("symmetric-relay/capture.pcap")]);
    let strip_frames = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|m| {
                let mut m = m.clone();
                m.as_object_mut().map(|o| o.remove("frame"));
                m
            })
            .collect()
    };
    let mut compared = 0;
    for (variant, link, keeps_arp) in [
        ("sll2", "LINUX_SLL2", true),
        ("vlan", "EN10MB", true),
        ("qinq", "EN10MB", true),
        ("raw", "RAW", false),
        ("null", "NULL", false),
        ("null-be", "NULL", false),
        ("loop", "LOOP", false),
    ] {
        let file = format!("extra-links/symmetric-relay-{variant}.pcap");
        let oracle_file = fixtures().join(format!("extra-links/symmetric-relay-{variant}.tshark.json"));
        // The rewrite is faithful by tshark's account.
        let theirs = oracle(&oracle_file);
        if keeps_arp {
            assert_eq!(
                theirs, original,
                "{file}: tshark decodes it differently from the original"
            );
        } else {
            assert_eq!(
                strip_frames(&theirs),
                strip_frames(&original),
                "{file}: tshark differs"
            );
        }
        let report = report_of(&[&fixture(&file)]);
        assert_eq!(report["inputs"][0]["link_type"], link, "{file}");
        compared += assert_agrees(&file, &wire_messages(&report), &oracle_file);
        // Relayed messages (which tshark does not decode) too: the same as from the original.
        let ours = report["messages"].as_array().cloned().unwrap_or_default();
        let base = ours_original["messages"].as_array().cloned().unwrap_or_default();
        if keeps_arp {
            assert_eq!(ours, base, "{file}");
        } else {
            assert_eq!(strip_frames(&ours), strip_frames(&base), "{file}");
        }
    }
    assert_eq!(compared, 7 * 140);
}

#[test]
fn ipv6_under_raw_null_loop_and_sll2() {
    let oracle_v6 = oracle(&fixtures().join("extra-crafted/ipv6.tshark.json"));
    for (variant, link) in [
        ("raw", "RAW"),
        ("null", "NULL"),
        ("loop", "LOOP"),
        ("sll2", "LINUX_SLL2"),
    ] {
        let file = format!("extra-links/ipv6-{variant}.pcap");
        let oracle_file = fixtures().join(format!("extra-links/ipv6-{variant}.tshark.json"));
        assert_eq!(
            oracle(&oracle_file),
            oracle_v6,
            "{file}: tshark differs from the Ethernet original"
        );
        let report = report_of(&[&fixture(&file)]);
        assert_eq!(report["inputs"][0]["link_type"], link);
        assert_eq!(assert_agrees(&file, &wire_messages(&report), &oracle_file), 18);
    }
}

/// scripts/craft.py's TURN-over-IPv6 capture: addresses in brackets, IPv6 XOR addresses, extension
/// headers, a message in two IPv6 fragments, ICE checks relayed through Send/Data and ChannelData.
#[test]
fn ipv6_turn_session() {
    let creds = fixture("extra-crafted/credentials.txt");
    let report = report_of(&[&fixture("extra-crafted/ipv6.pcap"), "--credentials", &creds]);
    let n = assert_agrees(
        "ipv6.pcap",
        &wire_messages(&report),
        &fixtures().join("extra-crafted/ipv6.tshark.json"),
    );
    assert_eq!(n, 18);
    let net = &report["stats"]["net"];
    assert_eq!(net["ipv6"], 19);
    assert_eq!(net["fragments"], 2);
    assert_eq!(net["reassembled"], 1);
    // The fragmented Binding request is reported with the frame that completed it (tshark: 16).
    let frag = report["messages"]
        .as_array()
        .expect("messages[]")
        .iter()
        .find(|m| m["transaction_id"] == hex("v6-frag-req1"))
        .expect("the fragmented message is reported");
    assert_eq!(frag["frame"], 16);

    // The relayed ICE checks, as craft.py built them: relayed address [2001:db8:ff::1]:49152 ↔ peer
    // [2001:db8:2::20]:60000, carried in frames 11-14.
    let relayed: Vec<(u64, String, String, String, String)> = report["messages"]
        .as_array()
        .expect("messages[]")
        .iter()
        .filter(|m| m["relayed"] == true)
        .map(|m| {
            (
                m["frame"].as_u64().unwrap_or(0),
                m["src"].as_str().unwrap_or("").to_string(),
                m["dst"].as_str().unwrap_or("").to_string(),
                m["class"].as_str().unwrap_or("").to_string(),
                m["transaction_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let (relay, peer) = ("[2001:db8:ff::1]:49152", "[2001:db8:2::20]:60000");
    let want = |frame, src: &str, dst: &str, class: &str, tid: &str| {
        (
            frame,
            src.to_string(),
            dst.to_string(),
            class.to_string(),
            hex(tid),
        )
    };
    assert_eq!(
        relayed,
        vec![
            want(11, relay, peer, "request", "v6-ice-chk-1"),
            want(12, peer, relay, "success", "v6-ice-chk-1"),
            want(13, relay, peer, "request", "v6-ice-chk-2"),
            want(14, peer, relay, "success", "v6-ice-chk-2"),
        ]
    );
    // craft.py computed every MESSAGE-INTEGRITY with the credentials in credentials.txt: all verify.
    let verdicts: Vec<&str> = report["messages"]
        .as_array()
        .expect("messages[]")
        .iter()
        .filter_map(|m| m["integrity"]["verdict"].as_str())
        .collect();
    assert_eq!(verdicts.len(), 12);
    assert!(verdicts.iter().all(|v| *v == "ok"), "{verdicts:?}");
}

/// Hex of an ASCII transaction id, as craft.py writes them.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// IPv4 fragments: tshark reassembles and shows each message at the frame that completed it (the last to
/// arrive, not the one with the highest offset); a datagram whose second fragment never came is not a
/// message.
#[test]
fn ipv4_fragments_are_reassembled_at_the_completing_frame() {
    let report = report_of(&[&fixture("extra-crafted/fragments.pcap")]);
    let n = assert_agrees(
        "fragments.pcap",
        &wire_messages(&report),
        &fixtures().join("extra-crafted/fragments.tshark.json"),
    );
    assert_eq!(n, 6);
    let frames: Vec<u64> = wire_messages(&report)
        .iter()
        .filter_map(|m| m["frame"].as_u64())
        .collect();
    assert_eq!(frames, [1, 2, 5, 8, 10, 11]);
    let net = &report["stats"]["net"];
    // 3 + 2 + 1 fragments; two datagrams complete, one never does.
    assert_eq!(net["fragments"], 6);
    assert_eq!(net["reassembled"], 2);
    assert_eq!(net["defrag_unfinished"], 1);
    assert_eq!(net["non_ip"], 1, "the ARP frame");
}

/// RFC 3489 Binding on port 3478 (no magic cookie): tshark decodes it as `classicstun`; iceview lists it
/// with `classic: true` and the whole 128-bit transaction id.
#[test]
fn classic_rfc3489_binding() {
    let report = report_of(&[&fixture("extra-crafted/classic.pcap")]);
    let ours = wire_messages(&report);
    let n = assert_agrees(
        "classic.pcap",
        &ours,
        &fixtures().join("extra-crafted/classic.tshark.json"),
    );
    assert_eq!(n, 6);
    for m in &ours {
        assert_eq!(m["classic"], true, "frame {}", m["frame"]);
        assert_eq!(m["transaction_id"].as_str().map(str::len), Some(32));
    }
    assert_eq!(ours[0]["transaction_id"], "0b1d2c3e4f5061728394a5b6c7d8e9fa");
    // RFC 3489 §11.2.4: CHANGE-REQUEST flags 0x6 = change IP and change port.
    assert_eq!(ours[2]["attributes"][0]["type"], 3);
    // Request → response pairs match as transactions: none is left unanswered.
    assert_eq!(ours[5]["error_code"], 400);
}

/// `iceview read --json` writes the report's messages straight from the model (`json::write_streaming` on a
/// lean report), and so does `--packets` (`text::write_packets_from`); the library's `Report::build` holds
/// them all. Both must be the same document, byte for byte, and the same lines, on every bundled capture
/// alone and on a merge of two (whose messages carry `input`).
#[test]
fn streamed_json_is_the_full_report_byte_for_byte() {
    use iceview::analysis::Analyzer;
    use iceview::capture::file::FileReader;
    use iceview::report::{json, text, Report};
    use iceview::wire::credentials::Keyring;
    let mut sets: Vec<Vec<String>> = capture_dirs()
        .iter()
        .map(|d| vec![d.join("capture.pcap").to_string_lossy().into_owned()])
        .collect();
    sets.push(vec![
        fixture("chrome-relay-udp/capture.pcap"),
        fixture("chrome-relay-udp/capture-server.pcap"),
    ]);
    // The hostile captures too: escapes in text, and reports with no sessions, allocations or messages.
    for f in std::fs::read_dir(fixtures().join("hostile"))
        .expect("hostile")
        .flatten()
    {
        if f.path().extension().and_then(|e| e.to_str()) == Some("pcap") {
            sets.push(vec![f.path().to_string_lossy().into_owned()]);
        }
    }
    // And a capture with no packet at all: every array of the report empty.
    let empty = std::env::temp_dir().join(format!("iceview-empty-{}.pcap", std::process::id()));
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&empty, &header).expect("temp file");
    sets.push(vec![empty.to_string_lossy().into_owned()]);
    let (mut no_sessions, mut no_allocations, mut no_messages) = (false, false, false);
    let mut compared = 0;
    for inputs in sets {
        let mut reader = FileReader::open(&inputs, None).expect("fixture opens");
        let mut a = Analyzer::new(Keyring::new());
        a.set_inputs(inputs.len() as u16);
        reader.for_each(&mut |p| {
            a.ingest(p);
            true
        });
        a.finish();
        let full = Report::build(a.model(), &reader.stats(), a.net_stats());
        let lean = Report::build_lean(a.model(), &reader.stats(), a.net_stats());
        assert!(lean.messages.is_empty());
        assert_eq!(full.messages.len(), a.model().messages.len());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        json::write(&full, &mut x).expect("json");
        json::write_streaming(&lean, a.model(), &mut y).expect("json");
        assert!(x == y, "{inputs:?}: streamed JSON differs from the full report's");
        let (mut p, mut q) = (Vec::new(), Vec::new());
        text::write_packets(&full, &mut p).expect("text");
        text::write_packets_from(&lean, a.model(), &mut q).expect("text");
        assert!(p == q, "{inputs:?}: --packets lines made one at a time differ");
        // Each message the TUI makes when it shows it is the full report's.
        for (i, m) in full.messages.iter().enumerate() {
            let one = Report::message(a.model(), i, inputs.len() > 1).expect("a stored message");
            assert_eq!(format!("{one:?}"), format!("{m:?}"), "{inputs:?}: message {i}");
        }
        // The messages are rendered in blocks on all cores: any block size gives the same bytes.
        for block in [1, 3, 7, 64] {
            let mut z = Vec::new();
            json::write_streaming_in_blocks(&lean, a.model(), &mut z, block).expect("json");
            assert!(x == z, "{inputs:?}: blocks of {block}: streamed JSON differs");
        }
        assert_eq!(full.message_summary.total, full.messages.len());
        no_sessions |= full.sessions.is_empty();
        no_allocations |= full.turn.allocations.is_empty();
        no_messages |= full.messages.is_empty();
        compared += 1;
    }
    let _ = std::fs::remove_file(&empty);
    assert!(compared >= 20);
    assert!(no_sessions && no_allocations && no_messages);
}

/// The JSON writer formats messages field by field (`render_message`) rather than through serde; every
/// message of every capture in fixtures/ (hostile ones included: escapes, classic STUN, malformed
/// messages, integrity labels) must come out exactly as serde_json writes its `MessageReport`, with and
/// without the `input` field of merged reads.
#[test]
fn messages_written_field_by_field_match_serde_for_every_fixture_message() {
    use iceview::analysis::Analyzer;
    use iceview::capture::file::FileReader;
    use iceview::report::json::{render_message, render_message_serde};
    use iceview::wire::credentials::Keyring;
    let mut checked = 0;
    let (mut labelled, mut malformed, mut classic, mut relayed) = (false, false, false, false);
    for dir in std::fs::read_dir(fixtures()).expect("fixtures").flatten() {
        for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if !matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
                continue;
            }
            let path = p.to_string_lossy().into_owned();
            // With the crafted captures' credentials, integrity verdicts carry credential labels.
            let keys = std::fs::read_to_string(dir.path().join("credentials.txt"))
                .ok()
                .and_then(|t| Keyring::parse(&t).ok())
                .unwrap_or_default();
            let mut reader = FileReader::open(std::slice::from_ref(&path), None).expect("opens");
            let mut a = Analyzer::new(keys);
            reader.for_each(&mut |pkt| {
                a.ingest(pkt);
                true
            });
            a.finish();
            let model = a.model();
            for m in model.messages.iter() {
                let m = &m;
                let stun = model.stun(m);
                if let Some(msg) = &stun {
                    labelled |= matches!(&msg.integrity, iceview::wire::stun::Verdict::Ok(Some(_)));
                    malformed |= msg.malformed.is_some();
                    classic |= !msg.rfc5389;
                }
                relayed |= model.path(m).relay.is_some();
                for multi in [false, true] {
                    let (mut ours, mut serde) = (Vec::new(), Vec::new());
                    render_message(m, model.path(m), stun.as_ref(), multi, &mut ours).expect("render");
                    render_message_serde(m, model.path(m), stun.as_ref(), multi, &mut serde).expect("render");
                    assert!(
                        ours == serde,
                        "{path} frame {}:\n{}\n---\n{}",
                        m.frame,
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&serde)
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // The rarer fields were among them.
    assert!(labelled && malformed && classic && relayed);
}

/// `iceview read` runs the network layer on the reading thread and the analysis on another, handing
/// events over in batches (`iceview::pipeline`: `NetStage` → `EventBatch` → `apply`). The result must be
/// the same as one `Analyzer::ingest` per packet, whatever the batch boundaries — here every 1, 7 and 4096
/// events, on every bundled capture (TCP reassembly, fragments, relayed and merged captures among them).
#[test]
fn batched_analysis_on_two_threads_equals_packet_by_packet() {
    use iceview::analysis::Analyzer;
    use iceview::capture::file::FileReader;
    use iceview::pipeline;
    use iceview::report::{json, Report};
    use iceview::wire::credentials::Keyring;
    let mut files: Vec<String> = Vec::new();
    for dir in std::fs::read_dir(fixtures()).expect("fixtures").flatten() {
        for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
                files.push(p.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    assert!(files.len() > 30);
    // Every prefix of the hostile TCP capture too: the pipeline frames TCP streams on the reading thread,
    // and a prefix that ends inside a frame must count it as the analysis would.
    let tcp = fixtures().join("hostile/tcp-frames.pcap");
    let prefixes = pcap_prefixes(&tcp);
    files.extend(prefixes.iter().map(|p| p.to_string_lossy().into_owned()));
    let mut incomplete_at_end = 0;
    let render = |a: &Analyzer, r: &FileReader| {
        let mut out = Vec::new();
        json::write(&Report::build(a.model(), &r.stats(), a.net_stats()), &mut out).expect("json");
        out
    };
    for f in &files {
        let one = std::slice::from_ref(f);
        // The crafted captures' credentials: integrity is then checked, by whichever thread decodes.
        let keys = std::path::Path::new(f)
            .parent()
            .and_then(|d| std::fs::read_to_string(d.join("credentials.txt")).ok())
            .and_then(|t| Keyring::parse(&t).ok())
            .unwrap_or_default();
        let mut reader = FileReader::open(one, None).expect("opens");
        let mut seq = Analyzer::new(keys.clone());
        reader.for_each(&mut |p| {
            seq.ingest(p);
            true
        });
        seq.finish();
        let expected = render(&seq, &reader);
        if seq
            .model()
            .stats
            .decode_errors
            .contains_key("tcp-incomplete-frame-at-end")
        {
            incomplete_at_end += 1;
        }
        // Payloads copied into the batches or referred to in the file's mapping, STUN decoded by the
        // analysis or ahead by the network stage (`iceview read` does both).
        for (every, shared) in [(1usize, false), (7, true), (4096, false), (4096, true)] {
            let mut reader = FileReader::open(one, None).expect("opens");
            let mut analyzer = Analyzer::new(keys.clone());
            let opts = pipeline::Options {
                batch_events: every,
                batch_bytes: usize::MAX,
                in_flight: 2,
                share_mapping: shared,
                decode_ahead: shared,
            };
            if shared {
                assert!(reader.mapping().is_some(), "{f}: a single capture file is mapped");
            }
            pipeline::read(&mut reader, &mut analyzer, opts, &mut |_| true);
            assert!(
                render(&analyzer, &reader) == expected,
                "{f}: batches of {every} (shared mapping: {shared}) differ"
            );
        }
    }
    assert!(incomplete_at_end > 0, "no capture ended inside a TCP frame");
    for p in prefixes {
        let _ = std::fs::remove_file(p);
    }
}

/// Each prefix of the classic pcap file `path` (its first 1, 2, ... records) written to a temporary file.
fn pcap_prefixes(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let bytes = std::fs::read(path).expect("capture");
    assert_eq!(
        bytes.get(..4),
        Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]),
        "little-endian microsecond pcap"
    );
    let mut ends = Vec::new();
    let mut at = 24;
    while let Some(h) = bytes.get(at..at + 16) {
        let incl = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        at += 16 + incl;
        ends.push(at.min(bytes.len()));
    }
    ends.iter()
        .enumerate()
        .map(|(i, &end)| {
            let p = std::env::temp_dir().join(format!("iceview-prefix-{}-{i}.pcap", std::process::id()));
            std::fs::write(&p, &bytes[..end]).expect("prefix written");
            p
        })
        .collect()
}

/// What `Analyzer::fold_sessions` changes on the captures `parts`, each moved 700 s after the one before
/// and merged: the JSON report and text summary without folding, and with it (rendered bytes in memory,
/// then spilled), each with the numbers of sessions and allocations folded during the read (before the end
/// folds the rest) and of sessions in all. On the way it checks what the terminal UI works from: the
/// report made whole again from the folded items (`Report::unfold`) is, serialised, the one built
/// without folding.
fn fold_runs(parts: &[&str]) -> Vec<FoldRun> {
    use iceview::capture::file::FileReader;
    use iceview::capture::{LinkType, Timestamp};

    // (time, link type, bytes, original length), each part starting 700 s after the previous one's start.
    let mut packets: Vec<(Timestamp, LinkType, Vec<u8>, u32)> = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let path = fixtures()
            .join(part)
            .join("capture.pcap")
            .to_string_lossy()
            .into_owned();
        let mut reader = FileReader::open(std::slice::from_ref(&path), None).expect("fixture opens");
        let mut first = None;
        let start = 1_800_000_000.0 + 700.0 * k as f64;
        reader.for_each(&mut |p| {
            let t0 = *first.get_or_insert(p.ts.as_secs_f64());
            assert!(
                p.ts.as_secs_f64() - t0 < 600.0,
                "{part}: a part must end long before the next one starts"
            );
            let ts = Timestamp::from_secs_f64(start + (p.ts.as_secs_f64() - t0));
            packets.push((ts, p.link_type, p.data.to_vec(), p.orig_len));
            true
        });
    }
    fold_runs_on(&packets)
}

/// Checks held in the transaction table just before the end, besides [`fold_runs`]'s figures.
/// JSON, text summary, sessions folded during the read, sessions started, allocations folded during the
/// read, and, at the end of the read, the transactions held and the timeline entries frozen.
type FoldRun = (Vec<u8>, Vec<u8>, usize, usize, usize, (usize, u64));

/// A packet as (time, link type, bytes, original length).
type TimedPacket = (
    iceview::capture::Timestamp,
    iceview::capture::LinkType,
    Vec<u8>,
    u32,
);

/// [`fold_runs`] on packets.
fn fold_runs_on(packets: &[TimedPacket]) -> Vec<FoldRun> {
    use iceview::analysis::store::MemorySpill;
    use iceview::analysis::Analyzer;
    use iceview::capture::Packet;
    use iceview::report::{json, text, Report};
    use iceview::tui::data::{Snapshot, Source};
    use iceview::wire::credentials::Keyring;
    use std::sync::Arc;

    let wholes = std::cell::RefCell::new(Vec::new());
    let unread_at_start = std::cell::RefCell::new(Vec::new());
    let slept = std::cell::RefCell::new(Vec::new());
    let run = |fold: Option<Option<Arc<MemorySpill>>>, sleep: bool| {
        let mut a = Analyzer::new(Keyring::new());
        if let Some(spill) = fold {
            a.fold_sessions(
                json::render_folded_session,
                iceview::report::turn::render_folded_allocation,
                json::render_folded_finding,
                spill.map(|s| s as Arc<dyn iceview::analysis::store::Spill>),
            );
        }
        if sleep {
            // Every session and allocation sleeps at every search for quiet ones, and wakes at its next
            // message.
            fn spill() -> Option<Arc<dyn iceview::analysis::store::Spill>> {
                Some(Arc::new(MemorySpill::default()))
            }
            a.sleep_quiet(Some(spill), 0.0);
        }
        for (i, (ts, link_type, data, orig_len)) in packets.iter().enumerate() {
            a.ingest(&Packet {
                ts: *ts,
                frame: i as u64 + 1,
                input: 0,
                link_type: *link_type,
                data,
                orig_len: *orig_len,
            });
        }
        // Folded during the read, before the end folds what is still open.
        slept.borrow_mut().push(a.model().sleep_counts());
        let folded = a.model().ice_folded.session_count();
        let held = (
            a.model().transactions.iter().count(),
            a.model().ice.timeline_entries_frozen(),
        );
        let allocations = a.model().ice_folded.allocation_count();
        a.finish();
        let report = Report::build_lean(a.model(), &[], a.net_stats());
        let mut json_out = Vec::new();
        json::write_streaming(&report, a.model(), &mut json_out).expect("json");
        let mut text_out = Vec::new();
        text::write_summary_with(&report, Some(&a.model().ice_folded), &mut text_out).expect("text");
        let mut whole = report;
        whole.unfold(a.model()).expect("every folded item reads back");
        let mut whole_json = Vec::new();
        json::write(&whole, &mut whole_json).expect("json");
        wholes.borrow_mut().push(whole_json);
        // The terminal UI's way: the snapshot keeps a brief per session and allocation, and reads a
        // folded one back whole only when it is asked for: the same session (timeline and all) and the
        // same allocation as the report made whole.
        let sessions_started = a.model().ice.sessions_started();
        let folded_items = a.model().ice_folded.session_count()
            + a.model().ice_folded.allocation_count()
            + a.model().ice_folded.finding_count();
        let lean = Report::build_lean(a.model(), &[], a.net_stats());
        let snapshot = Snapshot::new(lean, Arc::new(a.into_model()), Source::default())
            .expect("every folded item reads back");
        assert_eq!(snapshot.session_count(), whole.sessions.len());
        assert_eq!(snapshot.allocation_count(), whole.turn.allocations.len());
        let unread = snapshot.unread();
        assert_eq!(
            unread, folded_items,
            "nothing folded is read back whole before it is asked for"
        );
        for (i, w) in whole.sessions.iter().enumerate() {
            let s = snapshot.session(i).expect("a session");
            assert!(entry(s) == entry(w), "session {i}: read back whole, it differs");
        }
        for (i, w) in whole.turn.allocations.iter().enumerate() {
            let al = snapshot.allocation(i).expect("an allocation");
            assert!(
                entry(al) == entry(w),
                "allocation {i}: read back whole, it differs"
            );
        }
        // Its findings likewise: a folded one is read back when a view shows it, as the report made whole
        // has it.
        assert_eq!(snapshot.finding_count(), whole.findings.len());
        for (i, w) in whole.findings.iter().enumerate() {
            assert_eq!(snapshot.finding(i), Some(w), "finding {i}: read back, it differs");
        }
        assert_eq!(snapshot.unread(), 0);
        forget_and_read_back(snapshot, &whole, folded_items);
        unread_at_start.borrow_mut().push(unread);
        (json_out, text_out, folded, sessions_started, allocations, held)
    };
    let runs = vec![
        run(None, false),
        run(Some(None), false),
        run(Some(Some(Arc::new(MemorySpill::default()))), false),
        run(Some(Some(Arc::new(MemorySpill::default()))), true),
    ];
    let slept = slept.into_inner();
    assert!(
        slept[..3].iter().all(|&n| n == [(0, 0), (0, 0)]),
        "sessions and allocations sleep only when asked to: {slept:?}"
    );
    // Sessions that went on after a search (the long calls, and most of a short one's checks) woke.
    // Allocations that folded during the read slept before (folding reads a sleeping one without waking
    // it; one wakes when a message changes it, `turn::sleep`'s tests).
    let [(sessions_slept, sessions_woke), (allocations_slept, _)] = slept[3];
    if runs[0].3 > 0 && runs[1].2 > 0 {
        assert!(sessions_slept > 0 && sessions_woke > 0, "{:?}", slept[3]);
    }
    if runs[1].4 > 0 {
        assert!(allocations_slept > 0, "{:?}", slept[3]);
    }
    let wholes = wholes.into_inner();
    let unread_at_start = unread_at_start.into_inner();
    assert_eq!(
        unread_at_start[0], 0,
        "without folding, the snapshot holds every session and allocation whole"
    );
    if runs[1].2 > 0 {
        assert!(
            unread_at_start[1] > 0 && unread_at_start[2] > 0,
            "folded items left in the temporary file until asked for: {unread_at_start:?}"
        );
    }
    for (k, whole) in wholes.iter().enumerate().skip(1) {
        assert!(
            *whole == wholes[0],
            "run {k}: the report made whole from folded items differs from the unfolded one"
        );
    }
    runs
}

/// A report entry as JSON, for comparing one read back with the whole report's.
fn entry<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

/// The terminal UI keeps what it read back of folded items only while few are kept (`App::trim_cache`):
/// past the bound, all but what the open views show are let go, and read back the same when asked for
/// again. `snapshot` has every item read back whole; `whole` is the report they must equal.
fn forget_and_read_back(
    snapshot: iceview::tui::data::Snapshot,
    whole: &iceview::report::Report,
    folded: usize,
) {
    use iceview::tui::app::{App, Screen};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new(snapshot);
    assert_eq!(app.trim_cache_to(usize::MAX), 0, "within the bound nothing goes");
    assert_eq!(app.snapshot.unread(), 0);
    // Nothing open but the TURN view's selected allocation (the first): all else goes.
    let gone = app.trim_cache_to(0);
    assert_eq!(gone, app.snapshot.unread(), "what went is what is unread now");
    assert!(
        gone + 1 >= folded,
        "past the bound, folded items read back are let go: {gone} of {folded}"
    );
    // Everything reads back again as it was.
    for (i, w) in whole.sessions.iter().enumerate() {
        let s = app.snapshot.session(i).expect("a session reads back again");
        assert!(entry(s) == entry(w), "session {i}: read back again, it differs");
    }
    for (i, w) in whole.turn.allocations.iter().enumerate() {
        let a = app
            .snapshot
            .allocation(i)
            .expect("an allocation reads back again");
        assert!(
            entry(a) == entry(w),
            "allocation {i}: read back again, it differs"
        );
    }
    for (i, w) in whole.findings.iter().enumerate() {
        assert_eq!(
            app.snapshot.finding(i),
            Some(w),
            "finding {i}: read back again, it differs"
        );
    }
    assert_eq!(app.snapshot.unread(), 0);
    // A session open: it and the selected allocation stay (asking for them reads nothing back).
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let open = app.shown_session();
    assert!(
        open.is_some() || whole.sessions.is_empty(),
        "Enter on the home list opens a session"
    );
    if open.is_some() {
        assert_eq!(app.screen(), Screen::Session);
    }
    app.trim_cache_to(0);
    let unread = app.snapshot.unread();
    if let Some(si) = open {
        assert!(app.snapshot.session(si).is_some());
    }
    assert!(whole.turn.allocations.is_empty() || app.snapshot.allocation(0).is_some());
    assert_eq!(app.snapshot.unread(), unread, "what the open views show stayed");
}

/// `iceview read` folds an ICE session once nothing of it has been seen for 45 s of capture time, and a
/// TURN allocation once it is over and as quiet (`iceview::analysis::fold`): its view is rendered then and
/// dropped from memory. Folding must not change the report. Here eight bundled calls, each moved 700 s
/// after the previous one (past a TURN allocation's 600 s lifetime), make one capture in which every call
/// but the last is over long before the end; the JSON report and the text summary with folding (rendered
/// bytes in memory, and spilled) must be byte for byte those without, and sessions and allocations must
/// really have been folded.
#[test]
fn folded_sessions_report_what_unfolded_ones_do() {
    let parts = [
        "chrome-host",
        "chrome-relay-udp",
        "ice-failed",
        "host-direct",
        "nat-srflx",
        "symmetric-relay",
        "chrome-turn-badauth",
        "chrome-relay-tcp",
    ];
    let runs = fold_runs(&parts);
    let (json_plain, text_plain, none, sessions, no_allocations, _) = &runs[0];
    assert_eq!((*none, *no_allocations), (0, 0));
    // Every call but the one whose TURN authentication failed before any check.
    assert!(
        *sessions >= parts.len() - 1,
        "every call has its session: {sessions}"
    );
    for (k, (json_folded, text_folded, folded, _, allocations, _)) in runs.iter().enumerate().skip(1) {
        let spilled = k == 2;
        // The TURN parts' allocations, but the last part's (chrome-relay-tcp), which is still young.
        assert!(
            *allocations >= 4,
            "spilled {spilled}: {allocations} allocations folded"
        );
        // Only the last part's sessions are still open at the end: it started 700 s after the one before.
        assert!(
            *folded >= sessions - 2 && folded < sessions,
            "spilled {spilled}: {folded} of {sessions} sessions folded"
        );
        assert!(json_folded == json_plain, "spilled {spilled}: the JSON differs");
        assert_eq!(
            String::from_utf8_lossy(text_folded),
            String::from_utf8_lossy(text_plain),
            "spilled {spilled}"
        );
    }
}

/// With no ICE session at all, `ice.no-checks` reads the transaction table, which folding empties: a
/// refused allocation (chrome-turn-badauth's 401s) folded 700 s before a STUN-only capture ends must still
/// make it say that no TURN allocation succeeded, as without folding.
#[test]
fn folded_allocations_still_count_for_a_capture_without_sessions() {
    let runs = fold_runs(&["chrome-turn-badauth", "natdiscovery-none"]);
    let (json_plain, _, _, sessions, _, _) = &runs[0];
    assert_eq!(*sessions, 0);
    let plain = String::from_utf8_lossy(json_plain);
    assert!(plain.contains("no TURN allocation succeeded"), "{plain}");
    for (json_folded, text_folded, _, _, allocations, _) in &runs[1..] {
        assert!(*allocations >= 2, "{allocations} allocations folded");
        assert!(json_folded == json_plain, "the JSON differs");
        assert_eq!(
            String::from_utf8_lossy(text_folded),
            String::from_utf8_lossy(&runs[0].1)
        );
    }
}

/// One ICE check or response of [`long_call`], as a raw IPv4/UDP packet (LINKTYPE_RAW).
fn long_call_packet(ts: f64, src: ([u8; 4], u16), dst: ([u8; 4], u16), stun: &[u8]) -> TimedPacket {
    let udp_len = u16::try_from(8 + stun.len()).expect("one datagram");
    let mut ip = vec![0x45, 0];
    ip.extend((20 + udp_len).to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend(src.0);
    ip.extend(dst.0);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = !u16::try_from(sum).expect("folded to 16 bits");
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend(src.1.to_be_bytes());
    ip.extend(dst.1.to_be_bytes());
    ip.extend(udp_len.to_be_bytes());
    ip.extend([0, 0]);
    ip.extend(stun);
    let len = u32::try_from(ip.len()).expect("small");
    (
        iceview::capture::Timestamp::from_secs_f64(1_800_000_000.0 + ts),
        iceview::capture::LinkType::RawIp,
        ip,
        len,
    )
}

/// What [`long_call`] sent, counted as it was built: per direction (A→B, B→A) the check transactions,
/// retransmissions, successes, 487 errors and checks never answered.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    checks: [u64; 2],
    retransmissions: [u64; 2],
    successes: [u64; 2],
    errors: [u64; 2],
    timeouts: [u64; 2],
}

/// A five-minute call between two agents, built message by message: checks and nomination at the start,
/// then a consent check every 5 s each way (RFC 7675 §5.1) with round-trip times that vary, a check
/// retransmitted before its answer, one never answered (retransmitted seven times, RFC 8489 §6.2.1), a 487
/// role conflict, and a second pair whose checks all time out. The capture goes on 20 s after the call.
fn long_call() -> (Vec<TimedPacket>, Sent) {
    use iceview::wire::encode::MessageBuilder;
    use iceview::wire::stun::{self, Class, Method, TransactionId};
    use std::net::SocketAddr;

    let a = ([10, 0, 0, 1], 5000);
    let a2 = ([10, 0, 0, 1], 5002);
    let b = ([10, 0, 0, 2], 6000);
    let sock = |x: ([u8; 4], u16)| SocketAddr::from((x.0, x.1));
    let mut packets = Vec::new();
    let mut sent = Sent::default();
    let mut next_id = 0u32;
    // One check from `from` (0: A, controlling; 1: B) sent at `times` (the first transmission, then
    // retransmissions), answered at `answer` with success or `error` (a 487).
    let mut check = |from: usize,
                     src: ([u8; 4], u16),
                     dst: ([u8; 4], u16),
                     times: &[f64],
                     answer: Option<f64>,
                     error: bool,
                     nominate: bool| {
        next_id += 1;
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&next_id.to_be_bytes());
        id[4] = u8::try_from(from).expect("0 or 1");
        let id = TransactionId(id);
        let mut req = MessageBuilder::request(Method::BINDING, id);
        req.text(
            stun::ATTR_USERNAME,
            if from == 0 { "BBBB:AAAA" } else { "AAAA:BBBB" },
        )
        .u32(stun::ATTR_PRIORITY, 1_853_824_767);
        if from == 0 {
            req.u64(stun::ATTR_ICE_CONTROLLING, 0x1111_2222_3333_4444);
            if nominate {
                req.flag(stun::ATTR_USE_CANDIDATE);
            }
        } else {
            req.u64(stun::ATTR_ICE_CONTROLLED, 0x5555_6666_7777_8888);
        }
        let req = req.fingerprint().finish().expect("request encodes");
        for &t in times {
            packets.push(long_call_packet(t, src, dst, &req));
        }
        sent.checks[from] += 1;
        sent.retransmissions[from] += times.len() as u64 - 1;
        match answer {
            Some(t) => {
                let mut resp = if error {
                    let mut r = MessageBuilder::new(Method::BINDING, Class::Error, id);
                    r.error_code(487, "Role Conflict");
                    sent.errors[from] += 1;
                    r
                } else {
                    let mut r = MessageBuilder::new(Method::BINDING, Class::Success, id);
                    r.xor_address(stun::ATTR_XOR_MAPPED_ADDRESS, sock(src));
                    sent.successes[from] += 1;
                    r
                };
                let resp = resp.fingerprint().finish().expect("response encodes");
                packets.push(long_call_packet(t, dst, src, &resp));
            }
            None => sent.timeouts[from] += 1,
        }
    };
    // RFC 8489 §6.2.1: RTO 500 ms doubling, seven transmissions over 39.5 s.
    let given_up = |t: f64| -> Vec<f64> {
        [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
            .iter()
            .map(|d| t + d)
            .collect()
    };
    check(0, a, b, &[0.0], Some(0.010), false, false);
    check(1, b, a, &[0.002], Some(0.013), false, false);
    check(0, a2, b, &given_up(0.004), None, false, false);
    check(0, a, b, &[0.5], Some(0.512), false, true);
    for k in 1..=60u32 {
        let t = 5.0 * f64::from(k);
        let rtt = 0.001 * f64::from(1 + k % 7);
        match k {
            20 => check(0, a, b, &given_up(t), None, false, false),
            30 => check(1, b, a, &[t + 0.1], Some(t + 0.1 + rtt), true, false),
            40 => check(0, a, b, &[t, t + 0.5], Some(t + 0.5 + rtt), false, false),
            _ => check(0, a, b, &[t], Some(t + rtt), false, false),
        }
        if k != 30 {
            check(1, b, a, &[t + 0.1], Some(t + 0.1 + 2.0 * rtt), false, false);
        }
    }
    // The capture goes on 20 s after the call: a packet of nobody's.
    packets.push(long_call_packet(
        320.0,
        ([10, 0, 0, 9], 1),
        ([10, 0, 0, 8], 2),
        b"end",
    ));
    packets.sort_by_key(|p| p.0);
    (packets, sent)
}

/// A call longer than the 45 s folding waits for keeps checking (consent): during a file read its finished
/// checks settle into their pair's tally and their transactions are retired
/// (`iceview::analysis::ice::settle`), so a long call does not hold every check it ever sent. Settling
/// must not change the report: the JSON and text summary with folding on are byte for byte those
/// without, the per-direction counts are what was sent, and far fewer transactions are held.
#[test]
fn a_long_calls_settled_checks_report_what_unsettled_ones_do() {
    let (packets, sent) = long_call();
    let runs = fold_runs_on(&packets);
    let (json_plain, text_plain, _, sessions, _, (held_plain, frozen_plain)) = &runs[0];
    assert_eq!(*sessions, 1);
    assert_eq!(
        *frozen_plain, 0,
        "nothing settles, so nothing freezes, without folding"
    );
    let report: serde_json::Value = serde_json::from_slice(json_plain).expect("JSON");
    let session = &report["sessions"][0];
    let pairs = session["pairs"].as_array().expect("pairs");
    let mut seen = Sent::default();
    for p in pairs {
        for (d, key) in ["a_to_b", "b_to_a"].iter().enumerate() {
            let dir = &p[key];
            let n = |k: &str| dir[k].as_u64().unwrap_or_else(|| panic!("{key}.{k}: {dir}"));
            seen.checks[d] += n("requests_sent");
            seen.retransmissions[d] += n("retransmissions_sent");
            seen.successes[d] += n("responses_received");
            seen.errors[d] += dir["error_responses_received"]["487"].as_u64().unwrap_or(0);
            seen.timeouts[d] += n("timeouts");
        }
    }
    assert_eq!(seen, sent, "{session}");
    let timeouts = session["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["event"] == "timeout")
        .count() as u64;
    assert_eq!(timeouts, sent.timeouts[0] + sent.timeouts[1]);
    for (k, (json_folded, text_folded, _, _, _, (held, frozen))) in runs.iter().enumerate().skip(1) {
        let spilled = k == 2;
        assert!(json_folded == json_plain, "spilled {spilled}: the JSON differs");
        assert_eq!(
            String::from_utf8_lossy(text_folded),
            String::from_utf8_lossy(text_plain),
            "spilled {spilled}"
        );
        // The entries of settled checks froze (`ice::timeline`), and the report shows them as before.
        assert!(
            *frozen >= 100,
            "spilled {spilled}: {frozen} timeline entries froze"
        );
        // Unsettled: every check of the call. Settled: those of the last 45 s or so (two a 5 s round).
        assert!(
            *held_plain >= 120 && *held <= 30,
            "spilled {spilled}: {held} transactions held, {held_plain} without settling"
        );
    }
}

/// fixtures/long-call: a real 150 s aiortc call whose agents checked consent every ~5 s each way (RFC 7675),
/// 30 consent checks each as the agents themselves counted them (truth.json). `iceview read` settles
/// those quiet for 45 s while the call goes on; the report must be byte for byte the one without settling,
/// count what the agents sent, and show every consent check in the timeline with its transaction id.
#[test]
fn a_real_long_calls_consent_checks_settle_without_changing_the_report() {
    let runs = fold_runs(&["long-call"]);
    let (json_plain, text_plain, _, sessions, _, (held_plain, frozen_plain)) = &runs[0];
    assert_eq!(*sessions, 1);
    assert_eq!(
        *frozen_plain, 0,
        "nothing settles, so nothing freezes, without folding"
    );
    for (k, (json_folded, text_folded, _, _, _, (held, frozen))) in runs.iter().enumerate().skip(1) {
        let spilled = k == 2;
        assert!(json_folded == json_plain, "spilled {spilled}: the JSON differs");
        assert_eq!(
            String::from_utf8_lossy(text_folded),
            String::from_utf8_lossy(text_plain),
            "spilled {spilled}"
        );
        // The consent checks of the call's first minutes froze (`ice::timeline`): every one of them is
        // still in the timeline with its transaction id (below).
        assert!(
            *frozen >= 32,
            "spilled {spilled}: {frozen} timeline entries froze"
        );
        // Without settling every check of the call is held at its end; with it, those of the last 45 s.
        assert!(
            *held * 2 < *held_plain,
            "spilled {spilled}: {held} transactions held, {held_plain} without settling"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(json_plain).expect("JSON");
    let truth = common::load(&fixtures().join("long-call/truth.json"));
    let s = &report["sessions"][0];
    let selected = s["selected_pair"]["index"].as_u64().expect("a selected pair") as usize;
    let pair = &s["pairs"][selected];
    for peer in ["A", "B"] {
        let t = &truth["peers"][peer];
        let ufrag = t["local_ufrag"].as_str().expect("ufrag");
        let dir = if s["agents"][0]["ufrag"] == ufrag {
            "a_to_b"
        } else {
            "b_to_a"
        };
        let consent: Vec<&str> = t["consent_transaction_ids"]
            .as_array()
            .expect("consent ids")
            .iter()
            .map(|v| v.as_str().expect("id"))
            .collect();
        assert_eq!(consent.len(), 30, "{peer}");
        assert_eq!(pair[dir]["consent_requests_sent"], consent.len(), "{peer}");
        assert_eq!(
            pair[dir]["responses_received"],
            t["counts"]["consent_responses_received"].as_u64().expect("count") + 1,
            "{peer}: its consent checks and the check before them"
        );
        for id in consent {
            assert!(
                s["timeline"]
                    .as_array()
                    .expect("timeline")
                    .iter()
                    .any(|e| { e["event"] == "check" && e["from"] == ufrag && e["transaction_id"] == id }),
                "{peer}: consent check {id} is not in the timeline"
            );
        }
    }
}
