//! The `turn` section of the report: allocations with their lifecycle, errors, permissions, channels and
//! relayed traffic per peer (RFC 8656, RFC 6062), and its text rendering for the summary.
//!
//! Built from `analysis::turn` at the end of the capture (the capture's last timestamp decides whether an
//! allocation had expired). Allocations are sorted by client, server and transport; everything inside
//! them by time, peer or number, so the same capture always gives the same report. Wire text (username,
//! realm, reason phrases, SOFTWARE) is kept as sent in JSON and escaped in the text summary.
use crate::analysis::findings::turn::error_meaning;
use crate::analysis::fold::{Folded, FoldedAllocation, Form, Rendered};
use crate::analysis::turn::{
    Allocation, AllocationKey, AllocationState, Dropped, Event, EventKind, PeerTraffic,
};
use crate::analysis::Model;
use crate::capture::Timestamp;
use crate::net::Transport;
use crate::report::text::escape;
use crate::wire::attributes::AttrValue;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{self, Write};

#[derive(Debug, Default, Serialize)]
pub struct TurnReport {
    pub allocations: Vec<AllocationReport>,
    /// Allocations seen past the tracking bound (not analysed).
    pub(crate) allocations_not_tracked: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocationReport {
    /// The allocation's 5-tuple, for ordering (the same as `client`, `server` and `transport`). Not in the
    /// JSON: a report element read back sets it from where it was kept ([`AllocationReport::read_back`]).
    #[serde(skip, default = "unset_key")]
    pub(crate) key: AllocationKey,
    /// The client's transport address as the server sees it (its 5-tuple with `server` and `transport`).
    pub client: String,
    pub(crate) server: String,
    /// Client ↔ server transport.
    pub(crate) transport: Transport,
    /// REQUESTED-TRANSPORT: what the relay speaks toward peers (`udp`, or `tcp` for RFC 6062).
    pub(crate) requested_transport: Option<String>,
    pub(crate) requested_address_family: Option<String>,
    pub(crate) additional_address_family: Option<String>,
    /// EVEN-PORT was requested; `true` when the next port was to be reserved too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) even_port: Option<bool>,
    /// RESERVATION-TOKEN granted by the server / presented by the client (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reservation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reservation_token_used: Option<String>,
    pub(crate) relayed: Vec<String>,
    pub(crate) mapped: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) realm: Option<String>,
    /// The server's SOFTWARE.
    pub(crate) software: Option<String>,
    pub(crate) state: AllocationState,
    /// Epoch seconds of the successful Allocate response.
    pub(crate) created_at: Option<f64>,
    pub(crate) created_frame: Option<u64>,
    /// Last granted lifetime, seconds.
    pub(crate) lifetime: Option<u32>,
    pub(crate) refreshes: u32,
    /// Last successful Allocate/Refresh: the lifetime runs from here.
    pub(crate) refreshed_at: Option<f64>,
    /// When the lifetime runs (or ran) out; null when deleted or never granted.
    pub(crate) expires_at: Option<f64>,
    pub(crate) deleted_at: Option<f64>,
    /// The frame of the response that confirmed the deletion.
    pub(crate) deleted_frame: Option<u64>,
    pub(crate) errors: Vec<ErrorReport>,
    pub(crate) errors_not_kept: u64,
    pub(crate) events: Vec<EventReport>,
    pub(crate) events_not_kept: u64,
    pub(crate) permissions: Vec<PermissionReport>,
    pub(crate) channels: Vec<ChannelReport>,
    /// Per peer transport address, sorted.
    pub(crate) traffic: Vec<PeerTrafficReport>,
    /// Sums over all peers, plus ChannelData on channels whose peer is unknown.
    pub(crate) totals: TrafficTotals,
    /// Client data the server drops without a word.
    pub(crate) dropped: DroppedReport,
    /// RFC 6062 peer connections of a TCP allocation.
    pub(crate) tcp_connections: Vec<TcpConnectionReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ErrorReport {
    pub(crate) ts: f64,
    pub(crate) frame: u64,
    /// The request's frame, when it was captured.
    pub(crate) request_frame: Option<u64>,
    pub(crate) method: String,
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) meaning: Cow<'static, str>,
    /// For ADDRESS-ERROR-CODE: `ipv4` / `ipv6`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) family: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EventReport {
    pub(crate) ts: f64,
    /// Null for an event inferred from time (expiry).
    pub(crate) frame: Option<u64>,
    pub(crate) what: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PermissionReport {
    /// The peer IP (RFC 8656 §9: ports do not matter).
    pub(crate) peer: String,
    pub(crate) requested_at: f64,
    pub(crate) installed_at: Option<f64>,
    pub(crate) refreshed: u32,
    pub(crate) refreshed_at: Option<f64>,
    pub(crate) expires_at: Option<f64>,
    /// Last installed or refreshed by ChannelBind rather than CreatePermission.
    pub(crate) by_channel_bind: bool,
    /// Error code of the last failed request for it.
    pub(crate) failed: Option<u16>,
    pub(crate) frames: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChannelReport {
    pub(crate) number: u16,
    pub(crate) peer: String,
    pub(crate) requested_at: f64,
    pub(crate) bound_at: Option<f64>,
    pub(crate) refreshed: u32,
    pub(crate) expires_at: Option<f64>,
    pub(crate) failed: Option<u16>,
    pub(crate) frames: Vec<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PeerTrafficReport {
    pub(crate) peer: String,
    pub(crate) send_indications: u64,
    pub(crate) data_indications: u64,
    /// ChannelData both ways.
    pub(crate) channel_data: u64,
    pub(crate) channel_data_to_peer: u64,
    pub(crate) channel_data_from_peer: u64,
    pub(crate) bytes_to_peer: u64,
    pub(crate) bytes_from_peer: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TrafficTotals {
    pub(crate) send_indications: u64,
    pub(crate) data_indications: u64,
    pub(crate) channel_data: u64,
    pub(crate) channel_data_to_peer: u64,
    pub(crate) channel_data_from_peer: u64,
    pub(crate) bytes_to_peer: u64,
    pub(crate) bytes_from_peer: u64,
    /// ChannelData on channels whose binding was never seen (counted in the sums above).
    pub(crate) unknown_channel_data: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DroppedCount {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) frames: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DroppedReport {
    /// Toward a peer IP with no permission (RFC 8656 §9).
    pub(crate) no_permission: DroppedCount,
    /// Toward a peer IP whose permission had lapsed.
    pub(crate) permission_expired: DroppedCount,
    /// ChannelData on a channel never bound (§12).
    pub(crate) unbound_channel: DroppedCount,
    /// ChannelData on a channel whose binding had lapsed.
    pub(crate) channel_expired: DroppedCount,
    /// Through the allocation after it expired.
    pub(crate) after_expiry: DroppedCount,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TcpConnectionReport {
    pub(crate) connection_id: u32,
    pub(crate) peer: Option<String>,
    pub(crate) initiated_by: Initiator,
    pub(crate) at: f64,
    pub(crate) frame: u64,
    /// The client's end of the data connection, once ConnectionBind succeeded.
    pub(crate) data_connection: Option<String>,
    pub(crate) bound_at: Option<f64>,
    pub(crate) failed: Option<u16>,
}

/// Who opened an RFC 6062 peer connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Initiator {
    /// The client, with a Connect request (RFC 6062 §4.3).
    Client,
    /// The peer: the server announced it with a ConnectionAttempt indication (RFC 6062 §4.4).
    Peer,
}

impl Initiator {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Initiator::Client => "client",
            Initiator::Peer => "peer",
        }
    }
}

/// The report spells an allocation's state as its name. Implemented here, at the output edge:
/// `analysis::turn` does not depend on serde.
impl Serialize for AllocationState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A state read back from its name ([`AllocationReport::read_back`]).
impl<'de> Deserialize<'de> for AllocationState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        [
            AllocationState::Active,
            AllocationState::Deleted,
            AllocationState::Expired,
            AllocationState::Failed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| serde::de::Error::unknown_variant(&name, &["active", "deleted", "expired", "failed"]))
    }
}

/// The key of an allocation report read back before its key is set.
fn unset_key() -> AllocationKey {
    let none = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    AllocationKey {
        client: none,
        server: none,
        transport: Transport::Udp,
    }
}

fn secs(ts: Timestamp) -> f64 {
    ts.as_secs_f64()
}

/// A permission or channel ends when it lapses or when its allocation ends, whichever comes first.
fn cap(own: Option<Timestamp>, allocation: Option<Timestamp>) -> Option<Timestamp> {
    match (own, allocation) {
        (Some(o), Some(a)) => Some(o.min(a)),
        (o, _) => o,
    }
}

fn family(f: u8) -> String {
    AttrValue::AddressFamily(f).to_string()
}

fn hex(v: u64) -> String {
    AttrValue::U64(v).to_string()
}

fn traffic(peer: String, t: &PeerTraffic) -> PeerTrafficReport {
    PeerTrafficReport {
        peer,
        send_indications: t.send_indications,
        data_indications: t.data_indications,
        channel_data: t.channel_data_to_peer + t.channel_data_from_peer,
        channel_data_to_peer: t.channel_data_to_peer,
        channel_data_from_peer: t.channel_data_from_peer,
        bytes_to_peer: t.bytes_to_peer,
        bytes_from_peer: t.bytes_from_peer,
    }
}

fn dropped(d: &Dropped) -> DroppedCount {
    DroppedCount {
        packets: d.packets,
        bytes: d.bytes,
        frames: d.frames.clone(),
    }
}

fn addresses(list: &[std::net::SocketAddr]) -> String {
    let v: Vec<String> = list.iter().map(ToString::to_string).collect();
    v.join(" and ")
}

/// One lifecycle event in words (no wire text in them: addresses and numbers only).
pub(crate) fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::AllocateRequested { authenticated: true } => "Allocate request with credentials".into(),
        EventKind::AllocateRequested { authenticated: false } => {
            "Allocate request without credentials".into()
        }
        EventKind::Challenged => "401 challenge: the server gave REALM and NONCE".into(),
        EventKind::Allocated { relayed, lifetime } => {
            format!("allocated relayed {}, lifetime {lifetime} s", addresses(relayed))
        }
        EventKind::Refreshed { lifetime } => format!("refreshed, lifetime {lifetime} s"),
        EventKind::Deleted => "deleted (Refresh with LIFETIME 0)".into(),
        EventKind::StaleNonce { method } => {
            format!("438 Stale Nonce to {method}: retry with the new nonce")
        }
        EventKind::CredentialRejected { method } => {
            format!("401 to {method} with credentials: credentials rejected")
        }
        EventKind::Failed { method, code } => format!("{method} failed: {code}"),
        EventKind::Gone => "437 to refresh: the server no longer has the allocation".into(),
        EventKind::PermissionInstalled {
            peer,
            by_channel_bind,
        } => format!(
            "permission installed for {peer}{}",
            if *by_channel_bind { " (by ChannelBind)" } else { "" }
        ),
        EventKind::PermissionRefreshed {
            peer,
            by_channel_bind,
        } => format!(
            "permission refreshed for {peer}{}",
            if *by_channel_bind { " (by ChannelBind)" } else { "" }
        ),
        EventKind::ChannelBound { channel, peer } => format!("channel {channel:#06x} bound to {peer}"),
        EventKind::ChannelRefreshed { channel, peer } => {
            format!("channel {channel:#06x} refreshed ({peer})")
        }
        EventKind::ChannelConflict { channel, peer } => format!(
            "ChannelBind {channel:#06x} to {peer} conflicts with an existing binding (the server refuses it)"
        ),
        EventKind::Connected { connection_id, peer } => {
            format!("Connect to {peer}: connection {connection_id}")
        }
        EventKind::ConnectionAttempt { connection_id, peer } => {
            format!("ConnectionAttempt from {peer}: connection {connection_id}")
        }
        EventKind::ConnectionBound { connection_id, data } => {
            format!("ConnectionBind: connection {connection_id} carried by {data}")
        }
    }
}

fn events(a: &Allocation, state: AllocationState) -> Vec<EventReport> {
    let mut out: Vec<EventReport> = a
        .events
        .iter()
        .map(|Event { at, kind }| EventReport {
            ts: secs(at.ts),
            frame: Some(at.frame),
            what: describe(kind),
        })
        .collect();
    // Expiry has no packet of its own: it is the moment the last granted lifetime ran out.
    if state == AllocationState::Expired && a.gone_at.is_none() {
        if let Some(e) = a.expires_at() {
            let ts = secs(e);
            let at = out.partition_point(|x| x.ts <= ts);
            out.insert(
                at,
                EventReport {
                    ts,
                    frame: None,
                    what: format!(
                        "expired: lifetime {} s ran out without a refresh",
                        a.lifetime.unwrap_or(0)
                    ),
                },
            );
        }
    }
    out
}

fn allocation(key: &AllocationKey, a: &Allocation, end: Timestamp) -> AllocationReport {
    let state = a.state(end);

    let rare = a.rare();
    let mut totals = TrafficTotals::default();
    let mut peers: Vec<PeerTrafficReport> =
        a.traffic.iter().map(|(p, t)| traffic(p.to_string(), t)).collect();
    if rare.other_peers != PeerTraffic::default() {
        peers.push(traffic("other".into(), &rare.other_peers));
    }
    for t in peers
        .iter()
        .chain(std::iter::once(&traffic(String::new(), &rare.unknown_channel)))
    {
        totals.send_indications += t.send_indications;
        totals.data_indications += t.data_indications;
        totals.channel_data += t.channel_data;
        totals.channel_data_to_peer += t.channel_data_to_peer;
        totals.channel_data_from_peer += t.channel_data_from_peer;
        totals.bytes_to_peer += t.bytes_to_peer;
        totals.bytes_from_peer += t.bytes_from_peer;
    }
    totals.unknown_channel_data =
        rare.unknown_channel.channel_data_to_peer + rare.unknown_channel.channel_data_from_peer;
    AllocationReport {
        key: *key,
        client: key.client.to_string(),
        server: key.server.to_string(),
        transport: key.transport,
        requested_transport: a
            .requested_transport
            .map(|p| AttrValue::RequestedTransport(p).to_string()),
        requested_address_family: rare.requested_family.map(family),
        additional_address_family: rare.additional_family.map(family),
        even_port: rare.even_port,
        reservation_token: rare.reservation_token.map(hex),
        reservation_token_used: rare.reservation_token_used.map(hex),
        relayed: a.relayed.iter().map(ToString::to_string).collect(),
        mapped: a.mapped.map(|m| m.to_string()),
        username: a.username.clone(),
        realm: a.realm.clone(),
        software: a.software.clone(),
        state,
        created_at: a.created_at.map(|c| secs(c.ts)),
        created_frame: a.created_at.map(|c| c.frame),
        lifetime: a.lifetime,
        refreshes: a.refreshes,
        refreshed_at: a.refreshed_at.map(|r| secs(r.ts)),
        expires_at: a.expires_at().map(secs),
        deleted_at: a.deleted_at.map(|d| secs(d.ts)),
        deleted_frame: a.deleted_at.map(|d| d.frame),
        errors: a
            .errors
            .iter()
            .map(|e| ErrorReport {
                ts: secs(e.at.ts),
                frame: e.at.frame,
                request_frame: e.request.map(|r| r.frame),
                method: e.method.to_string(),
                code: e.code,
                reason: e.reason.clone(),
                meaning: Cow::Borrowed(error_meaning(e.code, e.authenticated_request)),
                family: e.family.map(family),
            })
            .collect(),
        errors_not_kept: rare.errors_not_kept,
        events: events(a, state),
        events_not_kept: rare.events_not_kept,
        permissions: a
            .permissions
            .iter()
            .map(|(ip, p)| PermissionReport {
                peer: ip.to_string(),
                requested_at: secs(p.requested_at.ts),
                installed_at: p.installed_at.map(|i| secs(i.ts)),
                refreshed: p.refreshes,
                refreshed_at: p.refreshed_at.map(|r| secs(r.ts)),
                expires_at: cap(p.expires_at(), a.end_of_life()).map(secs),
                by_channel_bind: p.by_channel_bind,
                failed: p.failed,
                frames: p.frames.clone(),
            })
            .collect(),
        channels: a
            .channels
            .iter()
            .map(|(&n, c)| ChannelReport {
                number: n,
                peer: c.peer.to_string(),
                requested_at: secs(c.requested_at.ts),
                bound_at: c.bound_at.map(|b| secs(b.ts)),
                refreshed: c.refreshes,
                expires_at: cap(c.expires_at(), a.end_of_life()).map(secs),
                failed: c.failed,
                frames: c.frames.clone(),
            })
            .collect(),
        traffic: peers,
        totals,
        dropped: DroppedReport {
            no_permission: dropped(&a.no_permission),
            permission_expired: dropped(&a.permission_lapsed),
            unbound_channel: dropped(&a.unbound_channel),
            channel_expired: dropped(&a.channel_lapsed),
            after_expiry: dropped(&a.after_expiry),
        },
        tcp_connections: rare
            .tcp_connections
            .iter()
            .map(|(&id, c)| TcpConnectionReport {
                connection_id: id,
                peer: c.peer.map(|p| p.to_string()),
                initiated_by: if c.initiated_by_client {
                    Initiator::Client
                } else {
                    Initiator::Peer
                },
                at: secs(c.at.ts),
                frame: c.at.frame,
                data_connection: c.data_connection.map(|d| d.to_string()),
                bound_at: c.bound_at.map(|b| secs(b.ts)),
                failed: c.failed,
            })
            .collect(),
    }
}

impl TurnReport {
    pub(crate) fn build(model: &Model) -> TurnReport {
        let end = model.last_ts.unwrap_or_default();
        // `Allocations::in_order` is in (client, server, transport) order.
        TurnReport {
            allocations: model
                .turn
                .allocations
                .in_order()
                .map(|(k, a)| allocation(&k, &a, end))
                .collect(),
            allocations_not_tracked: model.turn.allocations_not_tracked,
        }
    }
}

fn quoted(s: Option<&String>) -> String {
    s.map_or("(none)".into(), |s| format!("\"{}\"", escape(s)))
}

/// The TURN part of the text summary: a few lines per allocation, for a TURN operator.
#[cfg(test)]
pub(crate) fn write_text(turn: &TurnReport, out: &mut dyn Write) -> io::Result<()> {
    write_text_with(turn, None, out)
}

/// The TURN part of the text summary, for a report whose model may have folded allocations during the
/// read: their lines, rendered then, are read back from `folded` in their place in key order.
pub(crate) fn write_text_with(
    turn: &TurnReport,
    folded: Option<&Folded>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let items = AllocationItem::merge(&turn.allocations, folded);
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "TURN allocations: {}", items.len())?;
    let mut buf = Vec::new();
    for item in items {
        match item {
            AllocationItem::Held(a) => write_allocation_text(a, out)?,
            AllocationItem::Folded(f) => {
                buf.clear();
                folded
                    .ok_or_else(|| io::Error::other("a folded allocation without what folding kept"))?
                    .read_allocation(&f, Form::Text, &mut buf)?;
                out.write_all(&buf)?;
            }
        }
    }
    Ok(())
}

/// An allocation of the report's `turn.allocations`: built at the end, or folded during the read and
/// rendered then ([`crate::analysis::fold`]).
pub(crate) enum AllocationItem<'h> {
    Held(&'h AllocationReport),
    Folded(FoldedAllocation),
}

impl<'h> AllocationItem<'h> {
    /// Both kinds in key order (a folded one before a later one with the same 5-tuple).
    pub(crate) fn merge(held: &'h [AllocationReport], folded: Option<&Folded>) -> Vec<AllocationItem<'h>> {
        let folded = folded.map(Folded::allocations_in_order).unwrap_or_default();
        let mut out = Vec::with_capacity(held.len() + folded.len());
        let mut f = folded.into_iter().peekable();
        for a in held {
            while let Some(x) = f.next_if(|x| x.key() <= a.key) {
                out.push(AllocationItem::Folded(x));
            }
            out.push(AllocationItem::Held(a));
        }
        out.extend(f.map(AllocationItem::Folded));
        out
    }
}

/// How a folded allocation is kept: its element of `turn.allocations`, compact (the JSON writer lays it out),
/// and its lines of the text summary ([`crate::analysis::fold::RenderAllocation`]).
pub fn render_folded_allocation(key: &AllocationKey, a: &Allocation, end: Timestamp, out: &mut Rendered) {
    let report = allocation(key, a, end);
    // Writing to a Vec fails only if serialisation does, which these types never do.
    // Compact: the JSON writer lays it out again (`pretty::pretty_at`).
    let _ = serde_json::to_writer(&mut out.json, &report);
    let _ = write_allocation_text(&report, &mut out.text);
}

/// One allocation's lines of the text summary.
fn write_allocation_text(a: &AllocationReport, out: &mut dyn Write) -> io::Result<()> {
    let transport = a.transport.name();
    writeln!(
        out,
        "  {} → {} {transport}: {}",
        a.client,
        a.server,
        a.state.name().to_uppercase()
    )?;
    let mut who = format!(
        "user {} realm {}",
        quoted(a.username.as_ref()),
        quoted(a.realm.as_ref())
    );
    if let Some(t) = &a.requested_transport {
        who.push_str(&format!(", relays {t}"));
    }
    if !a.relayed.is_empty() {
        who.push_str(&format!(", relayed {}", a.relayed.join(" and ")));
    }
    if let Some(m) = &a.mapped {
        who.push_str(&format!(", mapped {m}"));
    }
    writeln!(out, "    {who}")?;
    if let Some(frame) = a.created_frame {
        let mut life = format!(
            "    granted at frame {frame}, lifetime {} s, {} refresh(es)",
            a.lifetime.unwrap_or(0),
            a.refreshes
        );
        if let Some(d) = a.deleted_frame {
            life.push_str(&format!(", deleted at frame {d}"));
        } else if a.state == AllocationState::Expired {
            life.push_str(", expired inside the capture");
        }
        writeln!(out, "{life}")?;
    }
    if !a.errors.is_empty() {
        let errs: Vec<String> = a
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} (frame {})",
                    e.method,
                    e.code,
                    escape(&e.reason),
                    e.frame
                )
            })
            .collect();
        writeln!(out, "    errors: {}", errs.join("; "))?;
    }
    if !a.permissions.is_empty() {
        let ps: Vec<String> = a
            .permissions
            .iter()
            .map(|p| match p.installed_at {
                Some(_) => format!("{} (refreshed {}×)", p.peer, p.refreshed),
                None => format!("{} (never granted)", p.peer),
            })
            .collect();
        writeln!(out, "    permissions: {}", ps.join(", "))?;
    }
    if !a.channels.is_empty() {
        let cs: Vec<String> = a
            .channels
            .iter()
            .map(|c| {
                let state = if c.bound_at.is_some() { "" } else { " (not bound)" };
                format!("{:#06x} → {}{state}", c.number, c.peer)
            })
            .collect();
        writeln!(out, "    channels: {}", cs.join(", "))?;
    }
    for t in &a.traffic {
        writeln!(
            out,
            "    peer {}: to peer {} send + {} channel-data ({} bytes), from peer {} data + {} channel-data ({} bytes)",
            t.peer,
            t.send_indications,
            t.channel_data_to_peer,
            t.bytes_to_peer,
            t.data_indications,
            t.channel_data_from_peer,
            t.bytes_from_peer
        )?;
    }
    if a.totals.unknown_channel_data > 0 {
        writeln!(
            out,
            "    {} ChannelData on channels whose binding was not captured",
            a.totals.unknown_channel_data
        )?;
    }
    for c in &a.tcp_connections {
        writeln!(
            out,
            "    TCP connection {} ({} side) {}{}",
            c.connection_id,
            c.initiated_by.name(),
            c.peer.as_deref().unwrap_or("?"),
            c.data_connection
                .as_ref()
                .map_or(" (no ConnectionBind)".to_string(), |d| format!(", data via {d}"))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::turn::{At, TurnError};
    use crate::wire::stun::Method;

    #[test]
    fn wire_text_is_escaped_and_expiry_is_a_timeline_event() {
        let mut a = Allocation {
            allocate_seen: true,
            username: Some("eve\x1b[2J".into()),
            realm: Some("r\u{9b}31m".into()),
            created_at: Some(At {
                ts: Timestamp(1_000_000_000),
                frame: 4,
            }),
            refreshed_at: Some(At {
                ts: Timestamp(1_000_000_000),
                frame: 4,
            }),
            lifetime: Some(600),
            ..Allocation::default()
        };
        a.errors.push(TurnError {
            at: At {
                ts: Timestamp(500_000_000),
                frame: 2,
            },
            request: None,
            method: Method::ALLOCATE,
            code: 401,
            reason: "Unauth\x07orized".into(),
            family: None,
            authenticated_request: false,
        });
        let mut model = Model {
            last_ts: Some(Timestamp(700_000_000_000)),
            ..Model::default()
        };
        let key = AllocationKey {
            client: "192.0.2.1:1000".parse().unwrap(),
            server: "198.51.100.1:3478".parse().unwrap(),
            transport: Transport::Udp,
        };
        model.turn.allocations.insert(key, a);
        let report = TurnReport::build(&model);
        let r = &report.allocations[0];
        // Granted at 1 s for 600 s, capture ends at 700 s: expired at 601 s.
        assert_eq!(r.state, AllocationState::Expired);
        assert_eq!(r.expires_at, Some(601.0));
        let last = r.events.last().unwrap();
        assert_eq!((last.ts, last.frame), (601.0, None));
        let mut out = Vec::new();
        write_text(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{9b}'));
        assert!(text.contains("user \"eve\\x1b[2J\""), "{text}");
        assert!(text.contains("Unauth\\x07orized"), "{text}");
        assert!(text.contains("EXPIRED"), "{text}");
    }
}
