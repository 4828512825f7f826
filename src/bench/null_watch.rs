//! A null watch server: the least work a tiny_http server can do and still pass the watch
//! fan-out of [`crate::bench::watch`] exactly (every watcher sees every write once).
//!
//! It keeps no store, no Raft log and no WAL: a PUT takes the next index, remembers the event's
//! rendered JSON in a ring of the last [`HISTORY_EVENTS`] events, answers, and then writes the
//! event to every parked watcher itself (no hand-off to another thread). A watch whose
//! `waitIndex` is in the ring is answered from it in one write; a later one writes its response
//! head at once, as etcd does (etcd flushes the head of a long poll before any event), and is
//! parked until a PUT reaches its index. Any other request gets a fixed 200.
//!
//! What it does per delivered event is therefore what any etcd-compatible server on tiny_http
//! must do at least: parse the re-arm request, write a response head, write the event. Its
//! delivery rate divided by etcd's is the highest fan-out ratio reachable with tiny_http here.
//!
//! [`start_null_watch_durable`] adds what the design card's write flow adds and nothing else:
//! the worker hands each PUT over a channel to one applying thread, which takes what has
//! queued up as a batch, syncs it to a pre-written file (the cheapest sync on this disk),
//! and then, for each PUT in order, records the event, answers the PUT and writes the event
//! to the watchers it fires. That is the least a server can do whose writes are durable
//! before they are seen and whose watches are answered by the thread that applies.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::bench::floor::{start_tiny_http_workers, NullServer};
use crate::bench::null_cluster::RingFile;

/// A PUT on its way to the applying thread: the request, its key, and whether it makes a
/// directory.
type Proposal = (tiny_http::Request, String, bool);

/// PUTs taken into one synced batch at most.
const MAX_BATCH_PUTS: usize = 4096;

/// Events kept for watchers that re-arm behind the writes (etcd keeps 1000).
pub const HISTORY_EVENTS: usize = 1000;

/// Request bodies are read up to this many bytes (the rest is left unread).
const MAX_BODY_BYTES: u64 = 1 << 20;

/// A watch waiting for its index.
struct Parked {
    wait_index: u64,
    /// Its response head has been written.
    writer: Box<dyn Write + Send>,
}

#[derive(Default)]
struct Events {
    /// The index of the last event (0: none yet).
    index: u64,
    /// Invariant: the last `HISTORY_EVENTS` events, oldest first, indexes consecutive and the
    /// last one equal to `index`.
    history: VecDeque<(u64, Arc<Vec<u8>>)>,
    /// Invariant: every `wait_index` is above `index`.
    parked: Vec<Parked>,
}

impl Events {
    /// The first remembered event at or after `wait_index`; None when it left the ring or has
    /// not happened.
    fn at_or_after(&self, wait_index: u64) -> Option<Arc<Vec<u8>>> {
        let (oldest, _) = self.history.front()?;
        let position = wait_index.saturating_sub(*oldest) as usize;
        (wait_index >= *oldest)
            .then(|| self.history.get(position).map(|(_, body)| body.clone()))
            .flatten()
    }
}

/// Starts the server on a free port of 127.0.0.1 with `workers` threads; it stops when the
/// returned server is dropped.
pub fn start_null_watch(workers: usize) -> std::io::Result<NullServer> {
    let events = Arc::new(Mutex::new(Events::default()));
    start_tiny_http_workers(workers, "null-watch", move |request| {
        serve(&events, request, None)
    })
}

/// Like [`start_null_watch`], but each PUT is applied by one thread after its batch was
/// synced to a file under `dir` (see the module doc).
pub fn start_null_watch_durable(
    workers: usize,
    dir: &std::path::Path,
) -> std::io::Result<NullServer> {
    let events = Arc::new(Mutex::new(Events::default()));
    let mut ring = RingFile::create(&dir.join("null-watch-log"))?;
    let (proposals_tx, proposals) = crossbeam_channel::unbounded::<Proposal>();
    let applying = events.clone();
    std::thread::Builder::new()
        .name("null-watch-apply".into())
        .spawn(move || {
            while let Ok(first) = proposals.recv() {
                let mut batch = vec![first];
                batch.extend(proposals.try_iter().take(MAX_BATCH_PUTS - 1));
                let mut log = Vec::new();
                for (_, key, _) in &batch {
                    log.extend_from_slice(key.as_bytes());
                    log.push(b'\n');
                }
                if ring.write_and_sync(&log).is_err() {
                    return;
                }
                for (request, key, dir) in batch {
                    put(&applying, request, &key, dir);
                }
            }
        })?;
    start_tiny_http_workers(workers, "null-watch", move |request| {
        serve(&events, request, Some(&proposals_tx))
    })
}

/// The value of query parameter `name`, undecoded.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The event JSON of a write of `key` at `index` (a directory when `dir`).
fn event_body(key: &str, index: u64, dir: bool) -> Vec<u8> {
    let content = if dir {
        "\"dir\":true".to_string()
    } else {
        "\"value\":\"v\"".to_string()
    };
    format!(
        "{{\"action\":\"set\",\"node\":{{\"key\":\"{key}\",{content},\"modifiedIndex\":{index},\"createdIndex\":{index}}}}}\n"
    )
    .into_bytes()
}

/// Writes `bytes` as the whole of what the request's writer sends, and flushes.
fn send(mut writer: Box<dyn Write + Send>, bytes: &[u8]) {
    let _ = writer.write_all(bytes).and_then(|_| writer.flush());
}

/// One chunk holding `body`, then the end of the chunked response.
fn last_chunk(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn watch_head(index: u64) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Etcd-Index: {index}\r\n\r\n"
    )
    .into_bytes()
}

fn fixed_response(status: u16, body: &[u8], index: u64) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nX-Etcd-Index: {index}\r\nContent-Length: {}\r\n\r\n",
        crate::api::http::status_text(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Answers `request`; a PUT goes to `proposals` when given (the durable flow), else is applied
/// here.
fn serve(
    events: &Mutex<Events>,
    mut request: tiny_http::Request,
    proposals: Option<&crossbeam_channel::Sender<Proposal>>,
) {
    let mut body = Vec::new();
    let _ = request
        .as_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body);
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let key = path.strip_prefix("/v2/keys").unwrap_or(path);
    let method = request.method().clone();
    if method == tiny_http::Method::Put {
        let dir = query_value(query, "dir") == Some("true");
        return match proposals {
            Some(proposals) => {
                let _ = proposals.send((request, key.to_string(), dir));
            }
            None => put(events, request, key, dir),
        };
    }
    let wait = query_value(query, "wait") == Some("true");
    let wait_index = query_value(query, "waitIndex").and_then(|v| v.parse::<u64>().ok());
    match (wait, wait_index) {
        (true, Some(wait_index)) => watch(events, request, wait_index),
        _ => {
            let index = events.lock().index;
            let answer = fixed_response(200, &event_body(key, index.max(1), false), index);
            send(request.into_writer(), &answer);
        }
    }
}

fn put(events: &Mutex<Events>, request: tiny_http::Request, key: &str, dir: bool) {
    let (index, event, fired) = {
        let mut events = events.lock();
        events.index += 1;
        let index = events.index;
        let event = Arc::new(event_body(key, index, dir));
        events.history.push_back((index, event.clone()));
        if events.history.len() > HISTORY_EVENTS {
            events.history.pop_front();
        }
        let (fired, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut events.parked)
            .into_iter()
            .partition(|parked| parked.wait_index <= index);
        events.parked = waiting;
        (index, event, fired)
    };
    send(request.into_writer(), &fixed_response(201, &event, index));
    let chunk = last_chunk(&event);
    for parked in fired {
        send(parked.writer, &chunk);
    }
}

fn watch(events: &Mutex<Events>, request: tiny_http::Request, wait_index: u64) {
    let (index, ready) = {
        let events = events.lock();
        (events.index, events.at_or_after(wait_index))
    };
    if let Some(event) = ready {
        let mut answer = watch_head(index);
        answer.extend_from_slice(&last_chunk(&event));
        return send(request.into_writer(), &answer);
    }
    if wait_index <= index {
        let error = format!(
            "{{\"errorCode\":401,\"message\":\"The event in requested index is outdated and cleared\",\"cause\":\"the requested history has been cleared [{}/{wait_index}]\",\"index\":{index}}}\n",
            index.saturating_sub(HISTORY_EVENTS as u64) + 1
        );
        return send(
            request.into_writer(),
            &fixed_response(400, error.as_bytes(), index),
        );
    }
    // The head goes out before the watch is parked, outside the lock; a PUT that arrived in
    // between is caught when parking.
    let mut writer = request.into_writer();
    if writer
        .write_all(&watch_head(index))
        .and_then(|_| writer.flush())
        .is_err()
    {
        return;
    }
    let arrived = {
        let mut events = events.lock();
        if wait_index <= events.index {
            events.at_or_after(wait_index)
        } else {
            events.parked.push(Parked { wait_index, writer });
            return;
        }
    };
    if let Some(event) = arrived {
        send(writer, &last_chunk(&event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::watch::{run_fan_out, FanOutSettings};
    use std::time::Duration;

    /// Runs a small fan-out against `server`; every watcher must see every write once.
    fn assert_exact_fan_out(server: &NullServer) {
        let settings = FanOutSettings {
            endpoints: vec![server.url()],
            watchers: 8,
            writes: 50,
            write_interval: Duration::ZERO,
            time_limit: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            key_prefix: "/t".into(),
        };
        let result = run_fan_out(&settings, 1).expect("fan-out");
        assert!(result.is_exact(), "{result:?}");
        assert_eq!(result.delivered, 8 * 50, "{result:?}");
    }

    #[test]
    fn the_fan_out_sees_every_event_exactly_once() {
        assert_exact_fan_out(&start_null_watch(4).expect("null watch server"));
    }

    #[test]
    fn the_durable_flow_sees_every_event_exactly_once_and_logs_every_put() {
        let dir = crate::bench::process::TempDir::new("null-watch-test").unwrap();
        assert_exact_fan_out(&start_null_watch_durable(4, &dir.path).expect("null watch server"));
        let log = std::fs::read(dir.path.join("null-watch-log")).unwrap();
        let logged = log
            .split(|b| *b == b'\n')
            .filter(|line| line.starts_with(b"/t"))
            .count();
        assert!(
            logged > 50,
            "every PUT is synced before it is applied: {logged} logged"
        );
    }

    #[test]
    fn history_answers_the_first_event_at_or_after_the_index() {
        let mut events = Events::default();
        assert!(events.at_or_after(1).is_none());
        for index in 1..=HISTORY_EVENTS as u64 + 5 {
            events.index = index;
            events
                .history
                .push_back((index, Arc::new(index.to_string().into_bytes())));
            if events.history.len() > HISTORY_EVENTS {
                events.history.pop_front();
            }
        }
        assert!(events.at_or_after(5).is_none(), "left the ring");
        assert_eq!(events.at_or_after(6).unwrap().as_slice(), b"6");
        assert_eq!(events.at_or_after(1005).unwrap().as_slice(), b"1005");
        assert!(events.at_or_after(1006).is_none(), "not happened yet");
    }
}
