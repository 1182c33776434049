//! ICE findings (RFC 8445, RFC 7675): why a session failed or is fragile, from the session view.
//!
//! Each rule reads [`SessionReport`]s (the same numbers the report shows) and the capture-wide facts in the
//! model (ICMP errors, STUN/TURN servers used). Thresholds are named constants with the reason for them.
//! Passive NAT observations (RFC 4787 mapping behaviour) are phrased as evidence-based suspicions.
use super::{evidence, Entry, Finding, Scope, Severity, Subject};
use crate::analysis::ice::{CandidateType, Role};
use crate::analysis::sessions::{
    DirectionReport, Outcome, PairReport, PairState, SessionReport, TimelineKind,
};
use crate::analysis::transactions::TxState;
use crate::analysis::Model;
use crate::wire::stun::Method;

/// Connecting slower than this is reported (first check → nomination). Browsers connect in well under a
/// second on working networks; 5 s is what users notice as "the call hangs before it starts".
pub(crate) const SLOW_CONNECT_SECS: f64 = 5.0;
/// RFC 7675 §5.1: consent expires 30 s after the last authenticated response.
pub(crate) const CONSENT_TIMEOUT_SECS: f64 = 30.0;
/// Round-trip time above which the selected path hurts conversation: ITU-T G.114 puts the limit for
/// comfortable interactivity at 150 ms one way, i.e. 300 ms round trip.
pub(crate) const HIGH_RTT_SECS: f64 = 0.300;
/// Share of check transmissions on the selected pair that had to be retransmitted or went unanswered
/// above which the path is called lossy: STUN checks are tiny, so even 10% loss on them means a media
/// path in trouble.
pub(crate) const LOSSY_SHARE: f64 = 0.10;
/// Fewer transmissions than this give no meaningful loss ratio.
pub(crate) const LOSS_MIN_SAMPLES: u64 = 10;

fn session_subject(s: &SessionReport) -> Subject {
    Subject::Session { id: s.id.clone() }
}

fn frames_of(
    s: &SessionReport,
    pred: impl Fn(&crate::analysis::sessions::TimelineEvent) -> bool,
) -> Vec<u64> {
    evidence(s.timeline.iter().filter(|e| pred(e)).map(|e| e.frame).collect())
}

fn has_relay(p: &PairReport) -> bool {
    p.a_type == CandidateType::Relay || p.b_type == CandidateType::Relay
}

/// What the ICE findings take of one open session's view: its findings, and what the capture-wide rules
/// read. A live run's event tracker works it out view by view, so it never holds every open session's
/// view at once.
pub(crate) struct Found {
    index: usize,
    /// Its lasting findings, then those measured up to the capture's end `end` ([`EndFacts::findings`]).
    findings: Vec<Finding>,
    connected: bool,
}

impl Found {
    pub(crate) fn of(s: &SessionReport, end: Option<f64>) -> Found {
        let mut findings = lasting_findings(s);
        if let Some(facts) = EndFacts::of(s) {
            facts.findings(end, &mut findings);
        }
        Found {
            index: s.index,
            findings,
            connected: s.outcome == Outcome::Connected,
        }
    }
}

/// Every ICE finding: per session in session order (those folded during the read, [`Folded`], merged in
/// by index with the open ones, `sessions`: what each view gave, [`Found::of`]), then those about the
/// capture.
/// With [`Scope::Open`], the folded sessions' own findings are left out; those about the capture still
/// count them.
pub(crate) fn findings_of_found_into(
    model: &Model,
    sessions: Vec<Found>,
    scope: Scope,
    out: &mut Vec<Entry>,
) {
    let folded = &model.ice_folded;
    let held = Held {
        any: !sessions.is_empty() || folded.any_session(),
        all_connected: sessions.iter().all(|s| s.connected) && folded.all_connected(),
    };
    let folded = match scope {
        Scope::All => model.ice_folded.in_order(),
        Scope::Open => Vec::new(),
    };
    let (mut live, mut gone) = (sessions.into_iter().peekable(), folded.into_iter().peekable());
    loop {
        let take_live = match (live.peek(), gone.peek()) {
            (Some(s), Some(f)) => s.index < f.index,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_live {
            if let Some(s) = live.next() {
                out.extend(s.findings.into_iter().map(Entry::held));
            }
        } else if let Some(f) = gone.next() {
            // Its end-of-capture findings were folded when the capture ended (`Folded::settle_end`).
            out.extend(f.findings.clone().map(Entry::Folded));
            out.extend(f.end_findings.clone().map(Entry::Folded));
        }
    }
    let mut capture = Vec::new();
    capture_findings(model, held, &mut capture);
    out.extend(capture.into_iter().map(Entry::held));
}

/// What the capture-wide rules need to know of the sessions, folded or not.
struct Held {
    any: bool,
    all_connected: bool,
}

/// Session `s`'s findings that do not depend on when the capture ended: all but [`EndFacts::findings`].
/// They are final once the session is (a folded session's are worked out when it folds).
pub(crate) fn lasting_findings(s: &SessionReport) -> Vec<Finding> {
    let mut out = Vec::new();
    session_findings(s, &mut out);
    out
}

/// What the rules that measure up to the end of the capture (consent lost, media stopped) need of a
/// session with a selected pair: kept for a folded session, whose view is gone when the capture ends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EndFacts {
    id: String,
    last_ts: f64,
    /// The selected pair's last check response, and whether a check came after it, with those checks'
    /// frames (RFC 7675 §5.1).
    last_success: Option<f64>,
    checks_after: Option<Vec<u64>>,
    /// The selected pair's last DTLS/RTP datagram, if it carried any DTLS or RTP.
    last_media: Option<f64>,
}

impl EndFacts {
    pub(crate) fn of(s: &SessionReport) -> Option<EndFacts> {
        let sel = s.selected_pair.as_ref()?;
        let selected = s.pairs.get(sel.index)?;
        let last_success = s
            .timeline
            .iter()
            .filter(|e| e.pair == sel.index && e.event == TimelineKind::Success)
            .map(|e| e.ts)
            .reduce(f64::max);
        let last_check = s
            .timeline
            .iter()
            .filter(|e| e.pair == sel.index && e.event == TimelineKind::Check)
            .map(|e| e.ts)
            .reduce(f64::max);
        let checks_after = match (last_success, last_check) {
            (Some(ok), Some(check)) if check > ok => Some(frames_of(s, |e| {
                e.pair == sel.index && e.ts > ok && e.event == TimelineKind::Check
            })),
            _ => None,
        };
        let media = selected.media.rtp_packets + selected.media.dtls_packets > 0;
        Some(EndFacts {
            id: s.id.clone(),
            last_ts: s.last_ts,
            last_success,
            checks_after,
            last_media: selected.media.last_ts.filter(|_| media),
        })
    }

    /// Its bytes for the folded session's store ([`EndFacts::decode`] reads them back).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        // A session id ("s12") and an evidence list (at most 20 frames) are far below 2^32.
        let id = self.id.as_bytes();
        let n = u32::try_from(id.len()).unwrap_or(0);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(id.get(..n as usize).unwrap_or_default());
        out.extend_from_slice(&self.last_ts.to_le_bytes());
        for x in [self.last_success, self.last_media] {
            out.push(u8::from(x.is_some()));
            out.extend_from_slice(&x.unwrap_or_default().to_le_bytes());
        }
        match &self.checks_after {
            None => out.push(0),
            Some(frames) => {
                out.push(1);
                let n = u32::try_from(frames.len()).unwrap_or(0);
                out.extend_from_slice(&n.to_le_bytes());
                for f in frames.iter().take(n as usize) {
                    out.extend_from_slice(&f.to_le_bytes());
                }
            }
        }
    }

    /// What [`EndFacts::encode`] wrote; None for bytes it did not write (every length is checked).
    pub(crate) fn decode(b: &[u8]) -> Option<EndFacts> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let s = b.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        let u32_at = |s: &[u8]| s.try_into().ok().map(u32::from_le_bytes);
        let n = u32_at(take(4)?)? as usize;
        let id = String::from_utf8(take(n)?.to_vec()).ok()?;
        let last_ts = f64::from_le_bytes(take(8)?.try_into().ok()?);
        let mut optional = || -> Option<Option<f64>> {
            let present = *take(1)?.first()? != 0;
            let x = f64::from_le_bytes(take(8)?.try_into().ok()?);
            Some(present.then_some(x))
        };
        let last_success = optional()?;
        let last_media = optional()?;
        let checks_after = match *take(1)?.first()? {
            0 => None,
            _ => {
                let n = u32_at(take(4)?)? as usize;
                let frames = take(n.checked_mul(8)?)?;
                Some(
                    frames
                        .chunks_exact(8)
                        .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
                        .collect(),
                )
            }
        };
        Some(EndFacts {
            id,
            last_ts,
            last_success,
            checks_after,
            last_media,
        })
    }

    /// Consent lost and media stopped, measured up to `end` (the capture's last packet; the session's
    /// last message when unknown).
    pub(crate) fn findings(&self, end: Option<f64>, out: &mut Vec<Finding>) {
        let end = end.unwrap_or(self.last_ts);
        let subject = || Subject::Session { id: self.id.clone() };
        // Consent freshness (RFC 7675 §5.1): checks kept going on the selected pair but no response for 30 s.
        if let (Some(ok), Some(frames)) = (self.last_success, &self.checks_after) {
            if end - ok >= CONSENT_TIMEOUT_SECS {
                out.push(Finding {
                    severity: Severity::Error,
                    code: "ice.consent-lost",
                    message: format!(
                        "Consent lost: the selected pair got no check response for {:.0} s while checks continued (RFC 7675 allows 30 s) — the peer vanished or the path broke mid-call; media on it must stop.",
                        end - ok
                    ),
                    subject: subject(),
                    frames: frames.clone(),
                });
            }
        }
        if let Some(last_media) = self.last_media {
            if end - last_media >= CONSENT_TIMEOUT_SECS {
                out.push(Finding {
                    severity: Severity::Warning,
                    code: "ice.media-stopped",
                    message: format!(
                        "Media on the selected pair stopped {:.0} s before the capture ended.",
                        end - last_media
                    ),
                    subject: subject(),
                    frames: Vec::new(),
                });
            }
        }
    }
}

/// The rules about one session, in the order their findings are listed.
fn session_findings(s: &SessionReport, out: &mut Vec<Finding>) {
    check_errors(s, out);
    failed(s, out);
    no_nomination(s, out);
    one_way_pairs(s, out);
    // A restart, or a NAT that maps per destination, matters most when the session failed.
    restart(s, out);
    nat_mapping(s, out);
    // The rules from here on read the selected pair.
    let Some(sel) = &s.selected_pair else { return };
    let selected = &s.pairs[sel.index];
    relay_despite_direct(s, selected, out);
    slow_connect(s, out);
    high_rtt(s, selected, out);
    lossy_path(s, selected, out);
}

/// Agent `i`'s ufrag (`?` when the session has no such agent).
fn agent_name(s: &SessionReport, i: usize) -> String {
    s.agents.get(i).map_or("?".to_string(), |a| a.ufrag.clone())
}

/// `count` of the checks agent `i` sent, summed over the session's pairs.
fn sum_by_agent(s: &SessionReport, i: usize, count: impl Fn(&DirectionReport) -> u64) -> u64 {
    s.pairs
        .iter()
        .map(|p| count(if i == 0 { &p.a_to_b } else { &p.b_to_a }))
        .sum()
}

/// An error response code to checks that is a finding of its own.
struct CheckError {
    code: u16,
    severity: Severity,
    finding: &'static str,
    /// Completes "N connectivity check(s) ...".
    meaning: &'static str,
}

const CHECK_ERRORS: [CheckError; 4] = [
    CheckError {
        code: 401,
        severity: Severity::Error,
        finding: "ice.check.unauthorized",
        meaning: "answered 401 Unauthorized: the ufrag/password the sender used is not the receiver's — the SDP's a=ice-ufrag/a=ice-pwd did not reach the peer intact (signaling bug, or stale credentials after an ICE restart)",
    },
    CheckError {
        code: 400,
        severity: Severity::Error,
        finding: "ice.check.bad-request",
        meaning: "answered 400 Bad Request: the check was malformed for the receiver (missing USERNAME/MESSAGE-INTEGRITY, or a stack interoperability bug)",
    },
    CheckError {
        code: 420,
        severity: Severity::Warning,
        finding: "ice.check.unknown-attribute",
        meaning: "answered 420 Unknown Attribute: the receiver does not understand a comprehension-required attribute the sender included",
    },
    CheckError {
        code: 487,
        severity: Severity::Info,
        finding: "ice.role-conflict",
        meaning: "answered 487 Role Conflict: both agents claimed the same role (RFC 8445 §7.3.1.1); resolved by the tie-breaker, but a sign both sides think they made the offer",
    },
];

/// Checks answered with an error response, one finding per code in [`CHECK_ERRORS`] (RFC 8445 §7.2.5.2,
/// RFC 8489 §6.3.4).
fn check_errors(s: &SessionReport, out: &mut Vec<Finding>) {
    for rule in &CHECK_ERRORS {
        let answered = |d: &DirectionReport| d.error_responses_received.get(&rule.code).copied().unwrap_or(0);
        let n: u64 = s
            .pairs
            .iter()
            .map(|p| answered(&p.a_to_b) + answered(&p.b_to_a))
            .sum();
        if n > 0 {
            out.push(Finding {
                severity: rule.severity,
                code: rule.finding,
                message: format!("{n} connectivity check(s) {}.", rule.meaning),
                subject: session_subject(s),
                frames: frames_of(s, |e| {
                    e.event == TimelineKind::Error && e.error_code == Some(rule.code)
                }),
            });
        }
    }
}

/// A failed session (RFC 8445 §8.1.2): no check was ever answered, and who sent what
/// (`ice.failed.no-response`), or the answers were errors (`ice.failed`).
fn failed(s: &SessionReport, out: &mut Vec<Finding>) {
    if s.outcome != Outcome::Failed {
        return;
    }
    let name = |i: usize| agent_name(s, i);
    let sent = |i: usize| sum_by_agent(s, i, |d| d.requests_sent);
    // Error responses are answers too: a check refused with 401 reached the peer (RFC 8445 §7.2.5.2).
    let answered = |i: usize| {
        sum_by_agent(s, i, |d| {
            d.responses_received + d.error_responses_received.values().copied().sum::<u64>()
        })
    };
    let (sent0, sent1) = (sent(0), sent(1));
    if answered(0) + answered(1) > 0 {
        out.push(Finding {
            severity: Severity::Error,
            code: "ice.failed",
            message: format!(
                "ICE failed: {} — see the error responses above.",
                s.outcome_reason
            ),
            subject: session_subject(s),
            frames: frames_of(s, |e| e.event == TimelineKind::Error),
        });
        return;
    }
    let who = match (sent0 > 0, sent1 > 0) {
        (true, true) => format!(
            "both agents sent checks ({} sent {sent0}, {} sent {sent1}) and neither got an answer: UDP between them is blocked or filtered (firewall, or NATs whose filtering drops unsolicited packets)",
            name(0),
            name(1)
        ),
        (true, false) => format!(
            "{} sent {sent0} check(s) and {} sent none: {} may never have received the candidates (signaling/trickle), or its checks were dropped before the capture point",
            name(0),
            name(1),
            name(1)
        ),
        _ => format!("{} sent {sent1} check(s) and {} sent none", name(1), name(0)),
    };
    let next = if s.pairs.iter().any(has_relay) {
        "relay pairs failed too: check that the TURN server is reachable and its relay ports are open"
    } else {
        "no relay candidate was tried: configure a TURN server (relay candidates) so a path exists when direct UDP is blocked"
    };
    out.push(Finding {
        severity: Severity::Error,
        code: "ice.failed.no-response",
        message: format!("ICE failed: {who}; {next}."),
        subject: session_subject(s),
        frames: frames_of(s, |e| {
            e.event == TimelineKind::Check || e.event == TimelineKind::Timeout
        }),
    });
}

/// Checks succeeded but the controlling agent never nominated a pair (RFC 8445 §8.1.1).
fn no_nomination(s: &SessionReport, out: &mut Vec<Finding>) {
    let succeeded = s.pairs.iter().any(|p| p.state == PairState::Succeeded);
    if s.outcome != Outcome::Incomplete || !succeeded || s.selected_pair.is_some() {
        return;
    }
    let controlling = s
        .agents
        .iter()
        .find(|a| a.role == Some(Role::Controlling))
        .map_or("unknown".into(), |a| a.ufrag.clone());
    out.push(Finding {
        severity: Severity::Warning,
        code: "ice.no-nomination",
        message: format!(
            "Checks succeeded but the controlling agent ({controlling}) never nominated a pair (no successful check with USE-CANDIDATE, RFC 8445 §8.1.1): media cannot start; check the controlling side's ICE implementation or whether the capture ended too early."
        ),
        subject: session_subject(s),
        frames: frames_of(s, |e| e.event == TimelineKind::Success),
    });
}

/// A pair whose checks succeed one way and are never answered the other: asymmetric filtering by a NAT
/// or firewall (RFC 4787 §5).
fn one_way_pairs(s: &SessionReport, out: &mut Vec<Finding>) {
    let name = |i: usize| agent_name(s, i);
    let one_way = |x: &DirectionReport, y: &DirectionReport| {
        x.requests_sent > 0 && x.responses_received == 0 && x.unanswered == 0 && y.responses_received > 0
    };
    for (i, p) in s.pairs.iter().enumerate() {
        for (dir, other, from, to) in [(&p.a_to_b, &p.b_to_a, 0, 1), (&p.b_to_a, &p.a_to_b, 1, 0)] {
            if !one_way(dir, other) {
                continue;
            }
            out.push(Finding {
                severity: Severity::Warning,
                code: "ice.pair.one-way",
                message: format!(
                    "On pair {i} ({} ↔ {}) checks from {} were never answered while {}'s succeeded: the path works one way only (a NAT or firewall filters packets toward {}).",
                    p.a,
                    p.b,
                    name(from),
                    name(to),
                    name(to)
                ),
                subject: session_subject(s),
                frames: frames_of(s, |e| e.pair == i && *e.from == name(from) && e.event == TimelineKind::Check),
            });
        }
    }
}

/// The selected pair goes through TURN although a direct pair succeeded, or only relay pairs succeeded
/// (RFC 8445 §5.1.2.2: relayed candidates are the last resort).
fn relay_despite_direct(s: &SessionReport, selected: &PairReport, out: &mut Vec<Finding>) {
    if !has_relay(selected) {
        return;
    }
    let direct_ok = s
        .pairs
        .iter()
        .find(|p| !has_relay(p) && p.state == PairState::Succeeded);
    if let Some(d) = direct_ok {
        out.push(Finding {
            severity: Severity::Warning,
            code: "ice.relay-selected-despite-direct",
            message: format!(
                "The selected pair is relayed through TURN although the direct pair {} ↔ {} also succeeded: the call pays relay latency and bandwidth it does not need (check the controlling agent's nomination / ICE transport policy).",
                d.a, d.b
            ),
            subject: session_subject(s),
            frames: frames_of(s, |e| e.pair == d.index && e.event == TimelineKind::Success),
        });
    } else if s.pairs.iter().any(|p| !has_relay(p)) {
        out.push(Finding {
            severity: Severity::Warning,
            code: "ice.only-relay-succeeded",
            message: "Only relay pairs succeeded; every direct pair failed: likely a symmetric NAT (address-dependent mapping) or UDP blocked between the peers — the call works but depends on the TURN server.".into(),
            subject: session_subject(s),
            frames: frames_of(s, |e| {
                e.event == TimelineKind::Timeout || (e.pair == selected.index && e.event == TimelineKind::Nominated)
            }),
        });
    }
}

/// More than [`SLOW_CONNECT_SECS`] from the first check to nomination (RFC 8445 §8.1.1).
fn slow_connect(s: &SessionReport, out: &mut Vec<Finding>) {
    let slow = s.milestones.time_to_nomination.filter(|&t| t > SLOW_CONNECT_SECS);
    let Some(t) = slow else { return };
    out.push(Finding {
        severity: Severity::Warning,
        code: "ice.slow-connect",
        message: format!(
            "ICE took {t:.1} s from the first check to nomination (over {SLOW_CONNECT_SECS} s): checks on failing pairs or late candidates (trickle) delayed the call."
        ),
        subject: session_subject(s),
        frames: frames_of(s, |e| e.event == TimelineKind::Nominated),
    });
}

/// The selected pair's average check round-trip time, the worse direction's, is over [`HIGH_RTT_SECS`]
/// (ITU-T G.114; RTT as webrtc-stats measures it from RFC 8489 §6.2.1 transactions).
fn high_rtt(s: &SessionReport, selected: &PairReport, out: &mut Vec<Finding>) {
    let rtt = [
        selected.a_to_b.avg_round_trip_time,
        selected.b_to_a.avg_round_trip_time,
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max);
    let Some(rtt) = rtt.filter(|&r| r > HIGH_RTT_SECS) else {
        return;
    };
    out.push(Finding {
        severity: Severity::Warning,
        code: "ice.high-rtt",
        message: format!(
            "The selected pair's average round-trip time is {:.0} ms (over {:.0} ms, ITU-T G.114's limit for interactive speech): expect noticeable delay; a closer TURN server or a direct path would help.",
            rtt * 1000.0,
            HIGH_RTT_SECS * 1000.0
        ),
        subject: session_subject(s),
        frames: frames_of(s, |e| e.pair == selected.index && e.event == TimelineKind::Success),
    });
}

/// More than [`LOSSY_SHARE`] of the selected pair's check transmissions were retransmitted or timed out
/// (RFC 8489 §6.2.1).
fn lossy_path(s: &SessionReport, selected: &PairReport, out: &mut Vec<Finding>) {
    let both = [&selected.a_to_b, &selected.b_to_a];
    let transmissions: u64 = both
        .iter()
        .map(|d| d.requests_sent + d.retransmissions_sent)
        .sum();
    let lost: u64 = both.iter().map(|d| d.retransmissions_sent + d.timeouts).sum();
    if transmissions < LOSS_MIN_SAMPLES || lost as f64 / transmissions as f64 <= LOSSY_SHARE {
        return;
    }
    out.push(Finding {
        severity: Severity::Warning,
        code: "ice.lossy-path",
        message: format!(
            "{lost} of {transmissions} check transmissions on the selected pair were retransmitted or lost ({:.0}%): the path drops packets, media quality will suffer.",
            100.0 * lost as f64 / transmissions as f64
        ),
        subject: session_subject(s),
        frames: frames_of(s, |e| {
            e.pair == selected.index
                && (e.event == TimelineKind::Retransmission || e.event == TimelineKind::Timeout)
        }),
    });
}

/// The session is an ICE restart of an earlier one: new credentials between the same addresses
/// (RFC 8445 §9).
fn restart(s: &SessionReport, out: &mut Vec<Finding>) {
    let Some(prev) = &s.restart_of else { return };
    out.push(Finding {
        severity: Severity::Info,
        code: "ice.restart",
        message: format!("ICE restart: new credentials between addresses session {prev} used (RFC 8445 §9); look at {prev} for why."),
        subject: session_subject(s),
        frames: evidence(s.timeline.first().map(|e| vec![e.frame]).unwrap_or_default()),
    });
}

/// An agent's checks left from addresses no peer learned: a new NAT mapping per destination
/// (address-dependent mapping, RFC 4787 §4.1).
fn nat_mapping(s: &SessionReport, out: &mut Vec<Finding>) {
    let Some(m) = s.nat_mappings.first() else { return };
    out.push(Finding {
        severity: Severity::Warning,
        code: "nat.address-dependent-mapping",
        message: format!(
            "Symmetric NAT suspected for {}: its checks left from {} — {} — so direct checks to peers behind NATs with filtering will fail and a relay is needed.",
            m.agent, m.address, m.inferred_from
        ),
        subject: session_subject(s),
        frames: evidence(s.nat_mappings.iter().map(|m| m.first_frame).collect()),
    });
}

/// Findings that are not about one session.
fn capture_findings(model: &Model, sessions: Held, out: &mut Vec<Finding>) {
    // Candidates were gathered but no connectivity check was ever sent. (Transactions folding retired are
    // summed up in `fold::Retired`.)
    let retired = &model.ice_folded.retired;
    let gathered: Vec<u64> = model
        .transactions
        .iter()
        .filter(|t| (t.method == Method::BINDING || t.method == Method::ALLOCATE) && !t.relayed)
        .filter_map(|t| t.first_request().map(|s| s.frame))
        .chain(retired.gathered.iter().copied())
        .collect();
    if !sessions.any && !gathered.is_empty() {
        let end = model.last_ts.unwrap_or_default();
        let allocates: Vec<_> = model
            .transactions
            .iter()
            .filter(|t| t.method == Method::ALLOCATE)
            .collect();
        let allocated = retired.allocated || allocates.iter().any(|t| t.state(end) == TxState::Succeeded);
        let (severity, message) = if (retired.allocates || !allocates.is_empty()) && !allocated {
            (
                Severity::Error,
                "Candidates were being gathered but no TURN allocation succeeded and no ICE connectivity check was ever sent: with no usable candidates ICE never started — fix the TURN credentials/server first.",
            )
        } else if allocated {
            (
                Severity::Warning,
                "TURN allocations succeeded but no ICE connectivity check was ever seen: the peers never exchanged candidates (signaling), or the checks did not pass this capture point.",
            )
        } else {
            (
                Severity::Info,
                "Only STUN server requests were seen, no ICE connectivity check: if a call ran, its checks did not pass this capture point.",
            )
        };
        out.push(Finding {
            severity,
            code: "ice.no-checks",
            message: message.into(),
            subject: Subject::Capture,
            frames: evidence(gathered),
        });
    }

    // ICMP errors for STUN: a check or request that hit a closed port or an unreachable host.
    if !model.unreachable.is_empty() {
        let n = model.unreachable.len();
        let first = &model.unreachable[0];
        // After every session connected, an ICMP error is normally the peer closing its socket at hang-up.
        let all_connected = sessions.any && sessions.all_connected;
        out.push(Finding {
            severity: if all_connected { Severity::Info } else { Severity::Warning },
            code: "net.icmp-unreachable",
            message: format!(
                "{n} datagram(s) drew ICMP destination-unreachable, first {} → {} (reported by {}): that address/port was closed or unroutable when the packet arrived (RFC 8445 §7.2.5.2.1 treats it as a failed check).",
                first.flow.src, first.flow.dst, first.reporter
            ),
            subject: Subject::Capture,
            frames: evidence(model.unreachable.iter().map(|u| u.seen.frame).collect()),
        });
    }

    // NAT behaviour from STUN servers (RFC 4787 / RFC 5780): one base address mapped to different ports
    // by different servers is address-dependent mapping.
    // Per client: the first binding that has a later one from another server with another mapping, and
    // the first such later one, worked out as the bindings arrived (`ice::mappings`).
    for c in model.ice.mappings.changes() {
        out.push(Finding {
            severity: Severity::Warning,
            code: "nat.mapping-varies-by-destination",
            message: format!(
                "{} was mapped to {} by server {} but to {} by server {}: the NAT's mapping depends on the destination (\"symmetric NAT\"); peers behind filtering NATs will not reach it directly.",
                c.client, c.first_mapped, c.first_server, c.later_mapped, c.later_server
            ),
            subject: Subject::Capture,
            frames: evidence(vec![c.first_frame, c.later_frame]),
        });
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests;
