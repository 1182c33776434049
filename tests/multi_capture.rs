//! Several captures of one call merged (`iceview read client.pcap server.pcap`): every datagram seen at
//! both capture points is analysed once, so the merged report's counters equal one capture's where both
//! points saw the same traffic.
// Test data: small literal values and lengths the test itself bounds.
#![allow(clippy::cast_possible_truncation)]
mod common;
use common::*;
use serde_json::Value;

fn allocation_totals(report: &Value) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = report["turn"]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                format!(
                    "{} {}",
                    a["client"].as_str().unwrap(),
                    a["server"].as_str().unwrap()
                ),
                a["totals"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn client_and_server_captures_merged_count_each_datagram_once() {
    for name in ["chrome-relay-udp", "chrome-relay-tcp"] {
        let dir = fixtures().join(name);
        let client = dir.join("capture.pcap");
        let server = dir.join("capture-server.pcap");
        let one = report(&client, &[]);
        let out = iceview(&[
            "read",
            client.to_str().unwrap(),
            server.to_str().unwrap(),
            "--json",
            "-",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Both capture points saw every allocation's carriers (the client's and the server's view of the
        // same 5-tuples: coturn ran on the client's path), so the TURN counters must not double.
        let totals = allocation_totals(&one);
        assert_eq!(totals.len(), 2, "{name}: two allocations");
        assert!(
            totals
                .iter()
                .all(|(_, t)| t.is_object() && t.to_string().contains("channel_data")),
            "{totals:?}"
        );
        assert_eq!(allocation_totals(&merged), totals, "{name}: TURN totals");
        // The selected pair's checks are the same transactions, whichever point saw them.
        let sel = |r: &Value| {
            let s = &r["sessions"][0];
            let p = &s["pairs"][s["selected_pair"]["index"].as_u64().unwrap() as usize];
            (
                p["a_to_b"]["requests_sent"].clone(),
                p["b_to_a"]["requests_sent"].clone(),
                p["a_to_b"]["retransmissions_sent"].clone(),
            )
        };
        assert_eq!(sel(&merged), sel(&one), "{name}: selected pair counters");
        assert!(
            merged["stats"]["relay_duplicates"].as_u64().unwrap()
                > one["stats"]["relay_duplicates"].as_u64().unwrap()
        );
    }
}
