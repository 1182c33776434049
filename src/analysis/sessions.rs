//! The derived view of ICE sessions — the `sessions` section of the report: agents, candidates, pairs and
//! their checks, the selected pair, milestones, outcome and timeline — computed from the facts `ice`
//! recorded and the transaction table. Findings and every output read this one view.
//!
//! Counters use webrtc-stats names (RTCIceCandidatePairStats) so they read like chrome://webrtc-internals:
//! `requests_sent` counts check transactions, not retransmissions (those are `retransmissions_sent`);
//! `consent_requests_sent` counts checks sent after the pair first succeeded in that direction (RFC 7675
//! consent freshness); RTTs are measured from the last transmission before the response (exact when there
//! was no retransmission).
use crate::analysis::ice::{
    Candidate, CandidateType, EventKind, IceState, Pair, Role, Session, SettledTimeout, Tally,
};
use crate::analysis::pack::SleepStore;
use crate::analysis::transactions::{Transactions, TxState};
use crate::analysis::Model;
use crate::capture::Timestamp;
use crate::net::Transport;
use crate::wire::stun::TransactionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionReport {
    /// The session's position in the analysis (`id` is `s{index + 1}`).
    #[serde(skip)]
    pub(crate) index: usize,
    pub(crate) id: String,
    pub outcome: Outcome,
    /// Why, in one sentence.
    pub(crate) outcome_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restart_of: Option<String>,
    pub first_ts: f64,
    pub(crate) last_ts: f64,
    pub(crate) agents: Vec<AgentReport>,
    pub(crate) candidates: Vec<CandidateReport>,
    /// Addresses agents' checks came from on the wire that are no agent's candidate: a NAT's mapping for
    /// one destination that no peer learned (`candidate_type` "nat-mapping"; passive NAT evidence).
    pub(crate) nat_mappings: Vec<CandidateReport>,
    /// Per agent: what the packets say about its NAT (`analysis::nat`).
    pub(crate) nat: Vec<crate::analysis::nat::NatReport>,
    pub pairs: Vec<PairReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_pair: Option<SelectedPair>,
    /// How often the nominated (selected) pair changed, counting the first nomination (webrtc-stats
    /// `selectedCandidatePairChanges`).
    pub(crate) selected_pair_changes: u64,
    /// Absent with no USE-CANDIDATE at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nomination: Option<Nomination>,
    pub(crate) milestones: Milestones,
    pub(crate) timeline: Vec<TimelineEvent>,
    pub(crate) timeline_events_not_kept: u64,
}

/// How a session ended up, as far as the capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A pair was selected: nominated, or carrying media where no nomination was seen.
    Connected,
    /// No check on any pair succeeded and none is still waiting for an answer.
    Failed,
    /// Checks succeeded but none was nominated, or checks were still unanswered when the capture ended.
    Incomplete,
}

impl Outcome {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Failed => "failed",
            Outcome::Incomplete => "incomplete",
        }
    }
}

/// How the controlling agent nominated (RFC 8445 §8.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Nomination {
    /// USE-CANDIDATE on a pair's checks before any of them succeeded (RFC 5245 aggressive nomination).
    Aggressive,
    /// USE-CANDIDATE only on a pair that had already succeeded.
    Regular,
}

impl Nomination {
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Nomination::Aggressive => "aggressive",
            Nomination::Regular => "regular",
        }
    }
}

/// A candidate pair's check state (webrtc-stats RTCStatsIceCandidatePairState, as far as a capture can
/// tell: no `frozen` or `waiting`, which happen inside the agent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PairState {
    /// A check got a success response.
    Succeeded,
    /// Checks still unanswered at the end of the capture.
    InProgress,
    /// Every check failed or timed out.
    Failed,
}

impl PairState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            PairState::Succeeded => "succeeded",
            PairState::InProgress => "in-progress",
            PairState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AgentReport {
    pub(crate) ufrag: String,
    pub(crate) role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tie_breaker: Option<String>,
    pub(crate) role_changes: Vec<RoleChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) software: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network_cost: Option<u16>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RoleChange {
    pub(crate) ts: f64,
    pub(crate) frame: u64,
    pub(crate) role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CandidateReport {
    pub(crate) agent: String,
    pub(crate) address: String,
    pub(crate) protocol: Transport,
    pub(crate) candidate_type: CandidateType,
    /// How the type was inferred from the wire.
    pub(crate) inferred_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) related_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay_protocol: Option<Transport>,
    /// PRIORITY announced in checks from this address, decoded (RFC 8445 §5.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) priority_type_preference: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) priority_local_preference: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) component: Option<u32>,
    /// The frame the address first appeared in.
    pub(crate) first_frame: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DirectionReport {
    pub(crate) requests_sent: u64,
    pub(crate) retransmissions_sent: u64,
    pub(crate) responses_received: u64,
    pub(crate) error_responses_received: BTreeMap<u16, u64>,
    /// Checks given up on (RFC 8489 §6.2.1 timeout passed inside the capture).
    pub(crate) timeouts: u64,
    /// Checks still unanswered when the capture ended.
    pub(crate) unanswered: u64,
    pub(crate) use_candidate_sent: u64,
    pub(crate) consent_requests_sent: u64,
    pub(crate) keepalives_sent: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_request_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_response_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) current_round_trip_time: Option<f64>,
    pub(crate) total_round_trip_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) min_round_trip_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_round_trip_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) avg_round_trip_time: Option<f64>,
    /// Transactions past the per-direction bound: counted in `requests_sent`, not detailed.
    pub(crate) requests_not_detailed: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct MediaReport {
    pub(crate) dtls_packets: u64,
    pub(crate) rtp_packets: u64,
    pub(crate) rtcp_packets: u64,
    pub(crate) bytes: u64,
    pub(crate) packets_a_to_b: u64,
    pub(crate) packets_b_to_a: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_dtls_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dtls_connected_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_rtp_ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_ts: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairReport {
    pub(crate) index: usize,
    /// Address of `agents[0]`.
    pub(crate) a: String,
    /// Address of `agents[1]`.
    pub(crate) b: String,
    pub(crate) protocol: Transport,
    pub(crate) a_type: CandidateType,
    pub(crate) b_type: CandidateType,
    pub(crate) state: PairState,
    pub(crate) nominated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nominated_ts: Option<f64>,
    pub selected: bool,
    /// Checks agents[0] sent to agents[1], and the other way.
    pub(crate) a_to_b: DirectionReport,
    pub(crate) b_to_a: DirectionReport,
    pub(crate) media: MediaReport,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectedPair {
    pub(crate) index: usize,
    pub(crate) a: String,
    pub(crate) b: String,
    pub a_type: CandidateType,
    pub b_type: CandidateType,
    pub(crate) protocol: Transport,
    pub(crate) nominated: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Milestones {
    pub(crate) first_check_ts: Option<f64>,
    pub(crate) first_success_ts: Option<f64>,
    pub(crate) nominated_ts: Option<f64>,
    pub(crate) dtls_start_ts: Option<f64>,
    pub(crate) dtls_connected_ts: Option<f64>,
    pub(crate) first_media_ts: Option<f64>,
    /// Seconds from the first check.
    pub(crate) time_to_first_success: Option<f64>,
    pub(crate) time_to_nomination: Option<f64>,
    pub(crate) time_to_dtls_connected: Option<f64>,
    pub(crate) time_to_first_media: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TimelineEvent {
    pub(crate) ts: f64,
    pub(crate) frame: u64,
    pub(crate) pair: usize,
    /// ufrag of the agent that sent the message (one of the session's two, shared by its entries: a
    /// `String` each was ~10 % of the analysis thread's allocations, folding the call-dense 4 GB read).
    pub(crate) from: Arc<str>,
    pub(crate) event: TimelineKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transaction_id: Option<TransactionId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) use_candidate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt: Option<f64>,
}

/// What a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TimelineKind {
    /// A check's first transmission.
    Check,
    /// A check sent again (RFC 8489 §6.2.1).
    Retransmission,
    /// A success response to a check.
    Success,
    /// An error response to a check.
    Error,
    /// The pair became nominated: a USE-CANDIDATE check succeeded.
    Nominated,
    RoleChange,
    DtlsStart,
    DtlsConnected,
    MediaStart,
    /// A check given up on: RFC 8489 §6.2.1's timeout passed inside the capture.
    Timeout,
}

impl TimelineKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TimelineKind::Check => "check",
            TimelineKind::Retransmission => "retransmission",
            TimelineKind::Success => "success",
            TimelineKind::Error => "error",
            TimelineKind::Nominated => "nominated",
            TimelineKind::RoleChange => "role-change",
            TimelineKind::DtlsStart => "dtls-start",
            TimelineKind::DtlsConnected => "dtls-connected",
            TimelineKind::MediaStart => "media-start",
            TimelineKind::Timeout => "timeout",
        }
    }

    fn of(kind: EventKind) -> TimelineKind {
        match kind {
            EventKind::Check { retransmit: true, .. } => TimelineKind::Retransmission,
            EventKind::Check { .. } => TimelineKind::Check,
            EventKind::Success { .. } => TimelineKind::Success,
            EventKind::Error { .. } => TimelineKind::Error,
            EventKind::Nominated => TimelineKind::Nominated,
            EventKind::RoleChange { .. } => TimelineKind::RoleChange,
            EventKind::DtlsStart => TimelineKind::DtlsStart,
            EventKind::DtlsConnected => TimelineKind::DtlsConnected,
            EventKind::MediaStart => TimelineKind::MediaStart,
        }
    }
}

fn secs(t: Timestamp) -> f64 {
    t.as_secs_f64()
}

/// Derived facts about one direction of a pair.
fn direction(pair: &Pair, d: usize, txs: &Transactions, end: Timestamp) -> DirectionReport {
    let dir = &pair.dirs[d];
    let t = Tally::of(dir, txs, end);
    let kept = dir.txs.len() as u64 + dir.settled_txs();
    DirectionReport {
        requests_sent: kept + dir.txs_not_kept,
        retransmissions_sent: t.retransmissions,
        responses_received: t.responses,
        error_responses_received: t.errors,
        timeouts: t.timeouts,
        unanswered: t.unanswered,
        use_candidate_sent: dir.use_candidate,
        consent_requests_sent: t.consent,
        keepalives_sent: dir.keepalives,
        first_request_ts: t.first_request.map(secs),
        first_response_ts: t.first_success.map(secs),
        current_round_trip_time: t.rtt_last,
        total_round_trip_time: t.rtt_total,
        min_round_trip_time: t.rtt_min,
        max_round_trip_time: t.rtt_max,
        avg_round_trip_time: (t.rtts > 0).then(|| t.rtt_total / t.rtts as f64),
        requests_not_detailed: dir.txs_not_kept,
    }
}

fn pair_state(a: &DirectionReport, b: &DirectionReport) -> PairState {
    if a.responses_received + b.responses_received > 0 {
        PairState::Succeeded
    } else if a.unanswered + b.unanswered > 0 {
        PairState::InProgress
    } else {
        PairState::Failed
    }
}

fn type_of(cands: &[Candidate], addr: std::net::SocketAddr, t: Transport) -> CandidateType {
    cands
        .iter()
        .find(|c| c.address == addr && c.transport == t)
        .map_or(CandidateType::Host, |c| c.typ)
}

/// Builds the `sessions` section: every session not folded during the read (those are in
/// [`crate::analysis::fold::Folded`], already rendered).
pub(crate) fn build(model: &Model) -> Vec<SessionReport> {
    let mut views = Vec::new();
    each(model, |s| views.push(s));
    views
}

/// [`build`]'s views one at a time, in the same order, each handed to `f` and dropped.
/// A sleeping session is read back for its view and let go after it ([`Sessions::get_passing`]).
///
/// [`Sessions::get_passing`]: crate::analysis::ice::Sessions::get_passing
pub(crate) fn each(model: &Model, mut f: impl FnMut(SessionReport)) {
    let end = model.last_ts.unwrap_or_default();
    for (s, sess) in model.ice.sessions.iter_passing_from(0) {
        if let Some(view) = view(&model.ice, s, &sess, &model.transactions, end) {
            f(view);
        }
    }
}

/// The view of session `s` at time `end` (None for one folded, whose view was rendered when it folded).
/// A sleeping one is read back for it, not kept.
pub(crate) fn session(ice: &IceState, s: usize, txs: &Transactions, end: Timestamp) -> Option<SessionReport> {
    view(ice, s, &*ice.sessions.get_passing(s)?, txs, end)
}

/// The view at time `end` of `sess`, session `s` of `ice`.
pub(crate) fn view(
    ice: &IceState,
    s: usize,
    sess: &Session,
    txs: &Transactions,
    end: Timestamp,
) -> Option<SessionReport> {
    if sess.folded {
        return None;
    }
    let cands = [ice.candidates(sess, 0), ice.candidates(sess, 1)];
    let mut pairs: Vec<PairReport> = sess
        .pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let a_to_b = direction(p, 0, txs, end);
            let b_to_a = direction(p, 1, txs, end);
            let m = p.media();
            PairReport {
                index: i,
                a: p.a.to_string(),
                b: p.b.to_string(),
                protocol: p.transport,
                a_type: type_of(&cands[0], p.a, p.transport),
                b_type: type_of(&cands[1], p.b, p.transport),
                state: pair_state(&a_to_b, &b_to_a),
                nominated: !p.nominations.is_empty(),
                nominated_ts: p.nominations.first().map(|n| secs(n.ts)),
                selected: false,
                a_to_b,
                b_to_a,
                media: MediaReport {
                    dtls_packets: m.dtls,
                    rtp_packets: m.rtp,
                    rtcp_packets: m.rtcp,
                    bytes: m.bytes,
                    packets_a_to_b: m.packets[0],
                    packets_b_to_a: m.packets[1],
                    first_dtls_ts: m.first_dtls.map(|x| secs(x.ts)),
                    dtls_connected_ts: m.first_dtls_data.map(|x| secs(x.ts)),
                    first_rtp_ts: m.first_rtp.map(|x| secs(x.ts)),
                    last_ts: m.last.map(|x| secs(x.ts)),
                },
            }
        })
        .collect();

    let selected_pair = select(sess, &pairs);
    if let Some(sel) = &selected_pair {
        pairs[sel.index].selected = true;
    }

    let m = milestones(sess, &pairs, selected_pair.as_ref().map(|s| s.index));
    let mut nominations: Vec<(Timestamp, usize)> = sess
        .pairs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.nominations.iter().map(move |n| (n.ts, i)))
        .collect();
    nominations.sort();
    let mut selected_pair_changes = 0;
    let mut current = None;
    for (_, i) in nominations {
        if current != Some(i) {
            selected_pair_changes += 1;
            current = Some(i);
        }
    }
    let nomination = nomination_mode(sess, txs, end);
    let (outcome, outcome_reason) = outcome(&pairs, selected_pair.as_ref(), end, sess);

    let mut candidates = Vec::new();
    let mut nat_mappings = Vec::new();
    for (agent, list) in cands.iter().enumerate() {
        for c in list {
            let p = c.priority;
            let into = if c.typ == CandidateType::NatMapping {
                &mut nat_mappings
            } else {
                &mut candidates
            };
            into.push(CandidateReport {
                agent: sess.agents[agent].ufrag.clone(),
                address: c.address.to_string(),
                protocol: c.transport,
                candidate_type: c.typ,
                inferred_from: c.how.clone(),
                related_address: c.related.map(|r| r.to_string()),
                relay_protocol: c.relay_protocol,
                priority: p,
                priority_type_preference: p.map(|p| p >> 24),
                priority_local_preference: p.map(|p| (p >> 8) & 0xFFFF),
                component: p.map(|p| 256 - (p & 0xFF)),
                first_frame: c.first_frame,
            });
        }
    }

    let nat = sess
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| crate::analysis::nat::infer(&a.ufrag, i, &candidates, &nat_mappings, &pairs))
        .collect();
    Some(SessionReport {
        index: s,
        id: format!("s{}", s + 1),
        outcome,
        outcome_reason,
        restart_of: sess.restart_of.map(|r| format!("s{}", r + 1)),
        first_ts: secs(sess.first.ts),
        last_ts: secs(sess.last.ts),
        agents: sess.agents.iter().map(agent_report).collect(),
        candidates,
        nat_mappings,
        nat,
        pairs,
        selected_pair,
        selected_pair_changes,
        nomination,
        milestones: m,
        timeline: timeline(sess, txs, ice.sessions.sleep_store(), end),
        timeline_events_not_kept: sess.timeline_events_not_kept(),
    })
}

/// The selected pair: the last one nominated (RFC 8445 §8.1.1; a controlling agent may nominate again),
/// or, where no nomination was seen, the succeeded pair that carried DTLS/media.
fn select(sess: &Session, pairs: &[PairReport]) -> Option<SelectedPair> {
    let last_nominated = sess
        .pairs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.nominations.last().map(|n| (n.ts, i)))
        .max()
        .map(|(_, i)| i);
    let (index, nominated) = match last_nominated {
        Some(i) => (i, true),
        None => {
            let carrier = pairs
                .iter()
                .filter(|p| p.state == PairState::Succeeded && p.media.dtls_packets + p.media.rtp_packets > 0)
                .max_by_key(|p| p.media.dtls_packets + p.media.rtp_packets)?;
            (carrier.index, false)
        }
    };
    let p = pairs.get(index)?;
    Some(SelectedPair {
        index,
        a: p.a.clone(),
        b: p.b.clone(),
        a_type: p.a_type,
        b_type: p.b_type,
        protocol: p.protocol,
        nominated,
    })
}

fn nomination_mode(sess: &Session, txs: &Transactions, end: Timestamp) -> Option<Nomination> {
    let controlling = sess
        .agents
        .iter()
        .position(|a| a.role == Some(Role::Controlling))?;
    let mut any = false;
    for p in &sess.pairs {
        let dir = &p.dirs[controlling];
        if dir.use_candidate == 0 {
            continue;
        }
        any = true;
        let uc_at = dir.first_use_candidate;
        let first_success = Tally::of(dir, txs, end).earliest_success;
        match (uc_at, first_success) {
            (Some(uc), Some(ok)) if uc < ok => return Some(Nomination::Aggressive),
            (Some(_), None) => return Some(Nomination::Aggressive),
            _ => {}
        }
    }
    any.then_some(Nomination::Regular)
}

fn agent_report(a: &crate::analysis::ice::Agent) -> AgentReport {
    AgentReport {
        ufrag: a.ufrag.clone(),
        role: a.role,
        tie_breaker: a.tie_breaker.map(|t| format!("0x{t:016x}")),
        role_changes: a
            .role_changes
            .iter()
            .map(|(seen, role)| RoleChange {
                ts: secs(seen.ts),
                frame: seen.frame,
                role: *role,
            })
            .collect(),
        software: a.software.clone(),
        network_id: a.network_info.map(|n| n.id),
        network_cost: a.network_info.map(|n| n.cost),
    }
}

fn milestones(sess: &Session, pairs: &[PairReport], selected: Option<usize>) -> Milestones {
    let min = |it: &mut dyn Iterator<Item = f64>| it.reduce(f64::min);
    let first_check = min(&mut pairs
        .iter()
        .flat_map(|p| [p.a_to_b.first_request_ts, p.b_to_a.first_request_ts])
        .flatten());
    let first_success = min(&mut pairs
        .iter()
        .flat_map(|p| [p.a_to_b.first_response_ts, p.b_to_a.first_response_ts])
        .flatten());
    let sel = selected.and_then(|i| pairs.get(i));
    let nominated = sel.and_then(|p| p.nominated_ts);
    let dtls_start = sel.and_then(|p| p.media.first_dtls_ts);
    let dtls_connected = sel.and_then(|p| p.media.dtls_connected_ts);
    let first_media = sel.and_then(|p| p.media.first_rtp_ts);
    let since = |t: Option<f64>| match (t, first_check) {
        (Some(t), Some(f)) => Some(t - f),
        _ => None,
    };
    let _ = sess;
    Milestones {
        first_check_ts: first_check,
        first_success_ts: first_success,
        nominated_ts: nominated,
        dtls_start_ts: dtls_start,
        dtls_connected_ts: dtls_connected,
        first_media_ts: first_media,
        time_to_first_success: since(first_success),
        time_to_nomination: since(nominated),
        time_to_dtls_connected: since(dtls_connected),
        time_to_first_media: since(first_media),
    }
}

fn outcome(
    pairs: &[PairReport],
    selected: Option<&SelectedPair>,
    end: Timestamp,
    sess: &Session,
) -> (Outcome, String) {
    if let Some(sel) = selected {
        let how = if sel.nominated {
            "nominated"
        } else {
            "carrying media (no nomination seen)"
        };
        return (
            Outcome::Connected,
            format!(
                "{} {} ↔ {} {} {how}",
                sel.a_type.name(),
                sel.a,
                sel.b_type.name(),
                sel.b
            ),
        );
    }
    let succeeded = pairs.iter().filter(|p| p.state == PairState::Succeeded).count();
    let in_progress = pairs.iter().filter(|p| p.state == PairState::InProgress).count();
    let _ = (end, sess);
    if succeeded > 0 {
        return (
            Outcome::Incomplete,
            format!("{succeeded} pair(s) succeeded but none was nominated before the capture ended"),
        );
    }
    if in_progress > 0 {
        return (
            Outcome::Incomplete,
            format!("checks on {in_progress} pair(s) still unanswered when the capture ended"),
        );
    }
    let errors: u64 = pairs
        .iter()
        .map(|p| {
            p.a_to_b.error_responses_received.values().sum::<u64>()
                + p.b_to_a.error_responses_received.values().sum::<u64>()
        })
        .sum();
    if errors > 0 {
        (
            Outcome::Failed,
            format!(
                "no check succeeded on {} pair(s); {errors} were answered with errors",
                pairs.len()
            ),
        )
    } else {
        (
            Outcome::Failed,
            format!("no check on any of {} pair(s) was ever answered", pairs.len()),
        )
    }
}

fn timeline(
    sess: &Session,
    txs: &Transactions,
    store: Option<&SleepStore>,
    end: Timestamp,
) -> Vec<TimelineEvent> {
    let names: [Arc<str>; 2] = [0, 1].map(|i| Arc::from(sess.agents[i].ufrag.as_str()));
    let ufrag = |from: u8| names[usize::from(from != 0)].clone();
    let mut out: Vec<TimelineEvent> = sess
        .timeline_shown(txs, store)
        .map(|e| {
            let mut ev = TimelineEvent {
                ts: secs(e.ts),
                frame: e.frame,
                pair: usize::from(e.pair),
                from: ufrag(e.from),
                event: TimelineKind::of(e.kind),
                transaction_id: None,
                use_candidate: false,
                error_code: None,
                rtt: None,
            };
            // The transaction's id and round-trip time, from the table or as it settled or froze.
            let id = e.id;
            match e.kind {
                EventKind::Check { use_candidate, .. } => {
                    ev.transaction_id = id;
                    ev.use_candidate = use_candidate;
                }
                EventKind::Success { .. } => {
                    ev.transaction_id = id;
                    ev.rtt = e.rtt;
                }
                EventKind::Error { code, .. } => {
                    ev.transaction_id = id;
                    ev.error_code = Some(code);
                }
                EventKind::Nominated
                | EventKind::RoleChange { .. }
                | EventKind::DtlsStart
                | EventKind::DtlsConnected
                | EventKind::MediaStart => {}
            }
            ev
        })
        .collect();
    // Timeouts happen at the give-up time, not at a packet: add them where they fall.
    for (pi, p) in sess.pairs.iter().enumerate() {
        for (d, dir) in p.dirs.iter().enumerate() {
            let open = dir.txs.iter().filter_map(|&i| {
                let tx = txs.get(i).filter(|t| t.state(end) == TxState::TimedOut)?;
                let first = tx.first_request()?;
                Some(SettledTimeout {
                    first: first.ts,
                    frame: tx.last_request().map_or(first.frame, |s| s.frame),
                    id: tx.id,
                })
            });
            for t in dir.settled_timeouts().copied().chain(open) {
                out.push(TimelineEvent {
                    ts: secs(
                        t.first
                            .saturating_add_secs(crate::analysis::transactions::GIVE_UP_SECS),
                    ),
                    frame: t.frame,
                    pair: pi,
                    from: ufrag(u8::from(d == 1)),
                    event: TimelineKind::Timeout,
                    transaction_id: Some(t.id),
                    use_candidate: false,
                    error_code: None,
                    rtt: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(a.frame.cmp(&b.frame)));
    out
}
