//! The command line as users meet it: the real binary, run with RUST_BACKTRACE=1 so that a panic or an
//! error returned from `main` (which prints its Debug form) would show. Every user error is one line on
//! stderr starting with `iceview: ` and a non-zero exit; a capture cut in the middle of a packet is read up
//! to the cut with a warning; help, completions and the man page exist; wire text is escaped.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use common::*;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch directory for files a test writes, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("iceview-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("temp file written");
        p.to_str().expect("utf-8 temp path").to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the shape of a user error: exit status 1, nothing on stdout, exactly one stderr line that starts
/// with `iceview: ` and contains `needle`, and no trace of a panic or a Debug-printed error.
fn assert_user_error(args: &[&str], needle: &str) {
    let out = iceview_with_env(args, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: exit status; stderr: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    assert!(err.starts_with("iceview: "), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} does not mention {needle:?}"
    );
    assert_no_panic(&err);
}

fn assert_no_panic(err: &str) {
    for bad in ["panicked", "backtrace", "Error {", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "stderr shows {bad:?}:\n{err}");
    }
}

/// A classic pcap global header (little-endian, microseconds) with the given link type.
fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(0xa1b2_c3d4u32.to_le_bytes());
    h.extend(2u16.to_le_bytes());
    h.extend(4u16.to_le_bytes());
    h.extend(0i32.to_le_bytes());
    h.extend(0u32.to_le_bytes());
    h.extend(65535u32.to_le_bytes());
    h.extend(linktype.to_le_bytes());
    h
}

/// Byte offsets of every record header in a little-endian pcap file.
fn record_offsets(pcap: &[u8]) -> Vec<usize> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian µs pcap");
    let mut offsets = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        offsets.push(off);
        let caplen = u32::from_le_bytes([pcap[off + 8], pcap[off + 9], pcap[off + 10], pcap[off + 11]]);
        off += 16 + caplen as usize;
    }
    offsets
}

#[test]
fn user_errors_are_one_line_without_a_backtrace() {
    let tmp = Scratch::new("errors");
    assert_user_error(&["read", "/nonexistent/capture.pcap"], "no such file");
    assert_user_error(&["read", tmp.0.to_str().expect("utf-8")], "");
    assert_user_error(
        &["read", &fixture("extra-crafted/credentials.txt")],
        "not a pcap or pcapng",
    );
    let whole = std::fs::read(fixture("nat-srflx/capture.pcap")).expect("fixture readable");
    assert_user_error(&["read", &tmp.file("cut-header.pcap", &whole[..10])], "truncated");
    assert_user_error(&["read", &tmp.file("empty.pcap", b"")], "truncated");
    // LINKTYPE_USER0 (147): a valid capture of a link type iceview cannot decode.
    let mut user0 = pcap_header(147);
    user0.extend([0u8; 8]); // ts
    user0.extend(4u32.to_le_bytes());
    user0.extend(4u32.to_le_bytes());
    user0.extend([1, 2, 3, 4]);
    assert_user_error(
        &["read", &tmp.file("user0.pcap", &user0)],
        "unsupported link type 147",
    );
    let good = fixture("nat-srflx/capture.pcap");
    assert_user_error(&["read", &good, "udp", "port"], "bad filter expression");
    assert_user_error(
        &["read", "-r", &good, "port", "99999999"],
        "bad filter expression",
    );
    assert_user_error(&["read", "-", "-"], "standard input");
    assert_user_error(
        &["read", &good, "--credentials", "/nonexistent/creds.txt"],
        "cannot read credentials",
    );
    let creds = tmp.file("bad-creds.txt", b"ice only-a-ufrag\n");
    assert_user_error(&["read", &good, "--credentials", &creds], "bad-creds.txt");
    assert_user_error(
        &["read", &good, "--json", "/nonexistent/dir/out.json"],
        "cannot create",
    );
}

/// Unknown options are clap's business: its usage message and exit status 2, as every clap tool does.
#[test]
fn unknown_option_is_a_usage_error() {
    let out = iceview_with_env(&["read", "--bogus", "x.pcap"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: unexpected argument '--bogus'"), "{err}");
    assert_no_panic(&err);
    let out = iceview_with_env(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_no_panic(&stderr(&out));
}

/// A capture cut inside a packet's bytes: the packets before the cut are read, a warning says so, and the
/// exit status is 0. Expected messages: tshark's, for the frames before the cut.
#[test]
fn capture_cut_mid_packet_yields_the_packets_before_it() {
    let tmp = Scratch::new("cut");
    let whole = std::fs::read(fixture("symmetric-relay/capture.pcap")).expect("fixture readable");
    let offsets = record_offsets(&whole);
    let cut_frame = 100; // 1-based
    let at = offsets[cut_frame - 1] + 16 + 10; // ten bytes into its data
    let path = tmp.file("cut.pcap", &whole[..at]);

    let out = iceview_with_env(&["read", &path, "--json", "-"], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_no_panic(&err);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("iceview: warning: "), "{err}");
    assert!(err.contains("middle of a packet"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["inputs"][0]["packets"], (cut_frame - 1) as u64);
    assert!(report["inputs"][0]["warning"].is_string());

    let before: Vec<Value> = oracle(&fixtures().join("symmetric-relay/tshark-messages.json"))
        .into_iter()
        .filter(|m| m["frame"].as_u64().unwrap_or(u64::MAX) < cut_frame as u64)
        .collect();
    let problems = diff_with_tshark(&wire_messages(&report), &before);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(before.len(), 65);

    // The text summary repeats the warning for people reading stdout.
    let out = iceview_with_env(&["read", &path], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning: capture ends in the middle"));
}

#[test]
fn help_completions_and_man_page() {
    let out = iceview_with_env(&["read", "--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for example in [
        "Examples:",
        "iceview read capture.pcapng --json report.json",
        "iceview read a.pcap b.pcap --json -",
        "tcpdump -w - -i eth0 udp | iceview read -",
        "iceview read capture.pcap 'udp port 3478'",
        "--credentials creds.txt",
    ] {
        assert!(help.contains(example), "read --help lacks {example:?}:\n{help}");
    }
    let out = iceview_with_env(&["--help"], &[]);
    assert!(out.status.success());
    for sub in ["read", "completions", "man"] {
        assert!(String::from_utf8_lossy(&out.stdout).contains(sub));
    }
    for (shell, marker) in [
        ("bash", "_iceview()"),
        ("zsh", "#compdef iceview"),
        ("fish", "complete -c iceview"),
    ] {
        let out = iceview_with_env(&["completions", shell], &[]);
        assert!(out.status.success(), "completions {shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "completions {shell}: no {marker:?}");
        assert!(
            script.contains("credentials"),
            "completions {shell} do not know read's options"
        );
    }
    let out = iceview_with_env(&["man"], &[]);
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH iceview 1"), "not a roff man page");
    assert!(man.contains("completions"));
}

/// `iceview ... | head` closes stdout early. That must end quietly: no panic, no message.
fn run_with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iceview starts");
    // Close the read end before the child can write anything: its first write fails with EPIPE.
    drop(child.stdout.take());
    let mut err = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_end(&mut err).expect("stderr read");
    }
    let status = child.wait().expect("iceview finishes");
    Output {
        status,
        stdout: Vec::new(),
        stderr: err,
    }
}

#[test]
fn a_closed_stdout_ends_a_read_quietly() {
    let f = fixture("chrome-relay-udp/capture.pcap");
    for args in [
        vec!["read", &f, "--packets"],
        vec!["read", &f, "--json", "-"],
        vec!["man"],
    ] {
        let out = run_with_closed_stdout(&args);
        assert_no_panic(&stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
    }
}

#[test]
fn a_closed_stdout_ends_completions_quietly() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run_with_closed_stdout(&["completions", shell]);
        assert_no_panic(&stderr(&out));
        assert!(out.status.success(), "completions {shell}: {:?}", out.status);
    }
}

/// Text from the wire never reaches the terminal raw: escapes.pcap (scripts/craft.py) carries ESC, BEL,
/// CR, DEL and the C1 CSI in USERNAME, SOFTWARE, REALM, NONCE and an ERROR-CODE reason phrase.
#[test]
fn packets_lines_escape_terminal_controls() {
    let out = iceview_with_env(
        &["read", &fixture("extra-crafted/escapes.pcap"), "--packets"],
        &[],
    );
    assert!(out.status.success());
    assert_no_raw_controls(&out.stdout);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // One line per message (4, by tshark's count), then the summary.
    assert!(lines[0].contains(r"USERNAME=evil\x1b[2Juser:x"), "{}", lines[0]);
    assert!(
        lines[0].contains(r"SOFTWARE=\x1b]0;pwned\x07tool"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(r"srv\x1b[?1049h\x7f\x0d"), "{}", lines[1]);
    assert!(
        lines[3].contains(r"Unauthorized\x1b[31m RED\u{9b}0m"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains(r"REALM=realm\x1b[5m"), "{}", lines[3]);
    assert!(lines[3].contains(r"SOFTWARE=\x1bcRESET"), "{}", lines[3]);
}

#[test]
fn quiet_prints_nothing_on_stdout_but_still_writes_the_json() {
    let tmp = Scratch::new("quiet");
    let json = tmp.0.join("report.json");
    let json = json.to_str().expect("utf-8");
    let f = fixture("nat-srflx/capture.pcap");
    let out = iceview_with_env(&["read", &f, "-q", "--packets", "--json", json], &[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stderr.is_empty());
    let report = load(Path::new(json));
    assert_eq!(
        wire_messages(&report).len(),
        9,
        "nat-srflx: 9 messages by tshark's count"
    );
    // --packets changes what is printed, not the report: the same JSON as without it (its sessions once
    // went missing with --packets, which built the report whole while sessions were being folded).
    let plain = tmp.0.join("plain.json");
    let plain = plain.to_str().expect("utf-8");
    assert!(iceview_with_env(&["read", &f, "-q", "--json", plain], &[])
        .status
        .success());
    assert_eq!(report["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(report, load(Path::new(plain)));
}

/// `-c N` stops after N packets: exactly tshark's messages of frames 1..=N (`tshark -c N`).
#[test]
fn count_stops_after_n_packets() {
    let f = fixture("symmetric-relay/capture.pcap");
    for n in [1u64, 10, 57] {
        let report = report_of(&[&f, "-c", &n.to_string()]);
        assert_eq!(report["inputs"][0]["packets"], n);
        let first_n: Vec<Value> = oracle(&fixtures().join("symmetric-relay/tshark-messages.json"))
            .into_iter()
            .filter(|m| m["frame"].as_u64().unwrap_or(u64::MAX) <= n)
            .collect();
        let problems = diff_with_tshark(&wire_messages(&report), &first_n);
        assert!(problems.is_empty(), "-c {n}: {}", problems.join("\n"));
    }
    // With a filter, N counts packets that pass it: `udp port 3478` matches frames 1, 2, 3...
    let report = report_of(&[&f, "-c", "5", "udp", "port", "3478"]);
    assert_eq!(report["inputs"][0]["matched"], 5);
}

/// ICEVIEW_CREDENTIALS works like --credentials; ICEVIEW_JSON like --json.
#[test]
fn environment_variables_work_like_options() {
    let capture = fixture("extra-crafted/ipv6.pcap");
    let creds = fixture("extra-crafted/credentials.txt");
    let verdicts = |out: &Output| -> Vec<String> {
        assert!(out.status.success(), "{}", stderr(out));
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        report["messages"]
            .as_array()
            .expect("messages[]")
            .iter()
            .filter_map(|m| m["integrity"]["verdict"].as_str().map(str::to_string))
            .collect()
    };
    let by_option = verdicts(&iceview_with_env(
        &["read", &capture, "--credentials", &creds, "--json", "-"],
        &[],
    ));
    let by_env = verdicts(&iceview_with_env(
        &["read", &capture, "--json", "-"],
        &[("ICEVIEW_CREDENTIALS", &creds)],
    ));
    let without = verdicts(&iceview_with_env(&["read", &capture, "--json", "-"], &[]));
    // craft.py signed 12 messages with these credentials.
    assert_eq!(by_option, vec!["ok".to_string(); 12]);
    assert_eq!(by_env, by_option);
    assert_eq!(without, vec!["unchecked".to_string(); 12]);

    let out = iceview_with_env(&["read", &capture], &[("ICEVIEW_JSON", "-")]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("ICEVIEW_JSON=- puts JSON on stdout");
    assert_eq!(report["schema"], "iceview.report/1");
}

/// `iceview read` keeps the listed messages' bytes in an unlinked temporary file (`TMPDIR`) once they
/// pass a 1 MiB chunk: a capture of 20,000 Binding requests (about 3 MB of STUN) comes out of the JSON
/// with every message's transaction id and SOFTWARE text as the test wrote them, the temporary directory
/// is left empty, and an unusable `TMPDIR` only warns (the bytes then stay in memory) with the same report.
#[test]
fn a_capture_larger_than_memory_chunks_lists_every_message() {
    use iceview::wire::encode::MessageBuilder;
    use iceview::wire::stun::{Method, TransactionId, ATTR_SOFTWARE};
    const N: u32 = 20_000;
    let software = |i: u32| format!("spill {i:05} {}", "y".repeat(100));
    // pcap, LINKTYPE_RAW (101): bare IPv4 packets.
    let mut pcap = 0xA1B2_C3D4u32.to_le_bytes().to_vec();
    pcap.extend_from_slice(&[2, 0, 4, 0]); // version 2.4
    for v in [0u32, 0, 65_535, 101] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..N {
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let mut b = MessageBuilder::request(Method::BINDING, TransactionId(id));
        b.text(ATTR_SOFTWARE, &software(i));
        let stun = b.finish().expect("encodes");
        let udp_len = 8 + stun.len();
        let total = 20 + udp_len;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 2, 198, 51, 100, 1,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&40000u16.to_be_bytes());
        ip.extend_from_slice(&3478u16.to_be_bytes());
        ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&stun);
        for v in [1_800_000_000 + i, 0, total as u32, total as u32] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(&ip);
    }
    let dir = Scratch::new("spill");
    let capture = dir.file("many.pcap", &pcap);
    let tmp = dir.0.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let run = |tmpdir: &str| {
        let out = iceview_with_env(&["read", &capture, "--json", "-"], &[("TMPDIR", tmpdir)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (json, stderr) = run(tmp.to_str().expect("utf-8"));
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp dir").count(),
        0,
        "nothing left behind"
    );
    let report: Value = serde_json::from_slice(&json).expect("JSON");
    let messages = report["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), N as usize);
    for (i, m) in messages.iter().enumerate() {
        let i = i as u32;
        let want_id = format!("{:08x}{}", i, "0".repeat(16));
        assert_eq!(m["transaction_id"].as_str(), Some(want_id.as_str()));
        assert_eq!(
            m["attributes"][0]["value"].as_str(),
            Some(software(i).as_str()),
            "message {i}"
        );
    }
    // No usable temporary directory: a warning, and the same report from memory.
    let (again, stderr) = run("/nonexistent/iceview-test");
    assert!(
        stderr.starts_with("iceview: warning: no temporary file"),
        "{stderr}"
    );
    assert!(again == json, "the same report without the temporary file");
}
