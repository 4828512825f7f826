//! Network faults on real processes, through the test's TCP proxy on every peer link, under a
//! recorded workload: isolate the leader (connections reset, or silently blackholed), split
//! 3 members 1/2 and 5 members 2/3 and 1/4 (the leader on either side), lose one direction
//! of the leader's links; heal after each. Afterwards: convergence, every acknowledged write
//! on every member, a linearizable history (see `cluster::faults`).

mod cluster;
mod common;

use cluster::faults::{run_cycles, Fault};
use cluster::history::WorkloadConfig;
use cluster::proxy::CutMode;
use cluster::{test_seed, Cluster};

/// Requests to a cut-off member wait for their timeout: more clients keep the load up.
const CONFIG: WorkloadConfig = WorkloadConfig {
    clients: 8,
    keys: 6,
    request_timeout_ms: 2000,
    think_ms: 5,
};

/// The tests share 2 cores with everything else: run them one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn three_members_survive_isolation_splits_and_one_way_loss() {
    let _serial = SERIAL.lock();
    let seed = test_seed("three_members_survive_isolation_splits_and_one_way_loss");
    let mut cluster = Cluster::start_with(3, &["--snapshot-count", "100"]).unwrap();
    let faults = [
        Fault::IsolateLeader(CutMode::Reset),
        Fault::Split {
            leader_side: 2,
            mode: CutMode::Blackhole,
        },
        Fault::IsolateLeader(CutMode::Blackhole),
        Fault::OneWayFromLeader,
        Fault::OneWayToLeader,
    ];
    let report = run_cycles(&mut cluster, &faults, CONFIG, seed);
    report.print("partitions, 3 members");
    assert!(
        !cluster.proxies.links_seen().is_empty(),
        "no peer traffic went through the proxies"
    );
}

#[test]
fn five_members_survive_splits_two_three_and_one_four() {
    let _serial = SERIAL.lock();
    let seed = test_seed("five_members_survive_splits_two_three_and_one_four");
    let mut cluster = Cluster::start(5).unwrap();
    let faults = [
        Fault::Split {
            leader_side: 2,
            mode: CutMode::Reset,
        },
        Fault::Split {
            leader_side: 3,
            mode: CutMode::Blackhole,
        },
        Fault::IsolateLeader(CutMode::Blackhole),
        Fault::Split {
            leader_side: 4,
            mode: CutMode::Reset,
        },
        Fault::OneWayFromLeader,
    ];
    let report = run_cycles(&mut cluster, &faults, CONFIG, seed);
    report.print("partitions, 5 members");
}
