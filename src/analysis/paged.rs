//! A list that grows a page at a time, for the tables that only grow during a read (what folding keeps of
//! every finished session, allocation and finding). A `Vec` doubles: it holds up to twice what it keeps,
//! and while it moves to a bigger buffer both are alive, so its peak is up to three times its content. A
//! page is allocated once and never moves.
//!
//! Pages are shared between copies (`Arc`): a live run's UI snapshot copies these lists every
//! half-second or so, and copying every item was O(what folded) each time (a million folded sessions'
//! records alone are 48 MB). Now it copies a pointer per page; a page changed while a copy holds it
//! (the last, as items are pushed, or one whose item is updated) is copied first, once.

use std::sync::Arc;

/// Items per page: a page of the largest item kept this way (a folded allocation, ~100 bytes) is ~100 KB.
const PAGE: usize = 1024;

#[derive(Clone, Debug)]
pub(crate) struct Paged<T> {
    pages: Vec<Arc<Vec<T>>>,
    /// Places given out, let go ones included.
    len: usize,
    /// Places below this were let go ([`Paged::release`]).
    base: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged {
            pages: Vec::new(),
            len: 0,
            base: 0,
        }
    }
}

impl<T: Clone> Paged<T> {
    pub(crate) fn push(&mut self, x: T) {
        match self.pages.last_mut() {
            Some(page) if page.len() < PAGE => writable(page).push(x),
            _ => {
                let mut page = Vec::with_capacity(PAGE);
                page.push(x);
                self.pages.push(Arc::new(page));
            }
        }
        self.len += 1;
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let i = i.checked_sub(self.base)?;
        writable(self.pages.get_mut(i / PAGE)?).get_mut(i % PAGE)
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

impl<T> Paged<T> {
    /// The item at place `i`; None past the end or once let go.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let i = i.checked_sub(self.base)?;
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    /// Places given out so far, let go ones included: the next item's place.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The items not let go, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flat_map(|page| page.iter())
    }

    /// Lets go of every item so far: their places give None from now on, and later items take the
    /// places after them.
    pub(crate) fn release(&mut self) {
        self.pages = Vec::new();
        self.base = self.len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items come back by place and in order across page boundaries, and a place past the end is None.
    #[test]
    fn items_keep_their_places_across_pages() {
        let mut p = Paged::default();
        let n = 3 * PAGE + 7;
        for i in 0..n {
            p.push(i);
        }
        assert_eq!(p.len(), n);
        assert!((0..n).all(|i| p.get(i) == Some(&i)));
        assert_eq!(p.get(n), None);
        assert!(p.iter().copied().eq(0..n));
        assert_eq!(p.pages.len(), 4);
        assert!(p.pages.iter().all(|page| page.capacity() == PAGE));
        *p.get_mut(PAGE).unwrap() = 7;
        assert_eq!(p.get(PAGE), Some(&7));
        assert_eq!(p.get_mut(n), None);

        // Let go, the places stay taken: later items come after them.
        p.release();
        assert_eq!(
            (p.len(), p.get(0), p.get(n - 1), p.iter().count()),
            (n, None, None, 0)
        );
        p.push(5);
        p.push(6);
        assert_eq!((p.len(), p.get(n), p.get(n + 1)), (n + 2, Some(&5), Some(&6)));
        assert!(p.iter().copied().eq([5, 6]));
    }

    /// A copy shares the pages until one side changes one: then that side has its own copy of that page,
    /// with a whole page's room, and the other side still reads what it had.
    #[test]
    fn copies_share_pages_until_one_changes() {
        let mut p = Paged::default();
        for i in 0..PAGE + 5 {
            p.push(i);
        }
        let copy = p.clone();
        assert!(p.pages.iter().zip(&copy.pages).all(|(a, b)| Arc::ptr_eq(a, b)));
        p.push(7);
        *p.get_mut(1).unwrap() = 99;
        assert!(!Arc::ptr_eq(&p.pages[0], &copy.pages[0]) && !Arc::ptr_eq(&p.pages[1], &copy.pages[1]));
        assert!(p.pages.iter().all(|page| page.capacity() == PAGE));
        assert_eq!(
            (p.get(1), p.get(PAGE + 5), p.len()),
            (Some(&99), Some(&7), PAGE + 6)
        );
        assert_eq!(
            (copy.get(1), copy.get(PAGE + 5), copy.len()),
            (Some(&1), None, PAGE + 5)
        );
        assert!(copy.iter().copied().eq(0..PAGE + 5));
    }
}
