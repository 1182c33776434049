//! STUN transactions: request ↔ response matching, retransmissions, round-trip times, timeouts.
//!
//! A transaction is keyed by requester, responder, transport and transaction id (RFC 8489 §6.3: a response
//! travels back on the reversed 5-tuple with the request's id). A request seen again with the same id is a
//! retransmission (§6.2.1); RTT is measured from the first and from the last transmission before the first
//! response (Karn's problem: with retransmissions, only the bounds are certain). A request with no response
//! is `timeout` once the RFC 8489 §6.2.1 give-up time (Rc = 7 transmissions, Rm = 16, RTO = 500 ms:
//! 39.5 s) has passed inside the capture, else `unanswered` (the capture ended first). Indications are not
//! transactions. A message whose transaction has been quiet for longer than [`STALE_SECS`] does not
//! belong to it: the requester gave up long before (§6.2.1), so a request with that id starts a new
//! transaction and a response matches nothing. Shared by the TURN and ICE analyses; bounded by
//! [`MAX_TRANSACTIONS`].
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::hash::FastHash;
use crate::net::Transport;
use crate::wire::stun::{Class, Method, StunMessage, TransactionId};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;

mod fingerprints;
use fingerprints::FingerprintTable;

/// Transactions tracked. Each costs ~80 bytes with its index entry; 500k covers hours of a busy TURN
/// server's signalling and keeps the table under ~40 MB. At it, the answered requests to STUN servers go
/// first (`Model::make_room_for_requests`); past that, new requests are counted, not tracked.
pub const MAX_TRANSACTIONS: usize = 500_000;
/// Transmissions remembered per transaction: RFC 8489's Rc = 7, plus room for stacks that retry longer
/// (ICE checks are retransmitted by pacing rules of their own). Later ones are only counted.
pub(crate) const MAX_TRANSMISSIONS_KEPT: usize = 16;
/// RFC 8489 §6.2.1 with the default RTO of 500 ms: the client gives up 39.5 s after the first request
/// (500 ms × (1+2+4+8+16+32) + 16 × 500 ms).
pub(crate) const GIVE_UP_SECS: f64 = 39.5;
/// RFC 8489 §6.2.1 Rc: a client sends a request at most 7 times. A transaction seen that often with no
/// answer has exhausted its retransmissions and is as good as timed out, even if the capture ends before
/// the final Rm × RTO wait.
pub(crate) const RC: u32 = 7;

/// Quiet time after which a transaction takes no more messages: past [`GIVE_UP_SECS`] with a margin for
/// a late response, and the time after which the analysis settles a finished check or folds a session
/// (`analysis::fold::FOLD_AFTER_SECS`), so that whether a transaction was retired in between never changes
/// what a late message means.
pub(crate) const STALE_SECS: f64 = 45.0;

pub(crate) type TxIndex = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) ts: Timestamp,
    pub(crate) frame: u64,
    pub(crate) input: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) seen: Seen,
    pub(crate) class: Class,
    pub(crate) error_code: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxState {
    /// A success response arrived.
    Succeeded,
    /// An error response arrived (its code is in the responses).
    Failed,
    /// No response, and the RFC 8489 give-up time passed inside the capture or all Rc transmissions
    /// were sent.
    TimedOut,
    /// No response yet when the capture ended.
    Unanswered,
}

/// A list that is nearly always one element long (the sessions an address belongs to, the bindings of an
/// address): the first element inline and the rest boxed, allocated only for a second one. An empty `Vec`
/// inline costs 24 bytes where the box costs 8, and a busy server's capture holds tens of thousands of
/// these lists at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Few<T> {
    first: Option<T>,
    #[allow(clippy::box_collection)] // 8 bytes inline where a `Vec` takes 24 (see above)
    rest: Option<Box<Vec<T>>>,
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few {
            first: None,
            rest: None,
        }
    }
}

impl<T> Few<T> {
    pub(crate) fn push(&mut self, x: T) {
        if self.first.is_none() {
            self.first = Some(x);
        } else {
            self.rest.get_or_insert_with(Box::default).push(x);
        }
    }

    fn rest(&self) -> &[T] {
        self.rest.as_deref().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.first.iter().chain(self.rest())
    }

    /// Keeps the elements `keep` says yes to, in order (one element: nothing allocated).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let Few { first, rest } = std::mem::take(self);
        for x in first.into_iter().chain(rest.into_iter().flat_map(|r| *r)) {
            if keep(&x) {
                self.push(x);
            }
        }
    }
}

/// A transaction, in 72 bytes (144 at first, then 112): a busy server's capture holds every request of the
/// last [`STALE_SECS`] (~118,000 at the call-dense 4 GB read's peak, the 500,000 of [`MAX_TRANSACTIONS`] in
/// a live capture of it), and nearly every one was sent once, answered once within a few milliseconds,
/// between two IPv4 addresses. That case is laid out flat: the two addresses in 12 bytes ([`Ends`]), the
/// first response as a class and code in a `u16` and its time and frame as 32-bit distances from the
/// request's. Whatever does not fit (IPv6 addresses, a response 4.29 s or more after the request or in
/// another input, retransmissions, further responses) is boxed, allocated only for it.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub(crate) id: TransactionId,
    pub(crate) method: Method,
    /// [`Transaction::requester`] and [`Transaction::responder`] give them back.
    ends: Ends,
    pub(crate) transport: Transport,
    /// Carried inside TURN relaying.
    pub(crate) relayed: bool,
    /// The request's first transmission ([`Transaction::first_request`]).
    first_ts: Timestamp,
    first_frame: u64,
    first_input: u16,
    /// The first response ([`Transaction::first_response`]) when it fits here: [`NO_RESPONSE`], else its
    /// class and error code ([`Transaction::response_code`]), and its nanoseconds and frames after the
    /// first transmission (the same input). One that does not fit is the first of `more.responses`. Its
    /// top bit is apart ([`CHANGE_REQUEST`]).
    response: u16,
    response_after_ns: u32,
    response_after_frames: u32,
    /// What does not fit above: transmissions after the first and responses after the first, each at most
    /// [`MAX_TRANSMISSIONS_KEPT`] with the first.
    more: Option<Box<More>>,
    /// Every transmission, kept or not; 0 once retired ([`Transaction::retired`]).
    pub(crate) transmissions: u32,
}

// What the flat layout is for (see `Transaction`).
const _: () = assert!(std::mem::size_of::<Transaction>() == 72);

/// [`Transaction::response`]: no response (inline), a success with no ERROR-CODE, an error with none;
/// an error with code `c` is `ERROR_CODE_BASE + c`.
const NO_RESPONSE: u16 = 0;
const SUCCESS: u16 = 1;
const ERROR_NO_CODE: u16 = 2;
const ERROR_CODE_BASE: u16 = 3;
/// The top bit of [`Transaction::response`], apart from the response: the request asked for its answer
/// from another address or port, or to another port of its own (RFC 5780 CHANGE-REQUEST, RESPONSE-PORT;
/// [`Transactions::changed`]).
const CHANGE_REQUEST: u16 = 0x8000;

/// A transaction's requester and responder: IPv4 ones (address and port, 6 bytes each) inline, others
/// (IPv6, or the two families mixed in a relayed transaction) boxed.
#[derive(Clone, Debug)]
enum Ends {
    V4([u8; 12]),
    Other(Box<[SortAddr; 2]>),
}

impl Ends {
    fn of(requester: SocketAddr, responder: SocketAddr) -> Ends {
        match (requester, responder) {
            (SocketAddr::V4(a), SocketAddr::V4(b)) => {
                let mut v = [0u8; 12];
                v[..4].copy_from_slice(&a.ip().octets());
                v[4..6].copy_from_slice(&a.port().to_be_bytes());
                v[6..10].copy_from_slice(&b.ip().octets());
                v[10..].copy_from_slice(&b.port().to_be_bytes());
                Ends::V4(v)
            }
            _ => Ends::Other(Box::new([SortAddr::of(requester), SortAddr::of(responder)])),
        }
    }

    /// The requester (0) or the responder (1).
    fn get(&self, which: usize) -> SocketAddr {
        match self {
            Ends::V4(v) => {
                let b = &v[6 * which..6 * which + 6];
                let ip = std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                SocketAddr::from((ip, u16::from_be_bytes([b[4], b[5]])))
            }
            Ends::Other(a) => a[which].addr(),
        }
    }
}

/// A transaction's transmissions after its first, and its responses after its first, or all of them when
/// the first does not fit inline (`first_response_here`). 56 bytes: a retransmitted request allocates it.
#[derive(Clone, Debug, Default)]
struct More {
    requests: Vec<Seen>,
    responses: Vec<Response>,
    first_response_here: bool,
}

const _: () = assert!(std::mem::size_of::<More>() == 56);

impl More {
    /// Responses kept, the first included wherever it is.
    fn responses_kept(&self) -> usize {
        self.responses.len() + usize::from(!self.first_response_here)
    }
}

impl Transaction {
    pub(crate) fn requester(&self) -> SocketAddr {
        self.ends.get(0)
    }

    pub(crate) fn responder(&self) -> SocketAddr {
        self.ends.get(1)
    }

    /// Aged out (live mode): the slot is free for reuse and nothing refers to it any more.
    pub(crate) fn retired(&self) -> bool {
        self.transmissions == 0
    }

    fn key(&self) -> Key {
        Key {
            requester: self.requester(),
            responder: self.responder(),
            transport: self.transport,
            id: self.id,
        }
    }

    /// The request's first transmission (always there: a transaction begins with it).
    pub(crate) fn first_request(&self) -> Option<Seen> {
        Some(Seen {
            ts: self.first_ts,
            frame: self.first_frame,
            input: self.first_input,
        })
    }

    /// Every transmission of the request kept, first one first (at most [`MAX_TRANSMISSIONS_KEPT`]).
    pub(crate) fn requests(&self) -> impl DoubleEndedIterator<Item = Seen> + '_ {
        let more = self.more.as_deref().map_or(&[][..], |m| m.requests.as_slice());
        self.first_request().into_iter().chain(more.iter().copied())
    }

    /// The last transmission of the request kept.
    pub(crate) fn last_request(&self) -> Option<Seen> {
        self.requests().next_back()
    }

    /// The request asked for its answer from another address or port, or to another port of its own.
    fn change_request(&self) -> bool {
        self.response & CHANGE_REQUEST != 0
    }

    pub(crate) fn retransmissions(&self) -> u32 {
        self.transmissions.saturating_sub(1)
    }

    pub(crate) fn first_response(&self) -> Option<Response> {
        let (class, error_code) = match self.response & !CHANGE_REQUEST {
            NO_RESPONSE => {
                return self
                    .more
                    .as_deref()
                    .filter(|m| m.first_response_here)
                    .and_then(|m| m.responses.first().copied())
            }
            SUCCESS => (Class::Success, None),
            ERROR_NO_CODE => (Class::Error, None),
            c => (Class::Error, Some(c - ERROR_CODE_BASE)),
        };
        Some(Response {
            seen: Seen {
                ts: Timestamp(self.first_ts.0 + u64::from(self.response_after_ns)),
                frame: self.first_frame + u64::from(self.response_after_frames),
                input: self.first_input,
            },
            class,
            error_code,
        })
    }

    /// Whether any response came.
    pub(crate) fn answered(&self) -> bool {
        self.response & !CHANGE_REQUEST != NO_RESPONSE
            || self.more.as_deref().is_some_and(|m| m.first_response_here)
    }

    /// Every response kept, first one first (at most [`MAX_TRANSMISSIONS_KEPT`]).
    pub(crate) fn responses(&self) -> impl DoubleEndedIterator<Item = Response> + '_ {
        let (inline, more) = match self.more.as_deref() {
            Some(m) if m.first_response_here => (None, m.responses.as_slice()),
            Some(m) => (self.first_response(), m.responses.as_slice()),
            None => (self.first_response(), &[][..]),
        };
        inline.into_iter().chain(more.iter().copied())
    }

    /// The last time this transaction was seen on the wire.
    pub(crate) fn last_activity(&self) -> Option<Timestamp> {
        let req = self.last_request().map(|s| s.ts);
        let resp = self.responses().next_back().map(|r| r.seen.ts);
        req.max(resp)
    }

    pub(crate) fn error_code(&self) -> Option<u16> {
        self.responses().find_map(|r| r.error_code)
    }

    /// RTT from the first transmission to the first response (an upper bound when retransmitted).
    #[cfg(test)]
    pub(crate) fn rtt_from_first(&self) -> Option<f64> {
        Some(
            self.first_response()?
                .seen
                .ts
                .secs_since(self.first_request()?.ts),
        )
    }

    /// RTT from the last transmission before the first response (a lower bound when retransmitted; the
    /// true RTT when the request went once).
    pub(crate) fn rtt_from_last(&self) -> Option<f64> {
        let resp = self.first_response()?.seen.ts;
        let last = self.requests().rev().find(|s| s.ts <= resp)?;
        Some(resp.secs_since(last.ts))
    }

    pub(crate) fn state(&self, end: Timestamp) -> TxState {
        match self.first_response().map(|r| r.class) {
            Some(Class::Success) => TxState::Succeeded,
            Some(_) => TxState::Failed,
            None => match self.first_request() {
                Some(first) if end.secs_since(first.ts) >= GIVE_UP_SECS || self.transmissions >= RC => {
                    TxState::TimedOut
                }
                _ => TxState::Unanswered,
            },
        }
    }

    /// Notes a retransmission of the request, seen at `seen` (kept up to [`MAX_TRANSMISSIONS_KEPT`]).
    fn retransmitted(&mut self, seen: Seen) {
        self.transmissions = self.transmissions.saturating_add(1);
        let more = self.more.get_or_insert_with(Box::default);
        if more.requests.len() + 1 < MAX_TRANSMISSIONS_KEPT {
            more.requests.push(seen);
        }
    }

    /// The first response as [`Transaction::response`] and its distances, if it fits inline.
    fn inline(&self, r: &Response) -> Option<(u16, u32, u32)> {
        let code = match (r.class, r.error_code) {
            (Class::Success, None) => SUCCESS,
            (Class::Error, None) => ERROR_NO_CODE,
            (Class::Error, Some(c)) => c.checked_add(ERROR_CODE_BASE).filter(|&c| c < CHANGE_REQUEST)?,
            _ => return None,
        };
        let ns = r.seen.ts.0.checked_sub(self.first_ts.0)?;
        let frames = r.seen.frame.checked_sub(self.first_frame)?;
        (r.seen.input == self.first_input).then_some(())?;
        Some((code, u32::try_from(ns).ok()?, u32::try_from(frames).ok()?))
    }

    /// Notes a response (kept up to [`MAX_TRANSMISSIONS_KEPT`]).
    fn answer(&mut self, r: Response) {
        if !self.answered() {
            match self.inline(&r) {
                Some((code, ns, frames)) => {
                    self.response = code | (self.response & CHANGE_REQUEST);
                    self.response_after_ns = ns;
                    self.response_after_frames = frames;
                }
                None => {
                    let more = self.more.get_or_insert_with(Box::default);
                    more.first_response_here = true;
                    more.responses.insert(0, r);
                }
            }
            return;
        }
        let more = self.more.get_or_insert_with(Box::default);
        if more.responses_kept() < MAX_TRANSMISSIONS_KEPT {
            more.responses.push(r);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    requester: SocketAddr,
    responder: SocketAddr,
    transport: Transport,
    id: TransactionId,
}

#[derive(Debug, Default)]
pub struct Transactions {
    pub list: Vec<Transaction>,
    index: Index,
    pub(crate) not_tracked: u64,
    /// Retired slots, reused by new requests (live mode's ageing keeps the table from filling up); 4 bytes
    /// each, as the table holds at most [`MAX_TRANSACTIONS`].
    free: Vec<u32>,
    pub(crate) retired: u64,
    /// Responses whose request was never seen (capture started late, or asymmetric capture point).
    pub(crate) orphan_responses: u64,
    /// The requests whose CHANGE-REQUEST asked for the answer from the server's other address or port
    /// (RFC 5780 §7.2), or whose RESPONSE-PORT asked for it at another port of the requester's (§7.5):
    /// NAT behaviour discovery tests. By a keyed 64-bit hash of the requester's IP, transport and id: that
    /// answer comes from an address the request was not sent to, or goes to a port it was not sent from,
    /// so the table's key (the 5-tuple, RFC 8489 §6.3) does not find its request. Without this, on a
    /// server running RFC 5780 each of those requests stayed unanswered for 45 s and its answer was an
    /// orphan (60 % of the table on `scripts/bench`'s stun profile).
    changed: HashMap<u64, u32, FastHash>,
    /// A smaller bound than [`MAX_TRANSACTIONS`] (tests of a full table).
    #[cfg(test)]
    pub(crate) limit: Option<usize>,
}

/// Transaction slots by key. Keyed by a 32-bit fingerprint of the 80-byte key, so an entry is 8 bytes
/// instead of 88: the index was the second-largest table of a call-dense capture (and with a 64-bit
/// fingerprint and SipHash over it, 16 bytes an entry and a second hash). The fingerprint is a keyed hash
/// (foldhash, seeded at random per run), so a capture cannot make keys collide on purpose, and the map
/// hashes it with FxHash; a key whose fingerprint another key already holds (about one key in 30,000 with
/// 130,000 transactions held) goes to `collided`, keyed whole. Lookups compare the whole key with the
/// slot's transaction, so a fingerprint alone never matches.
///
/// A lookup that misses consults `collided` only when its fingerprint is one a key there has
/// (`collided_fingerprints`): with a few hundred thousand transactions held, some pair of keys always
/// collides, and hashing every new request's whole key a second time for it (SipHash over the derived
/// `Hash`, field by field) was ~12 % of the analysis thread on `scripts/bench`'s stun profile (perf).
#[derive(Debug, Default)]
struct Index {
    /// One array, not a `HashMap` ([`FingerprintTable`]): one cache miss a lookup, not two.
    by_fingerprint: FingerprintTable,
    collided: HashMap<Key, TxIndex>,
    /// The fingerprints of the keys in `collided`, with how many keys have each.
    collided_fingerprints: HashMap<u32, u32, FastHash>,
    /// foldhash rather than std's SipHash: three fingerprints a transaction (its request, its response,
    /// its retirement) were ~7 % of the analysis thread on the stun profile (perf). A collision it lets
    /// through costs a lookup in `collided`, never a wrong match.
    hasher: foldhash::quality::RandomState,
    /// Every key gets this fingerprint (tests of the collision path).
    #[cfg(test)]
    same_fingerprint: bool,
}

impl Index {
    /// The key of [`Transactions::changed`]: the requester's IP (its port may be another, RESPONSE-PORT),
    /// transport and id.
    fn changed_key(&self, requester: SocketAddr, transport: Transport, id: &TransactionId) -> u64 {
        let mut bytes = [0u8; 32];
        bytes[..19].copy_from_slice(&SortAddr::of(SocketAddr::new(requester.ip(), 0)).bytes());
        bytes[19] = transport as u8;
        bytes[20..].copy_from_slice(&id.0);
        self.hasher.hash_one(bytes)
    }

    fn fingerprint(&self, key: &Key) -> u32 {
        #[cfg(test)]
        if self.same_fingerprint {
            return 7;
        }
        // The low half of a keyed 64-bit hash of the key's bytes, hashed in one piece: `Key`'s derived
        // `Hash` fed SipHash two addresses field by field (~3 % of the analysis thread, perf).
        let mut bytes = [0u8; 51];
        bytes[..19].copy_from_slice(&SortAddr::of(key.requester).bytes());
        bytes[19..38].copy_from_slice(&SortAddr::of(key.responder).bytes());
        bytes[38] = key.transport as u8;
        bytes[39..].copy_from_slice(&key.id.0);
        let [a, b, c, d, ..] = self.hasher.hash_one(bytes).to_le_bytes();
        u32::from_le_bytes([a, b, c, d])
    }

    /// The slot of `key`, whose fingerprint is `f`.
    fn get(&self, list: &[Transaction], key: &Key, f: u32) -> Option<TxIndex> {
        let held = self.by_fingerprint.get(f).map(|i| i as usize);
        if let Some(i) = held.filter(|&i| list.get(i).is_some_and(|t| t.key() == *key)) {
            return Some(i);
        }
        if !self.collided_fingerprints.contains_key(&f) {
            return None;
        }
        self.collided.get(key).copied()
    }

    /// Indexes slot `i` under `key`, whose fingerprint is `f`.
    fn insert(&mut self, list: &[Transaction], key: Key, i: TxIndex, f: u32) {
        match (self.by_fingerprint.get(f).map(|j| j as usize), u32::try_from(i)) {
            (Some(j), _) if list.get(j).is_some_and(|t| t.key() != key && !t.retired()) => {
                self.insert_collided(key, i, f);
            }
            // Past 2^32 transactions the compact index cannot hold `i`; the collision table can.
            (_, Err(_)) => self.insert_collided(key, i, f),
            (_, Ok(j)) => {
                // `u32::MAX` marks an empty place in the table: that slot goes to the collision table.
                if !self.by_fingerprint.insert(f, j) {
                    self.insert_collided(key, i, f);
                }
            }
        }
    }

    fn insert_collided(&mut self, key: Key, i: TxIndex, f: u32) {
        if self.collided.insert(key, i).is_none() {
            *self.collided_fingerprints.entry(f).or_insert(0) += 1;
        }
    }

    /// Takes slot `i` out under `key`, whose fingerprint is `f`.
    fn remove(&mut self, key: &Key, i: TxIndex, f: u32) {
        if u32::try_from(i).is_ok_and(|i| self.by_fingerprint.remove(f, i)) {
            return;
        }
        if self.collided.get(key) == Some(&i) {
            self.collided.remove(key);
            if let Some(n) = self.collided_fingerprints.get_mut(&f) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.collided_fingerprints.remove(&f);
                }
            }
        }
    }
}

/// Whether request `msg` asks for its answer from another address or port (RFC 5780 §7.2 CHANGE-REQUEST
/// with either flag) or at another port of the requester's (§7.5 RESPONSE-PORT).
fn asks_for_change(msg: &StunMessage) -> bool {
    use crate::wire::attributes::AttrValue;
    msg.attributes.iter().any(|a| match a.value {
        AttrValue::ChangeRequest {
            change_ip,
            change_port,
        } => change_ip || change_port,
        AttrValue::ResponsePort(_) => true,
        _ => false,
    })
}

/// What one STUN message meant for the transaction table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxEvent {
    /// First transmission of a request.
    Request(TxIndex),
    /// The same request again.
    Retransmission(TxIndex),
    /// A response; `first` is false for a duplicate response.
    Response { tx: TxIndex, first: bool },
    /// A response with no request on record.
    Orphan,
    /// An indication (no transaction), or the table is full.
    None,
}

impl Transactions {
    /// The most transactions the table holds.
    fn bound(&self) -> usize {
        #[cfg(test)]
        if let Some(limit) = self.limit {
            return limit;
        }
        MAX_TRANSACTIONS
    }

    /// Whether a new request would find no slot (none retired to reuse, and the bound reached).
    pub(crate) fn full(&self) -> bool {
        self.free.is_empty() && self.list.len() >= self.bound()
    }

    pub(crate) fn get(&self, i: TxIndex) -> Option<&Transaction> {
        self.list.get(i).filter(|t| !t.retired())
    }

    /// Every transaction still tracked.
    pub fn iter(&self) -> impl Iterator<Item = &Transaction> {
        self.list.iter().filter(|t| !t.retired())
    }

    /// Frees a transaction's slot for reuse. The caller guarantees nothing refers to `i` any more.
    #[cfg(test)]
    pub(crate) fn retire(&mut self, i: TxIndex) {
        self.retire_all(&[i], |_| {});
    }

    /// Frees the slots of `slots` for reuse (the caller guarantees nothing refers to them any more), a few
    /// at a time: their keys' places in the index are read first, one after the other, so that their cache
    /// misses overlap instead of following each other (a pass retiring the answered requests to a STUN
    /// server retires thousands at once, each quiet for seconds and its place long out of the cache).
    /// `before` sees each transaction as it goes (once, if a slot is listed twice).
    pub(crate) fn retire_all(&mut self, slots: &[TxIndex], mut before: impl FnMut(&Transaction)) {
        const AHEAD: usize = 16;
        // Each slot's key and its fingerprint, worked out once for the read ahead and the removal.
        let mut keys: [Option<(Key, u32)>; AHEAD] = [None; AHEAD];
        for part in slots.chunks(AHEAD) {
            for (k, &i) in keys.iter_mut().zip(part) {
                *k = self.list.get(i).filter(|t| !t.retired()).map(|t| {
                    let key = t.key();
                    (key, self.index.fingerprint(&key))
                });
            }
            let mut warm = 0;
            for &(_, f) in keys[..part.len()].iter().flatten() {
                warm ^= self.index.by_fingerprint.read_ahead(f);
            }
            std::hint::black_box(warm);
            for (&i, k) in part.iter().zip(&keys) {
                let (Some((key, f)), Some(t)) = (k, self.list.get(i).filter(|t| !t.retired())) else {
                    continue;
                };
                before(t);
                self.retire_with(i, key, *f);
            }
        }
    }

    /// Retires slot `i`, held and not retired, whose key is `key` and its fingerprint `f`.
    fn retire_with(&mut self, i: TxIndex, key: &Key, f: u32) {
        self.index.remove(key, i, f);
        let Some(t) = self.list.get_mut(i) else { return };
        if t.change_request() {
            let k = self.index.changed_key(t.requester(), t.transport, &t.id);
            if u32::try_from(i).is_ok_and(|i| self.changed.get(&k) == Some(&i)) {
                self.changed.remove(&k);
            }
        }
        t.transmissions = 0;
        t.more = None;
        // The table holds at most `MAX_TRANSACTIONS`: every index fits.
        if let Ok(i) = u32::try_from(i) {
            self.free.push(i);
        }
        self.retired += 1;
    }

    /// The request a response to `requester` answers when it asked for the answer from another address or
    /// port, or at another port of its own ([`Transactions::changed`]): the same requester IP, transport
    /// and id (96 random bits, RFC 8489 §6).
    fn changed_answer(
        &self,
        requester: SocketAddr,
        transport: Transport,
        id: &TransactionId,
    ) -> Option<TxIndex> {
        if self.changed.is_empty() {
            return None;
        }
        let i = *self
            .changed
            .get(&self.index.changed_key(requester, transport, id))? as usize;
        let t = self.get(i)?;
        (t.change_request()
            && t.id == *id
            && t.transport == transport
            && t.requester().ip() == requester.ip())
        .then_some(i)
    }

    /// Transaction `i` has been quiet for more than [`STALE_SECS`] when `seen`.
    fn stale(&self, i: TxIndex, seen: Seen) -> bool {
        self.list
            .get(i)
            .and_then(Transaction::last_activity)
            .is_some_and(|l| seen.ts.secs_since(l) > STALE_SECS)
    }

    pub(crate) fn on_message(
        &mut self,
        seen: Seen,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        relayed: bool,
        msg: &StunMessage,
    ) -> TxEvent {
        match msg.class {
            Class::Indication => TxEvent::None,
            Class::Request => {
                let key = Key {
                    requester: src,
                    responder: dst,
                    transport,
                    id: msg.transaction_id,
                };
                let f = self.index.fingerprint(&key);
                if let Some(i) = self
                    .index
                    .get(&self.list, &key, f)
                    .filter(|&i| !self.stale(i, seen))
                {
                    self.list[i].retransmitted(seen);
                    return TxEvent::Retransmission(i);
                }
                let fresh = Transaction {
                    id: msg.transaction_id,
                    method: msg.method,
                    ends: Ends::of(src, dst),
                    transport,
                    relayed,
                    first_ts: seen.ts,
                    first_frame: seen.frame,
                    first_input: seen.input,
                    response: if asks_for_change(msg) {
                        CHANGE_REQUEST
                    } else {
                        NO_RESPONSE
                    },
                    response_after_ns: 0,
                    response_after_frames: 0,
                    more: None,
                    transmissions: 1,
                };
                let reused = self
                    .free
                    .pop()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| self.list.get_mut(i).map(|slot| (i, slot)));
                let i = if let Some((i, slot)) = reused {
                    *slot = fresh;
                    i
                } else if self.list.len() < self.bound() {
                    // Grown by an eighth at a time, not doubled: the table's size follows the most requests
                    // held at once (the call-dense 4 GB read's 132,874 took a doubled table of 262,144: a
                    // 29 MB block for 15 MB used; heaptrack's peak 93.1 → 84.9 MB). Past a few hundred KB
                    // the allocator moves a block by remapping it.
                    if self.list.len() == self.list.capacity() {
                        self.list.reserve_exact((self.list.len() / 8).max(1024));
                    }
                    self.list.push(fresh);
                    self.list.len() - 1
                } else {
                    self.not_tracked += 1;
                    return TxEvent::None;
                };
                self.index.insert(&self.list, key, i, f);
                if self.list[i].change_request() {
                    let k = self.index.changed_key(src, transport, &msg.transaction_id);
                    if let Ok(i) = u32::try_from(i) {
                        self.changed.insert(k, i);
                    }
                }
                TxEvent::Request(i)
            }
            Class::Success | Class::Error => {
                let key = Key {
                    requester: dst,
                    responder: src,
                    transport,
                    id: msg.transaction_id,
                };
                let f = self.index.fingerprint(&key);
                let Some(i) = self
                    .index
                    .get(&self.list, &key, f)
                    .or_else(|| self.changed_answer(dst, transport, &msg.transaction_id))
                    .filter(|&i| !self.stale(i, seen))
                else {
                    self.orphan_responses += 1;
                    return TxEvent::Orphan;
                };
                let tx = &mut self.list[i];
                let first = !tx.answered();
                // Responses to retransmissions are bounded like requests.
                tx.answer(Response {
                    seen,
                    class: msg.class,
                    error_code: msg.error_code(),
                });
                TxEvent::Response { tx: i, first }
            }
        }
    }
}

#[cfg(test)]
mod tests;
