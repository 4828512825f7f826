//! Fault cycles on a [`Cluster`] under a recorded workload, and the checks after healing.
//!
//! One cycle: find the leader, inject a fault, measure (when the fault took the leader away
//! from the majority) the time until a write through the majority's members is acknowledged,
//! check that the majority then follows a new leader (the fault really took the old one away),
//! hold the fault a little longer, heal (restarted members must serve within 5 s), and wait
//! until a leader is agreed again. After the
//! last cycle the workload stops, the cluster must converge (same `X-Etcd-Index`, same
//! recursive listing on every member), every acknowledged `/acked` key must be on every member
//! and the history must be linearizable.

use std::time::{Duration, Instant};

use super::history::{
    check_linearizable, first_write_after, median_and_worst_ms, Workload, WorkloadConfig,
};
use super::proxy::CutMode;
use super::{Cluster, TestRng};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 the leader, restart it from its data dir after the write probe.
    KillLeader,
    /// kill -9 every member at once and restart them all from their data dirs (every
    /// acknowledged write must survive).
    KillAll,
    /// kill -9 a follower and restart it at once.
    RestartFollower,
    /// SIGSTOP the leader, SIGCONT after the write probe.
    PauseLeader,
    /// SIGSTOP a follower for a while.
    PauseFollower,
    /// Cut every link of the leader, both ways.
    IsolateLeader(CutMode),
    /// Split the cluster: the leader with `leader_side - 1` others versus the rest.
    Split { leader_side: usize, mode: CutMode },
    /// Lose everything the leader sends to every other member (it still hears them).
    OneWayFromLeader,
    /// Lose everything the others send to the leader (it still reaches them).
    OneWayToLeader,
}

/// What a run of cycles measured.
#[derive(Debug, Default)]
pub struct FaultReport {
    pub cycles: usize,
    pub operations_checked: usize,
    pub unknown_operations: u64,
    pub acked_writes: u64,
    /// Time from the fault that took the leader away to the first acknowledged write.
    pub leader_loss_to_write: Vec<Duration>,
    /// Time from restarting one member (the others up) until it served `GET /v2/keys/`.
    pub restart_to_serve: Vec<Duration>,
}

impl FaultReport {
    pub fn print(&self, label: &str) {
        let (median, worst) = median_and_worst_ms(&self.leader_loss_to_write);
        let (restart_median, restart_worst) = median_and_worst_ms(&self.restart_to_serve);
        println!(
            "METRIC {label}: fault cycles {}, operations checked {} ({} unknown), acknowledged writes {}, \
             leader loss -> first write: median {median} ms, worst {worst} ms over {} samples {:?}; \
             restart -> serving: median {restart_median} ms, worst {restart_worst} ms over {} restarts",
            self.cycles,
            self.operations_checked,
            self.unknown_operations,
            self.acked_writes,
            self.leader_loss_to_write.len(),
            self.leader_loss_to_write
                .iter()
                .map(Duration::as_millis)
                .collect::<Vec<_>>(),
            self.restart_to_serve.len()
        );
    }
}

/// How long a fault is held after it was injected (or after the write probe succeeded).
const HOLD: Duration = Duration::from_millis(1500);
/// A member restarted while a quorum is up must serve within this (raftkv waits at most 5 s
/// for its publish before serving anyway, which would mean it could not rejoin).
const RESTART_LIMIT: Duration = Duration::from_secs(5);
/// Longest wait for a write after a leader loss.
const WRITE_LIMIT: Duration = Duration::from_secs(15);

/// Runs `faults` in order under a workload and checks everything; panics with the seed and
/// the members' logs on any failure.
pub fn run_cycles(
    cluster: &mut Cluster,
    faults: &[Fault],
    config: WorkloadConfig,
    seed: u64,
) -> FaultReport {
    let mut rng = TestRng::new(seed);
    let ports: Vec<u16> = cluster
        .active()
        .iter()
        .map(|&i| cluster.members[i].client_port)
        .collect();
    let workload = Workload::start(ports, config, seed);
    let mut report = FaultReport::default();
    std::thread::sleep(Duration::from_millis(500));
    // CI runs each list once; RAFTKV_FAULT_ROUNDS=<n> repeats it for a local soak.
    let rounds: usize = std::env::var("RAFTKV_FAULT_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1)
        .max(1);
    let repeated: Vec<Fault> = (0..rounds).flat_map(|_| faults.iter().copied()).collect();
    for (cycle, fault) in repeated.iter().enumerate() {
        let leader = cluster
            .wait_leader(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("cycle {cycle} ({fault:?}), seed {seed}: {e}"));
        let others: Vec<usize> = cluster
            .active()
            .into_iter()
            .filter(|&i| i != leader)
            .collect();
        let follower = others[rng.below(others.len() as u64) as usize];
        println!("cycle {cycle}: {fault:?} (leader m{leader}, follower m{follower})");
        let injected = Instant::now();
        // Members on the majority side, where writes must resume.
        let mut majority: Vec<usize> = others.clone();
        let mut leader_lost = true;
        match *fault {
            Fault::KillLeader => cluster.kill9(leader),
            Fault::PauseLeader => cluster.pause(leader),
            Fault::IsolateLeader(mode) => cluster.partition(&[leader], &others, mode),
            Fault::Split { leader_side, mode } => {
                let mut shuffled = others.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let mut side_a = vec![leader];
                side_a.extend_from_slice(&shuffled[..leader_side - 1]);
                let side_b: Vec<usize> = shuffled[leader_side - 1..].to_vec();
                cluster.partition(&side_a, &side_b, mode);
                println!("  split {side_a:?} | {side_b:?}");
                if side_a.len() * 2 > cluster.active().len() {
                    leader_lost = false;
                    majority = side_a;
                } else {
                    majority = side_b;
                }
            }
            Fault::OneWayFromLeader => {
                for &other in &others {
                    cluster.cut_one_way(leader, other, CutMode::Blackhole);
                }
            }
            Fault::OneWayToLeader => {
                leader_lost = false;
                majority = cluster.active();
                for &other in &others {
                    cluster.cut_one_way(other, leader, CutMode::Blackhole);
                }
            }
            Fault::KillAll => {
                // Not a leader-loss sample: the time includes the restarts.
                leader_lost = false;
                let everyone = cluster.active();
                for &index in &everyone {
                    cluster.kill9(index);
                }
                std::thread::sleep(Duration::from_millis(200));
                let took = cluster
                    .restart_all(&everyone)
                    .unwrap_or_else(|e| panic!("cycle {cycle}, seed {seed}: {e}"));
                println!("  all restarted and served after {} ms", took.as_millis());
                majority = everyone;
            }
            Fault::RestartFollower => {
                leader_lost = false;
                cluster.kill9(follower);
                std::thread::sleep(Duration::from_millis(200));
                let took = cluster
                    .restart(follower)
                    .unwrap_or_else(|e| panic!("cycle {cycle}, seed {seed}: {e}"));
                println!(
                    "  m{follower} restarted and served after {} ms",
                    took.as_millis()
                );
                report.restart_to_serve.push(took);
                assert!(
                    took < RESTART_LIMIT,
                    "cycle {cycle}, seed {seed}: m{follower} served {took:?} after its restart\n{}",
                    cluster.members[follower].log_tail()
                );
                majority = cluster.active();
            }
            Fault::PauseFollower => {
                leader_lost = false;
                cluster.pause(follower);
                majority = cluster
                    .active()
                    .into_iter()
                    .filter(|&i| i != follower)
                    .collect();
            }
        }
        let probe_ports: Vec<u16> = majority
            .iter()
            .map(|&i| cluster.members[i].client_port)
            .collect();
        match first_write_after(injected, &probe_ports, WRITE_LIMIT) {
            Some(took) => {
                println!("  first write {} ms after the fault", took.as_millis());
                if leader_lost {
                    report.leader_loss_to_write.push(took);
                }
            }
            None => panic!(
                "cycle {cycle} ({fault:?}), seed {seed}: no write acknowledged by {majority:?} within {WRITE_LIMIT:?}\n{}",
                cluster.logs()
            ),
        }
        if leader_lost {
            // The write went through a new leader on the majority side: the fault really took
            // the old one away (a proxy that cut nothing would fail here).
            let old_id = cluster.members[leader].id;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let seen = cluster.leaders_seen_by(&majority);
                let new_leader = seen.iter().all(|&id| id != old_id && id != 0)
                    && seen.windows(2).all(|pair| pair[0] == pair[1]);
                if new_leader {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cycle {cycle} ({fault:?}), seed {seed}: the majority {majority:?} still sees leaders {seen:x?} (old leader {old_id:x})"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        std::thread::sleep(HOLD);
        // Heal.
        cluster.heal();
        match *fault {
            Fault::KillLeader => {
                let took = cluster
                    .restart(leader)
                    .unwrap_or_else(|e| panic!("cycle {cycle}, seed {seed}: {e}"));
                println!(
                    "  m{leader} restarted and served after {} ms",
                    took.as_millis()
                );
                report.restart_to_serve.push(took);
                assert!(
                    took < RESTART_LIMIT,
                    "cycle {cycle}, seed {seed}: m{leader} served {took:?} after its restart\n{}",
                    cluster.members[leader].log_tail()
                );
            }
            Fault::PauseLeader => cluster.resume(leader),
            Fault::PauseFollower => cluster.resume(follower),
            _ => {}
        }
        report.cycles += 1;
    }
    finish_and_check(cluster, workload, seed, &mut report);
    report
}

/// Stops the workload, waits for a leader and for convergence, and checks that every
/// acknowledged `/acked` key is on every live member and that the history is linearizable;
/// fills in the report's counts. Panics (with the seed) on any failure.
pub fn finish_and_check(
    cluster: &mut Cluster,
    workload: Workload,
    seed: u64,
    report: &mut FaultReport,
) {
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("before the final checks, seed {seed}: {e}"));
    let acked = workload
        .acked_writes
        .load(std::sync::atomic::Ordering::Relaxed);
    let result = workload.finish();
    report.operations_checked = result.history.len();
    report.unknown_operations = result.unknown;
    report.acked_writes = acked;
    let (index, _) = cluster
        .wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!(
        "converged at index {index}; {} acknowledged /acked keys",
        result.acked_keys.len()
    );
    cluster
        .check_keys_everywhere(&result.acked_keys)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(e) = check_linearizable(&result, seed) {
        panic!("{e}");
    }
}
