//! An exact binary encoding for state that waits outside memory (a sleeping ICE session, `ice::sleep`; a
//! sleeping TURN allocation, `turn::sleep`): every field in order, integers little-endian, floats by their
//! bits, lists with their length. Reading is checked: damaged bytes give `None`, and no length read is
//! trusted beyond the bytes left.

use crate::analysis::store::{RawRef, RawStore, Spill};
use crate::analysis::transactions::Seen;
use crate::capture::Timestamp;
use crate::net::addr::SortAddr;
use crate::net::Transport;
use crate::wire::stun::{Method, TransactionId};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// Makes the storage a [`SleepStore`] spills to: a new temporary file each time (the I/O edge's), or None
/// when none can be made (the states then stay in memory, encoded).
pub type MakeSpill = fn() -> Option<Arc<dyn Spill>>;

/// Bytes of states no longer asleep (woken, or folded) past which a [`SleepStore`] is rewritten with only
/// the states still asleep, when they are also more than half of what it holds.
const COMPACT_AFTER_BYTES: u64 = 64 << 20;

/// Where sleeping items' states go (a store that spills to a temporary file), how long an item is quiet
/// before it sleeps, and how often items slept and woke.
///
/// The store is append-only, and an item sleeps, wakes and sleeps again many times over a long call, so
/// what it holds of items no longer asleep is counted ([`SleepStore::free`]); once that is most of it, the
/// owner has it rewritten with the states still asleep ([`SleepStore::compact`]), into new storage, and
/// the old storage (a temporary file, unlinked) is let go. So the store follows what sleeps at one moment:
/// a live run of days does not fill the disk with states that woke long ago.
#[derive(Debug)]
pub(crate) struct SleepStore {
    store: RawStore,
    make: Option<MakeSpill>,
    /// Capture time an item must be quiet before it sleeps.
    pub(crate) after: f64,
    slept: u64,
    woke: u64,
    /// Bytes of the states in `store`, and of those that are no longer asleep.
    stored: u64,
    dead: u64,
    /// Dead bytes past which [`SleepStore::wants_compaction`] may say yes ([`COMPACT_AFTER_BYTES`]).
    compact_after: u64,
    compactions: u64,
    /// States that could not be read back, in stores rewritten since.
    errors_before: u64,
}

impl SleepStore {
    /// States go to storage `make` gives (to memory without it: tests). None when `make` gives none (no
    /// temporary file): then nothing sleeps, as a store in memory would hold the states that woke until
    /// it is rewritten.
    pub(crate) fn new(make: Option<MakeSpill>, after: f64) -> Option<SleepStore> {
        Some(SleepStore {
            store: Self::fresh(make)?,
            make,
            after,
            slept: 0,
            woke: 0,
            stored: 0,
            dead: 0,
            compact_after: COMPACT_AFTER_BYTES,
            compactions: 0,
            errors_before: 0,
        })
    }

    /// A new store from `make` (in memory without it); None when `make` gives no storage.
    fn fresh(make: Option<MakeSpill>) -> Option<RawStore> {
        let mut store = RawStore::default();
        if let Some(make) = make {
            store.set_spill(make()?);
        }
        Some(store)
    }

    /// Stores `x`'s encoding (`buf` is scratch space), as an item goes to sleep.
    pub(crate) fn put<T: Pack>(&mut self, x: &T, buf: &mut Vec<u8>) -> RawRef {
        buf.clear();
        x.put(buf);
        self.slept += 1;
        self.stored += buf.len() as u64;
        self.store.push(buf)
    }

    /// Stores `bytes` as they are: a frozen timeline block of an open session (`ice::timeline`), counted
    /// with the states for [`SleepStore::wants_compaction`] and let go with [`SleepStore::free`].
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) -> RawRef {
        self.stored += bytes.len() as u64;
        self.store.push(bytes)
    }

    /// Appends the bytes [`SleepStore::put_bytes`] stored at `at` to `buf`; false when they cannot be read
    /// back (counted in [`SleepStore::errors`]).
    pub(crate) fn read_bytes(&self, at: RawRef, buf: &mut Vec<u8>) -> bool {
        self.store.read_into(at, buf)
    }

    /// The item stored at `at`; None when it cannot be read back (the temporary file damaged), counted in
    /// [`SleepStore::errors`], which the run reports.
    pub(crate) fn get<T: Pack>(&self, at: RawRef) -> Option<T> {
        self.store.decode(at, |buf| Reader::whole(buf, T::get))
    }

    /// What `read` takes from the front of the item stored at `at` (the rest not decoded): a part of an
    /// item whose encoding puts it first. `None` when the item cannot be read back, or its front does not
    /// decode (counted as [`SleepStore::get`] counts them).
    pub(crate) fn get_front<T>(
        &self,
        at: RawRef,
        read: impl FnOnce(&mut Reader<'_>) -> Option<T>,
    ) -> Option<T> {
        self.store.decode(at, |buf| read(&mut Reader::new(buf)))
    }

    /// Notes that the item stored at `at` woke (was read back to be changed): its state is no longer
    /// asleep ([`SleepStore::free`]).
    pub(crate) fn woke(&mut self, at: RawRef) {
        self.woke += 1;
        self.free(at);
    }

    /// The state stored at `at` is no longer asleep (its item woke, or folded): its bytes count toward
    /// [`SleepStore::wants_compaction`].
    pub(crate) fn free(&mut self, at: RawRef) {
        self.dead += at.len() as u64;
    }

    /// Whether most of what the store holds is of items no longer asleep, and enough to be worth a
    /// rewrite ([`SleepStore::compact`]).
    pub(crate) fn wants_compaction(&self) -> bool {
        self.dead > self.compact_after && self.dead > self.stored - self.dead.min(self.stored)
    }

    /// Rewrites the store with only what `asleep` refers to (every item still asleep, and the open ICE
    /// sessions' frozen timeline blocks, [`SleepStore::put_bytes`]), into new storage, each reference
    /// moved to its new place; the old storage is let go. A state that cannot be read back is counted in
    /// [`SleepStore::errors`] and stored empty (it then reads back as nothing).
    /// When no new storage can be made (no temporary file), the store stays as it is until twice as much
    /// is no longer asleep.
    pub(crate) fn compact<'a>(&mut self, asleep: impl Iterator<Item = &'a mut RawRef>) {
        let Some(mut fresh) = Self::fresh(self.make) else {
            self.compact_after = self.dead.saturating_mul(2);
            return;
        };
        let mut stored = 0;
        let mut buf = Vec::new();
        for at in asleep {
            // Each state's own bytes, not its whole chunk into the store's cache: a rewrite holds no more
            // memory than the new store's chunk being filled.
            buf.clear();
            // A read that fails is counted by the store.
            let moved = if self.store.read_into(*at, &mut buf) {
                fresh.push(&buf)
            } else {
                fresh.push(&[])
            };
            stored += moved.len() as u64;
            *at = moved;
        }
        self.errors_before += self.store.errors();
        self.store = fresh;
        self.stored = stored;
        self.dead = 0;
        self.compactions += 1;
    }

    /// Times an item went to sleep, and woke.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.slept, self.woke)
    }

    /// Times the store was rewritten ([`SleepStore::compact`]).
    pub(crate) fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Bytes of the states the store holds, asleep or not.
    #[cfg(test)]
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.stored
    }

    /// From now on, rewrites once `bytes` of states are no longer asleep (tests: 0, at every chance).
    #[cfg(test)]
    pub(crate) fn compact_after(&mut self, bytes: u64) {
        self.compact_after = bytes;
    }

    /// States that could not be read back so far.
    pub(crate) fn errors(&self) -> u64 {
        self.errors_before + self.store.errors()
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader from the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    /// How many bytes it has read.
    pub(crate) fn read(&self) -> usize {
        self.at
    }

    /// What `get` reads from the whole of `buf` (None unless it reads exactly all of it).
    pub(crate) fn whole<T>(buf: &'a [u8], get: impl FnOnce(&mut Reader<'a>) -> Option<T>) -> Option<T> {
        let mut r = Reader { buf, at: 0 };
        let x = get(&mut r)?;
        (r.at == buf.len()).then_some(x)
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
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
pub(crate) trait Pack: Sized {
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
pub(crate) use pack_struct;

/// A fieldless enum as one byte, each variant its number (every variant named: one added to the enum and
/// not here does not compile; another byte reads as `None`).
macro_rules! pack_unit_enum {
    ($t:ident { $($v:ident = $n:literal),* $(,)? }) => {
        impl Pack for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.push(match self {
                    $($t::$v => $n,)*
                });
            }
            fn get(r: &mut Reader<'_>) -> Option<Self> {
                match u8::get(r)? {
                    $($n => Some($t::$v),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use pack_unit_enum;

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
    /// Only what a `SortAddr` holds: an address it would change (an IPv6 flow label, which it drops) is
    /// not what was put.
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        let a = SocketAddr::get(r)?;
        let s = SortAddr::of(a);
        (s.addr() == a).then_some(s)
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

pack_unit_enum!(Transport { Udp = 0, Tcp = 1 });

impl Pack for RawRef {
    fn put(&self, out: &mut Vec<u8>) {
        self.parts().iter().for_each(|n| n.put(out));
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some(RawRef::from_parts([u32::get(r)?, u32::get(r)?, u32::get(r)?]))
    }
}

impl Pack for std::ops::Range<u32> {
    fn put(&self, out: &mut Vec<u8>) {
        self.start.put(out);
        self.end.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        Some(u32::get(r)?..u32::get(r)?)
    }
}

impl Pack for Method {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Option<Self> {
        u16::get(r).map(Method)
    }
}

pack_struct!(Seen { ts, frame, input });

/// Checks that damaged forms of `x`'s encoding (cut short, a byte too many, one byte in `step` changed)
/// never panic and never read past the buffer: they give `None`, or a value whose encoding is exactly
/// those bytes.
#[cfg(test)]
pub(crate) fn check_damaged<T: Pack>(x: &T, step: usize) {
    let mut buf = Vec::new();
    x.put(&mut buf);
    for cut in 0..buf.len() {
        assert!(Reader::whole(&buf[..cut], T::get).is_none(), "cut at {cut}");
    }
    let mut longer = buf.clone();
    longer.push(0);
    assert!(Reader::whole(&longer, T::get).is_none(), "a byte too many");
    for at in (0..buf.len()).step_by(step) {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = buf.clone();
            bad[at] ^= flip;
            if let Some(y) = Reader::whole(&bad, T::get) {
                let mut again = Vec::new();
                y.put(&mut again);
                assert_eq!(again, bad, "byte {at} ^ {flip:#x}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::store::MemorySpill;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Stores made by `make`: only the test that counts them uses it.
    static MADE: AtomicUsize = AtomicUsize::new(0);

    fn make() -> Option<Arc<dyn Spill>> {
        MADE.fetch_add(1, Ordering::Relaxed);
        Some(Arc::new(MemorySpill::default()))
    }

    /// Items sleep and wake over and over: once most of the store is of states that woke, it is rewritten
    /// into new storage with only those still asleep, each read back as it was put, and the old storage
    /// is let go. Items of 10 KB, so most of them are in chunks written to the spill.
    #[test]
    fn a_store_of_states_that_woke_is_rewritten_with_those_asleep() {
        let mut store = SleepStore::new(Some(make), 0.0).expect("a store");
        assert_eq!(MADE.load(Ordering::Relaxed), 1);
        let mut buf = Vec::new();
        let items: Vec<String> = (0..400).map(|i| format!("{i:05}").repeat(2_000)).collect();
        let mut refs: Vec<RawRef> = items.iter().map(|x| store.put(x, &mut buf)).collect();
        assert!(!store.wants_compaction(), "nothing woke");
        // Three in four wake: 3 MB of the 4 MB stored, under the default threshold.
        for (i, at) in refs.iter().enumerate() {
            if i % 4 != 0 {
                store.woke(*at);
            }
        }
        assert!(
            !store.wants_compaction(),
            "3 MB woke, under {COMPACT_AFTER_BYTES} bytes"
        );
        store.compact_after(1 << 20);
        assert!(store.wants_compaction());
        let before = store.stored_bytes();
        store.compact(refs.iter_mut().step_by(4));
        assert_eq!(MADE.load(Ordering::Relaxed), 2, "new storage");
        assert_eq!(store.compactions(), 1);
        assert_eq!(store.stored_bytes() * 4, before, "only the quarter asleep");
        assert!(!store.wants_compaction());
        for (i, at) in refs.iter().enumerate().step_by(4) {
            assert_eq!(
                store.get::<String>(*at).as_deref(),
                Some(items[i].as_str()),
                "item {i}"
            );
        }
        assert_eq!(store.errors(), 0);
        assert_eq!(store.counts(), (400, 300));
    }

    /// Without storage (no temporary file) nothing sleeps; and a store whose new storage cannot be made
    /// stays as it is, every state still read back, until twice as much has woken.
    #[test]
    fn without_storage_nothing_sleeps_and_nothing_is_rewritten() {
        fn none() -> Option<Arc<dyn Spill>> {
            None
        }
        assert!(SleepStore::new(Some(none), 0.0).is_none());
        fn memory() -> Option<Arc<dyn Spill>> {
            Some(Arc::new(MemorySpill::default()))
        }
        let mut store = SleepStore::new(Some(memory), 0.0).expect("a store");
        store.make = Some(none);
        let mut buf = Vec::new();
        let mut kept = store.put(&String::from("asleep"), &mut buf);
        let woke = store.put(&"w".repeat(1000), &mut buf);
        store.woke(woke);
        store.compact_after(0);
        assert!(store.wants_compaction());
        store.compact(std::iter::once(&mut kept));
        assert_eq!(store.compactions(), 0);
        assert!(!store.wants_compaction(), "until twice as much has woken");
        assert_eq!(store.get::<String>(kept).as_deref(), Some("asleep"));
    }

    /// A state that cannot be read back as the store is rewritten is counted, and still counted after the
    /// old storage is gone; it then reads back as nothing (counted again), never as another item's bytes.
    #[test]
    fn a_state_lost_in_a_rewrite_is_counted() {
        fn failing() -> Option<Arc<dyn Spill>> {
            Some(Arc::new(MemorySpill {
                fail_reads: true,
                ..MemorySpill::default()
            }))
        }
        let mut store = SleepStore::new(Some(failing), 0.0).expect("a store");
        let mut buf = Vec::new();
        let big = "x".repeat(700_000);
        let mut first = store.put(&big, &mut buf);
        // The second does not fit the first's chunk: the first is written out, and cannot be read back.
        for _ in 0..2 {
            let later = store.put(&big, &mut buf);
            store.woke(later);
        }
        store.compact_after(0);
        assert!(store.wants_compaction());
        store.compact(std::iter::once(&mut first));
        assert!(store.errors() >= 1);
        assert_eq!(store.get::<String>(first), None);
        assert!(store.errors() >= 2);
    }
}
