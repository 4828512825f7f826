//! Limits that hold across members: what one member accepts, another with smaller limits must
//! not be broken by.

mod cluster;
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use cluster::Cluster;

const SMALL_SEGMENT: &str = "65536";
const LARGE_SEGMENT: &str = "1048576";

/// Regression: a follower with larger WAL segments than the leader forwarded a proposal whose
/// entry the leader's WAL could not hold; the entry entered the leader's log, failed to
/// persist and stopped every later write. The leader now drops such a proposal.
#[test]
fn a_forwarded_entry_too_large_for_the_leaders_wal_is_dropped_and_writes_go_on() {
    let mut cluster = Cluster::start_with(3, &["--wal-segment-bytes", SMALL_SEGMENT]).unwrap();
    let leader = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // One follower at a time, so the leader keeps its quorum and its leadership.
    for &follower in &followers {
        cluster.members[follower].extra_args =
            vec!["--wal-segment-bytes".to_string(), LARGE_SEGMENT.to_string()];
        cluster.kill9(follower);
        cluster.restart(follower).unwrap();
    }
    let leader_now = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    assert_eq!(
        leader_now,
        leader,
        "the leader (the member with small segments) changed; the test needs it to lead\n{}",
        cluster.logs()
    );
    let via = cluster.members[followers[0]].client_port;
    let big = format!("value={}", "v".repeat(100_000));
    let refused = cluster
        .request(via, "PUT", "/v2/keys/limits/big", Some(big), 15_000)
        .map(|response| response.status);
    assert_ne!(
        refused,
        Ok(201),
        "the leader's WAL cannot hold the entry, so the write cannot succeed"
    );
    for member in [leader, followers[0], followers[1]] {
        let port = cluster.members[member].client_port;
        let key = format!("/v2/keys/limits/small{member}");
        let response = cluster
            .request(port, "PUT", &key, Some("value=ok".into()), 10_000)
            .unwrap_or_else(|e| panic!("write through member {member}: {e}\n{}", cluster.logs()));
        assert_eq!(
            response.status,
            201,
            "writes go on through member {member}: {}\n{}",
            String::from_utf8_lossy(&response.body),
            cluster.logs()
        );
    }
    let port = cluster.members[leader].client_port;
    let missing = cluster
        .request(port, "GET", "/v2/keys/limits/big", None, 5_000)
        .unwrap();
    assert_eq!(missing.status, 404);
    assert!(
        cluster.logs().contains("dropped a proposal forwarded by"),
        "the leader says why\n{}",
        cluster.logs()
    );
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// Regression: tiny_http buffers a request head without a limit, so one endless header line
/// made the server hold every byte of it (a 300 MiB line held 200 MiB). The server now
/// refuses a connection that keeps sending without an answer past the request size limit,
/// with etcd's 431, and its memory stays bounded; a body just under the limit still goes
/// through.
#[test]
fn an_endless_request_head_is_refused_and_memory_stays_bounded() {
    const MAX_REQUEST_BYTES: usize = 1 << 20;
    const SENT_AT_MOST: usize = 96 << 20;
    let mut cluster = Cluster::start_with(1, &["--max-request-bytes", "1048576"]).unwrap();
    let port = cluster.members[0].client_port;
    let pid = cluster.members[0].pid().expect("the member runs");

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /v2/keys/a HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let started = Instant::now();
    let mut sent = 0;
    while sent < SENT_AT_MOST && started.elapsed() < Duration::from_secs(60) {
        match stream.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break,
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        sent < SENT_AT_MOST || answer.starts_with("HTTP/1.1 431"),
        "the server took {sent} bytes of one header line without refusing it: {answer:?}"
    );
    if !answer.is_empty() {
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")
                && answer.ends_with("431 Request Header Fields Too Large"),
            "etcd's refusal: {answer:?}"
        );
    }
    let peak = peak_resident_bytes(pid);
    assert!(
        peak < 48 << 20,
        "the server's peak resident memory reached {} MiB after {} MiB of one header line",
        peak >> 20,
        sent >> 20
    );

    // The server goes on, and a body just under the limit is not taken for an endless head.
    let value = "v".repeat(MAX_REQUEST_BYTES - 64 * 1024);
    let response = cluster
        .request(
            port,
            "PUT",
            "/v2/keys/limits/large",
            Some(format!("value={value}")),
            10_000,
        )
        .unwrap();
    assert_eq!(
        response.status,
        201,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
}
