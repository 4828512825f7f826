//! The event history: the last [`HISTORY_CAPACITY`] events (user writes, refreshes, expiries and
//! internal writes), scanned by watches that ask for a past `waitIndex`.

use std::collections::VecDeque;

use super::event::{Action, Event};
use super::path;

/// How many events etcd keeps.
pub const HISTORY_CAPACITY: usize = 1000;

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub event: Event,
    /// Internal-namespace writes: kept so indexes stay contiguous, never matched by a watch.
    pub internal: bool,
}

/// Invariant: entries have contiguous indexes (each one exactly one above the previous) and
/// there are at most HISTORY_CAPACITY of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
}

/// A scan asked for an index older than the oldest event kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCleared {
    pub oldest_index: u64,
}

impl History {
    /// Appends an event, dropping the oldest when full.
    pub fn push(&mut self, entry: HistoryEntry) {
        if let Some(last) = self.entries.back() {
            assert_eq!(
                entry.event.index(),
                last.event.index() + 1,
                "history must have contiguous indexes"
            );
        }
        if self.entries.len() == HISTORY_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The index of the oldest event kept (0 when empty, like etcd).
    pub fn oldest_index(&self) -> u64 {
        self.entries.front().map_or(0, |entry| entry.event.index())
    }

    /// The index of the newest event kept (0 when empty).
    pub fn newest_index(&self) -> u64 {
        self.entries.back().map_or(0, |entry| entry.event.index())
    }

    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first event with index >= `since_index` that a watch on `key` matches, skipping
    /// refreshes and internal writes. Hidden keys DO match here (unlike live notification).
    /// A directory delete/expire matches watches on the directory and below it (etcd 3.4 used a
    /// plain string prefix, which also matched sibling keys such as `/foobar` for `/foo`).
    pub fn scan(
        &self,
        key: &str,
        recursive: bool,
        since_index: u64,
    ) -> Result<Option<&Event>, HistoryCleared> {
        let oldest_index = self.oldest_index();
        if since_index < oldest_index {
            return Err(HistoryCleared { oldest_index });
        }
        if since_index > self.newest_index() {
            return Ok(None);
        }
        let skip = usize::try_from(since_index - oldest_index).unwrap_or(usize::MAX);
        let descendant_prefix = path::child_prefix(key);
        for entry in self.entries.iter().skip(skip) {
            let event = &entry.event;
            if entry.internal || event.refresh {
                continue;
            }
            let event_key = event.node.key.as_str();
            let mut matches = event_key == key;
            if recursive && event_key.starts_with(&descendant_prefix) {
                matches = true;
            }
            if matches!(event.action, Action::Delete | Action::Expire) {
                if let Some(prev) = &event.prev_node {
                    if prev.dir && path::is_self_or_descendant(key, &prev.key) {
                        matches = true;
                    }
                }
            }
            if matches {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}
