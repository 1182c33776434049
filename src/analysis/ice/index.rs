//! ICE's lookup tables in few bytes an entry: a busy server's capture holds ~100,000 checks and tens of
//! thousands of pairs' flows at once, and keyed by whole `usize`s and `Flow`s these two maps were 12 MB of
//! the call-dense 4 GB read's peak (heaptrack).
use super::checks::PairRef;
use super::{Pair, Sessions};
use crate::analysis::flows::Dirty;
use crate::analysis::transactions::TxIndex;
use crate::net::hash::FastHash;
use crate::net::Flow;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Check transaction → its pair, 12 bytes an entry: a busy server's capture holds ~100,000 checks at once,
/// and a `HashMap<usize, PairRef>` took 32 (6.4 MB of the call-dense 4 GB read's peak, heaptrack). The keys
/// are the transaction table's own indexes, not packet data, so FxHash. A check whose transaction or
/// session index does not fit 32 bits, or its pair 16 (never: the tables' bounds are far below), is not
/// entered, so its answers count for no pair.
#[derive(Debug, Default)]
pub(super) struct ChecksByTx(HashMap<u32, Packed, FastHash>);

#[derive(Clone, Copy, Debug)]
struct Packed {
    session: u32,
    pair: u16,
    from: u8,
    use_candidate: bool,
}

impl Packed {
    fn unpack(self) -> PairRef {
        PairRef {
            session: self.session as usize,
            pair: usize::from(self.pair),
            from: self.from,
            use_candidate: self.use_candidate,
        }
    }
}

impl ChecksByTx {
    pub(super) fn insert(&mut self, tx: TxIndex, r: PairRef) {
        if let (Ok(tx), Ok(session), Ok(pair)) =
            (u32::try_from(tx), u32::try_from(r.session), u16::try_from(r.pair))
        {
            let packed = Packed {
                session,
                pair,
                from: r.from,
                use_candidate: r.use_candidate,
            };
            self.0.insert(tx, packed);
        }
    }

    pub(super) fn get(&self, tx: TxIndex) -> Option<PairRef> {
        let tx = u32::try_from(tx).ok()?;
        self.0.get(&tx).map(|p| p.unpack())
    }

    pub(super) fn remove(&mut self, tx: TxIndex) {
        if let Ok(tx) = u32::try_from(tx) {
            self.0.remove(&tx);
        }
    }

    /// Which of the transaction table's first `len` slots a check is entered for, a bit each: made in one
    /// pass over the map, where a lookup for each quiet request missed the cache (a fold search asks for
    /// every quiet answered check still in the table; the lookups were a fifth of that scan's samples on
    /// the call-dense 4 GB read, perf).
    pub(super) fn held(&self, len: usize) -> TxBits {
        let mut bits = vec![0u64; len.div_ceil(64)];
        for &tx in self.0.keys() {
            if let Some(word) = bits.get_mut(tx as usize / 64) {
                *word |= 1 << (tx % 64);
            }
        }
        TxBits(bits)
    }

    /// Keeps the checks `keep` says yes to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(TxIndex, &PairRef) -> bool) {
        self.0.retain(|&tx, p| keep(tx as TxIndex, &p.unpack()));
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

/// A set of transaction table slots, a bit each ([`ChecksByTx::held`]).
pub(crate) struct TxBits(Vec<u64>);

impl TxBits {
    /// Whether slot `tx` is in the set (never one past the length it was made for).
    pub(crate) fn contains(&self, tx: TxIndex) -> bool {
        self.0.get(tx / 64).is_some_and(|w| w & (1 << (tx % 64)) != 0)
    }
}

/// A pair's flow (src, dst, transport of its checks one way) → (session, pair, from): for media and
/// USERNAME-less requests (GOOG-PING, keepalives). Keyed by a 64-bit fingerprint of the flow with the
/// session, pair and direction beside it, 16 bytes an entry where the whole flow and three words took 96:
/// the pair itself holds the addresses, so a lookup compares the flow with the pair's and a fingerprint
/// alone never matches. A flow whose fingerprint another flow already holds goes to `collided`, keyed
/// whole (std's keyed hasher there, so a capture that makes fingerprints collide only fills a map that
/// is bounded by the sessions' pairs, as this one is). FxHash for the fingerprint: it is looked up for
/// media packets (the per-flow cache's misses), where SipHash cost ~6 % of a TURN server capture's
/// analysis.
#[derive(Debug, Default)]
pub(super) struct FlowIndex {
    by_fingerprint: HashMap<u64, Packed, FastHash>,
    collided: HashMap<Flow, Packed>,
    /// Every flow gets this fingerprint (tests of the collision path).
    #[cfg(test)]
    pub(super) same_fingerprint: bool,
}

/// (session, pair, from): the pair's index in the session and which agent sends on the flow.
pub(crate) type FlowRef = (usize, usize, u8);

impl Packed {
    fn of(r: FlowRef) -> Option<Packed> {
        Some(Packed {
            session: u32::try_from(r.0).ok()?,
            pair: u16::try_from(r.1).ok()?,
            from: r.2,
            use_candidate: false,
        })
    }

    fn flow_ref(self) -> FlowRef {
        (self.session as usize, usize::from(self.pair), self.from)
    }
}

/// The flow agent `from`'s checks on `pair` travel.
fn pair_flow(pair: &Pair, from: u8) -> Flow {
    let (src, dst) = if from == 0 {
        (pair.a, pair.b)
    } else {
        (pair.b, pair.a)
    };
    Flow {
        src,
        dst,
        transport: pair.transport,
    }
}

impl FlowIndex {
    /// Flows held (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_fingerprint.len() + self.collided.len()
    }

    fn fingerprint(&self, flow: &Flow) -> u64 {
        #[cfg(test)]
        if self.same_fingerprint {
            return 7;
        }
        FastHash::default().hash_one(flow)
    }

    /// Whether `r` is a pair whose checks travel on `flow` (its session still holds it).
    fn holds(sessions: &Sessions, r: FlowRef, flow: &Flow) -> bool {
        let (s, p, from) = r;
        sessions
            .get(s)
            .and_then(|x| x.pairs.get(p))
            .is_some_and(|pair| pair_flow(pair, from) == *flow)
    }

    pub(super) fn get(&self, sessions: &Sessions, flow: &Flow) -> Option<FlowRef> {
        if let Some(r) = self
            .by_fingerprint
            .get(&self.fingerprint(flow))
            .map(|p| p.flow_ref())
        {
            if FlowIndex::holds(sessions, r, flow) {
                return Some(r);
            }
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(flow).map(|p| p.flow_ref())
    }

    /// Enters `flow` → `r` (replacing what `flow` led to); whether that changed what `flow` leads to.
    /// `r`'s pair must already be in `sessions` with `flow`'s addresses.
    pub(super) fn insert(&mut self, sessions: &Sessions, flow: Flow, r: FlowRef) -> bool {
        let Some(packed) = Packed::of(r) else {
            return false;
        };
        let f = self.fingerprint(&flow);
        match self.by_fingerprint.get(&f).map(|p| p.flow_ref()) {
            Some(held) if !FlowIndex::holds(sessions, held, &flow) && self.keyed_by(sessions, held, f) => {
                // Another flow's fingerprint: this flow is keyed whole.
                self.collided.insert(flow, packed).map(|p| p.flow_ref()) != Some(r)
            }
            held => {
                // This flow's entry, or none (or one whose pair is gone): taken over.
                let before = held
                    .filter(|&h| FlowIndex::holds(sessions, h, &flow))
                    .or_else(|| self.collided.remove(&flow).map(|p| p.flow_ref()));
                self.by_fingerprint.insert(f, packed);
                before != Some(r)
            }
        }
    }

    /// Whether the entry `r` stands for a flow of a pair its session holds, with fingerprint `f`.
    fn keyed_by(&self, sessions: &Sessions, r: FlowRef, f: u64) -> bool {
        let (s, p, from) = r;
        sessions
            .get(s)
            .and_then(|x| x.pairs.get(p))
            .is_some_and(|pair| self.fingerprint(&pair_flow(pair, from)) == f)
    }

    /// Removes the flows of session `s`'s pairs (both ways), noting their addresses in `changed`. Call it
    /// while the session still holds its pairs.
    pub(super) fn forget_session(&mut self, sessions: &Sessions, s: usize, changed: &mut Dirty) {
        let Some(pairs) = sessions.pairs_passing(s) else {
            return;
        };
        for (p, pair) in pairs.iter().enumerate() {
            for from in 0..2u8 {
                let flow = pair_flow(pair, from);
                let r = (s, p, from);
                let f = self.fingerprint(&flow);
                let mut gone = false;
                if self.by_fingerprint.get(&f).is_some_and(|x| x.flow_ref() == r) {
                    self.by_fingerprint.remove(&f);
                    gone = true;
                }
                if self.collided.get(&flow).is_some_and(|x| x.flow_ref() == r) {
                    self.collided.remove(&flow);
                    gone = true;
                }
                if gone {
                    changed.note(flow.src);
                    changed.note(flow.dst);
                }
            }
        }
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.by_fingerprint.shrink_to_fit();
        self.collided.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ice::Session;
    use crate::analysis::transactions::Seen;
    use crate::capture::Timestamp;
    use crate::net::Transport;
    use std::net::SocketAddr;

    fn at(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    fn flow(src: &str, dst: &str) -> Flow {
        Flow {
            src: at(src),
            dst: at(dst),
            transport: Transport::Udp,
        }
    }

    /// Flows that share a fingerprint are still told apart: with every flow given the same one, each
    /// leads to its own pair, a flow taken over by a new session leads there, and forgetting a session
    /// takes its flows only, noting their addresses.
    #[test]
    fn flows_whose_fingerprints_collide_are_told_apart() {
        let (a, b, c, d, e) = (
            "10.0.0.1:1",
            "10.0.0.2:2",
            "10.0.0.3:3",
            "10.0.0.4:4",
            "10.0.0.5:5",
        );
        let seen = Seen {
            ts: Timestamp(0),
            frame: 1,
            input: 0,
        };
        for same in [false, true] {
            let mut sessions = Sessions::default();
            let mut with_pairs = |pairs: &[(&str, &str)]| {
                let mut s = Session::new(Default::default(), seen, None);
                for &(x, y) in pairs {
                    s.pair(0, at(x), at(y), Transport::Udp);
                }
                sessions.push(s);
            };
            with_pairs(&[(a, b), (a, c)]);
            with_pairs(&[(d, e)]);
            let mut ix = FlowIndex {
                same_fingerprint: same,
                ..FlowIndex::default()
            };
            assert!(ix.insert(&sessions, flow(a, b), (0, 0, 0)));
            assert!(ix.insert(&sessions, flow(b, a), (0, 0, 1)));
            assert!(ix.insert(&sessions, flow(a, c), (0, 1, 0)));
            assert!(ix.insert(&sessions, flow(d, e), (1, 0, 0)));
            assert!(!ix.insert(&sessions, flow(a, b), (0, 0, 0)), "unchanged");
            let get = |ix: &FlowIndex, sessions: &Sessions, x, y| ix.get(sessions, &flow(x, y));
            assert_eq!(get(&ix, &sessions, a, b), Some((0, 0, 0)));
            assert_eq!(get(&ix, &sessions, b, a), Some((0, 0, 1)));
            assert_eq!(get(&ix, &sessions, a, c), Some((0, 1, 0)));
            assert_eq!(get(&ix, &sessions, d, e), Some((1, 0, 0)));
            assert_eq!(get(&ix, &sessions, c, a), None, "never entered");
            assert_eq!(get(&ix, &sessions, e, d), None, "never entered");

            // A new session's checks on a → b: the flow leads there now.
            let mut s = Session::new(Default::default(), seen, None);
            s.pair(0, at(a), at(b), Transport::Udp);
            sessions.push(s);
            assert!(ix.insert(&sessions, flow(a, b), (2, 0, 0)));
            assert_eq!(get(&ix, &sessions, a, b), Some((2, 0, 0)));

            // Forgetting the first session takes its flows but the one taken over.
            let mut changed = Dirty::default();
            ix.forget_session(&sessions, 0, &mut changed);
            assert_eq!(get(&ix, &sessions, a, b), Some((2, 0, 0)), "same={same}");
            assert_eq!(get(&ix, &sessions, b, a), None, "same={same}");
            assert_eq!(get(&ix, &sessions, a, c), None, "same={same}");
            assert_eq!(get(&ix, &sessions, d, e), Some((1, 0, 0)), "same={same}");
            let mut noted = changed.noted().to_vec();
            noted.sort_unstable();
            assert_eq!(noted, [at(a), at(a), at(b), at(c)]);
        }
    }
}
