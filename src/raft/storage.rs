//! The stable log: what the node has persisted, held in memory.
//!
//! [`MemoryStorage`] is the core's view of the durable state: the latest snapshot, the entries
//! after it, and the hard state. The node writes a Ready's entries to its WAL first and then
//! calls `advance`, which moves them here; on restart the node rebuilds a `MemoryStorage`
//! from its WAL and snapshot file and hands it to `RawNode::new`. Entries not yet persisted
//! live in the core's unstable tail (see [`super::log`]), never here.

use super::message::{ConfState, Entry, HardState, Snapshot, SnapshotMeta};

/// Why a log position could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogError {
    /// The index is at or before the snapshot: its entry was discarded by compaction.
    Compacted {
        /// Index asked for.
        index: u64,
        /// First index still held.
        first_index: u64,
    },
    /// The index is past the last entry.
    Unavailable {
        /// Index asked for.
        index: u64,
        /// Last index held.
        last_index: u64,
    },
}

/// Snapshot + entries + hard state, in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    /// Persisted term, vote and commit index.
    pub hard_state: HardState,
    /// Invariant: covers every index up to `snapshot.meta.index`; index 0 is the empty
    /// bootstrap snapshot holding the initial configuration.
    snapshot: Snapshot,
    /// Invariant: `entries[i].index == snapshot.meta.index + 1 + i` and terms never decrease.
    entries: Vec<Entry>,
}

impl MemoryStorage {
    /// A fresh log whose bootstrap configuration is `conf_state` (an empty snapshot at index 0).
    pub fn new_with_conf_state(conf_state: ConfState) -> MemoryStorage {
        MemoryStorage {
            hard_state: HardState::default(),
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index: 0,
                    term: 0,
                    conf_state,
                },
                data: Vec::new(),
            },
            entries: Vec::new(),
        }
    }

    /// A log rebuilt from persisted parts (used after a restart).
    pub fn from_parts(
        hard_state: HardState,
        snapshot: Snapshot,
        entries: Vec<Entry>,
    ) -> MemoryStorage {
        let mut s = MemoryStorage {
            hard_state,
            snapshot,
            entries: Vec::new(),
        };
        if !entries.is_empty() {
            s.append(&entries);
        }
        s
    }

    /// Index of the first entry held (one past the snapshot).
    pub fn first_index(&self) -> u64 {
        self.snapshot.meta.index + 1
    }

    /// Index of the last entry held (the snapshot's index if no entries follow it).
    pub fn last_index(&self) -> u64 {
        self.snapshot.meta.index + self.entries.len() as u64
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The entries after the snapshot.
    pub fn entries_all(&self) -> &[Entry] {
        &self.entries
    }

    /// Term of the entry at `index` (the snapshot's term at its own index).
    pub fn term(&self, index: u64) -> Result<u64, LogError> {
        let snap = &self.snapshot.meta;
        if index == snap.index {
            return Ok(snap.term);
        }
        if index < snap.index {
            return Err(LogError::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index > self.last_index() {
            return Err(LogError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(self.entries[(index - snap.index - 1) as usize].term)
    }

    /// Entries in `[lo, hi)`, stopping once `max_bytes` of payload is reached (at least one
    /// entry is returned if the range is not empty).
    pub fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, LogError> {
        if lo < self.first_index() {
            return Err(LogError::Compacted {
                index: lo,
                first_index: self.first_index(),
            });
        }
        assert!(
            hi <= self.last_index() + 1,
            "storage entries [{lo}, {hi}) asked past last index {}",
            self.last_index()
        );
        let offset = self.first_index();
        let slice = &self.entries[(lo - offset) as usize..(hi - offset) as usize];
        Ok(limit_size(slice, max_bytes))
    }

    /// Persists entries, replacing any held entries at or after the first new index.
    pub fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        assert!(
            first.index <= self.last_index() + 1,
            "append would leave a gap: first new index {}, last held {}",
            first.index,
            self.last_index()
        );
        // Skip what the snapshot already covers.
        let skip = self.first_index().saturating_sub(first.index) as usize;
        if skip >= new.len() {
            return;
        }
        let new = &new[skip..];
        let keep = (new[0].index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(new);
    }

    /// Replaces everything with a snapshot received from the leader.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index >= self.snapshot.meta.index,
            "snapshot at {} is older than the held snapshot at {}",
            snapshot.meta.index,
            self.snapshot.meta.index
        );
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// Takes a snapshot of the state machine at `index` (which the caller has applied) and
    /// discards the entries it covers.
    /// Returns unused capacity of the entry buffer to the allocator (after a compaction).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    pub fn compact(&mut self, index: u64, conf_state: ConfState, data: Vec<u8>) {
        assert!(
            index > self.snapshot.meta.index && index <= self.last_index(),
            "compact to {index}: must be in ({}, {}]",
            self.snapshot.meta.index,
            self.last_index()
        );
        let term = self.term(index).expect("index checked to be held");
        let drop = (index - self.snapshot.meta.index) as usize;
        self.entries.drain(..drop);
        self.snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf_state,
            },
            data,
        };
    }
}

/// The longest prefix of `entries` whose payload stays within `max_bytes` (at least one).
pub fn limit_size(entries: &[Entry], max_bytes: u64) -> Vec<Entry> {
    let mut total = 0u64;
    let mut n = 0;
    for e in entries {
        total += e.payload_bytes();
        if n > 0 && total > max_bytes {
            break;
        }
        n += 1;
    }
    entries[..n].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::EntryKind;

    fn ent(term: u64, index: u64) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data: vec![0; 10],
        }
    }

    #[test]
    fn append_truncates_conflicts_and_compact_keeps_terms() {
        let mut s = MemoryStorage::new_with_conf_state(ConfState {
            voters: vec![1],
            learners: vec![],
        });
        s.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]);
        s.append(&[ent(2, 2)]);
        assert_eq!(s.last_index(), 2);
        assert_eq!(s.term(2), Ok(2));
        s.append(&[ent(2, 3), ent(2, 4)]);
        s.compact(3, ConfState::default(), vec![]);
        assert_eq!(s.first_index(), 4);
        assert_eq!(s.term(3), Ok(2));
        assert!(matches!(s.term(2), Err(LogError::Compacted { .. })));
        assert!(matches!(s.term(5), Err(LogError::Unavailable { .. })));
        assert_eq!(s.entries(4, 5, 0).unwrap().len(), 1);
    }

    #[test]
    fn limit_size_returns_at_least_one() {
        let es = vec![ent(1, 1), ent(1, 2), ent(1, 3)];
        assert_eq!(limit_size(&es, 0).len(), 1);
        assert_eq!(limit_size(&es, 20).len(), 2);
        assert_eq!(limit_size(&es, 1000).len(), 3);
    }
}
