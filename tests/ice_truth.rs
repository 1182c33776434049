//! ICE sessions reconstructed by iceview from packets alone, against what the ICE agents themselves
//! reported (truth.json: aiortc's agent state and every STUN message it sent; Chromium's getStats).
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One agent as the truth describes it: its ufrag, final state, and the candidate it reached the other
/// agent on as the *other* agent saw it (the remote candidate of the other's selected pair), which is what
/// the wire shows at a capture point between them.
struct TruthAgent {
    ufrag: String,
    connected: bool,
    /// (address, candidate type) of this agent's local candidates and of the other agent's view of it.
    candidates: BTreeSet<(String, String)>,
    /// The other agent's remote candidate of its selected pair: this agent's selected address on the wire.
    seen_by_peer: Option<(String, String)>,
}

fn addr(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn cand(c: &Value) -> Option<(String, String)> {
    let ip = c["address"].as_str()?;
    let port = c["port"].as_u64()?;
    let typ = c["type"].as_str().or_else(|| c["candidateType"].as_str())?;
    Some((addr(ip, port), typ.to_string()))
}

fn truth_agents(truth: &Value) -> Vec<TruthAgent> {
    let mut out = Vec::new();
    if let Some(peers) = truth["peers"].as_object() {
        let list: Vec<&Value> = peers.values().collect();
        for (i, p) in list.iter().enumerate() {
            let other = list[1 - i];
            let mut candidates: BTreeSet<(String, String)> = p["local_candidates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(cand)
                .collect();
            candidates.extend(
                p["selected_pair_local_srflx_same_base"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(cand),
            );
            candidates.extend(
                other["check_list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| cand(&c["remote"])),
            );
            let seen_by_peer = cand(&other["selected_pair"]["remote"]);
            out.push(TruthAgent {
                ufrag: p["local_ufrag"].as_str().unwrap().to_string(),
                connected: matches!(p["final_ice_state"].as_str(), Some("completed" | "connected")),
                candidates,
                seen_by_peer,
            });
        }
    } else if let Some(pcs) = truth["pcs"].as_object() {
        let list: Vec<&Value> = pcs.values().collect();
        for (i, pc) in list.iter().enumerate() {
            let other = list[1 - i];
            let mut candidates: BTreeSet<(String, String)> = pc["local_candidates_stats"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(cand)
                .collect();
            candidates.extend(
                other["remote_candidates_stats"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(cand),
            );
            let seen_by_peer = cand(&other["selected_candidate_pair"]["remote"]);
            out.push(TruthAgent {
                ufrag: pc["local_ice"]["ufrag"].as_str().unwrap().to_string(),
                connected: truth["connected"] == Value::Bool(true),
                candidates,
                seen_by_peer,
            });
        }
    }
    out
}

fn session_for<'a>(report: &'a Value, ufrags: &[&str]) -> Option<&'a Value> {
    report["sessions"].as_array()?.iter().find(|s| {
        let ours: BTreeSet<&str> = s["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ufrag"].as_str().unwrap())
            .collect();
        ufrags.iter().all(|u| ours.contains(u))
    })
}

fn agent_index(session: &Value, ufrag: &str) -> usize {
    session["agents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["ufrag"] == ufrag)
        .unwrap()
}

#[test]
fn outcome_and_selected_pair_agree_with_the_agents() {
    let mut checked = 0;
    for dir in capture_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let truth = load(&dir.join("truth.json"));
        let report = report(&dir.join("capture.pcap"), &[]);
        let agents = truth_agents(&truth);
        let ice_ran = agents.len() == 2
            && !truth["pcs"].as_object().is_some_and(|p| {
                // chrome-turn-badauth: no candidates were gathered, ICE never started.
                p.values().all(|pc| {
                    pc["selected_candidate_pair"]
                        .as_object()
                        .is_none_or(|o| o.is_empty())
                }) && truth["connected"] != Value::Bool(true)
            });
        if !ice_ran {
            assert!(
                report["sessions"].as_array().unwrap().is_empty(),
                "{name}: no ICE agents ran, but iceview reports sessions"
            );
            continue;
        }
        let ufrags: Vec<&str> = agents.iter().map(|a| a.ufrag.as_str()).collect();
        let s = session_for(&report, &ufrags).unwrap_or_else(|| panic!("{name}: no session for {ufrags:?}"));
        let want = if agents.iter().all(|a| a.connected) {
            "connected"
        } else {
            "failed"
        };
        assert_eq!(s["outcome"], want, "{name}: outcome ({})", s["outcome_reason"]);
        checked += 1;
        if want != "connected" {
            assert!(
                s["selected_pair"].is_null(),
                "{name}: a failed session has no selected pair"
            );
            continue;
        }
        // The selected pair on the wire: each agent's address as the other agent saw it.
        let sel = &s["selected_pair"];
        for agent in &agents {
            let (want_addr, want_type) = agent
                .seen_by_peer
                .clone()
                .expect("a connected agent has a selected pair");
            let side = if agent_index(s, &agent.ufrag) == 0 {
                "a"
            } else {
                "b"
            };
            assert_eq!(
                sel[side].as_str(),
                Some(want_addr.as_str()),
                "{name}: selected pair address of {}",
                agent.ufrag
            );
            assert_eq!(
                sel[&format!("{side}_type")].as_str(),
                Some(want_type.as_str()),
                "{name}: selected pair candidate type of {} ({want_addr})",
                agent.ufrag
            );
        }
    }
    // Ten captures ran ICE: 3 Chromium, 7 aiortc (the natdiscovery ones and chrome-turn-badauth did not).
    assert_eq!(checked, 10);
}

#[test]
fn every_candidate_iceview_reports_is_one_the_agents_had() {
    for dir in capture_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let truth = load(&dir.join("truth.json"));
        let report = report(&dir.join("capture.pcap"), &[]);
        let agents = truth_agents(&truth);
        for s in report["sessions"].as_array().unwrap() {
            for c in s["candidates"].as_array().unwrap() {
                let ufrag = c["agent"].as_str().unwrap();
                let agent = agents
                    .iter()
                    .find(|a| a.ufrag == ufrag)
                    .expect("session agents are the truth's agents");
                let key = (
                    c["address"].as_str().unwrap().to_string(),
                    c["candidate_type"].as_str().unwrap().to_string(),
                );
                assert!(
                    agent.candidates.contains(&key),
                    "{name}: iceview reports {key:?} for {ufrag} ({}), not among the agents' own candidates {:?}",
                    c["inferred_from"],
                    agent.candidates
                );
            }
        }
    }
}

/// aiortc records every STUN message it sent and received. Each check transaction of an agent that is
/// visible on the wire must be attributed to that agent, on a pair of its session, with every
/// transmission, and each success it received must be on record.
#[test]
fn aiortc_checks_are_attributed_to_the_agent_that_sent_them() {
    let mut total = 0;
    for dir in capture_dirs() {
        let truth = load(&dir.join("truth.json"));
        let Some(peers) = truth["peers"].as_object() else {
            continue;
        };
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let report = report(&dir.join("capture.pcap"), &[]);
        // Transaction ids of requests on the wire (tshark), relayed ones included via our relayed list.
        let wire: BTreeSet<String> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["class"] == "request" && m["method"] == "binding")
            .filter_map(|m| m["transaction_id"].as_str().map(str::to_string))
            .collect();
        for p in peers.values() {
            let ufrag = p["local_ufrag"].as_str().unwrap();
            let mut sent: BTreeMap<String, usize> = BTreeMap::new();
            let mut answered: BTreeSet<String> = BTreeSet::new();
            for m in p["stun_messages"].as_array().unwrap() {
                if m["layer"] != "ice"
                    || m["method"] != "BINDING"
                    || m["username"].is_null() && m["dir"] == "tx"
                {
                    continue;
                }
                let id = m["transaction_id"].as_str().unwrap().to_string();
                match (m["dir"].as_str(), m["class"].as_str()) {
                    (Some("tx"), Some("REQUEST")) => *sent.entry(id).or_insert(0) += 1,
                    (Some("rx"), Some("RESPONSE")) => {
                        answered.insert(id);
                    }
                    _ => {}
                }
            }
            let s =
                session_for(&report, &[ufrag]).unwrap_or_else(|| panic!("{name}: no session with {ufrag}"));
            let timeline = s["timeline"].as_array().unwrap();
            for (id, transmissions) in &sent {
                if !wire.contains(id) {
                    continue; // sent to an address the capture point never saw (e.g. the other LAN)
                }
                total += 1;
                let events: Vec<&Value> = timeline
                    .iter()
                    .filter(|e| e["transaction_id"] == id.as_str())
                    .collect();
                let checks = events
                    .iter()
                    .filter(|e| e["event"] == "check" || e["event"] == "retransmission")
                    .count();
                assert!(
                    events
                        .iter()
                        .filter(|e| e["event"] == "check")
                        .all(|e| e["from"] == ufrag),
                    "{name}: check {id} attributed to the wrong agent"
                );
                assert_eq!(checks, *transmissions, "{name}: transmissions of {id} by {ufrag}");
                let success = events.iter().any(|e| e["event"] == "success");
                assert_eq!(success, answered.contains(id), "{name}: success of {id}");
            }
        }
    }
    assert!(total >= 20, "only {total} aiortc check transactions compared");
}

/// Chromium's getStats for the selected pair (taken at t_stats_ms) against the checks iceview saw on the
/// same pair up to that moment.
#[test]
fn chromium_selected_pair_counters_match_get_stats() {
    for name in ["chrome-host", "chrome-relay-udp", "chrome-relay-tcp"] {
        let dir = fixtures().join(name);
        let truth = load(&dir.join("truth.json"));
        let report = report(&dir.join("capture.pcap"), &[]);
        let t_stats = truth["t_stats_ms"].as_f64().unwrap() / 1000.0;
        let s = &report["sessions"][0];
        let sel = s["selected_pair"]["index"].as_u64().unwrap();
        let events: Vec<&Value> = s["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["pair"] == sel && e["ts"].as_f64().unwrap() <= t_stats)
            .collect();
        let count = |from: &str, what: &str| {
            events
                .iter()
                .filter(|e| e["from"] == from && e["event"] == what)
                .count()
        };
        for pc in truth["pcs"].as_object().unwrap().values() {
            let me = pc["local_ice"]["ufrag"].as_str().unwrap();
            let other = s["agents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["ufrag"].as_str().unwrap())
                .find(|u| *u != me)
                .unwrap();
            let stats = &pc["selected_candidate_pair"]["pair"];
            let get = |k: &str| stats[k].as_u64().unwrap() as usize;
            assert_eq!(
                count(me, "check"),
                get("requestsSent"),
                "{name} {me}: requestsSent"
            );
            assert_eq!(
                count(other, "success"),
                get("responsesReceived"),
                "{name} {me}: responsesReceived"
            );
            assert_eq!(
                count(me, "success"),
                get("responsesSent"),
                "{name} {me}: responsesSent"
            );
            // requestsReceived counts checks that reached this agent. A check relayed by TURN leaves one
            // allocation and enters the other, so a client-side capture of a relay↔relay call sees it twice;
            // one seen only leaving was dropped by the server (it arrived before the receiver's
            // CreatePermission, RFC 8656 §9) and never reached the agent.
            let delivered = delivered_checks(&report, &events, other);
            assert_eq!(
                delivered,
                get("requestsReceived"),
                "{name} {me}: requestsReceived"
            );
        }
    }
}

fn delivered_checks(report: &Value, events: &[&Value], sender: &str) -> usize {
    let ids: Vec<&str> = events
        .iter()
        .filter(|e| e["from"] == sender && e["event"] == "check")
        .filter_map(|e| e["transaction_id"].as_str())
        .collect();
    let messages = report["messages"].as_array().unwrap();
    ids.iter()
        .filter(|id| {
            let copies: Vec<&Value> = messages
                .iter()
                .filter(|m| m["transaction_id"] == **id && m["class"] == "request")
                .collect();
            let relayed = copies.iter().any(|m| m["relayed"] == Value::Bool(true));
            !relayed || copies.iter().any(|m| m["duplicate"] == Value::Bool(true))
        })
        .count()
}

#[test]
fn failed_capture_explains_unanswered_checks() {
    let report = report(&fixtures().join("ice-failed/capture.pcap"), &[]);
    let s = &report["sessions"][0];
    assert_eq!(s["outcome"], "failed");
    let pairs = s["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1);
    // Both agents sent one check transaction, 7 transmissions each (RFC 8489 Rc = 7), none answered.
    for dir in ["a_to_b", "b_to_a"] {
        let d = &pairs[0][dir];
        assert_eq!(d["requests_sent"], 1, "{dir}");
        assert_eq!(d["retransmissions_sent"], 6, "{dir}");
        assert_eq!(d["responses_received"], 0, "{dir}");
        assert_eq!(d["timeouts"], 1, "{dir}");
    }
    assert_eq!(pairs[0]["state"], "failed");
}

fn finding_codes(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Findings follow from the lab's configuration (truth.json topology): which NAT was symmetric, whether
/// UDP between the NATs was blocked, whether the TURN password was wrong.
#[test]
fn findings_follow_from_the_lab_topology() {
    for dir in capture_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let truth = load(&dir.join("truth.json"));
        let report = report(&dir.join("capture.pcap"), &[]);
        let codes = finding_codes(&report);
        let has = |code: &str| codes.iter().any(|(_, c)| c == code);
        let nats = truth["topology"]["nat"].as_object();
        let symmetric = nats.is_some_and(|n| n.values().any(|v| v["type"] == "symmetric"));
        let udp_blocked = truth["topology"]["udp_blocked_between_nats"] == Value::Bool(true);
        let agents = truth_agents(&truth);
        let connected = agents.len() == 2 && agents.iter().all(|a| a.connected);
        let relayed_call = report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["selected_pair"]["a_type"] == "relay" || s["selected_pair"]["b_type"] == "relay");

        if udp_blocked {
            assert!(
                has("ice.failed.no-response"),
                "{name}: UDP between the NATs was blocked: {codes:?}"
            );
        }
        if symmetric && connected && !name.starts_with("natdiscovery") {
            assert!(
                has("nat.address-dependent-mapping"),
                "{name}: NAT1 was symmetric: {codes:?}"
            );
            assert!(
                has("ice.only-relay-succeeded"),
                "{name}: direct pairs cannot work through a symmetric NAT: {codes:?}"
            );
        }
        if connected && !relayed_call {
            assert!(!has("ice.only-relay-succeeded"), "{name}: {codes:?}");
        }
        if connected {
            let errors: Vec<&(String, String)> = codes
                .iter()
                .filter(|(s, c)| s == "error" && c.starts_with("ice."))
                .collect();
            assert!(
                errors.is_empty(),
                "{name}: the call connected, yet ICE errors: {errors:?}"
            );
        }
    }
    // The bad TURN password in Chromium: no candidates, ICE never started.
    let report = report(&fixtures().join("chrome-turn-badauth/capture.pcap"), &[]);
    assert!(finding_codes(&report).contains(&("error".to_string(), "ice.no-checks".to_string())));
}

/// ice-failed: the finding's evidence starts with the first check each agent sent (tshark's frames).
#[test]
fn failure_evidence_points_at_the_first_checks() {
    let dir = fixtures().join("ice-failed");
    let tshark = load(&dir.join("tshark-messages.json"));
    let mut first_checks: Vec<u64> = Vec::new();
    let mut seen_src = BTreeSet::new();
    for m in tshark.as_array().unwrap() {
        let is_check = m["method"] == "binding"
            && m["class"] == "request"
            && m["attributes"].as_array().unwrap().iter().any(|a| a["type"] == 6);
        if is_check && seen_src.insert(m["src"].as_str().unwrap().to_string()) {
            first_checks.push(m["frame"].as_u64().unwrap());
        }
    }
    assert_eq!(first_checks.len(), 2);
    let report = report(&dir.join("capture.pcap"), &[]);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "ice.failed.no-response")
        .unwrap();
    let frames: Vec<u64> = f["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(frames[..2], first_checks[..]);
}

/// Passive NAT insight against the lab's NAT configuration (truth.json topology): iptables MASQUERADE is
/// endpoint-independent mapping with address-and-port-dependent filtering; `--random-fully` maps per
/// destination ("symmetric"). Unknown is allowed (one capture point cannot see everything); a wrong
/// conclusion is not.
#[test]
fn nat_insight_agrees_with_the_configured_nats() {
    let mut conclusions = 0;
    for dir in capture_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let truth = load(&dir.join("truth.json"));
        let (Some(peers), Some(nats)) = (truth["peers"].as_object(), truth["topology"]["nat"].as_object())
        else {
            continue;
        };
        let report = report(&dir.join("capture.pcap"), &[]);
        for p in peers.values() {
            let lan = p["lan_address"].as_str().unwrap();
            let prefix = &lan[..lan.rfind('.').unwrap()];
            let nat = nats
                .values()
                .find(|n| n["lan"].as_str().unwrap().starts_with(prefix))
                .unwrap_or_else(|| panic!("{name}: no NAT for {lan}"));
            let ufrag = p["local_ufrag"].as_str().unwrap();
            let Some(s) = session_for(&report, &[ufrag]) else {
                continue;
            };
            let insight = s["nat"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["agent"] == ufrag)
                .unwrap();
            let (mapping, filtering) = (
                insight["mapping"].as_str().unwrap(),
                insight["filtering"].as_str().unwrap(),
            );
            match nat["type"].as_str().unwrap() {
                "symmetric" => {
                    assert_ne!(
                        mapping, "endpoint-independent",
                        "{name} {ufrag}: NAT is symmetric"
                    );
                    assert_ne!(filtering, "endpoint-independent", "{name} {ufrag}");
                }
                "port-restricted" => {
                    assert_ne!(
                        mapping, "address-dependent",
                        "{name} {ufrag}: MASQUERADE keeps one mapping"
                    );
                    assert_ne!(
                        filtering, "endpoint-independent",
                        "{name} {ufrag}: MASQUERADE filters"
                    );
                }
                other => panic!("{name}: a NAT type this test does not know: {other}"),
            }
            conclusions += (mapping != "unknown") as usize + (filtering != "unknown") as usize;
            if insight["behind_nat"] == Value::Bool(false) {
                panic!("{name} {ufrag}: every lab agent is behind a NAT");
            }
        }
    }
    // Mapping is concluded for every agent whose checks crossed the public segment, filtering for the
    // agents whose peers checked them first (see analysis/nat.rs).
    assert!(conclusions >= 12, "only {conclusions} NAT conclusions drawn");
}
