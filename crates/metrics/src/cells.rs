//! Where values live: each worker's slab of pages, handed out in runs of cells.
//!
//! A cell is an `AtomicU64` with exactly one writer, the worker whose slab holds it. The
//! writer adds with a relaxed load and a relaxed store (a plain `mov` pair on x86-64 and
//! AArch64: no locked instruction, no fence); the scraper reads with relaxed loads. A page
//! is aligned to 128 bytes and belongs to one worker, so no two workers ever write the same
//! cache line (nor an adjacent one that the prefetcher pairs with it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cells in a page.
pub(crate) const PAGE_CELLS: usize = 64;

/// 512 bytes of cells, aligned so that pages never share a cache line pair.
#[repr(align(128))]
pub(crate) struct Page {
    cells: [AtomicU64; PAGE_CELLS],
}

impl Page {
    fn new() -> Self {
        Page {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Consecutive cells of one series on one worker.
#[derive(Clone)]
pub(crate) struct Run {
    page: Arc<Page>,
    start: u8,
    len: u8,
}

impl Run {
    /// How many cells.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    fn cell(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < self.len());
        &self.page.cells[usize::from(self.start) + index]
    }

    /// Adds `n` (wrapping) to cell `index`. Only the worker that owns the run may call this:
    /// a second writer would lose updates (never memory safety).
    pub(crate) fn add(&self, index: usize, n: u64) {
        let cell = self.cell(index);
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets cell `index` to `value`. Any thread may: the last store wins (a level's cell,
    /// which every worker shares).
    pub(crate) fn set(&self, index: usize, value: u64) {
        self.cell(index).store(value, Ordering::Relaxed);
    }

    /// Cell `index` as last written.
    pub(crate) fn read(&self, index: usize) -> u64 {
        self.cell(index).load(Ordering::Relaxed)
    }
}

/// One worker's pages. Runs are never given back: a series lives as long as the registry,
/// and the set of series is bounded by the configuration.
#[derive(Default)]
pub(crate) struct Slab {
    pages: Vec<Arc<Page>>,
    used: usize,
}

impl Slab {
    /// `len` fresh cells (1 ≤ `len` ≤ [`PAGE_CELLS`]), in the last page if they fit.
    pub(crate) fn allocate(&mut self, len: usize) -> Run {
        let len = len.clamp(1, PAGE_CELLS);
        let page = match self.pages.last() {
            Some(page) if self.used + len <= PAGE_CELLS => page.clone(),
            _ => {
                let page = Arc::new(Page::new());
                self.pages.push(page.clone());
                self.used = 0;
                page
            }
        };
        let run = Run {
            page,
            start: self.used as u8,
            len: len as u8,
        };
        self.used += len;
        run
    }

    /// Pages allocated so far.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_fill_a_page_then_take_the_next() {
        let mut slab = Slab::default();
        let a = slab.allocate(1);
        let b = slab.allocate(35);
        assert_eq!(slab.pages(), 1);
        let c = slab.allocate(35);
        assert_eq!(slab.pages(), 2);
        a.add(0, 3);
        b.add(34, 5);
        c.add(0, 7);
        assert_eq!((a.read(0), b.read(34), c.read(0)), (3, 5, 7));
        assert_eq!(b.read(0), 0, "runs do not overlap");
        assert_eq!(std::mem::align_of::<Page>(), 128);
    }

    #[test]
    fn a_set_replaces_the_value() {
        let run = Slab::default().allocate(1);
        run.add(0, 5);
        run.set(0, 2);
        assert_eq!(run.read(0), 2);
    }

    #[test]
    fn adds_wrap() {
        let run = Slab::default().allocate(1);
        run.add(0, u64::MAX);
        run.add(0, 2);
        assert_eq!(run.read(0), 1);
    }
}
