//! A session's ladder (sequence diagram): its lifelines, side A's candidates and TURN clients on the left,
//! TURN servers and any other server or peer in the middle, side B's on the right, and one arrow per
//! message, a relayed one drawn through its TURN server's column.
//!
//! Built when the session is first opened, kept in its scope until the next snapshot. Which messages belong
//! to the session is decided by the `index`; scrolling is `app::ladder`'s and drawing `views::ladder`'s.
use super::index::SessionScope;
use super::{parse, Snapshot};
use crate::analysis::ice::CandidateType;
use crate::analysis::sessions::SessionReport;
use crate::analysis::{Body, MessageRecord};
use crate::report::turn::AllocationReport;
use crate::wire::stun::{Class, Method};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Which side of the ladder a column is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    Middle,
    B,
}

#[derive(Clone, Debug)]
pub(crate) struct Column {
    /// Short tag drawn above the lifeline: `A1`, `T1`, `B2`, `S1`.
    pub(crate) tag: String,
    pub(crate) address: SocketAddr,
    /// `host 192.168.1.10:52338`, `TURN 203.0.113.1:3478 (relays :49185 :49238)`.
    pub(crate) detail: String,
    pub(crate) side: Side,
}

/// One arrow of the ladder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LadderRow {
    /// Index into `model.messages`.
    pub(crate) msg: usize,
    pub(crate) from: usize,
    pub(crate) to: usize,
    /// The TURN server column a relayed message passed through.
    pub(crate) via: Option<usize>,
    /// ChannelData that carried no STUN (media or application data): hidden unless asked for.
    pub(crate) media: bool,
}

/// Candidate types in the order columns are laid out from the edge of the ladder inward.
fn type_rank(t: CandidateType) -> u8 {
    match t {
        CandidateType::Host => 0,
        CandidateType::Srflx => 1,
        CandidateType::Prflx => 2,
        CandidateType::NatMapping => 3,
        CandidateType::Relay => 4,
    }
}

fn is_carrier(m: &MessageRecord) -> bool {
    match &m.body {
        Body::ChannelData { .. } => true,
        Body::Stun { method, class, .. } => {
            *class == Class::Indication && (*method == Method::SEND || *method == Method::DATA)
        }
    }
}

/// Adds a lifeline for `addr` unless it has one; tags count per side (`A1`, `T1`, `B1`).
fn push(
    columns: &mut Vec<Column>,
    col_of: &mut HashMap<SocketAddr, usize>,
    addr: SocketAddr,
    side: Side,
    what: String,
) {
    if col_of.contains_key(&addr) {
        return;
    }
    let prefix = match side {
        Side::A => "A",
        Side::B => "B",
        Side::Middle => "T",
    };
    let n = columns
        .iter()
        .filter(|c| c.side == side && c.tag.starts_with(prefix))
        .count()
        + 1;
    col_of.insert(addr, columns.len());
    columns.push(Column {
        tag: format!("{prefix}{n}"),
        address: addr,
        detail: what,
        side,
    });
}

/// A session's ladder: its lifelines and one row per message.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ladder {
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<LadderRow>,
    /// Rows that are not media (the default view).
    pub(crate) signalling: Vec<usize>,
}

pub(super) fn build_ladder(scope: &SessionScope, s: &SessionReport, snapshot: &Snapshot) -> Ladder {
    let model = &*snapshot.model;
    // The session's allocations whole (read back now for folded ones).
    let allocs: Vec<&AllocationReport> = scope
        .allocations
        .iter()
        .filter_map(|&ai| snapshot.allocation(ai))
        .collect();
    let ufrag = |i: usize| s.agents.get(i).map(|a| a.ufrag.as_str()).unwrap_or("");
    let mut columns: Vec<Column> = Vec::new();
    let mut col_of: HashMap<SocketAddr, usize> = HashMap::new();
    let side_cands = |agent: &str| {
        let mut v: Vec<(u8, SocketAddr, CandidateType)> = s
            .candidates
            .iter()
            .chain(&s.nat_mappings)
            .filter(|c| c.agent == agent && c.candidate_type != CandidateType::Relay)
            .filter_map(|c| parse(&c.address).map(|a| (type_rank(c.candidate_type), a, c.candidate_type)))
            .collect();
        v.sort();
        v.dedup_by_key(|x| x.1);
        v
    };
    let clients_of = |agent: &str| -> Vec<SocketAddr> {
        allocs
            .iter()
            .filter(|al| {
                s.candidates.iter().any(|c| {
                    c.agent == agent
                        && c.candidate_type == CandidateType::Relay
                        && al.relayed.contains(&c.address)
                })
            })
            .filter_map(|al| parse(&al.client))
            .collect()
    };
    let a = ufrag(0);
    for (_, addr, t) in side_cands(a) {
        push(
            &mut columns,
            &mut col_of,
            addr,
            Side::A,
            format!("{} {addr}", t.name()),
        );
    }
    for addr in clients_of(a) {
        push(
            &mut columns,
            &mut col_of,
            addr,
            Side::A,
            format!("TURN client {addr}"),
        );
    }
    // TURN servers, each also standing for the relayed addresses it allocated.
    let mut relay_to_server: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for al in &allocs {
        let Some(server) = parse(&al.server) else { continue };
        let relayed: Vec<SocketAddr> = al.relayed.iter().filter_map(|r| parse(r)).collect();
        if !col_of.contains_key(&server) {
            push(
                &mut columns,
                &mut col_of,
                server,
                Side::Middle,
                format!("TURN {server}"),
            );
        }
        let ci = col_of[&server];
        for r in relayed {
            columns[ci].detail.push_str(&format!(" relay :{}", r.port()));
            relay_to_server.push((r, server));
        }
    }
    let b = ufrag(1);
    let mut b_cols: Vec<(SocketAddr, String)> = clients_of(b)
        .into_iter()
        .map(|addr| (addr, format!("TURN client {addr}")))
        .collect();
    let mut b_cands = side_cands(b);
    b_cands.reverse();
    b_cols.extend(
        b_cands
            .into_iter()
            .map(|(_, addr, t)| (addr, format!("{} {addr}", t.name()))),
    );
    // Addresses only seen in messages (a STUN server, an unknown peer) go in the middle, before B.
    for &mi in &scope.messages {
        let Some(m) = model.messages.get(mi as usize) else {
            continue;
        };
        let path = model.path(&m);
        for addr in [path.src, path.dst] {
            let known = col_of.contains_key(&addr)
                || b_cols.iter().any(|(x, _)| *x == addr)
                || relay_to_server.iter().any(|(r, _)| *r == addr);
            if !known {
                let n = columns.iter().filter(|c| c.tag.starts_with('S')).count() + 1;
                col_of.insert(addr, columns.len());
                columns.push(Column {
                    tag: format!("S{n}"),
                    address: addr,
                    detail: format!("server/peer {addr}"),
                    side: Side::Middle,
                });
            }
        }
    }
    for (addr, what) in b_cols {
        push(&mut columns, &mut col_of, addr, Side::B, what);
    }
    for (r, server) in &relay_to_server {
        if let Some(&c) = col_of.get(server) {
            col_of.entry(*r).or_insert(c);
        }
    }

    let col = |addr: &SocketAddr| col_of.get(addr).copied();
    let relayed_addr = |addr: &SocketAddr| relay_to_server.iter().any(|(r, _)| r == addr);
    let mut ladder = Vec::with_capacity(scope.messages.len());
    let msgs = &scope.messages;
    for (k, &mi) in msgs.iter().enumerate() {
        let mi = mi as usize;
        let Some(m) = model.messages.get(mi) else { continue };
        let m = &m;
        // A carrier immediately followed by the message it carried is drawn once, as that message.
        if is_carrier(m) {
            let carried = msgs.get(k + 1).is_some_and(|&next| {
                next as usize == mi + 1
                    && model.messages.get(mi + 1).is_some_and(|n| {
                        model.path(&n).relay.is_some()
                            && n.frame == m.frame
                            && n.input == m.input
                            && !is_carrier(&n)
                    })
            });
            if carried {
                continue;
            }
        }
        let media = matches!(m.body, Body::ChannelData { .. });
        let path = model.path(m);
        let row = match &path.relay {
            Some(relay) => {
                let via = col(&relay.server);
                // Toward the peer the message leaves the relayed address; from the peer it arrives there.
                let outbound =
                    relayed_addr(&path.src) || (!relay.relayed_address_known && path.src.port() == 0);
                let (from, to) = if outbound {
                    (col(&relay.client), col(&path.dst))
                } else {
                    (col(&path.src), col(&relay.client))
                };
                match (from, to) {
                    (Some(from), Some(to)) => LadderRow {
                        msg: mi,
                        from,
                        to,
                        via,
                        media,
                    },
                    _ => continue,
                }
            }
            None => match (col(&path.src), col(&path.dst)) {
                (Some(from), Some(to)) => LadderRow {
                    msg: mi,
                    from,
                    to,
                    via: None,
                    media,
                },
                _ => continue,
            },
        };
        ladder.push(row);
    }
    let signalling = ladder
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.media)
        .map(|(i, _)| i)
        .collect();
    Ladder {
        columns,
        rows: ladder,
        signalling,
    }
}
