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
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;

/// Transactions tracked. Each costs 120 bytes with its index entry; 500k covers hours of a busy TURN
/// server's signalling and keeps the table under ~60 MB. Past it, new requests are counted, not tracked.
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

/// A transaction, in 112 bytes (was 144): a busy server's capture holds every request of the last
/// [`STALE_SECS`] (~118,000 at the call-dense 4 GB read's peak, the 500,000 of [`MAX_TRANSACTIONS`] in a
/// live capture of it), and nearly every one was sent once and answered once. The first transmission and
/// the first response are laid out flat (a [`Seen`] alone takes 24 bytes with its padding, 32 in an
/// `Option`); further ones are boxed together, allocated only for a retransmission or a second response.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub(crate) id: TransactionId,
    pub(crate) method: Method,
    /// Kept in 20 bytes each ([`SortAddr`]). [`Transaction::requester`] and [`Transaction::responder`]
    /// give them back.
    requester: SortAddr,
    responder: SortAddr,
    pub(crate) transport: Transport,
    /// Carried inside TURN relaying.
    pub(crate) relayed: bool,
    /// The request's first transmission ([`Transaction::first_request`]).
    first_ts: Timestamp,
    first_frame: u64,
    first_input: u16,
    /// The first response ([`Transaction::first_response`]): `response_class` is None until one came.
    response_ts: Timestamp,
    response_frame: u64,
    response_input: u16,
    response_class: Option<Class>,
    response_code: Option<u16>,
    /// Transmissions after the first and responses after the first, each at most
    /// [`MAX_TRANSMISSIONS_KEPT`] with the first.
    more: Option<Box<More>>,
    /// Every transmission, kept or not.
    pub(crate) transmissions: u32,
    /// Aged out (live mode): the slot is free for reuse and nothing refers to it any more.
    pub(crate) retired: bool,
}

// What the flat layout is for (see `Transaction`).
const _: () = assert!(std::mem::size_of::<Transaction>() == 112);

/// A transaction's transmissions and responses after its first of each.
#[derive(Clone, Debug, Default)]
struct More {
    requests: Vec<Seen>,
    responses: Vec<Response>,
}

impl Transaction {
    pub(crate) fn requester(&self) -> SocketAddr {
        self.requester.addr()
    }

    pub(crate) fn responder(&self) -> SocketAddr {
        self.responder.addr()
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

    pub(crate) fn retransmissions(&self) -> u32 {
        self.transmissions.saturating_sub(1)
    }

    pub(crate) fn first_response(&self) -> Option<Response> {
        Some(Response {
            seen: Seen {
                ts: self.response_ts,
                frame: self.response_frame,
                input: self.response_input,
            },
            class: self.response_class?,
            error_code: self.response_code,
        })
    }

    /// Whether any response came.
    pub(crate) fn answered(&self) -> bool {
        self.response_class.is_some()
    }

    /// Every response kept, first one first (at most [`MAX_TRANSMISSIONS_KEPT`]).
    pub(crate) fn responses(&self) -> impl DoubleEndedIterator<Item = Response> + '_ {
        let more = self.more.as_deref().map_or(&[][..], |m| m.responses.as_slice());
        self.first_response().into_iter().chain(more.iter().copied())
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
        match self.response_class {
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

    /// Notes a response (kept up to [`MAX_TRANSMISSIONS_KEPT`]).
    fn answer(&mut self, r: Response) {
        if self.response_class.is_none() {
            self.response_ts = r.seen.ts;
            self.response_frame = r.seen.frame;
            self.response_input = r.seen.input;
            self.response_class = Some(r.class);
            self.response_code = r.error_code;
            return;
        }
        let more = self.more.get_or_insert_with(Box::default);
        if more.responses.len() + 1 < MAX_TRANSMISSIONS_KEPT {
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
    /// Retired slots, reused by new requests (live mode's ageing keeps the table from filling up).
    free: Vec<TxIndex>,
    pub(crate) retired: u64,
    /// Responses whose request was never seen (capture started late, or asymmetric capture point).
    pub(crate) orphan_responses: u64,
}

/// Transaction slots by key. Keyed by a 32-bit fingerprint of the 80-byte key, so an entry is 8 bytes
/// instead of 88: the index was the second-largest table of a call-dense capture (and with a 64-bit
/// fingerprint and SipHash over it, 16 bytes an entry and a second hash). The fingerprint is a keyed hash
/// (std's `RandomState`, random per run), so a capture cannot make keys collide on purpose, and the map
/// hashes it with FxHash; a key whose fingerprint another key already holds (about one key in 30,000 with
/// 130,000 transactions held) goes to `collided`, keyed whole. Lookups compare the whole key with the
/// slot's transaction, so a fingerprint alone never matches.
#[derive(Debug, Default)]
struct Index {
    by_fingerprint: HashMap<u32, u32, FastHash>,
    collided: HashMap<Key, TxIndex>,
    hasher: RandomState,
    /// Every key gets this fingerprint (tests of the collision path).
    #[cfg(test)]
    same_fingerprint: bool,
}

impl Index {
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

    fn get(&self, list: &[Transaction], key: &Key) -> Option<TxIndex> {
        let held = self
            .by_fingerprint
            .get(&self.fingerprint(key))
            .map(|&i| i as usize);
        if let Some(i) = held.filter(|&i| list.get(i).is_some_and(|t| t.key() == *key)) {
            return Some(i);
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(key).copied()
    }

    fn insert(&mut self, list: &[Transaction], key: Key, i: TxIndex) {
        let f = self.fingerprint(&key);
        match (self.by_fingerprint.get(&f).map(|&j| j as usize), u32::try_from(i)) {
            (Some(j), _) if list.get(j).is_some_and(|t| t.key() != key && !t.retired) => {
                self.collided.insert(key, i);
            }
            // Past 2^32 transactions the compact index cannot hold `i`; the collision table can.
            (_, Err(_)) => {
                self.collided.insert(key, i);
            }
            (_, Ok(i)) => {
                self.by_fingerprint.insert(f, i);
            }
        }
    }

    fn remove(&mut self, key: &Key, i: TxIndex) {
        let f = self.fingerprint(key);
        if u32::try_from(i).is_ok_and(|i| self.by_fingerprint.get(&f) == Some(&i)) {
            self.by_fingerprint.remove(&f);
        } else if self.collided.get(key) == Some(&i) {
            self.collided.remove(key);
        }
    }
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
    pub(crate) fn get(&self, i: TxIndex) -> Option<&Transaction> {
        self.list.get(i).filter(|t| !t.retired)
    }

    /// Every transaction still tracked.
    pub fn iter(&self) -> impl Iterator<Item = &Transaction> {
        self.list.iter().filter(|t| !t.retired)
    }

    /// Frees a transaction's slot for reuse. The caller guarantees nothing refers to `i` any more.
    pub(crate) fn retire(&mut self, i: TxIndex) {
        let Some(t) = self.list.get_mut(i) else { return };
        if t.retired {
            return;
        }
        self.index.remove(&t.key(), i);
        t.retired = true;
        t.more = None;
        self.free.push(i);
        self.retired += 1;
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
                if let Some(i) = self.index.get(&self.list, &key).filter(|&i| !self.stale(i, seen)) {
                    self.list[i].retransmitted(seen);
                    return TxEvent::Retransmission(i);
                }
                let fresh = Transaction {
                    id: msg.transaction_id,
                    method: msg.method,
                    requester: SortAddr::of(src),
                    responder: SortAddr::of(dst),
                    transport,
                    relayed,
                    first_ts: seen.ts,
                    first_frame: seen.frame,
                    first_input: seen.input,
                    response_ts: Timestamp(0),
                    response_frame: 0,
                    response_input: 0,
                    response_class: None,
                    response_code: None,
                    more: None,
                    transmissions: 1,
                    retired: false,
                };
                let reused = self
                    .free
                    .pop()
                    .and_then(|i| self.list.get_mut(i).map(|slot| (i, slot)));
                let i = if let Some((i, slot)) = reused {
                    *slot = fresh;
                    i
                } else if self.list.len() < MAX_TRANSACTIONS {
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
                self.index.insert(&self.list, key, i);
                TxEvent::Request(i)
            }
            Class::Success | Class::Error => {
                let key = Key {
                    requester: dst,
                    responder: src,
                    transport,
                    id: msg.transaction_id,
                };
                let Some(i) = self.index.get(&self.list, &key).filter(|&i| !self.stale(i, seen)) else {
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
mod tests {
    use super::*;

    /// Keys that share a fingerprint are still told apart: with every key given the same one, requests,
    /// retransmissions and responses of interleaved transactions match exactly as with distinct ones,
    /// also after a slot is retired and reused.
    #[test]
    fn transactions_whose_fingerprints_collide_are_told_apart() {
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:3478".parse().unwrap();
        let seen = |ms: u64| Seen {
            ts: Timestamp(ms * 1_000_000),
            frame: ms,
            input: 0,
        };
        let msg =
            |class, id: u8| crate::analysis::testkit::message(Method::BINDING, class, u16::from(id), vec![]);
        for same in [false, true] {
            let mut t = Transactions::default();
            t.index.same_fingerprint = same;
            let r1 = t.on_message(seen(1), a, b, Transport::Udp, false, &msg(Class::Request, 1));
            let r2 = t.on_message(seen(2), a, b, Transport::Udp, false, &msg(Class::Request, 2));
            let r3 = t.on_message(seen(3), b, a, Transport::Udp, false, &msg(Class::Request, 1));
            let (TxEvent::Request(i1), TxEvent::Request(i2), TxEvent::Request(i3)) = (r1, r2, r3) else {
                panic!("three new transactions: {r1:?} {r2:?} {r3:?}");
            };
            assert_eq!(
                t.on_message(seen(4), a, b, Transport::Udp, false, &msg(Class::Request, 2)),
                TxEvent::Retransmission(i2)
            );
            assert_eq!(
                t.on_message(seen(5), b, a, Transport::Udp, false, &msg(Class::Success, 1)),
                TxEvent::Response { tx: i1, first: true }
            );
            assert_eq!(
                t.on_message(seen(6), a, b, Transport::Udp, false, &msg(Class::Success, 1)),
                TxEvent::Response { tx: i3, first: true }
            );
            t.retire(i1);
            assert_eq!(
                t.on_message(seen(7), b, a, Transport::Udp, false, &msg(Class::Success, 1)),
                TxEvent::Orphan,
                "retired"
            );
            let TxEvent::Request(i4) =
                t.on_message(seen(8), a, b, Transport::Tcp, false, &msg(Class::Request, 1))
            else {
                panic!("a new transaction");
            };
            assert_eq!(i4, i1, "the retired slot is reused");
            assert_eq!(
                t.on_message(seen(9), b, a, Transport::Udp, false, &msg(Class::Error, 2)),
                TxEvent::Response { tx: i2, first: true },
                "same={same}"
            );
            assert_eq!(
                t.on_message(seen(10), b, a, Transport::Tcp, false, &msg(Class::Success, 1)),
                TxEvent::Response { tx: i4, first: true }
            );
        }
    }

    #[test]
    fn few_keeps_order_whatever_its_length() {
        let mut f = Few::default();
        let all = |f: &Few<i32>| f.iter().copied().collect::<Vec<_>>();
        assert!(f.is_empty() && all(&f).is_empty());
        f.push(1);
        assert_eq!((f.len(), all(&f)), (1, vec![1]));
        f.push(2);
        f.push(3);
        assert_eq!((f.len(), all(&f)), (3, vec![1, 2, 3]));
        assert_eq!(f.iter().rev().copied().collect::<Vec<_>>(), [3, 2, 1]);
        f.retain(|&x| x != 1);
        assert_eq!(all(&f), [2, 3]);
        f.retain(|&x| x == 3);
        assert_eq!((f.len(), all(&f)), (1, vec![3]));
        f.retain(|_| false);
        assert!(f.is_empty() && all(&f).is_empty());
    }
    use crate::wire::stun::Verdict;

    fn msg(class: Class, id: u8) -> StunMessage {
        StunMessage {
            method: Method::BINDING,
            class,
            transaction_id: TransactionId([id; 12]),
            rfc5389: true,
            cookie: crate::wire::stun::MAGIC_COOKIE,
            length: 20,
            dialect: Default::default(),
            attributes: vec![],
            fingerprint: Verdict::Absent,
            integrity: Verdict::Absent,
            malformed: None,
        }
    }

    fn at(ms: u64, frame: u64) -> Seen {
        Seen {
            ts: Timestamp(ms * 1_000_000),
            frame,
            input: 0,
        }
    }

    /// The table grows by an eighth of its size when full, not by doubling: its capacity stays within
    /// an eighth (or 1,024 slots) of the most requests it held.
    #[test]
    fn the_table_grows_with_what_it_holds_not_by_doubling() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let mut t = Transactions::default();
        for n in 0u32..140_000 {
            let mut m = msg(Class::Request, 0);
            m.transaction_id.0[..4].copy_from_slice(&n.to_be_bytes());
            assert!(matches!(
                t.on_message(at(u64::from(n), u64::from(n)), a, b, Transport::Udp, false, &m),
                TxEvent::Request(_)
            ));
            let (len, cap) = (t.list.len(), t.list.capacity());
            assert!(cap <= len + (len / 8).max(1024), "{len} held in room for {cap}");
        }
    }

    #[test]
    fn retransmitted_request_then_response() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let mut t = Transactions::default();
        let u = Transport::Udp;
        assert_eq!(
            t.on_message(at(0, 1), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Request(0)
        );
        assert_eq!(
            t.on_message(at(500, 2), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Retransmission(0)
        );
        assert_eq!(
            t.on_message(at(1500, 3), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Retransmission(0)
        );
        // The response to the third transmission 20 ms later.
        assert_eq!(
            t.on_message(at(1520, 4), b, a, u, false, &msg(Class::Success, 1)),
            TxEvent::Response { tx: 0, first: true }
        );
        let tx = &t.list[0];
        assert_eq!(tx.retransmissions(), 2);
        assert!((tx.rtt_from_first().unwrap() - 1.52).abs() < 1e-9);
        assert!((tx.rtt_from_last().unwrap() - 0.020).abs() < 1e-9);
        assert_eq!(tx.state(Timestamp(0)), TxState::Succeeded);
    }

    /// A request sent 20 times and answered 20 times keeps its first 16 transmissions and its first 16
    /// responses in the order seen, counts all 20 transmissions, and is last active at its last kept
    /// message; its first response (an error here) gives its state and code, a later success does not.
    #[test]
    fn a_transaction_keeps_its_first_transmissions_and_responses_in_order() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let u = Transport::Udp;
        let mut t = Transactions::default();
        for k in 0..20u64 {
            let ev = t.on_message(at(k * 100, 2 * k + 1), a, b, u, false, &msg(Class::Request, 1));
            assert_eq!(
                ev,
                if k == 0 {
                    TxEvent::Request(0)
                } else {
                    TxEvent::Retransmission(0)
                }
            );
            let class = if k == 0 { Class::Error } else { Class::Success };
            let ev = t.on_message(at(k * 100 + 10, 2 * k + 2), b, a, u, false, &msg(class, 1));
            assert_eq!(ev, TxEvent::Response { tx: 0, first: k == 0 });
        }
        let tx = &t.list[0];
        let frames = |s: &mut dyn Iterator<Item = Seen>| s.map(|s| s.frame).collect::<Vec<_>>();
        assert_eq!(
            frames(&mut tx.requests()),
            (0..16).map(|k| 2 * k + 1).collect::<Vec<_>>()
        );
        let answered: Vec<u64> = tx.responses().map(|r| r.seen.frame).collect();
        assert_eq!(answered, (0..16).map(|k| 2 * k + 2).collect::<Vec<_>>());
        assert_eq!((tx.transmissions, tx.retransmissions()), (20, 19));
        assert_eq!(tx.last_request().map(|s| s.frame), Some(31));
        assert_eq!(tx.last_activity(), Some(Timestamp(1_510_000_000)));
        assert_eq!(tx.first_response().map(|r| r.class), Some(Class::Error));
        assert_eq!(tx.state(Timestamp(0)), TxState::Failed);
        assert!((tx.rtt_from_last().unwrap() - 0.010).abs() < 1e-9);
    }

    /// RFC 8489 §6.2.1: the requester gives up 39.5 s after its first request, so the same id 45 s after
    /// the transaction was last seen is a new transaction, and a response that late answers nothing.
    #[test]
    fn a_message_after_45_quiet_seconds_does_not_belong_to_the_old_transaction() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let u = Transport::Udp;
        let mut t = Transactions::default();
        t.on_message(at(0, 1), a, b, u, false, &msg(Class::Request, 1));
        assert_eq!(
            t.on_message(at(31_500, 2), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Retransmission(0)
        );
        // 45 s after the last transmission: still the same transaction; just past it: a new one.
        assert_eq!(
            t.on_message(at(76_500, 3), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Retransmission(0)
        );
        assert_eq!(
            t.on_message(at(121_501, 4), a, b, u, false, &msg(Class::Request, 1)),
            TxEvent::Request(1)
        );
        assert_eq!(
            t.on_message(at(121_520, 5), b, a, u, false, &msg(Class::Success, 1)),
            TxEvent::Response { tx: 1, first: true }
        );
        assert_eq!(t.list[0].transmissions, 3);
        assert!(!t.list[0].answered() && t.list[0].responses().next().is_none());
        // A response 45 s after everything: an orphan.
        assert_eq!(
            t.on_message(at(166_600, 6), b, a, u, false, &msg(Class::Success, 1)),
            TxEvent::Orphan
        );
    }

    #[test]
    fn response_on_the_wrong_5_tuple_is_an_orphan() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let c: SocketAddr = "10.0.0.3:2000".parse().unwrap();
        let mut t = Transactions::default();
        t.on_message(at(0, 1), a, b, Transport::Udp, false, &msg(Class::Request, 7));
        assert_eq!(
            t.on_message(at(5, 2), c, a, Transport::Udp, false, &msg(Class::Success, 7)),
            TxEvent::Orphan
        );
        assert_eq!(
            t.on_message(at(5, 2), b, a, Transport::Tcp, false, &msg(Class::Success, 7)),
            TxEvent::Orphan
        );
        assert_eq!(t.orphan_responses, 2);
    }

    #[test]
    fn timeout_only_after_the_rfc_give_up_time() {
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2000".parse().unwrap();
        let mut t = Transactions::default();
        t.on_message(at(1000, 1), a, b, Transport::Udp, false, &msg(Class::Request, 9));
        assert_eq!(
            t.list[0].state(Timestamp(40_000 * 1_000_000)),
            TxState::Unanswered
        );
        assert_eq!(t.list[0].state(Timestamp(40_500 * 1_000_000)), TxState::TimedOut);
        // Seven transmissions (0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s) exhaust Rc before 39.5 s.
        for (i, at_ms) in [1500u64, 2500, 4500, 8500, 16_500, 32_500]
            .into_iter()
            .enumerate()
        {
            t.on_message(
                self::at(at_ms, i as u64 + 2),
                a,
                b,
                Transport::Udp,
                false,
                &msg(Class::Request, 9),
            );
        }
        assert_eq!(t.list[0].transmissions, 7);
        assert_eq!(t.list[0].state(Timestamp(33_000 * 1_000_000)), TxState::TimedOut);
    }
}
