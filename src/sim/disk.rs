//! The simulated disk of one node: what was written, and what of it was made durable.
//!
//! Fault model: a write lands in the volatile image; `sync` makes the volatile image
//! durable; a crash throws the volatile image away and keeps the durable one. So a crash
//! between writing a Ready and syncing it loses that Ready entirely, as a real crash before
//! fsync may. (Torn writes inside one record are the WAL's business and tested there.)

use crate::raft::{Entry, HardState, MemoryStorage, Ready, Snapshot};

/// What a disk holds: the same three parts as [`MemoryStorage`].
#[derive(Clone, Debug, Default)]
pub struct DiskImage {
    /// Term, vote, commit.
    pub hard_state: HardState,
    /// Latest snapshot.
    pub snapshot: Snapshot,
    /// Invariant: consecutive indexes starting at `snapshot.meta.index + 1`.
    pub entries: Vec<Entry>,
}

impl DiskImage {
    fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        let keep = first.index.saturating_sub(self.snapshot.meta.index + 1) as usize;
        assert!(
            keep <= self.entries.len(),
            "disk append at {} leaves a gap after {} entries",
            first.index,
            self.entries.len()
        );
        self.entries.truncate(keep);
        self.entries.extend_from_slice(new);
    }
}

/// A node's disk: a volatile image (written) and a durable one (synced).
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    written: DiskImage,
    durable: DiskImage,
    /// Number of syncs (each one an fsync on a real disk).
    pub syncs: u64,
}

impl SimDisk {
    /// A disk holding a fresh node's bootstrap state.
    pub fn new(storage: &MemoryStorage) -> SimDisk {
        let image = DiskImage {
            hard_state: storage.hard_state,
            snapshot: storage.snapshot().clone(),
            entries: storage.entries_all().to_vec(),
        };
        SimDisk {
            written: image.clone(),
            durable: image,
            syncs: 0,
        }
    }

    /// Step 1 of the Ready contract, first half: write (not yet durable).
    pub fn write(&mut self, rd: &Ready) {
        if let Some(s) = &rd.snapshot {
            self.written.snapshot = s.clone();
            self.written.entries.clear();
        }
        self.written.append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            self.written.hard_state = hs;
        }
    }

    /// Step 1, second half: make everything written durable.
    pub fn sync(&mut self) {
        self.durable = self.written.clone();
        self.syncs += 1;
    }

    /// A crash: whatever was not synced is gone.
    pub fn crash(&mut self) {
        self.written = self.durable.clone();
    }

    /// A snapshot file written and synced at once (compaction), dropping covered entries.
    pub fn compact(&mut self, snapshot: &Snapshot) {
        for image in [&mut self.written, &mut self.durable] {
            let drop = snapshot
                .meta
                .index
                .saturating_sub(image.snapshot.meta.index) as usize;
            image.entries.drain(..drop.min(image.entries.len()));
            image.snapshot = snapshot.clone();
        }
    }

    /// The durable image, as the storage a restarted node starts from.
    pub fn recover(&self) -> MemoryStorage {
        let d = &self.durable;
        MemoryStorage::from_parts(d.hard_state, d.snapshot.clone(), d.entries.clone())
    }

    /// The durable hard state.
    pub fn durable_hard_state(&self) -> HardState {
        self.durable.hard_state
    }
}
