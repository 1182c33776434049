//! A list that grows a page at a time, for the tables that only grow during a read (what folding keeps of
//! every finished session, allocation and finding). A `Vec` doubles: it holds up to twice what it keeps,
//! and while it moves to a bigger buffer both are alive, so its peak is up to three times its content. A
//! page is allocated once and never moves.
//!
//! A full page can go to a [`RawStore`] that spills to a temporary file ([`Paged::store_full`]), encoded
//! ([`Pack`]): memory then holds the page being filled, however many items a run folds (an hour of
//! `scripts/bench`'s call-dense server held ~30 MB of them: BENCHMARKS.md, sessions 30 and 31). Items
//! are read back by value; a few decoded pages are cached, as outputs read items nearly in the
//! order they were pushed. A page that cannot be read back gives no items and is counted in the store's
//! errors, which fail the run.
//!
//! Pages are shared between copies (`Arc`): a live run's UI snapshot copies these lists every
//! half-second or so, and copying every item was O(what folded) each time (a million folded sessions'
//! records alone are 48 MB). Now it copies a pointer per page; a page changed while a copy holds it
//! (the last, as items are pushed, or one whose item is updated) is copied first, once.

use super::pack::{Pack, Reader};
use super::store::{RawRef, RawStore, ReadBack};
use std::sync::Arc;

/// Items per page: a page of the largest item kept this way (a folded allocation, ~100 bytes) is ~100 KB.
/// Tests take a few: a test's few dozen folded calls then fill pages that go to the store.
const PAGE: usize = if cfg!(test) { 8 } else { 1024 };
/// Stored pages kept decoded after being read back: one per core rendering the JSON, and a spare.
const CACHED_PAGES: usize = 3;

#[derive(Clone, Debug)]
enum Page<T> {
    Held(Arc<Vec<T>>),
    /// A full page's items, encoded one after the other, in the store.
    Stored(RawRef),
}

#[derive(Debug)]
pub(crate) struct Paged<T> {
    pages: Vec<Page<T>>,
    /// Places given out, let go ones included.
    len: usize,
    /// Places below this were let go ([`Paged::release`]).
    base: usize,
    /// Stored pages read back, most recently used first.
    cache: ReadBack<usize, Vec<T>, CACHED_PAGES>,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged {
            pages: Vec::new(),
            len: 0,
            base: 0,
            cache: ReadBack::default(),
        }
    }
}

/// A copy shares every page (a stored one is a reference into a store the copy's owner copies too); its
/// cache starts empty.
impl<T> Clone for Paged<T> {
    fn clone(&self) -> Self {
        Paged {
            pages: self
                .pages
                .iter()
                .map(|p| match p {
                    Page::Held(items) => Page::Held(items.clone()),
                    Page::Stored(at) => Page::Stored(*at),
                })
                .collect(),
            len: self.len,
            base: self.base,
            cache: ReadBack::default(),
        }
    }
}

impl<T: Clone> Paged<T> {
    pub(crate) fn push(&mut self, x: T) {
        match self.pages.last_mut() {
            Some(Page::Held(page)) if page.len() < PAGE => writable(page).push(x),
            _ => {
                let mut page = Vec::with_capacity(PAGE);
                page.push(x);
                self.pages.push(Page::Held(Arc::new(page)));
            }
        }
        self.len += 1;
    }
}

/// A page to change: copied first if a copy of the list shares it, with room for a whole page as every
/// page has (`Arc::make_mut` would copy only what it holds, and the next push would grow it).
fn writable<T: Clone>(page: &mut Arc<Vec<T>>) -> &mut Vec<T> {
    if Arc::get_mut(page).is_none() {
        let mut own = Vec::with_capacity(PAGE);
        own.extend(page.iter().cloned());
        *page = Arc::new(own);
    }
    Arc::make_mut(page)
}

impl<T: Clone + Pack> Paged<T> {
    /// Moves the full page before the one being filled into `store`, encoded, when the store spills
    /// (kept in memory, where encoding would only add work, otherwise). Called after every push, so that
    /// page is the only one that can be full and held.
    pub(crate) fn store_full(&mut self, store: &mut RawStore) {
        let Some(full) = self.pages.len().checked_sub(2) else {
            return;
        };
        if let (true, Some(page)) = (store.spills(), self.pages.get_mut(full)) {
            if let Page::Held(items) = &*page {
                *page = Page::Stored(Self::store(items, store, &mut Vec::new()));
            }
        }
    }

    /// `items` encoded into `store` (`buf` is scratch space).
    fn store(items: &[T], store: &mut RawStore, buf: &mut Vec<u8>) -> RawRef {
        buf.clear();
        items.iter().for_each(|x| x.put(buf));
        store.push(buf)
    }

    /// Page `p`'s items (decoded once and cached when stored); None past the end, or when a stored page
    /// cannot be read back (counted in `store`'s errors).
    fn page(&self, p: usize, store: &RawStore) -> Option<Arc<Vec<T>>> {
        match self.pages.get(p)? {
            Page::Held(items) => Some(items.clone()),
            Page::Stored(at) => self.cache.get_or_read(p, || Self::decode(*at, store)),
        }
    }

    fn decode(at: RawRef, store: &RawStore) -> Option<Vec<T>> {
        store.decode(at, |buf| {
            Reader::whole(buf, |r| {
                let mut items = Vec::with_capacity(PAGE);
                while r.read() < buf.len() && items.len() < PAGE {
                    items.push(T::get(r)?);
                }
                Some(items)
            })
        })
    }

    /// The item at place `i`; None past the end, once let go, or when its page cannot be read back.
    pub(crate) fn get(&self, i: usize, store: &RawStore) -> Option<T> {
        let i = i.checked_sub(self.base)?;
        self.page(i / PAGE, store)?.get(i % PAGE).cloned()
    }

    /// The items not let go, in order (a page that cannot be read back gives none).
    pub(crate) fn iter<'a>(&'a self, store: &'a RawStore) -> impl Iterator<Item = T> + 'a {
        (0..self.pages.len()).flat_map(move |p| {
            let items = self.page(p, store).unwrap_or_default();
            (0..items.len()).filter_map(move |k| items.get(k).cloned())
        })
    }

    /// Changes items with `change(place, item)`, page by page, each page read back and (when `change`
    /// said it changed one of its items) stored again. A page that cannot be read back is skipped.
    pub(crate) fn update(&mut self, store: &mut RawStore, mut change: impl FnMut(usize, &mut T) -> bool) {
        let mut buf = Vec::new();
        for p in 0..self.pages.len() {
            let first = self.base + p * PAGE;
            match &mut self.pages[p] {
                Page::Held(items) => {
                    for k in 0..items.len() {
                        let mut x = items[k].clone();
                        if change(first + k, &mut x) {
                            writable(items)[k] = x;
                        }
                    }
                }
                Page::Stored(at) => {
                    let Some(mut items) = Self::decode(*at, store) else {
                        continue;
                    };
                    let mut changed = false;
                    for (k, x) in items.iter_mut().enumerate() {
                        changed |= change(first + k, x);
                    }
                    if changed {
                        *at = Self::store(&items, store, &mut buf);
                    }
                }
            }
        }
        self.cache.clear();
    }
}

impl<T> Paged<T> {
    /// Places given out so far, let go ones included: the next item's place.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The place of the first item not let go ([`Paged::release`]).
    pub(crate) fn first_place(&self) -> usize {
        self.base
    }

    /// Pages held in memory (the others are stored).
    #[cfg(test)]
    pub(crate) fn held_pages(&self) -> usize {
        self.pages.iter().filter(|p| matches!(p, Page::Held(_))).count()
    }

    /// Lets go of every item so far: their places give None from now on, and later items take the
    /// places after them.
    pub(crate) fn release(&mut self) {
        self.pages = Vec::new();
        self.base = self.len;
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::store::MemorySpill;
    use crate::wire::credentials::Keyring;

    /// Items come back by place and in order across page boundaries, and a place past the end is None.
    /// Without a spill, full pages stay in memory as they are.
    #[test]
    fn items_keep_their_places_across_pages() {
        let mut store = RawStore::new(Keyring::new());
        let mut p = Paged::default();
        let n = 3 * PAGE + 7;
        for i in 0..n {
            p.push(i);
            p.store_full(&mut store);
        }
        assert_eq!((p.len(), p.held_pages(), store.held_bytes()), (n, 4, 0));
        assert!((0..n).all(|i| p.get(i, &store) == Some(i)));
        assert_eq!(p.get(n, &store), None);
        assert!(p.iter(&store).eq(0..n));
        p.update(&mut store, |i, x| {
            *x = 7;
            i == PAGE
        });
        assert_eq!(
            (p.get(PAGE, &store), p.get(PAGE + 1, &store)),
            (Some(7), Some(PAGE + 1))
        );

        // Let go, the places stay taken: later items come after them.
        p.release();
        assert_eq!(
            (
                p.len(),
                p.get(0, &store),
                p.get(n - 1, &store),
                p.iter(&store).count()
            ),
            (n, None, None, 0)
        );
        p.push(5);
        p.push(6);
        assert_eq!(
            (p.len(), p.get(n, &store), p.get(n + 1, &store)),
            (n + 2, Some(5), Some(6))
        );
        assert!(p.iter(&store).eq([5, 6]));
    }

    /// A copy shares the pages until one side changes one: then that side has its own copy of that page,
    /// with a whole page's room, and the other side still reads what it had.
    #[test]
    fn copies_share_pages_until_one_changes() {
        let mut store = RawStore::new(Keyring::new());
        let mut p = Paged::default();
        for i in 0..PAGE + 5 {
            p.push(i);
        }
        let copy = p.clone();
        let shared = |a: &Paged<usize>, b: &Paged<usize>, k: usize| match (&a.pages[k], &b.pages[k]) {
            (Page::Held(x), Page::Held(y)) => Arc::ptr_eq(x, y),
            _ => false,
        };
        assert!(shared(&p, &copy, 0) && shared(&p, &copy, 1));
        p.push(7);
        p.update(&mut store, |i, x| {
            *x = 99;
            i == 1
        });
        assert!(!shared(&p, &copy, 0) && !shared(&p, &copy, 1));
        assert!(p
            .pages
            .iter()
            .all(|page| matches!(page, Page::Held(x) if x.capacity() == PAGE)));
        assert_eq!(
            (p.get(1, &store), p.get(PAGE + 5, &store), p.len()),
            (Some(99), Some(7), PAGE + 6)
        );
        assert_eq!(
            (copy.get(1, &store), copy.get(PAGE + 5, &store), copy.len()),
            (Some(1), None, PAGE + 5)
        );
        assert!(copy.iter(&store).eq(0..PAGE + 5));
    }

    /// Item `i` of [`spilled`]'s lists: ~100 bytes.
    fn item(i: usize) -> String {
        format!("{i:0100}")
    }

    /// `n` items pushed into a list whose full pages go to a store that spills into memory.
    fn spilled(n: usize) -> (Arc<MemorySpill>, RawStore, Paged<String>) {
        let spill = Arc::new(MemorySpill::default());
        let mut store = RawStore::new(Keyring::new());
        store.set_spill(spill.clone());
        let mut p = Paged::default();
        for i in 0..n {
            p.push(item(i));
            p.store_full(&mut store);
        }
        (spill, store, p)
    }

    /// With a spill, every full page goes to the store, which writes its full chunks out, so memory
    /// holds the page being filled and one chunk. Items come back by place, in order, after a change
    /// to a stored page, and from a copy (a live UI's).
    #[test]
    fn full_pages_go_to_the_spill_and_come_back() {
        // Past two of the store's chunks (256 KiB).
        let n = 700 * PAGE + 3;
        let (spill, mut store, mut p) = spilled(n);
        assert_eq!(p.held_pages(), 1, "only the page being filled");
        assert!(store.held_bytes() < 300_000, "{} bytes held", store.held_bytes());
        assert!(spill.bytes.lock().expect("spill").len() > 500_000);
        assert!((0..n)
            .rev()
            .step_by(97)
            .all(|i| p.get(i, &store) == Some(item(i))));
        assert!(p.iter(&store).eq((0..n).map(item)));
        let copy = (p.clone(), store.clone());

        p.update(&mut store, |i, x| {
            let change = i % PAGE == 5;
            if change {
                *x = "changed".into();
            }
            change
        });
        let now = |i| if i % PAGE == 5 { "changed".into() } else { item(i) };
        assert!(p.iter(&store).eq((0..n).map(now)));
        assert_eq!(p.get(2 * PAGE + 5, &store).as_deref(), Some("changed"));
        assert!(
            copy.0.iter(&copy.1).eq((0..n).map(item)),
            "the copy reads what it had"
        );
        assert_eq!(store.errors(), 0);
    }

    /// A stored page that cannot be read back, or whose bytes changed so that they no longer decode,
    /// gives no items and is counted in the store's errors; the other pages still come back.
    #[test]
    fn an_unreadable_page_gives_nothing_and_is_counted() {
        let n = 700 * PAGE;
        let (spill, store, p) = spilled(n);
        // A string's length, near the start of the first page's bytes, made larger than the page.
        spill.bytes.lock().expect("spill")[3] = 0x7f;
        assert_eq!(p.get(0, &store), None);
        assert_eq!(p.get(PAGE, &store), Some(item(PAGE)));
        assert_eq!(p.iter(&store).count(), n - PAGE);
        assert!(store.errors() >= 2, "{}", store.errors());
    }
}
