//! The Raft log as the core sees it: the stable part ([`MemoryStorage`]) plus an unstable
//! tail of entries (or a snapshot) not yet persisted, and the commit and apply cursors.
//!
//! ```text
//!   snapshot.index   first_index            unstable.offset           last_index
//!        |               |   stable entries     |   unstable entries      |
//!   -----+---------------+----------------------+-------------------------+
//!                      applied <= committed <= last_index
//! ```
//! The log-matching rule lives here: [`RaftLog::maybe_append`] accepts entries only after
//! (`index`, `log_term`) matches, truncates a conflicting suffix (never a committed entry),
//! and [`RaftLog::find_conflict_by_term`] computes the fast-backtracking hint.

use super::message::{Entry, Snapshot};
use super::storage::{limit_size, LogError, MemoryStorage};

/// Entries (or a snapshot) accepted but not yet persisted.
#[derive(Clone, Debug, Default)]
struct Unstable {
    /// A snapshot received from the leader, waiting to be persisted and installed.
    snapshot: Option<Snapshot>,
    /// Invariant: `entries[i].index == offset + i`.
    entries: Vec<Entry>,
    /// Index of the first unstable entry.
    offset: u64,
}

impl Unstable {
    fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.meta.index + 1)
    }
    fn maybe_last_index(&self) -> Option<u64> {
        match self.entries.last() {
            Some(e) => Some(e.index),
            None => self.snapshot.as_ref().map(|s| s.meta.index),
        }
    }
    fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            return self
                .snapshot
                .as_ref()
                .filter(|s| s.meta.index == index)
                .map(|s| s.meta.term);
        }
        let last = self.maybe_last_index()?;
        if index > last {
            return None;
        }
        Some(self.entries[(index - self.offset) as usize].term)
    }
    fn truncate_and_append(&mut self, new: &[Entry]) {
        let after = new[0].index;
        if after == self.offset + self.entries.len() as u64 {
            self.entries.extend_from_slice(new);
        } else if after <= self.offset {
            // Replaces the whole unstable tail (and, once persisted, the stable suffix).
            self.offset = after;
            self.entries = new.to_vec();
        } else {
            self.entries.truncate((after - self.offset) as usize);
            self.entries.extend_from_slice(new);
        }
    }
}

/// The log with commit and apply cursors.
#[derive(Clone, Debug)]
pub struct RaftLog {
    /// Persisted snapshot, entries and hard state.
    pub storage: MemoryStorage,
    unstable: Unstable,
    /// Invariant: `applied <= committed <= last_index()`; never decreases.
    committed: u64,
    /// Invariant: `applied <= committed`; the application has applied everything up to here.
    applied: u64,
}

impl RaftLog {
    /// A log over `storage`, committed per its hard state and applied up to its snapshot.
    pub fn new(storage: MemoryStorage) -> RaftLog {
        let snap_index = storage.snapshot().meta.index;
        let committed = storage.hard_state.commit.max(snap_index);
        assert!(
            committed <= storage.last_index(),
            "hard state commit {committed} is past the last stored index {}",
            storage.last_index()
        );
        let offset = storage.last_index() + 1;
        RaftLog {
            storage,
            unstable: Unstable {
                snapshot: None,
                entries: Vec::new(),
                offset,
            },
            committed,
            applied: snap_index,
        }
    }

    /// Highest index known committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Highest index the application has applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// First index whose entry is held (stable or unstable).
    pub fn first_index(&self) -> u64 {
        self.unstable
            .maybe_first_index()
            .unwrap_or_else(|| self.storage.first_index())
    }

    /// Index of the last entry.
    pub fn last_index(&self) -> u64 {
        self.unstable
            .maybe_last_index()
            .unwrap_or_else(|| self.storage.last_index())
    }

    /// Term of the entry at `index`.
    pub fn term(&self, index: u64) -> Result<u64, LogError> {
        let dummy = self.first_index() - 1;
        if index < dummy {
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
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        self.storage.term(index)
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .expect("the last index always has a term")
    }

    /// True if the entry at `index` has term `term`.
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index) == Ok(term)
    }

    /// Voting rule (§5.4.1): is a log ending at (`last_index`, `last_term`) at least as
    /// up to date as ours?
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Follower side of AppendEntries: if our entry at `index` has term `log_term`, append
    /// `entries` (truncating a conflicting suffix) and commit up to `min(commit, last new)`.
    /// Returns the index of the last new entry, or None when the consistency check fails.
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        commit: u64,
        entries: &[Entry],
    ) -> Option<u64> {
        if !self.match_term(index, log_term) {
            return None;
        }
        let last_new = index + entries.len() as u64;
        let conflict = self.find_conflict(entries);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "entry {conflict} conflicts with committed entry (committed {})",
                self.committed
            );
            let start = (conflict - index - 1) as usize;
            self.append(&entries[start..]);
        }
        self.commit_to(commit.min(last_new));
        Some(last_new)
    }

    /// First index in `entries` whose term differs from ours (or that we lack); 0 if none.
    fn find_conflict(&self, entries: &[Entry]) -> u64 {
        for e in entries {
            if !self.match_term(e.index, e.term) {
                return e.index;
            }
        }
        0
    }

    /// Fast backtracking: the largest index `<= index` whose term is `<= term`, and that term
    /// (0 if compacted). The leader then skips a whole conflicting term per round trip.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = index;
        loop {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                Ok(t) => return (i, t),
                Err(_) => return (i, 0),
            }
        }
    }

    /// Appends entries to the unstable tail (the leader's own proposals, or accepted ones).
    pub fn append(&mut self, entries: &[Entry]) -> u64 {
        if let Some(first) = entries.first() {
            assert!(
                first.index > self.committed,
                "appending at {} would overwrite committed entries (committed {})",
                first.index,
                self.committed
            );
            self.unstable.truncate_and_append(entries);
        }
        self.last_index()
    }

    /// Entries from `lo` to the end, at most `max_bytes` of payload (at least one).
    pub fn entries(&self, lo: u64, max_bytes: u64) -> Result<Vec<Entry>, LogError> {
        if lo > self.last_index() {
            return Ok(Vec::new());
        }
        self.slice(lo, self.last_index() + 1, max_bytes)
    }

    /// Entries in `[lo, hi)`, at most `max_bytes` of payload (at least one).
    pub fn slice(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, LogError> {
        if lo < self.first_index() {
            return Err(LogError::Compacted {
                index: lo,
                first_index: self.first_index(),
            });
        }
        assert!(
            hi <= self.last_index() + 1,
            "slice [{lo}, {hi}) past last index {}",
            self.last_index()
        );
        if lo >= hi {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let split = self.unstable.offset;
        if lo < split {
            out = self.storage.entries(lo, hi.min(split), max_bytes)?;
            if (out.len() as u64) < hi.min(split) - lo {
                return Ok(out); // size limit reached inside stable part
            }
        }
        if hi > split {
            let from = lo.max(split);
            let u = &self.unstable.entries[(from - split) as usize..(hi - split) as usize];
            out.extend_from_slice(u);
        }
        Ok(limit_size(&out, max_bytes))
    }

    /// Last index whose persisted entry is current: stable storage may still hold a stale
    /// suffix that a newer (unstable) append replaced.
    pub fn persisted_last_index(&self) -> u64 {
        (self.unstable.offset - 1).min(self.storage.last_index())
    }

    /// Unstable entries: to persist in the next Ready.
    pub fn unstable_entries(&self) -> &[Entry] {
        &self.unstable.entries
    }

    /// The unstable snapshot, if one waits to be persisted.
    pub fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.snapshot.as_ref()
    }

    /// The latest snapshot, unstable first.
    pub fn snapshot(&self) -> &Snapshot {
        self.unstable
            .snapshot
            .as_ref()
            .unwrap_or_else(|| self.storage.snapshot())
    }

    /// Committed entries the application has not applied yet (none while a snapshot waits).
    pub fn next_committed_entries(&self, max_bytes: u64) -> Vec<Entry> {
        if self.unstable.snapshot.is_some() {
            return Vec::new();
        }
        let lo = (self.applied + 1).max(self.first_index());
        if lo > self.committed {
            return Vec::new();
        }
        self.slice(lo, self.committed + 1, max_bytes)
            .expect("unapplied entries are never compacted")
    }

    /// True if the next Ready would carry committed entries.
    pub fn has_next_committed_entries(&self) -> bool {
        self.unstable.snapshot.is_none()
            && self.committed > self.applied.max(self.first_index() - 1)
    }

    /// Advances the commit index (never backwards).
    pub fn commit_to(&mut self, commit: u64) {
        if commit > self.committed {
            assert!(
                commit <= self.last_index(),
                "commit to {commit} is past the last index {}",
                self.last_index()
            );
            self.committed = commit;
        }
    }

    /// Leader commit rule (§5.4.2): commit `index` only if its entry is from `term`.
    pub fn maybe_commit(&mut self, index: u64, term: u64) -> bool {
        if index > self.committed && self.term(index) == Ok(term) {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Records that the application applied up to `index`.
    pub fn applied_to(&mut self, index: u64) {
        if index == 0 {
            return;
        }
        assert!(
            index <= self.committed && index >= self.applied,
            "applied_to({index}) outside [applied {}, committed {}]",
            self.applied,
            self.committed
        );
        self.applied = index;
    }

    /// Entries up to (`index`, `term`) are now persisted: move them into storage.
    pub fn stable_to(&mut self, index: u64, term: u64) {
        assert!(
            self.unstable.snapshot.is_none(),
            "entries up to {index} persisted before the snapshot that precedes them"
        );
        if index < self.unstable.offset || self.unstable.maybe_term(index) != Some(term) {
            return; // a newer append replaced them; they will come in a later Ready
        }
        let n = (index - self.unstable.offset + 1) as usize;
        let persisted: Vec<Entry> = self.unstable.entries.drain(..n).collect();
        self.storage.append(&persisted);
        self.unstable.offset = index + 1;
    }

    /// The unstable snapshot at `index` is now persisted: install it into storage.
    pub fn stable_snapshot_to(&mut self, index: u64) {
        if let Some(s) = self.unstable.snapshot.take() {
            if s.meta.index == index {
                self.storage.apply_snapshot(s);
                if self.applied < index {
                    self.applied = index;
                }
            } else {
                self.unstable.snapshot = Some(s);
            }
        }
    }

    /// Replaces the log with a snapshot from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.committed = snapshot.meta.index;
        self.unstable.offset = snapshot.meta.index + 1;
        self.unstable.entries.clear();
        self.unstable.snapshot = Some(snapshot);
    }
}
