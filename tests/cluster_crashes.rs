//! Crash faults on real processes under a recorded workload: kill -9 the leader repeatedly
//! (restarting it from its data dir), SIGSTOP/SIGCONT the leader and a follower, kill and
//! restart followers, kill every member at once and restart them all; on 3 and 5 members. After the faults: convergence, every acknowledged
//! write on every member, and a linearizable history (see `cluster::faults`).

mod cluster;
mod common;

use cluster::faults::{run_cycles, Fault};
use cluster::history::WorkloadConfig;
use cluster::{test_seed, Cluster};

/// The two tests share 2 cores with everything else: run them one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn three_members_survive_leader_kills_pauses_and_restarts() {
    let _serial = SERIAL.lock();
    let seed = test_seed("three_members_survive_leader_kills_pauses_and_restarts");
    let mut cluster = Cluster::start(3).unwrap();
    let faults = [
        Fault::KillLeader,
        Fault::PauseFollower,
        Fault::KillLeader,
        Fault::RestartFollower,
        Fault::PauseLeader,
        Fault::KillLeader,
        Fault::KillAll,
    ];
    let report = run_cycles(&mut cluster, &faults, WorkloadConfig::default(), seed);
    report.print("crashes, 3 members");
}

#[test]
fn five_members_survive_leader_kills_pauses_and_restarts() {
    let _serial = SERIAL.lock();
    let seed = test_seed("five_members_survive_leader_kills_pauses_and_restarts");
    let mut cluster = Cluster::start_with(5, &["--snapshot-count", "150"]).unwrap();
    let faults = [
        Fault::KillLeader,
        Fault::PauseLeader,
        Fault::KillLeader,
        Fault::RestartFollower,
        Fault::PauseFollower,
        Fault::KillLeader,
    ];
    let report = run_cycles(&mut cluster, &faults, WorkloadConfig::default(), seed);
    report.print("crashes, 5 members");
}
