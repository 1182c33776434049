//! The ICE session rules' tests: hand-made messages through the transaction table and the ICE state.
use super::*;
use crate::analysis::sessions;
use crate::analysis::testkit::{self, check, error as err};
use crate::capture::Timestamp;
use crate::wire::stun::StunMessage;

const A: &str = "192.0.2.1:5000";
const B: &str = "198.51.100.2:6000";

fn ok(id: u16) -> StunMessage {
    testkit::success(id, None)
}

/// NAT mapping that depends on the destination, among thousands of clients that each asked one server
/// (a TURN/STUN server capture): found per client from the client's own bindings, with the first
/// binding that has a later contradicting one and that later one; keepalives repeating a mapping and a
/// mapping that is the same for two servers report nothing.
#[test]
fn mapping_that_varies_by_destination_is_found_among_many_clients() {
    let (s1, s2) = ("203.0.113.1:3478", "203.0.113.2:3478");
    // (src, dst, mapped) of each Binding request → success exchange, in capture order.
    let mut exchanges: Vec<(String, &str, String)> = Vec::new();
    for i in 0..3000u32 {
        let client = format!("10.{}.{}.1:5000", i / 256, i % 256);
        let mapped = format!("198.51.{}.{}:{}", i / 256, i % 256, 40000 + i % 1000);
        exchanges.push((client, s1, mapped));
    }
    // C: S1 maps it to M1 (and keeps doing so), then S2 to M2.
    let c = "192.168.1.10:4000";
    for _ in 0..50 {
        exchanges.push((c.into(), s1, "198.51.200.1:1111".into()));
    }
    exchanges.push((c.into(), s2, "198.51.200.1:2222".into()));
    // D: the same mapping from both servers (endpoint-independent).
    let d = "192.168.1.11:4000";
    exchanges.push((d.into(), s1, "198.51.200.2:3333".into()));
    exchanges.push((d.into(), s2, "198.51.200.2:3333".into()));
    // E: a hundred mappings from S1 alone, then one from S2.
    let e = "192.168.1.12:4000";
    for p in 0..100 {
        exchanges.push((e.into(), s1, format!("198.51.200.3:{}", 10000 + p)));
    }
    exchanges.push((e.into(), s2, "198.51.200.3:9999".into()));
    let mut script = Vec::new();
    for (n, (client, server, mapped)) in exchanges.iter().enumerate() {
        let id = n as u16;
        let ms = n as u64;
        let request = testkit::message(Method::BINDING, crate::wire::stun::Class::Request, id, vec![]);
        script.push((ms, client.as_str(), *server, request));
        let mapped = mapped.parse().expect("address");
        script.push((ms, *server, client.as_str(), testkit::success(id, Some(mapped))));
    }
    let found: Vec<Finding> = run(script, 10_000)
        .into_iter()
        .filter(|f| f.code == "nat.mapping-varies-by-destination")
        .collect();
    let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(found.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with(&format!(
        "{c} was mapped to 198.51.200.1:1111 by server {s1} but to 198.51.200.1:2222 by server {s2}"
    )));
    assert!(messages[1].starts_with(&format!(
        "{e} was mapped to 198.51.200.3:10000 by server {s1} but to 198.51.200.3:9999 by server {s2}"
    )));
    // Evidence: the two responses (frames count requests and responses from 1).
    let first_c = 2 * 3000 + 2;
    let last_c = 2 * (3000 + 50) + 2;
    assert_eq!(found[0].frames, vec![first_c, last_c]);
}

/// Feeds (ms, src, dst, message) into a model and returns its findings.
/// The model of `script` (each message at its time in milliseconds), the capture ending at `end_ms`.
fn model_of(script: Vec<(u64, &str, &str, StunMessage)>, end_ms: u64) -> Model {
    let mut model = Model::default();
    for (i, (ms, src, dst, m)) in script.into_iter().enumerate() {
        testkit::feed(
            &mut model.transactions,
            &mut model.ice,
            ms,
            i as u64 + 1,
            src,
            dst,
            &m,
        );
    }
    model.last_ts = Some(Timestamp(end_ms * 1_000_000));
    model
}

fn run(script: Vec<(u64, &str, &str, StunMessage)>, end_ms: u64) -> Vec<Finding> {
    let model = model_of(script, end_ms);
    let end = model.last_ts.map(|t| t.as_secs_f64());
    let found = sessions::build(&model)
        .iter()
        .map(|s| Found::of(s, end))
        .collect();
    let mut out = Vec::new();
    findings_of_found_into(&model, found, Scope::All, &mut out);
    out.into_iter().filter_map(Entry::into_held).collect()
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

/// Checks refused with 401 in both directions reached the peers: the session failed on credentials,
/// and saying "neither got an answer" (UDP blocked) would contradict the packets.
#[test]
fn checks_answered_with_errors_are_not_silence() {
    let f = run(
        vec![
            (0, A, B, check(1, "bbbb:aaaa", true, false)),
            (5, B, A, err(1, 401)),
            (10, B, A, check(2, "aaaa:bbbb", false, false)),
            (15, A, B, err(2, 401)),
        ],
        60_000,
    );
    let c = codes(&f);
    assert!(c.contains(&"ice.failed"), "{c:?}");
    assert!(c.contains(&"ice.check.unauthorized"), "{c:?}");
    assert!(!c.contains(&"ice.failed.no-response"), "{c:?}");
    assert!(f.iter().all(|f| !f.message.contains("neither got an answer")));
}

/// A symmetric NAT is the usual reason a session fails: its finding is given whether or not a pair was
/// selected. The agent's host 10.0.0.1:5000 was mapped to 203.0.113.5:40000 by a STUN server, but its
/// checks left the NAT from 203.0.113.5:40001 (another port for another destination) and nobody
/// answered them.
#[test]
fn a_nat_mapping_per_destination_is_reported_when_the_session_failed() {
    let server = "198.51.100.9:3478";
    let mapped: std::net::SocketAddr = "203.0.113.5:40000".parse().unwrap();
    let f = run(
        vec![
            (
                0,
                "10.0.0.1:5000",
                server,
                testkit::message(Method::BINDING, crate::wire::stun::Class::Request, 9, vec![]),
            ),
            (5, server, "10.0.0.1:5000", testkit::success(9, Some(mapped))),
            (100, "203.0.113.5:40001", B, check(1, "bbbb:aaaa", true, false)),
            (600, "203.0.113.5:40001", B, check(1, "bbbb:aaaa", true, false)),
        ],
        60_000,
    );
    let c = codes(&f);
    assert!(c.contains(&"ice.failed.no-response"), "{c:?}");
    let nat = f
        .iter()
        .find(|f| f.code == "nat.address-dependent-mapping")
        .unwrap_or_else(|| panic!("{c:?}"));
    assert!(nat.message.contains("203.0.113.5:40001"), "{}", nat.message);
}

#[test]
fn a_401_on_checks_is_a_credentials_problem() {
    let f = run(
        vec![
            (0, A, B, check(1, "bbbb:aaaa", true, false)),
            (5, B, A, err(1, 401)),
        ],
        1000,
    );
    assert!(codes(&f).contains(&"ice.check.unauthorized"), "{:?}", codes(&f));
    let u = f.iter().find(|f| f.code == "ice.check.unauthorized").unwrap();
    assert_eq!(u.severity, Severity::Error);
    assert_eq!(u.frames, vec![2]);
}

#[test]
fn consent_lost_after_thirty_seconds_without_responses() {
    // Connected at t=0 (nominated), then checks every 5 s from t=5 s to t=40 s, none answered after
    // the one at 0: the last response is at 10 ms, the capture ends at 45 s → 45 s without consent.
    let mut script = vec![(0, A, B, check(1, "bbbb:aaaa", true, true)), (10, B, A, ok(1))];
    for i in 1..=8u16 {
        script.push((5000 * i as u64, A, B, check(1 + i, "bbbb:aaaa", true, false)));
    }
    let f = run(script, 45_000);
    let lost = f
        .iter()
        .find(|f| f.code == "ice.consent-lost")
        .expect("consent lost");
    assert_eq!(lost.severity, Severity::Error);
    // Evidence: the unanswered checks after the last response, frames 3..=10.
    assert_eq!(lost.frames, (3..=10).collect::<Vec<u64>>());
}

#[test]
fn consent_kept_when_responses_continue() {
    let mut script = vec![(0, A, B, check(1, "bbbb:aaaa", true, true)), (10, B, A, ok(1))];
    for i in 1..=8u16 {
        script.push((5000 * i as u64, A, B, check(1 + i, "bbbb:aaaa", true, false)));
        script.push((5000 * i as u64 + 10, B, A, ok(1 + i)));
    }
    assert!(!codes(&run(script, 45_000)).contains(&"ice.consent-lost"));
}

#[test]
fn slow_nomination_is_reported_past_the_threshold() {
    // First check at 0; the nominating check succeeds at 6.0 s > SLOW_CONNECT_SECS (5 s).
    let f = run(
        vec![
            (0, A, B, check(1, "bbbb:aaaa", true, false)),
            (10, B, A, ok(1)),
            (5990, A, B, check(2, "bbbb:aaaa", true, true)),
            (6000, B, A, ok(2)),
        ],
        7000,
    );
    assert!(codes(&f).contains(&"ice.slow-connect"), "{:?}", codes(&f));
    let fast = run(
        vec![
            (0, A, B, check(1, "bbbb:aaaa", true, false)),
            (10, B, A, ok(1)),
            (20, A, B, check(2, "bbbb:aaaa", true, true)),
            (30, B, A, ok(2)),
        ],
        7000,
    );
    assert!(!codes(&fast).contains(&"ice.slow-connect"));
}

#[test]
fn succeeded_but_never_nominated() {
    let f = run(
        vec![(0, A, B, check(1, "bbbb:aaaa", true, false)), (10, B, A, ok(1))],
        1000,
    );
    assert!(codes(&f).contains(&"ice.no-nomination"), "{:?}", codes(&f));
}

#[test]
fn one_way_path() {
    // A's checks to B go unanswered (7 transmissions: Rc exhausted), B's checks to A succeed.
    let mut script = Vec::new();
    for ms in [0u64, 500, 1500, 3500, 7500, 15_500, 31_500] {
        script.push((ms, A, B, check(1, "bbbb:aaaa", true, false)));
    }
    script.push((100, B, A, check(2, "aaaa:bbbb", false, false)));
    script.push((110, A, B, ok(2)));
    script.sort_by_key(|x| x.0);
    let f = run(script, 32_000);
    assert!(codes(&f).contains(&"ice.pair.one-way"), "{:?}", codes(&f));
}

/// A folded session's end facts come back from their bytes as they went in; bytes they did not write
/// (every truncation of them, a length past the end) decode to nothing, never a panic.
#[test]
fn end_facts_come_back_from_their_bytes() {
    let full = EndFacts {
        id: "s12".into(),
        last_ts: 61.5,
        last_success: Some(30.25),
        checks_after: Some(vec![7, 9, 11]),
        last_media: Some(60.0),
    };
    let bare = EndFacts {
        id: "s1".into(),
        last_ts: 2.0,
        last_success: None,
        checks_after: None,
        last_media: None,
    };
    for facts in [full, bare] {
        let mut b = Vec::new();
        facts.encode(&mut b);
        assert_eq!(EndFacts::decode(&b), Some(facts.clone()));
        for n in 0..b.len() {
            assert_eq!(EndFacts::decode(&b[..n]), None, "{n} of {} bytes", b.len());
        }
        let mut long = b.clone();
        long[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(EndFacts::decode(&long), None);
    }
}

/// A call longer than the timeline's bound that then loses consent: its timeline keeps the start and the
/// latest entries, so the unanswered checks at its end are seen and consent lost is reported (when the
/// timeline dropped what came after its bound, an hour-long call's end was invisible and this was missed).
#[test]
fn consent_lost_at_the_end_of_a_call_longer_than_the_timeline() {
    use crate::analysis::ice::{MAX_TIMELINE_EVENTS, TIMELINE_HEAD};
    // Nominated at 0, then a consent check every 5 s answered 10 ms later: 2 entries each, 3,000 of them
    // (4 hours 10 minutes); then 8 checks that get no answer, the capture ending 45 s after the last answer.
    let mut script = vec![(0, A, B, check(1, "bbbb:aaaa", true, true)), (10, B, A, ok(1))];
    let rounds = 3000u16;
    for i in 1..=rounds {
        let at = 5000 * u64::from(i);
        script.push((at, A, B, check(1 + i, "bbbb:aaaa", true, false)));
        script.push((at + 10, B, A, ok(1 + i)));
    }
    let last_ok = 5000 * u64::from(rounds) + 10;
    let first_unanswered = script.len() as u64 + 1;
    for j in 1..=8u16 {
        script.push((
            last_ok + 5000 * u64::from(j),
            A,
            B,
            check(rounds + 1 + j, "bbbb:aaaa", true, false),
        ));
    }
    let end = last_ok + 45_000;
    let f = run(script.clone(), end);
    let lost = f
        .iter()
        .find(|f| f.code == "ice.consent-lost")
        .unwrap_or_else(|| panic!("consent lost missed: {:?}", codes(&f)));
    assert_eq!(
        lost.frames,
        (first_unanswered..first_unanswered + 8).collect::<Vec<u64>>()
    );

    // The view: the first entries and the latest, in time order, the ones between counted.
    let model = model_of(script, end);
    let s = &sessions::build(&model)[0];
    // (A timeout is listed at its give-up time with its check's frame: left out of the frame order.)
    let frames: Vec<u64> = s
        .timeline
        .iter()
        .filter(|e| e.event != sessions::TimelineKind::Timeout)
        .map(|e| e.frame)
        .collect();
    assert!(frames.windows(2).all(|w| w[0] <= w[1]), "in the order recorded");
    assert_eq!(frames.first(), Some(&1));
    assert_eq!(frames.last(), Some(&(first_unanswered + 7)));
    assert!(s.timeline.len() >= MAX_TIMELINE_EVENTS, "{}", s.timeline.len());
    let recorded = 2 + 2 * u64::from(rounds) + 8 + 1; // checks, answers, and the nomination
    assert_eq!(s.timeline_events_not_kept, recorded - MAX_TIMELINE_EVENTS as u64);
    // The head is the call's first entries, unbroken.
    assert!(frames[..TIMELINE_HEAD].windows(2).all(|w| w[1] - w[0] <= 1));
}

/// A call longer than the timeline's bound whose consent checks are answered to the end: no consent lost.
/// (When the timeline dropped what came after its bound, its last kept entry could be a check whose answer
/// was not kept, and "consent lost for hours" was reported of a call that was fine.)
#[test]
fn consent_kept_through_a_call_longer_than_the_timeline() {
    let mut script = vec![(0, A, B, check(1, "bbbb:aaaa", true, true)), (10, B, A, ok(1))];
    for i in 1..=3000u16 {
        let at = 5000 * u64::from(i);
        script.push((at, A, B, check(1 + i, "bbbb:aaaa", true, false)));
        script.push((at + 10, B, A, ok(1 + i)));
    }
    let c = codes(&run(script, 5000 * 3000 + 20));
    assert!(!c.contains(&"ice.consent-lost"), "{c:?}");
}
