//! Helpers shared by the integration tests: run the real binary on a fixture, load oracle files.
#![allow(dead_code)]
pub(crate) mod lab;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture folder holding a capture.pcap, sorted.
pub(crate) fn capture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("capture.pcap").is_file())
        .collect();
    dirs.sort();
    dirs
}

pub(crate) fn iceview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iceview"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the iceview binary runs")
}

/// `iceview read FILE --json -` parsed.
pub(crate) fn report(capture: &Path, extra: &[&str]) -> Value {
    let path = capture.to_str().expect("utf-8 path");
    let mut args = vec!["read", path, "--json", "-"];
    args.extend(extra);
    let out = iceview(&args);
    assert!(
        out.status.success(),
        "iceview read {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

pub(crate) fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The binary with RUST_BACKTRACE=1 (as many machines have it), so a leaked panic or `Debug` error would
/// show its backtrace; `envs` are set on top.
pub(crate) fn iceview_with_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iceview"));
    cmd.args(args).env("RUST_BACKTRACE", "1");
    for key in ["ICEVIEW_JSON", "ICEVIEW_CREDENTIALS", "ICEVIEW_NO_PROGRESS"] {
        cmd.env_remove(key);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the iceview binary runs")
}

/// `iceview read ARGS... --json -` parsed; `args` are everything after `read`.
pub(crate) fn report_of(args: &[&str]) -> Value {
    let mut all = vec!["read"];
    all.extend(args);
    all.extend(["--json", "-"]);
    let out = iceview_with_env(&all, &[]);
    assert!(
        out.status.success(),
        "iceview {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

/// A path under fixtures/ as a string argument.
pub(crate) fn fixture(rel: &str) -> String {
    let p = fixtures().join(rel);
    assert!(p.is_file(), "{} is missing", p.display());
    p.to_str().expect("utf-8 path").to_string()
}

/// The messages of a report that were on the wire (not found inside TURN relaying).
pub(crate) fn wire_messages(report: &Value) -> Vec<Value> {
    report["messages"]
        .as_array()
        .expect("messages[]")
        .iter()
        .filter(|m| m["relayed"] == Value::Bool(false))
        .cloned()
        .collect()
}

/// An oracle file written by scripts/tshark_messages.py (or a bundled tshark-messages.json), without the
/// STUN that tshark found quoted inside ICMP errors (no transport: not delivered, not a message).
pub(crate) fn oracle(path: &Path) -> Vec<Value> {
    load(path)
        .as_array()
        .unwrap_or_else(|| panic!("{} is a list", path.display()))
        .iter()
        .filter(|m| !m["transport"].is_null())
        .cloned()
        .collect()
}

/// Differences between iceview's wire messages and tshark's, message by message: input and frame,
/// timestamp to the microsecond, addresses, transport, kind, method, class, transaction id, classic,
/// error code, attribute types and lengths in order, address values, text values (where tshark shows
/// them unescaped), FINGERPRINT verdicts; channel and length for ChannelData. Empty when they agree.
pub(crate) fn diff_with_tshark(ours: &[Value], theirs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{} messages from iceview, {} from tshark",
            ours.len(),
            theirs.len()
        ));
    }
    for (o, t) in ours.iter().zip(theirs) {
        let at = format!("input {} frame {}", t["input"], t["frame"]);
        let mut diff = |what: &str, a: &Value, b: &Value| {
            if a != b {
                problems.push(format!("{at}: {what}: iceview {a} tshark {b}"));
            }
        };
        diff("frame", &o["frame"], &t["frame"]);
        diff("input", &o["input"], &t["input"]);
        for k in ["src", "dst", "transport", "kind"] {
            diff(k, &o[k], &t[k]);
        }
        let (ots, tts) = (o["ts"].as_f64().unwrap_or(0.0), t["ts"].as_f64().unwrap_or(-1.0));
        // Both sides print whole microseconds (or nanoseconds): half a microsecond apart is another µs.
        if (ots - tts).abs() >= 0.5e-6 {
            diff("ts", &o["ts"], &t["ts"]);
        }
        if t["kind"] == "channel-data" {
            diff("channel", &o["channel"], &t["channel"]);
            diff("length", &o["length"], &t["length"]);
            continue;
        }
        for k in ["method", "class", "transaction_id"] {
            diff(k, &o[k], &t[k]);
        }
        let classic = |m: &Value| m.get("classic").cloned().unwrap_or(Value::Bool(false));
        diff("classic", &classic(o), &classic(t));
        let code = |m: &Value| m.get("error_code").cloned().unwrap_or(Value::Null);
        diff("error_code", &code(o), &code(t));
        let oa = o["attributes"].as_array().cloned().unwrap_or_default();
        let ta = t["attributes"].as_array().cloned().unwrap_or_default();
        let column =
            |v: &[Value], key: &str| Value::from(v.iter().map(|a| a[key].clone()).collect::<Vec<_>>());
        diff("attribute types", &column(&oa, "type"), &column(&ta, "type"));
        diff(
            "attribute lengths",
            &column(&oa, "length"),
            &column(&ta, "length"),
        );
        for (a, b) in oa.iter().zip(&ta) {
            let typ = &b["type"];
            if let Some(addr) = b.get("address") {
                diff(&format!("attribute {typ} address"), &a["value"], addr);
            }
            if let Some(code) = b.get("error_code") {
                diff("ERROR-CODE value", &a["value"]["code"], code);
            }
            let Some(fields) = b["fields"].as_object() else {
                continue;
            };
            for name in ["stun.att.username", "stun.att.realm", "stun.att.software"] {
                // tshark shows control characters escaped ("\x1b"); compare only plain text.
                if let Some(v) = fields
                    .get(name)
                    .filter(|v| !v.as_str().unwrap_or("").contains('\\'))
                {
                    diff(name, &a["value"], v);
                }
            }
            if let Some(v) = fields
                .get("stun.att.error.reason")
                .or(fields.get("classicstun.att.error.reason"))
            {
                if !v.as_str().unwrap_or("").contains('\\') {
                    diff("ERROR-CODE reason", &a["value"]["reason"], v);
                }
            }
            for name in ["stun.att.lifetime", "stun.att.priority"] {
                if let Some(v) = fields.get(name).and_then(Value::as_str) {
                    diff(
                        name,
                        &a["value"],
                        &Value::from(v.parse::<u64>().unwrap_or(u64::MAX)),
                    );
                }
            }
            if let Some(status) = fields.get("stun.att.crc32.status").and_then(Value::as_str) {
                // tshark: 1 = good, 2 = bad.
                let want = if status == "1" { "ok" } else { "bad" };
                diff("FINGERPRINT verdict", &o["fingerprint"], &Value::from(want));
            }
        }
    }
    problems
}

/// Asserts iceview's wire messages agree with an oracle file; returns how many messages were compared.
pub(crate) fn assert_agrees(what: &str, ours: &[Value], oracle_file: &Path) -> usize {
    let theirs = oracle(oracle_file);
    let problems = diff_with_tshark(ours, &theirs);
    assert!(
        problems.is_empty(),
        "{what} vs {}: {} differences:\n{}",
        oracle_file.display(),
        problems.len(),
        problems.join("\n")
    );
    theirs.len()
}

/// No C0 control other than newline, no DEL, no C1 control (as UTF-8, U+0080..U+009F) in `out`.
pub(crate) fn assert_no_raw_controls(out: &[u8]) {
    for (i, &b) in out.iter().enumerate() {
        assert!(
            b == b'\n' || (b >= 0x20 && b != 0x7f),
            "raw control byte {b:#04x} at {i}: {:?}",
            String::from_utf8_lossy(&out[i.saturating_sub(40)..(i + 40).min(out.len())])
        );
        assert!(
            !(b == 0xc2 && out.get(i + 1).is_some_and(|n| (0x80..0xa0).contains(n))),
            "raw C1 control at {i}"
        );
    }
}

/// Whether the tests run as root (network namespaces, live capture, setcap need it; CI runs as root).
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails the test, naming every program of `tools` that is not on PATH. scripts/setup installs them all,
/// so a missing one is a broken setup, never a reason to skip: a skipped test would pass in CI and fail
/// for the next new machine. (The only skips allowed are for tests that need root, when not root.)
pub(crate) fn require_tools(tools: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let on_path = |tool: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| {
                std::fs::metadata(dir.join(tool))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    };
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    assert!(
        missing.is_empty(),
        "not installed: {} (scripts/setup installs them: run it as root or with sudo)",
        missing.join(", ")
    );
}

/// A pcap of `n` Binding requests from one client to one server, each with its own transaction id, and
/// (when `ice`) a USERNAME with its own ufrag pair plus PRIORITY and ICE-CONTROLLING, so each is an ICE
/// check opening a new session. Built byte by byte (Ethernet / IPv4 / UDP checksum 0 / STUN per RFC 8489
/// §5, no FINGERPRINT) from one template whose counters are patched in place.
// Test data: a fixed template's lengths, far below the casts' bounds.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn many_requests(n: u32, ice: bool) -> Vec<u8> {
    let mut stun = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    stun.extend(b"mny!\0\0\0\0txid");
    if ice {
        stun.extend([0x00, 0x06, 0, 17]);
        stun.extend(b"a0000000:b0000000\0\0\0");
        // PRIORITY and ICE-CONTROLLING (RFC 8445 §7.1.1).
        stun.extend([0x00, 0x24, 0, 4, 0x6e, 0, 0x1e, 0xff]);
        stun.extend([0x80, 0x2a, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
    let body = (stun.len() - 20) as u16;
    stun[2..4].copy_from_slice(&body.to_be_bytes());
    let udp_len = 8 + stun.len();
    let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0];
    frame.extend(((20 + udp_len) as u16).to_be_bytes());
    frame.extend([0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 10, 198, 51, 100, 1]);
    frame.extend(50000u16.to_be_bytes());
    frame.extend(3478u16.to_be_bytes());
    frame.extend((udp_len as u16).to_be_bytes());
    frame.extend([0, 0]);
    let stun_at = frame.len();
    frame.extend(&stun);

    let mut f = Vec::with_capacity(24 + n as usize * (16 + frame.len()));
    // pcap header: magic (µs), version 2.4, zone 0, sigfigs 0, snap length 65535, LINKTYPE_ETHERNET.
    f.extend(0xa1b2c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        f.extend(v.to_le_bytes());
    }
    for i in 0..n {
        frame[stun_at + 12..stun_at + 16].copy_from_slice(&i.to_be_bytes());
        if ice {
            let digits = format!("{i:07}");
            frame[stun_at + 25..stun_at + 32].copy_from_slice(digits.as_bytes());
            frame[stun_at + 34..stun_at + 41].copy_from_slice(digits.as_bytes());
        }
        for v in [
            1_795_600_000 + i / 100_000,
            (i % 100_000) * 10,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            f.extend(v.to_le_bytes());
        }
        f.extend_from_slice(&frame);
    }
    f
}
