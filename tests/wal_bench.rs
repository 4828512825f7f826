//! Latency measurements on this machine (ignored by default; they measure, they do not check):
//!   cargo test --release --test wal_bench -- --ignored --nocapture
//! raw 4 KiB append + fdatasync, WAL append of 1 entry (100 B) + sync, WAL append of 64 entries
//! (100 B each) + one sync. Prints p50 / p99 / max in microseconds.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use raftkv::wal::{Entry, Wal, WalOptions};

mod tempdir;
use tempdir::TempDir;

fn report(label: &str, mut micros: Vec<u128>) {
    micros.sort_unstable();
    let pick = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<44} n={:<5} p50={:>6} us  p99={:>6} us  max={:>6} us",
        micros.len(),
        pick(0.50),
        pick(0.99),
        micros[micros.len() - 1]
    );
}

#[test]
#[ignore]
fn measure_sync_latencies() {
    let dir = TempDir::new("wal-bench");
    let rounds = 400;

    let raw_path = dir.0.join("raw");
    let mut raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)
        .unwrap();
    let block = vec![0x5Au8; 4096];
    let mut raw_micros = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        raw.write_all(&block).unwrap();
        raw.sync_data().unwrap();
        raw_micros.push(start.elapsed().as_micros());
    }
    report("raw write(4 KiB) + fdatasync (growing file)", raw_micros);

    // The same into a file whose blocks were written (zeros) and synced beforehand.
    let pre_path = dir.0.join("raw-prewritten");
    let pre = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&pre_path)
        .unwrap();
    pre.write_all_at(&vec![0u8; 4096 * rounds], 0).unwrap();
    pre.sync_all().unwrap();
    let mut pre_micros = Vec::new();
    for round in 0..rounds {
        let start = Instant::now();
        pre.write_all_at(&block, (round * 4096) as u64).unwrap();
        pre.sync_data().unwrap();
        pre_micros.push(start.elapsed().as_micros());
    }
    report("raw pwrite(4 KiB) + fdatasync (pre-written)", pre_micros);

    let (mut wal, _) = Wal::open(&dir.0.join("wal"), WalOptions::default()).unwrap();
    let mut index = 1u64;
    let mut single = Vec::new();
    for _ in 0..rounds {
        let entry = Entry {
            index,
            term: 1,
            kind: 0,
            data: vec![7u8; 100],
        };
        index += 1;
        let start = Instant::now();
        wal.append_entries(&[entry]).unwrap();
        wal.sync().unwrap();
        single.push(start.elapsed().as_micros());
    }
    report("wal append 1 x 100 B + sync", single);

    let mut batched = Vec::new();
    for _ in 0..rounds / 2 {
        let list: Vec<Entry> = (index..index + 64)
            .map(|i| Entry {
                index: i,
                term: 1,
                kind: 0,
                data: vec![7u8; 100],
            })
            .collect();
        index += 64;
        let start = Instant::now();
        wal.append_entries(&list).unwrap();
        wal.sync().unwrap();
        batched.push(start.elapsed().as_micros());
    }
    report("wal append 64 x 100 B + one sync", batched);
}
