//! `fuzz_sim_schedule` on many pseudo-random byte strings: schedules built from arbitrary
//! bytes never break a checker (the fuzz target's property), and the seed files decode.

use raftkv::raft::rng::SplitMix64;
use raftkv::sim::fuzz_sim_schedule;

#[test]
fn random_byte_schedules_keep_every_checker_green() {
    let runs: u64 = std::env::var("SIM_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    for seed in 0..runs {
        let mut rng = SplitMix64::new(seed);
        let steps = 50 + rng.below(600);
        // Mostly synchronous rounds, deliveries and proposals; faults now and then.
        const WEIGHTED_OPS: [u8; 24] = [
            2, 2, 2, 2, 2, 2, 3, 3, 0, 4, 5, 13, 13, 13, 14, 7, 8, 9, 10, 10, 10, 11, 12, 15,
        ];
        let mut bytes = vec![rng.below(256) as u8];
        for _ in 0..steps {
            let op = WEIGHTED_OPS[rng.below(WEIGHTED_OPS.len() as u64) as usize];
            bytes.push(op | ((rng.below(16) as u8) << 4));
            bytes.push(rng.below(256) as u8);
        }
        if rng.chance(1, 2) {
            bytes.push(12); // heal before the end, sometimes
        }
        let result = std::panic::catch_unwind(|| fuzz_sim_schedule(&bytes));
        assert!(
            result.is_ok(),
            "schedule from seed {seed} failed; bytes: {bytes:?}"
        );
    }
}

#[test]
fn corpus_seed_files_run() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/fuzz_sim_schedule");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: {} not found", dir.display());
        return;
    };
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("readable corpus file");
        fuzz_sim_schedule(&bytes);
        count += 1;
    }
    assert!(
        count >= 5,
        "expected at least 5 seed files in {}, found {count}",
        dir.display()
    );
}

#[test]
fn empty_and_tiny_inputs_are_fine() {
    fuzz_sim_schedule(&[]);
    fuzz_sim_schedule(&[0]);
    fuzz_sim_schedule(&[1, 13, 0]);
}
