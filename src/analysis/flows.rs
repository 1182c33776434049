//! What the analysis looks up for each media packet of a flow, cached per flow ([`FlowTable`]).
//!
//! At a TURN server every relayed media packet costs two flow lookups (its client↔server leg, and the
//! datagram it carries), and the lookup was the analysis thread's largest single cost (perf,
//! BENCHMARKS.md). The table is open-addressed with 40-byte slots (a `HashMap` entry keyed by a `Flow`
//! took 80), so a few thousand flows stay in the core's L2 cache.
use crate::analysis::turn::AllocationLeg;
use crate::net::{Flow, Transport};
use std::net::SocketAddr;

/// Flows remembered at once; the table is emptied when it reaches this many.
pub(crate) const MAX_FLOW_FACTS: usize = 16_384;

/// What the analysis looks up for a media packet of a flow (a relayed address at either end, the TURN
/// allocation whose client↔server leg it is, the ICE pair it counts on): resolved once per flow while the
/// tables it comes from are unchanged for the flow's two addresses ([`Stamps`]). They change when an
/// allocation, a relayed address or a pair's flow is added or removed, not per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowFacts {
    /// [`Stamps::now`] when this was resolved.
    pub(crate) generation: u64,
    pub(crate) relayed_end: bool,
    pub(crate) allocation: Option<AllocationLeg>,
    pub(crate) pair: Option<(usize, usize, u8)>,
}

/// Addresses whose flows' facts a table's change made stale, noted by the table (TURN allocations, ICE pairs'
/// flows) and taken by the analysis into its [`Stamps`] before it next reads a flow's facts.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    addrs: Vec<SocketAddr>,
    /// More changed than [`Dirty::MAX`] since the last take: everything is stale.
    all: bool,
}

impl Dirty {
    /// Addresses noted before the list gives up and says "all" (the analysis takes them at every media
    /// packet, so this is reached only by a burst of changes with no media between).
    const MAX: usize = 1024;

    pub(crate) fn note(&mut self, a: SocketAddr) {
        if self.all {
            return;
        }
        if self.addrs.len() >= Dirty::MAX {
            self.all = true;
            self.addrs = Vec::new();
        } else {
            self.addrs.push(a);
        }
    }

    /// What was noted (tests).
    #[cfg(test)]
    pub(crate) fn noted(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Moves what was noted into `stamps`.
    pub(crate) fn take_into(&mut self, stamps: &mut Stamps) {
        if self.all {
            stamps.touch_all();
            self.all = false;
        }
        for a in self.addrs.drain(..) {
            stamps.touch(a);
        }
    }
}

/// When the facts about flows touching an address last changed, per bucket of addresses: a flow's cached
/// facts (and a ChannelData route) hold while neither of its addresses' buckets changed after they were
/// resolved. A single generation for all tables invalidated every flow whenever any call anywhere set up an
/// allocation or a pair, so on a busy server's capture nearly every media packet looked its facts up again
/// (four lookups instead of one). Buckets shared by several addresses only invalidate more than needed.
#[derive(Debug)]
pub(crate) struct Stamps {
    clock: u64,
    /// Facts resolved before this are stale whatever their addresses ([`Dirty`]'s "all").
    floor: u64,
    buckets: Box<[u64]>,
}

impl Default for Stamps {
    fn default() -> Self {
        Stamps {
            clock: 0,
            floor: 0,
            buckets: vec![0; Stamps::BUCKETS].into_boxed_slice(),
        }
    }
}

impl Stamps {
    /// 32 KiB of stamps: the ~6,000 addresses of 3,000 calls' client legs mostly get a bucket each.
    const BUCKETS: usize = 4096;

    pub(crate) fn now(&self) -> u64 {
        self.clock
    }

    fn bucket(a: &SocketAddr) -> usize {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let ip = match a {
            SocketAddr::V4(v) => u64::from(v.ip().to_bits()),
            SocketAddr::V6(v) => {
                let b = v.ip().to_bits();
                // Folding the address's halves: only the bucket index is kept.
                #[allow(clippy::cast_possible_truncation)]
                let folded = (b >> 64) as u64 ^ b as u64;
                folded
            }
        };
        let h = (ip.wrapping_mul(K).rotate_left(17) ^ u64::from(a.port())).wrapping_mul(K);
        // The top bits of the product index the buckets.
        #[allow(clippy::cast_possible_truncation)]
        let i = (h >> 52) as usize;
        i % Stamps::BUCKETS
    }

    /// Facts about flows touching `a` change now.
    pub(crate) fn touch(&mut self, a: SocketAddr) {
        self.clock += 1;
        if let Some(b) = self.buckets.get_mut(Stamps::bucket(&a)) {
            *b = self.clock;
        }
    }

    /// Facts about every flow change now.
    pub(crate) fn touch_all(&mut self) {
        self.clock += 1;
        self.floor = self.clock;
    }

    /// Whether what was resolved for `flow` at `generation` still holds.
    pub(crate) fn holds(&self, generation: u64, flow: &Flow) -> bool {
        let at = |a: &SocketAddr| self.buckets.get(Stamps::bucket(a)).copied().unwrap_or(u64::MAX);
        generation >= self.floor && at(&flow.src) <= generation && at(&flow.dst) <= generation
    }
}

/// [`FlowFacts`] in 24 bytes (indices as `u32`; [`Packed::NONE`] for none), so that a slot is 40 bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Packed {
    generation: u64,
    allocation: u32,
    session: u32,
    pair: u32,
    /// bit 0: relayed end; bit 1: the client sends on this flow; bit 2: the pair's direction.
    flags: u8,
}

impl Packed {
    const NONE: u32 = u32::MAX;

    /// `None` when an index does not fit (never, with the tables' bounds): such a flow is not cached.
    fn pack(f: &FlowFacts) -> Option<Packed> {
        let index = |i: usize| u32::try_from(i).ok().filter(|&i| i != Packed::NONE);
        let (allocation, client) = match f.allocation {
            Some(leg) => (index(leg.position)?, leg.client_sent),
            None => (Packed::NONE, false),
        };
        let (session, pair, dir) = match f.pair {
            Some((s, p, dir)) if dir <= 1 => (index(s)?, index(p)?, dir == 1),
            Some(_) => return None,
            None => (Packed::NONE, Packed::NONE, false),
        };
        Some(Packed {
            generation: f.generation,
            allocation,
            session,
            pair,
            flags: u8::from(f.relayed_end) | u8::from(client) << 1 | u8::from(dir) << 2,
        })
    }

    fn unpack(&self) -> FlowFacts {
        FlowFacts {
            generation: self.generation,
            relayed_end: self.flags & 1 != 0,
            allocation: (self.allocation != Packed::NONE).then_some(AllocationLeg {
                position: self.allocation as usize,
                client_sent: self.flags & 2 != 0,
            }),
            pair: (self.session != Packed::NONE).then_some((
                self.session as usize,
                self.pair as usize,
                (self.flags >> 2) & 1,
            )),
        }
    }
}

/// A flow as the table's key: an IPv4 flow packed in two words, never both zero (IPv6 flows are not
/// keyed: the analysis keeps them elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Key([u64; 2]);

impl Key {
    pub(crate) fn of(flow: &Flow) -> Option<Key> {
        match (flow.src, flow.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Some(Key([
                u64::from(s.ip().to_bits()) << 32 | u64::from(d.ip().to_bits()),
                u64::from(s.port()) << 48 | u64::from(d.port()) << 32 | (flow.transport as u64) << 8 | 1,
            ])),
            _ => None,
        }
    }

    /// The flow it was made from.
    pub(crate) fn flow(&self) -> Flow {
        let [ips, rest] = self.0;
        // Each field was packed whole at its offset: the shifts take them back out.
        #[allow(clippy::cast_possible_truncation)]
        let (src_ip, dst_ip, src_port, dst_port, transport) = (
            (ips >> 32) as u32,
            ips as u32,
            (rest >> 48) as u16,
            (rest >> 32) as u16,
            (rest >> 8) as u8,
        );
        Flow {
            src: SocketAddr::from((std::net::Ipv4Addr::from(src_ip), src_port)),
            dst: SocketAddr::from((std::net::Ipv4Addr::from(dst_ip), dst_port)),
            transport: if transport == Transport::Tcp as u8 {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        }
    }

    fn hash(&self) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        (self.0[0].wrapping_mul(K).rotate_left(29) ^ self.0[1]).wrapping_mul(K)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    key: Key,
    facts: Packed,
}

/// IPv4 flows' facts, open-addressed (linear probing, at most half full), growing to twice
/// [`MAX_FLOW_FACTS`] slots; emptied when it holds [`MAX_FLOW_FACTS`] flows.
#[derive(Default)]
pub(crate) struct FlowTable {
    /// A power of two long, or empty.
    slots: Vec<Slot>,
    len: usize,
}

impl FlowTable {
    const FIRST: usize = 1024;

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: &Key) -> usize {
        // The top bits of a multiplicative hash (`slots.len()` is a power of two).
        let bits = self.slots.len().trailing_zeros();
        // `bits` is below the pointer width (`slots.len()` is a usize), so the shifted value fits.
        #[allow(clippy::cast_possible_truncation)]
        let home = (key.hash() >> (64 - bits)) as usize;
        home
    }

    pub(crate) fn get(&self, key: &Key) -> Option<FlowFacts> {
        let i = self.find(key)?;
        self.slots.get(i).map(|s| s.facts.unpack())
    }

    /// Remembers `facts` for `key`; a new flow when [`MAX_FLOW_FACTS`] are held empties the table first.
    pub(crate) fn insert(&mut self, key: Key, facts: &FlowFacts) {
        let Some(packed) = Packed::pack(facts) else {
            return;
        };
        if let Some(i) = self.find(&key) {
            if let Some(slot) = self.slots.get_mut(i) {
                slot.facts = packed;
            }
            return;
        }
        if self.len >= MAX_FLOW_FACTS {
            self.clear();
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(Slot { key, facts: packed });
    }

    /// The index of `key`'s slot.
    fn find(&self, key: &Key) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = self.slots.get(i)?;
            if slot.key == *key {
                return Some(i);
            }
            if slot.key == Key::default() {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts a slot whose key is not in the table into the first free slot from its home (there is one:
    /// the table is at most half full).
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.home(&slot.key);
        while let Some(s) = self.slots.get_mut(i) {
            if s.key == Key::default() {
                *s = slot;
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.len = 0;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FlowTable::FIRST);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.len = 0;
        for slot in old.into_iter().filter(|s| s.key != Key::default()) {
            self.place(slot);
        }
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn flow(i: u32) -> Flow {
        Flow {
            src: SocketAddr::from((
                [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
                40000 + (i % 7) as u16,
            )),
            dst: SocketAddr::from(([192, 0, 2, 1], 3478)),
            transport: if i % 3 == 0 {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        }
    }

    fn facts(i: u32) -> FlowFacts {
        FlowFacts {
            generation: u64::from(i) * 3,
            relayed_end: i % 2 == 0,
            allocation: (i % 5 != 0).then_some(AllocationLeg {
                position: i as usize,
                client_sent: i % 4 == 0,
            }),
            pair: (i % 3 != 0).then_some((i as usize / 2, i as usize % 11, (i % 2) as u8)),
        }
    }

    #[test]
    fn remembers_every_flow_until_full_then_starts_afresh() {
        let mut t = FlowTable::default();
        assert_eq!(t.get(&Key::of(&flow(1)).unwrap()), None);
        for i in 0..MAX_FLOW_FACTS as u32 {
            t.insert(Key::of(&flow(i)).unwrap(), &facts(i));
        }
        assert_eq!(t.len(), MAX_FLOW_FACTS);
        for i in 0..MAX_FLOW_FACTS as u32 {
            assert_eq!(t.get(&Key::of(&flow(i)).unwrap()), Some(facts(i)), "flow {i}");
        }
        // Replacing keeps the count; one more flow empties the table first.
        t.insert(Key::of(&flow(7)).unwrap(), &facts(8));
        assert_eq!(t.get(&Key::of(&flow(7)).unwrap()), Some(facts(8)));
        assert_eq!(t.len(), MAX_FLOW_FACTS);
        let extra = MAX_FLOW_FACTS as u32 + 1;
        t.insert(Key::of(&flow(extra)).unwrap(), &facts(extra));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&Key::of(&flow(7)).unwrap()), None);
        assert_eq!(t.get(&Key::of(&flow(extra)).unwrap()), Some(facts(extra)));
    }

    #[test]
    fn keys_tell_every_field_apart_and_ipv6_is_not_keyed() {
        let f = flow(5);
        let k = Key::of(&f).unwrap();
        assert_ne!(k, Key::default());
        let reversed = Flow {
            src: f.dst,
            dst: f.src,
            transport: f.transport,
        };
        let other_transport = Flow {
            transport: Transport::Tcp,
            ..f
        };
        let zero = Flow {
            src: SocketAddr::from(([0, 0, 0, 0], 0)),
            dst: SocketAddr::from(([0, 0, 0, 0], 0)),
            transport: Transport::Udp,
        };
        assert_ne!(Key::of(&reversed), Some(k));
        assert_ne!(Key::of(&other_transport), Some(k));
        assert_ne!(Key::of(&zero), Some(Key::default()));
        let v6 = Flow {
            src: "[2001:db8::1]:5000".parse().unwrap(),
            ..f
        };
        assert_eq!(Key::of(&v6), None);
    }

    /// A change to an address makes stale what was resolved before it for flows touching that address, and
    /// nothing else (unless the two share a bucket, which only costs a lookup); "all" makes everything
    /// stale; what is resolved after a change holds.
    #[test]
    fn stamps_make_stale_only_the_flows_of_changed_addresses() {
        let mut stamps = Stamps::default();
        let (a, b) = (flow(1), flow(2));
        assert_ne!(
            Stamps::bucket(&a.src),
            Stamps::bucket(&b.src),
            "the test needs two buckets"
        );
        let before = stamps.now();
        assert!(stamps.holds(before, &a) && stamps.holds(before, &b));
        let mut dirty = Dirty::default();
        dirty.note(a.src);
        assert!(
            stamps.holds(before, &a),
            "nothing changes until the changes are taken"
        );
        dirty.take_into(&mut stamps);
        assert!(!stamps.holds(before, &a), "a's client changed");
        assert!(
            stamps.holds(before, &b),
            "b shares only the server, which did not change"
        );
        let after = stamps.now();
        assert!(stamps.holds(after, &a), "resolved again after the change");
        dirty.note(a.dst);
        dirty.take_into(&mut stamps);
        assert!(
            !stamps.holds(after, &a) && !stamps.holds(after, &b),
            "the server both use changed"
        );
        // A burst of more changes than the list keeps makes every flow stale.
        let now = stamps.now();
        for i in 0..=Dirty::MAX as u32 {
            dirty.note(flow(1000 + i).src);
        }
        assert!(dirty.all && dirty.addrs.is_empty(), "the list gave up: bounded");
        dirty.take_into(&mut stamps);
        assert!(!stamps.holds(now, &flow(7)), "everything is stale");
        assert!(stamps.holds(stamps.now(), &flow(7)));
    }

    /// A key gives back the flow it was made from.
    #[test]
    fn keys_unpack_to_their_flow() {
        for i in 0..50 {
            let f = flow(i * 977);
            assert_eq!(Key::of(&f).expect("IPv4").flow(), f);
        }
    }
}
