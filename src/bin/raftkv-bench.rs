//! `raftkv-bench`: the load generator of issue 5.
//!
//! `raftkv-bench --endpoints URL[,URL…]` runs the workloads against any etcd v2 endpoints
//! (raftkv or etcd; a cluster's leader or a follower) and prints throughput and latency
//! percentiles per workload. `raftkv-bench compare` starts raftkv and etcd itself and prints
//! them side by side. `raftkv-bench floor` measures servers that do no work (tiny_http and
//! std::net null servers) next to them: the ceiling for any server on this machine. The work
//! is done by [`raftkv::bench`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use raftkv::bench::compare::{run_compare, CompareSettings};
use raftkv::bench::floor::{run_floor, FloorSettings};
use raftkv::bench::process::find_program;
use raftkv::bench::report::{fan_out_line, workload_line};
use raftkv::bench::watch::{run_fan_out, FanOutPlan, FanOutSettings};
use raftkv::bench::workload::{preload, run_workload, standard_workloads, RunSettings};

/// Load generator for etcd v2 endpoints (raftkv or etcd).
#[derive(FromArgs)]
struct Cli {
    /// comma-separated client URLs; workers are spread over them round robin
    #[argh(option, default = "String::from(\"http://127.0.0.1:2379\")")]
    endpoints: String,
    /// comma-separated workload names to run (put-1, put-16, put-64, put-256, hot, get,
    /// get-quorum, mix, watch); default all
    #[argh(option, default = "String::new()")]
    workloads: String,
    /// requests per workload at most
    #[argh(option, default = "20000")]
    requests: u64,
    /// seconds per workload at most
    #[argh(option, default = "3.0")]
    time_limit_secs: f64,
    /// keys preloaded for the get and mix workloads
    #[argh(option, default = "10000")]
    preload_keys: u64,
    /// long-poll watchers in the fan-out
    #[argh(option, default = "100")]
    watchers: usize,
    /// keys written during the fan-out (keep below the server's 1000-event history)
    #[argh(option, default = "900")]
    watch_writes: u64,
    /// microseconds the fan-out writer pauses between writes
    #[argh(option, default = "0")]
    watch_write_interval_us: u64,
    /// seconds the fan-out may take at most
    #[argh(option, default = "20.0")]
    watch_time_limit_secs: f64,
    /// seconds one request may take
    #[argh(option, default = "10.0")]
    request_timeout_secs: f64,
    #[argh(subcommand)]
    command: Option<Subcommand>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Subcommand {
    Compare(CompareArgs),
    Floor(FloorArgs),
    WalFill(WalFillArgs),
}

/// Measure WAL sync latency as segments fill, for two segment sizes, through raftkv's WAL.
#[derive(FromArgs)]
#[argh(subcommand, name = "wal-fill")]
struct WalFillArgs {
    /// directory to write the probe logs in (default: the system temp dir)
    #[argh(option)]
    dir: Option<PathBuf>,
    /// mebibytes of entry data written per segment size
    #[argh(option, default = "64")]
    total_mib: u64,
    /// bytes per entry (one sync per entry)
    #[argh(option, default = "1024")]
    entry_bytes: usize,
    /// segment sizes to compare, in MiB
    #[argh(option, default = "String::from(\"64,16\")")]
    segment_mib: String,
}

/// Measure null servers (tiny_http, std::net; no work at all) next to raftkv and etcd: the
/// highest rate any server reaches here with this load generator.
#[derive(FromArgs)]
#[argh(subcommand, name = "floor")]
struct FloorArgs {
    /// the raftkv binary (default: `raftkv` next to this program)
    #[argh(option)]
    raftkv: Option<PathBuf>,
    /// the etcd binary (default: `etcd` on PATH; ratios are skipped if absent)
    #[argh(option, default = "String::from(\"etcd\")")]
    etcd: String,
    /// runs of each workload on each server
    #[argh(option, default = "3")]
    rounds: usize,
    /// requests per workload run at most
    #[argh(option, default = "40000")]
    requests: u64,
    /// seconds per workload run at most
    #[argh(option, default = "3.0")]
    time_limit_secs: f64,
    /// keys preloaded for the get workload
    #[argh(option, default = "10000")]
    preload_keys: u64,
    /// threads taking requests from the tiny_http null server's queue
    #[argh(option, default = "4")]
    tiny_http_workers: usize,
    /// long-poll watchers in the fan-out (0 skips it)
    #[argh(option, default = "100")]
    watchers: usize,
    /// keys written during each fan-out
    #[argh(option, default = "900")]
    watch_writes: u64,
    /// seconds a fan-out may take at most
    #[argh(option, default = "20.0")]
    watch_time_limit_secs: f64,
    /// members of the clusters whose writes are measured next to a null cluster (below 2
    /// skips them)
    #[argh(option, default = "3")]
    cluster_members: usize,
}

/// Start raftkv and etcd, run every workload on both alternately, print medians and ratios.
#[derive(FromArgs)]
#[argh(subcommand, name = "compare")]
struct CompareArgs {
    /// the raftkv binary (default: `raftkv` next to this program)
    #[argh(option)]
    raftkv: Option<PathBuf>,
    /// the etcd binary (default: `etcd` on PATH; etcd columns are skipped if absent)
    #[argh(option, default = "String::from(\"etcd\")")]
    etcd: String,
    /// runs of each workload on each server
    #[argh(option, default = "3")]
    rounds: usize,
    /// requests per workload run at most
    #[argh(option, default = "20000")]
    requests: u64,
    /// seconds per workload run at most
    #[argh(option, default = "3.0")]
    time_limit_secs: f64,
    /// keys preloaded for the get and mix workloads
    #[argh(option, default = "10000")]
    preload_keys: u64,
    /// long-poll watchers in the fan-out
    #[argh(option, default = "100")]
    watchers: usize,
    /// keys written during each fan-out
    #[argh(option, default = "900")]
    watch_writes: u64,
    /// seconds a fan-out may take at most
    #[argh(option, default = "20.0")]
    watch_time_limit_secs: f64,
    /// keys loaded before measuring memory, data-dir size and restart time (0 skips it)
    #[argh(option, default = "100000")]
    memory_keys: u64,
    /// seconds one request may take
    #[argh(option, default = "10.0")]
    request_timeout_secs: f64,
    /// members of the clusters compared after the single nodes (0 skips the cluster phase)
    #[argh(option, default = "3")]
    cluster_members: usize,
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

const WORKLOAD_NAMES: [&str; 9] = [
    "put-1",
    "put-16",
    "put-64",
    "put-256",
    "hot",
    "get",
    "get-quorum",
    "mix",
    "watch",
];

fn run(cli: &Cli) -> ExitCode {
    let endpoints: Vec<String> = cli
        .endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect();
    if endpoints.is_empty() {
        eprintln!("raftkv-bench: --endpoints is empty");
        return ExitCode::from(2);
    }
    let selected: Vec<&str> = if cli.workloads.is_empty() {
        WORKLOAD_NAMES.to_vec()
    } else {
        cli.workloads.split(',').map(str::trim).collect()
    };
    if let Some(unknown) = selected.iter().find(|w| !WORKLOAD_NAMES.contains(w)) {
        eprintln!(
            "raftkv-bench: unknown workload {unknown:?}; known: {}",
            WORKLOAD_NAMES.join(", ")
        );
        return ExitCode::from(2);
    }
    let request_timeout = seconds(cli.request_timeout_secs);
    let key_prefix = raftkv::bench::unique_key_prefix();
    let needs_preload = selected
        .iter()
        .any(|w| matches!(*w, "get" | "get-quorum" | "mix"));
    let mut preloaded_keys = 0;
    if needs_preload {
        match preload(
            &endpoints,
            &key_prefix,
            cli.preload_keys,
            64,
            request_timeout,
        ) {
            Ok(written) => preloaded_keys = written,
            Err(error) => {
                eprintln!(
                    "raftkv-bench: preloading {} keys failed: {error}",
                    cli.preload_keys
                );
                return ExitCode::from(1);
            }
        }
        println!("preloaded {preloaded_keys} keys under {key_prefix}/preload/");
    }
    let settings = RunSettings {
        endpoints: endpoints.clone(),
        max_requests: cli.requests,
        time_limit: seconds(cli.time_limit_secs),
        request_timeout,
        key_prefix: key_prefix.clone(),
        preloaded_keys,
    };
    let mut any_failure = false;
    for (name, workload) in WORKLOAD_NAMES.iter().zip(standard_workloads()) {
        if !selected.contains(name) {
            continue;
        }
        let result = run_workload(&workload, &settings);
        any_failure |= result.failed_requests > 0 || result.failed_workers > 0;
        println!("{}", workload_line(&result));
    }
    if selected.contains(&"watch") {
        let fan_out = FanOutSettings {
            endpoints,
            watchers: cli.watchers,
            writes: cli.watch_writes,
            write_interval: Duration::from_micros(cli.watch_write_interval_us),
            time_limit: seconds(cli.watch_time_limit_secs),
            request_timeout,
            key_prefix,
        };
        match run_fan_out(&fan_out, 0) {
            Ok(result) => {
                any_failure |= !result.is_exact();
                println!("{}", fan_out_line(&result));
            }
            Err(error) => {
                eprintln!("raftkv-bench: watch fan-out setup failed: {error}");
                any_failure = true;
            }
        }
    }
    if any_failure {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The raftkv binary to start: `given`, or `raftkv` next to this program.
fn raftkv_binary(given: &Option<PathBuf>) -> Result<PathBuf, ExitCode> {
    let raftkv = match given {
        Some(path) => path.clone(),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("raftkv"),
            Err(error) => {
                eprintln!("raftkv-bench: cannot locate this program ({error}); pass --raftkv");
                return Err(ExitCode::from(2));
            }
        },
    };
    if !raftkv.is_file() {
        eprintln!(
            "raftkv-bench: no raftkv binary at {} (build it, or pass --raftkv PATH)",
            raftkv.display()
        );
        return Err(ExitCode::from(2));
    }
    Ok(raftkv)
}

fn floor(args: &FloorArgs) -> ExitCode {
    let raftkv = match raftkv_binary(&args.raftkv) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let settings = FloorSettings {
        raftkv,
        etcd: find_program(&args.etcd),
        rounds: args.rounds.max(1),
        max_requests: args.requests,
        time_limit: seconds(args.time_limit_secs),
        request_timeout: Duration::from_secs(10),
        preload_keys: args.preload_keys,
        start_limit: Duration::from_secs(60),
        tiny_http_workers: args.tiny_http_workers,
        fan_out: FanOutPlan {
            watchers: args.watchers,
            writes: args.watch_writes,
            time_limit: seconds(args.watch_time_limit_secs),
        },
        cluster_members: args.cluster_members,
    };
    match run_floor(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("raftkv-bench floor: {error}");
            ExitCode::from(1)
        }
    }
}

fn wal_fill(args: &WalFillArgs) -> ExitCode {
    const REGION_MIB: u64 = 8;
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut sizes = Vec::new();
    for size in args.segment_mib.split(',').map(str::trim) {
        match size.parse::<u64>() {
            Ok(mib) if mib > 0 => sizes.push(mib),
            _ => {
                eprintln!(
                    "raftkv-bench wal-fill: bad segment size {size:?} (MiB, comma-separated)"
                );
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "WAL sync latency by data written: {} B entries, one sync each, {} MiB per segment size, in {}",
        args.entry_bytes,
        args.total_mib,
        dir.display()
    );
    for mib in sizes {
        let regions = match raftkv::bench::disk::wal_sync_latency_by_fill(
            &dir,
            mib << 20,
            args.entry_bytes.max(1),
            args.total_mib << 20,
            REGION_MIB << 20,
        ) {
            Ok(regions) => regions,
            Err(error) => {
                eprintln!("raftkv-bench wal-fill: {error}");
                return ExitCode::from(1);
            }
        };
        println!("segments of {mib} MiB:");
        for (n, latency) in regions.iter().enumerate() {
            let from = n as u64 * REGION_MIB;
            println!(
                "  written {:>4}-{:<4} MiB: sync p50 {} ms, p99 {} ms ({} syncs)",
                from,
                from + REGION_MIB,
                raftkv::bench::report::millis(latency.quantile_nanos(0.5)),
                raftkv::bench::report::millis(latency.quantile_nanos(0.99)),
                latency.count()
            );
        }
    }
    ExitCode::SUCCESS
}

fn compare(args: &CompareArgs) -> ExitCode {
    let raftkv = match raftkv_binary(&args.raftkv) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let settings = CompareSettings {
        raftkv,
        etcd: find_program(&args.etcd),
        rounds: args.rounds.max(1),
        max_requests: args.requests,
        time_limit: seconds(args.time_limit_secs),
        request_timeout: seconds(args.request_timeout_secs),
        preload_keys: args.preload_keys,
        fan_out: FanOutPlan {
            watchers: args.watchers,
            writes: args.watch_writes,
            time_limit: seconds(args.watch_time_limit_secs),
        },
        memory_keys: args.memory_keys,
        start_limit: Duration::from_secs(60),
        cluster_members: args.cluster_members,
    };
    match run_compare(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("raftkv-bench compare: {error}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    match &cli.command {
        Some(Subcommand::Compare(args)) => compare(args),
        Some(Subcommand::Floor(args)) => floor(args),
        Some(Subcommand::WalFill(args)) => wal_fill(args),
        None => run(&cli),
    }
}
