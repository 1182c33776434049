//! A list that grows a page at a time, for the tables that only grow during a read (what folding keeps of
//! every finished session, allocation and finding). A `Vec` doubles: it holds up to twice what it keeps,
//! and while it moves to a bigger buffer both are alive, so its peak is up to three times its content. A
//! page is allocated once and never moves.

/// Items per page: a page of the largest item kept this way (a folded allocation, ~100 bytes) is ~100 KB.
const PAGE: usize = 1024;

#[derive(Clone, Debug)]
pub(crate) struct Paged<T> {
    pages: Vec<Vec<T>>,
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

impl<T> Paged<T> {
    pub(crate) fn push(&mut self, x: T) {
        match self.pages.last_mut() {
            Some(page) if page.len() < PAGE => page.push(x),
            _ => {
                let mut page = Vec::with_capacity(PAGE);
                page.push(x);
                self.pages.push(page);
            }
        }
        self.len += 1;
    }

    /// The item at place `i`; None past the end or once let go.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let i = i.checked_sub(self.base)?;
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let i = i.checked_sub(self.base)?;
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    /// Places given out so far, let go ones included: the next item's place.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The items not let go, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flatten()
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
}
