//! WAL behaviour on real files: reopen, truncation, rolling and release, damage detection
//! (with file and offset), torn tails, clean shutdown, chained CRCs across segments, the data
//! dir lock, the size limit and poisoning.

use std::fs;
use std::path::{Path, PathBuf};

use raftkv::wal::{DataDirLock, Entry, HardState, SnapshotMarker, Wal, WalError, WalOptions};

mod tempdir;
use tempdir::TempDir;

fn small() -> WalOptions {
    WalOptions {
        segment_size_bytes: 4096,
        ..WalOptions::default()
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: (index % 3) as u8,
        data: format!("value-{index}-{term}").into_bytes(),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn reopen_returns_synced_records_and_drops_unsynced_batch() {
    let dir = TempDir::new("wal-reopen");
    let (mut wal, recovered) = Wal::open(&dir.0, WalOptions::default()).unwrap();
    assert!(recovered.entries.is_empty() && recovered.hard_state.is_none());
    wal.append_entries(&entries(1..=10, 1)).unwrap();
    wal.set_hard_state(HardState {
        term: 1,
        vote: 2,
        commit: 7,
    })
    .unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(11..=12, 1)).unwrap();
    drop(wal); // no sync: the last batch has no Commit frame

    let (_wal, recovered) = Wal::open(&dir.0, WalOptions::default()).unwrap();
    assert_eq!(recovered.entries, entries(1..=10, 1));
    assert_eq!(
        recovered.hard_state,
        Some(HardState {
            term: 1,
            vote: 2,
            commit: 7
        })
    );
    assert_eq!(recovered.last_index, 10);
    assert!(
        recovered.torn_tail.is_some(),
        "the unsynced batch must be reported as a cut torn tail"
    );
    assert!(!recovered.clean_shutdown);
}

#[test]
fn truncation_overwrites_the_tail_and_holes_are_refused() {
    let dir = TempDir::new("wal-truncate");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    let refused = wal.append_entries(&entries(2..=3, 1)).unwrap_err();
    assert!(
        matches!(refused, WalError::NonContiguous { found: 2, .. }),
        "a fresh log starts at 1"
    );
    wal.append_entries(&entries(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(3..=4, 2)).unwrap();
    wal.sync().unwrap();
    let refused = wal.append_entries(&entries(7..=7, 2)).unwrap_err();
    assert!(
        matches!(refused, WalError::NonContiguous { found: 7, .. }),
        "{refused}"
    );
    wal.sync().unwrap(); // not poisoned by refused input
    drop(wal);
    let (_wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    let mut expected = entries(1..=2, 1);
    expected.extend(entries(3..=4, 2));
    assert_eq!(recovered.entries, expected);
    assert_eq!(recovered.last_index, 4);
}

#[test]
fn rolling_segments_then_release_keeps_state_and_suffix() {
    let dir = TempDir::new("wal-roll");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    wal.set_hard_state(HardState {
        term: 3,
        vote: 1,
        commit: 0,
    })
    .unwrap();
    for batch in 0..20u64 {
        wal.append_entries(&entries(batch * 10 + 1..=batch * 10 + 10, 3))
            .unwrap();
        wal.sync().unwrap();
    }
    assert!(
        segment_files(&dir.0).len() >= 4,
        "expected several 4 KiB segments"
    );
    drop(wal);
    let (mut wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert_eq!(recovered.entries, entries(1..=200, 3));
    assert_eq!(recovered.hard_state.unwrap().term, 3);

    wal.mark_snapshot(SnapshotMarker {
        index: 150,
        term: 3,
    })
    .unwrap();
    wal.set_hard_state(HardState {
        term: 3,
        vote: 1,
        commit: 150,
    })
    .unwrap();
    let before = segment_files(&dir.0).len();
    let removed = wal.release_before(150).unwrap();
    assert!(removed > 0 && segment_files(&dir.0).len() == before - removed);
    wal.append_entries(&entries(201..=205, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    let first = recovered.entries[0].index;
    assert!(first > 1 && first <= 151, "first kept entry {first}");
    assert_eq!(recovered.entries, entries(first..=205, 3));
    assert_eq!(
        recovered.snapshot,
        Some(SnapshotMarker {
            index: 150,
            term: 3
        })
    );
    assert_eq!(
        recovered.hard_state,
        Some(HardState {
            term: 3,
            vote: 1,
            commit: 150
        })
    );
}

#[test]
fn corruption_before_the_tail_names_file_and_offset() {
    let dir = TempDir::new("wal-corrupt");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    // Until there are 3 segments, then 2 more batches so the last segment holds several.
    let mut batch = 0u64;
    let mut extra = 0;
    while extra < 2 {
        wal.append_entries(&entries(batch * 10 + 1..=batch * 10 + 10, 1))
            .unwrap();
        wal.sync().unwrap();
        batch += 1;
        if segment_files(&dir.0).len() >= 3 {
            extra += 1;
        }
    }
    drop(wal);
    let files = segment_files(&dir.0);
    assert_eq!(files.len(), 3);
    // Damage the first record of the first segment (not the last segment).
    let clean_copy = fs::read(&files[0]).unwrap();
    flip_byte(&files[0], 64 + 30);
    match Wal::open(&dir.0, small()) {
        Err(WalError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, files[0]);
            assert_eq!(offset, 64);
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    fs::write(&files[0], clean_copy).unwrap();
    // Damage the first record of the LAST segment: later batches follow, so it is damage too.
    let last = files.last().unwrap();
    let bytes = fs::read(last).unwrap();
    // Skip the hard-state/snapshot copies: there are none here, so the first frame is at 64.
    assert_ne!(bytes[64], 0);
    flip_byte(last, 64 + 28);
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, offset: 64, .. } if file == last),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("offset 64") && message.contains(&last.display().to_string()),
        "{message}"
    );
}

#[test]
fn torn_tail_is_cut_zeroed_and_writing_resumes() {
    let dir = TempDir::new("wal-torn");
    let (mut wal, _) = Wal::open(&dir.0, WalOptions::default()).unwrap();
    wal.append_entries(&entries(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(4..=6, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let path = segment_files(&dir.0)[0].clone();
    let mut bytes = fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    // Tear the last batch: zero its commit frame's CRC and put garbage after it.
    for byte in &mut bytes[end - 8..end] {
        *byte = 0;
    }
    for (i, byte) in bytes[end + 100..end + 300].iter_mut().enumerate() {
        *byte = (i * 37 + 11) as u8;
    }
    fs::write(&path, &bytes).unwrap();
    let (mut wal, recovered) = Wal::open(&dir.0, WalOptions::default()).unwrap();
    assert_eq!(recovered.entries, entries(1..=3, 1));
    let torn = recovered.torn_tail.expect("torn tail reported");
    assert_eq!(torn.file, path);
    let after = fs::read(&path).unwrap();
    assert!(
        after[end..].iter().all(|b| *b == 0),
        "bytes past the cut must be zeroed"
    );
    wal.append_entries(&entries(4..=5, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_wal, recovered) = Wal::open(&dir.0, WalOptions::default()).unwrap();
    let mut expected = entries(1..=3, 1);
    expected.extend(entries(4..=5, 2));
    assert_eq!(recovered.entries, expected);
    assert!(recovered.torn_tail.is_none());
}

#[test]
fn clean_shutdown_then_cut_or_truncated_log_is_damage() {
    let dir = TempDir::new("wal-clean");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    wal.append_entries(&entries(1..=30, 1)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(31..=32, 1)).unwrap();
    wal.close_clean().unwrap();
    let files = segment_files(&dir.0);
    let last = files.last().unwrap().clone();
    let original = fs::read(&last).unwrap();

    // 1. The log is intact: clean, and writing goes on; a later crash is not "damage".
    let (mut wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert!(recovered.clean_shutdown);
    assert_eq!(recovered.entries, entries(1..=32, 1));
    wal.append_entries(&entries(33..=33, 1)).unwrap();
    wal.sync().unwrap();
    wal.close_clean().unwrap();
    let after_second = fs::read(&last).unwrap();

    // 2. The last batch zeroed after a clean shutdown: would look like a torn tail, is damage.
    let mut zeroed = after_second.clone();
    let end = zeroed.iter().rposition(|b| *b != 0).unwrap() + 1;
    for byte in &mut zeroed[end - 80..end] {
        *byte = 0;
    }
    fs::write(&last, &zeroed).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, WalError::CutAfterCleanShutdown { .. }),
        "{err}"
    );

    // 3. The segment file truncated: shorter than preallocated, damage.
    fs::write(&last, &after_second[..2048]).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::SegmentWrongSize {
                expected_bytes: 4096,
                found_bytes: 2048,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&last.display().to_string()));
    let _ = original;
}

#[test]
fn chained_crc_catches_a_record_copied_from_another_segment_or_log() {
    let dir = TempDir::new("wal-chain");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    // Equal-size entries so frames line up at the same offsets in every segment.
    for batch in 0..15u64 {
        let list: Vec<Entry> = (batch * 10 + 1..=batch * 10 + 10)
            .map(|i| Entry {
                index: i,
                term: 1,
                kind: 0,
                data: vec![7u8; 40],
            })
            .collect();
        wal.append_entries(&list).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let files = segment_files(&dir.0);
    assert!(files.len() >= 3);
    let first = fs::read(&files[0]).unwrap();
    let mut second = fs::read(&files[1]).unwrap();
    let original_second = second.clone();
    // The first frame of each segment is at 64; copy segment 1's over segment 2's (same size,
    // same batch-local layout, correct own CRC, wrong place in the chain).
    let frame_len = 24 + 17 + 40 + 7;
    second[64..64 + frame_len].copy_from_slice(&first[64..64 + frame_len]);
    fs::write(&files[1], &second).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, offset: 64, .. } if *file == files[1]),
        "{err}"
    );
    fs::write(&files[1], &original_second).unwrap();

    // Another log (another node / older incarnation) with the same layout, batch numbers and
    // indexes but other data: its frame has a valid own CRC and the expected batch and index;
    // only the chain (seeded by the log id) tells it apart.
    let other = TempDir::new("wal-chain-other");
    let (mut wal, _) = Wal::open(&other.0, small()).unwrap();
    for batch in 0..15u64 {
        let list: Vec<Entry> = (batch * 10 + 1..=batch * 10 + 10)
            .map(|i| Entry {
                index: i,
                term: 1,
                kind: 0,
                data: vec![8u8; 40],
            })
            .collect();
        wal.append_entries(&list).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let foreign = segment_files(&other.0)[1].clone();
    assert_eq!(
        foreign.file_name(),
        files[1].file_name(),
        "same layout, same names"
    );
    let foreign_bytes = fs::read(&foreign).unwrap();
    let mut second = original_second.clone();
    second[64..64 + frame_len].copy_from_slice(&foreign_bytes[64..64 + frame_len]);
    fs::write(&files[1], &second).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, offset: 64, .. } if *file == files[1]),
        "{err}"
    );
    assert!(err.to_string().contains("chained CRC"), "{err}");
    // The whole foreign segment in place of ours: the header's log id differs.
    fs::copy(&foreign, &files[1]).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, offset: 0, .. } if *file == files[1]),
        "{err}"
    );
}

#[test]
fn missing_middle_segment_is_damage() {
    let dir = TempDir::new("wal-missing");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    for batch in 0..15u64 {
        wal.append_entries(&entries(batch * 10 + 1..=batch * 10 + 10, 1))
            .unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let files = segment_files(&dir.0);
    fs::remove_file(&files[1]).unwrap();
    let err = Wal::open(&dir.0, small()).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, .. } if *file == files[2]),
        "{err}"
    );
}

#[test]
fn data_dir_lock_conflict_names_the_dir() {
    let dir = TempDir::new("wal-lock");
    let held = DataDirLock::acquire(&dir.0).unwrap();
    let err = DataDirLock::acquire(&dir.0).unwrap_err();
    assert!(
        matches!(&err, WalError::DirLocked { dir: d, .. } if *d == dir.0),
        "{err}"
    );
    assert!(err.to_string().contains(&dir.0.display().to_string()));
    drop(held);
    let _again = DataDirLock::acquire(&dir.0).expect("lock is free after drop");
}

#[test]
fn size_limit_refuses_writes_keeps_reads_and_resumes_after_release() {
    let dir = TempDir::new("wal-full");
    let opts = WalOptions {
        segment_size_bytes: 4096,
        max_total_bytes: Some(3 * 4096),
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(&dir.0, opts.clone()).unwrap();
    let mut next = 1u64;
    let full = loop {
        match wal.append_entries(&[entry(next, 1)]) {
            Ok(()) => {
                wal.sync().unwrap();
                next += 1;
            }
            Err(err) => break err,
        }
        assert!(next < 10_000, "the size limit was never reached");
    };
    assert!(
        matches!(
            full,
            WalError::NoSpace {
                limit_bytes: Some(12288),
                ..
            }
        ),
        "{full}"
    );
    let last_written = next - 1;
    assert_eq!(segment_files(&dir.0).len(), 3);
    // Still full on retry; the handle is not poisoned.
    assert!(matches!(
        wal.append_entries(&[entry(next, 1)]),
        Err(WalError::NoSpace { .. })
    ));
    // Reads: a fresh open recovers everything that was synced (no corruption).
    drop(wal);
    let (mut wal, recovered) = Wal::open(&dir.0, opts.clone()).unwrap();
    assert_eq!(recovered.entries, entries(1..=last_written, 1));
    // A snapshot marker still fits, then release frees segments and writes resume.
    wal.mark_snapshot(SnapshotMarker {
        index: last_written,
        term: 1,
    })
    .unwrap();
    wal.sync().unwrap();
    assert!(wal.release_before(last_written).unwrap() >= 1);
    for index in next..next + 20 {
        wal.append_entries(&[entry(index, 1)]).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let (_wal, recovered) = Wal::open(&dir.0, opts).unwrap();
    assert_eq!(recovered.last_index, next + 19);
    assert_eq!(
        recovered.snapshot,
        Some(SnapshotMarker {
            index: last_written,
            term: 1
        })
    );
    let first = recovered.entries[0].index;
    assert_eq!(recovered.entries, entries(first..=next + 19, 1));
}

#[test]
fn failed_write_poisons_every_later_call() {
    let dir = TempDir::new("wal-poison");
    let wal_dir = dir.0.join("wal");
    let (mut wal, _) = Wal::open(&wal_dir, small()).unwrap();
    wal.append_entries(&entries(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    // Take the directory away: creating the next segment fails with an I/O error.
    fs::remove_dir_all(&wal_dir).unwrap();
    let mut index = 4;
    let first = loop {
        match wal.append_entries(&[entry(index, 1)]) {
            Ok(()) => index += 1,
            Err(err) => break err,
        }
        assert!(index < 1000);
    };
    assert!(matches!(first, WalError::Io { .. }), "{first}");
    for _ in 0..2 {
        let later = wal.sync().unwrap_err();
        assert!(
            matches!(&later, WalError::Poisoned { first_error } if **first_error == first),
            "{later}"
        );
    }
    assert!(matches!(
        wal.set_hard_state(HardState {
            term: 1,
            vote: 0,
            commit: 0
        }),
        Err(WalError::Poisoned { .. })
    ));
}

#[test]
fn wal_can_move_to_the_persist_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Wal>();
    assert_send::<DataDirLock>();
}

#[test]
fn many_clean_restarts_with_snapshot_markers_stay_consistent() {
    // Clean shutdowns and snapshot markers use the space reserved at the end of a segment;
    // cycling through them at many offsets must never overflow or misreport.
    let dir = TempDir::new("wal-restarts");
    for cycle in 0..30u64 {
        let index = cycle + 1;
        let (mut wal, recovered) = Wal::open(&dir.0, small()).unwrap();
        assert_eq!(recovered.last_index, cycle, "cycle {cycle}");
        assert!(cycle == 0 || recovered.clean_shutdown, "cycle {cycle}");
        let data = vec![cycle as u8; (cycle * 13 % 90) as usize];
        wal.append_entries(&[Entry {
            index,
            term: 1,
            kind: 0,
            data,
        }])
        .unwrap();
        wal.mark_snapshot(SnapshotMarker { index, term: 1 })
            .unwrap();
        wal.close_clean().unwrap();
        // And a clean stop right after a clean start, writing nothing.
        let (wal, _) = Wal::open(&dir.0, small()).unwrap();
        wal.close_clean().unwrap();
    }
}

/// The write offset in the newest segment: just past the last non-zero byte, 8-aligned.
fn write_offset(dir: &Path) -> usize {
    let bytes = fs::read(segment_files(dir).last().unwrap()).unwrap();
    (bytes.iter().rposition(|b| *b != 0).unwrap() + 1).div_ceil(8) * 8
}

#[test]
fn clean_shutdown_after_a_snapshot_marker_used_the_reserve() {
    let dir = TempDir::new("wal-reserve");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    wal.append_entries(&entries(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    // Size one entry so that exactly 160 bytes remain after it: the snapshot marker then goes
    // into the reserve and the clean shutdown takes the rest but 40 bytes.
    let room = 4096 - write_offset(&dir.0) - 160;
    assert!(room >= 48, "test setup: {room} bytes");
    let data = vec![1u8; room - 41];
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    wal.append_entries(&[Entry {
        index: 4,
        term: 1,
        kind: 0,
        data,
    }])
    .unwrap();
    wal.mark_snapshot(SnapshotMarker { index: 4, term: 1 })
        .unwrap();
    wal.close_clean().unwrap();
    assert_eq!(segment_files(&dir.0).len(), 1);
    assert_eq!(write_offset(&dir.0), 4096 - 40);
    // Start and stop cleanly again: the clean-shutdown record no longer fits this segment.
    let (wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert!(recovered.clean_shutdown);
    wal.close_clean().unwrap();
    let (_wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert!(recovered.clean_shutdown);
    assert_eq!(recovered.last_index, 4);
    assert_eq!(
        recovered.snapshot,
        Some(SnapshotMarker { index: 4, term: 1 })
    );
}

#[test]
fn failed_sync_is_never_retried_as_success() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = TempDir::new("wal-eio");
    let fault = Arc::new(AtomicBool::new(false));
    let opts = WalOptions {
        fail_syncs: Some(Arc::clone(&fault)),
        ..small()
    };
    let (mut wal, _) = Wal::open(&dir.0, opts).unwrap();
    wal.append_entries(&entries(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(4..=5, 1)).unwrap();
    fault.store(true, Ordering::SeqCst);
    let first = wal.sync().unwrap_err();
    assert!(
        matches!(
            &first,
            WalError::Io {
                operation: "msync",
                ..
            }
        ),
        "{first}"
    );
    // The disk "recovers", but the WAL does not pretend the failed sync succeeded.
    fault.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        let later = wal.sync().unwrap_err();
        assert!(
            matches!(&later, WalError::Poisoned { first_error } if **first_error == first),
            "{later}"
        );
    }
    assert!(matches!(
        wal.append_entries(&entries(6..=6, 1)),
        Err(WalError::Poisoned { .. })
    ));
    assert!(matches!(
        wal.release_before(1),
        Err(WalError::Poisoned { .. })
    ));
    assert!(wal.close_clean().is_err());
    // A restart recovers what is on disk: at least everything acknowledged.
    let (_wal, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert!(recovered.last_index >= 3);
    assert_eq!(recovered.entries[..3], entries(1..=3, 1)[..]);
    assert!(!recovered.clean_shutdown);
}

#[test]
fn max_entry_data_bytes_is_the_exact_limit_of_one_segment() {
    let dir = TempDir::new("wal-max-entry");
    let (mut wal, _) = Wal::open(&dir.0, small()).unwrap();
    let limit = wal.max_entry_data_bytes();
    assert!(
        limit > 0 && limit < 4096,
        "limit {limit} of a 4 KiB segment"
    );
    let sized = |index: u64, len: usize| Entry {
        index,
        term: 1,
        kind: 0,
        data: vec![b'x'; len],
    };
    match wal.append_entries(&[sized(1, limit + 1)]) {
        Err(WalError::RecordTooLarge { .. }) => {}
        other => panic!("one byte over the limit must be refused, got {other:?}"),
    }
    wal.append_entries(&[sized(1, limit)])
        .expect("an entry of exactly the limit fits");
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = Wal::open(&dir.0, small()).unwrap();
    assert_eq!(recovered.entries.len(), 1);
    assert_eq!(recovered.entries[0].data.len(), limit);
}
