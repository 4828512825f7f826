//! Seed sweeps of the deterministic simulator.
//!
//! `cargo test --test sim_sweep` runs 500 seeds; `SIM_SEEDS=5000` runs more, `SIM_SEED=N`
//! replays one seed (printing its trace on failure, or always with `SIM_TRACE=1`). Every
//! failure prints its seed.

use raftkv::sim::{run_seed, SimOptions, Simulation};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found {v:?}"))
    })
}

#[test]
fn sweep_seeds_all_checkers_hold() {
    if let Some(seed) = env_u64("SIM_SEED") {
        let mut opts = SimOptions::from_seed(seed);
        opts.record_trace = true;
        let mut sim = Simulation::new(seed, opts);
        let result = sim.run();
        if result.is_err() || std::env::var_os("SIM_TRACE").is_some() {
            println!("{}", sim.trace.take().unwrap_or_default());
        }
        match result {
            Ok(summary) => println!("seed {seed}: {summary:?}"),
            Err(v) => panic!("{v}"),
        }
        return;
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(500);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let mut failures = Vec::new();
    let mut totals = raftkv::sim::SimSummary::default();
    for seed in first..first + seeds {
        match run_seed(seed) {
            Ok(s) => {
                totals.acknowledged += s.acknowledged;
                totals.committed += s.committed;
                totals.leader_terms += s.leader_terms;
                totals.delivered += s.delivered;
                totals.crashes += s.crashes;
                totals.snapshots_sent += s.snapshots_sent;
                totals.reads_answered += s.reads_answered;
                totals.leader_crashes_after_sending_entries +=
                    s.leader_crashes_after_sending_entries;
            }
            Err(v) => {
                eprintln!("FAILED {v}");
                failures.push(v);
            }
        }
    }
    println!("{seeds} seeds from {first}: {totals:?}");
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed; first: {}",
        failures.len(),
        failures[0]
    );
    // The sweep must exercise the protocol, or it proves nothing.
    assert!(
        totals.acknowledged > seeds as usize * 10,
        "too few acknowledged writes: {totals:?}"
    );
    assert!(
        totals.crashes > 0 && totals.snapshots_sent > 0 && totals.reads_answered > 0,
        "{totals:?}"
    );
    assert!(
        totals.leader_crashes_after_sending_entries > 0,
        "no leader crashed between sending entries and syncing them: {totals:?}"
    );
}
