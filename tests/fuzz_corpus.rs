//! Replays every committed fuzz corpus under `cargo test`, so the fuzz targets' assertions run
//! on every build even where `cargo fuzz` (nightly) is absent. Each target's logic lives in the
//! library; `fuzz/fuzz_targets/*.rs` are one-line wrappers around the same functions.

use std::path::Path;

type Target = fn(&[u8]);

/// Every fuzz target and the library function it calls.
fn targets() -> Vec<(&'static str, Target)> {
    vec![
        (
            "fuzz_request_parser",
            raftkv::api::fuzz::fuzz_request_parser,
        ),
        (
            "fuzz_peer_frames",
            raftkv::transport::frame::fuzz_peer_frames,
        ),
        ("fuzz_store", raftkv::store::fuzz_store),
        ("fuzz_wal_frame", raftkv::wal::fuzz_wal_frame),
        ("fuzz_wal_replay", raftkv::wal::fuzz_wal_replay),
        ("fuzz_sim_schedule", raftkv::sim::fuzz_sim_schedule),
        ("fuzz_raft_codec", raftkv::raft::codec::fuzz_raft_codec),
        ("fuzz_auth_decoders", raftkv::api::auth::fuzz_auth_decoders),
    ]
}

#[test]
fn every_corpus_file_replays_without_a_failure() {
    let corpus_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets() {
        let dir = corpus_root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()))
            .map(|entry| entry.expect("reading a corpus entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("reading a corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {name} failed on {}",
                file.display()
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus inputs");
}

#[test]
fn every_fuzz_target_file_is_replayed_here() {
    let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let known: Vec<&str> = targets().iter().map(|(name, _)| *name).collect();
    for entry in std::fs::read_dir(targets_dir).expect("fuzz/fuzz_targets exists") {
        let path = entry.expect("dir entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            known.contains(&stem.as_str()),
            "fuzz target {stem} has no corpus replay in tests/fuzz_corpus.rs"
        );
    }
}
