//! `raftkv-bench floor`: the most any server can score on this machine with this load
//! generator, measured next to etcd in one run.
//!
//! Two null servers run in this process and answer every request with a fixed etcd-shaped
//! response, doing no other work: one on tiny_http (the HTTP library the design card fixes:
//! its accept thread, connection threads and request queue, answered by `workers` threads
//! with one raw write each, as raftkv answers), one on std::net alone (a thread per
//! connection reading through a buffer). The load generator shares the machine's cores with
//! the server it measures, so a workload's rate against a null server is a ceiling for every
//! real server; divided by etcd's rate it is the highest raftkv/etcd ratio reachable with that
//! HTTP stack here. Likewise a single client's round trip to a null server (`put c=1`, p50) is
//! a floor under any server's sequential write latency, before it syncs anything. The
//! workloads are the closed-loop `put c=1`, `put c=64` and `get c=64` of
//! [`crate::bench::workload`], and the watch fan-out of [`crate::bench::watch`], for which the
//! null server is [`crate::bench::null_watch`] (it must keep events and park watches to pass).
//! It also times a hand-off between two threads ([`hand_off_round_trips`]): the price of each
//! step at which a request moves to another thread (tiny_http's queue, the Raft loop, a
//! responder). Last, unless skipped, it measures writes (`put c=1`, `put c=64`) to the leader
//! of a 3-member raftkv cluster, a 3-member etcd cluster and a null cluster
//! ([`crate::bench::null_cluster`]: replicate, sync on a majority, answer; nothing else), the
//! ceiling for cluster writes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bench::cluster::start_cluster;
use crate::bench::null_cluster::start_null_cluster;
use crate::bench::process::{ProcessError, ServerKind, ServerSpec, TempDir};
use crate::bench::report::{median, ratio, table};
use crate::bench::workload::{
    run_workload, settings_with_preload, standard_workloads, Operation, RunSettings, Workload,
};

/// The fixed answer of the null servers: a GET's body as etcd shapes it.
const NULL_BODY: &str = "{\"action\":\"get\",\"node\":{\"key\":\"/bench/k\",\"value\":\"v\",\"modifiedIndex\":5,\"createdIndex\":5}}\n";

/// Request heads larger than this end a null server's connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Request bodies larger than this end a null server's connection.
const MAX_BODY_BYTES: usize = 1 << 20;

pub(crate) fn null_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Etcd-Index: 5\r\nContent-Length: {}\r\n\r\n{NULL_BODY}",
        NULL_BODY.len()
    )
    .into_bytes()
}

/// A null server running in this process; stops serving new connections when dropped.
pub struct NullServer {
    pub address: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// Keeps the tiny_http server alive (its threads end when it is dropped).
    tiny_http: Option<Arc<tiny_http::Server>>,
}

impl NullServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for NullServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(server) = &self.tiny_http {
            server.unblock();
        }
        // Wake the std::net accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
    }
}

/// A tiny_http server on a free port of 127.0.0.1 (its connection pool nudged as raftkv's is)
/// with `workers` threads named `name-<n>`, each answering the requests it takes from the
/// queue with `serve` until the returned server is dropped.
pub fn start_tiny_http_workers(
    workers: usize,
    name: &str,
    serve: impl Fn(tiny_http::Request) + Clone + Send + 'static,
) -> std::io::Result<NullServer> {
    let server = Arc::new(crate::api::server::http_server("127.0.0.1:0")?);
    let address = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("tiny_http listener is not IP"))?;
    crate::api::pool_nudge::spawn_connection_watch(&server, address, None);
    let stopping = Arc::new(AtomicBool::new(false));
    for n in 0..workers.max(1) {
        let (server, stopping, serve) = (server.clone(), stopping.clone(), serve.clone());
        std::thread::Builder::new()
            .name(format!("{name}-{n}"))
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    let Ok(request) = server.recv() else { break };
                    serve(request);
                }
            })?;
    }
    Ok(NullServer {
        address,
        stopping,
        tiny_http: Some(server),
    })
}

/// A null server on tiny_http with `workers` threads taking requests from its queue.
pub fn start_tiny_http_null(workers: usize) -> std::io::Result<NullServer> {
    let response = Arc::new(null_response());
    start_tiny_http_workers(workers, "null-tiny", move |mut request| {
        let mut body = Vec::new();
        let _ = request
            .as_reader()
            .take(MAX_BODY_BYTES as u64)
            .read_to_end(&mut body);
        let mut writer = request.into_writer();
        let _ = writer.write_all(&response).and_then(|_| writer.flush());
    })
}

/// A null server on std::net: one thread per connection, requests read through a buffer.
pub fn start_std_net_null() -> std::io::Result<NullServer> {
    // The same backlog as raftkv's and etcd's listeners.
    let listener = crate::api::server::bind_listener("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let accept_stopping = stopping.clone();
    std::thread::Builder::new()
        .name("null-std-accept".into())
        .spawn(move || {
            for connection in listener.incoming() {
                if accept_stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(connection) = connection else { continue };
                let _ = std::thread::Builder::new()
                    .name("null-std-conn".into())
                    .spawn(move || serve_null_connection(connection));
            }
        })?;
    Ok(NullServer {
        address,
        stopping,
        tiny_http: None,
    })
}

/// Answers every request of one connection with the null response until it closes or sends
/// something that is not a bounded HTTP/1.1 request.
fn serve_null_connection(connection: TcpStream) {
    let _ = connection.set_nodelay(true);
    let Ok(mut writer) = connection.try_clone() else {
        return;
    };
    let response = null_response();
    let mut reader = BufReader::new(connection);
    let mut line = Vec::new();
    let mut body = Vec::new();
    loop {
        let mut content_length = 0usize;
        let mut head_bytes = 0usize;
        let mut first_line = true;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(n) => head_bytes += n,
            }
            if head_bytes > MAX_HEAD_BYTES {
                return;
            }
            if line == b"\r\n" || line == b"\n" {
                if first_line {
                    continue;
                }
                break;
            }
            first_line = false;
            if let Some(value) = header_value(&line, b"content-length") {
                match value.parse::<usize>() {
                    Ok(length) if length <= MAX_BODY_BYTES => content_length = length,
                    _ => return,
                }
            }
        }
        body.resize(content_length, 0);
        if reader.read_exact(&mut body).is_err() || writer.write_all(&response).is_err() {
            return;
        }
    }
}

/// The trimmed value of header `name` (lower case) if `line` is that header.
fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let colon = line.iter().position(|b| *b == b':')?;
    let (field, rest) = line.split_at(colon);
    if !field.eq_ignore_ascii_case(name) {
        return None;
    }
    std::str::from_utf8(&rest[1..]).ok().map(str::trim)
}

/// What `floor` runs.
#[derive(Debug, Clone)]
pub struct FloorSettings {
    pub raftkv: PathBuf,
    /// None: the etcd rows and ratios are skipped.
    pub etcd: Option<PathBuf>,
    pub rounds: usize,
    pub max_requests: u64,
    pub time_limit: Duration,
    pub request_timeout: Duration,
    pub preload_keys: u64,
    pub start_limit: Duration,
    /// Threads taking requests from the tiny_http null server's queue.
    pub tiny_http_workers: usize,
    /// The watch fan-out (0 watchers skip it).
    pub fan_out: crate::bench::watch::FanOutPlan,
    /// Members of the clusters whose leaders' writes are measured (below 2: skipped).
    pub cluster_members: usize,
}

/// The put c=1, put c=64 and get c=64 workloads.
fn floor_workloads() -> Vec<Workload> {
    standard_workloads()
        .into_iter()
        .filter(|w| matches!(w.name.as_str(), "put c=1" | "put c=64" | "get c=64"))
        .collect()
}

/// A single client's workload is judged by its latency (p50), the others by their rate.
fn judged_by_latency(workload: &Workload) -> bool {
    workload.concurrency == 1
}

/// One server measured by `floor`.
struct Target {
    label: String,
    settings: RunSettings,
    /// Per workload, one entry per round: requests per second, or the p50 latency in
    /// milliseconds for workloads [`judged_by_latency`].
    figures: Vec<Vec<f64>>,
}

/// The time one thread takes to wake another that is blocked on a channel and hear back:
/// `round_trips` ping-pongs over crossbeam channels (what the Raft loop waits on), one per
/// sample. Half a round trip is the cost of one hand-off between threads, which every step of
/// a request that moves to another thread pays.
pub fn hand_off_round_trips(round_trips: usize) -> crate::bench::histogram::Histogram {
    let (ping, pinged) = crossbeam_channel::bounded::<u64>(1);
    let (pong, ponged) = crossbeam_channel::bounded::<u64>(1);
    let echo = std::thread::spawn(move || {
        for value in pinged.iter() {
            if pong.send(value).is_err() {
                return;
            }
        }
    });
    let mut latency = crate::bench::histogram::Histogram::new();
    for n in 0..round_trips as u64 {
        let started = std::time::Instant::now();
        let echoed = ping.send(n).ok().and_then(|_| ponged.recv().ok());
        assert_eq!(
            echoed,
            Some(n),
            "the echo thread answers every ping in order"
        );
        latency.record(started.elapsed());
        // Let the echo thread block again, as a thread waiting for work would be.
        std::thread::sleep(Duration::from_micros(50));
    }
    drop(ping);
    let _ = echo.join();
    latency
}

/// Runs the floor measurement and prints a table of medians and ratios to etcd.
pub fn run_floor(settings: &FloorSettings) -> Result<(), ProcessError> {
    assert!(settings.rounds >= 1, "floor needs at least one round");
    let hand_off = hand_off_round_trips(5000);
    println!(
        "thread hand-off round trip (crossbeam channel, receiver blocked): p50 {:.1} us, p99 {:.1} us",
        hand_off.quantile_nanos(0.5) as f64 / 1e3,
        hand_off.quantile_nanos(0.99) as f64 / 1e3
    );
    let workloads = floor_workloads();
    let io_error = |what: &str, error: std::io::Error| ProcessError::Io {
        path: PathBuf::from("127.0.0.1"),
        reason: format!("{what}: {error}"),
    };
    let tiny = start_tiny_http_null(settings.tiny_http_workers)
        .map_err(|e| io_error("starting the tiny_http null server", e))?;
    let std_net =
        start_std_net_null().map_err(|e| io_error("starting the std::net null server", e))?;
    let mut servers = Vec::new();
    let mut kinds = vec![(ServerKind::Raftkv, settings.raftkv.clone())];
    if let Some(etcd) = &settings.etcd {
        kinds.push((ServerKind::Etcd, etcd.clone()));
    }
    let mut targets = Vec::new();
    for (kind, program) in kinds {
        let data_dir = TempDir::new(kind.label())?;
        let spec = ServerSpec::new(kind, program, data_dir.path.join("data"));
        let mut server = spec.spawn()?;
        server.wait_ready(settings.start_limit)?;
        targets.push((kind.label().to_string(), spec.client_url()));
        servers.push((server, data_dir));
    }
    targets.push((
        format!("null tiny_http ({} workers)", settings.tiny_http_workers),
        tiny.url(),
    ));
    targets.push(("null std::net".to_string(), std_net.url()));
    let mut measured: Vec<Target> = Vec::new();
    let limits = (
        settings.max_requests,
        settings.time_limit,
        settings.request_timeout,
    );
    for (label, endpoint) in targets {
        let run_settings = settings_with_preload(&label, endpoint, settings.preload_keys, limits);
        measured.push(Target {
            label,
            settings: run_settings,
            figures: vec![Vec::new(); workloads.len()],
        });
    }
    run_rounds(settings.rounds, "", &workloads, &mut measured);
    // raftkv's and etcd's single servers, for the fan-out and the one-member writes.
    let single_endpoints: Vec<(String, String)> = measured
        .iter()
        .take(servers.len())
        .map(|target| (target.label.clone(), target.settings.endpoints[0].clone()))
        .collect();
    let fan_out_rates = if settings.fan_out.watchers > 0 {
        let null_watch = crate::bench::null_watch::start_null_watch(settings.tiny_http_workers)
            .map_err(|e| io_error("starting the null watch server", e))?;
        let mut fan_out_targets = single_endpoints.clone();
        fan_out_targets.push((
            format!("null watch ({} workers)", settings.tiny_http_workers),
            null_watch.url(),
        ));
        let durable_dir = TempDir::new("null-watch")?;
        let durable_watch = crate::bench::null_watch::start_null_watch_durable(
            settings.tiny_http_workers,
            &durable_dir.path,
        )
        .map_err(|e| io_error("starting the durable null watch server", e))?;
        fan_out_targets.push((
            format!("null watch+sync ({} workers)", settings.tiny_http_workers),
            durable_watch.url(),
        ));
        Some(measure_fan_out(settings, &fan_out_targets))
    } else {
        None
    };
    let pipeline_table = measure_writes(
        settings,
        single_endpoints,
        1,
        "writes to one member (the null pipeline hands each request to a batching thread, which syncs each batch and answers it: the design card's write flow and nothing else)",
    )?;
    for (server, _data_dir) in servers {
        server.stop();
    }
    let cluster_table = if settings.cluster_members >= 2 {
        Some(measure_clusters(settings)?)
    } else {
        None
    };
    print!(
        "{}",
        floor_table(
            "the null servers do no work: their rate is a ceiling, their latency a floor, for any server here",
            &workloads,
            &measured,
            settings.etcd.is_some()
        )
    );
    print!("{pipeline_table}");
    if let Some(rates) = fan_out_rates {
        print!("{}", fan_out_table(settings, &rates));
    }
    if let Some(table) = cluster_table {
        print!("{table}");
    }
    Ok(())
}

/// Runs every workload on every target `rounds` times, alternating, and records the figures.
fn run_rounds(rounds: usize, phase: &str, workloads: &[Workload], targets: &mut [Target]) {
    for round in 0..rounds {
        println!("== {phase}round {} of {rounds}", round + 1);
        for (index, workload) in workloads.iter().enumerate() {
            for target in targets.iter_mut() {
                let result = run_workload(workload, &target.settings);
                println!(
                    "{:<28} {}",
                    target.label,
                    crate::bench::report::workload_line(&result)
                );
                let figure = if judged_by_latency(workload) {
                    result.latency.quantile_nanos(0.5) as f64 / 1e6
                } else {
                    result.throughput_per_second()
                };
                target.figures[index].push(figure);
            }
        }
    }
}

/// Writes to 3-member clusters: raftkv's, etcd's (if any) and the null cluster of
/// [`crate::bench::null_cluster`], each sent to its leader, alternating. Returns the table.
fn measure_clusters(settings: &FloorSettings) -> Result<String, ProcessError> {
    let members = settings.cluster_members;
    let mut kinds = vec![(ServerKind::Raftkv, settings.raftkv.clone())];
    if let Some(etcd) = &settings.etcd {
        kinds.push((ServerKind::Etcd, etcd.clone()));
    }
    let mut clusters = Vec::new();
    let mut endpoints = Vec::new();
    for (kind, program) in kinds {
        let cluster = start_cluster(kind, &program, members, settings.start_limit)?;
        endpoints.push((
            format!("{} {members} members", kind.label()),
            cluster.leader_url(),
        ));
        clusters.push(cluster);
    }
    let table = measure_writes(
        settings,
        endpoints,
        members,
        "writes to the leader of a cluster (the null cluster replicates and syncs, nothing else)",
    );
    drop(clusters);
    table
}

/// The write workloads (put c=1, put c=64) on each target (label, endpoint) and on a null
/// cluster of `members` ([`crate::bench::null_cluster`]; one member: the null pipeline),
/// alternating; returns the table, titled `title`.
fn measure_writes(
    settings: &FloorSettings,
    mut endpoints: Vec<(String, String)>,
    members: usize,
    title: &str,
) -> Result<String, ProcessError> {
    let workloads: Vec<Workload> = floor_workloads()
        .into_iter()
        .filter(|w| matches!(w.operation, Operation::PutUniqueKeys))
        .collect();
    let null_dir = TempDir::new("null-cluster")?;
    let null = start_null_cluster(members, settings.tiny_http_workers, &null_dir.path).map_err(
        |error| ProcessError::Io {
            path: null_dir.path.clone(),
            reason: format!("starting the null cluster: {error}"),
        },
    )?;
    let null_label = if members == 1 {
        "null pipeline 1 member".to_string()
    } else {
        format!("null cluster {members} members")
    };
    endpoints.push((null_label, null.url()));
    let limits = (
        settings.max_requests,
        settings.time_limit,
        settings.request_timeout,
    );
    let mut measured: Vec<Target> = endpoints
        .into_iter()
        .map(|(label, endpoint)| Target {
            settings: settings_with_preload(&label, endpoint, 0, limits),
            label,
            figures: vec![Vec::new(); workloads.len()],
        })
        .collect();
    let phase = if members == 1 {
        "pipeline "
    } else {
        "cluster "
    };
    run_rounds(settings.rounds, phase, &workloads, &mut measured);
    drop(null);
    Ok(floor_table(
        title,
        &workloads,
        &measured,
        settings.etcd.is_some(),
    ))
}

/// Runs the fan-out `settings.rounds` times on each target (label, endpoint), alternating;
/// returns each target's label and delivery rates (events per second), in target order.
fn measure_fan_out(
    settings: &FloorSettings,
    targets: &[(String, String)],
) -> Vec<(String, Vec<f64>)> {
    let mut rates: Vec<(String, Vec<f64>)> = targets
        .iter()
        .map(|(label, _)| (label.clone(), Vec::new()))
        .collect();
    for round in 0..settings.rounds {
        println!(
            "== watch fan-out, round {} of {}",
            round + 1,
            settings.rounds
        );
        for (position, (label, endpoint)) in targets.iter().enumerate() {
            let fan_out = settings.fan_out.settings(
                vec![endpoint.clone()],
                settings.request_timeout,
                format!("{}/floor-watch", crate::bench::unique_key_prefix()),
            );
            match crate::bench::watch::run_fan_out(&fan_out, round as u64) {
                Ok(result) => {
                    println!(
                        "{label:<28} {}",
                        crate::bench::report::fan_out_line(&result)
                    );
                    // An inexact run (missed or late events) is no ceiling: it is left out.
                    if result.is_exact() {
                        rates[position].1.push(result.delivery_rate_per_second());
                    }
                }
                Err(error) => println!("{label:<28} watch fan-out setup failed: {error}"),
            }
        }
    }
    rates
}

/// Median delivery rates and each as a multiple of etcd's (the second target, if measured).
fn fan_out_table(settings: &FloorSettings, rates: &[(String, Vec<f64>)]) -> String {
    let etcd = settings
        .etcd
        .is_some()
        .then(|| rates.get(1).map(|(_, r)| median(r)))
        .flatten();
    let rows: Vec<Vec<String>> = rates
        .iter()
        .map(|(label, figures)| {
            let figure = median(figures);
            vec![
                label.clone(),
                format!("{figure:.0}"),
                ratio(figure, etcd),
                figures.len().to_string(),
            ]
        })
        .collect();
    let header = [
        "server",
        &format!("watch W={} events/s", settings.fan_out.watchers) as &str,
        "x etcd",
        "exact runs",
    ];
    format!(
        "\n== watch fan-out medians (the null watch server keeps events and parks watches, nothing else; +sync also hands each PUT to an applying thread that syncs it first, as the design card's write flow does)\n{}",
        table(&header, &rows)
    )
}

/// Medians per server and workload, and each as a multiple of etcd's (the second target),
/// under the heading `what`.
fn floor_table(what: &str, workloads: &[Workload], measured: &[Target], has_etcd: bool) -> String {
    let etcd_medians: Option<Vec<f64>> = has_etcd.then(|| {
        measured[1]
            .figures
            .iter()
            .map(|figures| median(figures))
            .collect()
    });
    let mut header = vec!["server"];
    let mut columns = Vec::new();
    for workload in workloads {
        if judged_by_latency(workload) {
            columns.push(format!("{} p50 ms", workload.name));
        } else {
            columns.push(format!("{} /s", workload.name));
        }
        columns.push(format!("{} x etcd", workload.name));
    }
    header.extend(columns.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = measured
        .iter()
        .map(|target| {
            let mut row = vec![target.label.clone()];
            for (index, figures) in target.figures.iter().enumerate() {
                let figure = median(figures);
                if judged_by_latency(&workloads[index]) {
                    row.push(format!("{figure:.3}"));
                } else {
                    row.push(format!("{figure:.0}"));
                }
                row.push(ratio(figure, etcd_medians.as_ref().map(|m| m[index])));
            }
            row
        })
        .collect();
    format!("\n== medians ({what})\n{}", table(&header, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(address: SocketAddr, raw: &[u8], answers: usize) -> String {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(raw).expect("send");
        let expected = null_response().len() * answers;
        let mut received = vec![0u8; expected];
        stream.read_exact(&mut received).expect("answers");
        String::from_utf8(received).expect("utf-8")
    }

    #[test]
    fn null_servers_answer_pipelined_requests_with_and_without_bodies() {
        let raw = b"PUT /v2/keys/a HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\nvalue=1GET /v2/keys/a HTTP/1.1\r\nHost: t\r\n\r\n";
        for server in [
            start_tiny_http_null(2).expect("tiny_http null"),
            start_std_net_null().expect("std::net null"),
        ] {
            let answers = exchange(server.address, raw, 2);
            assert_eq!(
                answers.matches("HTTP/1.1 200 OK\r\n").count(),
                2,
                "{answers}"
            );
            assert_eq!(answers.matches(NULL_BODY).count(), 2, "{answers}");
        }
    }

    #[test]
    fn hand_offs_are_measured_once_per_round_trip() {
        let latency = hand_off_round_trips(20);
        assert_eq!(latency.count(), 20);
        assert!(latency.quantile_nanos(0.5) > 0);
    }

    #[test]
    fn header_values_are_found_case_insensitively() {
        assert_eq!(
            header_value(b"Content-LENGTH:  12 \r\n", b"content-length"),
            Some("12")
        );
        assert_eq!(header_value(b"Host: t\r\n", b"content-length"), None);
        assert_eq!(header_value(b"no colon\r\n", b"content-length"), None);
    }
}
