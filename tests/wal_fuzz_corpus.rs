//! The fuzz seed corpus: built here from the real encoders (so it matches the format), replayed
//! through the fuzz entry points under a plain `cargo test`, and checked to be up to date.
//! Regenerate after a format change with:
//!   RAFTKV_WRITE_CORPUS=1 cargo test --test wal_fuzz_corpus

use std::fs;
use std::path::{Path, PathBuf};

use raftkv::wal::frame::{encode_frame, Record};
use raftkv::wal::header::SegmentHeader;
use raftkv::wal::{fuzz_wal_frame, fuzz_wal_replay, Entry, HardState, SnapshotMarker};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn entry(index: u64, term: u64, data: &[u8]) -> Record {
    Record::Entry(Entry {
        index,
        term,
        kind: 0,
        data: data.to_vec(),
    })
}

fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let records = [
        (
            "entry",
            entry(42, 3, b"{\"action\":\"set\",\"key\":\"/a\"}"),
        ),
        ("entry-empty", entry(1, 1, b"")),
        (
            "hard-state",
            Record::HardState(HardState {
                term: 9,
                vote: 2,
                commit: 40,
            }),
        ),
        (
            "snapshot-marker",
            Record::SnapshotMarker(SnapshotMarker {
                index: 1000,
                term: 8,
            }),
        ),
        ("clean-shutdown", Record::CleanShutdown { last_index: 77 }),
    ];
    records
        .into_iter()
        .map(|(name, record)| {
            let prev_chain = 0x1234_5678u32;
            let mut bytes = prev_chain.to_le_bytes().to_vec();
            encode_frame(&record, 5, prev_chain, &mut bytes);
            (name, bytes)
        })
        .collect()
}

/// A segment image of `size` bytes holding `batches` (the last one without its Commit when
/// `commit_last` is false).
fn segment(size: usize, batches: &[Vec<Record>], commit_last: bool) -> Vec<u8> {
    let header = SegmentHeader {
        log_id: 0xABCD,
        segment_id: 1,
        first_index: 1,
        segment_size_bytes: size as u64,
        prev_batch_seq: 0,
        prev_chain: 0,
    };
    let mut out = header.encode().to_vec();
    let mut chain = header.chain_seed();
    for (number, batch) in batches.iter().enumerate() {
        let seq = number as u64 + 1;
        for record in batch {
            chain = encode_frame(record, seq, chain, &mut out);
        }
        if commit_last || number + 1 < batches.len() {
            chain = encode_frame(&Record::Commit, seq, chain, &mut out);
        }
    }
    assert!(out.len() <= size, "seed image larger than its segment size");
    out.resize(size, 0);
    out
}

fn replay_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let hs = Record::HardState(HardState {
        term: 2,
        vote: 1,
        commit: 2,
    });
    let mut damaged = segment(
        1024,
        &[
            vec![entry(1, 1, b"a")],
            vec![entry(2, 1, b"b")],
            vec![entry(3, 1, b"c")],
        ],
        true,
    );
    damaged[64 + 30] ^= 0x01;
    vec![
        ("empty", segment(512, &[], true)),
        (
            "three-batches",
            segment(
                1024,
                &[
                    vec![entry(1, 1, b"x"), hs.clone()],
                    vec![entry(2, 1, b"yy"), entry(3, 1, b"")],
                ],
                true,
            ),
        ),
        (
            "torn-tail",
            segment(
                1024,
                &[vec![entry(1, 1, b"ok")], vec![entry(2, 1, b"lost")]],
                false,
            ),
        ),
        (
            "truncate-and-snapshot",
            segment(
                1024,
                &[
                    vec![entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
                    vec![entry(2, 2, b"B")],
                    vec![
                        Record::SnapshotMarker(SnapshotMarker { index: 9, term: 2 }),
                        entry(10, 2, b"j"),
                    ],
                    vec![Record::CleanShutdown { last_index: 10 }],
                ],
                true,
            ),
        ),
        ("damaged-middle", damaged),
    ]
}

fn check_or_write(target: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let dir = corpus_dir(target);
    let write = std::env::var("RAFTKV_WRITE_CORPUS").is_ok();
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds {
        let path = dir.join(format!("seed-{name}"));
        if write {
            fs::write(&path, &bytes).unwrap();
        } else {
            let stored = fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert_eq!(
                stored,
                bytes,
                "{} is stale; regenerate (see file doc)",
                path.display()
            );
        }
    }
}

#[test]
fn seed_corpus_is_up_to_date_and_means_what_it_says() {
    check_or_write("fuzz_wal_frame", frame_seeds());
    check_or_write("fuzz_wal_replay", replay_seeds());
    // The seeds exercise the intended paths of the pure decoders.
    for (name, bytes) in frame_seeds() {
        let prev = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        assert!(
            raftkv::wal::frame::decode_frame(&bytes[4..], Some(prev)).is_ok(),
            "{name}"
        );
    }
    let mut outcomes = Vec::new();
    for (name, bytes) in replay_seeds() {
        let mut state = raftkv::wal::replay::LogState::default();
        let result =
            raftkv::wal::replay::replay_segment(&bytes, Path::new(name), None, true, &mut state);
        outcomes.push((
            name,
            result.map(|end| (state.entries.len(), end.torn_at.is_some())),
        ));
    }
    assert!(matches!(outcomes[0].1, Ok((0, false))), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1].1, Ok((3, false))), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2].1, Ok((1, true))), "{:?}", outcomes[2]);
    assert!(matches!(outcomes[3].1, Ok((1, false))), "{:?}", outcomes[3]);
    assert!(
        outcomes[4].1.as_ref().is_err_and(|err| err.is_damage()),
        "{:?}",
        outcomes[4]
    );
}

#[test]
fn every_corpus_file_replays_without_panic() {
    for (target, run) in [
        ("fuzz_wal_frame", fuzz_wal_frame as fn(&[u8])),
        ("fuzz_wal_replay", fuzz_wal_replay as fn(&[u8])),
    ] {
        let Ok(listing) = fs::read_dir(corpus_dir(target)) else {
            continue;
        };
        for item in listing {
            let bytes = fs::read(item.unwrap().path()).unwrap();
            run(&bytes);
            // Every truncation and a flip per byte of each seed must not panic either.
            for cut in 0..bytes.len().min(600) {
                run(&bytes[..cut]);
            }
            for at in (0..bytes.len()).step_by(7) {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0xFF;
                run(&flipped);
            }
        }
    }
}

/// Seeded random mutations of the seeds (several bytes overwritten, lengths changed, header
/// fields set to extremes) through both entry points: no panic. Prints the seed on failure.
#[test]
fn random_mutations_never_panic() {
    let base_seed: u64 = std::env::var("RAFTKV_FUZZ_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x5EED);
    let seeds: Vec<Vec<u8>> = frame_seeds()
        .into_iter()
        .chain(replay_seeds())
        .map(|(_, bytes)| bytes)
        .collect();
    for round in 0..3000u64 {
        let seed = base_seed.wrapping_add(round);
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut bytes = seeds[(next() % seeds.len() as u64) as usize].clone();
        for _ in 0..1 + next() % 6 {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 4 {
                0 => bytes[at] = next() as u8,
                1 => bytes[at] = 0xFF,
                2 => bytes[at] = 0,
                _ => {
                    let end = (at + 8).min(bytes.len());
                    bytes[at..end].fill(0xFF);
                }
            }
        }
        if next() % 5 == 0 {
            let len = (next() % (bytes.len() as u64 + 1)) as usize;
            bytes.truncate(len);
        }
        let outcome = std::panic::catch_unwind(|| {
            fuzz_wal_frame(&bytes);
            fuzz_wal_replay(&bytes);
        });
        assert!(
            outcome.is_ok(),
            "panic on mutated input; replay with RAFTKV_FUZZ_SEED={seed} (round 0)"
        );
    }
}
