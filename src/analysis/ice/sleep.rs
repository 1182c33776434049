//! A quiet session's state as bytes, so that it can wait for its fold outside memory
//! ([`super::Sessions::sleep`]).
//!
//! A session folds once quiet for [`crate::analysis::fold::FOLD_AFTER_SECS`] (45 s: every check's state is
//! final). On a busy server most of the sessions open at one moment are in that wait: their calls ended, and
//! nothing of theirs will come. Call-dense 4 GB, at the read's peak, 5,258 of 7,465 open sessions had been
//! quiet for more than 5 s and 3,232 for more than 20 s (BENCHMARKS.md). A session asleep keeps a stub (when
//! it was last active, its addresses) and its state encoded here, in a store that spills to a temporary file;
//! anything that reads it decodes it again, and anything that changes it wakes it.
//!
//! The encoding is exact (every field, floats by their bits) and checked: a damaged spill gives `None`.

use super::session::{
    Agent, AgentAddress, Direction, Event, EventKind, Media, NetworkInfo, Pair, Role, Session, TxRef,
};
use super::settle::{Settled, SettledTimeout, SettledTx, Tally};
use crate::analysis::pack::{pack_struct, pack_unit_enum, Pack, Reader};

pack_unit_enum!(Role {
    Controlling = 0,
    Controlled = 1,
});

impl Pack for TxRef {
    fn put(&self, out: &mut Vec<u8>) {
        self.bits().put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        u32::get(r).map(TxRef::from_bits)
    }
}

impl Pack for EventKind {
    fn put(&self, out: &mut Vec<u8>) {
        match *self {
            EventKind::Check {
                tx,
                retransmit,
                use_candidate,
            } => {
                out.push(0);
                tx.put(out);
                retransmit.put(out);
                use_candidate.put(out);
            }
            EventKind::Success { tx } => {
                out.push(1);
                tx.put(out);
            }
            EventKind::Error { tx, code } => {
                out.push(2);
                tx.put(out);
                code.put(out);
            }
            EventKind::Nominated => out.push(3),
            EventKind::RoleChange { role } => {
                out.push(4);
                role.put(out);
            }
            EventKind::DtlsStart => out.push(5),
            EventKind::DtlsConnected => out.push(6),
            EventKind::MediaStart => out.push(7),
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some(match u8::get(r)? {
            0 => EventKind::Check {
                tx: Pack::get(r)?,
                retransmit: Pack::get(r)?,
                use_candidate: Pack::get(r)?,
            },
            1 => EventKind::Success { tx: Pack::get(r)? },
            2 => EventKind::Error {
                tx: Pack::get(r)?,
                code: Pack::get(r)?,
            },
            3 => EventKind::Nominated,
            4 => EventKind::RoleChange { role: Pack::get(r)? },
            5 => EventKind::DtlsStart,
            6 => EventKind::DtlsConnected,
            7 => EventKind::MediaStart,
            _ => return None,
        })
    }
}

pack_struct!(NetworkInfo { id, cost });
pack_struct!(AgentAddress {
    address,
    transport,
    first_seen,
    priority,
    turn_client,
    reflected_by_peer,
});
pack_struct!(Agent {
    ufrag,
    role,
    tie_breaker,
    role_changes,
    software,
    network_info,
    addresses,
});
pack_struct!(Tally {
    retransmissions,
    first_request,
    first_success,
    earliest_success,
    consent,
    responses,
    errors,
    timeouts,
    unanswered,
    rtts,
    rtt_total,
    rtt_min,
    rtt_max,
    rtt_last,
});
pack_struct!(SettledTimeout { first, frame, id });
pack_struct!(SettledTx { id, rtt });
pack_struct!(Settled {
    txs,
    tally,
    timeouts,
    timeouts_ring,
    timeouts_not_kept,
});
pack_struct!(Direction {
    txs,
    txs_not_kept,
    use_candidate,
    first_use_candidate,
    keepalives,
    settled,
});
pack_struct!(Media {
    dtls,
    rtp,
    rtcp,
    bytes,
    first_dtls,
    first_dtls_data,
    first_rtp,
    last,
    packets,
});
pack_struct!(Pair {
    a,
    b,
    transport,
    dirs,
    nominations,
    media,
});
pack_struct!(Event {
    ts,
    frame,
    input,
    pair,
    from,
    kind,
});
pack_struct!(Session {
    agents,
    pairs,
    timeline,
    frozen,
    settled,
    timeline_not_kept,
    timeline_ring,
    pairs_not_kept,
    first,
    last,
    restart_of,
    folded,
    settle_hint,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::wire::credentials::Keyring;

    /// The sessions of real captures (checks, answers, errors, nominations, media, role changes, relayed
    /// candidates, IPv4 and TCP), each as it stands mid-call and at the end.
    fn sessions() -> Vec<Session> {
        let mut out = Vec::new();
        let mut an = Analyzer::new(Keyring::new());
        // Folding on, so that the long call's checks settle as it goes.
        an.fold_sessions(
            crate::report::json::render_folded_session,
            crate::report::turn::render_folded_allocation,
            crate::report::json::render_folded_finding,
            None,
        );
        let fixtures = [
            "chrome-relay-udp",
            "ice-failed",
            "symmetric-relay",
            "chrome-relay-tcp",
            "long-call",
        ];
        let mut n = 0u64;
        crate::analysis::testkit::fixtures_in_a_row(&fixtures, 120, &mut |pkt, _| {
            an.ingest(pkt);
            n += 1;
            if n % 100 == 0 {
                out.extend(an.model().ice.sessions.iter_from(0).map(|(_, s)| s.clone()));
            }
        });
        out.extend(an.model().ice.sessions.iter_from(0).map(|(_, s)| s.clone()));
        out
    }

    #[test]
    fn a_session_comes_back_as_it_was() {
        let all = sessions();
        assert!(all.len() >= 10, "{} sessions", all.len());
        for s in &all {
            let mut buf = Vec::new();
            s.put(&mut buf);
            let back = Reader::whole(&buf, Session::get).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{s:?}"));
        }
        // Every part of a session held something in some session.
        assert!(all.iter().any(|s| s.pairs.iter().any(|p| p.media.is_some())));
        assert!(all
            .iter()
            .any(|s| s.timeline.iter().any(|e| e.kind == EventKind::Nominated)));
        assert!(all.iter().any(|s| s
            .agents
            .iter()
            .any(|a| a.addresses.iter().any(|x| x.turn_client.is_some()))));
        assert!(all.iter().any(|s| !s.settled.is_empty()));
        assert!(all
            .iter()
            .any(|s| s.pairs.iter().any(|p| p.dirs.iter().any(|d| d.settled.is_some()))));
    }

    /// Damaged bytes (cut short, or a byte changed) never panic and never read past the buffer: they give
    /// `None`, or a session whose encoding is exactly those bytes.
    #[test]
    fn damaged_states_give_none_or_what_they_say() {
        let all = sessions();
        crate::analysis::pack::check_damaged(
            all.iter().max_by_key(|s| s.timeline.len()).expect("a session"),
            7,
        );
    }
}
