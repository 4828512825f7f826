//! The write-ahead log: what Raft must find again after a crash (entries, hard state, snapshot
//! markers), in preallocated, memory-mapped, CRC-framed segment files.
//!
//! Files: `frame` (pure record framing), `header` (pure segment header and clean-shutdown
//! marker), `replay` (pure recovery decisions on byte slices), `writer` (the `Wal` handle and
//! all file I/O of the log), `fsutil` (preallocation, directory fsync, atomic file replacement),
//! `dir_lock` (the data-dir lock), `error`.
//!
//! # Use (the node's persist step)
//! ```no_run
//! use raftkv::snap::{Snapshot, Snapshotter};
//! use raftkv::wal::{DataDirLock, Entry, HardState, SnapshotMarker, Wal, WalOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data_dir = std::path::Path::new("/var/lib/raftkv");
//! let _lock = DataDirLock::acquire(data_dir)?; // held for the life of the process
//! let snapper = Snapshotter::open(&data_dir.join("member/snap"))?;
//! let snapshot = snapper.load_newest()?; // restore the store from it, if any
//! let (mut wal, recovered) = Wal::open(&data_dir.join("member/wal"), WalOptions::default())?;
//! // replay recovered.entries with index > snapshot index; recovered.hard_state for Raft
//! # let _ = (snapshot, recovered);
//! // Every Ready: entries + hard state, then ONE sync for the whole batch, then acknowledge.
//! wal.append_entries(&[Entry { index: 1, term: 1, kind: 0, data: b"cmd".to_vec() }])?;
//! wal.set_hard_state(HardState { term: 1, vote: 1, commit: 1 })?;
//! wal.sync()?;
//! // Compaction: snapshot file first, then the marker, then release.
//! snapper.save(&Snapshot { index: 1, term: 1, data: b"store".to_vec() })?;
//! wal.mark_snapshot(SnapshotMarker { index: 1, term: 1 })?;
//! wal.sync()?;
//! wal.release_before(1)?;
//! snapper.release_older_than(1)?;
//! wal.close_clean()?; // on a graceful stop
//! # Ok(())
//! # }
//! ```
//!
//! # Directory
//! ```text
//! <wal dir>/0000000000000001-0000000000000001.wal   segment id 1, first index 1 (16 hex digits each)
//! <wal dir>/0000000000000002-00000000000003e9.wal   segment id 2, started when last index was 1000
//! <wal dir>/clean-shutdown                          present only between close_clean and the next open
//! <wal dir>/*.tmp                                   a creation interrupted by a crash; deleted at open
//! ```
//!
//! # Segment file (all integers little endian)
//! Every segment is preallocated to `segment_size_bytes` (fallocate, or zeros written when the
//! file system has no fallocate; never sparse: a store into a hole of a mapped file raises SIGBUS
//! on ENOSPC). A new segment is written to `<name>.tmp`, preallocated, given its header,
//! fdatasync'd, renamed, and the directory fsync'd; only then is it used.
//! ```text
//! offset  size  segment header (64 bytes)
//!  0       8    magic "RKVWAL\r\n"
//!  8       4    format version = 1
//! 12       4    reserved, zero
//! 16       8    log id: random per log; all segments of one log share it
//! 24       8    segment id: 1, 2, 3, ... (consecutive)
//! 32       8    first index: the log's last index + 1 when the segment was started
//! 40       8    segment size in bytes (the file must be exactly this long)
//! 48       8    previous batch: sequence number of the last batch committed before this segment
//! 56       4    previous chain: chained CRC at the end of the previous segment (0 for the first)
//! 60       4    header CRC: CRC-32/IEEE of bytes 0..60; also the chain seed of this segment
//! 64       ...  frames, each starting at a multiple of 8, then zeros up to the segment size
//! ```
//! ```text
//! offset  size  frame (24-byte header + payload + 0..7 zero bytes of padding to a multiple of 8)
//!  0       4    payload length in bytes (<= 2^30)
//!  4       1    record type: 1 Entry, 2 HardState, 3 SnapshotMarker, 4 CleanShutdown, 5 Commit
//!                (0 never written: an all-zero header is unwritten space)
//!  5       3    reserved, zero
//!  8       8    batch sequence number (the group-commit batch the record belongs to)
//! 16       4    record CRC: CRC-32/IEEE of frame bytes 0..16, the payload, then bytes 20..24
//!                (so a tear anywhere in the frame, chain field included, fails this check)
//! 20       4    chained CRC: CRC-32/IEEE of (previous chained CRC, content CRC) as 8 LE bytes,
//!                content CRC = CRC-32/IEEE of frame bytes 0..16 and the payload; the previous
//!                value of the first frame is the segment's header CRC
//! 24       n    payload:
//!                Entry          index u64, term u64, kind u8, data (n - 17 bytes, opaque)
//!                HardState      term u64, vote u64, commit u64
//!                SnapshotMarker index u64, term u64
//!                CleanShutdown  last index u64
//!                Commit         (empty) ends batch `batch sequence number`
//! ```
//! CRC-32/IEEE is the zlib/Ethernet CRC computed by crc32fast (not CRC-32C as in etcd).
//!
//! Clean-shutdown marker file `clean-shutdown` (48 bytes): magic "RKVCLEAN", version u32, CRC
//! u32 (CRC-32/IEEE of the CRC of bytes 0..12 followed by bytes 16..48), log id u64, last segment
//! id u64, end offset u64 (just past the last Commit), last index u64.
//!
//! # Writing
//! Appends copy frames into the mmap of the active segment; `sync` appends one Commit frame for
//! the batch and issues ONE msync(MS_SYNC) over the dirty page range (on Linux that is an
//! fdatasync of the range, including the device cache flush). A batch is durable exactly when
//! that msync returns. A record is applied at replay only if its batch's Commit is present and
//! the chain from the segment start is unbroken. When a segment is full, the batch so far is
//! committed and synced in the old segment, the next segment is created (see above) and starts
//! with copies of the hard state and snapshot marker, so `release_before` may delete any prefix
//! of segments. 160 bytes stay free at the end of every segment so that a Commit, one snapshot
//! marker and a clean shutdown always fit: a full WAL can still record the snapshot that lets it
//! release space. Releasing deletes segments oldest first, fsyncing the directory after each, so a
//! crash never leaves a hole. Any failed write step (msync, fsync, rename, create) poisons the
//! handle: every later call returns `WalError::Poisoned` with the first error (an fsync error is
//! never retried as if it had succeeded). Only `NoSpace` (nothing written, nothing changed) and
//! refused input leave the handle usable. At open, the last segment is msync'd and the directory
//! fsync'd before the recovered log is returned, since a process killed inside a sync may have
//! left committed-looking frames in the page cache only.
//!
//! # Recovery
//! Segments are replayed in id order, each checked against the previous one (log id, id + 1,
//! first index = last index + 1, previous batch, previous chain). Entries overwrite the tail
//! (index <= last) as Raft truncation does; a hole is damage. In every segment but the last,
//! anything other than committed frames followed by zeros is damage. In the last segment, bytes
//! after the last Commit (uncommitted records, a bad frame, non-zero garbage) are a torn tail
//! (a crash during the last batch): they are cut and zeroed durably, UNLESS a frame further on
//! passes its own CRC and belongs to another batch, or the frame where replay stopped passes its
//! own CRC but not the chain (a crash tears frames; it does not move whole frames). A later batch is only written after the
//! earlier one was synced, so that is proof the bad bytes were durable once: an error naming
//! file and offset, never a silent truncation. A segment whose length differs from its header
//! was truncated: damage. If the clean-shutdown marker exists, the log must end exactly where it
//! says, with a CleanShutdown record and no torn bytes; otherwise damage.
//!
//! # Assumptions about the disk
//! - fdatasync/msync(MS_SYNC) returning 0 means the range (and the metadata to read it back) is
//!   on stable storage; directory fsync makes renames and removals durable.
//! - Before that, any page (and any 512-byte sector within it) of the unsynced range may be
//!   lost, zeroed, torn or partly written, in any order. Sector writes are NOT assumed atomic.
//! - Power-safe overwrite: writing a page or sector may lose or garble the bytes the write
//!   changed, but never bytes of it that it did not change. This matters because the batch
//!   after a sync shares the last page (and sector) with already-durable frames. (raft-wal makes
//!   the same assumption; etcd pads to whole pages instead.)
//! - Bit rot in synced data is detected by the CRCs. Damage to the LAST committed batch cannot
//!   be told from a torn tail by local evidence (except after a clean shutdown) and is cut; the
//!   batch was acknowledged, so in a cluster the leader re-sends it (etcd has the same limit).
//! - A frame embedded as data inside a torn batch could be taken for a later batch; recovery then
//!   refuses to start (it errs on the side of an error, never of silent loss).

mod dir_lock;
mod error;
pub mod frame;
mod fsutil;
pub mod header;
pub mod replay;
mod writer;

pub use dir_lock::{DataDirLock, LOCK_FILE};
pub use error::WalError;
pub use frame::{Entry, HardState, SnapshotMarker};
pub use fsutil::{sync_dir, write_atomically};
pub use writer::{
    DurableHook, Recovered, TornTail, Wal, WalOptions, CLEAN_MARKER_FILE, MIN_SEGMENT_SIZE_BYTES,
};

/// Fuzz entry point: decodes arbitrary bytes as a frame (chained to the CRC in the first four
/// bytes); a frame that decodes must re-encode to the same bytes. Must never panic.
#[doc(hidden)]
pub fn fuzz_wal_frame(data: &[u8]) {
    if data.len() < 4 {
        let _ = frame::decode_frame(data, None);
        return;
    }
    let prev_chain = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let bytes = &data[4..];
    for chain in [Some(prev_chain), None] {
        if let Ok(decoded) = frame::decode_frame(bytes, chain) {
            if chain.is_some() {
                let mut again = Vec::new();
                let new_chain =
                    frame::encode_frame(&decoded.record, decoded.batch_seq, prev_chain, &mut again);
                assert_eq!(
                    &again[..],
                    &bytes[..decoded.frame_len],
                    "decoded frame does not re-encode to its bytes"
                );
                assert_eq!(new_chain, decoded.chain, "re-encoded chain differs");
            }
        }
    }
}

/// Fuzz entry point: replays arbitrary bytes as the only (last) segment of a log, in memory.
/// Must never panic; returns Ok or a clean error. A successful replay yields consecutive entries.
#[doc(hidden)]
pub fn fuzz_wal_replay(data: &[u8]) {
    let mut state = replay::LogState::default();
    let result = replay::replay_segment(
        data,
        std::path::Path::new("fuzz.wal"),
        None,
        true,
        &mut state,
    );
    if let Ok(end) = result {
        assert!(
            end.committed_end <= data.len(),
            "committed end past the image"
        );
        for pair in state.entries.windows(2) {
            assert_eq!(pair[1].index, pair[0].index + 1, "replay produced a hole");
        }
    }
}
