//! The raw cost of durability on this disk: append 4 KiB to a file and `fdatasync` it, many
//! times, and report the latency distribution. Every server's sequential write latency is
//! bounded below by this number, so the comparison prints it for context.
//!
//! Two variants: appending (the file grows, so each fdatasync also commits the new size to the
//! filesystem journal) and overwriting a pre-written file (what a preallocated WAL segment
//! costs: etcd preallocates 64 MiB segments, raftkv's WAL allocates its segments up front).
//!
//! And one through raftkv's own WAL: sync latency by data written into a segment
//! ([`wal_sync_latency_by_fill`], `raftkv-bench wal-fill`), which chose the segment size.

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

/// Writes at least `bytes` of zeros to `file` (in 1 MiB blocks) and syncs it: a pre-written
/// file, which later overwrites sync faster than appends on this disk.
pub fn write_zeros_and_sync(file: &mut std::fs::File, bytes: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < bytes {
        file.write_all(&zeros)?;
        written += zeros.len() as u64;
    }
    file.sync_all()
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
        write_zeros_and_sync(&mut file, samples * APPEND_BYTES as u64)?;
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

/// WAL sync latency as the log fills, measured through raftkv's own WAL: entries of
/// `entry_bytes` are appended one at a time, each followed by a sync (what a single client's
/// writes cost), into segments of `segment_bytes`, until `total_bytes` of entry data are
/// written. Returns one histogram per `region_bytes` of data written, in order.
///
/// On this machine's ext4 an msync into a fallocated file gets slower as the file fills
/// (several times slower past ~32 MiB), and a new file is fast again: this shows it, and why
/// the default segment is 16 MiB.
pub fn wal_sync_latency_by_fill(
    dir: &Path,
    segment_bytes: u64,
    entry_bytes: usize,
    total_bytes: u64,
    region_bytes: u64,
) -> Result<Vec<Histogram>, crate::wal::WalError> {
    assert!(
        entry_bytes > 0 && region_bytes > 0,
        "entry and region sizes must be positive"
    );
    let wal_dir = dir.join(format!(
        "wal-fill-probe-{}-{segment_bytes}",
        std::process::id()
    ));
    let options = crate::wal::WalOptions {
        segment_size_bytes: segment_bytes,
        ..Default::default()
    };
    let outcome = (|| {
        let (mut wal, _) = crate::wal::Wal::open(&wal_dir, options)?;
        let mut regions: Vec<Histogram> = Vec::new();
        let mut written = 0u64;
        let mut index = 1u64;
        while written < total_bytes {
            let entry = crate::wal::Entry {
                index,
                term: 1,
                kind: 0,
                data: vec![0x5A; entry_bytes],
            };
            let started = Instant::now();
            wal.append_entries(std::slice::from_ref(&entry))?;
            wal.sync()?;
            let elapsed = started.elapsed();
            let region = (written / region_bytes) as usize;
            if regions.len() <= region {
                regions.resize_with(region + 1, Histogram::new);
            }
            regions[region].record(elapsed);
            written += entry_bytes as u64;
            index += 1;
        }
        Ok(regions)
    })();
    let _ = std::fs::remove_dir_all(&wal_dir);
    outcome
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

    #[test]
    fn wal_fill_probe_reports_one_histogram_per_region_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("raftkv-wal-fill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("probe dir");
        let regions =
            wal_sync_latency_by_fill(&dir, 64 << 10, 1000, 256_000, 64_000).expect("probe ran");
        assert_eq!(regions.len(), 4);
        assert!(
            regions.iter().all(|r| r.count() == 64),
            "64 syncs per region"
        );
        let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        assert!(left.is_empty(), "probe files removed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
