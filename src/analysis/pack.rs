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

/// Where sleeping items' states go (a store that spills to a temporary file), how long an item is quiet
/// before it sleeps, and how often items slept and woke.
#[derive(Debug)]
pub(crate) struct SleepStore {
    store: RawStore,
    /// Capture time an item must be quiet before it sleeps.
    pub(crate) after: f64,
    slept: u64,
    woke: u64,
}

impl SleepStore {
    /// States go to `spill` (to memory without one).
    pub(crate) fn new(spill: Option<Arc<dyn Spill>>, after: f64) -> SleepStore {
        let mut store = RawStore::default();
        if let Some(spill) = spill {
            store.set_spill(spill);
        }
        SleepStore {
            store,
            after,
            slept: 0,
            woke: 0,
        }
    }

    /// Stores `x`'s encoding (`buf` is scratch space), as an item goes to sleep.
    pub(crate) fn put<T: Pack>(&mut self, x: &T, buf: &mut Vec<u8>) -> RawRef {
        buf.clear();
        x.put(buf);
        self.slept += 1;
        self.store.push(buf)
    }

    /// The item stored at `at`; None when it cannot be read back (the temporary file damaged), counted in
    /// [`SleepStore::errors`], which the run reports.
    pub(crate) fn get<T: Pack>(&self, at: RawRef) -> Option<T> {
        let mut buf = Vec::new();
        // A read that fails is counted by the store.
        if !self.store.read_into(at, &mut buf) {
            return None;
        }
        let x = Reader::whole(&buf, T::get);
        if x.is_none() {
            self.store.note_unreadable();
        }
        x
    }

    /// Notes that an item woke (was read back to be changed).
    pub(crate) fn woke(&mut self) {
        self.woke += 1;
    }

    /// Times an item went to sleep, and woke.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.slept, self.woke)
    }

    /// States that could not be read back so far.
    pub(crate) fn errors(&self) -> u64 {
        self.store.errors()
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
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

pack_unit_enum!(Transport { Udp = 0, Tcp = 1 });

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
