//! The `turn` report section on the lab captures, judged by independent sources: the agents' own truth
//! (relay candidates they gathered, the password they used), tshark's decoding (every Send/Data
//! indication and ChannelData, counted here per allocation, peer and direction), and the capture taken at
//! the TURN server, which must give the same counters as the client's capture.
mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn allocations(report: &Value) -> Vec<Value> {
    report["turn"]["allocations"]
        .as_array()
        .expect("turn.allocations[]")
        .clone()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The relay candidates the agents gathered, as "ip:port": Chromium's getStats local candidates and its
/// icecandidate events (`pcs.*`), aiortc's local candidates (`peers.*`). With the related (mapped)
/// address for aiortc, which names the allocation's client as the server sees it.
fn truth_relays(truth: &Value) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    if let Some(pcs) = truth["pcs"].as_object() {
        for pc in pcs.values() {
            for c in pc["local_candidates_stats"].as_array().into_iter().flatten() {
                if c["candidateType"] == "relay" {
                    out.insert(format!("{}:{}", s(&c["address"]), c["port"]), None);
                }
            }
            for c in pc["local_candidates_events"].as_array().into_iter().flatten() {
                if c["type"] == "relay" {
                    out.insert(format!("{}:{}", s(&c["address"]), c["port"]), None);
                }
            }
        }
    }
    if let Some(peers) = truth["peers"].as_object() {
        for p in peers.values() {
            for c in p["local_candidates"].as_array().into_iter().flatten() {
                if c["type"] == "relay" {
                    let related = c["related_address"]
                        .as_str()
                        .map(|a| format!("{a}:{}", c["related_port"]));
                    out.insert(format!("{}:{}", s(&c["address"]), c["port"]), related);
                }
            }
        }
    }
    out
}

#[test]
fn relayed_addresses_agree_with_the_agents_relay_candidates() {
    let mut checked = 0;
    let mut captures = 0;
    for dir in capture_dirs() {
        let truth = load(&dir.join("truth.json"));
        let want = truth_relays(&truth);
        let report = report(&dir.join("capture.pcap"), &[]);
        let mut got = BTreeMap::new();
        for a in allocations(&report) {
            let relayed = a["relayed"].as_array().expect("relayed[]");
            if a["state"] == "failed" {
                assert!(
                    relayed.is_empty(),
                    "{}: a failed allocation has no relayed address",
                    dir.display()
                );
                continue;
            }
            // The labs allocate one address family: one relayed address per allocation.
            assert_eq!(relayed.len(), 1, "{}: {a}", dir.display());
            got.insert(s(&relayed[0]), s(&a["client"]));
        }
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{}: relayed addresses",
            dir.display()
        );
        for (relayed, related) in &want {
            if let Some(related) = related {
                // aiortc's relay candidate names its mapped address: on the public segment, the client.
                assert_eq!(&got[relayed], related, "{}: client of {relayed}", dir.display());
            }
        }
        checked += want.len();
        if !want.is_empty() {
            captures += 1;
        }
    }
    // chrome-relay-udp, chrome-relay-tcp, symmetric-relay, turn-tcp, long-call: two relay candidates each.
    assert_eq!((checked, captures), (10, 5));
}

/// Relayed traffic per allocation (client, server, transport) and peer, counted from tshark's records:
/// Send indications by their XOR-PEER-ADDRESS, Data indications likewise, ChannelData by the channel's
/// peer from the ChannelBind requests. Bytes are DATA lengths and ChannelData lengths (padding excluded).
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Count {
    send: u64,
    data: u64,
    cd_to: u64,
    cd_from: u64,
    bytes_to: u64,
    bytes_from: u64,
}

type Key = (String, String, String);

fn tshark_traffic(dir: &Path) -> BTreeMap<Key, BTreeMap<String, Count>> {
    let recs = load(&dir.join("tshark-messages.json"));
    // A record without transport is a datagram quoted inside an ICMP error: never delivered.
    let recs: Vec<&Value> = recs
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| !r["transport"].is_null())
        .collect();
    let key = |r: &Value, up: bool| -> Key {
        let (c, sv) = if up { ("src", "dst") } else { ("dst", "src") };
        (s(&r[c]), s(&r[sv]), s(&r["transport"]))
    };
    let attr = |r: &Value, typ: u64| -> Option<Value> {
        r["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["type"].as_u64() == Some(typ))
            .cloned()
    };
    let mut allocs: BTreeSet<Key> = BTreeSet::new();
    let mut channels: BTreeMap<(Key, u64), String> = BTreeMap::new();
    for r in &recs {
        if r["method"] == "allocate" && r["class"] == "request" {
            allocs.insert(key(r, true));
        }
        if r["method"] == "channel-bind" && r["class"] == "request" {
            let (Some(n), Some(p)) = (attr(r, 0x000C), attr(r, 0x0012)) else {
                continue;
            };
            let n = s(&n["fields"]["stun.att.channelnum"]);
            let n = u64::from_str_radix(n.trim_start_matches("0x"), 16).expect("hex channel");
            channels.insert((key(r, true), n), s(&p["address"]));
        }
    }
    let mut out: BTreeMap<Key, BTreeMap<String, Count>> = BTreeMap::new();
    for r in &recs {
        let data_len = attr(r, 0x0013).and_then(|d| d["length"].as_u64()).unwrap_or(0);
        let peer = attr(r, 0x0012).map(|p| s(&p["address"]));
        if r["kind"] == "stun" && r["class"] == "indication" && r["method"] == "send" {
            let c = out
                .entry(key(r, true))
                .or_default()
                .entry(peer.expect("peer"))
                .or_default();
            c.send += 1;
            c.bytes_to += data_len;
        } else if r["kind"] == "stun" && r["class"] == "indication" && r["method"] == "data" {
            let c = out
                .entry(key(r, false))
                .or_default()
                .entry(peer.expect("peer"))
                .or_default();
            c.data += 1;
            c.bytes_from += data_len;
        } else if r["kind"] == "channel-data" {
            let n = r["channel"].as_u64().expect("channel");
            let len = r["length"].as_u64().expect("length");
            let (k, up) = if allocs.contains(&key(r, true)) {
                (key(r, true), true)
            } else if allocs.contains(&key(r, false)) {
                (key(r, false), false)
            } else {
                panic!("{}: ChannelData outside any allocation: {r}", dir.display());
            };
            let p = channels.get(&(k.clone(), n)).cloned().expect("a bound channel");
            let c = out.entry(k).or_default().entry(p).or_default();
            if up {
                c.cd_to += 1;
                c.bytes_to += len;
            } else {
                c.cd_from += 1;
                c.bytes_from += len;
            }
        }
    }
    out
}

fn our_traffic(report: &Value) -> BTreeMap<Key, BTreeMap<String, Count>> {
    let mut out = BTreeMap::new();
    for a in allocations(report) {
        let k = (s(&a["client"]), s(&a["server"]), s(&a["transport"]));
        let mut peers = BTreeMap::new();
        for t in a["traffic"].as_array().expect("traffic[]") {
            let n = |f: &str| t[f].as_u64().expect(f);
            assert_eq!(
                n("channel_data"),
                n("channel_data_to_peer") + n("channel_data_from_peer")
            );
            peers.insert(
                s(&t["peer"]),
                Count {
                    send: n("send_indications"),
                    data: n("data_indications"),
                    cd_to: n("channel_data_to_peer"),
                    cd_from: n("channel_data_from_peer"),
                    bytes_to: n("bytes_to_peer"),
                    bytes_from: n("bytes_from_peer"),
                },
            );
        }
        assert_eq!(
            a["totals"]["unknown_channel_data"], 0,
            "every channel's peer is known"
        );
        if !peers.is_empty() {
            out.insert(k, peers);
        }
    }
    out
}

#[test]
fn relayed_traffic_counts_agree_with_tshark() {
    let mut allocs = 0;
    let mut carriers = 0;
    for dir in capture_dirs() {
        let want = tshark_traffic(&dir);
        let got = our_traffic(&report(&dir.join("capture.pcap"), &[]));
        assert_eq!(
            got,
            want,
            "{}: relayed traffic per allocation and peer",
            dir.display()
        );
        allocs += want.len();
        carriers += want
            .values()
            .flat_map(|p| p.values())
            .map(|c| c.send + c.data + c.cd_to + c.cd_from)
            .sum::<u64>();
    }
    // Two allocations with traffic in each of the four relay captures; 908 + 905 + 105 + 105 ChannelData
    // and 19 + 17 + 1 + 1 Send/Data indications; long-call: one allocation, 3 relayed datagrams (tshark's
    // count, like the others).
    assert_eq!(allocs, 9, "and long-call's allocation that relayed a check");
    assert_eq!(carriers, 908 + 905 + 105 + 105 + 19 + 17 + 1 + 1 + 3);
}

/// Writes a credentials file for `--credentials` and returns its path.
fn credentials_file(name: &str, user: &str, password: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("iceview-turn-test-{}-{name}.txt", std::process::id()));
    std::fs::write(&path, format!("turn {user} {password}\n")).expect("temp file");
    path
}

fn codes_for(report: &Value, client: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings[]")
        .iter()
        .filter(|f| f["subject"]["allocation"]["client"] == client)
        .map(|f| s(&f["code"]))
        .collect()
}

#[test]
fn bad_credentials_give_an_authentication_finding_and_no_active_allocation() {
    // (capture, the password the client used, the server's password), both from the lab's truth.
    let cases = [
        (
            "chrome-turn-badauth",
            "/turn_server/password_used_by_browser",
            "/turn_server/server_password",
        ),
        (
            "turn-auth-fail",
            "/peers/A/ice_servers/1/credential",
            "/turn_credentials/password",
        ),
    ];
    for (name, used, server) in cases {
        let dir = fixtures().join(name);
        let truth = load(&dir.join("truth.json"));
        let (used, server) = (
            s(truth.pointer(used).expect("used")),
            s(truth.pointer(server).expect("server")),
        );
        assert_ne!(used, server, "{name}: the lab used a wrong password");
        let capture = dir.join("capture.pcap");
        let plain = report(&capture, &[]);
        let allocs = allocations(&plain);
        assert_eq!(allocs.len(), 2, "{name}: one allocation attempt per agent");
        for a in &allocs {
            assert_eq!(a["state"], "failed", "{name}: {a}");
            let client = s(&a["client"]);
            // Without the password iceview cannot say which of the two it was, and says so.
            assert_eq!(
                codes_for(&plain, &client),
                vec!["turn.auth.rejected"],
                "{name} {client}"
            );
            // 401 to the unauthenticated request (the challenge), then 401 to the authenticated retry.
            let errors = a["errors"].as_array().expect("errors[]");
            assert_eq!(errors.len(), 2);
            assert!(errors.iter().all(|e| e["code"] == 401));
            assert!(s(&errors[0]["meaning"]).contains("challenge"));
            assert!(s(&errors[1]["meaning"]).contains("rejected"));
        }
        // With the server's password, the client's MESSAGE-INTEGRITY does not verify: wrong password.
        let right = credentials_file(&format!("{name}-server"), "alice", &server);
        let r = report(&capture, &["--credentials", right.to_str().expect("utf-8")]);
        for a in allocations(&r) {
            assert_eq!(codes_for(&r, &s(&a["client"])), vec!["turn.auth.wrong-password"]);
        }
        // With the password the client used, it verifies, yet the server refused it.
        let client_pw = credentials_file(&format!("{name}-client"), "alice", &used);
        let r = report(&capture, &["--credentials", client_pw.to_str().expect("utf-8")]);
        for a in allocations(&r) {
            assert_eq!(codes_for(&r, &s(&a["client"])), vec!["turn.auth.unknown-user"]);
        }
        let _ = std::fs::remove_file(right);
        let _ = std::fs::remove_file(client_pw);
    }
}

#[test]
fn a_refresh_with_lifetime_zero_deletes_the_allocation() {
    let mut deleted = 0;
    for dir in capture_dirs() {
        let recs = load(&dir.join("tshark-messages.json"));
        // (client, server, transport) → frame of the first Refresh success granting LIFETIME 0.
        let mut want: BTreeMap<Key, u64> = BTreeMap::new();
        for r in recs.as_array().expect("a list") {
            if r["method"] != "refresh" || r["class"] != "success" || r["transport"].is_null() {
                continue;
            }
            let zero = r["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["type"] == 0x000D && a["fields"]["stun.att.lifetime"] == "0");
            if zero {
                let k = (s(&r["dst"]), s(&r["src"]), s(&r["transport"]));
                want.entry(k).or_insert(r["frame"].as_u64().expect("frame"));
            }
        }
        let report = report(&dir.join("capture.pcap"), &[]);
        for a in allocations(&report) {
            let k = (s(&a["client"]), s(&a["server"]), s(&a["transport"]));
            if let Some(frame) = want.get(&k) {
                assert_eq!(a["state"], "deleted", "{}: {k:?}", dir.display());
                assert_eq!(a["expires_at"], Value::Null);
                let ev = a["events"]
                    .as_array()
                    .expect("events[]")
                    .iter()
                    .find(|e| s(&e["what"]).starts_with("deleted"))
                    .expect("a deleted event");
                assert_eq!(ev["frame"].as_u64(), Some(*frame), "{}: {k:?}", dir.display());
                deleted += 1;
            }
        }
    }
    // chrome-relay-udp and chrome-relay-tcp (Chromium closes with LIFETIME 0), symmetric-relay and
    // turn-tcp (aiortc too): two allocations each; long-call: the one coturn had not dropped before the end.
    assert_eq!(deleted, 9);
}

#[test]
fn the_server_side_capture_counts_each_relayed_datagram_once() {
    let mut compared = 0;
    for dir in capture_dirs() {
        let server = dir.join("capture-server.pcap");
        if !server.is_file() {
            continue;
        }
        let strip = |r: &Value| -> Vec<Value> {
            allocations(r)
                .into_iter()
                .map(|a| {
                    serde_json::json!({
                        "key": [a["client"], a["server"], a["transport"]],
                        "relayed": a["relayed"],
                        "state": a["state"],
                        "traffic": a["traffic"],
                        "totals": a["totals"],
                        "permissions": a["permissions"].as_array().map(|p| p.iter().map(|x| x["peer"].clone()).collect::<Vec<_>>()),
                        "channels": a["channels"].as_array().map(|c| c.iter().map(|x| (x["number"].clone(), x["peer"].clone())).collect::<Vec<_>>()),
                    })
                })
                .collect()
        };
        let at_client = strip(&report(&dir.join("capture.pcap"), &[]));
        let at_server = strip(&report(&server, &[]));
        // Both points see every client ↔ server message of these runs (the server capture adds the
        // relay ↔ peer leg, which must not be counted again).
        assert_eq!(at_server, at_client, "{}", dir.display());
        compared += at_client.len();
    }
    // chrome-relay-udp, chrome-relay-tcp (2 allocations with traffic each), chrome-turn-badauth (2
    // failed), chrome-host (none).
    assert_eq!(compared, 6);
}

#[test]
fn the_text_summary_has_a_turn_section() {
    let capture = fixtures().join("chrome-relay-udp/capture.pcap");
    let out = iceview(&["read", capture.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TURN allocations: 2"), "{text}");
    assert!(
        text.contains("198.51.100.5:54920 → 203.0.113.10:3478 udp: DELETED"),
        "{text}"
    );
    assert!(text.contains("relayed 203.0.113.10:50056"), "{text}");
    assert!(text.contains("user \"alice\" realm \"lab.example\""), "{text}");
}

#[test]
fn the_turn_section_is_deterministic() {
    let capture = fixtures().join("chrome-relay-tcp/capture.pcap");
    let a = report(&capture, &[]);
    let b = report(&capture, &[]);
    assert_eq!(a["turn"], b["turn"]);
}

/// fixtures/long-call: coturn dropped B's allocation about 60 s into its 72 s lifetime (its relay socket
/// had failed, coturn.log: "allocation watchdog determined stale session state"), and B's on-time Refresh
/// drew 438 then 437. The refusal is the server's doing: the finding must say so, not blame the client's
/// refresh timer, which the packets contradict. The time left is worked out here from tshark's decoding:
/// the Allocate success's LIFETIME and the time of the Refresh answered 437.
#[test]
fn a_refresh_refused_before_the_lifetime_ran_out_blames_the_server() {
    let oracle = oracle(&fixtures().join("long-call/tshark-messages.json"));
    let refused = oracle
        .iter()
        .find(|m| m["method"] == "refresh" && m["class"] == "error" && m["error_code"] == 437)
        .expect("a Refresh answered 437");
    let client = refused["dst"].as_str().expect("dst");
    let granted = oracle
        .iter()
        .find(|m| m["method"] == "allocate" && m["class"] == "success" && m["dst"] == client)
        .expect("the client's Allocate success");
    let lifetime: f64 = granted["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find_map(|a| a["fields"]["stun.att.lifetime"].as_str())
        .expect("LIFETIME")
        .parse()
        .expect("seconds");
    let left = granted["ts"].as_f64().expect("ts") + lifetime - refused["ts"].as_f64().expect("ts");
    assert!(
        left > 10.0,
        "the refresh went {left} s before the lifetime ran out"
    );
    let report = report(&fixtures().join("long-call/capture.pcap"), &[]);
    let finding = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "turn.refresh.failed")
        .expect("turn.refresh.failed");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("the server ended it early"), "{message}");
    assert!(
        message.contains(&format!("{left:.0} s of its lifetime were left")),
        "{message}"
    );
    assert!(!message.contains("too late"), "{message}");
}
