//! Closed-loop request workloads: N worker threads, each with its own keep-alive connection,
//! send requests back to back until a shared request budget or a deadline runs out.
//!
//! Every worker first opens its connection (`GET /version`), then all of them start together
//! behind a barrier, so connection setup is not measured. Each worker records latencies into
//! its own [`Histogram`]; the runner merges them. Workers are spread over the endpoints round
//! robin (worker `i` talks to `endpoints[i % len]`), so passing one follower's URL measures
//! "to a follower" and passing the leader's measures "to the leader".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::bench::histogram::Histogram;
use crate::bench::requests::{KeyPicker, RequestError, Session};

/// What every request of a workload does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// PUT to a key no request used before.
    PutUniqueKeys,
    /// PUT to one key shared by every worker.
    PutHotKey,
    /// GET a random preloaded key (`quorum=true` when asked).
    GetPreloaded { quorum: bool },
    /// GET a random preloaded key, or (`put_percent` % of requests) PUT one.
    GetPutMix { put_percent: u64 },
}

/// One closed-loop workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short name printed in results (`put c=64`).
    pub name: String,
    pub operation: Operation,
    /// Worker threads (connections).
    pub concurrency: usize,
}

/// Where and how long to run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Invariant: not empty.
    pub endpoints: Vec<String>,
    /// Requests sent in all, at most.
    pub max_requests: u64,
    /// Measuring stops when this much time has passed, whatever the count.
    pub time_limit: Duration,
    /// Deadline for one request.
    pub request_timeout: Duration,
    /// Key prefix owned by this run (`/bench/<tag>`), so runs never collide.
    pub key_prefix: String,
    /// How many keys `preload` wrote under `<key_prefix>/preload/`.
    pub preloaded_keys: u64,
}

/// What one workload run measured.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    pub name: String,
    pub concurrency: usize,
    /// Requests that got a success answer. Invariant: equals `latency.count()`.
    pub succeeded: u64,
    /// Requests that failed (errors are not in the histogram). Invariant: `succeeded +
    /// failed_requests <= max_requests`.
    pub failed_requests: u64,
    /// Workers whose connection never answered its first request (they sent nothing more).
    pub failed_workers: u64,
    /// New connections the server accepted but did not answer within
    /// [`crate::bench::requests::CONNECTION_STALL_LIMIT`], dialled again.
    pub stalled_connections: u64,
    /// The first failure seen, for the report.
    pub first_error: Option<String>,
    /// From the common start to the last worker's end.
    pub elapsed: Duration,
    pub latency: Histogram,
}

impl WorkloadResult {
    /// Successful requests per second.
    pub fn throughput_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.succeeded as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Key of the `index`-th preloaded key.
pub fn preloaded_key(prefix: &str, index: u64) -> String {
    format!("{prefix}/preload/k{index}")
}

/// The standard workload list of the issue (without the watch fan-out).
pub fn standard_workloads() -> Vec<Workload> {
    let mut workloads: Vec<Workload> = [1, 16, 64, 256]
        .into_iter()
        .map(|concurrency| Workload {
            name: format!("put c={concurrency}"),
            operation: Operation::PutUniqueKeys,
            concurrency,
        })
        .collect();
    workloads.push(Workload {
        name: "put hot key c=64".into(),
        operation: Operation::PutHotKey,
        concurrency: 64,
    });
    workloads.push(Workload {
        name: "get c=64".into(),
        operation: Operation::GetPreloaded { quorum: false },
        concurrency: 64,
    });
    workloads.push(Workload {
        name: "get quorum c=64".into(),
        operation: Operation::GetPreloaded { quorum: true },
        concurrency: 64,
    });
    workloads.push(Workload {
        name: "mix 90/10 c=64".into(),
        operation: Operation::GetPutMix { put_percent: 10 },
        concurrency: 64,
    });
    workloads
}

/// Run settings for one endpoint under a fresh key prefix, after preloading `preload_keys`
/// keys there with 64 workers (a failed preload is reported as a note, and the get workloads
/// then find nothing to read).
pub fn settings_with_preload(
    label: &str,
    endpoint: String,
    preload_keys: u64,
    limits: (u64, Duration, Duration),
) -> RunSettings {
    let (max_requests, time_limit, request_timeout) = limits;
    let key_prefix = crate::bench::unique_key_prefix();
    let loaded = preload(
        std::slice::from_ref(&endpoint),
        &key_prefix,
        preload_keys,
        64,
        request_timeout,
    )
    .unwrap_or_else(|error| {
        println!("note: {label}: preload failed: {error}");
        0
    });
    RunSettings {
        endpoints: vec![endpoint],
        max_requests,
        time_limit,
        request_timeout,
        key_prefix,
        preloaded_keys: loaded,
    }
}

/// Writes `count` keys under `<prefix>/preload/` with `concurrency` workers; returns the
/// number written and the first error.
pub fn preload(
    endpoints: &[String],
    prefix: &str,
    count: u64,
    concurrency: usize,
    request_timeout: Duration,
) -> Result<u64, RequestError> {
    assert!(!endpoints.is_empty(), "preload needs at least one endpoint");
    let next = AtomicU64::new(0);
    let results: Vec<Result<u64, RequestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency.max(1))
            .map(|worker| {
                let endpoint = &endpoints[worker % endpoints.len()];
                let next = &next;
                scope.spawn(move || -> Result<u64, RequestError> {
                    let mut session = Session::new(endpoint, request_timeout)?;
                    session.connect_with_retries()?;
                    let mut written = 0;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            return Ok(written);
                        }
                        session.put(&preloaded_key(prefix, index))?;
                        written += 1;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a preload worker panicked"))
            .collect()
    });
    let mut written = 0;
    for result in results {
        written += result?;
    }
    Ok(written)
}

/// What one worker brings back.
struct WorkerOutcome {
    latency: Histogram,
    failed_requests: u64,
    failed_workers: u64,
    stalled_connections: u64,
    first_error: Option<String>,
    /// When the worker passed the start line and when it stopped.
    started: Instant,
    ended: Instant,
}

/// Runs `workload` against `settings.endpoints` until the budget or the time limit runs out.
pub fn run_workload(workload: &Workload, settings: &RunSettings) -> WorkloadResult {
    assert!(
        !settings.endpoints.is_empty(),
        "a workload needs at least one endpoint"
    );
    let needs_preload = matches!(
        workload.operation,
        Operation::GetPreloaded { .. } | Operation::GetPutMix { .. }
    );
    assert!(
        !needs_preload || settings.preloaded_keys > 0,
        "workload {:?} reads preloaded keys, but none were preloaded",
        workload.name
    );
    let concurrency = workload.concurrency.max(1);
    let issued = AtomicU64::new(0);
    let start_line = Barrier::new(concurrency + 1);
    let tag = workload.name.replace([' ', '=', '/'], "_");
    let (outcomes, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|worker| {
                let issued = &issued;
                let start_line = &start_line;
                let tag = &tag;
                scope.spawn(move || run_worker(workload, settings, worker, tag, issued, start_line))
            })
            .collect();
        start_line.wait();
        // The main thread may be scheduled long after the workers started (2 cores, 256
        // workers): the run spans from the first worker's start to the last worker's end.
        let outcomes: Vec<WorkerOutcome> = handles
            .into_iter()
            .map(|h| h.join().expect("a workload worker panicked"))
            .collect();
        let first_start = outcomes.iter().map(|o| o.started).min();
        let last_end = outcomes.iter().map(|o| o.ended).max();
        let elapsed = match (first_start, last_end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        (outcomes, elapsed)
    });
    let mut result = WorkloadResult {
        name: workload.name.clone(),
        concurrency,
        succeeded: 0,
        failed_requests: 0,
        failed_workers: 0,
        stalled_connections: 0,
        first_error: None,
        elapsed,
        latency: Histogram::new(),
    };
    for outcome in outcomes {
        result.latency.merge(&outcome.latency);
        result.failed_requests += outcome.failed_requests;
        result.failed_workers += outcome.failed_workers;
        result.stalled_connections += outcome.stalled_connections;
        if result.first_error.is_none() {
            result.first_error = outcome.first_error;
        }
    }
    result.succeeded = result.latency.count();
    result
}

fn run_worker(
    workload: &Workload,
    settings: &RunSettings,
    worker: usize,
    tag: &str,
    issued: &AtomicU64,
    start_line: &Barrier,
) -> WorkerOutcome {
    let endpoint = &settings.endpoints[worker % settings.endpoints.len()];
    let mut outcome = WorkerOutcome {
        latency: Histogram::new(),
        failed_requests: 0,
        failed_workers: 0,
        stalled_connections: 0,
        first_error: None,
        started: Instant::now(),
        ended: Instant::now(),
    };
    let session = Session::new(endpoint, settings.request_timeout).and_then(|mut session| {
        outcome.stalled_connections = session.connect_with_retries()?;
        Ok(session)
    });
    // Every worker reaches the barrier, even a failed one, or the others would wait forever.
    start_line.wait();
    outcome.started = Instant::now();
    outcome.ended = outcome.started;
    let mut session = match session {
        Ok(session) => session,
        Err(error) => {
            outcome.failed_workers += 1;
            outcome.first_error = Some(error.to_string());
            return outcome;
        }
    };
    let deadline = outcome.started + settings.time_limit;
    let mut picker = KeyPicker::new(worker as u64 + 1);
    let unique_prefix = format!("{}/{tag}/w{worker}-", settings.key_prefix);
    let hot_key = format!("{}/hot", settings.key_prefix);
    let mut sequence = 0u64;
    loop {
        if issued.fetch_add(1, Ordering::Relaxed) >= settings.max_requests
            || Instant::now() >= deadline
        {
            outcome.ended = Instant::now();
            return outcome;
        }
        let started = Instant::now();
        let answer = match workload.operation {
            Operation::PutUniqueKeys => {
                sequence += 1;
                session.put(&format!("{unique_prefix}{sequence}"))
            }
            Operation::PutHotKey => session.put(&hot_key),
            Operation::GetPreloaded { quorum } => {
                let index = picker.below(settings.preloaded_keys);
                session.get(&preloaded_key(&settings.key_prefix, index), quorum)
            }
            Operation::GetPutMix { put_percent } => {
                let index = picker.below(settings.preloaded_keys);
                let key = preloaded_key(&settings.key_prefix, index);
                if picker.below(100) < put_percent {
                    session.put(&key)
                } else {
                    session.get(&key, false)
                }
            }
        };
        match answer {
            Ok(_) => outcome.latency.record(started.elapsed()),
            Err(error) => {
                outcome.failed_requests += 1;
                if outcome.first_error.is_none() {
                    outcome.first_error = Some(error.to_string());
                }
            }
        }
    }
}
