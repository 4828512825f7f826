//! An exclusive lock on a data dir so that two processes never share one (flock through std's
//! `File::try_lock` on `<dir>/raftkv.lock`). The kernel drops the lock when the process dies,
//! so a kill -9 never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::WalError;

/// Name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "raftkv.lock";

/// Held for as long as the process uses the data dir; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the lock or fails at once with `WalError::DirLocked` naming the dir.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, WalError> {
        fs::create_dir_all(dir).map_err(|err| WalError::io(dir, "create data dir", &err))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|err| WalError::io(&path, "open lock file", &err))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock {
                _file: file,
                dir: dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(WalError::DirLocked {
                dir: dir.to_path_buf(),
                detail: format!("{} is locked", path.display()),
            }),
            Err(std::fs::TryLockError::Error(err)) => Err(WalError::io(&path, "flock", &err)),
        }
    }

    /// The locked dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
