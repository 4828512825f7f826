//! The cluster half of `compare`: a 3-member raftkv cluster and a 3-member etcd cluster, each
//! on 127.0.0.1 free ports with fresh data dirs, and the core workloads sent to the leader and
//! to a follower, alternating between the two systems as the single-node phase does.
//!
//! The leader is found as tools find it, through `GET /v2/stats/self` (`state: StateLeader`);
//! the follower is the first other member. A follower forwards writes to its leader (raftkv
//! over its peer protocol, etcd by proxying), so "to a follower" measures that extra hop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bench::compare::{comparison_row, workload_medians, COMPARISON_HEADER};
use crate::bench::process::{ProcessError, Server, ServerKind, ServerSpec, TempDir};
use crate::bench::report::{table, workload_line};
use crate::bench::workload::{preload, Operation, RunSettings, Workload, WorkloadResult};

/// What the cluster phase runs.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Members per cluster. Invariant: at least 2 (a leader and a follower).
    pub members: usize,
    pub rounds: usize,
    pub max_requests: u64,
    pub time_limit: Duration,
    pub request_timeout: Duration,
    pub preload_keys: u64,
    /// How long a cluster may take to serve and elect a leader.
    pub start_limit: Duration,
}

/// A running cluster; its processes are killed (by PID) when it drops.
pub struct RunningCluster {
    pub kind: ServerKind,
    pub members: Vec<Server>,
    /// Index of the member that said it leads.
    pub leader: usize,
    _data_dir: TempDir,
}

impl RunningCluster {
    pub fn leader_url(&self) -> String {
        self.members[self.leader].spec.client_url()
    }

    /// The first member that is not the leader.
    pub fn follower_url(&self) -> String {
        let follower = (self.leader + 1) % self.members.len();
        self.members[follower].spec.client_url()
    }
}

/// Starts a `members`-member cluster of `kind` and waits until every member answers and one
/// of them reports itself leader.
pub fn start_cluster(
    kind: ServerKind,
    program: &Path,
    members: usize,
    start_limit: Duration,
) -> Result<RunningCluster, ProcessError> {
    assert!(
        members >= 2,
        "a cluster phase needs at least 2 members, got {members}"
    );
    let data_dir = TempDir::new(&format!("{}-cluster", kind.label()))?;
    let specs = ServerSpec::cluster(kind, program, &data_dir.path, members);
    let mut servers = Vec::new();
    for spec in &specs {
        servers.push(spec.spawn()?);
    }
    for server in &mut servers {
        server.wait_ready(start_limit)?;
    }
    let deadline = Instant::now() + start_limit;
    while Instant::now() < deadline {
        if let Some(leader) = servers
            .iter()
            .position(|s| s.raft_state().as_deref() == Some("StateLeader"))
        {
            return Ok(RunningCluster {
                kind,
                members: servers,
                leader,
                _data_dir: data_dir,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ProcessError::NoLeader {
        program: program.to_path_buf(),
        waited: start_limit,
    })
}

/// The workloads run against clusters: the write and read targets.
pub fn cluster_workloads() -> Vec<Workload> {
    [
        ("put c=1", Operation::PutUniqueKeys, 1),
        ("put c=64", Operation::PutUniqueKeys, 64),
        ("get c=64", Operation::GetPreloaded { quorum: false }, 64),
        (
            "get quorum c=64",
            Operation::GetPreloaded { quorum: true },
            64,
        ),
    ]
    .into_iter()
    .map(|(name, operation, concurrency)| Workload {
        name: name.into(),
        operation,
        concurrency,
    })
    .collect()
}

/// Where a run sends its requests.
const TARGETS: [&str; 2] = ["leader", "follower"];

/// What the cluster phase hands back to `compare`.
#[derive(Debug, Clone)]
pub struct ClusterOutcome {
    /// The medians table, ready to print.
    pub table: String,
    /// Per system, in the order given: failed requests plus workers that never connected.
    pub failures: Vec<u64>,
    /// Per system: connections accepted but left unanswered (re-dialled).
    pub stalled_connections: Vec<u64>,
}

/// Runs the cluster phase for each `(kind, program)`.
pub fn run_cluster_phase(
    settings: &ClusterSettings,
    kinds: &[(ServerKind, PathBuf)],
) -> Result<ClusterOutcome, ProcessError> {
    let workloads = cluster_workloads();
    let mut clusters = Vec::new();
    let mut run_settings = Vec::new();
    for (kind, program) in kinds {
        let cluster = start_cluster(*kind, program, settings.members, settings.start_limit)?;
        let key_prefix = crate::bench::unique_key_prefix();
        let preloaded = preload(
            &[cluster.leader_url()],
            &key_prefix,
            settings.preload_keys,
            64,
            settings.request_timeout,
        )
        .unwrap_or_else(|error| {
            println!("note: {} cluster: preload failed: {error}", kind.label());
            0
        });
        for member in &cluster.members {
            println!(
                "{} cluster member {}: pid {}, {}",
                kind.label(),
                member.spec.name,
                member.pid(),
                member.spec.client_url()
            );
        }
        println!(
            "{} cluster: {} members, leader {}, follower {}, preloaded {preloaded} keys",
            kind.label(),
            cluster.members.len(),
            cluster.leader_url(),
            cluster.follower_url()
        );
        let per_target: Vec<RunSettings> = [cluster.leader_url(), cluster.follower_url()]
            .into_iter()
            .map(|endpoint| RunSettings {
                endpoints: vec![endpoint],
                max_requests: settings.max_requests,
                time_limit: settings.time_limit,
                request_timeout: settings.request_timeout,
                key_prefix: key_prefix.clone(),
                preloaded_keys: preloaded,
            })
            .collect();
        run_settings.push(per_target);
        clusters.push(cluster);
    }
    // results[kind][workload][target] holds every round.
    let mut results: Vec<Vec<Vec<Vec<WorkloadResult>>>> =
        vec![vec![vec![Vec::new(); TARGETS.len()]; workloads.len()]; clusters.len()];
    let mut turn = 0usize;
    for round in 0..settings.rounds {
        println!("\n== cluster round {} of {}", round + 1, settings.rounds);
        for (w, workload) in workloads.iter().enumerate() {
            for (t, target) in TARGETS.iter().enumerate() {
                for position in 0..clusters.len() {
                    let k = (position + turn) % clusters.len();
                    let run = &run_settings[k][t];
                    if run.preloaded_keys == 0
                        && matches!(workload.operation, Operation::GetPreloaded { .. })
                    {
                        continue;
                    }
                    let result = crate::bench::workload::run_workload(workload, run);
                    println!(
                        "{:<7} -> {:<8} {}",
                        clusters[k].kind.label(),
                        target,
                        workload_line(&result)
                    );
                    results[k][w][t].push(result);
                }
                turn += 1;
            }
        }
    }
    drop(clusters);
    let mut rows = Vec::new();
    for (w, workload) in workloads.iter().enumerate() {
        for (t, target) in TARGETS.iter().enumerate() {
            rows.push(comparison_row(
                format!("{} -> {target}", workload.name),
                workload_medians(&results[0][w][t]),
                results.get(1).and_then(|r| workload_medians(&r[w][t])),
            ));
        }
    }
    let per_system = |f: fn(&WorkloadResult) -> u64| -> Vec<u64> {
        results
            .iter()
            .map(|system| system.iter().flatten().flatten().map(f).sum())
            .collect()
    };
    Ok(ClusterOutcome {
        table: table(&COMPARISON_HEADER, &rows),
        failures: per_system(|r| r.failed_requests + r.failed_workers),
        stalled_connections: per_system(|r| r.stalled_connections),
    })
}
