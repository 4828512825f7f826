//! The raw cost of durability on this disk: append 4 KiB to a file and `fdatasync` it, many
//! times, and report the latency distribution. Every server's sequential write latency is
//! bounded below by this number, so the comparison prints it for context.

use std::io::Write;
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
