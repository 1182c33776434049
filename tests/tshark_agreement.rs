//! iceview's decoding of every fixture capture, message by message, against tshark's (the oracle:
//! Wireshark 4.0.17's STUN dissector, flattened into tshark-messages.json beside each capture).
//!
//! Compared: frame, timestamp, addresses, transport, kind, method, class, transaction id, error code,
//! every attribute's type and length in wire order, every address value, and ChannelData channel and
//! length. Differences that are tshark's, not ours, are handled explicitly below with the RFC that says so.
mod common;
use common::*;
use serde_json::Value;

/// The messages tshark decoded from the wire itself. tshark also decodes the STUN datagram quoted inside
/// an ICMP port-unreachable (its record has no src/dst/transport): that datagram was *not* delivered, so
/// iceview reports it as an unreachable event, not as a message (RFC 8445 §7.2.5.2.1 treats such an ICMP
/// as a failed check).
fn tshark_wire_messages(dir: &std::path::Path) -> (Vec<Value>, Vec<u64>) {
    let all = load(&dir.join("tshark-messages.json"));
    let all = all.as_array().expect("tshark-messages.json is a list").clone();
    let (wire, icmp): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|m| !m["transport"].is_null());
    (
        wire,
        icmp.iter().map(|m| m["frame"].as_u64().unwrap_or(0)).collect(),
    )
}

fn ours_on_wire(report: &Value) -> Vec<Value> {
    report["messages"]
        .as_array()
        .expect("messages[]")
        .iter()
        .filter(|m| m["relayed"] == Value::Bool(false))
        .cloned()
        .collect()
}

fn compare_capture(dir: &std::path::Path) -> usize {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let report = report(&dir.join("capture.pcap"), &[]);
    let ours = ours_on_wire(&report);
    let (theirs, icmp_frames) = tshark_wire_messages(dir);
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{} messages from iceview, {} from tshark",
            ours.len(),
            theirs.len()
        ));
    }
    for (o, t) in ours.iter().zip(theirs.iter()) {
        let frame = t["frame"].as_u64().unwrap_or(0);
        let mut diff = |what: &str, a: &Value, b: &Value| {
            if a != b {
                problems.push(format!("frame {frame}: {what}: iceview {a} tshark {b}"));
            }
        };
        diff("frame", &o["frame"], &t["frame"]);
        for k in ["src", "dst", "transport", "kind"] {
            diff(k, &o[k], &t[k]);
        }
        let dt = (o["ts"].as_f64().unwrap_or(0.0) - t["ts"].as_f64().unwrap_or(-1.0)).abs();
        if dt > 1e-6 {
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
        let their_code = t.get("error_code").cloned().unwrap_or(Value::Null);
        diff(
            "error_code",
            o.get("error_code").unwrap_or(&Value::Null),
            &their_code,
        );
        let oa = o["attributes"].as_array().cloned().unwrap_or_default();
        let ta = t["attributes"].as_array().cloned().unwrap_or_default();
        let types = |v: &[Value], key: &str| v.iter().map(|a| a[key].clone()).collect::<Vec<_>>();
        diff(
            "attribute types",
            &Value::from(types(&oa, "type")),
            &Value::from(types(&ta, "type")),
        );
        diff(
            "attribute lengths",
            &Value::from(types(&oa, "length")),
            &Value::from(types(&ta, "length")),
        );
        for (a, b) in oa.iter().zip(ta.iter()) {
            if let Some(addr) = b.get("address") {
                diff(&format!("attribute {} address", b["type"]), &a["value"], addr);
            }
            if let Some(code) = b.get("error_code") {
                diff("ERROR-CODE value", &a["value"]["code"], code);
            }
            if let Some(f) = b["fields"].as_object() {
                for (field, attr_value) in [
                    ("stun.att.username", &a["value"]),
                    ("stun.att.realm", &a["value"]),
                    ("stun.att.nonce", &a["value"]),
                    ("stun.att.software", &a["value"]),
                ] {
                    if let Some(v) = f.get(field) {
                        diff(field, attr_value, v);
                    }
                }
                for field in ["stun.att.lifetime", "stun.att.priority"] {
                    if let Some(v) = f.get(field).and_then(Value::as_str) {
                        diff(
                            field,
                            &a["value"],
                            &Value::from(v.parse::<u64>().unwrap_or(u64::MAX)),
                        );
                    }
                }
                if let Some(status) = f.get("stun.att.crc32.status").and_then(Value::as_str) {
                    // tshark: 1 = good, 2 = bad.
                    let want = if status == "1" { "ok" } else { "bad" };
                    diff("FINGERPRINT verdict", &o["fingerprint"], &Value::from(want));
                }
            }
        }
    }
    // The ICMP-quoted datagrams are counted as unreachable events instead.
    let unreachable = report["stats"]["net"]["icmp_unreachable"].as_u64().unwrap_or(0);
    if unreachable < icmp_frames.len() as u64 {
        problems.push(format!(
            "tshark saw STUN quoted in ICMP in frames {icmp_frames:?}; iceview counted {unreachable} unreachable"
        ));
    }
    assert!(
        problems.is_empty(),
        "{name}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    theirs.len()
}

#[test]
fn every_fixture_agrees_with_tshark() {
    let dirs = capture_dirs();
    assert!(
        dirs.len() >= 13,
        "expected the 13 bundled captures, found {}",
        dirs.len()
    );
    let mut total = 0;
    for dir in &dirs {
        total += compare_capture(dir);
    }
    // 28+942+955+20+9+18+9+8+10+12+140+17+140 wire messages across the bundled captures, and the
    // long-call capture's 157.
    assert_eq!(total, 2465);
}
