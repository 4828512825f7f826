//! File-system steps the WAL and the snapshotter need, each with its durability rule:
//! real preallocation (never sparse), directory fsync, and "write tmp, fsync, rename, fsync dir".

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::WalError;

/// Suffix of files that are being created; any found at start-up are leftovers of a crash.
pub const TMP_SUFFIX: &str = ".tmp";

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    let handle = File::open(dir).map_err(|err| WalError::io(dir, "open directory", &err))?;
    handle
        .sync_all()
        .map_err(|err| WalError::io(dir, "fsync directory", &err))
}

fn no_space(path: &Path, needed_bytes: u64, detail: String) -> WalError {
    WalError::NoSpace {
        path: path.to_path_buf(),
        needed_bytes,
        limit_bytes: None,
        detail,
    }
}

/// Allocates `len_bytes` of real disk blocks for `file` (fallocate; when the file system does
/// not support it, writes zeros). Never leaves a sparse file: a store into a hole of a mapped
/// file raises SIGBUS on ENOSPC instead of returning an error. ENOSPC is `WalError::NoSpace`.
pub fn preallocate(file: &File, path: &Path, len_bytes: u64) -> Result<(), WalError> {
    let Ok(len) = libc::off_t::try_from(len_bytes) else {
        return Err(no_space(
            path,
            len_bytes,
            "size does not fit off_t".to_string(),
        ));
    };
    // SAFETY: plain syscall on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Err(no_space(path, len_bytes, err.to_string())),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => write_zeros(file, path, len_bytes),
        _ => Err(WalError::io(path, "fallocate", &err)),
    }
}

fn write_zeros(file: &File, path: &Path, len_bytes: u64) -> Result<(), WalError> {
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < len_bytes {
        let n = chunk.len().min((len_bytes - written) as usize);
        if let Err(err) = file.write_all_at(&chunk[..n], written) {
            if err.raw_os_error() == Some(libc::ENOSPC)
                || err.kind() == std::io::ErrorKind::StorageFull
            {
                return Err(no_space(path, len_bytes, err.to_string()));
            }
            return Err(WalError::io(path, "write zeros (preallocation)", &err));
        }
        written += n as u64;
    }
    Ok(())
}

/// Creates `dir/name` holding `len_bytes` of preallocated space that starts with `prefix`,
/// durably: tmp file, preallocate, write, fsync, rename, fsync dir. On failure the tmp file
/// is removed and nothing is left behind.
pub fn create_preallocated(
    dir: &Path,
    name: &str,
    prefix: &[u8],
    len_bytes: u64,
) -> Result<PathBuf, WalError> {
    publish_through_tmp(dir, name, |file, tmp_path| {
        preallocate(file, tmp_path, len_bytes)?;
        file.write_all_at(prefix, 0)
            .map_err(|err| WalError::io(tmp_path, "write header", &err))
    })
}

/// Replaces `dir/name` with `bytes` atomically and durably: tmp file, write, fsync, rename,
/// fsync dir.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, WalError> {
    publish_through_tmp(dir, name, |file, tmp_path| {
        let mut writer: &File = file;
        writer.write_all(bytes).map_err(|err| {
            if err.raw_os_error() == Some(libc::ENOSPC) {
                no_space(tmp_path, bytes.len() as u64, err.to_string())
            } else {
                WalError::io(tmp_path, "write", &err)
            }
        })
    })
}

/// The durable way to make a file appear: `fill` writes a fresh `dir/name.tmp`, which is then
/// fsynced, renamed to `dir/name`, and the directory fsynced. On failure the tmp file is
/// removed and nothing is left behind.
fn publish_through_tmp(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&File, &Path) -> Result<(), WalError>,
) -> Result<PathBuf, WalError> {
    let final_path = dir.join(name);
    let tmp_path = dir.join(format!("{name}{TMP_SUFFIX}"));
    let result = (|| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|err| WalError::io(&tmp_path, "create", &err))?;
        fill(&file, &tmp_path)?;
        file.sync_all()
            .map_err(|err| WalError::io(&tmp_path, "fsync", &err))?;
        fs::rename(&tmp_path, &final_path).map_err(|err| WalError::io(&final_path, "rename", &err))
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp_path);
        return Err(err);
    }
    sync_dir(dir)?;
    Ok(final_path)
}

/// Names of the entries of `dir` (files only matter to callers; others are skipped by them).
pub fn list_names(dir: &Path) -> Result<Vec<String>, WalError> {
    let mut names = Vec::new();
    let listing = fs::read_dir(dir).map_err(|err| WalError::io(dir, "list directory", &err))?;
    for item in listing {
        let item = item.map_err(|err| WalError::io(dir, "list directory", &err))?;
        if let Some(name) = item.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}
