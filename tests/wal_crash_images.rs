//! Crash images: a seeded workload runs on real files; the WAL's durable-point hook copies the
//! directory at every point where everything written so far is durable (batch sync, new segment,
//! release, clean shutdown). A crash between two durable points D(k) and D(k+1) may leave any
//! mix of what was written in between: per 512-byte sector, the bytes that changed in it are
//! old, new, zeros, garbage, or torn (a new prefix) — bytes a write did not change stay intact
//! (power-safe overwrite, an assumption the WAL doc states); a file created or deleted in between may or may not be
//! there. For every such image recovery must succeed, keep every record durable at D(k) (so every
//! acknowledged write), and show exactly the log after some prefix of the issued records: nothing
//! that was never written, no reordering. Some images are then written to again and reopened.
//!
//! Replay one seed with RAFTKV_CRASH_SEED=<seed>.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use raftkv::wal::{Entry, HardState, SnapshotMarker, Wal, WalOptions};

mod tempdir;
use tempdir::TempDir;

/// xorshift64*: small, seeded, good enough to pick crash images.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
enum Op {
    Entry(Entry),
    Hard(HardState),
    Snap(SnapshotMarker),
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ModelState {
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMarker>,
    last_index: u64,
}

impl ModelState {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Entry(entry) => {
                self.entries.retain(|e| e.index < entry.index);
                if self
                    .entries
                    .last()
                    .is_some_and(|last| last.index + 1 != entry.index)
                {
                    self.entries.clear(); // restart after an installed snapshot
                }
                self.entries.push(entry.clone());
                self.last_index = entry.index;
            }
            Op::Hard(hs) => self.hard_state = Some(*hs),
            Op::Snap(marker) => {
                self.snapshot = Some(*marker);
                self.last_index = self.last_index.max(marker.index);
            }
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Progress {
    /// Records whose API call returned (all of them written).
    lower: usize,
    /// Records written or being written by the call in progress.
    upper: usize,
    /// Largest index passed to release_before so far.
    release_bound: u64,
}

struct Image {
    files: BTreeMap<String, Vec<u8>>,
    progress: Progress,
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for item in fs::read_dir(dir).unwrap() {
        let item = item.unwrap();
        files.insert(
            item.file_name().to_string_lossy().into_owned(),
            fs::read(item.path()).unwrap(),
        );
    }
    files
}

fn write_image(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A crash between `old` and `new` durable states.
fn crash_mix(
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
    rng: &mut Rng,
    mode: u64,
) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        match (old.get(name), new.get(name)) {
            (Some(before), Some(after)) if before.len() == after.len() => {
                let mut bytes = before.clone();
                for start in (0..bytes.len()).step_by(512) {
                    let end = (start + 512).min(bytes.len());
                    if before[start..end] == after[start..end] {
                        continue;
                    }
                    // Power-safe overwrite (as the WAL doc assumes): only bytes that changed
                    // in this sector can be lost, zeroed, garbage or torn.
                    let first = start + (start..end).position(|i| before[i] != after[i]).unwrap();
                    let last =
                        start + (start..end).rposition(|i| before[i] != after[i]).unwrap() + 1;
                    let action = match mode {
                        0 => 0, // nothing of the interval reached the disk
                        1 => 1, // everything did
                        _ => rng.below(5),
                    };
                    match action {
                        0 => {}
                        1 => bytes[first..last].copy_from_slice(&after[first..last]),
                        2 => bytes[first..last].fill(0),
                        3 => bytes[first..last]
                            .iter_mut()
                            .for_each(|b| *b = rng.next() as u8),
                        _ => {
                            let cut = first + (rng.below((last - first) as u64) as usize);
                            bytes[first..cut].copy_from_slice(&after[first..cut]);
                        }
                    }
                }
                out.insert(name.clone(), bytes);
            }
            (Some(before), Some(after)) => {
                let pick = if mode == 1 || (mode > 1 && rng.below(2) == 0) {
                    after
                } else {
                    before
                };
                out.insert(name.clone(), pick.clone());
            }
            (Some(before), None) => {
                if mode == 0 || (mode > 1 && rng.below(2) == 0) {
                    out.insert(name.clone(), before.clone());
                }
            }
            (None, Some(after)) => {
                if mode == 1 || (mode > 1 && rng.below(2) == 0) {
                    out.insert(name.clone(), after.clone());
                }
            }
            (None, None) => {}
        }
    }
    out
}

fn data(rng: &mut Rng, index: u64) -> Vec<u8> {
    let len = rng.below(160) as usize;
    (0..len).map(|i| (index as usize * 31 + i) as u8).collect()
}

/// Runs the workload, returns (ops issued, images at durable points + the final state).
fn run_workload(seed: u64, dir: &Path) -> (Vec<Op>, Vec<Image>) {
    let mut rng = Rng(seed | 1);
    let progress = Arc::new(Mutex::new(Progress::default()));
    let images = Arc::new(Mutex::new(Vec::new()));
    let hook_progress = Arc::clone(&progress);
    let hook_images = Arc::clone(&images);
    let opts = WalOptions {
        segment_size_bytes: 4096,
        max_total_bytes: None,
        fail_syncs: None,
        after_durable: Some(Arc::new(move |wal_dir: &Path| {
            let progress = *hook_progress.lock().unwrap();
            hook_images.lock().unwrap().push(Image {
                files: read_dir_files(wal_dir),
                progress,
            });
        })),
    };
    let (mut wal, _) = Wal::open(dir, opts).unwrap();
    let mut ops: Vec<Op> = Vec::new();
    let mut next_index = 1u64;
    let mut last_entry = 0u64;
    let mut term = 1u64;
    let mut synced_snapshot: Option<u64> = None;
    let mut pending_snapshot: Option<u64> = None;
    let begin = |ops: &Vec<Op>, n: usize| {
        let mut p = progress.lock().unwrap();
        p.lower = ops.len();
        p.upper = ops.len() + n;
    };
    for step in 0..120 {
        if let Some(Op::Entry(entry)) = ops.last() {
            last_entry = entry.index;
        }
        let choice = rng.below(100);
        if choice < 55 {
            let entry = Entry {
                index: next_index,
                term,
                kind: rng.below(3) as u8,
                data: data(&mut rng, next_index),
            };
            begin(&ops, 1);
            wal.append_entries(std::slice::from_ref(&entry)).unwrap();
            ops.push(Op::Entry(entry));
            next_index += 1;
        } else if choice < 67 {
            let count = 2 + rng.below(5);
            let list: Vec<Entry> = (next_index..next_index + count)
                .map(|i| Entry {
                    index: i,
                    term,
                    kind: 0,
                    data: data(&mut rng, i),
                })
                .collect();
            begin(&ops, list.len());
            wal.append_entries(&list).unwrap();
            ops.extend(list.into_iter().map(Op::Entry));
            next_index += count;
        } else if choice < 75 && last_entry + 1 == next_index && last_entry >= 3 {
            term += 1;
            let from = last_entry - rng.below(2);
            let list: Vec<Entry> = (from..from + 1 + rng.below(3))
                .map(|i| Entry {
                    index: i,
                    term,
                    kind: 1,
                    data: data(&mut rng, i),
                })
                .collect();
            next_index = list.last().unwrap().index + 1;
            begin(&ops, list.len());
            wal.append_entries(&list).unwrap();
            ops.extend(list.into_iter().map(Op::Entry));
        } else if choice < 85 {
            let hs = HardState {
                term,
                vote: rng.below(4),
                commit: next_index.saturating_sub(1 + rng.below(3)),
            };
            begin(&ops, 1);
            wal.set_hard_state(hs).unwrap();
            ops.push(Op::Hard(hs));
        } else if choice < 91 {
            // A local snapshot at or below the last entry, or one installed beyond it.
            let local = last_entry + 1 == next_index && last_entry >= 1 && rng.below(3) != 0;
            let index = if local {
                last_entry - rng.below(last_entry.min(5))
            } else {
                next_index + rng.below(4)
            };
            let marker = SnapshotMarker { index, term };
            begin(&ops, 1);
            wal.mark_snapshot(marker).unwrap();
            ops.push(Op::Snap(marker));
            next_index = next_index.max(index + 1);
            pending_snapshot = Some(index);
        } else if choice < 95 {
            if let Some(index) = synced_snapshot {
                begin(&ops, 0);
                progress.lock().unwrap().release_bound = index;
                wal.release_before(index).unwrap();
            }
        }
        if rng.below(2) == 0 {
            begin(&ops, 0);
            wal.sync().unwrap();
            if pending_snapshot.is_some() {
                synced_snapshot = pending_snapshot.take();
            }
        }
        if step % 40 == 39 {
            // Every seed compacts at least twice: snapshot at the log's end, sync, release.
            let index = next_index - 1;
            let marker = SnapshotMarker { index, term };
            begin(&ops, 1);
            wal.mark_snapshot(marker).unwrap();
            ops.push(Op::Snap(marker));
            begin(&ops, 0);
            wal.sync().unwrap();
            progress.lock().unwrap().release_bound = index;
            wal.release_before(index).unwrap();
            synced_snapshot = Some(index);
            pending_snapshot = None;
        }
    }
    begin(&ops, 0);
    if seed.is_multiple_of(3) {
        wal.sync().unwrap();
        wal.close_clean().unwrap();
    } else {
        drop(wal); // whatever was appended after the last sync stays unsynced
    }
    let mut images = std::mem::take(&mut *images.lock().unwrap());
    let progress = *progress.lock().unwrap();
    images.push(Image {
        files: read_dir_files(dir),
        progress,
    });
    (ops, images)
}

fn check_recovered(
    seed: u64,
    what: &str,
    states: &[ModelState],
    lo: usize,
    hi: usize,
    release_bound: u64,
    dir: &Path,
) {
    let opts = WalOptions {
        segment_size_bytes: 4096,
        ..WalOptions::default()
    };
    let (_wal, rec) = match Wal::open(dir, opts) {
        Ok(opened) => opened,
        Err(err) => panic!("seed {seed}: {what}: recovery failed: {err}"),
    };
    let got_first = rec.entries.first().map(|e| e.index).unwrap_or(u64::MAX);
    let matches = |state: &ModelState| {
        state.hard_state == rec.hard_state
            && state.snapshot == rec.snapshot
            && state.last_index == rec.last_index
            && state
                .entries
                .iter()
                .filter(|e| e.index > release_bound || e.index >= got_first)
                .eq(rec.entries.iter())
    };
    if !(lo..=hi).any(|m| matches(&states[m])) {
        panic!(
            "seed {seed}: {what}: recovered log (last index {}, {} entries from {:?}, hard state {:?}, \
             snapshot {:?}) is not the log after any prefix of {lo}..={hi} records",
            rec.last_index,
            rec.entries.len(),
            rec.entries.first().map(|e| e.index),
            rec.hard_state,
            rec.snapshot
        );
    }
}

fn continue_writing(seed: u64, what: &str, dir: &Path) {
    let opts = WalOptions {
        segment_size_bytes: 4096,
        ..WalOptions::default()
    };
    let (mut wal, rec) = Wal::open(dir, opts.clone()).unwrap();
    let next = rec.last_index + 1;
    let list: Vec<Entry> = (next..next + 30)
        .map(|i| Entry {
            index: i,
            term: 99,
            kind: 0,
            data: vec![i as u8; 50],
        })
        .collect();
    wal.append_entries(&list).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_wal, again) = Wal::open(dir, opts).unwrap_or_else(|err| {
        panic!("seed {seed}: {what}: reopen after writing on a recovered image failed: {err}")
    });
    let tail: Vec<&Entry> = again.entries.iter().filter(|e| e.index >= next).collect();
    assert_eq!(
        tail.len(),
        30,
        "seed {seed}: {what}: entries written after recovery are missing"
    );
    assert!(
        tail.iter().all(|e| e.term == 99),
        "seed {seed}: {what}: wrong entries after recovery"
    );
}

fn run_seed(seed: u64) {
    let work = TempDir::new("wal-crash-work");
    let (ops, images) = run_workload(seed, &work.0);
    let mut states = vec![ModelState::default()];
    for op in &ops {
        let mut next = states.last().unwrap().clone();
        next.apply(op);
        states.push(next);
    }
    assert!(
        images.len() > 20,
        "seed {seed}: too few durable points ({})",
        images.len()
    );
    // The workload must exercise what the crash images are about.
    let segment_names: std::collections::BTreeSet<&String> = images
        .iter()
        .flat_map(|image| image.files.keys())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    assert!(
        segment_names.len() >= 3,
        "seed {seed}: only {} segments",
        segment_names.len()
    );
    let released = images
        .windows(2)
        .any(|w| w[0].files.keys().any(|n| !w[1].files.contains_key(n)));
    assert!(released, "seed {seed}: no segment was released");
    let mut last_entry = 0u64;
    let mut truncated = false;
    for op in &ops {
        if let Op::Entry(e) = op {
            truncated |= e.index <= last_entry;
            last_entry = e.index;
        }
    }
    assert!(truncated, "seed {seed}: no tail truncation");
    assert!(
        ops.iter().any(|op| matches!(op, Op::Snap(_))),
        "seed {seed}: no snapshot marker"
    );
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let scratch = TempDir::new("wal-crash-images");
    let mut count = 0;
    for k in 0..images.len() {
        let (old, new) = if k == 0 {
            (&BTreeMap::new(), &images[0])
        } else {
            (&images[k - 1].files, &images[k])
        };
        let lo = if k == 0 {
            0
        } else {
            images[k - 1]
                .progress
                .lower
                .min(images[k - 1].progress.upper)
        };
        let hi = new.progress.upper.min(ops.len());
        // Record counts at a hook: all records before `lower` were written and committed.
        for mode in 0..6u64 {
            if k == 0 && mode != 1 {
                continue; // the first segment's creation is atomic; nothing before it
            }
            let what = format!("interval {k} (of {}), image mode {mode}", images.len());
            let image = crash_mix(old, &new.files, &mut rng, mode);
            let dir = scratch.0.join(format!("image-{count}"));
            write_image(&dir, &image);
            check_recovered(
                seed,
                &what,
                &states,
                lo,
                hi,
                new.progress.release_bound,
                &dir,
            );
            if mode == 5 && k % 4 == 0 {
                continue_writing(seed, &what, &dir);
            }
            let _ = fs::remove_dir_all(&dir);
            count += 1;
        }
    }
    assert!(
        count > 100,
        "seed {seed}: only {count} crash images checked"
    );
    println!(
        "seed {seed}: {count} crash images over {} durable points, all recovered",
        images.len()
    );
}

#[test]
fn every_crash_image_recovers_all_durable_records_and_nothing_else() {
    let seeds: Vec<u64> = match std::env::var("RAFTKV_CRASH_SEED") {
        Ok(text) => vec![text.parse().expect("RAFTKV_CRASH_SEED must be a number")],
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        run_seed(seed);
    }
}
