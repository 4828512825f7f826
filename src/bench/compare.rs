//! `raftkv-bench compare`: raftkv and a real etcd side by side on this machine.
//!
//! Both servers get a fresh data directory under the temp dir, 127.0.0.1 free ports, and the
//! same durability settings (etcd fsyncs its WAL on every commit by default; raftkv is run with
//! its defaults, which sync every committed batch once its WAL exists — a build without a WAL
//! shows up in the restart row, whose read then never succeeds). Each workload runs on both servers alternately, `rounds` times, the order flipping
//! every time (raftkv first, then etcd first) so neither always runs on a warmer machine; the
//! table shows medians over rounds and raftkv/etcd ratios. Then, on fresh servers one at a
//! time: resident memory after loading the memory key set, data-dir size, and the time from a
//! restart's spawn to the first successful read of a loaded key. The disk's raw 4 KiB
//! fdatasync latency (appending, and overwriting a pre-written file) and the raftkv binary's
//! size are printed for context.
//!
//! Last, unless skipped, the same core workloads against a 3-member cluster of each, to the
//! leader and to a follower ([`crate::bench::cluster`]).
//!
//! When etcd is not installed, the etcd columns are left empty with a printed note.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::bench::cluster::{run_cluster_phase, ClusterSettings};
use crate::bench::disk::{append_fdatasync_latency, overwrite_fdatasync_latency};
use crate::bench::process::{
    apparent_size_bytes, disk_usage_bytes, ProcessError, Server, ServerKind, ServerSpec, TempDir,
};
use crate::bench::report::{fan_out_line, median, ratio, table, workload_line};
use crate::bench::watch::{run_fan_out, FanOutPlan, FanOutResult};
use crate::bench::workload::{
    preload, preloaded_key, run_workload, settings_with_preload, standard_workloads, RunSettings,
    Workload, WorkloadResult,
};

/// Everything `compare` needs to know.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    pub raftkv: PathBuf,
    /// None: etcd is absent and its columns are skipped.
    pub etcd: Option<PathBuf>,
    /// Runs of each workload on each server. Invariant: at least 1.
    pub rounds: usize,
    pub max_requests: u64,
    pub time_limit: Duration,
    pub request_timeout: Duration,
    /// Keys preloaded for the get and mix workloads.
    pub preload_keys: u64,
    pub fan_out: FanOutPlan,
    /// Keys loaded before measuring memory, data-dir size and restart time (0: skip).
    pub memory_keys: u64,
    /// How long a server may take to answer after a start.
    pub start_limit: Duration,
    /// Members of the clusters of the cluster phase (below 2: the phase is skipped).
    pub cluster_members: usize,
}

/// Columns of the side-by-side table.
pub(crate) const COMPARISON_HEADER: [&str; 10] = [
    "workload",
    "raftkv/s",
    "etcd/s",
    "ratio",
    "raftkv p50 ms",
    "etcd p50 ms",
    "ratio",
    "raftkv p99 ms",
    "etcd p99 ms",
    "ratio",
];

/// One row of the side-by-side table.
pub(crate) fn comparison_row(
    name: String,
    ours: Option<Medians>,
    theirs: Option<Medians>,
) -> Vec<String> {
    let ms = |nanos: f64| format!("{:.3}", nanos / 1e6);
    let ours_throughput = ours.map(|m| m.throughput);
    vec![
        name,
        cell(ours_throughput, |v| format!("{v:.0}")),
        cell(theirs.map(|m| m.throughput), |v| format!("{v:.0}")),
        ratio(ours_throughput.unwrap_or(0.0), theirs.map(|m| m.throughput)),
        cell(ours.map(|m| m.p50_nanos), ms),
        cell(theirs.map(|m| m.p50_nanos), ms),
        ratio(
            ours.map(|m| m.p50_nanos).unwrap_or(0.0),
            theirs.map(|m| m.p50_nanos),
        ),
        cell(ours.map(|m| m.p99_nanos), ms),
        cell(theirs.map(|m| m.p99_nanos), ms),
        ratio(
            ours.map(|m| m.p99_nanos).unwrap_or(0.0),
            theirs.map(|m| m.p99_nanos),
        ),
    ]
}

/// Medians of one workload on one server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Medians {
    throughput: f64,
    p50_nanos: f64,
    p99_nanos: f64,
}

pub(crate) fn workload_medians(results: &[WorkloadResult]) -> Option<Medians> {
    medians_of(results, WorkloadResult::throughput_per_second, |r| {
        &r.latency
    })
}

fn fan_out_medians(results: &[FanOutResult]) -> Option<Medians> {
    medians_of(results, FanOutResult::delivery_rate_per_second, |r| {
        &r.write_latency
    })
}

/// Medians over rounds of a rate and of a histogram's p50 and p99.
fn medians_of<R>(
    results: &[R],
    rate: impl Fn(&R) -> f64,
    latency: impl Fn(&R) -> &crate::bench::histogram::Histogram,
) -> Option<Medians> {
    if results.is_empty() {
        return None;
    }
    let quantile = |q: f64| {
        median(
            &results
                .iter()
                .map(|r| latency(r).quantile_nanos(q) as f64)
                .collect::<Vec<_>>(),
        )
    };
    Some(Medians {
        throughput: median(&results.iter().map(&rate).collect::<Vec<_>>()),
        p50_nanos: quantile(0.5),
        p99_nanos: quantile(0.99),
    })
}

/// One server under test during the workload phase.
struct Contender {
    kind: ServerKind,
    server: Server,
    _data_dir: TempDir,
    settings: RunSettings,
    /// results[w] holds every round of workload w.
    results: Vec<Vec<WorkloadResult>>,
    fan_outs: Vec<FanOutResult>,
}

fn start_server(
    kind: ServerKind,
    program: &std::path::Path,
    label: &str,
    start_limit: Duration,
) -> Result<(Server, TempDir), ProcessError> {
    let data_dir = TempDir::new(label)?;
    let spec = ServerSpec::new(kind, program.to_path_buf(), data_dir.path.join("data"));
    let mut server = spec.spawn()?;
    server.wait_ready(start_limit)?;
    Ok((server, data_dir))
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1024.0 * 1024.0))
}

fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_else(|| "-".into())
}

/// Memory, disk and restart figures of one server.
#[derive(Debug, Clone, Copy, Default)]
struct Footprint {
    load_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    data_dir_bytes: Option<f64>,
    data_dir_apparent_bytes: Option<f64>,
    restart_to_read_seconds: Option<f64>,
}

fn measure_footprint(
    kind: ServerKind,
    program: &std::path::Path,
    settings: &CompareSettings,
) -> Result<Footprint, ProcessError> {
    let data_dir = TempDir::new(&format!("{}-footprint", kind.label()))?;
    let spec = ServerSpec::new(kind, program.to_path_buf(), data_dir.path.join("data"));
    let mut server = spec.spawn()?;
    server.wait_ready(settings.start_limit)?;
    let prefix = "/footprint";
    let load_started = Instant::now();
    let mut footprint = Footprint::default();
    match preload(
        &[spec.client_url()],
        prefix,
        settings.memory_keys,
        64,
        settings.request_timeout,
    ) {
        Ok(_) => footprint.load_seconds = Some(load_started.elapsed().as_secs_f64()),
        Err(error) => {
            println!(
                "note: {}: loading {} keys failed: {error}",
                kind.label(),
                settings.memory_keys
            );
            return Ok(footprint);
        }
    }
    // Let background work settle (etcd compacts its request buffers, raftkv its batches).
    std::thread::sleep(Duration::from_millis(500));
    footprint.resident_bytes = server.resident_kib().map(|kib| kib as f64 * 1024.0);
    footprint.data_dir_bytes = Some(disk_usage_bytes(&spec.data_dir) as f64);
    footprint.data_dir_apparent_bytes = Some(apparent_size_bytes(&spec.data_dir) as f64);
    server.stop();
    let probe_key = preloaded_key(prefix, settings.memory_keys - 1);
    let mut restarted = spec.spawn()?;
    match restarted.time_to_first_read(&probe_key, settings.start_limit) {
        Some(elapsed) => footprint.restart_to_read_seconds = Some(elapsed.as_secs_f64()),
        None => println!(
            "note: {}: after a restart, {probe_key} was not readable (answered 'not found' for \
             {:?} after its first answer, or no answer within {:?}): the key was not durable",
            kind.label(),
            crate::bench::process::RESTART_GRACE,
            settings.start_limit
        ),
    }
    restarted.stop();
    Ok(footprint)
}

/// The two raw fdatasync probes of [`crate::bench::disk`], taken together.
struct DiskProbe {
    append: Option<crate::bench::histogram::Histogram>,
    overwrite: Option<crate::bench::histogram::Histogram>,
}

fn probe_disk() -> DiskProbe {
    let dir = TempDir::new("disk-probe").ok();
    DiskProbe {
        append: dir
            .as_ref()
            .and_then(|d| append_fdatasync_latency(&d.path, 2000, Duration::from_secs(2)).ok()),
        overwrite: dir
            .as_ref()
            .and_then(|d| overwrite_fdatasync_latency(&d.path, 2000, Duration::from_secs(2)).ok()),
    }
}

fn print_disk_probe(when: &str, probe: &DiskProbe) {
    let show = |latency: &Option<crate::bench::histogram::Histogram>| match latency {
        Some(latency) => format!(
            "p50 {:.3} ms, p99 {:.3} ms ({} samples)",
            latency.quantile_nanos(0.5) as f64 / 1e6,
            latency.quantile_nanos(0.99) as f64 / 1e6,
            latency.count()
        ),
        None => "probe failed".into(),
    };
    println!(
        "disk {when}: 4 KiB append + fdatasync {}; 4 KiB overwrite of a pre-written file + \
         fdatasync {}",
        show(&probe.append),
        show(&probe.overwrite)
    );
}

/// The first three fields of `/proc/loadavg`, or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

/// Runs the whole comparison and prints it. Errors only when a server cannot be started.
pub fn run_compare(settings: &CompareSettings) -> Result<(), ProcessError> {
    assert!(settings.rounds >= 1, "compare needs at least one round");
    let compare_started = Instant::now();
    println!("raftkv-bench compare");
    println!("  raftkv: {}", settings.raftkv.display());
    match &settings.etcd {
        Some(etcd) => println!("  etcd:   {}", etcd.display()),
        None => println!("  note: etcd not found: the etcd columns are skipped"),
    }
    println!(
        "  rounds {}, per run at most {} requests or {:?}; {} preloaded keys; watch {} watchers x {} writes",
        settings.rounds,
        settings.max_requests,
        settings.time_limit,
        settings.preload_keys,
        settings.fan_out.watchers,
        settings.fan_out.writes
    );
    println!(
        "  note: numbers are noisy when other processes share this machine's cores ({} available)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    let load_at_start = load_average();
    let disk_at_start = probe_disk();
    let mut kinds = vec![(ServerKind::Raftkv, settings.raftkv.clone())];
    if let Some(etcd) = &settings.etcd {
        kinds.push((ServerKind::Etcd, etcd.clone()));
    }
    let workloads: Vec<Workload> = standard_workloads();
    let mut contenders = Vec::new();
    for (kind, program) in &kinds {
        let (server, data_dir) = start_server(*kind, program, kind.label(), settings.start_limit)?;
        let endpoint = server.spec.client_url();
        let limits = (
            settings.max_requests,
            settings.time_limit,
            settings.request_timeout,
        );
        let run_settings = settings_with_preload(
            kind.label(),
            endpoint.clone(),
            settings.preload_keys,
            limits,
        );
        println!(
            "{}: pid {}, {endpoint}, preloaded {} keys",
            kind.label(),
            server.pid(),
            run_settings.preloaded_keys
        );
        contenders.push(Contender {
            kind: *kind,
            server,
            _data_dir: data_dir,
            settings: run_settings,
            results: vec![Vec::new(); workloads.len()],
            fan_outs: Vec::new(),
        });
    }

    let mut turn = 0usize;
    for round in 0..settings.rounds {
        println!("\n== round {} of {}", round + 1, settings.rounds);
        for (index, workload) in workloads.iter().enumerate() {
            for position in 0..contenders.len() {
                let contender_index = (position + turn) % contenders.len();
                let contender = &mut contenders[contender_index];
                if contender.settings.preloaded_keys == 0
                    && !matches!(
                        workload.operation,
                        crate::bench::workload::Operation::PutUniqueKeys
                            | crate::bench::workload::Operation::PutHotKey
                    )
                {
                    continue;
                }
                let result = run_workload(workload, &contender.settings);
                println!("{:<7} {}", contender.kind.label(), workload_line(&result));
                contender.results[index].push(result);
            }
            turn += 1;
        }
        for position in 0..contenders.len() {
            let contender_index = (position + turn) % contenders.len();
            let contender = &mut contenders[contender_index];
            let fan_out = settings.fan_out.settings(
                contender.settings.endpoints.clone(),
                settings.request_timeout,
                contender.settings.key_prefix.clone(),
            );
            match run_fan_out(&fan_out, round as u64) {
                Ok(result) => {
                    println!("{:<7} {}", contender.kind.label(), fan_out_line(&result));
                    contender.fan_outs.push(result);
                }
                Err(error) => println!(
                    "{:<7} watch fan-out setup failed: {error}",
                    contender.kind.label()
                ),
            }
        }
        turn += 1;
    }
    let mut contenders = contenders;
    let resident_after_workloads: Vec<Option<u64>> =
        contenders.iter().map(|c| c.server.resident_kib()).collect();
    let raftkv = contenders.remove(0);
    let etcd = contenders.pop();
    drop(contenders);
    raftkv.server.stop();
    let (etcd_results, etcd_fan_outs) = match etcd {
        Some(etcd) => {
            etcd.server.stop();
            (Some(etcd.results), Some(etcd.fan_outs))
        }
        None => (None, None),
    };

    let mut footprints = Vec::new();
    if settings.memory_keys > 0 {
        println!(
            "\n== footprint: {} keys, one server at a time",
            settings.memory_keys
        );
        for (kind, program) in &kinds {
            let footprint = measure_footprint(*kind, program, settings)?;
            let show = |value: Option<f64>, format: &dyn Fn(f64) -> String| {
                value.map(format).unwrap_or_else(|| "-".into())
            };
            println!(
                "{:<7} loaded in {} s, resident {} MiB, data dir {} MiB allocated / {} MiB \
                 apparent, restart to first read {} ms",
                kind.label(),
                show(footprint.load_seconds, &|v| format!("{v:.2}")),
                show(footprint.resident_bytes, &mib),
                show(footprint.data_dir_bytes, &mib),
                show(footprint.data_dir_apparent_bytes, &mib),
                show(footprint.restart_to_read_seconds, &|v| format!(
                    "{:.0}",
                    v * 1000.0
                )),
            );
            footprints.push(footprint);
        }
    }

    let cluster_outcome = if settings.cluster_members >= 2 {
        println!(
            "\n== {}-member clusters, to the leader and to a follower",
            settings.cluster_members
        );
        let cluster_settings = ClusterSettings {
            members: settings.cluster_members,
            rounds: settings.rounds,
            max_requests: settings.max_requests,
            time_limit: settings.time_limit,
            request_timeout: settings.request_timeout,
            preload_keys: settings.preload_keys,
            start_limit: settings.start_limit,
        };
        match run_cluster_phase(&cluster_settings, &kinds) {
            Ok(outcome) => Some(outcome),
            Err(error) => {
                println!("note: the cluster phase failed: {error}");
                None
            }
        }
    } else {
        None
    };

    let disk_at_end = probe_disk();
    let load_at_end = load_average();

    // The table.
    let header = COMPARISON_HEADER;
    let mut rows = Vec::new();
    let mut push = |name: String, ours: Option<Medians>, theirs: Option<Medians>| {
        rows.push(comparison_row(name, ours, theirs));
    };
    for (index, workload) in workloads.iter().enumerate() {
        push(
            workload.name.clone(),
            workload_medians(&raftkv.results[index]),
            etcd_results
                .as_ref()
                .and_then(|results| workload_medians(&results[index])),
        );
    }
    push(
        format!("watch W={} (events/s; writer)", settings.fan_out.watchers),
        fan_out_medians(&raftkv.fan_outs),
        etcd_fan_outs.as_deref().and_then(fan_out_medians),
    );
    println!(
        "\n== medians over {} rounds (ratio = raftkv/etcd; higher is better for /s, lower for ms)",
        settings.rounds
    );
    print!("{}", table(&header, &rows));

    if let Some(cluster) = &cluster_outcome {
        println!(
            "\n== {}-member clusters: medians over {} rounds",
            settings.cluster_members, settings.rounds
        );
        print!("{}", cluster.table);
        let show = |values: &[u64], i: usize| values.get(i).map_or("-".into(), u64::to_string);
        println!(
            "clusters: failed requests raftkv {}, etcd {}; connections accepted but left \
             unanswered (re-dialled) raftkv {}, etcd {}",
            show(&cluster.failures, 0),
            show(&cluster.failures, 1),
            show(&cluster.stalled_connections, 0),
            show(&cluster.stalled_connections, 1)
        );
        println!();
    }
    let failures = |results: &[Vec<WorkloadResult>]| -> u64 {
        results
            .iter()
            .flatten()
            .map(|r| r.failed_requests + r.failed_workers)
            .sum()
    };
    println!(
        "failed requests over all runs: raftkv {}, etcd {}",
        failures(&raftkv.results),
        etcd_results
            .as_deref()
            .map(failures)
            .map_or("-".into(), |n| n.to_string())
    );
    let stalls = |results: &[Vec<WorkloadResult>], fan_outs: &[FanOutResult]| -> u64 {
        results
            .iter()
            .flatten()
            .map(|r| r.stalled_connections)
            .sum::<u64>()
            + fan_outs.iter().map(|r| r.stalled_connections).sum::<u64>()
    };
    println!(
        "connections accepted but left unanswered (re-dialled): raftkv {}, etcd {}",
        stalls(&raftkv.results, &raftkv.fan_outs),
        match (&etcd_results, &etcd_fan_outs) {
            (Some(results), Some(fan_outs)) => stalls(results, fan_outs).to_string(),
            _ => "-".into(),
        }
    );
    let watch_summary = |fan_outs: &[FanOutResult]| -> String {
        let sum = |f: fn(&FanOutResult) -> u64| fan_outs.iter().map(f).sum::<u64>();
        format!(
            "{} runs, missed {}, undelivered at the time limit {}, duplicated {}, unexpected {}, \
             history-cleared {}, timed-out watchers {}",
            fan_outs.len(),
            sum(|r| r.missed),
            sum(|r| r.undelivered),
            sum(|r| r.duplicated),
            sum(|r| r.unexpected),
            sum(|r| r.history_cleared),
            sum(|r| r.timed_out_watchers)
        )
    };
    println!("watch fan-out raftkv: {}", watch_summary(&raftkv.fan_outs));
    if let Some(fan_outs) = &etcd_fan_outs {
        println!("watch fan-out etcd:   {}", watch_summary(fan_outs));
    }

    let footprint_of = |i: usize| footprints.get(i).copied();
    let ours = footprint_of(0).unwrap_or_default();
    let theirs = footprint_of(1);
    let mut extra = Vec::new();
    let mut push_metric =
        |name: String, a: Option<f64>, b: Option<f64>, show: &dyn Fn(f64) -> String| {
            extra.push(vec![
                name,
                cell(a, show),
                cell(b, show),
                match a {
                    Some(a) => ratio(a, b),
                    None => "-".into(),
                },
            ]);
        };
    let resident_workloads = |i: usize| {
        resident_after_workloads
            .get(i)
            .copied()
            .flatten()
            .map(|kib| kib as f64 * 1024.0)
    };
    push_metric(
        "resident MiB after the workloads".into(),
        resident_workloads(0),
        resident_workloads(1),
        &mib,
    );
    if settings.memory_keys > 0 {
        let keys = settings.memory_keys;
        push_metric(
            format!("load {keys} keys, s (c=64)"),
            ours.load_seconds,
            theirs.and_then(|f| f.load_seconds),
            &|v| format!("{v:.2}"),
        );
        push_metric(
            format!("resident MiB with {keys} keys"),
            ours.resident_bytes,
            theirs.and_then(|f| f.resident_bytes),
            &mib,
        );
        push_metric(
            format!("data dir MiB allocated (du) with {keys} keys"),
            ours.data_dir_bytes,
            theirs.and_then(|f| f.data_dir_bytes),
            &mib,
        );
        push_metric(
            "data dir MiB apparent (file lengths)".into(),
            ours.data_dir_apparent_bytes,
            theirs.and_then(|f| f.data_dir_apparent_bytes),
            &mib,
        );
        push_metric(
            "restart to first read, ms".into(),
            ours.restart_to_read_seconds,
            theirs.and_then(|f| f.restart_to_read_seconds),
            &|v| format!("{:.0}", v * 1000.0),
        );
    }
    println!();
    print!("{}", table(&["metric", "raftkv", "etcd", "ratio"], &extra));
    if settings.memory_keys > 0 && ours.data_dir_apparent_bytes == Some(0.0) {
        println!(
            "WARNING: raftkv's data dir is empty after {} acknowledged writes: this build does \
             not persist (no WAL, no fsync), so its write numbers are NOT comparable with etcd's \
             durable writes",
            settings.memory_keys
        );
    }
    print_disk_probe("at start", &disk_at_start);
    print_disk_probe("at end", &disk_at_end);
    println!("load average (1/5/15 min) at start: {load_at_start}; at end: {load_at_end}");
    match std::fs::metadata(&settings.raftkv) {
        Ok(metadata) => println!(
            "raftkv binary: {} bytes ({:.2} MiB)",
            metadata.len(),
            metadata.len() as f64 / (1024.0 * 1024.0)
        ),
        Err(error) => println!("raftkv binary: cannot stat: {error}"),
    }
    println!(
        "compare took {:.0} s",
        compare_started.elapsed().as_secs_f64()
    );
    Ok(())
}
