//! Paging for list methods (behaviour.md K3): `page ≥ 1`, `1 ≤ page_size ≤ 100` is checked by
//! the edge; the store only turns a page into `LIMIT`/`OFFSET` and answers `(items, total)`.

use serde::{Deserialize, Serialize};

/// One page of a list, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub page: u32,
    pub page_size: u32,
}

impl Page {
    pub const fn new(page: u32, page_size: u32) -> Self {
        Self { page, page_size }
    }

    /// `LIMIT` of the page.
    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }

    /// `OFFSET` of the page; page 0 is read as page 1.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page.max(1)) - 1) * i64::from(self.page_size)
    }
}

impl Default for Page {
    /// Page 1 of 20, the default of most list routes.
    fn default() -> Self {
        Self::new(1, 20)
    }
}

/// A page of items and the total number of items matching the filter.
pub type Paged<T> = (Vec<T>, i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_offset() {
        assert_eq!(Page::new(1, 20).offset(), 0);
        assert_eq!(Page::new(3, 50).offset(), 100);
        assert_eq!(Page::new(0, 10).offset(), 0);
        assert_eq!(
            Page::new(u32::MAX, 100).offset(),
            (i64::from(u32::MAX) - 1) * 100
        );
        assert_eq!(Page::new(2, 7).limit(), 7);
    }
}
