//! Pure replay: turns segment images (byte slices) into the final log, and decides for the
//! last segment whether a bad tail is a crash-torn batch (cut) or damage (error). No I/O.
//!
//! Rules (see the `wal` module doc for why they are sound):
//! - records take effect only when their batch's Commit frame is read;
//! - in a segment that is not the last, anything but committed frames followed by zeros is damage;
//! - in the last segment, uncommitted records, a bad frame or non-zero bytes after the last
//!   Commit are a torn tail, unless a self-consistent frame of a *different* batch appears later
//!   in the file: a later batch is only written after the earlier one was synced, so its presence
//!   proves the bad bytes were once durable, i.e. damage.

use std::path::Path;

use super::error::WalError;
use super::frame::{
    decode_frame, Entry, FrameError, HardState, Record, SnapshotMarker, FRAME_ALIGN_BYTES,
};
use super::header::{SegmentHeader, SEGMENT_HEADER_BYTES};

/// Where the log stands, shared by the writer (to refuse holes) and by replay (to detect them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCursor {
    /// The index after the last entry or the snapshot, whichever came last (see `apply_*`).
    pub last_index: u64,
    /// None while no entry has been seen (fresh log, or replay of the first kept segment).
    pub last_entry_index: Option<u64>,
    pub snapshot_index: Option<u64>,
}

impl LogCursor {
    /// The highest index the next entry may have without a snapshot: one past the last entry,
    /// or, before any entry was seen, one past `last_index` (1 for a fresh log; the first
    /// kept segment's first index during replay).
    fn next_entry_limit(&self) -> u64 {
        self.last_entry_index
            .unwrap_or(self.last_index)
            .saturating_add(1)
    }

    /// An entry may overwrite the tail (index <= limit, Raft truncation) or restart the log right
    /// after the latest snapshot (an installed snapshot beyond the log).
    pub fn accepts_entry(&self, index: u64) -> bool {
        index >= 1 && (index <= self.next_entry_limit() || self.snapshot_index == Some(index - 1))
    }

    /// Text for errors: which entry indexes would have been accepted.
    pub fn expected_entry(&self) -> String {
        match self.snapshot_index {
            None => format!("<= {}", self.next_entry_limit()),
            Some(snap) => format!(
                "<= {} or {}",
                self.next_entry_limit(),
                snap.saturating_add(1)
            ),
        }
    }

    pub fn apply_entry(&mut self, index: u64) {
        self.last_index = index;
        self.last_entry_index = Some(index);
    }

    pub fn apply_snapshot(&mut self, index: u64) {
        self.snapshot_index = Some(index);
        self.last_index = self.last_index.max(index);
    }
}

/// The log rebuilt so far.
#[derive(Clone, Debug, Default)]
pub struct LogState {
    pub cursor: LogCursor,
    /// Invariant: indexes are consecutive.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    pub snapshot: Option<SnapshotMarker>,
    /// The last record applied was a CleanShutdown record.
    pub ends_with_clean_shutdown: bool,
}

impl LogState {
    fn apply(&mut self, record: Record, file: &Path, offset: u64) -> Result<(), WalError> {
        self.ends_with_clean_shutdown = false;
        match record {
            Record::Entry(entry) => {
                if !self.cursor.accepts_entry(entry.index) {
                    return Err(WalError::corrupt(
                        file,
                        offset,
                        format!("an entry with index {}", self.cursor.expected_entry()),
                        format!("entry index {} (a hole in the log)", entry.index),
                    ));
                }
                match (self.entries.first(), self.entries.last()) {
                    (Some(first), Some(last))
                        if entry.index >= first.index
                            && entry.index <= last.index.saturating_add(1) =>
                    {
                        let keep = (entry.index - first.index) as usize;
                        self.entries.truncate(keep);
                    }
                    _ => self.entries.clear(),
                }
                self.cursor.apply_entry(entry.index);
                self.entries.push(entry);
            }
            Record::HardState(hard_state) => self.hard_state = Some(hard_state),
            Record::SnapshotMarker(marker) => {
                self.cursor.apply_snapshot(marker.index);
                self.snapshot = Some(marker);
            }
            Record::CleanShutdown { last_index } => {
                if last_index != self.cursor.last_index {
                    return Err(WalError::corrupt(
                        file,
                        offset,
                        format!(
                            "clean-shutdown record for last index {}",
                            self.cursor.last_index
                        ),
                        format!("last index {last_index}"),
                    ));
                }
                self.ends_with_clean_shutdown = true;
            }
            Record::Commit => {}
        }
        Ok(())
    }
}

/// What the previous segment left, for checking that the next one continues it.
#[derive(Clone, Copy, Debug)]
pub struct Continuation {
    pub log_id: u64,
    pub segment_id: u64,
    pub chain: u32,
    pub batch_seq: u64,
}

/// How a segment ended.
#[derive(Clone, Debug)]
pub struct SegmentEnd {
    pub header: SegmentHeader,
    /// Offset just past the last committed frame.
    pub committed_end: usize,
    /// Chain value and batch sequence at `committed_end`.
    pub chain: u32,
    pub batch_seq: u64,
    /// Some((offset, why)) when the last segment had a torn tail starting at `offset`.
    pub torn_at: Option<(usize, String)>,
}

/// Replays one segment image into `state`. `previous` is None for the first segment kept.
pub fn replay_segment(
    bytes: &[u8],
    file: &Path,
    previous: Option<Continuation>,
    is_last: bool,
    state: &mut LogState,
) -> Result<SegmentEnd, WalError> {
    let header = SegmentHeader::decode(bytes).map_err(|err| {
        WalError::corrupt(
            file,
            0,
            format!("{} {}", err.field, err.expected),
            err.found,
        )
    })?;
    if header.segment_size_bytes != bytes.len() as u64 {
        return Err(WalError::SegmentWrongSize {
            file: file.to_path_buf(),
            expected_bytes: header.segment_size_bytes,
            found_bytes: bytes.len() as u64,
        });
    }
    match previous {
        None => {
            // The first kept segment: earlier ones were released after a snapshot.
            state.cursor.last_index = header.first_index.saturating_sub(1);
        }
        Some(prev) => {
            let checks: [(&str, u64, u64); 5] = [
                ("log id", prev.log_id, header.log_id),
                (
                    "segment id",
                    prev.segment_id.wrapping_add(1),
                    header.segment_id,
                ),
                (
                    "first index",
                    state.cursor.last_index.wrapping_add(1),
                    header.first_index,
                ),
                ("previous batch", prev.batch_seq, header.prev_batch_seq),
                (
                    "previous chain CRC",
                    prev.chain as u64,
                    header.prev_chain as u64,
                ),
            ];
            for (field, expected, found) in checks {
                if expected != found {
                    return Err(WalError::corrupt(
                        file,
                        0,
                        format!("segment header {field} {expected:#x} (continuing the previous segment)"),
                        format!("{found:#x}"),
                    ));
                }
            }
        }
    }

    let mut offset = SEGMENT_HEADER_BYTES;
    let mut chain = header.chain_seed();
    let mut committed = (offset, chain, header.prev_batch_seq);
    let mut pending: Vec<(usize, Record)> = Vec::new();
    let stop: FrameError = loop {
        if offset >= bytes.len() {
            break FrameError::Unwritten;
        }
        let frame = match decode_frame(&bytes[offset..], Some(chain)) {
            Ok(frame) => frame,
            Err(err) => break err,
        };
        let batch = committed.2.wrapping_add(1);
        if frame.batch_seq != batch {
            return Err(WalError::corrupt(
                file,
                offset as u64,
                format!("a record of batch {batch}"),
                format!("batch {} in a correctly chained record", frame.batch_seq),
            ));
        }
        let record_offset = offset;
        offset += frame.frame_len;
        chain = frame.chain;
        if frame.record == Record::Commit {
            for (at, record) in pending.drain(..) {
                state.apply(record, file, at as u64)?;
            }
            committed = (offset, chain, batch);
        } else {
            pending.push((record_offset, frame.record));
        }
    };

    let tail_is_zero = bytes[offset.min(bytes.len())..].iter().all(|b| *b == 0);
    let (committed_end, committed_chain, committed_batch) = committed;
    let clean = stop == FrameError::Unwritten && tail_is_zero && pending.is_empty();
    let torn_at = if clean {
        None
    } else {
        let first_bad = pending.first().map(|(at, _)| *at).unwrap_or(offset);
        let why = if let Some((at, _)) = pending.first() {
            format!("records from offset {at} without their batch's commit record, then: {stop}")
        } else if stop == FrameError::Unwritten {
            "non-zero bytes after the end of the log".to_string()
        } else {
            stop.to_string()
        };
        if !is_last {
            return Err(WalError::corrupt(
                file,
                offset as u64,
                "committed records then zeros (this segment was synced before the next was created)",
                why,
            ));
        }
        if let FrameError::ChainCrcMismatch { .. } = stop {
            // A crash tears frames (their own CRC fails); it never produces a whole frame that
            // belongs elsewhere. A self-consistent frame in the wrong place is damage.
            return Err(WalError::corrupt(
                file,
                offset as u64,
                "the next record of this log or a torn tail",
                why,
            ));
        }
        if let Some((later, later_batch)) = later_frame_of_other_batch(
            bytes,
            offset + FRAME_ALIGN_BYTES,
            committed_batch.wrapping_add(1),
        ) {
            return Err(WalError::corrupt(
                file,
                offset as u64,
                format!("a torn tail holding only batch {} (what a crash leaves)", committed_batch.wrapping_add(1)),
                format!("{why}; and a valid record of batch {later_batch} at offset {later}, so the bad bytes had been synced"),
            ));
        }
        Some((first_bad, why))
    };
    Ok(SegmentEnd {
        header,
        committed_end,
        chain: committed_chain,
        batch_seq: committed_batch,
        torn_at,
    })
}

/// The first offset at or after `from` (8-aligned) where a frame passes its own CRC and belongs
/// to a batch other than `torn_batch`.
fn later_frame_of_other_batch(bytes: &[u8], from: usize, torn_batch: u64) -> Option<(usize, u64)> {
    let mut at = from.div_ceil(FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES;
    while at < bytes.len() {
        if let Ok(frame) = decode_frame(&bytes[at..], None) {
            if frame.batch_seq != torn_batch {
                return Some((at, frame.batch_seq));
            }
        }
        at += FRAME_ALIGN_BYTES;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::frame::encode_frame;

    fn header(size: usize) -> SegmentHeader {
        SegmentHeader {
            log_id: 1,
            segment_id: 1,
            first_index: 1,
            segment_size_bytes: size as u64,
            prev_batch_seq: 0,
            prev_chain: 0,
        }
    }

    fn entry(index: u64) -> Record {
        Record::Entry(Entry {
            index,
            term: 1,
            kind: 0,
            data: vec![index as u8; 10],
        })
    }

    /// Builds a segment image of `batches` (each batch committed unless it is the last and
    /// `commit_last` is false).
    fn image(batches: &[Vec<Record>], commit_last: bool) -> Vec<u8> {
        let size = 4096;
        let head = header(size);
        let mut out = head.encode().to_vec();
        let mut chain = head.chain_seed();
        for (number, batch) in batches.iter().enumerate() {
            let seq = number as u64 + 1;
            for record in batch {
                chain = encode_frame(record, seq, chain, &mut out);
            }
            if commit_last || number + 1 < batches.len() {
                chain = encode_frame(&Record::Commit, seq, chain, &mut out);
            }
        }
        out.resize(size, 0);
        out
    }

    fn replay(bytes: &[u8], is_last: bool) -> Result<(LogState, SegmentEnd), WalError> {
        let mut state = LogState::default();
        let end = replay_segment(bytes, Path::new("seg.wal"), None, is_last, &mut state)?;
        Ok((state, end))
    }

    #[test]
    fn truncation_overwrites_the_tail() {
        let bytes = image(&[vec![entry(1), entry(2), entry(3)], vec![entry(2)]], true);
        let (state, end) = replay(&bytes, true).unwrap();
        let indexes: Vec<u64> = state.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![1, 2]);
        assert!(end.torn_at.is_none());
        assert_eq!(end.batch_seq, 2);
    }

    #[test]
    fn uncommitted_last_batch_is_torn_and_dropped() {
        let bytes = image(&[vec![entry(1)], vec![entry(2)]], false);
        let (state, end) = replay(&bytes, true).unwrap();
        assert_eq!(state.entries.len(), 1);
        assert!(end.torn_at.is_some());
        // The same image in a segment that is not the last is damage.
        assert!(replay(&bytes, false).unwrap_err().is_damage());
    }

    #[test]
    fn damaged_committed_batch_followed_by_later_batch_is_damage() {
        let clean = image(&[vec![entry(1)], vec![entry(2)], vec![entry(3)]], true);
        let (_, end) = replay(&clean, true).unwrap();
        // Flip a byte inside the first entry's payload: batch 2 and 3 follow, so this is damage.
        let mut bytes = clean.clone();
        bytes[SEGMENT_HEADER_BYTES + 30] ^= 0x40;
        let err = replay(&bytes, true).unwrap_err();
        match err {
            WalError::Corrupt { offset, .. } => assert_eq!(offset, SEGMENT_HEADER_BYTES as u64),
            other => panic!("expected Corrupt, got {other}"),
        }
        // Flipping a byte in the last batch's commit is a torn tail: cut after batch 2.
        let mut bytes = clean;
        bytes[end.committed_end - 4] ^= 0x01;
        let (state, end) = replay(&bytes, true).unwrap();
        assert_eq!(state.entries.len(), 2);
        assert!(end.torn_at.is_some());
    }

    #[test]
    fn whole_frame_from_elsewhere_at_the_tail_is_damage_not_torn() {
        // The last batch's entry replaced by a frame with a valid own CRC but another chain.
        let clean = image(&[vec![entry(1)], vec![entry(2)]], true);
        let (_, end) = replay(&clean, true).unwrap();
        let mut foreign = Vec::new();
        let chain_elsewhere = 0xDEAD_BEEF;
        encode_frame(&entry(2), 2, chain_elsewhere, &mut foreign);
        let mut bytes = clean.clone();
        let at = end.committed_end - 24 - foreign.len();
        bytes[at..at + foreign.len()].copy_from_slice(&foreign);
        match replay(&bytes, true) {
            Err(WalError::Corrupt { offset, found, .. }) => {
                assert_eq!(offset, at as u64);
                assert!(found.contains("chained CRC"), "{found}");
            }
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn hole_in_indexes_is_damage() {
        let bytes = image(&[vec![entry(1), entry(3)]], true);
        assert!(replay(&bytes, true).unwrap_err().is_damage());
    }

    #[test]
    fn snapshot_allows_restart_after_it() {
        let snap = Record::SnapshotMarker(SnapshotMarker { index: 10, term: 2 });
        let bytes = image(&[vec![entry(1), snap, entry(11)]], true);
        let (state, _) = replay(&bytes, true).unwrap();
        assert_eq!(
            state.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![11]
        );
        assert_eq!(state.cursor.last_index, 11);
    }
}
