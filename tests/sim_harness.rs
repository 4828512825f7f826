//! The harness must be able to fail: break the core on purpose and require the sweep to find
//! a safety violation; and the same seed must replay the same trace byte for byte.

use raftkv::sim::{SimOptions, Simulation};

#[test]
fn sweep_catches_votes_granted_without_the_log_check() {
    let mut found = None;
    let mut tried = 0;
    for seed in 0..300 {
        tried += 1;
        let mut opts = SimOptions::from_seed(seed);
        opts.unsafe_skip_vote_log_check = true;
        if let Err(v) = Simulation::new(seed, opts).run() {
            if v.rule != "liveness" {
                found = Some(v);
                break;
            }
        }
    }
    let v = found.unwrap_or_else(|| {
        panic!("no safety violation in {tried} seeds with the vote log check disabled")
    });
    println!("broken core caught after {tried} seeds: {v}");
}

#[test]
fn the_correct_core_passes_the_seeds_that_catch_the_broken_one() {
    for seed in 0..20 {
        let opts = SimOptions::from_seed(seed);
        if let Err(v) = Simulation::new(seed, opts).run() {
            panic!("{v}");
        }
    }
}

fn trace_of(seed: u64) -> String {
    let mut opts = SimOptions::from_seed(seed);
    opts.record_trace = true;
    let mut sim = Simulation::new(seed, opts);
    let result = sim.run();
    let mut trace = sim.trace.take().expect("trace was recorded");
    trace.push_str(&format!("result: {result:?}\n"));
    trace
}

#[test]
fn same_seed_same_trace_byte_for_byte() {
    for seed in [3, 77, 1234] {
        let a = trace_of(seed);
        let b = trace_of(seed);
        assert!(
            a.len() > 10_000,
            "seed {seed}: trace suspiciously short ({} bytes)",
            a.len()
        );
        assert!(
            a == b,
            "seed {seed}: two runs differ (first difference at byte {:?})",
            a.bytes().zip(b.bytes()).position(|(x, y)| x != y)
        );
    }
    assert_ne!(
        trace_of(3),
        trace_of(4),
        "different seeds should give different traces"
    );
}
