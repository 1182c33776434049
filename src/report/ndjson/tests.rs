//! The event tracker's tests: fixtures replayed as a live run sees them, alone or one after another with folding.
use super::*;
use crate::analysis::Analyzer;
use crate::report::Report;
use crate::wire::credentials::Keyring;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;

/// Replays a fixture as a live run would see it: packets one by one, a poll every `every` packets
/// with the packet's time as `now`, message events from the tap; returns (events before the end,
/// events at the end), as JSON.
fn replay(fixture: &str, every: u64) -> (Vec<Value>, Vec<Value>) {
    let (during, end, _) = replay_counting(fixture, every);
    (during, end)
}

/// [`replay`], and what the tracker counted.
fn replay_counting(fixture: &str, every: u64) -> (Vec<Value>, Vec<Value>, Counters) {
    let r = replay_calls(&[fixture], 0, every, Run::default());
    (r.during, r.end, r.tracker.counters().clone())
}

/// What [`replay_calls`] saw.
struct Replayed {
    during: Vec<Value>,
    end: Vec<Value>,
    tracker: EventTracker,
    /// The report at the end, its folded sessions, allocations and findings read back.
    report: Report,
    /// At the poll after each fixture's first packet but the first fixture's: the tracker's entries
    /// about sessions of earlier fixtures (all of which had folded).
    stale_after_fold: Vec<usize>,
    /// Sleeping sessions and allocations read back by a poll and still held after it, at most.
    held_by_a_poll: usize,
    /// Times sessions and allocations slept, and their stores were rewritten.
    slept: [u64; 2],
    compactions: [u64; 2],
}

/// How [`replay_calls`] runs the analysis.
#[derive(Clone, Copy, Default)]
struct Run {
    /// What folded is let go after each poll, as a live run with no report does.
    release: bool,
    /// Every session and allocation sleeps at every search for quiet ones, and the sleep stores are
    /// rewritten at every chance.
    sleep: bool,
    /// The tracker makes no event, only counts ([`EventTracker::counting_only`]).
    counting_only: bool,
    /// Nothing reads the tracker ([`EventTracker::unread`]).
    unread: bool,
}

/// Replays fixtures one after the other as a live run would see them (folding as `iceview live`
/// does): each starts `gap` seconds after the previous one's last packet, its packets shifted in
/// time; a poll every `every` packets, and one as each fixture starts (after its first packet).
fn replay_calls(fixtures: &[&str], gap: u64, every: u64, run: Run) -> Replayed {
    let mut analyzer = Analyzer::new(Keyring::new());
    crate::report::fold_as_reported(&mut analyzer, None);
    if run.sleep {
        analyzer.sleep_quiet(None, 0.0);
        analyzer.compact_sleep_after(0);
    }
    let held = |a: &Analyzer| {
        let m = a.model();
        m.ice.sessions.read_back_held() + m.turn.allocations.read_back_held()
    };
    let mut held_by_a_poll = 0;
    let (tx, rx) = mpsc::channel();
    analyzer.set_message_tap(Box::new(move |rec, path, stun| {
        if let Some(e) = message_event(rec, path, stun) {
            let _ = tx.send(e);
        }
    }));
    let mut tracker = if run.unread {
        EventTracker::unread()
    } else if run.counting_only {
        EventTracker::counting_only()
    } else {
        EventTracker::new()
    };
    let mut during = Vec::new();
    let mut stale_after_fold = Vec::new();
    let mut before = 0;
    let mut n = 0;
    let mut last_ts = Timestamp::default();
    let json = |e: &Event| serde_json::to_value(e).expect("serialisable");
    crate::analysis::testkit::fixtures_in_a_row(fixtures, gap, &mut |pkt, starts| {
        if starts.is_some() {
            before = analyzer.model().ice.sessions_started();
        }
        analyzer.ingest(pkt);
        last_ts = pkt.ts;
        n += 1;
        during.extend(rx.try_iter().map(|e| json(&e)));
        if n % every == 0 || starts.is_some() {
            let before = held(&analyzer);
            during.extend(tracker.poll(analyzer.model(), pkt.ts).iter().map(json));
            held_by_a_poll = held_by_a_poll.max(held(&analyzer) - before);
            if run.release {
                analyzer.release_folded();
            }
            if starts.is_some_and(|k| k > 0) {
                stale_after_fold.push(tracker.entries_before(before));
            }
        }
    });
    // As `iceview live` ends: the last comparison sees what is still open, then it folds.
    analyzer.finish_input();
    during.extend(rx.try_iter().map(|e| json(&e)));
    let end = tracker
        .finish(analyzer.model(), last_ts)
        .iter()
        .map(json)
        .collect();
    let slept = analyzer.model().sleep_counts().map(|(slept, _)| slept);
    let compactions = analyzer.model().sleep_compactions();
    analyzer.fold_open();
    let mut report = Report::build_lean(analyzer.model(), &[], analyzer.net_stats());
    report.unfold(analyzer.model()).expect("folded in memory");
    Replayed {
        during,
        end,
        tracker,
        report,
        stale_after_fold,
        held_by_a_poll,
        slept,
        compactions,
    }
}

impl EventTracker {
    /// Its entries about sessions `0..before` (their pairs, outcomes, counts, RTT cursors, findings).
    fn entries_before(&self, before: usize) -> usize {
        let ids: HashSet<findings::Subject> = (0..before)
            .map(|s| findings::Subject::Session {
                id: format!("s{}", s + 1),
            })
            .collect();
        self.pairs.iter().filter(|(s, _)| *s < before).count()
            + self.outcomes.keys().filter(|&&s| s < before).count()
            + self.sessions_counted.iter().filter(|&&s| s < before).count()
            + self.rtt_cursor.keys().filter(|(s, _, _)| *s < before).count()
            + self
                .findings
                .values()
                .filter(|seen| seen.finding.as_ref().is_some_and(|f| ids.contains(&f.subject)))
                .count()
    }
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn truth(fixture: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture)
        .join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("truth.json")).expect("JSON")
}

/// Four calls: connected, failed, connected, connected.
const CALLS: [&str; 4] = ["chrome-relay-udp", "ice-failed", "host-direct", "nat-srflx"];

/// What a poll compares of the findings ([`findings::collect_open`], which does not go through the
/// folded items) is what the report's collection builds with them: the open items' findings and those
/// about the capture (which still count the folded sessions), in the same order. Checked as each call
/// starts, with the earlier ones folded, and at the end.
#[test]
fn a_poll_collects_the_open_findings_the_report_collects() {
    let mut analyzer = Analyzer::new(Keyring::new());
    crate::report::fold_as_reported(&mut analyzer, None);
    let found = |m: &Model| {
        let end = m.last_ts.unwrap_or_default();
        let mut found = Vec::new();
        for (i, sess) in m.ice.sessions.iter_passing_from(0) {
            if let Some(v) = sessions::view(&m.ice, i, &sess, &m.transactions, end) {
                found.push(findings::ice::Found::of(&v, m.last_ts.map(|t| t.as_secs_f64())));
            }
        }
        found
    };
    let mut compared = Vec::new();
    let mut compare = |m: &Model| {
        let open = findings::collect_open(m, found(m));
        let (held, _) = findings::collect_found(m, found(m));
        assert_eq!(open, held);
        compared.push((
            m.ice_folded.session_count(),
            m.ice_folded.allocation_count(),
            open.len(),
        ));
    };
    let calls = [
        "chrome-turn-badauth",
        "ice-failed",
        "turn-auth-fail",
        "host-direct",
        "chrome-relay-udp",
    ];
    crate::analysis::testkit::fixtures_in_a_row(&calls, 120, &mut |pkt, starts| {
        analyzer.ingest(pkt);
        if starts.is_some() {
            compare(analyzer.model());
        }
    });
    analyzer.finish_input();
    compare(analyzer.model());
    // Folded sessions and allocations were left out while open findings were compared.
    assert!(
        compared.iter().any(|&(s, a, open)| s > 0 && a > 0 && open > 0),
        "{compared:?}"
    );
}

/// A live run with no report lets go of what folded once the tracker has taken it in: the stream and
/// the counters are the same as when it is kept, and nothing folded is held at the end.
#[test]
fn letting_go_of_what_folded_changes_no_event() {
    let kept = replay_calls(&CALLS, 120, 20, Run::default());
    let gone = replay_calls(
        &CALLS,
        120,
        20,
        Run {
            release: true,
            ..Run::default()
        },
    );
    assert_eq!(gone.during, kept.during);
    assert_eq!(gone.end, kept.end);
    assert_eq!(gone.tracker.counters(), kept.tracker.counters());
    assert!(of(&gone.during, "session-connected").len() >= 2);
    assert_eq!(gone.tracker.folded.sessions, 3);
    assert!(gone.report.sessions.len() < kept.report.sessions.len());
}

/// Sessions and allocations that sleep, as they do in a live run, change no event, count and report: a
/// poll reads each sleeping one back for its turn and holds none of them after it, and the sleep stores
/// rewritten with only what still sleeps keep every state.
#[test]
fn sleeping_changes_no_event_and_a_poll_wakes_nothing() {
    // Calls long enough, and close enough (20 s apart), that sessions and allocations are quiet at
    // searches before they fold: relayed, refused by the TURN server, failed, a long call, TURN over TCP.
    let calls = [
        "chrome-relay-udp",
        "chrome-turn-badauth",
        "ice-failed",
        "long-call",
        "turn-tcp",
    ];
    let awake = replay_calls(&calls, 20, 20, Run::default());
    let asleep = replay_calls(
        &calls,
        20,
        20,
        Run {
            sleep: true,
            ..Run::default()
        },
    );
    assert_eq!(asleep.during, awake.during);
    assert_eq!(asleep.end, awake.end);
    assert_eq!(asleep.tracker.counters(), awake.tracker.counters());
    let json = |r: &Report| serde_json::to_string(r).expect("serialisable");
    assert_eq!(json(&asleep.report), json(&awake.report));
    assert!(asleep.slept.iter().all(|&n| n > 0), "{:?}", asleep.slept);
    assert!(
        asleep.compactions.iter().all(|&n| n > 0),
        "{:?}",
        asleep.compactions
    );
    assert_eq!(asleep.held_by_a_poll, 0);
    assert_eq!(awake.slept, [0, 0]);
}

/// A tracker that only counts (a live run with no event stream) makes no event, and counts what one
/// that makes them counts, poll by poll as at the end.
#[test]
fn a_tracker_that_only_counts_counts_the_same() {
    let counting = Run {
        counting_only: true,
        ..Run::default()
    };
    for calls in [&CALLS[..], &["chrome-turn-badauth", "turn-tcp", "long-call"]] {
        let events = replay_calls(calls, 20, 7, Run::default());
        let counted = replay_calls(calls, 20, 7, counting);
        assert!(events.during.iter().any(|e| e["event"] != "message"));
        let not_messages = |v: &[Value]| v.iter().filter(|e| e["event"] != "message").count();
        assert_eq!(not_messages(&counted.during), 0);
        assert_eq!(not_messages(&counted.end), 0);
        assert_eq!(counted.tracker.counters(), events.tracker.counters());
        assert!(!counted.tracker.counters().findings.is_empty());
        assert!(!counted.tracker.counters().sessions.is_empty());
    }
}

/// A tracker nothing reads (a live run with no event stream, no metrics and no status line) compares
/// nothing: no event, no count, nothing read back; and the report does not depend on its polls, also
/// when what folded is let go after each of them.
#[test]
fn a_tracker_nothing_reads_changes_nothing_in_the_report() {
    for release in [false, true] {
        let calls = ["chrome-turn-badauth", "turn-tcp", "long-call", "symmetric-relay"];
        let polled = replay_calls(
            &calls,
            20,
            7,
            Run {
                release,
                ..Run::default()
            },
        );
        let unread = Run {
            release,
            unread: true,
            ..Run::default()
        };
        let unpolled = replay_calls(&calls, 20, 7, unread);
        let not_messages = |v: &[Value]| v.iter().filter(|e| e["event"] != "message").count();
        assert!(not_messages(&polled.during) > 0);
        assert_eq!(not_messages(&unpolled.during) + not_messages(&unpolled.end), 0);
        assert!(!polled.tracker.counters().sessions.is_empty());
        assert_eq!(unpolled.tracker.counters(), &Counters::default());
        let json = |r: &Report| serde_json::to_value(r).expect("serialisable");
        assert_eq!(json(&unpolled.report), json(&polled.report), "release {release}");
        assert!(!unpolled.report.sessions.is_empty() && !unpolled.report.findings.is_empty());
    }
}

/// Calls that end while the capture goes on fold, as `iceview live` folds them: each one's outcome,
/// pair successes and findings are announced once (those of a call that folded before the capture
/// ended, while it went on), none is "cleared" by folding, and the tracker forgets the call. What the
/// stream said is what the report says at the end.
#[test]
fn folded_calls_are_announced_once_and_forgotten() {
    let r = replay_calls(&CALLS, 120, 20, Run::default());
    let report = &r.report;
    let all: Vec<&Value> = r.during.iter().chain(&r.end).collect();
    let count =
        |kind: &str, f: &dyn Fn(&Value) -> bool| all.iter().filter(|e| e["event"] == kind && f(e)).count();
    let mut outcomes = BTreeMap::new();
    let mut decided_during = 0;
    for s in &report.sessions {
        *outcomes.entry(s.outcome.name()).or_insert(0u64) += 1;
        let kind = match s.outcome {
            Outcome::Connected => "session-connected",
            Outcome::Failed => "session-failed",
            Outcome::Incomplete => continue,
        };
        assert_eq!(
            count(kind, &|e| e["session"] == s.id.as_str()),
            1,
            "{kind} {}",
            s.id
        );
        decided_during += of(&r.during, kind)
            .iter()
            .filter(|e| e["session"] == s.id.as_str())
            .count();
        for p in s.pairs.iter().filter(|p| p.state == PairState::Succeeded) {
            let this = |e: &Value| e["session"] == s.id.as_str() && e["pair"] == p.index;
            assert_eq!(count("pair-succeeded", &this), 1, "{} pair {}", s.id, p.index);
        }
    }
    // The four calls: connected, failed (no check answered), connected, connected.
    assert_eq!(outcomes.get("connected"), Some(&3), "{outcomes:?}");
    assert_eq!(outcomes.get("failed"), Some(&1), "{outcomes:?}");
    // Those of the first three calls were announced before the capture ended.
    assert!(decided_during >= 3, "{decided_during}");
    assert_eq!(r.tracker.counters().sessions, outcomes);

    let key = |e: &Value| (e["code"].to_string(), e["subject"].to_string());
    let raised: Vec<_> = of(&r.during, "finding")
        .into_iter()
        .chain(of(&r.end, "finding"))
        .map(key)
        .collect();
    let unique: BTreeSet<_> = raised.iter().cloned().collect();
    assert_eq!(raised.len(), unique.len(), "a finding raised twice: {raised:?}");
    assert_eq!(count("finding-cleared", &|_| true), 0);
    let reported: BTreeSet<_> = report
        .findings
        .iter()
        .map(|f| key(&serde_json::to_value(f).expect("serialisable")))
        .collect();
    assert_eq!(unique, reported);
    assert!(
        reported.iter().any(|(code, _)| code.starts_with("\"ice.failed")),
        "{reported:?}"
    );

    // Each later call starts 120 s after the last: by its first poll the calls before it folded, and
    // the tracker holds nothing about them.
    assert_eq!(r.stale_after_fold, [0, 0, 0]);
    let t = &r.tracker;
    assert_eq!(t.folded.sessions, 3);
    assert_eq!(t.counters().view.sessions, report.sessions.len());
    assert_eq!(t.counters().view.findings, report.findings.len());
}

#[test]
fn relayed_call_streams_allocations_pairs_and_connection() {
    let (during, end) = replay("chrome-relay-udp", 20);
    let t = truth("chrome-relay-udp");
    // The browsers' own selected pair (getStats): both ends are relayed candidates on coturn.
    let sel = &t["pcs"]["pc1"]["selected_candidate_pair"];
    let addr = |c: &Value| format!("{}:{}", c["address"].as_str().unwrap(), c["port"]);
    let (local, remote) = (addr(&sel["local"]), addr(&sel["remote"]));

    let created = of(&during, "allocation-created");
    let relayed: HashSet<&str> = created
        .iter()
        .flat_map(|e| {
            e["relayed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
        })
        .collect();
    assert!(
        relayed.contains(local.as_str()) && relayed.contains(remote.as_str()),
        "{relayed:?}"
    );
    assert!(created
        .iter()
        .all(|e| e["state"] == "active" && e["frame"].is_u64()));

    let connected = of(&during, "session-connected");
    assert_eq!(connected.len(), 1, "{connected:?}");
    let p = &connected[0]["selected_pair"];
    let ends: HashSet<&str> = [p["a"].as_str().unwrap(), p["b"].as_str().unwrap()].into();
    assert_eq!(ends, [local.as_str(), remote.as_str()].into());
    assert_eq!(p["a_type"], "relay");
    // Each announced pair succeeded before (or when) the session connected.
    let succeeded = of(&during, "pair-succeeded");
    assert!(!succeeded.is_empty());
    let connected_at = connected[0]["ts"].as_f64().unwrap();
    assert!(succeeded
        .iter()
        .any(|e| e["ts"].as_f64().unwrap() <= connected_at && e["session"] == connected[0]["session"]));
    // Message events: every one a STUN message, Allocate 401 before Allocate success.
    let messages = of(&during, "message");
    assert!(messages.iter().all(|m| m["kind"] == "stun"));
    let first = |class: &str| {
        messages
            .iter()
            .position(|m| m["method"] == "allocate" && m["class"] == class)
            .unwrap_or(usize::MAX)
    };
    assert!(first("error") < first("success") && first("success") < usize::MAX);
    assert!(of(&during, "allocation-failed").is_empty());
    // Left for the end: findings (held for less than SETTLE_SECS) and the allocations deleted by the
    // last packets.
    assert!(
        end.iter()
            .all(|e| e["event"] == "finding" || e["event"] == "allocation-ended"),
        "{end:?}"
    );
    // Events are in time order within each poll, and never announce the same thing twice.
    let keys: Vec<String> = created
        .iter()
        .map(|e| format!("{}{}", e["client"], e["server"]))
        .collect();
    assert_eq!(keys.len(), keys.iter().collect::<HashSet<_>>().len());
}

#[test]
fn wrong_password_is_a_failure_as_soon_as_it_is_seen() {
    let (during, end) = replay("turn-auth-fail", 1);
    let t = truth("turn-auth-fail");
    // Both peers are NATed; their public IPs are the clients the TURN server sees.
    let nats: HashSet<String> = t["topology"]["nat"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["public_ip"].as_str().unwrap().to_string())
        .collect();
    let failed = of(&during, "allocation-failed");
    let clients: HashSet<String> = failed
        .iter()
        .map(|e| {
            let c = e["client"].as_str().unwrap();
            c[..c.rfind(':').unwrap()].to_string()
        })
        .collect();
    assert_eq!(clients, nats);
    for e in &failed {
        assert_eq!(e["error"]["code"], 401);
        assert_eq!(e["username"], t["turn_credentials"]["username"]);
        assert_eq!(e["state"], "failed");
    }
    assert!(of(&during, "allocation-created").is_empty());
    // The call still connected directly (the agents said "completed").
    assert_eq!(of(&during, "session-connected").len(), 1);
    // The finding says the same, once it has held for SETTLE_SECS: this capture lasts 2.6 s, so at
    // the end.
    let rejected = |events: &[Value]| {
        of(events, "finding")
            .iter()
            .any(|f| f["code"] == "turn.auth.rejected" && f["severity"] == "error")
    };
    assert!(!rejected(&during) && rejected(&end));
}

/// Counted once, when decided, against the fixture's truth: both NATed peers' allocations refused with
/// 401 to their authenticated Allocate (the wrong password), none granted, the direct call connected.
#[test]
fn counters_follow_the_decisions() {
    let t = truth("turn-auth-fail");
    let peers = t["topology"]["nat"].as_object().unwrap().len() as u64;
    let (_, _, c) = replay_counting("turn-auth-fail", 1);
    assert_eq!(c.allocations_allocated, 0);
    assert_eq!(c.allocations_failed, peers);
    assert!(
        c.allocation_errors.get("401").is_some_and(|&n| n >= peers),
        "{c:?}"
    );
    assert_eq!(c.sessions.get("connected"), Some(&1));
    assert_eq!(c.sessions.values().sum::<u64>(), 1);
    assert!(c.findings.contains_key(&("turn.auth.rejected", "error")));
    // Polling after every packet or every 50 packets counts the same things.
    let (_, _, sparse) = replay_counting("turn-auth-fail", 50);
    assert_eq!(
        (
            sparse.allocations_failed,
            &sparse.allocation_errors,
            &sparse.sessions
        ),
        (c.allocations_failed, &c.allocation_errors, &c.sessions)
    );
    assert_eq!(sparse.check_rtt.count, c.check_rtt.count);

    // The relayed call: one allocation granted per relay candidate the browsers reported (getStats),
    // none failed, the call connected, and answered checks have RTTs.
    let t = truth("chrome-relay-udp");
    let relay_candidates = t["pcs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|pc| pc["local_candidates_stats"].as_array().unwrap())
        .filter(|c| c["candidateType"] == "relay")
        .count() as u64;
    let (_, _, c) = replay_counting("chrome-relay-udp", 20);
    assert_eq!(c.allocations_allocated, relay_candidates);
    assert_eq!(c.allocations_failed, 0);
    assert!(c.allocation_errors.is_empty(), "{c:?}");
    assert_eq!(c.sessions.get("connected"), Some(&1));
    assert!(c.check_rtt.count > 0);
    assert!(c.relayed_bytes_to_peer > 0 && c.relayed_bytes_from_peer > 0);
}

#[test]
fn challenge_alone_is_not_a_failure_until_it_settles() {
    // The first poll after the 401 challenge of chrome-relay-udp must not call the allocation failed.
    let (during, _) = replay("chrome-relay-udp", 1);
    assert!(of(&during, "allocation-failed").is_empty());
}

#[test]
fn lines_are_tagged_json() {
    let e = Event::Finding(FindingEvent {
        ts: 1.5,
        finding: Finding {
            severity: findings::Severity::Warning,
            code: "x.y",
            message: "m".into(),
            subject: findings::Subject::Capture,
            frames: vec![3],
        },
    });
    let mut out = Vec::new();
    write(&e, &mut out).unwrap();
    let line = String::from_utf8(out).unwrap();
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "finding");
    assert_eq!(v["code"], "x.y");
    assert_eq!(v["ts"], 1.5);
}
