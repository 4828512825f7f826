//! The client API served in-process: bounds (workers, parked watches, body size), parked and
//! streamed watches, TTL expiry through the Sync ticker, routing rules (OPTIONS, 301, HEAD,
//! CORS), and that malformed requests never take the server down.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::*;

/// Regression: test members kept their data dirs (each with a preallocated WAL), so every run
/// of the suite left gigabytes in the temp dir until the disk filled and CI could not link.
#[test]
fn a_dropped_test_member_leaves_no_data_dir() {
    let server = start(&[]);
    let reply = put(server.addr, "/v2/keys/k", "value=v");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let data_dir = server.data_dir.clone();
    assert!(
        data_dir.is_dir(),
        "{data_dir:?} exists while the member runs"
    );
    drop(server);
    assert!(
        !data_dir.exists(),
        "{data_dir:?} is left after the member was dropped"
    );
}

#[test]
fn parked_watches_hold_no_worker_and_all_fire() {
    let server = start(&["--max-client-workers", "2"]);
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let (status, head, reader) = open_watch(server.addr, "/v2/keys/w/k?wait=true");
        assert_eq!(status, 200);
        assert!(
            head.contains("X-Etcd-Index: 3"),
            "head sent at registration: {head}"
        );
        watchers.push(reader);
    }
    // Two workers, twenty parked watches: a write must still be served.
    let reply = put(server.addr, "/v2/keys/w/k", "value=v1");
    assert_eq!(reply.status, 201, "{}", reply.body);
    for mut reader in watchers {
        let event = read_chunk(&mut reader).expect("one event");
        assert!(
            event.starts_with("{\"action\":\"set\",\"node\":{\"key\":\"/w/k\",\"value\":\"v1\""),
            "{event}"
        );
        assert_eq!(
            read_chunk(&mut reader),
            None,
            "one-shot watch ends after its event"
        );
    }
}

#[test]
fn parked_watch_limit_is_a_clear_error() {
    let server = start(&["--max-parked-watches", "3"]);
    let _held: Vec<_> = (0..3)
        .map(|_| open_watch(server.addr, "/v2/keys/a?wait=true"))
        .collect();
    let reply = get(server.addr, "/v2/keys/a?wait=true");
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.contains("\"errorCode\":300")
            && reply.body.contains("too many parked watches (limit 3)"),
        "{}",
        reply.body
    );
}

#[test]
fn stream_watch_delivers_every_event_as_its_own_chunk() {
    let server = start(&[]);
    let (status, _, mut reader) = open_watch(
        server.addr,
        "/v2/keys/s?wait=true&recursive=true&stream=true",
    );
    assert_eq!(status, 200);
    for n in 0..5 {
        assert_eq!(
            put(server.addr, &format!("/v2/keys/s/k{n}"), "value=x").status,
            201
        );
    }
    for n in 0..5 {
        let event = read_chunk(&mut reader).expect("a streamed event");
        assert!(
            event.contains(&format!("\"key\":\"/s/k{n}\"")),
            "event {n}: {event}"
        );
        assert!(event.ends_with("}\n"));
    }
}

#[test]
fn ttl_keys_expire_through_the_sync_ticker_and_watchers_see_it() {
    let server = start(&[]);
    assert_eq!(
        put(server.addr, "/v2/keys/ttl/k", "value=v&ttl=1").status,
        201
    );
    let (_, _, mut reader) = open_watch(server.addr, "/v2/keys/ttl/k?wait=true");
    let event = read_chunk(&mut reader).expect("an expire event");
    assert!(
        event.starts_with("{\"action\":\"expire\",\"node\":{\"key\":\"/ttl/k\""),
        "{event}"
    );
    let reply = get(server.addr, "/v2/keys/ttl/k");
    assert_eq!(reply.status, 404, "{}", reply.body);
}

#[test]
fn oversized_form_bodies_are_refused_with_210() {
    let server = start(&["--max-request-bytes", "1000"]);
    let value = "v".repeat(2000);
    let reply = put(server.addr, "/v2/keys/big", &format!("value={value}"));
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("\"errorCode\":210") && reply.body.contains("http: POST too large"),
        "{}",
        reply.body
    );
    assert_eq!(put(server.addr, "/v2/keys/small", "value=ok").status, 201);
}

#[test]
fn options_redirects_head_and_cors_follow_etcd() {
    let server = start(&[]);
    let reply = request(
        server.addr,
        "OPTIONS /anything HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    assert_eq!(
        reply.header("Access-Control-Allow-Origin").as_deref(),
        Some("*")
    );

    let reply = get(server.addr, "/v2/keys//a/./b?x=1");
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("Location").as_deref(),
        Some("/v2/keys/a/b?x=1")
    );

    put(server.addr, "/v2/keys/h", "value=hello");
    let full = get(server.addr, "/v2/keys/h");
    let head = request(
        server.addr,
        "HEAD /v2/keys/h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(full.body.len().to_string())
    );

    let restricted = start(&["--cors", "http://good.example:80"]);
    let allowed = request(restricted.addr, "GET /version HTTP/1.1\r\nHost: t\r\nOrigin: http://good.example:80\r\nConnection: close\r\n\r\n");
    assert_eq!(
        allowed.header("Access-Control-Allow-Origin").as_deref(),
        Some("http://good.example:80")
    );
    let denied = request(restricted.addr, "GET /version HTTP/1.1\r\nHost: t\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(denied.header("Access-Control-Allow-Origin"), None);
}

#[test]
fn quorum_reads_see_every_acknowledged_write_and_consume_no_etcd_index() {
    let server = start(&[]);
    let raft = |r: &Reply| r.header("X-Raft-Index").unwrap().parse::<u64>().unwrap();
    let mut last_raft_index = 0;
    for n in 0..20 {
        assert_eq!(
            put(server.addr, "/v2/keys/q", &format!("value=v{n}")).status,
            if n == 0 { 201 } else { 200 }
        );
        let read = get(server.addr, "/v2/keys/q?quorum=true");
        assert!(
            read.body.contains(&format!("\"value\":\"v{n}\"")),
            "stale quorum read: {}",
            read.body
        );
        assert!(raft(&read) >= last_raft_index, "raft index went back");
        last_raft_index = raft(&read);
        let again = get(server.addr, "/v2/keys/q?quorum=true");
        assert_eq!(
            read.header("X-Etcd-Index"),
            again.header("X-Etcd-Index"),
            "a quorum read consumed an etcd index"
        );
    }
}

#[test]
fn malformed_requests_never_take_the_server_down() {
    let server = start(&["--max-client-workers", "2"]);
    let garbage: [&[u8]; 6] = [
        b"\x00\x01\x02\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /v2/keys/%zz HTTP/1.1\r\nHost: t\r\n\r\n",
        b"PUT /v2/keys/x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"BREW /v2/keys/x HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v2/keys/\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for bytes in garbage {
        let mut stream = connect(server.addr);
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(server.addr, "/version");
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "server unhealthy after garbage");
    }
    let reply = request(
        server.addr,
        "BREW /v2/keys/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.header("Allow").as_deref(),
        Some("HEAD,GET,PUT,POST,DELETE")
    );
}

/// Regression (diff scenario stats-store-watchers-count-freed-on-close): a parked watch whose
/// client went away stayed registered until an event fired, so abandoned watches piled up
/// toward the limit.
#[test]
fn a_parked_watch_whose_client_disconnects_is_unregistered() {
    let server = start(&[]);
    let watchers = |server: &Server| -> u64 {
        let stats = get(server.addr, "/v2/stats/store");
        let json: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
        json["watchers"].as_u64().unwrap()
    };
    assert_eq!(watchers(&server), 0);
    let (status, _, reader) = open_watch(server.addr, "/v2/keys/gone?wait=true");
    assert_eq!(status, 200);
    let (_, _, stream_reader) = open_watch(server.addr, "/v2/keys/gone2?wait=true&stream=true");
    assert_eq!(watchers(&server), 2);
    drop(reader);
    drop(stream_reader);
    let deadline = Instant::now() + Duration::from_secs(5);
    while watchers(&server) != 0 {
        assert!(
            Instant::now() < deadline,
            "watchers of closed connections were never unregistered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The WAL sync count from `/metrics` (`etcd_disk_wal_fsync_duration_seconds_count`).
fn wal_sync_count(addr: std::net::SocketAddr) -> u64 {
    let reply = get(addr, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix("etcd_disk_wal_fsync_duration_seconds_count "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no WAL sync count in /metrics:\n{}", reply.body))
}

/// Regression: a write used to hold its worker until it was applied, so with one worker every
/// write was proposed, synced and answered alone (one WAL sync per write). A write now waits
/// for Raft on no worker: concurrent writes through a single worker share syncs.
#[test]
fn concurrent_writes_through_one_worker_share_wal_syncs() {
    const WRITERS: usize = 24;
    const WRITES_EACH: usize = 25;
    let server = start(&["--max-client-workers", "1"]);
    let syncs_before = wal_sync_count(server.addr);
    let addr = server.addr;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            std::thread::spawn(move || {
                for n in 0..WRITES_EACH {
                    let reply = put(addr, &format!("/v2/keys/batch/{writer}-{n}"), "value=v");
                    assert_eq!(reply.status, 201, "{}", reply.body);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let writes = (WRITERS * WRITES_EACH) as u64;
    let syncs = wal_sync_count(server.addr) - syncs_before;
    let listing = get(server.addr, "/v2/keys/batch");
    assert_eq!(
        listing.body.matches("\"key\":\"/batch/").count(),
        WRITERS * WRITES_EACH,
        "every write is in the store"
    );
    assert!(
        syncs * 2 <= writes,
        "{writes} concurrent writes through one worker took {syncs} WAL syncs: writes are not \
         batched (is a worker waiting for each write to apply?)"
    );
}

/// A request pipelined behind a parked watch on the same connection runs only after the watch
/// has answered, as Go's server runs a connection's requests one after another: its write is
/// applied after the event that ended the watch, and its response follows the watch's.
#[test]
fn a_request_pipelined_behind_a_watch_runs_after_the_watch_ends() {
    let server = start(&["--max-client-workers", "2"]);
    let mut stream = connect(server.addr);
    let form = "value=after";
    let pipelined = format!(
        "GET /v2/keys/pw/k?wait=true HTTP/1.1\r\nHost: t\r\n\r\n\
         PUT /v2/keys/pw/other HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(pipelined.as_bytes()).unwrap();
    // Let both requests reach the server before the watched key is written.
    std::thread::sleep(Duration::from_millis(300));
    let fired = put(server.addr, "/v2/keys/pw/k", "value=fire");
    assert_eq!(fired.status, 201, "{}", fired.body);
    let fired_index: u64 = fired.header("X-Etcd-Index").unwrap().parse().unwrap();
    let mut reader = std::io::BufReader::new(stream);
    read_watch_fired_with(&mut reader, "fire");
    let (status, head) = read_head(&mut reader);
    assert_eq!(status, 201, "{head}");
    let index = header_number(&head, "X-Etcd-Index");
    assert!(
        index > fired_index,
        "the pipelined PUT was applied at {index}, before the write that ended the watch \
         ({fired_index})"
    );
}

/// Regression: an entry larger than a WAL segment could hold entered the Raft log, failed to
/// persist, and stopped every later write. It is now refused before it enters the log.
#[test]
fn a_write_too_large_for_the_wal_is_refused_and_later_writes_go_on() {
    let server = start(&["--wal-segment-bytes", "65536"]);
    let big = format!("value={}", "v".repeat(100_000));
    let refused = put(server.addr, "/v2/keys/too/big", &big);
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert!(
        refused.body.contains("\"errorCode\":300")
            && refused.body.contains("exceeds the largest WAL entry"),
        "{}",
        refused.body
    );
    let fine = put(server.addr, "/v2/keys/too/small", "value=ok");
    assert_eq!(fine.status, 201, "writes go on: {}", fine.body);
    let missing = get(server.addr, "/v2/keys/too/big");
    assert_eq!(missing.status, 404, "{}", missing.body);
}

/// Reads a long poll's response: its head, one event whose value is `value`, and its end.
fn read_watch_fired_with(reader: &mut impl std::io::BufRead, value: &str) {
    let (status, _) = read_head(reader);
    assert_eq!(status, 200);
    let event = read_chunk(reader).expect("the watch's event");
    assert!(event.contains(&format!("\"value\":\"{value}\"")), "{event}");
    assert_eq!(read_chunk(reader), None);
}

/// Sends a long poll on `key` followed by `count` pipelined GETs on one connection.
fn pipeline_behind_a_watch(
    addr: std::net::SocketAddr,
    key: &str,
    count: usize,
) -> std::net::TcpStream {
    let mut stream = connect(addr);
    let mut pipelined = format!("GET /v2/keys{key}?wait=true HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..count {
        pipelined.push_str("GET /v2/keys/ HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    stream.write_all(pipelined.as_bytes()).unwrap();
    // Let every request reach the server.
    std::thread::sleep(Duration::from_millis(300));
    stream
}

/// Regression: a request waiting for its connection's turn held its worker, so one client
/// that pipelined as many requests as there are workers behind a long poll stopped every
/// other client until the poll ended.
#[test]
fn requests_waiting_behind_a_watch_hold_no_worker() {
    let server = start(&["--max-client-workers", "2"]);
    let stream = pipeline_behind_a_watch(server.addr, "/hold/k", 10);
    let started = Instant::now();
    let other = get(server.addr, "/version");
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "another client waited {:?}",
        started.elapsed()
    );
    let fired = put(server.addr, "/v2/keys/hold/k", "value=fire");
    assert_eq!(fired.status, 201, "{}", fired.body);
    let mut reader = std::io::BufReader::new(stream);
    read_watch_fired_with(&mut reader, "fire");
    for n in 0..10 {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "pipelined request {n}: {}", reply.head);
    }
}

/// A connection that pipelines more requests behind an unanswered one than the server keeps
/// waiting is ended (tiny_http reads ahead without a limit); other clients are not affected.
#[test]
fn a_connection_pipelining_too_many_requests_behind_a_watch_is_ended() {
    let server = start(&["--max-client-workers", "2"]);
    let stream = pipeline_behind_a_watch(server.addr, "/many/k", 200);
    let mut reader = std::io::BufReader::new(stream);
    let (status, _) = read_head(&mut reader);
    assert_eq!(status, 200, "the watch's head is written at once");
    let mut rest = Vec::new();
    let ended = match reader.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "the connection was not ended");
    let other = get(server.addr, "/version");
    assert_eq!(other.status, 200, "{}", other.body);
    let fired = put(server.addr, "/v2/keys/many/k", "value=fire");
    assert_eq!(fired.status, 201, "{}", fired.body);
}

/// Regression: tiny_http drops a request whose body was not read to its end by reading the
/// rest into one buffer of that size, so a request declaring a 100 GB body (of any method)
/// made the server allocate 100 GB and abort. Such a request is now answered etcd's 210 and
/// its connection reset, and the server goes on.
#[test]
fn a_request_declaring_a_huge_body_is_refused_and_the_server_goes_on() {
    let server = start(&[]);
    for method in ["PUT", "GET"] {
        let mut stream = connect(server.addr);
        let head = format!(
            "{method} /v2/keys/huge HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000000\r\n\r\nvalue=abc"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let (status, head) = read_head(&mut reader);
        assert_eq!(status, 400, "{method}: {head}");
        let mut body = String::new();
        let _ = reader.read_to_string(&mut body);
        assert!(body.contains("\"errorCode\":210"), "{method}: {body}");
    }
    let after = put(server.addr, "/v2/keys/huge/after", "value=ok");
    assert_eq!(after.status, 201, "the server goes on: {}", after.body);
}

/// Starts a PUT of `value_bytes` bytes of value to `key` whose body is sent only up to its
/// first `sent_bytes` bytes; `framing` is "length" (Content-Length), "chunked", or
/// "continue" (Content-Length behind `Expect: 100-continue`). Returns the stream and the rest
/// of the body, to be sent later.
fn start_slow_upload(
    addr: std::net::SocketAddr,
    key: &str,
    value_bytes: usize,
    framing: &str,
) -> (std::net::TcpStream, Vec<u8>) {
    let form = format!("value={}", "v".repeat(value_bytes)).into_bytes();
    let (first, rest) = form.split_at(10);
    let mut stream = connect(addr);
    let form_type = "Content-Type: application/x-www-form-urlencoded";
    let head = format!("PUT /v2/keys/{key} HTTP/1.1\r\nHost: t\r\n{form_type}\r\n");
    match framing {
        "chunked" => {
            write!(stream, "{head}Transfer-Encoding: chunked\r\n\r\n").unwrap();
            write!(stream, "{:x}\r\n", first.len()).unwrap();
            stream.write_all(first).unwrap();
            stream.write_all(b"\r\n").unwrap();
            let mut rest_chunked = format!("{:x}\r\n", rest.len()).into_bytes();
            rest_chunked.extend_from_slice(rest);
            rest_chunked.extend_from_slice(b"\r\n0\r\n\r\n");
            (stream, rest_chunked)
        }
        "continue" => {
            let length = form.len();
            write!(
                stream,
                "{head}Expect: 100-continue\r\nContent-Length: {length}\r\n\r\n"
            )
            .unwrap();
            (stream, form)
        }
        _ => {
            write!(stream, "{head}Content-Length: {}\r\n\r\n", form.len()).unwrap();
            stream.write_all(first).unwrap();
            (stream, rest.to_vec())
        }
    }
}

/// Regression: a request whose body tiny_http had not read with its head (over 1 KiB,
/// chunked, or behind `Expect: 100-continue`) was read on the worker that took it, so as many
/// slow uploads as there are workers stopped every other client. For each framing, three
/// stalled uploads on a two-worker server: other clients are answered, and each upload
/// completes once its client sends the rest.
#[test]
fn slow_uploads_hold_no_worker() {
    for framing in ["length", "chunked", "continue"] {
        let server = start(&["--max-client-workers", "2"]);
        let uploads: Vec<(String, std::net::TcpStream, Vec<u8>)> = (0..3)
            .map(|n| {
                let key = format!("slow/{n}");
                let (stream, rest) = start_slow_upload(server.addr, &key, 4000, framing);
                (key, stream, rest)
            })
            .collect();
        // Let the server take every stalled upload before asking.
        std::thread::sleep(Duration::from_millis(300));
        let other = get(server.addr, "/version");
        assert_eq!(other.status, 200, "{framing}: {}", other.body);
        let write = put(server.addr, "/v2/keys/slow/other", "value=quick");
        assert_eq!(write.status, 201, "{framing}: {}", write.body);
        for (key, mut stream, rest) in uploads {
            stream.write_all(&rest).unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut reply = read_reply(&mut reader, false);
            if reply.status == 100 {
                reply = read_reply(&mut reader, false);
            }
            assert_eq!(reply.status, 201, "{framing} {key}: {}", reply.head);
            let stored = get(server.addr, &format!("/v2/keys/{key}"));
            assert!(
                stored.body.contains(&"v".repeat(4000)),
                "{framing} {key}: {}",
                stored.body
            );
        }
    }
}

/// Regression: a stream watcher whose client stopped reading filled its socket, and its
/// delivery thread waited in the write holding the watcher's lock; when the watcher fell 100
/// events behind, the apply thread ended it, waited on that lock, and every later write of the
/// member timed out (after about 110 writes of 200 KB). Ending a watcher now never writes on
/// the thread that ends it.
#[test]
fn a_stream_watcher_that_stops_reading_never_stops_writes() {
    let server = start(&[]);
    let mut stuck = connect(server.addr);
    stuck
        .write_all(b"GET /v2/keys/stuck/k?wait=true&stream=true HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reading = std::io::BufReader::new(connect(server.addr));
    write!(
        reading.get_mut(),
        "GET /v2/keys/stuck/k?wait=true&stream=true HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    .unwrap();
    let (status, _) = read_head(&mut reading);
    assert_eq!(status, 200);
    let value = "v".repeat(100_000);
    // 30 MB of events: far more than the stuck client's socket buffers hold.
    for n in 0..300 {
        let written = put(server.addr, "/v2/keys/stuck/k", &format!("value={value}"));
        assert!(
            matches!(written.status, 200 | 201),
            "write {n}: {} {}",
            written.status,
            written.body
        );
    }
    let last = put(server.addr, "/v2/keys/stuck/last", "value=done");
    assert_eq!(last.status, 201, "{}", last.body);
    // The watcher that reads got events (it may have been ended for falling behind while its
    // delivery thread waited on the stuck one; that is etcd's rule too).
    let first = read_chunk(&mut reading).expect("the reading watcher's first event");
    assert!(first.contains("\"action\":\"set\""), "{}", &first[..80]);
    drop(stuck);
}

/// A response too large for the socket's buffers, to a client that does not read it, holds
/// its worker only until the send timeout (5 s): before it, two such clients on a two-worker
/// server stopped every other client for good.
#[test]
fn responses_to_clients_that_stop_reading_free_their_worker() {
    let server = start(&["--max-client-workers", "2"]);
    let value = "v".repeat(1_000_000);
    for n in 0..20 {
        let written = put(
            server.addr,
            &format!("/v2/keys/big/{n}"),
            &format!("value={value}"),
        );
        assert_eq!(written.status, 201, "{}", written.body);
    }
    let stalled: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream
                .write_all(b"GET /v2/keys/big?recursive=true HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Both workers are now writing 20 MB that nobody reads.
    std::thread::sleep(Duration::from_millis(500));
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    assert_eq!(status, 200, "{head}");
    drop(stalled);
}

/// Regression: a body whose client stopped sending before the body's end was taken as
/// whole, and the part that arrived was written (a `Content-Length` body over 1 KiB; a
/// chunked body cut inside a chunk). etcd answers error 210 with Go's cause and writes
/// nothing; so does raftkv now.
#[test]
fn a_body_cut_short_is_refused_and_nothing_is_written() {
    let server = start(&[]);
    let long_value = format!("value={}", "a".repeat(1494));
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "declared",
            raw_form_put(
                "cut/declared",
                "Content-Length: 2000\r\n",
                long_value.as_bytes(),
            ),
        ),
        (
            "in-chunk",
            raw_form_put(
                "cut/in-chunk",
                "Transfer-Encoding: chunked\r\n",
                b"14\r\nvalue=abcdefghij",
            ),
        ),
        (
            "in-size-line",
            raw_form_put(
                "cut/in-size-line",
                "Transfer-Encoding: chunked\r\n",
                b"6\r\nvalue=\r\n1",
            ),
        ),
    ];
    for (name, raw) in cases {
        let answer = send_then_stop_sending(server.addr, &raw);
        assert!(
            answer.starts_with("HTTP/1.1 400")
                && answer.contains(
                    "{\"errorCode\":210,\"message\":\"Invalid POST form\",\"cause\":\"unexpected EOF\""
                ),
            "{name}: {answer}"
        );
        let stored = get(server.addr, &format!("/v2/keys/cut/{name}"));
        assert_eq!(
            stored.status, 404,
            "{name}: nothing written: {}",
            stored.body
        );
    }
    // Whole bodies of both framings still go through.
    let whole = send_then_stop_sending(
        server.addr,
        &raw_form_put("cut/whole", "Content-Length: 9\r\n", b"value=abc"),
    );
    assert!(whole.starts_with("HTTP/1.1 201"), "{whole}");
    let chunked = put_chunked(server.addr, "cut/chunked", b"value=xyz");
    assert_eq!(chunked.status, 201, "{}", chunked.body);
}

/// A PUT in two chunks on a connection kept open.
fn put_chunked(addr: std::net::SocketAddr, key: &str, form: &[u8]) -> Reply {
    let (first, second) = form.split_at(form.len() / 2);
    let mut body = format!("{:x}\r\n", first.len()).into_bytes();
    body.extend_from_slice(first);
    body.extend_from_slice(format!("\r\n{:x}\r\n", second.len()).as_bytes());
    body.extend_from_slice(second);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let raw = raw_form_put(
        key,
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
        &body,
    );
    request(addr, &String::from_utf8(raw).unwrap())
}

/// Regression: `curl --http2` on a plain URL asks to upgrade to h2c (`Connection: Upgrade,
/// HTTP2-Settings`); tiny_http then hands the raw connection over as the body, so a PUT's
/// body was read until the client gave up, and the write happened after the client had seen
/// a timeout. Go ignores the upgrade; raftkv now frames such a body by its `Content-Length`
/// or its chunks, and still refuses one cut short.
#[test]
fn a_put_asking_for_h2c_is_answered_at_once() {
    let server = start(&[]);
    let upgrade = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n";
    let mut stream = connect(server.addr);
    stream
        .write_all(&raw_form_put(
            "h2c/length",
            &format!("{upgrade}Content-Length: 9\r\n"),
            b"value=bar",
        ))
        .unwrap();
    // The connection stays open: the answer must not wait for its end.
    let mut reader = std::io::BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    assert_eq!(status, 201, "{head}");
    let chunked = raw_form_put(
        "h2c/chunked",
        &format!("{upgrade}Transfer-Encoding: chunked\r\n"),
        b"6\r\nvalue=\r\n3\r\nbaz\r\n0\r\n\r\n",
    );
    let mut stream = connect(server.addr);
    stream.write_all(&chunked).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    assert_eq!(status, 201, "{head}");
    for (key, value) in [("h2c/length", "bar"), ("h2c/chunked", "baz")] {
        let stored = get(server.addr, &format!("/v2/keys/{key}"));
        assert!(
            stored.body.contains(&format!("\"value\":\"{value}\"")),
            "{key}: {}",
            stored.body
        );
    }
    let cut = send_then_stop_sending(
        server.addr,
        &raw_form_put(
            "h2c/cut",
            &format!("{upgrade}Transfer-Encoding: chunked\r\n"),
            b"6\r\nvalue=\r\n3\r\nba",
        ),
    );
    assert!(cut.contains("\"cause\":\"unexpected EOF\""), "{cut}");
    assert_eq!(get(server.addr, "/v2/keys/h2c/cut").status, 404);
}
