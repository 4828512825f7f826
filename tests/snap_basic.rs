//! Snapshot files on disk: save/load, newest by listing, release, damage is an error (no silent
//! fallback), leftover tmp files ignored and removed.

use std::fs;

use raftkv::snap::{SnapError, Snapshot, Snapshotter};

mod tempdir;
use tempdir::TempDir;

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index,
        term,
        data: format!("store at {index}")
            .repeat(index as usize % 7 + 1)
            .into_bytes(),
    }
}

#[test]
fn save_then_load_newest_by_index_not_by_save_order() {
    let dir = TempDir::new("snap-newest");
    let snapper = Snapshotter::open(&dir.0).unwrap();
    assert_eq!(snapper.load_newest().unwrap(), None);
    // Saved out of order: the newest is the highest index (also past a 0x..f/0x1.. boundary).
    for (index, term) in [(0x10, 2), (0xff, 3), (0x100, 3), (0x0f, 1)] {
        snapper.save(&snapshot(index, term)).unwrap();
    }
    assert_eq!(snapper.load_newest().unwrap(), Some(snapshot(0x100, 3)));
    let reopened = Snapshotter::open(&dir.0).unwrap();
    assert_eq!(reopened.load_newest().unwrap(), Some(snapshot(0x100, 3)));
    assert_eq!(reopened.list().unwrap().len(), 4);
}

#[test]
fn release_older_than_keeps_the_newer_ones() {
    let dir = TempDir::new("snap-release");
    let snapper = Snapshotter::open(&dir.0).unwrap();
    for index in [10, 20, 30] {
        snapper.save(&snapshot(index, 1)).unwrap();
    }
    assert_eq!(snapper.release_older_than(30).unwrap(), 2);
    let left: Vec<u64> = snapper
        .list()
        .unwrap()
        .into_iter()
        .map(|(i, _, _)| i)
        .collect();
    assert_eq!(left, vec![30]);
    assert_eq!(snapper.load_newest().unwrap(), Some(snapshot(30, 1)));
}

#[test]
fn damaged_newest_is_an_error_naming_file_and_offset() {
    let dir = TempDir::new("snap-damage");
    let snapper = Snapshotter::open(&dir.0).unwrap();
    snapper.save(&snapshot(5, 1)).unwrap();
    let newest = snapper.save(&snapshot(9, 2)).unwrap();
    let mut bytes = fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    match snapper.load_newest() {
        Err(SnapError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, newest);
            assert_eq!(
                offset, 48,
                "data CRC failure is reported at the data offset"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Truncated newest: also an error, not a fallback to index 5.
    fs::write(&newest, &bytes[..20]).unwrap();
    let err = snapper.load_newest().unwrap_err();
    assert!(
        matches!(&err, SnapError::Corrupt { file, .. } if *file == newest),
        "{err}"
    );
    assert!(err.to_string().contains(&newest.display().to_string()));
    // A file renamed to claim another index is caught too.
    fs::remove_file(&newest).unwrap();
    let renamed = dir.0.join(format!("{:016x}-{:016x}.snap", 7, 1));
    fs::copy(dir.0.join(format!("{:016x}-{:016x}.snap", 5, 1)), &renamed).unwrap();
    assert!(matches!(
        snapper.load_newest(),
        Err(SnapError::Corrupt { offset: 16, .. })
    ));
}

#[test]
fn leftover_tmp_file_is_ignored_and_removed() {
    let dir = TempDir::new("snap-tmp");
    let snapper = Snapshotter::open(&dir.0).unwrap();
    snapper.save(&snapshot(3, 1)).unwrap();
    // A crash during a later save leaves a partial tmp file.
    let tmp = dir.0.join(format!("{:016x}-{:016x}.snap.tmp", 8, 2));
    fs::write(&tmp, b"RKVSNAP\n partial").unwrap();
    let reopened = Snapshotter::open(&dir.0).unwrap();
    assert!(!tmp.exists(), "leftover tmp must be deleted");
    assert_eq!(reopened.load_newest().unwrap(), Some(snapshot(3, 1)));
}
