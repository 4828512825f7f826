//! The WAL's operating errors. Every damage variant names the file and byte offset, what was
//! expected and what was found, and its Display says what the operator should do.

use std::fmt;
use std::path::PathBuf;

const RESTORE_ADVICE: &str = "raftkv will not guess which data is good. Keep a copy of this \
data dir for diagnosis, then either restore the data dir from a backup (a copy of the newest \
snapshot, see README) or, in a cluster, remove this member's data dir and re-add the member so \
it catches up from the leader";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalError {
    /// Damage in the log that a crash cannot explain (bad record before the tail, a valid record
    /// after a bad one, a bad header, a gap in indexes or segment ids).
    Corrupt {
        file: PathBuf,
        offset: u64,
        expected: String,
        found: String,
    },
    /// A segment file is shorter (or longer) than the size it was preallocated to.
    SegmentWrongSize {
        file: PathBuf,
        expected_bytes: u64,
        found_bytes: u64,
    },
    /// The log does not end where the clean-shutdown marker says it ended.
    CutAfterCleanShutdown {
        file: PathBuf,
        expected: String,
        found: String,
    },
    /// Preallocation failed with ENOSPC or the WAL's size limit would be exceeded. Nothing was
    /// written; the WAL stays usable (free space or call `release_before`, then retry).
    NoSpace {
        path: PathBuf,
        needed_bytes: u64,
        limit_bytes: Option<u64>,
        detail: String,
    },
    /// One record larger than a segment can hold.
    RecordTooLarge { max_bytes: u64, found_bytes: u64 },
    /// Entries that would leave a hole in the log (caller error; nothing was written).
    NonContiguous { expected: String, found: u64 },
    /// An operating-system error.
    Io {
        path: PathBuf,
        operation: &'static str,
        kind: std::io::ErrorKind,
        detail: String,
    },
    /// A write or sync failed earlier; the WAL refuses all further work (the failed sync is never
    /// retried as if it had succeeded). Restart the process: recovery reads what is durable.
    Poisoned { first_error: Box<WalError> },
    /// Another process holds the data-dir lock.
    DirLocked { dir: PathBuf, detail: String },
}

impl WalError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        operation: &'static str,
        err: &std::io::Error,
    ) -> WalError {
        WalError::Io {
            path: path.into(),
            operation,
            kind: err.kind(),
            detail: err.to_string(),
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> WalError {
        WalError::Corrupt {
            file: file.into(),
            offset,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// True for the variants that mean "the data on disk is damaged".
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            WalError::Corrupt { .. }
                | WalError::SegmentWrongSize { .. }
                | WalError::CutAfterCleanShutdown { .. }
        )
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Corrupt {
                file,
                offset,
                expected,
                found,
            } => write!(
                f,
                "WAL damaged in {} at byte offset {offset}: expected {expected}, found {found}. \
                 This is not a torn tail left by a crash. {RESTORE_ADVICE}.",
                file.display()
            ),
            WalError::SegmentWrongSize {
                file,
                expected_bytes,
                found_bytes,
            } => write!(
                f,
                "WAL segment {} is {found_bytes} bytes but was preallocated to {expected_bytes}: \
                 the file was truncated or modified outside raftkv. {RESTORE_ADVICE}.",
                file.display()
            ),
            WalError::CutAfterCleanShutdown {
                file,
                expected,
                found,
            } => write!(
                f,
                "WAL in {} was shut down cleanly with {expected}, but now {found}: data written \
                 before the clean shutdown is missing. {RESTORE_ADVICE}.",
                file.display()
            ),
            WalError::NoSpace {
                path,
                needed_bytes,
                limit_bytes,
                detail,
            } => {
                write!(
                    f,
                    "no space for a new WAL segment at {} ({needed_bytes} bytes needed",
                    path.display()
                )?;
                if let Some(limit) = limit_bytes {
                    write!(f, ", WAL size limit {limit} bytes")?;
                }
                write!(
                    f,
                    "): {detail}. Writes are refused until space is freed (take a snapshot so old \
                     segments can be released, or free disk space); nothing was corrupted."
                )
            }
            WalError::RecordTooLarge {
                max_bytes,
                found_bytes,
            } => write!(
                f,
                "WAL record of {found_bytes} bytes exceeds the {max_bytes} bytes one segment can \
                 hold; raise the segment size or write smaller values"
            ),
            WalError::NonContiguous { expected, found } => write!(
                f,
                "WAL append refused: entry index {expected} expected, found {found} (caller bug; \
                 nothing was written)"
            ),
            WalError::Io {
                path,
                operation,
                kind,
                detail,
            } => write!(
                f,
                "WAL I/O error during {operation} on {}: {detail} ({kind:?}). Check the disk and \
                 the kernel log; restart raftkv when the disk is healthy.",
                path.display()
            ),
            WalError::Poisoned { first_error } => write!(
                f,
                "WAL stopped accepting work after an earlier failure; restart raftkv so recovery \
                 reads what is durable. First failure: {first_error}"
            ),
            WalError::DirLocked { dir, detail } => write!(
                f,
                "data dir {} is in use by another process ({detail}); stop the other raftkv or \
                 choose another --data-dir",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for WalError {}
