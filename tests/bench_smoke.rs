//! The load generator's own invariants, against an in-process raftkv: every workload runs a
//! tiny request budget and its counts add up, the watch fan-out sees every write exactly once,
//! percentiles are ordered, and the `raftkv-bench` binary runs end to end. No timing
//! assertions: numbers come from benchmarks, never from tests.

use std::sync::Arc;
use std::time::Duration;

use raftkv::bench::process::TempDir;
use raftkv::bench::requests::Session;
use raftkv::bench::watch::{run_fan_out, FanOutSettings};
use raftkv::bench::workload::{
    preload, preloaded_key, run_workload, standard_workloads, Operation, RunSettings, Workload,
};
use raftkv::node::{Config, Node};

struct InProcessServer {
    url: String,
    _node: Arc<Node>,
    /// Removed after the node is dropped (fields drop in declaration order).
    _data_dir: TempDir,
}

fn start_server() -> InProcessServer {
    let data_dir = TempDir::new("smoke").expect("creating a temp data dir");
    let args: Vec<String> = vec![
        "--listen-client-urls".into(),
        "http://127.0.0.1:0".into(),
        "--listen-peer-urls".into(),
        "http://127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.path.join("data").display().to_string(),
    ];
    let config = Config::from_args_and_env(&args, |_| None).expect("test config parses");
    let workers = config.max_client_workers;
    let node = Node::start(config).expect("the node starts");
    assert!(
        node.wait_ready(Duration::from_secs(10)),
        "the single node never became ready"
    );
    let server = raftkv::api::server::serve(node.clone(), "http://127.0.0.1:0", workers)
        .expect("binding 127.0.0.1:0");
    InProcessServer {
        url: format!("http://{}", server.local_addr),
        _node: node,
        _data_dir: data_dir,
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn every_workload_spends_exactly_its_budget_and_orders_its_percentiles() {
    let server = start_server();
    let prefix = raftkv::bench::unique_key_prefix();
    let preloaded = preload(
        std::slice::from_ref(&server.url),
        &prefix,
        200,
        8,
        REQUEST_TIMEOUT,
    )
    .expect("preloading 200 keys");
    assert_eq!(preloaded, 200, "preload reports the keys it wrote");
    let mut session = Session::new(&server.url, REQUEST_TIMEOUT).expect("endpoint parses");
    for index in [0, 199] {
        session
            .get(&preloaded_key(&prefix, index), false)
            .unwrap_or_else(|e| panic!("preloaded key {index} is not readable: {e}"));
    }

    let settings = RunSettings {
        endpoints: vec![server.url.clone()],
        max_requests: 300,
        time_limit: Duration::from_secs(60),
        request_timeout: REQUEST_TIMEOUT,
        key_prefix: prefix.clone(),
        preloaded_keys: preloaded,
    };
    let workloads = standard_workloads();
    let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "put c=1",
            "put c=16",
            "put c=64",
            "put c=256",
            "put hot key c=64",
            "get c=64",
            "get quorum c=64",
            "mix 90/10 c=64",
        ]
    );
    for workload in &workloads {
        let result = run_workload(workload, &settings);
        let context = raftkv::bench::report::workload_line(&result);
        assert_eq!(result.failed_requests, 0, "{context}");
        assert_eq!(result.failed_workers, 0, "{context}");
        assert_eq!(
            result.succeeded, settings.max_requests,
            "the budget is spent exactly: {context}"
        );
        assert_eq!(result.latency.count(), result.succeeded, "{context}");
        assert_eq!(result.concurrency, workload.concurrency, "{context}");
        let p50 = result.latency.quantile_nanos(0.5);
        let p99 = result.latency.quantile_nanos(0.99);
        let max = result.latency.max_nanos();
        assert!(
            0 < p50 && p50 <= p99 && p99 <= max,
            "percentiles out of order: {context}"
        );
        assert!(result.throughput_per_second() > 0.0, "{context}");
    }

    // Unique-key puts really wrote distinct keys: the single worker of `put c=1` wrote
    // w0-1 ..= w0-300, each readable.
    let unique = format!("{prefix}/put_c_1/w0-");
    for sequence in [1, 150, 300] {
        session
            .get(&format!("{unique}{sequence}"), false)
            .unwrap_or_else(|e| panic!("unique key {unique}{sequence} missing: {e}"));
    }
}

#[test]
fn a_time_limit_stops_a_workload_whose_budget_is_unreachable() {
    let server = start_server();
    let settings = RunSettings {
        endpoints: vec![server.url.clone()],
        max_requests: u64::MAX,
        time_limit: Duration::from_millis(300),
        request_timeout: REQUEST_TIMEOUT,
        key_prefix: raftkv::bench::unique_key_prefix(),
        preloaded_keys: 0,
    };
    let workload = Workload {
        name: "put c=2".into(),
        operation: Operation::PutUniqueKeys,
        concurrency: 2,
    };
    let result = run_workload(&workload, &settings);
    assert!(result.succeeded > 0, "some requests succeeded");
    assert_eq!(result.failed_requests, 0);
    assert!(
        result.elapsed < Duration::from_secs(30),
        "the run stopped (elapsed {:?})",
        result.elapsed
    );
}

#[test]
fn watch_fan_out_on_raftkv_delivers_every_write_to_every_watcher_once() {
    let server = start_server();
    let settings = FanOutSettings {
        endpoints: vec![server.url.clone()],
        watchers: 6,
        writes: 40,
        write_interval: Duration::ZERO,
        time_limit: Duration::from_secs(40),
        request_timeout: REQUEST_TIMEOUT,
        key_prefix: raftkv::bench::unique_key_prefix(),
    };
    let result = run_fan_out(&settings, 0).expect("the fan-out directory can be created");
    let context = raftkv::bench::report::fan_out_line(&result);
    assert_eq!(result.writes_acknowledged, 40, "{context}");
    assert_eq!(result.writes_failed, 0, "{context}");
    assert_eq!(result.missed, 0, "{context}");
    assert_eq!(result.undelivered, 0, "{context}");
    assert_eq!(result.duplicated, 0, "{context}");
    assert_eq!(result.unexpected, 0, "{context}");
    assert_eq!(result.timed_out_watchers, 0, "{context}");
    assert_eq!(result.delivered, 40 * 6, "{context}");
    assert!(result.is_exact(), "{context}");
    assert!(result.delivery_rate_per_second() > 0.0, "{context}");
    let p50 = result.write_latency.quantile_nanos(0.5);
    assert!(
        p50 <= result.write_latency.quantile_nanos(0.99)
            && result.write_latency.quantile_nanos(0.99) <= result.write_latency.max_nanos(),
        "{context}"
    );
}

#[test]
fn the_binary_runs_every_workload_and_prints_one_line_each() {
    let server = start_server();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv-bench"))
        .args([
            "--endpoints",
            &server.url,
            "--requests",
            "100",
            "--time-limit-secs",
            "30",
            "--preload-keys",
            "100",
            "--watchers",
            "3",
            "--watch-writes",
            "20",
        ])
        .output()
        .expect("running raftkv-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "raftkv-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for name in [
        "put c=1 ",
        "put c=16 ",
        "put c=64 ",
        "put c=256 ",
        "put hot key c=64",
        "get c=64",
        "get quorum c=64",
        "mix 90/10 c=64",
        "watch fan-out W=3",
    ] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name:?} in:\n{stdout}"));
        assert!(
            line.contains("p50") && line.contains("p99") && line.contains("max"),
            "{line}"
        );
    }
    assert!(
        stdout.contains("20 writes x 3 watchers: 60 delivered, 0 missed, 0 undelivered at the time limit, 0 duplicated"),
        "{stdout}"
    );

    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv-bench"))
        .args(["--endpoints", &server.url, "--workloads", "nope"])
        .output()
        .expect("running raftkv-bench");
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "an unknown workload is a usage error"
    );
}

#[test]
fn compare_runs_both_servers_and_clusters_prints_the_tables_and_leaves_nothing_behind() {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv-bench"))
        .args([
            "compare",
            "--raftkv",
            env!("CARGO_BIN_EXE_raftkv"),
            "--rounds",
            "1",
            "--requests",
            "40",
            "--time-limit-secs",
            "20",
            "--preload-keys",
            "50",
            "--watchers",
            "2",
            "--watch-writes",
            "10",
            "--memory-keys",
            "200",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running raftkv-bench compare");
    let bench_pid = child.id();
    let output = child.wait_with_output().expect("waiting for compare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compare failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let etcd_present = !stdout.contains("note: etcd not found");
    for row in [
        "put c=1 ",
        "put c=256 ",
        "put hot key c=64 ",
        "get quorum c=64 ",
        "mix 90/10 c=64 ",
        "watch W=2",
        "put c=1 -> leader ",
        "put c=64 -> follower ",
        "get quorum c=64 -> leader ",
        "get c=64 -> follower ",
        "resident MiB with 200 keys",
        "data dir MiB allocated (du) with 200 keys",
        "restart to first read, ms",
    ] {
        let line = stdout
            .lines()
            .rev()
            .find(|line| line.starts_with(row))
            .unwrap_or_else(|| panic!("no table row {row:?} in:\n{stdout}"));
        let cells: Vec<&str> = line[row.len()..].split_whitespace().collect();
        assert!(
            cells.first().is_some_and(|c| *c != "-") || row.starts_with("restart"),
            "raftkv column empty in {line:?}"
        );
        if etcd_present && !row.starts_with("restart") {
            assert!(
                cells.get(1).is_some_and(|c| *c != "-"),
                "etcd column empty in {line:?}"
            );
        }
    }
    assert!(
        stdout.contains("disk at start: 4 KiB append + fdatasync p50")
            && stdout.contains("disk at end: 4 KiB append + fdatasync p50"),
        "{stdout}"
    );
    assert!(stdout.contains("raftkv binary: "), "{stdout}");
    assert!(
        stdout.contains("failed requests over all runs: raftkv 0,")
            && stdout.contains("clusters: failed requests raftkv 0,"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "watch fan-out raftkv: 1 runs, missed 0, undelivered at the time limit 0, duplicated 0"
        ),
        "{stdout}"
    );
    // Every server it started is gone (killed by PID and reaped), and so are its temp dirs.
    let mut pids_checked = 0;
    for line in stdout.lines() {
        let Some(rest) = line.split(": pid ").nth(1) else {
            continue;
        };
        pids_checked += 1;
        let pid: u32 = rest
            .split(',')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unparsable pid line {line:?}"));
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "server pid {pid} still exists after compare ({line})"
        );
    }
    let systems = if etcd_present { 2 } else { 1 };
    assert_eq!(
        pids_checked,
        systems * (1 + 3),
        "one single node and three cluster members per system:\n{stdout}"
    );
    let leftover_prefix = format!("raftkv-bench-{bench_pid}-");
    let leftovers: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("listing the temp dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&leftover_prefix))
        .collect();
    assert!(leftovers.is_empty(), "temp dirs left behind: {leftovers:?}");
}
