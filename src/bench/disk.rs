//! The raw cost of durability on this disk: append 4 KiB to a file and `fdatasync` it, many
//! times, and report the latency distribution. Every server's sequential write latency is
//! bounded below by this number, so the comparison prints it for context.
//!
//! Two variants: appending (the file grows, so each fdatasync also commits the new size to the
//! filesystem journal) and overwriting a pre-written file (what a preallocated WAL segment
//! costs: etcd preallocates 64 MiB segments, raftkv's WAL allocates its segments up front).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bench::histogram::Histogram;

/// Bytes appended per sample.
pub const APPEND_BYTES: usize = 4096;

/// Appends [`APPEND_BYTES`] and fdatasyncs, `samples` times or until `time_limit`, in a file
/// created (and removed) inside `dir`.
pub fn append_fdatasync_latency(
    dir: &Path,
    samples: u64,
    time_limit: Duration,
) -> std::io::Result<Histogram> {
    let path = dir.join(format!("fdatasync-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = vec![0x5Au8; APPEND_BYTES];
    let mut latency = Histogram::new();
    let deadline = Instant::now() + time_limit;
    let outcome = (|| {
        for _ in 0..samples {
            if Instant::now() >= deadline {
                break;
            }
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            latency.record(started.elapsed());
        }
        Ok(())
    })();
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome.map(|()| latency)
}

/// Writes [`APPEND_BYTES`] at increasing offsets of a file pre-written (and synced) in full
/// beforehand, and fdatasyncs after each, `samples` times or until `time_limit`.
pub fn overwrite_fdatasync_latency(
    dir: &Path,
    samples: u64,
    time_limit: Duration,
) -> std::io::Result<Histogram> {
    let path = dir.join(format!("fdatasync-overwrite-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = vec![0x5Au8; APPEND_BYTES];
    let mut latency = Histogram::new();
    let outcome = (|| {
        let zeros = vec![0u8; 1 << 20];
        let total_bytes = samples * APPEND_BYTES as u64;
        let mut written = 0u64;
        while written < total_bytes {
            file.write_all(&zeros)?;
            written += zeros.len() as u64;
        }
        file.sync_all()?;
        let deadline = Instant::now() + time_limit;
        for sample in 0..samples {
            if Instant::now() >= deadline {
                break;
            }
            let started = Instant::now();
            file.write_all_at(&block, sample * APPEND_BYTES as u64)?;
            file.sync_data()?;
            latency.record(started.elapsed());
        }
        Ok(())
    })();
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome.map(|()| latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_probes_record_every_sample_within_their_limits() {
        let dir = crate::bench::process::TempDir::new("disk-probe-test").expect("temp dir");
        let append =
            append_fdatasync_latency(&dir.path, 20, Duration::from_secs(30)).expect("append probe");
        let overwrite = overwrite_fdatasync_latency(&dir.path, 20, Duration::from_secs(30))
            .expect("overwrite probe");
        assert_eq!(append.count(), 20);
        assert_eq!(overwrite.count(), 20);
        assert!(append.quantile_nanos(0.5) <= append.max_nanos());
        let leftovers = std::fs::read_dir(&dir.path).expect("list").count();
        assert_eq!(leftovers, 0, "the probe files are removed");
    }
}
