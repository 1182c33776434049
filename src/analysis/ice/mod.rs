//! ICE sessions reconstructed from packets: agents, candidates, candidate pairs, checks, nomination,
//! consent and media per pair (RFC 8445, RFC 7675 consent freshness, RFC 8838 trickle).
//!
//! A session is the exchange between two agents named by their ufrags: a connectivity check's USERNAME is
//! "RFRAG:LFRAG" (RFC 8445 §7.2.2), so a request tells which agent sent it (LFRAG, from the source address)
//! and which one receives it (RFRAG, at the destination). Responses carry no USERNAME and are tied to their
//! check through the transaction table. New ufrags between addresses an earlier session used are an ICE
//! restart (§9), linked to that session. Checks relayed through TURN arrive here as inner datagrams between
//! relayed address and peer (see `turn`), so relay pairs are analysed like direct ones.
//!
//! What the wire cannot show is not invented: frozen/waiting states, candidates that were never used, the
//! agents' own pair priorities. Candidate types are *inferred* from what servers and peers reported
//! (XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS) and say how. Everything is kept per message as it arrives;
//! derived figures (states, counters, RTT, outcome) are computed by [`crate::report`] from these facts and
//! the transaction table, so a live view and a file run agree. Tables are bounded by the constants below.
//!
//! The map: [`IceState`] (the tables, the entry points for media and for aging sessions out) and
//! [`Observed`] are here; `session` holds what is kept per session (agents, pairs, checks each way, media,
//! the timeline), `checks` feeds connectivity checks and their responses into it, `bindings` keeps what
//! STUN and TURN servers told clients (server-reflexive and relayed addresses, and their indexes), and
//! `candidates` classifies an agent's addresses from those. Every item is re-exported here.
mod bindings;
mod candidates;
mod checks;
pub(crate) use checks::is_check_method;
mod index;
mod list;
mod mappings;
mod session;
mod settle;
mod sleep;
mod timeline;
pub(crate) use list::Sessions;
pub(crate) use settle::{SettledTimeout, Tally};

pub(crate) use bindings::{RelayedAddress, ServerBinding};
pub(crate) use candidates::Candidate;
pub use candidates::CandidateType;
pub(crate) use session::{
    AddressIndex, Agent, AgentAddress, Event, EventKind, NetworkInfo, Pair, Role, Session, TxRef,
    MAX_TX_PER_DIRECTION,
};
#[cfg(test)]
pub(crate) use session::{MAX_TIMELINE_EVENTS, TIMELINE_HEAD};

use bindings::BindingIndex;
use index::{ChecksByTx, FlowIndex};

use super::transactions::{Seen, Transaction, Transactions, TxEvent, TxIndex};
use super::Relay;
use crate::capture::Timestamp;
use crate::net::hash::FastHash;
use crate::net::Flow;
use crate::wire::stun::StunMessage;
use std::collections::HashMap;

/// Sessions held in memory at once, open and awake (a few KB each). A TURN server sees one per call leg;
/// beyond this, new ones are counted only. Sessions folded by [`crate::analysis::fold`] no longer count,
/// nor do those asleep (quiet for 10 s, their state in a temporary file: [`list::Sessions::sleep`]), so
/// this bounds the calls active at one moment: 20,000 holds a server with 10,000 concurrent calls.
pub(crate) const MAX_SESSIONS: usize = 20_000;

/// Sessions open at once, asleep ones included: what a sleeping session keeps in memory (its 96-byte
/// record and slot, its addresses, its ufrags', addresses' and flows' index entries: ~400 bytes) is
/// bounded by this. Until session 31 sleeping sessions counted against [`MAX_SESSIONS`], and `iceview live`
/// fed the call-dense capture at 233,000 packets/s (its calls five times as dense as the capture's) listed
/// 37,885 sessions of two passes over it, and 57,175 once they no longer counted.
pub(crate) const MAX_OPEN_SESSIONS: usize = 100_000;

/// How long before a session's first message a server binding or allocation can have gathered its
/// candidates, and how long a client's bindings can pause before its NAT's mapping is compared afresh
/// ([`mappings`]): the fold horizon. A binding older than that belongs to an earlier call reusing the
/// addresses; a file read that folds retires it ([`IceState::retire_bindings`]).
pub(crate) const BINDING_HORIZON_SECS: f64 = crate::analysis::fold::FOLD_AFTER_SECS;

#[derive(Debug, Default)]
pub struct IceState {
    pub(crate) sessions: Sessions,
    /// A session's two ufrags, in either order (`checks::ufrags_key`) → the session.
    by_ufrags: HashMap<Box<[u8]>, usize>,
    /// The key a check looks up in `by_ufrags`, kept for the next.
    ufrags_key: Vec<u8>,
    /// Check transaction → its pair.
    by_tx: ChecksByTx,
    /// (src, dst, transport) of a pair's checks → (session, pair, from), for media and USERNAME-less
    /// requests (GOOG-PING, keepalives); bounded by the sessions' pairs.
    by_flow: FlowIndex,
    /// Agent address → the sessions using it (for ICE restarts).
    by_address: AddressIndex,
    /// The addresses of flows whose entry in `by_flow` changed since the analysis last took them (see
    /// [`IceState::pair_of`]).
    flows_changed: crate::analysis::flows::Dirty,
    pub(crate) server_bindings: Vec<ServerBinding>,
    /// XOR-RELAYED-ADDRESS of every successful Allocate: relay candidates (RFC 8445 §5.1.1.2).
    pub(crate) relayed_addresses: Vec<RelayedAddress>,
    pub(crate) sessions_not_tracked: u64,
    /// Sessions folded ([`Session::folded`]).
    pub(crate) sessions_folded: usize,
    /// A smaller bound than [`MAX_OPEN_SESSIONS`] (tests).
    #[cfg(test)]
    pub(crate) open_limit: Option<usize>,
    /// Timeline entries frozen in all ([`timeline`]).
    timeline_entries_frozen: u64,
    /// Every session before this index is folded: where the search for quiet ones starts.
    closed_below: usize,
    pub(crate) server_bindings_not_kept: u64,
    /// Server bindings kept in all, retired ones too (what [`bindings::MAX_SERVER_BINDINGS`] bounds).
    server_bindings_kept: usize,
    /// NAT mapping changes, worked out as the bindings arrive.
    pub(crate) mappings: mappings::Mappings,
    /// No server bindings are retired before this ([`IceState::retire_bindings`]).
    next_binding_retire: Option<Timestamp>,
    /// Indexes of `server_bindings` and `relayed_addresses`, so that classifying every session's
    /// candidates does not search them all for each address (a TURN server capture holds tens of thousands
    /// of allocations; the searches made the report quadratic in them).
    index: BindingIndex,
}

/// One STUN message with where and when it was seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observed<'a> {
    pub(crate) seen: Seen,
    pub(crate) flow: Flow,
    pub(crate) relay: Option<Relay>,
    /// For a relayed message: it left the client's allocation toward the peer (so the source address is the
    /// relayed one); else it arrived from the peer (the destination is the relayed address).
    pub(crate) relay_to_peer: bool,
    pub(crate) msg: &'a StunMessage,
    pub(crate) tx: TxEvent,
}

/// The kind of a non-STUN datagram, for media per pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Dtls { application_data: bool },
    Rtp,
    Rtcp,
}

impl IceState {
    /// Sessions started in all, folded ones included.
    pub fn sessions_started(&self) -> usize {
        self.sessions.len()
    }

    /// Timeline entries frozen so far, in all sessions ([`timeline`]).
    pub fn timeline_entries_frozen(&self) -> u64 {
        self.timeline_entries_frozen
    }

    pub(crate) fn session_of_tx(&self, tx: TxIndex) -> Option<(usize, usize, u8)> {
        self.by_tx.get(tx).map(|r| (r.session, r.pair, r.from))
    }

    /// The slots among the transaction table's first `len` that are a session's checks
    /// ([`IceState::session_of_tx`] for each, all at once).
    pub(crate) fn checks_held(&self, len: usize) -> index::TxBits {
        self.by_tx.held(len)
    }

    /// The pair whose addresses `flow` travels between, as (session, pair, direction), for
    /// [`IceState::on_media`].
    pub(crate) fn pair_of(&self, flow: &Flow) -> Option<(usize, usize, u8)> {
        match self.by_flow.get(&self.sessions, flow) {
            Some(r) => Some(r),
            None => self
                .by_flow
                .get(&self.sessions, &flow.reversed())
                .map(|(s, p, from)| (s, p, 1 - from)),
        }
    }

    /// The addresses of flows whose pair changed since the last call: what [`IceState::pair_of`] answered
    /// for other flows stays true.
    pub(crate) fn flows_changed(&mut self) -> &mut crate::analysis::flows::Dirty {
        &mut self.flows_changed
    }

    /// Counts a DTLS/RTP/RTCP datagram on the pair ([`IceState::pair_of`]) whose addresses it travels
    /// between.
    pub(crate) fn on_media(
        &mut self,
        (s, p, dir): (usize, usize, u8),
        seen: Seen,
        kind: MediaKind,
        len: usize,
    ) {
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        let Some(pair) = session.pairs.get_mut(p) else {
            return;
        };
        let m = pair.media_mut();
        m.bytes += len as u64;
        m.packets[dir as usize] += 1;
        m.last = Some(seen);
        let mut event = None;
        match kind {
            MediaKind::Dtls { application_data } => {
                m.dtls += 1;
                if m.first_dtls.is_none() {
                    m.first_dtls = Some(seen);
                    event = Some(EventKind::DtlsStart);
                }
                if application_data && m.first_dtls_data.is_none() {
                    m.first_dtls_data = Some(seen);
                    event = Some(EventKind::DtlsConnected);
                }
            }
            MediaKind::Rtp | MediaKind::Rtcp => {
                if kind == MediaKind::Rtp {
                    m.rtp += 1;
                } else {
                    m.rtcp += 1;
                }
                if m.first_rtp.is_none() {
                    m.first_rtp = Some(seen);
                    event = Some(EventKind::MediaStart);
                }
            }
        }
        if let Some(kind) = event {
            session.event(Event::new(seen, p, dir, kind));
        }
    }

    /// Gives back the room of the indexes of checks and flows to sessions (they keep the most entries
    /// they ever held; folding empties them).
    pub(crate) fn shrink_indexes(&mut self) {
        self.by_tx.shrink_to_fit();
        self.by_flow.shrink_to_fit();
    }

    /// Sessions still open (not folded) with nothing seen, STUN or media, for more than
    /// `idle_secs` before `now`, in index order.
    pub(crate) fn quiet_sessions(&mut self, now: Timestamp, idle_secs: f64) -> Vec<usize> {
        while self.closed_below < self.sessions.len() && self.sessions.is_folded(self.closed_below) {
            self.closed_below += 1;
        }
        (self.closed_below..self.sessions.len())
            .filter(|&s| {
                self.sessions
                    .last_activity(s)
                    .is_some_and(|last| now.secs_since(last) > idle_secs)
            })
            .collect()
    }

    /// Puts the open sessions quiet for a while at `now` to sleep ([`Sessions::sleep`]). Each notes when
    /// the first of its checks may settle ([`IceState::settle`] wakes it then), from `txs`.
    pub(crate) fn sleep(&mut self, now: Timestamp, txs: &Transactions) -> usize {
        self.sessions
            .sleep(self.closed_below, now, |s| settles_after(s, txs))
    }

    /// The agent addresses of the sessions still open (not folded), each with its session's first
    /// message's time.
    pub(crate) fn open_addresses(&self) -> impl Iterator<Item = (std::net::SocketAddr, Timestamp)> + '_ {
        self.sessions.open_addresses(self.closed_below)
    }

    /// Drops everything of sessions `folds` but their mark (their views were rendered elsewhere), and the
    /// lookups that lead to them, so later packets with their ufrags or flows start afresh. Returns the
    /// transactions they referred to.
    /// One pass over each lookup table for them all: a file read folds thousands of sessions.
    /// Whether a new session may start: fewer than [`MAX_SESSIONS`] awake and fewer than
    /// [`MAX_OPEN_SESSIONS`] open.
    pub(crate) fn room_for_a_session(&self) -> bool {
        let open = self.sessions.len() - self.sessions_folded;
        let awake = open.saturating_sub(self.sessions.asleep());
        let limit = MAX_OPEN_SESSIONS;
        #[cfg(test)]
        let limit = self.open_limit.unwrap_or(limit);
        awake < MAX_SESSIONS && open < limit
    }

    pub(crate) fn fold(&mut self, folds: &[usize]) -> Vec<TxIndex> {
        let mut set = std::collections::HashSet::with_capacity_and_hasher(folds.len(), FastHash::default());
        for &s in folds {
            if self.sessions.is_folded(s) || !set.insert(s) {
                continue;
            }
            self.sessions_folded += 1;
        }
        let txs = self.forget(|s| set.contains(&s));
        // What was folded at the front goes.
        self.closed_below = self.closed_below.max(self.sessions.drop_folded_front());
        txs
    }

    /// Drops the sessions `gone` picks but their places (pairs, timeline, addresses) and the lookups that
    /// lead to them, so later packets with their ufrags or flows start afresh. Returns the transactions
    /// they referred to.
    fn forget(&mut self, gone: impl Fn(usize) -> bool) -> Vec<TxIndex> {
        let going: Vec<usize> = (self.closed_below..self.sessions.len())
            .filter(|&s| gone(s))
            .collect();
        for &s in &going {
            // Its flows first: the index finds them through its pairs.
            self.by_flow
                .forget_session(&self.sessions, s, &mut self.flows_changed);
            // Nothing refers to its detail any more: only its place is kept (a sleeping one is not woken).
            self.sessions.fold(s);
        }
        let mut txs = Vec::new();
        self.by_tx.retain(|tx, r| {
            let ours = gone(r.session);
            if ours {
                txs.push(tx);
            }
            !ours
        });
        self.by_ufrags.retain(|_, v| !gone(*v));
        self.by_address.forget(&gone);
        txs
    }
}

/// When the first of session `s`'s unsettled checks may settle: the earliest last activity of the first
/// unsettled check of its pair directions (the time zero for one gone from `txs`); None: nothing to settle.
pub(super) fn settles_after(s: &Session, txs: &Transactions) -> Option<Timestamp> {
    s.pairs
        .iter()
        .flat_map(|p| p.dirs.iter())
        .filter_map(|d| d.txs.first())
        .map(|&i| {
            txs.get(i)
                .and_then(Transaction::last_activity)
                .unwrap_or(Timestamp(0))
        })
        .min()
}

#[cfg(test)]
pub(super) mod tests {
    //! The driver the ICE modules' tests share: messages through a transaction table into an `IceState`.
    use super::*;
    use crate::analysis::testkit::{self, check, message};
    use crate::analysis::transactions::Transactions;
    use crate::net::Transport;
    use crate::wire::stun::{Class, Method};
    use std::net::SocketAddr;

    pub(super) fn msg(
        method: Method,
        class: Class,
        id: u16,
        attributes: Vec<crate::wire::stun::Attribute>,
    ) -> StunMessage {
        message(method, class, id, attributes)
    }

    pub(super) fn success(id: u16, mapped: SocketAddr) -> StunMessage {
        testkit::success(id, Some(mapped))
    }

    pub(super) struct Driver {
        pub(super) ice: IceState,
        pub(super) txs: Transactions,
        ms: u64,
    }

    impl Driver {
        pub(super) fn new() -> Self {
            Driver {
                ice: IceState::default(),
                txs: Transactions::default(),
                ms: 0,
            }
        }
        pub(super) fn feed(&mut self, src: &str, dst: &str, m: StunMessage) {
            self.ms += 10;
            testkit::feed(&mut self.txs, &mut self.ice, self.ms, self.ms / 10, src, dst, &m);
        }
        /// Lets `ms` pass before the next message.
        pub(super) fn wait(&mut self, ms: u64) {
            self.ms += ms;
        }
        /// The time of the last message.
        pub(super) fn now(&self) -> Timestamp {
            Timestamp(self.ms * 1_000_000)
        }
        /// A read's search for quiet checks at the last message's time: settles those quiet for
        /// [`crate::analysis::fold::FOLD_AFTER_SECS`] (but those in `keep`); no session folds here.
        pub(super) fn settle_now(
            &mut self,
            keep: &std::collections::HashSet<TxIndex, crate::net::hash::FastHash>,
        ) -> Vec<TxIndex> {
            let quiet = crate::analysis::fold::FOLD_AFTER_SECS;
            self.ice
                .settle(&self.txs, (self.now(), quiet, f64::INFINITY), keep)
        }
        /// Session 0's view as a capture ending at `end` shows it, as JSON.
        pub(super) fn view(&self, end: Timestamp) -> serde_json::Value {
            let s = crate::analysis::sessions::session(&self.ice, 0, &self.txs, end).expect("a view");
            serde_json::to_value(&s).expect("JSON")
        }
    }

    pub(super) const A: &str = "192.0.2.1:5000";
    pub(super) const B: &str = "198.51.100.2:6000";

    #[test]
    fn goog_ping_and_media_land_on_the_known_pair() {
        let mut d = Driver::new();
        d.feed(A, B, check(1, "bbbb:aaaa", true, true));
        d.feed(B, A, success(1, A.parse().unwrap()));
        d.feed(A, B, msg(Method::GOOG_PING, Class::Request, 9, vec![]));
        let seen = Seen {
            ts: Timestamp(1_000_000_000),
            frame: 99,
            input: 0,
        };
        let back = Flow {
            src: B.parse().unwrap(),
            dst: A.parse().unwrap(),
            transport: Transport::Udp,
        };
        let pair = d
            .ice
            .pair_of(&back)
            .expect("the pair of the checks' flow, reversed");
        d.ice.on_media(
            pair,
            seen,
            MediaKind::Dtls {
                application_data: false,
            },
            100,
        );
        let p = &d.ice.sessions[0].pairs[0];
        assert_eq!(p.dirs[0].txs.len(), 2);
        assert_eq!(p.media().dtls, 1);
        assert_eq!(p.media().packets, [0, 1]);
    }

    /// A session folded while asleep leaves the flow index (its pairs read from its stored state, both
    /// ways) and marks its addresses' flows as changed, as an awake one does; neither is woken for it.
    #[test]
    fn a_sleeping_session_that_folds_leaves_the_flow_index() {
        const C: &str = "203.0.113.9:7000";
        for asleep in [false, true] {
            let mut d = Driver::new();
            d.feed(A, B, check(1, "bbbb:aaaa", true, true));
            d.feed(B, A, check(2, "aaaa:bbbb", false, false));
            d.feed(C, A, check(3, "aaaa:bbbb", false, false));
            assert_eq!(d.ice.by_flow.len(), 3, "A→B, B→A, C→A");
            d.ice
                .flows_changed()
                .take_into(&mut crate::analysis::flows::Stamps::default());
            if asleep {
                d.ice.sessions.enable_sleep(None, 0.0);
                assert_eq!(d.ice.sleep(Timestamp::from_secs_f64(20.0), &d.txs), 1);
            }
            d.ice.fold(&[0]);
            assert_eq!(d.ice.by_flow.len(), 0, "asleep: {asleep}");
            let mut noted = d.ice.flows_changed().noted().to_vec();
            noted.sort_unstable();
            noted.dedup();
            let mut want: Vec<SocketAddr> = [A, B, C].iter().map(|a| a.parse().unwrap()).collect();
            want.sort_unstable();
            assert_eq!(noted, want, "asleep: {asleep}");
            if asleep {
                assert_eq!(d.ice.sessions.sleep_counts(), (1, 0), "not woken to fold");
            }
        }
    }
}
