//! Snapshot files: the state machine's bytes (opaque here) plus the log position they cover,
//! written atomically and checksummed, one file per snapshot in the snapshot directory.
//!
//! # Files
//! `<index:016x>-<term:016x>.snap`, so listing the directory in name order is index order and
//! the newest snapshot is the last name. A save writes `<name>.tmp`, fsyncs it, renames it to
//! `<name>` and fsyncs the directory: a snapshot file that exists under its final name is
//! complete and durable. `*.tmp` files are leftovers of a crash during a save; they are deleted
//! when the `Snapshotter` is opened.
//!
//! # Layout (little endian; CRC-32/IEEE as computed by crc32fast, not CRC-32C)
//! ```text
//! offset  size
//!  0       8    magic "RKVSNAP\n"
//!  8       4    format version = 1
//! 12       4    reserved, zero
//! 16       8    index: last log index the snapshot covers
//! 24       8    term of that entry
//! 32       8    data length n (the file is exactly 48 + n bytes)
//! 40       4    data CRC: CRC-32/IEEE of the n data bytes
//! 44       4    header CRC: CRC-32/IEEE of bytes 0..44
//! 48       n    data (opaque)
//! ```
//!
//! # A damaged newest snapshot is an error, not a fallback
//! `load_newest` never skips a damaged newest snapshot to load an older one. Segments and
//! snapshots older than a snapshot are released only after it is durable, so the log entries
//! between an older snapshot and the newest one may already be gone: falling back would
//! silently lose acknowledged writes. The error names the file and offset; the operator
//! restores from a backup or, in a cluster, re-adds the member. Only a `.tmp` file (a save
//! that never completed) is ignored.

mod format;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub use format::{decode_snapshot, encode_snapshot, SnapDecodeError, Snapshot};

use crate::wal::{sync_dir, write_atomically, WalError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapError {
    /// A snapshot file failed a check.
    Corrupt {
        file: PathBuf,
        offset: u64,
        expected: String,
        found: String,
    },
    /// No space to write the snapshot (nothing was replaced; the tmp file was removed).
    NoSpace { path: PathBuf, detail: String },
    Io {
        path: PathBuf,
        operation: &'static str,
        detail: String,
    },
}

impl fmt::Display for SnapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapError::Corrupt {
                file,
                offset,
                expected,
                found,
            } => write!(
                f,
                "snapshot {} is damaged at byte offset {offset}: expected {expected}, found \
                 {found}. raftkv does not fall back to an older snapshot (the log after it may \
                 be released). Keep a copy for diagnosis, then restore the data dir from a backup \
                 or, in a cluster, remove this member's data dir and re-add the member.",
                file.display()
            ),
            SnapError::NoSpace { path, detail } => write!(
                f,
                "no space to write snapshot {}: {detail}. Free disk space; the previous \
                 snapshot and the log are intact.",
                path.display()
            ),
            SnapError::Io {
                path,
                operation,
                detail,
            } => write!(
                f,
                "snapshot I/O error during {operation} on {}: {detail}. Check the disk.",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SnapError {}

impl From<WalError> for SnapError {
    fn from(err: WalError) -> SnapError {
        match err {
            WalError::NoSpace { path, detail, .. } => SnapError::NoSpace { path, detail },
            WalError::Io {
                path,
                operation,
                detail,
                ..
            } => SnapError::Io {
                path,
                operation,
                detail,
            },
            other => SnapError::Io {
                path: PathBuf::new(),
                operation: "file operation",
                detail: other.to_string(),
            },
        }
    }
}

fn io(path: &Path, operation: &'static str, err: &std::io::Error) -> SnapError {
    SnapError::Io {
        path: path.to_path_buf(),
        operation,
        detail: err.to_string(),
    }
}

fn snapshot_name(index: u64, term: u64) -> String {
    format!("{index:016x}-{term:016x}.snap")
}

fn parse_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".snap")?;
    let (index, term) = stem.split_once('-')?;
    if index.len() != 16 || term.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(index, 16).ok()?,
        u64::from_str_radix(term, 16).ok()?,
    ))
}

/// Saves, finds and releases snapshot files in one directory. A clone works on the same
/// directory (the Raft loop hands one to the thread that writes a snapshot).
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

impl Snapshotter {
    /// Opens the snapshot directory (created if missing) and deletes leftover `.tmp` files.
    pub fn open(dir: &Path) -> Result<Snapshotter, SnapError> {
        fs::create_dir_all(dir).map_err(|err| io(dir, "create directory", &err))?;
        for (name, path) in Self::names(dir)? {
            if name.ends_with(".tmp") {
                fs::remove_file(&path)
                    .map_err(|err| io(&path, "remove leftover tmp file", &err))?;
            }
        }
        // Always: a save interrupted between its rename and its directory fsync leaves a file
        // that is visible but not yet durable; make it durable before it is loaded and used.
        // The directory may also be new: make its entry in the parent durable.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(Snapshotter {
            dir: dir.to_path_buf(),
        })
    }

    fn names(dir: &Path) -> Result<Vec<(String, PathBuf)>, SnapError> {
        let mut names = Vec::new();
        for item in fs::read_dir(dir).map_err(|err| io(dir, "list directory", &err))? {
            let item = item.map_err(|err| io(dir, "list directory", &err))?;
            if let Some(name) = item.file_name().to_str() {
                names.push((name.to_string(), item.path()));
            }
        }
        names.sort();
        Ok(names)
    }

    /// (index, term, path) of every snapshot file, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, u64, PathBuf)>, SnapError> {
        let mut found: Vec<(u64, u64, PathBuf)> = Self::names(&self.dir)?
            .into_iter()
            .filter_map(|(name, path)| parse_snapshot_name(&name).map(|(i, t)| (i, t, path)))
            .collect();
        found.sort();
        Ok(found)
    }

    /// Writes `snapshot` durably (tmp, fsync, rename, fsync dir) and returns its path.
    pub fn save(&self, snapshot: &Snapshot) -> Result<PathBuf, SnapError> {
        let name = snapshot_name(snapshot.index, snapshot.term);
        Ok(write_atomically(
            &self.dir,
            &name,
            &encode_snapshot(snapshot),
        )?)
    }

    /// The newest snapshot, or None when there is none. A damaged newest snapshot is an error
    /// (see the module doc for why there is no fallback).
    pub fn load_newest(&self) -> Result<Option<Snapshot>, SnapError> {
        let Some((index, term, path)) = self.list()?.pop() else {
            return Ok(None);
        };
        let bytes = fs::read(&path).map_err(|err| io(&path, "read", &err))?;
        let snapshot = decode_snapshot(&bytes).map_err(|err| SnapError::Corrupt {
            file: path.clone(),
            offset: err.offset,
            expected: err.expected,
            found: err.found,
        })?;
        if snapshot.index != index || snapshot.term != term {
            return Err(SnapError::Corrupt {
                file: path,
                offset: 16,
                expected: format!("index {index} and term {term} (the file name)"),
                found: format!("index {} and term {}", snapshot.index, snapshot.term),
            });
        }
        Ok(Some(snapshot))
    }

    /// Deletes snapshot files whose index is below `index` (call once a newer one is durable).
    /// Returns how many were deleted.
    pub fn release_older_than(&self, index: u64) -> Result<usize, SnapError> {
        let mut removed = 0;
        for (snap_index, _, path) in self.list()? {
            if snap_index < index {
                fs::remove_file(&path).map_err(|err| io(&path, "remove old snapshot", &err))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}
