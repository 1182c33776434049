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
use crate::analysis::transactions::Seen;
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::Transport;
use crate::wire::stun::TransactionId;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// `session`'s encoding, appended to `out`.
pub(super) fn encode(session: &Session, out: &mut Vec<u8>) {
    session.put(out);
}

/// The session [`encode`] wrote into `buf` (None when `buf` is not one whole encoding).
pub(super) fn decode(buf: &[u8]) -> Option<Session> {
    let mut r = Reader { buf, at: 0 };
    let s = Session::get(&mut r)?;
    (r.at == buf.len()).then_some(s)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b: [u8; N] = self.buf.get(self.at..self.at.checked_add(N)?)?.try_into().ok()?;
        self.at += N;
        Some(b)
    }

    /// A length, checked against what is left (every element takes at least a byte), so a damaged one
    /// cannot ask for a huge allocation.
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(u32::get(self)?).ok()?;
        (n <= self.buf.len() - self.at).then_some(n)
    }
}

/// A value's encoding: `put` appends it, `get` reads it back.
trait Pack: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Option<Self>;
}

macro_rules! pack_int {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Option<Self> {
                Some(<$t>::from_le_bytes(r.take()?))
            }
        }
    )*};
}
pack_int!(u8, u16, u32, u64);

/// A struct's fields, one after the other (every field named: a field added to the struct and not here
/// does not compile).
macro_rules! pack_struct {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Pack for $t {
            fn put(&self, out: &mut Vec<u8>) {
                let $t { $($f),* } = self;
                $($f.put(out);)*
            }
            fn get(r: &mut Reader<'_>) -> Option<Self> {
                Some($t { $($f: Pack::get(r)?),* })
            }
        }
    };
}

impl Pack for usize {
    fn put(&self, out: &mut Vec<u8>) {
        (*self as u64).put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        usize::try_from(u64::get(r)?).ok()
    }
}

impl Pack for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Pack for f64 {
    fn put(&self, out: &mut Vec<u8>) {
        self.to_bits().put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some(f64::from_bits(u64::get(r)?))
    }
}

impl<T: Pack> Pack for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                x.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            0 => Some(None),
            1 => Some(Some(T::get(r)?)),
            _ => None,
        }
    }
}

impl<T: Pack> Pack for Box<T> {
    fn put(&self, out: &mut Vec<u8>) {
        (**self).put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        T::get(r).map(Box::new)
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        // Every list kept is bounded far below 2^32 (MAX_TIMELINE_EVENTS and the like).
        u32::try_from(self.len()).unwrap_or(u32::MAX).put(out);
        for x in self {
            x.put(out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        let n = r.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::get(r)?);
        }
        Some(v)
    }
}

impl<T: Pack> Pack for [T; 2] {
    fn put(&self, out: &mut Vec<u8>) {
        self[0].put(out);
        self[1].put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some([T::get(r)?, T::get(r)?])
    }
}

impl<A: Pack, B: Pack> Pack for (A, B) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some((A::get(r)?, B::get(r)?))
    }
}

impl<K: Pack + Ord, V: Pack> Pack for BTreeMap<K, V> {
    fn put(&self, out: &mut Vec<u8>) {
        u32::try_from(self.len()).unwrap_or(u32::MAX).put(out);
        for (k, v) in self {
            k.put(out);
            v.put(out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        let n = r.len()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = K::get(r)?;
            m.insert(k, V::get(r)?);
        }
        Some(m)
    }
}

impl Pack for String {
    fn put(&self, out: &mut Vec<u8>) {
        u32::try_from(self.len()).unwrap_or(u32::MAX).put(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        let n = r.len()?;
        let bytes = r.buf.get(r.at..r.at + n)?;
        r.at += n;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl Pack for SocketAddr {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            SocketAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.ip().octets());
                a.port().put(out);
            }
            SocketAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&a.ip().octets());
                a.port().put(out);
                a.flowinfo().put(out);
                a.scope_id().put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            4 => {
                let ip = Ipv4Addr::from(r.take::<4>()?);
                Some(SocketAddr::new(IpAddr::V4(ip), u16::get(r)?))
            }
            6 => {
                let ip = Ipv6Addr::from(r.take::<16>()?);
                let port = u16::get(r)?;
                let (flow, scope) = (u32::get(r)?, u32::get(r)?);
                Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))
            }
            _ => None,
        }
    }
}

impl Pack for SortAddr {
    fn put(&self, out: &mut Vec<u8>) {
        self.addr().put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        SocketAddr::get(r).map(SortAddr::of)
    }
}

impl Pack for Timestamp {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        u64::get(r).map(Timestamp)
    }
}

impl Pack for TransactionId {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        r.take().map(TransactionId)
    }
}

impl Pack for Transport {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        });
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            0 => Some(Transport::Udp),
            1 => Some(Transport::Tcp),
            _ => None,
        }
    }
}

impl Pack for Role {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Role::Controlling => 0,
            Role::Controlled => 1,
        });
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        match u8::get(r)? {
            0 => Some(Role::Controlling),
            1 => Some(Role::Controlled),
            _ => None,
        }
    }
}

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

pack_struct!(Seen { ts, frame, input });
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
pack_struct!(Settled { txs, tally, timeouts });
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
    settled,
    timeline_not_kept,
    timeline_ring,
    pairs_not_kept,
    first,
    last,
    restart_of,
    folded,
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
            encode(s, &mut buf);
            let back = decode(&buf).expect("decodes");
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
        let s = all.iter().max_by_key(|s| s.timeline.len()).expect("a session");
        let mut buf = Vec::new();
        encode(s, &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode(&longer).is_none(), "a byte too many");
        for at in (0..buf.len()).step_by(7) {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = buf.clone();
                bad[at] ^= flip;
                if let Some(x) = decode(&bad) {
                    let mut again = Vec::new();
                    encode(&x, &mut again);
                    assert_eq!(again, bad, "byte {at} ^ {flip:#x}");
                }
            }
        }
    }
}
