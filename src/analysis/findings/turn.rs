//! TURN findings (RFC 8656, RFC 6062): authentication, allocation failures, refreshes, permissions,
//! channels and relayed traffic, each with the frames that prove it.
//!
//! Authentication is told apart as far as the wire allows (RFC 8489 §9.2.4): a 401 to a request without
//! credentials is the normal challenge; a 401 to a request that carried USERNAME and MESSAGE-INTEGRITY
//! rejects the credential. Whether the password was wrong or the user unknown is not on the wire (coturn
//! answers 401 to both); with the password given to iceview (`--credentials`) the request's
//! MESSAGE-INTEGRITY settles it. A run of 438s is a nonce loop. Packets a server drops without a word
//! (no permission §9, unbound or lapsed channel §12, expired allocation §8) are counted by
//! `analysis::turn` as they pass; this module only words them. No finding is raised from what the capture
//! could not have seen (permissions of an allocation created before it began, for instance).
use super::{evidence, Entry, Finding, Scope, Severity, Subject};
use crate::analysis::transactions::{Transaction, Transactions, TxState};
use crate::analysis::turn::{
    Allocation, AllocationKey, AllocationState, CredentialCheck, Dropped, TurnError, CHANNEL_LIFETIME_SECS,
    PERMISSION_LIFETIME_SECS,
};
use crate::analysis::Model;
use crate::capture::Timestamp;
use crate::net::Transport;
use crate::wire::stun::Method;
use std::collections::BTreeMap;

/// 438s in a row (no success between them) that make a stale-nonce loop. A client retries once with the
/// fresh NONCE of the 438 (RFC 8489 §9.2.4); a second 438 can be a nonce that expired while the retry was
/// in flight; a third means client and server never agree on a nonce.
pub(crate) const STALE_NONCE_LOOP: u32 = 3;
/// How long after an allocation was granted (or after the client first sent through it) the capture must
/// go on before "no relayed traffic" is said. ICE starts connectivity checks on a relay candidate within a
/// second of gathering it (checks are paced every 50 ms, RFC 8445 §14.2) and a peer answers within a
/// round trip, so 5 s without a packet is not a matter of waiting a little longer.
pub(crate) const NO_TRAFFIC_GRACE_SECS: f64 = 5.0;

/// The meaning of a TURN/STUN error code in words (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3, RFC 8016).
/// A 401 means two things: the challenge every client gets first, or a rejected credential.
pub(crate) fn error_meaning(code: u16, authenticated_request: bool) -> &'static str {
    match code {
        300 => "Try Alternate: the server redirects the client to ALTERNATE-SERVER",
        400 => "Bad Request: the request was malformed or not allowed now (e.g. a channel number out of range or already bound to another peer)",
        401 if authenticated_request => "Unauthorized: the server rejected the credentials (wrong password or unknown user)",
        401 => "Unauthorized: the server's challenge, giving REALM and NONCE; the client retries with credentials (normal)",
        403 => "Forbidden: the server refuses this request for this user or peer (server policy, e.g. a denied peer address range)",
        405 => "Mobility Forbidden: the server does not allow this allocation to move (RFC 8016)",
        420 => "Unknown Attribute: the request carried a comprehension-required attribute the server does not know",
        // [MS-TURN] §2.2.2.4's codes, from draft-ietf-behave-rfc3489bis-02 (Wireshark marks them legacy).
        434 => "Missing Realm (MS-TURN): the request carried no REALM",
        435 => "Missing Nonce (MS-TURN): the request carried no NONCE",
        436 => "Unknown User (MS-TURN): the server does not know the USERNAME, an MS-TURN token it hands out (expired, or from another server)",
        437 => "Allocation Mismatch: the request does not fit the allocation state on this 5-tuple (Allocate when one exists, or anything else when none exists, e.g. after it expired)",
        438 => "Stale Nonce: the NONCE expired; the client must retry with the new one",
        440 => "Address Family not Supported: the server cannot relay the requested address family",
        441 => "Wrong Credentials: the request used other credentials than the ones that created the allocation",
        442 => "Unsupported Transport Protocol: the server does not relay the REQUESTED-TRANSPORT asked for",
        443 => "Peer Address Family Mismatch: the peer address is of another family than the relayed address",
        446 => "Connection Already Exists: a TCP connection to this peer exists already (RFC 6062)",
        447 => "Connection Timeout or Failure: the server could not open the TCP connection to the peer (RFC 6062)",
        486 => "Allocation Quota Reached: this user has as many allocations as the server allows",
        487 => "Role Conflict: both ICE agents claim the same role",
        500 => "Server Error: the server failed temporarily",
        508 => "Insufficient Capacity: the server has no relay ports or bandwidth left",
        _ => match code / 100 {
            3 => "a redirection (3xx)",
            4 => "a client error (4xx)",
            5 => "a server error (5xx)",
            _ => "an error code outside the registry",
        },
    }
}

fn subject(key: &AllocationKey) -> Subject {
    Subject::Allocation {
        client: key.client.to_string(),
        server: key.server.to_string(),
        transport: key.transport,
    }
}

fn quoted(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("\"{s}\""),
        None => "(none)".to_string(),
    }
}

/// Codes worded by a dedicated finding below; others get the generic `turn.error`.
const DEDICATED: [u16; 10] = [401, 403, 437, 438, 440, 441, 442, 443, 486, 508];

/// Every TURN finding ([`findings_into`]).
#[cfg(test)]
pub(crate) fn findings(model: &Model) -> Vec<Entry> {
    let mut out = Vec::new();
    findings_into(model, Scope::All, &mut out);
    out
}

/// Every TURN finding, allocation by allocation in key order, appended to `out`: those folded during the
/// read ([`crate::analysis::fold`]) merged in with the ones still in the model, or only the latter
/// ([`Scope::Open`]).
pub(crate) fn findings_into(model: &Model, scope: Scope, out: &mut Vec<Entry>) {
    let end = model.last_ts.unwrap_or_default();
    let mut txs = transactions_by_allocation(&model.transactions, |key| {
        model.turn.allocations.contains_key(key)
    });
    let folded = match scope {
        Scope::All => model.ice_folded.allocations_in_order(),
        Scope::Open => Vec::new(),
    };
    let mut folded = folded.into_iter().peekable();
    for (key, a) in model.turn.allocations.in_order() {
        let key = &key;
        while let Some(f) = folded.next_if(|f| f.key() <= *key) {
            out.extend(f.findings.clone().map(Entry::Folded));
        }
        let txs = txs.remove(key).unwrap_or_default();
        out.extend(
            allocation_findings(key, &a, &txs, end)
                .into_iter()
                .map(Entry::held),
        );
    }
    for f in folded {
        out.extend(f.findings.clone().map(Entry::Folded));
    }
}

/// The Allocate and Refresh transactions (RFC 8656 §7, §8) of the allocations `wanted` picks, from the
/// shared transaction table, each allocation's in the order they began.
pub(crate) fn transactions_by_allocation(
    transactions: &Transactions,
    wanted: impl Fn(&AllocationKey) -> bool,
) -> BTreeMap<AllocationKey, Vec<&Transaction>> {
    let mut txs: BTreeMap<AllocationKey, Vec<&Transaction>> = BTreeMap::new();
    for t in transactions.iter() {
        if !is_allocation_request(t) {
            continue;
        }
        let key = AllocationKey::of_request(t);
        if wanted(&key) {
            txs.entry(key).or_default().push(t);
        }
    }
    for list in txs.values_mut() {
        in_request_order(list);
    }
    txs
}

/// Whether `t` is one of the requests an allocation's findings read (Allocate and Refresh from the
/// client, not relayed).
pub(crate) fn is_allocation_request(t: &Transaction) -> bool {
    !t.relayed && (t.method == Method::ALLOCATE || t.method == Method::REFRESH)
}

/// Sorts an allocation's transactions (in table order) into the order their requests began: retired
/// slots are reused, so the table's order is not always that order. Stable, so ties keep table order.
pub(crate) fn in_request_order(txs: &mut [&Transaction]) {
    txs.sort_by_key(|t| t.first_request().map(|s| (s.ts, s.frame)));
}

/// Whether every Allocate of an allocation went unanswered: its finding measures up to the capture's
/// end, so such an allocation is not folded early. `txs` are those still in the table; an answered one
/// retired is in `a.allocate_answered`.
pub(crate) fn allocate_unanswered(a: &Allocation, txs: &[&Transaction]) -> bool {
    if a.allocate_answered {
        return false;
    }
    let mut allocates = txs.iter().filter(|t| t.method == Method::ALLOCATE).peekable();
    allocates.peek().is_some() && allocates.all(|t| !t.answered())
}

/// One allocation's findings, as the capture ending at `end` shows them.
pub(crate) fn allocation_findings(
    key: &AllocationKey,
    a: &Allocation,
    txs: &[&Transaction],
    end: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut f = Rules {
        key,
        a,
        end,
        out: &mut out,
    };
    f.auth();
    f.no_response(txs);
    f.errors();
    f.refresh(txs);
    f.dropped();
    f.channel_conflicts();
    f.traffic();
    out
}

struct Rules<'a> {
    key: &'a AllocationKey,
    a: &'a Allocation,
    end: Timestamp,
    out: &'a mut Vec<Finding>,
}

impl Rules<'_> {
    fn push(&mut self, severity: Severity, code: &'static str, message: String, frames: Vec<u64>) {
        self.out.push(Finding {
            severity,
            code,
            message,
            subject: subject(self.key),
            frames: evidence(frames),
        });
    }

    fn server(&self) -> String {
        format!("{} ({})", self.key.server, self.key.transport.name())
    }

    fn auth(&mut self) {
        let a = self.a;
        if let Some(r) = a.rejections.first() {
            let frames: Vec<u64> = a
                .rejections
                .iter()
                .flat_map(|r| r.request.map(|q| q.frame).into_iter().chain([r.response.frame]))
                .collect();
            let user = quoted(r.username.as_deref());
            let realm = quoted(r.realm.as_deref());
            let n = a.rejections_total;
            let (code, message) = match r.credential {
                CredentialCheck::DiffersFromGiven => (
                    "turn.auth.wrong-password",
                    format!(
                        "{} rejected user {user} (realm {realm}) {n} time(s), and the request's MESSAGE-INTEGRITY does not match the password given to iceview for that user: the client uses a wrong password, so check the credentials the application hands to it (and their expiry, for time-limited TURN credentials).",
                        self.server()
                    ),
                ),
                CredentialCheck::Matches => (
                    "turn.auth.unknown-user",
                    format!(
                        "{} rejected user {user} (realm {realm}) {n} time(s) although the request's MESSAGE-INTEGRITY matches the password given to iceview: the server does not know this user in this realm or stores another password for it, so check the server's user database.",
                        self.server()
                    ),
                ),
                CredentialCheck::Unchecked => (
                    "turn.auth.rejected",
                    format!(
                        "{} answered 401 to {n} authenticated request(s) from user {user} (realm {realm}): the password is wrong or the user is unknown, which look the same on the wire (coturn answers 401 to both), so check the server's log or rerun iceview with --credentials to test the password.",
                        self.server()
                    ),
                ),
            };
            self.push(Severity::Error, code, message, frames);
        }
        let s = &a.rare().stale_nonces;
        if s.longest_run >= STALE_NONCE_LOOP {
            let reuse = if s.reused > 0 {
                format!(
                    " and the client came back {} time(s) with the very nonce just declared stale, so it is ignoring the NONCE of the 438 (a client bug)",
                    s.reused
                )
            } else {
                ", so check the server's nonce lifetime and that client and server clocks and retries are sane".to_string()
            };
            self.push(
                Severity::Error,
                "turn.auth.stale-nonce-loop",
                format!(
                    "{} answered 438 Stale Nonce {} times in a row ({} in all){reuse}.",
                    self.server(),
                    s.longest_run,
                    s.total
                ),
                s.frames.clone(),
            );
        }
        if let Some(n) = a.error_counts.get(&441) {
            let frames = self.error_frames(|e| e.code == 441);
            self.push(
                Severity::Error,
                "turn.auth.wrong-credentials",
                format!(
                    "{} answered 441 Wrong Credentials {n} time(s): requests on this allocation used another username than the one that created it ({}), so check that the client does not switch credentials mid-allocation.",
                    self.server(),
                    quoted(a.username.as_deref())
                ),
                frames,
            );
        }
    }

    fn error_frames(&self, pick: impl Fn(&TurnError) -> bool) -> Vec<u64> {
        self.a
            .errors
            .iter()
            .filter(|e| pick(e))
            .flat_map(|e| e.request.map(|r| r.frame).into_iter().chain([e.at.frame]))
            .collect()
    }

    fn no_response(&mut self, txs: &[&Transaction]) {
        let allocates: Vec<&&Transaction> = txs.iter().filter(|t| t.method == Method::ALLOCATE).collect();
        if self.a.allocate_answered || allocates.is_empty() || allocates.iter().any(|t| t.answered()) {
            return;
        }
        let timed_out = allocates.iter().any(|t| t.state(self.end) == TxState::TimedOut);
        let sent: u32 = allocates.iter().map(|t| t.transmissions).sum();
        let first = allocates
            .iter()
            .filter_map(|t| t.first_request())
            .min_by_key(|s| s.ts);
        let span = first.map_or(0.0, |f| self.end.secs_since(f.ts));
        let frames: Vec<u64> = allocates
            .iter()
            .flat_map(|t| t.requests().map(|s| s.frame))
            .collect();
        let path = match self.key.transport {
            Transport::Udp => format!(
                "the server is unreachable or UDP to port {} is blocked on the way, so check the server address and the firewalls (or try TURN over TCP/TLS)",
                self.key.server.port()
            ),
            Transport::Tcp => "the TCP connection carries the requests but the server never answers, so check that a TURN server (not another service) listens there and its log".to_string(),
        };
        if timed_out {
            self.push(
                Severity::Error,
                "turn.allocate.no-response",
                format!(
                    "Allocate to {} got no answer ({sent} transmission(s) over {span:.1} s): {path}.",
                    self.server()
                ),
                frames,
            );
        } else {
            self.push(
                Severity::Warning,
                "turn.allocate.no-response",
                format!(
                    "Allocate to {} was not answered before the capture ended {span:.1} s later ({sent} transmission(s)): if a longer capture shows the same, {path}.",
                    self.server()
                ),
                frames,
            );
        }
    }

    fn errors(&mut self) {
        let a = self.a;
        let per_code: [(u16, Severity, &'static str, &str); 7] = [
            (486, Severity::Error, "turn.allocate.quota", "this user already holds as many allocations as the server allows (486 Allocation Quota Reached), so look for allocations leaked by clients that never delete them, or raise the user quota"),
            (508, Severity::Error, "turn.allocate.capacity", "the server is out of relay ports or bandwidth (508 Insufficient Capacity), so check its relay port range and load"),
            (403, Severity::Error, "turn.forbidden", "the server refused by policy (403 Forbidden), so check its allowed and denied peer address ranges and this user's rights"),
            (442, Severity::Error, "turn.allocate.unsupported-transport", "the server does not relay the REQUESTED-TRANSPORT asked for (442), so check that the client asks for UDP, or that the server has TCP relaying (RFC 6062) enabled"),
            (440, Severity::Error, "turn.address-family", "the server cannot relay the address family asked for (440 Address Family not Supported), so check the server's relay addresses for IPv4/IPv6"),
            (443, Severity::Error, "turn.address-family", "a peer address is of another family than the relayed address (443 Peer Address Family Mismatch), so the client must use a relay of the peer's family"),
            (437, Severity::Warning, "turn.allocate.mismatch", "an Allocate came on a 5-tuple that already has an allocation (437 Allocation Mismatch), so the client reused its socket or retried with a new transaction after a lost response"),
        ];
        for (code, severity, id, what) in per_code {
            // 437 to Refresh is a refresh failure, not an allocate mismatch.
            let pick = |e: &TurnError| {
                e.code == code && e.family.is_none() && (code != 437 || e.method == Method::ALLOCATE)
            };
            let n = a.errors.iter().filter(|e| pick(e)).count();
            if n == 0 {
                continue;
            }
            let methods: Vec<String> = {
                let mut m: Vec<String> = a
                    .errors
                    .iter()
                    .filter(|e| pick(e))
                    .map(|e| e.method.to_string())
                    .collect();
                m.sort();
                m.dedup();
                m
            };
            let frames = self.error_frames(pick);
            self.push(
                severity,
                id,
                format!(
                    "{} answered {} ({n} time(s)): {what}.",
                    self.server(),
                    methods.join(", ")
                ),
                frames,
            );
        }
        // RFC 8656 §7.1: one family of a dual allocation failed, the other was granted.
        let family: Vec<&TurnError> = a.errors.iter().filter(|e| e.family.is_some()).collect();
        if let Some(e) = family.first() {
            let fam = match e.family {
                Some(1) => "IPv4",
                Some(2) => "IPv6",
                _ => "one address family",
            };
            self.push(
                Severity::Warning,
                "turn.address-family",
                format!(
                    "{} granted the allocation but not for {fam} ({} {}), so peers of that family cannot be reached through it.",
                    self.server(),
                    e.code,
                    e.reason
                ),
                family.iter().map(|e| e.at.frame).collect(),
            );
        }
        let conflicts = a.channel_conflicts.packets > 0;
        let others: Vec<&TurnError> = a
            .errors
            .iter()
            .filter(|e| e.family.is_none() && !DEDICATED.contains(&e.code))
            .filter(|e| !(conflicts && e.code == 400 && e.method == Method::CHANNEL_BIND))
            .collect();
        let mut by_code: BTreeMap<(u16, String), Vec<u64>> = BTreeMap::new();
        for e in others {
            by_code
                .entry((e.code, e.method.to_string()))
                .or_default()
                .extend(e.request.map(|r| r.frame).into_iter().chain([e.at.frame]));
        }
        for ((code, method), frames) in by_code {
            self.push(
                Severity::Warning,
                "turn.error",
                format!(
                    "{} answered {method} with {code}: {}.",
                    self.server(),
                    error_meaning(code, false)
                ),
                frames,
            );
        }
    }

    fn refresh(&mut self, txs: &[&Transaction]) {
        let a = self.a;
        // 401 is worded by auth(), 438 by the stale-nonce rule, and a delete answered 437 did delete.
        let failed: Vec<&TurnError> = a
            .errors
            .iter()
            .filter(|e| e.method == Method::REFRESH && e.code != 401 && e.code != 438)
            .filter(|e| !(e.code == 437 && a.deleted_at == Some(e.at)))
            .collect();
        if let Some(&e) = failed.first() {
            // What was left of the granted lifetime when the refused Refresh was sent: with time left, the
            // server dropped the allocation early, and blaming the client's timer would contradict the packets.
            let sent = e.request.unwrap_or(e.at).ts;
            let left = a
                .refreshed_at
                .zip(a.lifetime)
                .map(|(r, l)| r.ts.saturating_add_secs(f64::from(l)).secs_since(sent))
                .filter(|&left| left > 0.0);
            let what = if let (437, Some(left)) = (e.code, left) {
                format!(
                    "the server no longer has this allocation although {left:.0} s of its lifetime were left when the client refreshed, so the server ended it early (a restart, or the server closing it on its own, e.g. after an error on its relay socket): check the server's log"
                )
            } else if e.code == 437 {
                "the server no longer has this allocation (it expired or the server restarted), so the client refreshed too late or not at all: check its refresh timer (RFC 8656 §8: refresh before the lifetime runs out)".to_string()
            } else {
                format!(
                    "{} {}: {}",
                    e.code,
                    e.reason,
                    error_meaning(e.code, e.authenticated_request)
                )
            };
            self.push(
                Severity::Error,
                "turn.refresh.failed",
                format!(
                    "Refresh to {} failed ({} time(s)): {what}.",
                    self.server(),
                    failed.len()
                ),
                failed
                    .iter()
                    .flat_map(|e| e.request.map(|r| r.frame).into_iter().chain([e.at.frame]))
                    .collect(),
            );
        }
        let lost: Vec<&&Transaction> = txs
            .iter()
            .filter(|t| t.method == Method::REFRESH && t.state(self.end) == TxState::TimedOut)
            .collect();
        if !lost.is_empty() {
            self.push(
                Severity::Warning,
                "turn.refresh.no-response",
                format!(
                    "{} Refresh request(s) to {} got no answer: the allocation may lapse at its lifetime; check the path to the server.",
                    lost.len(),
                    self.server()
                ),
                lost.iter().flat_map(|t| t.requests().map(|s| s.frame)).collect(),
            );
        }
    }

    fn dropped(&mut self) {
        let a = self.a;
        let peer = |d: &Dropped| {
            d.first_peer
                .map_or("an unknown peer".to_string(), |p| p.to_string())
        };
        let d = &a.no_permission;
        if d.packets > 0 {
            self.push(
                Severity::Error,
                "turn.permission.missing",
                format!(
                    "The client sent {} packet(s) ({} bytes) toward {} through the relay without a permission for that IP, which the server drops silently (RFC 8656 §9): the client must CreatePermission (or ChannelBind) for the peer first.",
                    d.packets,
                    d.bytes,
                    peer(d)
                ),
                d.frames.clone(),
            );
        }
        let d = &a.permission_lapsed;
        if d.packets > 0 {
            self.push(
                Severity::Warning,
                "turn.permission.expired",
                format!(
                    "The client kept sending toward {} ({} packet(s)) after the permission for its IP lapsed ({PERMISSION_LIFETIME_SECS:.0} s without a refresh, RFC 8656 §9), so the server drops them: check that the client refreshes permissions while it uses them.",
                    peer(d),
                    d.packets
                ),
                d.frames.clone(),
            );
        }
        let d = &a.unbound_channel;
        if d.packets > 0 {
            let ch = d.first_channel.map_or("?".to_string(), |c| format!("{c:#06x}"));
            self.push(
                Severity::Error,
                "turn.channel.unbound",
                format!(
                    "The client sent {} ChannelData packet(s) on channel {ch}, which was never bound on this allocation, so the server drops them (RFC 8656 §12): check the client's ChannelBind (and its response) for this channel.",
                    d.packets
                ),
                d.frames.clone(),
            );
        }
        let d = &a.channel_lapsed;
        if d.packets > 0 {
            let ch = d.first_channel.map_or("?".to_string(), |c| format!("{c:#06x}"));
            self.push(
                Severity::Warning,
                "turn.channel.expired",
                format!(
                    "The client kept sending on channel {ch} ({} packet(s)) after its binding lapsed ({CHANNEL_LIFETIME_SECS:.0} s without a ChannelBind refresh, RFC 8656 §12), so the server drops them: check that the client refreshes channel bindings while it uses them.",
                    d.packets
                ),
                d.frames.clone(),
            );
        }
        let d = &a.after_expiry;
        if d.packets > 0 {
            let when = a.expires_at().map_or(String::new(), |e| format!(" at {e}"));
            self.push(
                Severity::Error,
                "turn.allocation.expired-in-use",
                format!(
                    "The allocation on {} expired{when} (lifetime {} s from the last successful Allocate/Refresh) while the client still sent {} packet(s) through it: check why the client did not refresh in time or why its Refresh failed.",
                    self.server(),
                    a.lifetime.map_or("?".to_string(), |l| l.to_string()),
                    d.packets
                ),
                d.frames.clone(),
            );
        }
    }

    fn channel_conflicts(&mut self) {
        if self.a.channel_conflicts.packets == 0 {
            return;
        }
        let d = &self.a.channel_conflicts;
        let what = match (d.first_channel, d.first_peer) {
            (Some(c), Some(p)) => format!(" (first: channel {c:#06x} to {p})"),
            _ => String::new(),
        };
        self.push(
            Severity::Error,
            "turn.channel.rebind",
            format!(
                "The client asked {} time(s) to bind a channel number already bound to another peer, or a peer already bound to another number{what}, which the server refuses with 400 (RFC 8656 §12.2): the client's channel bookkeeping is wrong.",
                self.a.channel_conflicts.packets
            ),
            self.a.channel_conflicts.frames.clone(),
        );
    }

    fn traffic(&mut self) {
        let a = self.a;
        let Some(created) = a.created_at else { return };
        if a.state(self.end) == AllocationState::Failed {
            return;
        }
        let to: u64 = a.traffic.values().map(|t| t.to_peer()).sum::<u64>()
            + a.rare().unknown_channel.to_peer()
            + a.rare().other_peers.to_peer();
        let from: u64 = a.traffic.values().map(|t| t.from_peer()).sum::<u64>()
            + a.rare().unknown_channel.from_peer()
            + a.rare().other_peers.from_peer();
        // How long the capture watched the allocation alive.
        let until = a
            .deleted_at
            .map_or(self.end, |d| d.ts)
            .min(a.expires_at().unwrap_or(self.end));
        if to == 0 && from == 0 {
            if until.secs_since(created.ts) >= NO_TRAFFIC_GRACE_SECS || a.deleted_at.is_some() {
                let frames = vec![created.frame];
                self.push(
                    Severity::Info,
                    "turn.allocation.unused",
                    format!(
                        "The allocation {} on {} carried no relayed traffic at all: ICE chose another path or never checked the relay candidate, which is normal unless the call was meant to be relayed.",
                        a.relayed.first().map_or("?".to_string(), |r| r.to_string()),
                        self.server()
                    ),
                    frames,
                );
            }
            return;
        }
        if from == 0 {
            let Some(first) = a.first_to_peer else { return };
            if until.secs_since(first.ts) >= NO_TRAFFIC_GRACE_SECS {
                let peers: Vec<String> = a
                    .traffic
                    .iter()
                    .filter(|(_, t)| t.to_peer() > 0)
                    .map(|(p, _)| p.to_string())
                    .take(5)
                    .collect();
                self.push(
                    Severity::Warning,
                    "turn.relay.no-inbound",
                    format!(
                        "The client sent {to} packet(s) through the relay toward {} but nothing came back from any peer: check the permissions, whether the TURN server can reach those addresses (private or firewalled), and the peer's own firewall.",
                        if peers.is_empty() { "peers".to_string() } else { peers.join(", ") }
                    ),
                    vec![first.frame],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_means_two_things() {
        assert!(error_meaning(401, false).contains("challenge"));
        assert!(error_meaning(401, true).contains("rejected"));
        assert!(error_meaning(486, false).starts_with("Allocation Quota"));
        assert_eq!(error_meaning(499, false), "a client error (4xx)");
    }
}
