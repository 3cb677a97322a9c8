//! The rows an import session has written so far, to reject a second row
//! with the same key in one file.
//!
//! Every row the session accepts is looked up or inserted by its key anyway,
//! which yields its rowid; so the session remembers accepted rows by rowid
//! (with the line they came from) instead of keeping every key as a string.
//! Rowids are dense, so they are kept in pages of 4096 lines: a sequential
//! import costs 8 bytes per row and no hashing of keys, and a few scattered
//! updates cost a few pages.

use std::collections::HashMap;

use crate::keys::BuildMapHasher;

const PAGE_BITS: u32 = 12;
const PAGE_LEN: usize = 1 << PAGE_BITS;
/// Marks a rowid the session has not written.
const UNSEEN: u64 = u64::MAX;

/// Rows of one table written in this session: rowid → line.
#[derive(Debug, Default, Clone)]
pub(super) struct SeenRows {
    pages: HashMap<i64, Box<[u64]>, BuildMapHasher>,
}

impl SeenRows {
    /// Notes that row `rowid` was written from `line`.
    pub(super) fn note(&mut self, rowid: i64, line: u64) {
        let page = self
            .pages
            .entry(rowid >> PAGE_BITS)
            .or_insert_with(|| vec![UNSEEN; PAGE_LEN].into_boxed_slice());
        page[slot(rowid)] = line;
    }

    /// The line from which row `rowid` was written in this session, if it was.
    pub(super) fn line_of(&self, rowid: i64) -> Option<u64> {
        let line = self.pages.get(&(rowid >> PAGE_BITS))?[slot(rowid)];
        (line != UNSEEN).then_some(line)
    }
}

fn slot(rowid: i64) -> usize {
    (rowid as u64 as usize) & (PAGE_LEN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_remembered_with_their_line() {
        let mut seen = SeenRows::default();
        for (rowid, line) in [(1, 2), (4095, 3), (4096, 4), (9_000_000_000, 5), (-7, 6)] {
            assert_eq!(seen.line_of(rowid), None);
            seen.note(rowid, line);
            assert_eq!(seen.line_of(rowid), Some(line));
        }
        assert_eq!(seen.line_of(2), None);
        assert_eq!(seen.line_of(4097), None);
        assert_eq!(seen.line_of(0), None);
        assert_eq!(seen.pages.len(), 4);
    }
}
