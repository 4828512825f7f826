//! Concurrent clients that record what they saw, for the linearizability checker.
//!
//! Each client is a std thread with its own keep-alive HTTP client. It picks a random member
//! for every operation (avoiding for 1 s one that just failed it, as a client with several
//! endpoints does) and a random key of a small set, and records get (`quorum=true`), put,
//! compare-and-swap (`prevValue`) and delete with invoke and return times on one shared clock.
//! Values are unique (`c<client>-<seq>`), which keeps the checker's search short.
//!
//! Outcomes: a definite answer is recorded as such; a timeout, a 5xx or a broken connection is
//! [`KvOutput::Unknown`] (the write may or may not have happened). A request whose TCP connect
//! failed, with no kept-alive connection tried first, was never sent and is not recorded. Besides the checked keys, clients write keys
//! that are never overwritten (`/acked/<client>-<seq>`): every acknowledged one of them must be
//! present on every member after healing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use raftkv::client::http::{encode_form, HttpClient};
use raftkv::sim::linearizability::{
    check_kv_history, CheckOutcome, KvInput, KvOperation, KvOutput,
};

use super::{http_request, TestRng};

/// How long a client keeps away from a member after a failed request.
const AVOID_FAILED_MEMBER: Duration = Duration::from_secs(1);

/// Search steps the checker may spend on one history.
pub const CHECK_STEP_BUDGET: u64 = 50_000_000;

/// What the clients of a [`Workload`] did.
#[derive(Debug, Default)]
pub struct WorkloadResult {
    pub history: Vec<KvOperation>,
    /// The client port each operation of `history` went to (same order).
    pub targets: Vec<u16>,
    /// Keys under `/acked` whose creation was acknowledged.
    pub acked_keys: Vec<String>,
    /// Operations with a definite answer / with an unknown outcome / not sent.
    pub definite: u64,
    pub unknown: u64,
    pub not_sent: u64,
}

/// Client threads running until [`Workload::finish`].
pub struct Workload {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<WorkloadResult>>,
    /// Client ports the clients choose from; the test may change it (added members).
    pub ports: Arc<RwLock<Vec<u16>>>,
    pub acked_writes: Arc<AtomicU64>,
}

/// Settings of a workload.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub keys: usize,
    pub request_timeout_ms: u64,
    /// Pause between two operations of one client.
    pub think_ms: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 4,
            keys: 6,
            request_timeout_ms: 3000,
            think_ms: 5,
        }
    }
}

impl Workload {
    pub fn start(ports: Vec<u16>, config: WorkloadConfig, seed: u64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let ports = Arc::new(RwLock::new(ports));
        let acked_writes = Arc::new(AtomicU64::new(0));
        let clock = Instant::now();
        let handles = (0..config.clients)
            .map(|client| {
                let stop = stop.clone();
                let ports = ports.clone();
                let acked_writes = acked_writes.clone();
                let rng = TestRng::new(seed ^ ((client as u64 + 1) << 40));
                std::thread::Builder::new()
                    .name(format!("client-{client}"))
                    .spawn(move || {
                        run_client(
                            client as u64,
                            config,
                            rng,
                            clock,
                            &stop,
                            &ports,
                            &acked_writes,
                        )
                    })
                    .expect("spawn a client thread")
            })
            .collect();
        Workload {
            stop,
            handles,
            ports,
            acked_writes,
        }
    }

    /// Stops the clients (each finishes its request in flight) and merges their histories.
    pub fn finish(mut self) -> WorkloadResult {
        self.stop.store(true, Ordering::Release);
        let mut merged = WorkloadResult::default();
        for handle in std::mem::take(&mut self.handles) {
            let result = handle.join().expect("a client thread panicked");
            merged.history.extend(result.history);
            merged.targets.extend(result.targets);
            merged.acked_keys.extend(result.acked_keys);
            merged.definite += result.definite;
            merged.unknown += result.unknown;
            merged.not_sent += result.not_sent;
        }
        merged
    }
}

impl Drop for Workload {
    /// A test that panics mid-way stops its clients too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// What became of one request.
enum Sent {
    Answer(u16, Vec<u8>),
    Unknown,
    Never,
}

/// A keep-alive HTTP client that knows whether it holds an idle connection to a port: the
/// library client silently retries a request whose reused connection failed on a fresh one,
/// so a failed connect proves "never sent" only when no connection was reused.
struct KeepAliveClient {
    http: HttpClient,
    /// Ports whose last exchange succeeded (an idle connection may be kept for them).
    maybe_idle: std::collections::BTreeSet<u16>,
}

impl KeepAliveClient {
    fn new() -> KeepAliveClient {
        KeepAliveClient {
            http: HttpClient::new(Some(Duration::from_millis(500))),
            maybe_idle: Default::default(),
        }
    }

    fn send(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        form: Option<String>,
        timeout_ms: u64,
    ) -> Sent {
        let reused = self.maybe_idle.remove(&port);
        match http_request(&mut self.http, port, method, path, form, timeout_ms) {
            Ok(response) => {
                self.maybe_idle.insert(port);
                Sent::Answer(response.status, response.body)
            }
            Err(text) if !reused && text.starts_with("dial tcp") && !text.contains("timeout") => {
                Sent::Never
            }
            Err(_) => Sent::Unknown,
        }
    }
}

fn node_value(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json["node"]["value"].as_str().map(str::to_string)
}

fn error_code(body: &[u8]) -> Option<u64> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json["errorCode"].as_u64()
}

fn run_client(
    client_id: u64,
    config: WorkloadConfig,
    mut rng: TestRng,
    clock: Instant,
    stop: &AtomicBool,
    ports: &RwLock<Vec<u16>>,
    acked_writes: &AtomicU64,
) -> WorkloadResult {
    let mut http = KeepAliveClient::new();
    let mut result = WorkloadResult::default();
    // The last value this client saw per key: the expected value of its compare-and-swaps.
    let mut last_seen: Vec<Option<String>> = vec![None; config.keys];
    let now = |clock: Instant| clock.elapsed().as_nanos() as u64;
    let mut seq = 0u64;
    let mut avoid_until: std::collections::BTreeMap<u16, Instant> = Default::default();
    while !stop.load(Ordering::Acquire) {
        seq += 1;
        // Like a real client with several endpoints: a member that just failed is avoided
        // for a while (unless every member did).
        let port = {
            let ports = ports.read();
            let now = Instant::now();
            let usable: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| avoid_until.get(p).is_none_or(|until| *until <= now))
                .collect();
            let choices = if usable.is_empty() {
                ports.clone()
            } else {
                usable
            };
            choices[rng.below(choices.len() as u64) as usize]
        };
        let key_index = rng.below(config.keys as u64) as usize;
        let key = format!("/lin/k{key_index}");
        let value = format!("c{client_id}-{seq}");
        let dice = rng.below(100);
        let timeout = config.request_timeout_ms;
        if dice >= 90 {
            let acked = format!("/acked/c{client_id}-{seq}");
            let form = encode_form(&[("value", value.clone())]);
            if let Sent::Answer(200 | 201, _) = http.send(
                port,
                "PUT",
                &format!("/v2/keys{acked}"),
                Some(form),
                timeout,
            ) {
                result.acked_keys.push(acked);
                acked_writes.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let invoke_time = now(clock);
        let (input, sent) = if dice < 40 {
            let sent = http.send(
                port,
                "GET",
                &format!("/v2/keys{key}?quorum=true"),
                None,
                timeout,
            );
            (KvInput::Get { key: key.clone() }, sent)
        } else if dice < 65 {
            let form = encode_form(&[("value", value.clone())]);
            let sent = http.send(port, "PUT", &format!("/v2/keys{key}"), Some(form), timeout);
            (
                KvInput::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
                sent,
            )
        } else if dice < 80 {
            let expected = last_seen[key_index]
                .clone()
                .unwrap_or_else(|| format!("c{}-{}", rng.below(4), rng.below(seq + 1)));
            let form = encode_form(&[("value", value.clone()), ("prevValue", expected.clone())]);
            let sent = http.send(port, "PUT", &format!("/v2/keys{key}"), Some(form), timeout);
            (
                KvInput::CompareAndSwap {
                    key: key.clone(),
                    expected,
                    new_value: value.clone(),
                },
                sent,
            )
        } else {
            let sent = http.send(port, "DELETE", &format!("/v2/keys{key}"), None, timeout);
            (KvInput::Delete { key: key.clone() }, sent)
        };
        let return_time = now(clock);
        if !matches!(sent, Sent::Answer(200..=499, _)) {
            avoid_until.insert(port, Instant::now() + AVOID_FAILED_MEMBER);
        }
        let output = match (&input, sent) {
            (_, Sent::Never) => {
                result.not_sent += 1;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            (_, Sent::Unknown) => KvOutput::Unknown,
            (KvInput::Get { .. }, Sent::Answer(200, body)) => match node_value(&body) {
                Some(found) => KvOutput::Value(Some(found)),
                None => KvOutput::Unknown,
            },
            (KvInput::Get { .. }, Sent::Answer(404, body)) if error_code(&body) == Some(100) => {
                KvOutput::Value(None)
            }
            (KvInput::Put { .. }, Sent::Answer(200 | 201, _)) => KvOutput::Written,
            (KvInput::CompareAndSwap { .. }, Sent::Answer(200, _)) => KvOutput::Swapped(true),
            (KvInput::CompareAndSwap { .. }, Sent::Answer(404 | 412, body))
                if matches!(error_code(&body), Some(100 | 101)) =>
            {
                KvOutput::Swapped(false)
            }
            (KvInput::Delete { .. }, Sent::Answer(200, _)) => KvOutput::Deleted { existed: true },
            (KvInput::Delete { .. }, Sent::Answer(404, body)) if error_code(&body) == Some(100) => {
                KvOutput::Deleted { existed: false }
            }
            (_, Sent::Answer(_, _)) => KvOutput::Unknown,
        };
        match &output {
            KvOutput::Unknown => result.unknown += 1,
            _ => result.definite += 1,
        }
        match (&input, &output) {
            (KvInput::Get { .. }, KvOutput::Value(found)) => last_seen[key_index] = found.clone(),
            (KvInput::Put { value, .. }, KvOutput::Written) => {
                last_seen[key_index] = Some(value.clone())
            }
            (KvInput::CompareAndSwap { new_value, .. }, KvOutput::Swapped(true)) => {
                last_seen[key_index] = Some(new_value.clone())
            }
            (KvInput::Delete { .. }, KvOutput::Deleted { .. }) => last_seen[key_index] = None,
            _ => {}
        }
        if matches!(
            (&input, &output),
            (
                KvInput::Put { .. } | KvInput::CompareAndSwap { .. } | KvInput::Delete { .. },
                KvOutput::Written | KvOutput::Swapped(true) | KvOutput::Deleted { .. }
            )
        ) {
            acked_writes.fetch_add(1, Ordering::Relaxed);
        }
        result.targets.push(port);
        result.history.push(KvOperation {
            client_id,
            invoke_time,
            return_time,
            input,
            output,
        });
        if config.think_ms > 0 {
            std::thread::sleep(Duration::from_millis(rng.below(config.think_ms * 2 + 1)));
        }
    }
    result
}

/// Checks a history with the linearizability checker; the error names the seed and explains.
pub fn check_linearizable(result: &WorkloadResult, seed: u64) -> Result<(), String> {
    let started = Instant::now();
    let outcome = check_kv_history(&result.history, CHECK_STEP_BUDGET)
        .map_err(|e| format!("malformed history (seed {seed}): {e}"))?;
    println!(
        "checked {} operations ({} definite, {} unknown) in {:?}",
        result.history.len(),
        result.definite,
        result.unknown,
        started.elapsed()
    );
    match outcome {
        CheckOutcome::Linearizable => Ok(()),
        CheckOutcome::NotLinearizable(violation) => {
            let dump = std::env::temp_dir().join(format!("raftkv-history-{seed}.txt"));
            let text: String = result
                .history
                .iter()
                .zip(&result.targets)
                .enumerate()
                .map(|(index, (op, port))| format!("#{index} port {port}: {op}\n"))
                .collect();
            let _ = std::fs::write(&dump, text);
            Err(format!(
                "history is NOT linearizable (seed {seed}; whole history with target ports in {dump:?}):\n{}",
                violation.describe(&result.history)
            ))
        }
        CheckOutcome::Unknown { key, steps_used } => Err(format!(
            "checker ran out of budget on key {key} after {steps_used} steps (seed {seed})"
        )),
    }
}

/// Probers per member, started [`PROBE_STAGGER`] apart: a write lost with a dead leader
/// waits for its timeout, so staggered probers bound the measuring error by the stagger.
const PROBERS_PER_MEMBER: u32 = 4;
const PROBE_STAGGER: Duration = Duration::from_millis(125);
const PROBE_TIMEOUT_MS: u64 = 500;

/// Writes `/probe` through every member of `ports` at once, with staggered probers, until one
/// write is acknowledged; returns how long after `since` that was (bounded by `limit`).
pub fn first_write_after(since: Instant, ports: &[u16], limit: Duration) -> Option<Duration> {
    let done = Arc::new(AtomicBool::new(false));
    let first: Arc<RwLock<Option<Duration>>> = Arc::new(RwLock::new(None));
    let mut threads = Vec::new();
    for &port in ports {
        for prober in 0..PROBERS_PER_MEMBER {
            let done = done.clone();
            let first = first.clone();
            threads.push(std::thread::spawn(move || {
                std::thread::sleep(PROBE_STAGGER * prober);
                let mut http = HttpClient::new(Some(Duration::from_millis(300)));
                let mut attempt = 0u64;
                while !done.load(Ordering::Acquire) && since.elapsed() < limit {
                    attempt += 1;
                    let form = encode_form(&[("value", format!("{port}-{prober}-{attempt}"))]);
                    let path = "/v2/keys/probe";
                    if let Ok(response) =
                        http_request(&mut http, port, "PUT", path, Some(form), PROBE_TIMEOUT_MS)
                    {
                        if response.status / 100 == 2 {
                            let acknowledged_at = since.elapsed();
                            let mut first = first.write();
                            if first.is_none_or(|earlier| acknowledged_at < earlier) {
                                *first = Some(acknowledged_at);
                            }
                            done.store(true, Ordering::Release);
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }));
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    let first = *first.read();
    first
}

/// Median and worst of some durations, in milliseconds.
pub fn median_and_worst_ms(samples: &[Duration]) -> (u128, u128) {
    let mut sorted: Vec<u128> = samples.iter().map(Duration::as_millis).collect();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return (0, 0);
    }
    (sorted[sorted.len() / 2], sorted[sorted.len() - 1])
}
