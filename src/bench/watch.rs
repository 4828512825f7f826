//! The watch fan-out workload: W long-poll watchers on one directory while one writer writes
//! N keys into it; every watcher must see every write's index exactly once.
//!
//! Each watcher sends `GET <dir>?wait=true&recursive=true&waitIndex=I`, takes the event that
//! answers, and re-arms with `I = event.modifiedIndex + 1`, as etcd v2 clients do. The writer
//! writes its N keys one after another, then one last `done` key; a watcher stops when it sees
//! that key (events arrive in index order, so nothing after it can belong to the run), or at
//! the time limit. When a watcher falls so far behind that its index left the server's event
//! history (error 401, "the requested history has been cleared [start/requested]"), it re-arms
//! at the oldest index still held and the events in between count as missed.
//!
//! The result compares what each watcher saw with the indexes the writer's PUTs returned:
//! `missed` (written, never seen), `duplicated` (seen more than once) and `unexpected` (seen,
//! never written), summed over watchers. The delivery rate is events delivered per second
//! across all watchers, from the common start until the last watcher stopped.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::bench::histogram::Histogram;
use crate::bench::requests::{RequestError, Session};
use crate::client::keys::{decode_keys_response, ClientError};

/// v2 error code for a waitIndex older than the event history.
const EVENT_INDEX_CLEARED: i64 = 401;

/// Settings of one fan-out run.
#[derive(Debug, Clone)]
pub struct FanOutSettings {
    /// Invariant: not empty. Watchers and the writer are spread round robin (the writer uses
    /// the first endpoint).
    pub endpoints: Vec<String>,
    pub watchers: usize,
    /// Keys the writer writes (the `done` marker comes on top).
    pub writes: u64,
    /// Pause between two writes (zero: as fast as the server acknowledges).
    pub write_interval: Duration,
    /// Everything stops at this limit; watchers still waiting then count as timed out.
    pub time_limit: Duration,
    /// Deadline for one PUT or setup request.
    pub request_timeout: Duration,
    /// The directory is created under this prefix.
    pub key_prefix: String,
}

/// The fan-out a side-by-side run gives every server it measures.
#[derive(Debug, Clone, Copy)]
pub struct FanOutPlan {
    pub watchers: usize,
    /// Keys the writer writes.
    pub writes: u64,
    /// How long one fan-out may take at most.
    pub time_limit: Duration,
}

impl FanOutPlan {
    /// This plan against `endpoints`, the writer writing as fast as it is acknowledged.
    pub fn settings(
        &self,
        endpoints: Vec<String>,
        request_timeout: Duration,
        key_prefix: String,
    ) -> FanOutSettings {
        FanOutSettings {
            endpoints,
            watchers: self.watchers,
            writes: self.writes,
            write_interval: Duration::ZERO,
            time_limit: self.time_limit,
            request_timeout,
            key_prefix,
        }
    }
}

/// What one fan-out run measured.
#[derive(Debug, Clone)]
pub struct FanOutResult {
    pub watchers: usize,
    /// PUTs acknowledged by the server (events every watcher should see).
    pub writes_acknowledged: u64,
    /// PUTs that failed.
    pub writes_failed: u64,
    /// Events seen that were expected, counted once per watcher (the rate's numerator).
    pub delivered: u64,
    /// Expected (watcher, index) pairs never seen although the watcher saw a later event: the
    /// server skipped them.
    pub missed: u64,
    /// Expected (watcher, index) pairs not seen because the time limit stopped the watcher
    /// before it got there (a slow server, not a lost event).
    pub undelivered: u64,
    /// Events seen again by the same watcher.
    pub duplicated: u64,
    /// Events seen whose index no acknowledged write returned.
    pub unexpected: u64,
    /// "History cleared" answers (each one means missed events).
    pub history_cleared: u64,
    /// Watch requests that failed otherwise (connection, timeout, bad answer).
    pub watch_errors: u64,
    /// Watchers that had not seen the `done` marker at the time limit.
    pub timed_out_watchers: u64,
    /// Watcher connections accepted but not answered at first, dialled again.
    pub stalled_connections: u64,
    pub first_error: Option<String>,
    /// From the common start until the last watcher stopped.
    pub elapsed: Duration,
    /// Latency of the writer's PUTs.
    pub write_latency: Histogram,
}

impl FanOutResult {
    /// Events delivered per second, across all watchers.
    pub fn delivery_rate_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.delivered as f64 / seconds
        } else {
            0.0
        }
    }

    /// Every watcher saw every acknowledged write exactly once and nothing else.
    pub fn is_exact(&self) -> bool {
        self.missed == 0
            && self.undelivered == 0
            && self.duplicated == 0
            && self.unexpected == 0
            && self.timed_out_watchers == 0
            && self.writes_failed == 0
    }
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct WatcherLog {
    /// Indexes of the events received, in arrival order (the `done` marker excluded).
    seen_indexes: Vec<u64>,
    history_cleared: u64,
    errors: u64,
    first_error: Option<String>,
    saw_done: bool,
    stalled_connections: u64,
}

/// The oldest index in "the requested history has been cleared [start/requested]".
fn history_start_from_cause(cause: &str) -> Option<u64> {
    let inside = cause.rsplit_once('[')?.1;
    inside.split('/').next()?.trim().parse().ok()
}

fn note_error(log: &mut WatcherLog, error: String) {
    log.errors += 1;
    if log.first_error.is_none() {
        log.first_error = Some(error);
    }
}

fn run_watcher(
    settings: &FanOutSettings,
    worker: usize,
    dir: &str,
    done_key: &str,
    first_index: u64,
    start_line: &Barrier,
    deadline_holder: &std::sync::OnceLock<Instant>,
) -> WatcherLog {
    let mut log = WatcherLog::default();
    let endpoint = &settings.endpoints[worker % settings.endpoints.len()];
    let session = Session::new(endpoint, settings.request_timeout).and_then(|mut session| {
        log.stalled_connections = session.connect_with_retries()?;
        Ok(session)
    });
    start_line.wait();
    let mut session = match session {
        Ok(session) => session,
        Err(error) => {
            note_error(&mut log, error.to_string());
            return log;
        }
    };
    let deadline = *deadline_holder.wait();
    let mut wait_index = first_index;
    // Give up after a run of consecutive failures rather than spin on a dead server.
    let mut consecutive_errors = 0;
    while Instant::now() < deadline && consecutive_errors < 10 {
        let response = match session.watch_once(dir, wait_index, deadline) {
            Ok(response) => response,
            Err(error) => {
                if Instant::now() < deadline {
                    note_error(&mut log, error.to_string());
                    consecutive_errors += 1;
                }
                continue;
            }
        };
        match decode_keys_response(&response) {
            Ok(decoded) => {
                consecutive_errors = 0;
                let Some(node) = decoded.node else {
                    note_error(&mut log, format!("{endpoint}: watch event without a node"));
                    consecutive_errors += 1;
                    continue;
                };
                if node.key == done_key {
                    log.saw_done = true;
                    return log;
                }
                log.seen_indexes.push(node.modified_index);
                wait_index = node.modified_index + 1;
            }
            Err(ClientError::V2(error)) if error.code == EVENT_INDEX_CLEARED => {
                log.history_cleared += 1;
                match history_start_from_cause(&error.cause) {
                    Some(start) if start > wait_index => wait_index = start,
                    _ if error.index > 0 => wait_index = error.index + 1,
                    _ => {
                        note_error(
                            &mut log,
                            format!("{endpoint}: history cleared, cannot re-arm: {error:?}"),
                        );
                        return log;
                    }
                }
            }
            Err(error) => {
                note_error(&mut log, format!("{endpoint}: watch answer: {error}"));
                consecutive_errors += 1;
            }
        }
    }
    log
}

/// The writer: N PUTs under `dir`, then the `done` marker. Returns the acknowledged indexes.
fn run_writer(
    settings: &FanOutSettings,
    dir: &str,
    done_key: &str,
    start_line: &Barrier,
    deadline_holder: &std::sync::OnceLock<Instant>,
) -> (Vec<u64>, u64, Histogram, Option<String>) {
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut latency = Histogram::new();
    let mut first_error = None;
    let session =
        Session::new(&settings.endpoints[0], settings.request_timeout).and_then(|mut session| {
            session.connect_with_retries()?;
            Ok(session)
        });
    start_line.wait();
    let mut session = match session {
        Ok(session) => session,
        Err(error) => return (acknowledged, 1, latency, Some(error.to_string())),
    };
    let deadline = *deadline_holder.wait();
    for sequence in 0..settings.writes {
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        let answer = session
            .put(&format!("{dir}/k{sequence}"))
            .and_then(|response| session.modified_index(&response));
        match answer {
            Ok(index) => {
                latency.record(started.elapsed());
                acknowledged.push(index);
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert_with(|| error.to_string());
            }
        }
        if !settings.write_interval.is_zero() {
            std::thread::sleep(settings.write_interval);
        }
    }
    if let Err(error) = session.put(done_key) {
        failed += 1;
        first_error.get_or_insert_with(|| error.to_string());
    }
    (acknowledged, failed, latency, first_error)
}

/// Runs one fan-out; `run_number` keeps each run's directory apart.
pub fn run_fan_out(
    settings: &FanOutSettings,
    run_number: u64,
) -> Result<FanOutResult, RequestError> {
    assert!(
        !settings.endpoints.is_empty(),
        "the fan-out needs at least one endpoint"
    );
    let dir = format!("{}/watch{run_number}", settings.key_prefix);
    let done_key = format!("{dir}/done");
    let mut setup = Session::new(&settings.endpoints[0], settings.request_timeout)?;
    let dir_index = setup.make_dir(&dir)?;
    let start_line = Barrier::new(settings.watchers + 2);
    let deadline_holder = std::sync::OnceLock::new();
    let (logs, writer, elapsed) = std::thread::scope(|scope| {
        let watchers: Vec<_> = (0..settings.watchers)
            .map(|worker| {
                let (dir, done_key) = (&dir, &done_key);
                let (start_line, deadline_holder) = (&start_line, &deadline_holder);
                scope.spawn(move || {
                    run_watcher(
                        settings,
                        worker,
                        dir,
                        done_key,
                        dir_index + 1,
                        start_line,
                        deadline_holder,
                    )
                })
            })
            .collect();
        let writer = {
            let (dir, done_key) = (&dir, &done_key);
            let (start_line, deadline_holder) = (&start_line, &deadline_holder);
            scope.spawn(move || run_writer(settings, dir, done_key, start_line, deadline_holder))
        };
        start_line.wait();
        let start = Instant::now();
        deadline_holder
            .set(start + settings.time_limit)
            .expect("the fan-out deadline is set once");
        let logs: Vec<WatcherLog> = watchers
            .into_iter()
            .map(|h| h.join().expect("a watcher panicked"))
            .collect();
        let elapsed = start.elapsed();
        let writer = writer.join().expect("the writer panicked");
        (logs, writer, elapsed)
    });
    let (acknowledged, writes_failed, write_latency, writer_error) = writer;
    let mut expected = acknowledged.clone();
    expected.sort_unstable();
    let mut result = FanOutResult {
        watchers: settings.watchers,
        writes_acknowledged: acknowledged.len() as u64,
        writes_failed,
        delivered: 0,
        missed: 0,
        undelivered: 0,
        duplicated: 0,
        unexpected: 0,
        history_cleared: 0,
        watch_errors: 0,
        timed_out_watchers: 0,
        stalled_connections: 0,
        first_error: writer_error,
        elapsed,
        write_latency,
    };
    for log in logs {
        let tally = tally_watcher(&expected, &log.seen_indexes, log.saw_done);
        result.delivered += tally.delivered;
        result.missed += tally.missed;
        result.undelivered += tally.undelivered;
        result.duplicated += tally.duplicated;
        result.unexpected += tally.unexpected;
        result.history_cleared += log.history_cleared;
        result.watch_errors += log.errors;
        result.stalled_connections += log.stalled_connections;
        if !log.saw_done {
            result.timed_out_watchers += 1;
        }
        if result.first_error.is_none() {
            result.first_error = log.first_error;
        }
    }
    Ok(result)
}

/// One watcher's comparison with the expected indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatcherTally {
    pub delivered: u64,
    pub missed: u64,
    pub undelivered: u64,
    pub duplicated: u64,
    pub unexpected: u64,
}

/// Compares what a watcher saw with the sorted, distinct `expected` indexes. An expected index
/// not seen is `missed` when the watcher saw a later event (or the `done` marker, `finished`):
/// the server skipped it. Otherwise the watcher simply had not got that far when time ran out,
/// and it counts as `undelivered`.
pub fn tally_watcher(expected: &[u64], seen: &[u64], finished: bool) -> WatcherTally {
    let mut seen = seen.to_vec();
    seen.sort_unstable();
    let mut tally = WatcherTally::default();
    let last_seen = seen.last().copied();
    for index in expected {
        if seen.binary_search(index).is_ok() {
            continue;
        }
        if finished || last_seen.is_some_and(|last| last > *index) {
            tally.missed += 1;
        } else {
            tally.undelivered += 1;
        }
    }
    let mut previous = None;
    for &index in &seen {
        if previous == Some(index) {
            tally.duplicated += 1;
            continue;
        }
        previous = Some(index);
        if expected.binary_search(&index).is_ok() {
            tally.delivered += 1;
        } else {
            tally.unexpected += 1;
        }
    }
    assert_eq!(
        tally.delivered + tally.missed + tally.undelivered,
        expected.len() as u64,
        "every expected index is delivered, missed or undelivered"
    );
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_missed_duplicated_and_unexpected() {
        let expected = [5, 6, 7, 8];
        assert_eq!(
            tally_watcher(&expected, &[5, 6, 7, 8], true),
            WatcherTally {
                delivered: 4,
                ..Default::default()
            }
        );
        assert_eq!(
            tally_watcher(&expected, &[5, 7, 7, 9, 8], true),
            WatcherTally {
                delivered: 3,
                missed: 1,
                duplicated: 1,
                unexpected: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            tally_watcher(&expected, &[], true),
            WatcherTally {
                missed: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_stopped_watcher_counts_what_it_did_not_reach_as_undelivered() {
        let expected = [5, 6, 7, 8];
        assert_eq!(
            tally_watcher(&expected, &[5, 7], false),
            WatcherTally {
                delivered: 2,
                missed: 1,
                undelivered: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            tally_watcher(&expected, &[], false),
            WatcherTally {
                undelivered: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn history_start_is_read_from_etcds_cause() {
        assert_eq!(
            history_start_from_cause("the requested history has been cleared [1017/12]"),
            Some(1017)
        );
        assert_eq!(history_start_from_cause("no brackets"), None);
        assert_eq!(history_start_from_cause("[x/1]"), None);
    }
}
