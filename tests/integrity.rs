//! MESSAGE-INTEGRITY verification on real captures, with the credentials the ICE agents and the TURN
//! server really used (from each capture's truth.json, written by the lab, not by iceview).
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// (credentials file text using the *server's* TURN password, the password the clients actually used).
fn credentials(truth: &Value) -> (String, String) {
    let mut lines = Vec::new();
    let client_turn_password;
    if let Some(pcs) = truth["pcs"].as_object() {
        // Chromium lab: per RTCPeerConnection, every ufrag/pwd it used.
        for pc in pcs.values() {
            let ufrags = pc["local_ice"]["all_ufrags"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let pwds = pc["local_ice"]["all_pwds"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (u, p) in ufrags.iter().zip(pwds.iter()) {
                lines.push(format!("ice {} {}", u.as_str().unwrap(), p.as_str().unwrap()));
            }
        }
        let ts = &truth["turn_server"];
        lines.push(format!(
            "turn {} {} {}",
            ts["username"].as_str().unwrap(),
            ts["server_password"].as_str().unwrap(),
            ts["realm"].as_str().unwrap()
        ));
        client_turn_password = ts["password_used_by_browser"].as_str().unwrap().to_string();
    } else {
        // aiortc lab.
        // (natdiscovery captures have no ICE agents: no peers.)
        let no_peers = serde_json::Map::new();
        for peer in truth["peers"].as_object().unwrap_or(&no_peers).values() {
            lines.push(format!(
                "ice {} {}",
                peer["local_ufrag"].as_str().unwrap(),
                peer["local_pwd"].as_str().unwrap()
            ));
        }
        let tc = &truth["turn_credentials"];
        lines.push(format!(
            "turn {} {} {}",
            tc["username"].as_str().unwrap(),
            tc["password"].as_str().unwrap(),
            tc["realm"].as_str().unwrap()
        ));
        client_turn_password = truth["peers"]
            .as_object()
            .unwrap_or(&no_peers)
            .values()
            .flat_map(|p| p["ice_servers"].as_array().cloned().unwrap_or_default())
            .find_map(|s| s["credential"].as_str().map(str::to_string))
            .unwrap_or_else(|| tc["password"].as_str().unwrap().to_string());
    }
    (lines.join("\n") + "\n", client_turn_password)
}

fn verdicts(dir: &Path, creds: &str) -> Vec<(u64, String, String)> {
    let file = std::env::temp_dir().join(format!(
        "iceview-creds-{}-{}",
        std::process::id(),
        dir.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&file, creds).unwrap();
    let report = report(
        &dir.join("capture.pcap"),
        &["--credentials", file.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&file);
    report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["integrity"].is_null())
        .map(|m| {
            (
                m["frame"].as_u64().unwrap(),
                format!(
                    "{} {}",
                    m["method"].as_str().unwrap(),
                    m["class"].as_str().unwrap()
                ),
                m["integrity"]["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_signed_message_verifies_with_the_real_credentials() {
    let mut checked = 0;
    for dir in capture_dirs() {
        let truth = load(&dir.join("truth.json"));
        let (creds, client_pw) = credentials(&truth);
        let server_pw_wrong_for_client = !creds.contains(&format!(" {client_pw} "));
        for (frame, what, verdict) in verdicts(&dir, &creds) {
            checked += 1;
            let is_turn_request = !what.starts_with("binding") && what.ends_with("request");
            let expected = if server_pw_wrong_for_client && is_turn_request {
                // The client signed with a password the server does not have: RFC 8489 §9.2.4 → 401.
                "bad"
            } else {
                "ok"
            };
            assert_eq!(verdict, expected, "{}: frame {frame} ({what})", dir.display());
        }
    }
    assert!(checked > 100, "only {checked} signed messages checked");
}

#[test]
fn the_wrong_password_is_proven_wrong_and_the_used_one_right() {
    let dir = fixtures().join("chrome-turn-badauth");
    let truth = load(&dir.join("truth.json"));
    let (_, used) = credentials(&truth);
    assert_eq!(used, "wrongpass");
    let creds = format!("turn alice {used} lab.example\n");
    let v = verdicts(&dir, &creds);
    assert!(!v.is_empty());
    for (frame, what, verdict) in v {
        assert_eq!(
            verdict, "ok",
            "frame {frame} ({what}) with the browser's own password"
        );
    }
}

#[test]
fn without_credentials_integrity_is_unchecked() {
    let report = report(&fixtures().join("nat-srflx/capture.pcap"), &[]);
    let signed: Vec<&Value> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["integrity"].is_null())
        .collect();
    assert!(!signed.is_empty());
    assert!(signed.iter().all(|m| m["integrity"]["verdict"] == "unchecked"));
}
