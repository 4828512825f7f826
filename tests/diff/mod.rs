//! The etcd differential suite: runs every scenario of `tests/diff/scenarios/` against two
//! servers (etcd and raftkv, or two etcds to validate the harness itself), normalises the
//! responses and reports every scenario where they differ.
//!
//! Both servers run the whole scenario list, each in its own thread, so sleeps overlap. Each
//! scenario writes only under its own prefix `/s<N>` and that prefix is deleted recursively
//! afterwards (not recorded), so scenarios do not see each other's keys or pending TTLs.
//!
//! Adding a scenario: append a `=== name` block to a file in `tests/diff/scenarios/` (format
//! in `scenario.rs`), then run `cargo test --test diff_selfcheck` — two etcds must agree on it,
//! which proves it is deterministic under the normalisation — and `cargo test --test
//! diff_etcd` for raftkv. A failure prints, per differing step, a one-line summary of what
//! differs, the request, and both normalised responses with the raw bodies.
//!
//! Environment: `RAFTKV_DIFF_OUT=<file>` also writes that report to a file;
//! `RAFTKV_DIFF_DUMP=<file>` writes every exchange of the first server (to review scenarios).

pub mod http;
pub mod json;
pub mod normalize;
pub mod scenario;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{ServerKind, ServerProcess};
use normalize::{normalize, render, same, Context, Norm};
use scenario::{Compare, RequestTemplate, Scenario, Step, Substitution};

/// One recorded exchange.
pub struct Record {
    /// The request bytes (escaped for display).
    pub request: String,
    pub norm: Norm,
    /// The raw body (escaped, truncated) for diagnosis.
    pub raw_body: String,
}

/// The records of one scenario on one server.
pub struct ScenarioRun {
    pub records: Vec<Record>,
}

/// Loads the scenario files of `tests/diff/<subdir>`.
pub fn load_scenarios_from(subdir: &str) -> Vec<Scenario> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/diff")
        .join(subdir);
    scenario::load_dir(&dir).unwrap_or_else(|e| panic!("loading scenarios from {dir:?}: {e}"))
}

fn escape_for_display(bytes: &[u8], limit: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(limit) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > limit {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

/// Reads the server's current X-Etcd-Index through a GET of a missing key.
fn probe_index(port: u16, scenario_number: usize) -> u64 {
    let request = format!(
        "GET /v2/keys/s{scenario_number}-probe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let response =
        http::send(port, request.as_bytes(), false).finish(Instant::now() + Duration::from_secs(5));
    response
        .header("X-Etcd-Index")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn exchange(port: u16, request: &[u8], is_head: bool, timeout: Duration) -> http::RawResponse {
    http::send(port, request, is_head).finish(Instant::now() + timeout)
}

fn target_of(request: &[u8]) -> Vec<u8> {
    let line_end = request
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(request.len());
    let line = &request[..line_end];
    let mut parts = line.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next().unwrap_or(b"").to_vec()
}

fn record(
    raw: &http::RawResponse,
    request: &[u8],
    subst: &Substitution,
    peer_port: u16,
    compare: Compare,
) -> Record {
    let target = target_of(request);
    let ctx = Context {
        base_index: subst.base_index,
        client_port: subst.client_port,
        peer_port,
        target: &target,
        compare,
        is_head: request.starts_with(b"HEAD "),
    };
    let mut raw_body = escape_for_display(&raw.body, 600);
    if let Some(error) = &raw.transport_error {
        raw_body.push_str(&format!(" [transport: {error}]"));
    }
    Record {
        request: escape_for_display(request, 400),
        norm: normalize(raw, &ctx),
        raw_body,
    }
}

/// Time after which the remaining scenarios are not run on a server.
const SUITE_BUDGET: Duration = Duration::from_secs(150);

/// True when the last three recorded exchanges all got no response at all.
fn unresponsive(runs: &[ScenarioRun]) -> bool {
    let recent: Vec<&Record> = runs
        .iter()
        .rev()
        .flat_map(|run| run.records.iter().rev())
        .take(3)
        .collect();
    recent.len() == 3
        && recent
            .iter()
            .all(|record| record.norm.status == 0 && record.norm.transport_error)
}

fn not_run_record() -> Record {
    Record {
        request: "(scenario not run: suite budget spent or server unresponsive)".into(),
        norm: Norm {
            status: 0,
            headers: vec![(
                "(not run)".into(),
                "server unresponsive or out of time".into(),
            )],
            body: Vec::new(),
            complete: false,
            transport_error: true,
            json_escapes: String::new(),
        },
        raw_body: String::new(),
    }
}

/// Runs every scenario against `server`.
pub fn run_all(scenarios: &[Scenario], server: &mut ServerProcess) -> Vec<ScenarioRun> {
    let (client_port, peer_port) = (server.client_port, server.peer_port);
    let mut runs = Vec::new();
    let started = Instant::now();
    for (index, scenario) in scenarios.iter().enumerate() {
        let number = index + 1;
        // A hung or dead server must not turn the suite into hours of timeouts: once the
        // budget is spent or the server stopped answering, the remaining scenarios are
        // recorded as not run (and so differ).
        if started.elapsed() > SUITE_BUDGET || unresponsive(&runs) {
            runs.push(ScenarioRun {
                records: vec![not_run_record()],
            });
            continue;
        }
        let subst = Substitution {
            scenario_number: number,
            base_index: probe_index(client_port, number),
            client_port,
        };
        let mut records = Vec::new();
        let mut watches: BTreeMap<String, (Vec<u8>, http::PendingResponse)> = BTreeMap::new();
        for step in &scenario.steps {
            match step {
                Step::Request(template) => {
                    let request = template.render(&subst);
                    let raw = exchange(
                        client_port,
                        &request,
                        template.method == "HEAD",
                        Duration::from_secs(10),
                    );
                    records.push(record(&raw, &request, &subst, peer_port, template.compare));
                }
                Step::Raw(bytes) => {
                    let request = subst.apply(bytes);
                    let raw = exchange(client_port, &request, false, Duration::from_secs(3));
                    records.push(record(
                        &raw,
                        &request,
                        &subst,
                        peer_port,
                        Compare::StatusOnly,
                    ));
                }
                Step::Watch {
                    label,
                    request: template,
                } => {
                    let request = template.render(&subst);
                    let mut pending = http::send(client_port, &request, false);
                    pending.read_headers(Instant::now() + Duration::from_secs(3));
                    watches.insert(label.clone(), (request, pending));
                }
                Step::Await { label, millis } => {
                    let (request, pending) = watches.remove(label).unwrap_or_else(|| {
                        panic!("scenario {}: AWAIT of unknown watch {label}", scenario.name)
                    });
                    let raw = pending.finish(Instant::now() + Duration::from_millis(*millis));
                    records.push(record(&raw, &request, &subst, peer_port, Compare::Full));
                }
                Step::AbsoluteIndex => {
                    let index = probe_index(client_port, number);
                    records.push(Record {
                        request: "(probe of X-Etcd-Index, compared as an absolute number)".into(),
                        norm: Norm {
                            status: 0,
                            headers: vec![("X-Etcd-Index (absolute)".into(), index.to_string())],
                            body: Vec::new(),
                            complete: true,
                            transport_error: false,
                            json_escapes: String::new(),
                        },
                        raw_body: String::new(),
                    });
                }
                Step::Pipeline {
                    requests: templates,
                    ..
                } => {
                    let rendered: Vec<Vec<u8>> = templates
                        .iter()
                        .enumerate()
                        .map(|(i, t)| t.render_with(&subst, i + 1 == templates.len()))
                        .collect();
                    let mut pending = http::send(client_port, &rendered.concat(), false);
                    let deadline = Instant::now() + Duration::from_secs(10);
                    for (template, request) in templates.iter().zip(&rendered) {
                        pending.expect_head(template.method == "HEAD");
                        let raw = pending.finish_one(deadline);
                        records.push(record(&raw, request, &subst, peer_port, template.compare));
                    }
                    let _ = pending.finish(Instant::now());
                }
                Step::Restart => {
                    // Every server spends the same wall-clock time in a restart, so TTLs
                    // read afterwards agree within the one-second tolerance (etcd takes over
                    // a second to come back, raftkv much less).
                    let restart_started = Instant::now();
                    watches.clear();
                    server.restart().unwrap_or_else(|e| {
                        panic!(
                            "scenario {}: restarting {:?}: {e}",
                            scenario.name, server.kind
                        )
                    });
                    wait_index_settled(client_port);
                    let equal_restart_time = Duration::from_secs(4);
                    if let Some(rest) = equal_restart_time.checked_sub(restart_started.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                Step::Sleep(millis) => std::thread::sleep(Duration::from_millis(*millis)),
                Step::Repeat {
                    count,
                    request: template,
                } => {
                    let request = template.render(&subst);
                    let mut last = None;
                    for _ in 0..*count {
                        last = Some(exchange(
                            client_port,
                            &request,
                            template.method == "HEAD",
                            Duration::from_secs(10),
                        ));
                    }
                    if let Some(raw) = last {
                        records.push(record(&raw, &request, &subst, peer_port, template.compare));
                    }
                }
            }
        }
        drop(watches);
        let cleanup = RequestTemplate {
            method: "DELETE".into(),
            target: "$K?recursive=true".into(),
            headers: Vec::new(),
            body: None,
            content_type: None,
            big_body_bytes: None,
            compare: Compare::Full,
        };
        let _ = exchange(
            client_port,
            &cleanup.render(&subst),
            false,
            Duration::from_secs(5),
        );
        runs.push(ScenarioRun { records });
    }
    runs
}

/// Scenarios where raftkv differs from etcd on purpose or because of tiny_http (the HTTP
/// library raftkv is built on), with the reason. Everything else must match.
pub const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "bad-non-utf8-raw-path-byte",
        "tiny_http refuses a request line that is not UTF-8 and closes the connection before raftkv sees the request; etcd (Go) accepts the raw byte",
    ),
    (
        "bad-malformed-request-lines",
        "tiny_http answers an unparsable request line with 400 itself; etcd (cmux in front of Go's server) closes the connection without an answer",
    ),
];

/// Starts a server of each kind, runs all scenarios on both (in parallel) and panics listing
/// every scenario whose normalised responses differ.
pub fn run_and_compare(first: ServerKind, second: ServerKind) {
    run_and_compare_with(first, second, "scenarios", &[]);
}

/// [`run_and_compare`] for the scenarios of `tests/diff/<subdir>`, both servers started with
/// `extra_args` appended to their command lines.
///
/// Two etcds (the harness's self-check) differ only where the normalisation is unsound or
/// where one of them timed out on its own under load (a member removal answered 500 after
/// etcd's 5 s request timeout, seen once with a busy loop beside the suite): a scenario that
/// differs there is run once more on two fresh etcds and counts only if it differs again.
pub fn run_and_compare_with(
    first: ServerKind,
    second: ServerKind,
    subdir: &str,
    extra_args: &[&str],
) {
    let scenarios = load_scenarios_from(subdir);
    let started = Instant::now();
    let mut compared = compare_on_fresh_servers(first, second, &scenarios, extra_args);
    if second == ServerKind::Etcd && !compared.differing.is_empty() {
        println!(
            "{}etcd against etcd: {} differing; running them again on fresh servers",
            compared.report,
            compared.differing.len()
        );
        let again: Vec<Scenario> = scenarios
            .iter()
            .filter(|s| compared.differing.contains(&s.name))
            .cloned()
            .collect();
        compared = compare_on_fresh_servers(first, second, &again, extra_args);
    }
    let Compared {
        report,
        mut differing,
        log_tail,
    } = compared;
    let summary = format!(
        "{} scenarios, {} differing, {:.1} s\n",
        scenarios.len(),
        differing.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{report}{summary}");
    if let Ok(path) = std::env::var("RAFTKV_DIFF_OUT") {
        let _ = std::fs::write(
            path,
            format!("{report}{summary}differing: {}\n", differing.join(" ")),
        );
    }
    if second == ServerKind::Raftkv {
        // Differences that are deliberate or out of raftkv's reach are listed, with their
        // reason, in KNOWN_DIFFERENCES; a listed scenario that stops differing fails too, so
        // the list stays true.
        let (known, unknown): (Vec<String>, Vec<String>) = differing
            .into_iter()
            .partition(|name| KNOWN_DIFFERENCES.iter().any(|(known, _)| known == name));
        for (name, reason) in KNOWN_DIFFERENCES {
            if known.iter().any(|k| k == name) {
                println!("known difference {name}: {reason}");
            }
        }
        let stale: Vec<&str> = KNOWN_DIFFERENCES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                scenarios.iter().any(|s| s.name == *name) && !known.iter().any(|k| k == name)
            })
            .collect();
        assert!(
            stale.is_empty(),
            "scenarios listed in KNOWN_DIFFERENCES no longer differ (remove them): {stale:?}"
        );
        differing = unknown;
    }
    if !differing.is_empty() {
        panic!(
            "{} of {} scenarios differ between {first:?} and {second:?}: {}\n{log_tail}",
            differing.len(),
            scenarios.len(),
            differing.join(", ")
        );
    }
}

/// What comparing a set of scenarios on two servers found.
struct Compared {
    /// One `=== DIFF` section per differing scenario.
    report: String,
    /// The names of the differing scenarios.
    differing: Vec<String>,
    /// The end of the second server's log when it is raftkv (empty otherwise).
    log_tail: String,
}

/// Starts a server of each kind with `extra_args`, runs `scenarios` on both (in parallel) and
/// compares their normalised responses.
fn compare_on_fresh_servers(
    first: ServerKind,
    second: ServerKind,
    scenarios: &[Scenario],
    extra_args: &[&str],
) -> Compared {
    let mut server_a = ServerProcess::start_with_args(first, "n1", extra_args)
        .unwrap_or_else(|e| panic!("starting {first:?}: {e}"));
    let mut server_b = ServerProcess::start_with_args(second, "n1", extra_args)
        .unwrap_or_else(|e| panic!("starting {second:?}: {e}"));
    wait_index_settled(server_a.client_port);
    wait_index_settled(server_b.client_port);
    let (runs_a, runs_b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| run_all(scenarios, &mut server_a));
        let b = scope.spawn(|| run_all(scenarios, &mut server_b));
        (
            a.join().expect("runner A panicked"),
            b.join().expect("runner B panicked"),
        )
    });
    if let Ok(path) = std::env::var("RAFTKV_DIFF_DUMP") {
        // Every exchange of the first server, for reviewing scenarios by eye.
        let mut dump = String::new();
        for (scenario, run) in scenarios.iter().zip(&runs_a) {
            dump.push_str(&format!("=== {} ({})\n", scenario.name, scenario.origin));
            for record in &run.records {
                dump.push_str(&format!(
                    "> {}\n{}    raw body: {}\n",
                    record.request,
                    render(&record.norm),
                    record.raw_body
                ));
            }
        }
        let _ = std::fs::write(path, dump);
    }
    let mut report = String::new();
    let mut differing = Vec::new();
    for ((scenario, run_a), run_b) in scenarios.iter().zip(&runs_a).zip(&runs_b) {
        let mut text = String::new();
        for (step, (ra, rb)) in run_a.records.iter().zip(&run_b.records).enumerate() {
            if !same(&ra.norm, &rb.norm) {
                text.push_str(&format!(
                    "  step {}: {}\n  request {}\n  --- {first:?}:\n{}    raw body: {}\n  --- {second:?}:\n{}    raw body: {}\n",
                    step + 1,
                    normalize::describe_difference(&ra.norm, &rb.norm),
                    ra.request,
                    render(&ra.norm),
                    ra.raw_body,
                    render(&rb.norm),
                    rb.raw_body
                ));
            }
        }
        if run_a.records.len() != run_b.records.len() {
            text.push_str("  different number of records\n");
        }
        if !text.is_empty() {
            report.push_str(&format!(
                "=== DIFF {} ({})\n{text}\n",
                scenario.name, scenario.origin
            ));
            differing.push(scenario.name.clone());
        }
    }
    let log_tail = if second == ServerKind::Raftkv && !differing.is_empty() {
        server_b.log_tail()
    } else {
        String::new()
    };
    Compared {
        report,
        differing,
        log_tail,
    }
}

/// Waits (at most 8 s) until the server's X-Etcd-Index stops moving: etcd records its member
/// attributes and cluster version in the store shortly after it starts serving.
fn wait_index_settled(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut last = None;
    let mut stable_polls = 0;
    while Instant::now() < deadline {
        let version = exchange(
            port,
            format!("GET /version HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            false,
            Duration::from_secs(2),
        );
        let decided = !String::from_utf8_lossy(&version.body).contains("not_decided");
        let index = probe_index(port, 0);
        if decided && last == Some(index) {
            stable_polls += 1;
            if stable_polls >= 2 {
                return;
            }
        } else {
            stable_polls = 0;
        }
        last = Some(index);
        std::thread::sleep(Duration::from_millis(150));
    }
}
