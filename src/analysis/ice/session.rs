//! What is kept of one ICE session: its two agents (ufrag, role and tie-breaker, SOFTWARE, the addresses
//! they used), the candidate pairs between those addresses with the checks sent each way, nominations and
//! media per pair, and the session's timeline (RFC 8445 §6.1.1 roles, §6.1.2 checklists, §7.1–§7.3 checks,
//! §8.1.1 nomination; RFC 7675 consent checks are counted like any other). Only what the packets showed:
//! no frozen/waiting pair states, no priorities the agents computed for themselves. Tables are bounded by
//! the constants here; beyond them things are counted, not kept. How messages fill these is in `checks`.
use super::settle::{Settled, SettledTx};
use super::timeline::{Frozen, Shown};
use crate::analysis::pack::SleepStore;
use crate::analysis::small_map::push_sparing;
use crate::analysis::transactions::{Few, Seen, Transactions, TxIndex};
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::hash::FastHash;
use crate::net::Transport;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;

/// Pairs per session: RFC 8445 §6.1.2.5 suggests a checklist limit of 100; browsers pair every local with
/// every remote candidate and may exceed it, so allow ten times as many before counting instead.
pub(crate) const MAX_PAIRS_PER_SESSION: usize = 1000;
/// Open checks per pair direction: those not settled yet ([`super::settle`]: within 45 s of their last
/// transmission or answer). Consent checks come every ~5 s (RFC 7675 §5.1) and the initial checks are
/// paced (RFC 8445 §14.2), so 4,096 open at once is a flood: past it a check is counted in `requests_sent`
/// and `requests_not_detailed` but not tallied. Settled checks are tallied with no bound: a call of days
/// counts every consent check, as its agents' getStats do.
pub(crate) const MAX_TX_PER_DIRECTION: usize = 4096;
/// Timeline entries per session. Past it, a session keeps its first [`TIMELINE_HEAD`] entries (the checks
/// that set the call up) and its latest ones (the last ~hour of a call's consent checks, where a call that
/// breaks shows it), and counts those in between.
pub(crate) const MAX_TIMELINE_EVENTS: usize = 5000;
/// The first timeline entries of a session, always kept ([`MAX_TIMELINE_EVENTS`]).
pub(crate) const TIMELINE_HEAD: usize = 1000;
/// Live timeline entries that freeze at once, at the least ([`Session::freeze`]): a frozen block costs
/// its list entry, 32 bytes.
const FREEZE_AT_LEAST: usize = 16;
/// Addresses remembered per agent; a browser with many interfaces gathers a few dozen.
pub(crate) const MAX_ADDRESSES_PER_AGENT: usize = 256;

/// An agent's ICE role (RFC 8445 §6.1.1), serialised as its `name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    Controlling,
    Controlled,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Controlling => "controlling",
            Role::Controlled => "controlled",
        }
    }
}

/// How an agent's address was used on the wire: as the source of its checks, the destination of the
/// peer's checks, or reported back by a peer or server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AgentAddress {
    pub(crate) address: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) first_seen: Seen,
    /// PRIORITY announced in this agent's checks from this address (RFC 8445 §7.1.1: the priority a
    /// peer-reflexive candidate learned from the check would get).
    pub(crate) priority: Option<u32>,
    /// This is the relayed address of the allocation of this TURN (client, server): checks from/to it
    /// travelled through that allocation.
    /// Kept in 20 bytes an address ([`SortAddr`]): a busy server's capture holds tens of thousands of agent
    /// addresses at once.
    pub(crate) turn_client: Option<(SortAddr, SortAddr)>,
    /// Reported as XOR-MAPPED-ADDRESS in the peer's response to one of this agent's checks.
    pub(crate) reflected_by_peer: Option<Seen>,
}

/// Chromium's GOOG-NETWORK-INFO: which of the browser's networks a check was sent on, and its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NetworkInfo {
    pub(crate) id: u16,
    pub(crate) cost: u16,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Agent {
    pub(crate) ufrag: String,
    pub(crate) role: Option<Role>,
    pub(crate) tie_breaker: Option<u64>,
    /// Role announcements that changed the role, in order (RFC 8445 §7.3.1.1 role conflicts).
    pub(crate) role_changes: Vec<(Seen, Role)>,
    pub(crate) software: Option<String>,
    /// GOOG-NETWORK-INFO from Chromium's checks.
    pub(crate) network_info: Option<NetworkInfo>,
    pub(crate) addresses: Vec<AgentAddress>,
}

/// Sessions an agent address belongs to (the highest indexes, at most [`MAX_SESSIONS_PER_ADDRESS`] per
/// address), so a new session finds the latest one that used its addresses (an ICE restart, RFC 8445 §9)
/// without reading every session: a busy server's capture starts tens of thousands, and that search made
/// the read quadratic in them.
///
/// Sessions are kept as `u32`s with the first inline ([`Few`], 16 bytes): a `Vec<usize>` took 24 and a heap
/// block for each address, and a busy server's capture holds tens of thousands of addresses at once.
///
/// Keyed by a 64-bit hash of the address (foldhash, seeded at random per run, so a capture cannot make two
/// addresses share one on purpose): 8 bytes a key where the address took 32. The index was 1.6 MB of the
/// call-dense 4 GB read's peak heap; keyed so, the peak is 0.8 MB lower. Addresses sharing a hash share an
/// entry, so what [`AddressIndex::sessions`] gives is every session noted under the hash, and the caller
/// keeps those with an agent at the address.
#[derive(Debug, Default)]
pub(crate) struct AddressIndex {
    map: HashMap<u64, Few<u32>, FastHash>,
    hash: foldhash::quality::RandomState,
    /// Every address gets the same hash (tests of what addresses sharing one give).
    #[cfg(test)]
    pub(super) same_hash: bool,
}

/// Sessions remembered per address in [`AddressIndex`]; only the latest is ever asked for, the others
/// stand in when it is folded. An address shared by more sessions (a hostile capture) keeps the latest.
pub(super) const MAX_SESSIONS_PER_ADDRESS: usize = 16;

impl AddressIndex {
    fn key(&self, address: &SocketAddr) -> u64 {
        #[cfg(test)]
        if self.same_hash {
            return 7;
        }
        self.hash.hash_one(address)
    }

    fn note(&mut self, address: SocketAddr, session: usize) {
        // Past 2^32 sessions (never: a session takes packets) the address is not indexed.
        let Ok(session) = u32::try_from(session) else {
            return;
        };
        let key = self.key(&address);
        let v = self.map.entry(key).or_default();
        if v.iter().any(|&s| s == session) {
            return;
        }
        if v.len() >= MAX_SESSIONS_PER_ADDRESS {
            let Some(&oldest) = v.iter().min() else {
                return;
            };
            if oldest > session {
                return;
            }
            v.retain(|&s| s != oldest);
        }
        v.push(session);
    }

    /// The sessions noted under `address`'s hash: every session with an agent at `address` that is still
    /// held (the latest [`MAX_SESSIONS_PER_ADDRESS`] of them), and any noted under another address with
    /// the same hash.
    pub(crate) fn sessions(&self, address: &SocketAddr) -> impl Iterator<Item = usize> + '_ {
        self.map
            .get(&self.key(address))
            .into_iter()
            .flat_map(|v| v.iter().map(|&s| s as usize))
    }

    /// Drops the sessions `gone` picks.
    pub(crate) fn forget(&mut self, gone: impl Fn(usize) -> bool) {
        self.map.retain(|_, v| {
            v.retain(|&s| !gone(s as usize));
            !v.is_empty()
        });
    }
}

impl Agent {
    /// Notes that the agent of session `session` used `address` (indexed in `index` when new), and
    /// returns its entry; `None` past [`MAX_ADDRESSES_PER_AGENT`].
    pub(super) fn note_address(
        &mut self,
        address: SocketAddr,
        transport: Transport,
        seen: Seen,
        index: &mut AddressIndex,
        session: usize,
    ) -> Option<&mut AgentAddress> {
        if let Some(i) = self
            .addresses
            .iter()
            .position(|a| a.address == address && a.transport == transport)
        {
            return self.addresses.get_mut(i);
        }
        if self.addresses.len() >= MAX_ADDRESSES_PER_AGENT {
            return None;
        }
        index.note(address, session);
        push_sparing(
            &mut self.addresses,
            AgentAddress {
                address,
                transport,
                first_seen: seen,
                priority: None,
                turn_client: None,
                reflected_by_peer: None,
            },
        );
        self.addresses.last_mut()
    }
}

/// One direction of a pair: the checks one agent sent to the other.
#[derive(Clone, Debug, Default)]
pub(crate) struct Direction {
    /// Open check transactions (first transmission order), at most [`MAX_TX_PER_DIRECTION`].
    pub(crate) txs: Vec<TxIndex>,
    pub(crate) txs_not_kept: u64,
    /// Requests carrying USE-CANDIDATE (counted per kept transaction), and the first one's first
    /// transmission.
    pub(crate) use_candidate: u64,
    pub(crate) first_use_candidate: Option<Timestamp>,
    /// Binding indications (RFC 8445 §11 keepalives).
    pub(crate) keepalives: u64,
    /// Checks settled ([`super::settle`]): taken from the front of `txs`, how many, their tally and
    /// their timeouts (for the timeline).
    pub(crate) settled: Option<Box<Settled>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Media {
    pub(crate) dtls: u64,
    pub(crate) rtp: u64,
    pub(crate) rtcp: u64,
    pub(crate) bytes: u64,
    pub(crate) first_dtls: Option<Seen>,
    /// First DTLS application_data record: the handshake finished (RFC 6347 §4.1 content type 23).
    pub(crate) first_dtls_data: Option<Seen>,
    pub(crate) first_rtp: Option<Seen>,
    pub(crate) last: Option<Seen>,
    /// Packets per direction (a→b, b→a).
    pub(crate) packets: [u64; 2],
}

impl Media {
    /// No media.
    const NONE: Media = Media {
        dtls: 0,
        rtp: 0,
        rtcp: 0,
        bytes: 0,
        first_dtls: None,
        first_dtls_data: None,
        first_rtp: None,
        last: None,
        packets: [0; 2],
    };
}

#[derive(Clone, Debug)]
pub(crate) struct Pair {
    /// The address of `agents[0]` and of `agents[1]`.
    pub(crate) a: SocketAddr,
    pub(crate) b: SocketAddr,
    pub(crate) transport: Transport,
    /// Checks a→b and b→a.
    pub(crate) dirs: [Direction; 2],
    /// Successful USE-CANDIDATE checks by the controlling agent (RFC 8445 §8.1.1), in order.
    pub(crate) nominations: Vec<Seen>,
    /// Its media, from the first packet on ([`Pair::media`]): most pairs of a session carry none, and
    /// this is 176 of a pair's 416 bytes (a busy server's capture holds tens of thousands of pairs).
    pub(super) media: Option<Box<Media>>,
}

impl Pair {
    pub(crate) fn new(a: SocketAddr, b: SocketAddr, transport: Transport) -> Pair {
        Pair {
            a,
            b,
            transport,
            dirs: Default::default(),
            nominations: Vec::new(),
            media: None,
        }
    }

    /// Its media (all zero and none seen when none was).
    pub(crate) fn media(&self) -> &Media {
        static NONE: Media = Media::NONE;
        self.media.as_deref().unwrap_or(&NONE)
    }

    /// Its media, to count a packet.
    pub(crate) fn media_mut(&mut self) -> &mut Media {
        self.media.get_or_insert_with(Box::default)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// A check (first transmission, or `retransmit`), from agent `from` (0/1).
    Check {
        tx: TxRef,
        retransmit: bool,
        use_candidate: bool,
    },
    Success {
        tx: TxRef,
    },
    Error {
        tx: TxRef,
        code: u16,
    },
    /// The pair became nominated (success of a USE-CANDIDATE check).
    Nominated,
    RoleChange {
        role: Role,
    },
    DtlsStart,
    DtlsConnected,
    MediaStart,
}

impl EventKind {
    /// The check reference of a check, an answer or an error.
    pub(crate) fn tx_mut(&mut self) -> Option<&mut TxRef> {
        match self {
            EventKind::Check { tx, .. } | EventKind::Success { tx } | EventKind::Error { tx, .. } => Some(tx),
            _ => None,
        }
    }

    /// [`EventKind::tx_mut`]'s reference, read.
    pub(crate) fn tx(mut self) -> Option<TxRef> {
        self.tx_mut().copied()
    }
}

/// The check transaction a timeline event shows ([`TxRef::get`]), in 32 bits: below 2^31 a transaction
/// table index (the table holds at most `transactions::MAX_TRANSACTIONS`), from 2^31 a settled check,
/// `u32::MAX` neither. An open session keeps an event per check and per answer, and a busy server's capture
/// holds thousands of sessions open: this and [`Event`]'s flat layout make an event 32 bytes (an enum of
/// two `u32` cases took 8, and the event 48).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxRef(u32);

/// What a [`TxRef`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tx {
    /// In the transaction table: its index.
    Live(u32),
    /// Settled ([`super::settle`]): an entry of [`Session::settled`].
    Settled(u32),
    /// Neither (the transaction was gone when its check settled).
    Gone,
}

/// One event of a session's timeline: the message behind it seen at (`ts`, `frame`, `input`: a [`Seen`]
/// laid out flat, [`Event::seen`]), on pair `pair`, sent by agent `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(super) ts: Timestamp,
    pub(super) frame: u64,
    pub(super) input: u16,
    /// Its index in the session's pairs (at most [`MAX_PAIRS_PER_SESSION`]).
    pub(super) pair: u16,
    /// The agent (0/1) that sent the message behind the event.
    pub(crate) from: u8,
    pub(crate) kind: EventKind,
}

// What the flat layout is for (see `TxRef`): a timeline event in 32 bytes.
const _: () = assert!(std::mem::size_of::<Event>() == 32);

impl Event {
    pub(crate) fn new(seen: Seen, pair: usize, from: u8, kind: EventKind) -> Event {
        Event {
            ts: seen.ts,
            frame: seen.frame,
            input: seen.input,
            // A session holds at most MAX_PAIRS_PER_SESSION (1,000) pairs.
            pair: u16::try_from(pair).unwrap_or(u16::MAX),
            from,
            kind,
        }
    }

    /// When and where the message behind it was seen.
    #[cfg(test)]
    pub(crate) fn seen(&self) -> Seen {
        Seen {
            ts: self.ts,
            frame: self.frame,
            input: self.input,
        }
    }

    /// Its pair's index in the session's pairs.
    #[cfg(test)]
    pub(crate) fn pair(&self) -> usize {
        usize::from(self.pair)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) agents: [Agent; 2],
    pub(crate) pairs: Vec<Pair>,
    /// The live timeline entries: those after the frozen ones ([`super::timeline`]).
    pub(crate) timeline: Vec<Event>,
    /// The entries before the live ones whose checks had settled, written as the view shows them.
    pub(crate) frozen: Frozen,
    /// The settled checks the live timeline refers to ([`Tx::Settled`]).
    pub(crate) settled: Vec<SettledTx>,
    /// Live entries replaced in the ring below.
    pub(crate) timeline_not_kept: u64,
    /// Past [`MAX_TIMELINE_EVENTS`], the live entries after the head are a ring: where its oldest entry is,
    /// counted from the head's end ([`Session::timeline_in_order`]).
    pub(crate) timeline_ring: u16,
    pub(crate) pairs_not_kept: u64,
    pub(crate) first: Seen,
    pub(crate) last: Seen,
    /// An earlier session between the same addresses with other ufrags (ICE restart).
    pub(crate) restart_of: Option<usize>,
    /// Set only in what [`super::Sessions::get`] gives for a folded session ([`crate::analysis::fold`]: its
    /// view was rendered and handed on, and nothing of it is kept but its place).
    pub(crate) folded: bool,
    /// No check of this session settles before it has been quiet since this time: the least last activity
    /// of its directions' first open checks when it was last settled, lowered as checks come (answers and
    /// retransmissions only make a check's activity later). [`Session::NOTHING_OPEN`]: no open check. A
    /// search settles a session only once this is due, rather than reading each direction's first check
    /// in the transaction table at every search ([`super::IceState::settle`]).
    pub(crate) settle_hint: Timestamp,
}

impl TxRef {
    const SETTLED: u32 = 1 << 31;
    /// Neither live nor settled.
    pub(crate) const GONE: TxRef = TxRef(u32::MAX);

    /// Transaction `tx` of the table.
    pub(crate) fn live(tx: TxIndex) -> TxRef {
        u32::try_from(tx)
            .ok()
            .filter(|&i| i < Self::SETTLED)
            .map_or(Self::GONE, TxRef)
    }

    /// Entry `k` of the session's settled checks.
    pub(crate) fn settled(k: usize) -> TxRef {
        u32::try_from(k)
            .ok()
            .filter(|&k| k < Self::SETTLED - 1)
            .map_or(Self::GONE, |k| TxRef(Self::SETTLED | k))
    }

    /// Its 32 bits, as [`TxRef::from_bits`] takes them back.
    pub(super) fn bits(self) -> u32 {
        self.0
    }

    pub(super) fn from_bits(bits: u32) -> TxRef {
        TxRef(bits)
    }

    pub(crate) fn get(self) -> Tx {
        match self.0 {
            u32::MAX => Tx::Gone,
            i if i < Self::SETTLED => Tx::Live(i),
            k => Tx::Settled(k & !Self::SETTLED),
        }
    }
}

impl Session {
    /// A session of `agents` whose first message was `seen`, with nothing else yet.
    pub(crate) fn new(agents: [Agent; 2], seen: Seen, restart_of: Option<usize>) -> Session {
        Session {
            agents,
            pairs: Vec::new(),
            timeline: Vec::new(),
            frozen: Frozen::default(),
            settled: Vec::new(),
            timeline_not_kept: 0,
            timeline_ring: 0,
            pairs_not_kept: 0,
            first: seen,
            last: seen,
            restart_of,
            folded: false,
            settle_hint: Session::NOTHING_OPEN,
        }
    }

    /// [`Session::settle_hint`] when no check is open.
    pub(crate) const NOTHING_OPEN: Timestamp = Timestamp(u64::MAX);

    /// The last time anything of this session was seen: a STUN message, or media on one of its pairs.
    pub(crate) fn last_activity(&self) -> Timestamp {
        self.pairs
            .iter()
            .filter_map(|p| p.media().last.map(|m| m.ts))
            .fold(self.last.ts, Timestamp::max)
    }
}

/// The place in a full timeline's tail (the latest `MAX_TIMELINE_EVENTS - TIMELINE_HEAD` entries, kept as
/// a ring) of its oldest entry, for the next to replace; `ring` moves on past it.
pub(super) fn next_in_tail(ring: &mut u16) -> usize {
    let tail = MAX_TIMELINE_EVENTS - TIMELINE_HEAD;
    let at = usize::from(*ring) % tail;
    // The tail is 4,000 entries: its positions fit u16.
    *ring = u16::try_from((at + 1) % tail).unwrap_or(0);
    at
}

impl Session {
    /// Records a timeline entry. Past [`MAX_TIMELINE_EVENTS`] it replaces the oldest entry after the first
    /// [`TIMELINE_HEAD`], which is counted as not kept: a long call's timeline holds its start and its
    /// latest entries, so what its end shows (consent lost, RFC 7675) is never what was dropped. Of those
    /// bounds, the live entries take what the frozen ones ([`Session::freeze`]) left.
    pub(super) fn event(&mut self, ev: Event) {
        let (head, room) = self.live_room();
        if self.timeline.len() < room {
            self.timeline.push(ev);
            return;
        }
        if let Some(slot) = self
            .timeline
            .get_mut(head + next_in_tail(&mut self.timeline_ring))
        {
            *slot = ev;
        }
        self.timeline_not_kept += 1;
    }

    /// Of the timeline's head, the live entries that are part of it, and how many live entries there may
    /// be before the oldest after those is replaced.
    fn live_room(&self) -> (usize, usize) {
        let frozen = usize::try_from(self.frozen.events).unwrap_or(usize::MAX);
        let head = TIMELINE_HEAD.saturating_sub(frozen);
        (head, head + (MAX_TIMELINE_EVENTS - TIMELINE_HEAD))
    }

    /// The live timeline in the order its entries were recorded: the head, then the rest from its oldest
    /// entry.
    pub(crate) fn timeline_in_order(&self) -> impl Iterator<Item = &Event> {
        let (head, _) = self.live_room();
        let split = (head + usize::from(self.timeline_ring)).min(self.timeline.len());
        let first = self.timeline.get(..head.min(split)).unwrap_or_default();
        let oldest = self.timeline.get(split..).unwrap_or_default();
        let newest = self.timeline.get(head.min(split)..split).unwrap_or_default();
        first.iter().chain(oldest).chain(newest)
    }

    /// Entries recorded in the timeline, shown or not.
    pub(crate) fn timeline_recorded(&self) -> u64 {
        self.frozen.events + self.timeline.len() as u64 + self.timeline_not_kept
    }

    /// Entries recorded but not shown: those between the head and the latest, and the settled timeouts
    /// a pair direction let go past the same bound ([`super::settle::Settled::timeouts_not_kept`]).
    pub(crate) fn timeline_events_not_kept(&self) -> u64 {
        let timeouts: u64 = self
            .pairs
            .iter()
            .flat_map(|p| &p.dirs)
            .filter_map(|d| d.settled.as_ref())
            .map(|s| s.timeouts_not_kept)
            .sum();
        self.timeline_recorded()
            .saturating_sub(MAX_TIMELINE_EVENTS as u64)
            + timeouts
    }

    /// The timeline as a view shows it, in the order its entries were recorded: the frozen entries shown,
    /// then the live ones, each with its check's transaction id and round-trip time from the table
    /// (`txs`) or as it settled; the frozen ones read back from `store` (the sessions' sleep store,
    /// [`super::Sessions::sleep_store`]) when they were stored there.
    pub(crate) fn timeline_shown<'a>(
        &'a self,
        txs: &'a Transactions,
        store: Option<&'a SleepStore>,
    ) -> impl Iterator<Item = Shown> + 'a {
        let live = self.timeline_in_order().map(move |e| self.shown(e, Some(txs)));
        self.frozen.shown(self.timeline_recorded(), store).chain(live)
    }

    /// Live entry `e` as the view shows it, its check read from the table (`txs`) or as it settled.
    fn shown(&self, e: &Event, txs: Option<&Transactions>) -> Shown {
        let check = |tx: TxRef| match tx.get() {
            Tx::Live(i) => txs
                .and_then(|txs| txs.get(i as usize))
                .map(|t| (t.id, t.rtt_from_last())),
            Tx::Settled(k) => self.settled.get(k as usize).map(|t| (t.id, t.rtt())),
            Tx::Gone => None,
        };
        let (id, rtt) = match e.kind {
            EventKind::Check { tx, .. } | EventKind::Error { tx, .. } => (check(tx).map(|(id, _)| id), None),
            EventKind::Success { tx } => check(tx).map_or((None, None), |(id, rtt)| (Some(id), rtt)),
            _ => (None, None),
        };
        Shown {
            ts: e.ts,
            frame: e.frame,
            pair: e.pair,
            from: e.from,
            kind: e.kind,
            id,
            rtt,
        }
    }

    /// Freezes the live entries before the first whose check is still in the table ([`super::timeline`]),
    /// when there are at least [`FREEZE_AT_LEAST`]; a timeline whose live ring has turned (a flood of
    /// checks not yet settled) stays as it is. When some froze, the settled checks only they referred
    /// to may go. The frozen entries go to `store` when there is one (the sessions' sleep store), with
    /// those held in memory since the session last slept. Returns how many froze.
    pub(super) fn freeze(&mut self, mut store: Option<&mut SleepStore>) -> usize {
        if self.timeline_not_kept > 0 {
            return 0;
        }
        let live = |e: &Event| e.kind.tx().is_some_and(|tx| matches!(tx.get(), Tx::Live(_)));
        let n = self.timeline.iter().position(live).unwrap_or(self.timeline.len());
        if n < FREEZE_AT_LEAST {
            return 0;
        }
        // No entry frozen refers to the table: what they show is read from the settled checks. The ring
        // has not turned, so the live entries are in the order they were recorded.
        let shown: Vec<Shown> = self
            .timeline
            .iter()
            .take(n)
            .map(|e| self.shown(e, None))
            .collect();
        if let Some(store) = store.as_deref_mut() {
            self.frozen.store(store);
        }
        self.frozen.push(&shown, store.as_deref_mut());
        self.timeline.drain(..n);
        if self.timeline.capacity() > 2 * self.timeline.len() + 16 {
            self.timeline
                .shrink_to(self.timeline.len() + self.timeline.len() / 2 + 8);
        }
        self.frozen.drop_unkept(self.timeline_recorded(), store);
        n
    }

    /// The pair index for `x` (agent `from`'s address) and `y` (the other agent's), created on demand.
    pub(super) fn pair(
        &mut self,
        from: u8,
        x: SocketAddr,
        y: SocketAddr,
        transport: Transport,
    ) -> Option<usize> {
        let (a, b) = if from == 0 { (x, y) } else { (y, x) };
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.a == a && p.b == b && p.transport == transport)
        {
            return Some(i);
        }
        if self.pairs.len() >= MAX_PAIRS_PER_SESSION {
            self.pairs_not_kept += 1;
            return None;
        }
        push_sparing(&mut self.pairs, Pair::new(a, b, transport));
        Some(self.pairs.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check reference packed in 32 bits reads back as what was stored, at both ends of each range;
    /// what does not fit is neither live nor settled (as when the transaction was gone).
    #[test]
    fn a_check_reference_reads_back_as_stored() {
        let top = (1u32 << 31) - 1;
        for i in [0, 1, 500_000, top] {
            assert_eq!(TxRef::live(i as usize).get(), Tx::Live(i), "live {i}");
        }
        for k in [0, 1, 70_000, top - 1] {
            assert_eq!(TxRef::settled(k as usize).get(), Tx::Settled(k), "settled {k}");
        }
        assert_eq!(TxRef::live(top as usize + 1).get(), Tx::Gone);
        assert_eq!(TxRef::settled(top as usize).get(), Tx::Gone);
        assert_eq!(TxRef::GONE.get(), Tx::Gone);
        let seen = Seen {
            ts: Timestamp(1_795_000_000_123_456_789),
            frame: u64::MAX - 1,
            input: 3,
        };
        let ev = Event::new(seen, MAX_PAIRS_PER_SESSION - 1, 1, EventKind::Nominated);
        assert_eq!(
            (ev.seen(), ev.pair(), ev.from),
            (seen, MAX_PAIRS_PER_SESSION - 1, 1)
        );
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn latest(ix: &AddressIndex, address: SocketAddr) -> Option<usize> {
        ix.sessions(&address).max()
    }

    #[test]
    fn the_address_index_answers_the_latest_session_still_held() {
        let mut ix = AddressIndex::default();
        ix.note(addr(1), 3);
        ix.note(addr(1), 7);
        ix.note(addr(1), 5);
        ix.note(addr(2), 4);
        assert_eq!(latest(&ix, addr(1)), Some(7));
        assert_eq!(latest(&ix, addr(2)), Some(4));
        assert_eq!(latest(&ix, addr(3)), None);
        // Session 7 folded: the one before it that used the address answers.
        ix.forget(|s| s == 7 || s == 4);
        assert_eq!(latest(&ix, addr(1)), Some(5));
        assert_eq!(latest(&ix, addr(2)), None);
    }

    #[test]
    fn an_address_shared_by_many_sessions_keeps_the_latest_ones() {
        let mut ix = AddressIndex::default();
        for s in 0..1000 {
            ix.note(addr(1), s);
        }
        // An older session noted late does not push out a newer one.
        ix.note(addr(1), 5);
        assert_eq!(ix.sessions(&addr(1)).count(), MAX_SESSIONS_PER_ADDRESS);
        assert_eq!(latest(&ix, addr(1)), Some(999));
        ix.forget(|s| s >= 990);
        assert_eq!(latest(&ix, addr(1)), Some(989));
    }
}
