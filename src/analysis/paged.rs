//! A list that grows a page at a time, for the tables that only grow during a read (what folding keeps of
//! every finished session, allocation and finding). A `Vec` doubles: it holds up to twice what it keeps,
//! and while it moves to a bigger buffer both are alive, so its peak is up to three times its content. A
//! page is allocated once and never moves.

/// Items per page: a page of the largest item kept this way (a folded allocation, ~100 bytes) is ~100 KB.
const PAGE: usize = 1024;

#[derive(Clone, Debug)]
pub(crate) struct Paged<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged {
            pages: Vec::new(),
            len: 0,
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

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flatten()
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
    }
}
