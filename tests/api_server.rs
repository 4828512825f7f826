//! The client API served in-process: bounds (workers, parked watches, body size), parked and
//! streamed watches, TTL expiry through the Sync ticker, routing rules (OPTIONS, 301, HEAD,
//! CORS), and that malformed requests never take the server down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftkv::node::{Config, Node};

static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Server {
    addr: SocketAddr,
    _node: Arc<Node>,
}

fn start(extra: &[&str]) -> Server {
    let data_dir = std::env::temp_dir().join(format!(
        "raftkv-api-test-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut args: Vec<String> = vec![
        "--listen-client-urls".into(),
        "http://127.0.0.1:0".into(),
        "--listen-peer-urls".into(),
        "http://127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = Config::from_args_and_env(&args, |_| None).expect("test config parses");
    let workers = config.max_client_workers;
    let node = Node::start(config).expect("node starts");
    assert!(
        node.wait_ready(Duration::from_secs(10)),
        "single node never became ready"
    );
    let server = raftkv::api::server::serve(node.clone(), "http://127.0.0.1:0", workers)
        .expect("binding 127.0.0.1:0");
    Server {
        addr: server.local_addr,
        _node: node,
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads one response head from `reader`.
fn read_head(reader: &mut impl BufRead) -> (u16, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .expect("reading a response head");
        assert!(n > 0, "connection closed inside a response head: {head:?}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head)
}

/// Reads one chunk of a chunked body; None at the terminating chunk.
fn read_chunk(reader: &mut impl BufRead) -> Option<String> {
    let mut size_line = String::new();
    reader
        .read_line(&mut size_line)
        .expect("reading a chunk size");
    let size = usize::from_str_radix(size_line.trim(), 16).expect("a hex chunk size");
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data).expect("reading a chunk");
    if size == 0 {
        return None;
    }
    data.truncate(size);
    Some(String::from_utf8(data).expect("utf-8 chunk"))
}

fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut stream = connect(addr);
    stream.write_all(raw.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    let is_head = raw.starts_with("HEAD ");
    let body = if is_head {
        String::new()
    } else if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut body = String::new();
        while let Some(chunk) = read_chunk(&mut reader) {
            body.push_str(&chunk);
        }
        body
    } else {
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        String::from_utf8_lossy(&body).into_owned()
    };
    Reply { status, head, body }
}

fn get(addr: SocketAddr, target: &str) -> Reply {
    request(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

fn put(addr: SocketAddr, target: &str, form: &str) -> Reply {
    request(
        addr,
        &format!(
            "PUT {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

/// Opens a watch and returns the reader after the response head.
fn open_watch(addr: SocketAddr, target: &str) -> (u16, String, BufReader<TcpStream>) {
    let mut stream = connect(addr);
    write!(stream, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    (status, head, reader)
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
