//! In-process servers and raw HTTP helpers shared by the API tests: a node started on
//! 127.0.0.1 port 0 with a fresh data dir, and a minimal HTTP/1.1 exchange over `TcpStream`
//! that shows exactly what the server wrote (heads, chunks).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use raftkv::node::{Config, Node};

static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An in-process member and its client listener. Dropping it stops the member's Raft loop
/// and removes its data dir: an API test binary starts dozens of members, and each one's
/// preallocated WAL would otherwise stay in the temp dir for good.
pub struct Server {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    /// The member's data dir, under the system's temp dir; removed on drop.
    pub data_dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.node.shutdown();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn start(extra: &[&str]) -> Server {
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
        node,
        data_dir,
    }
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads one response head from `reader`.
pub fn read_head(reader: &mut impl BufRead) -> (u16, String) {
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

/// The number in header `name` of a response head.
pub fn header_number(head: &str, name: &str) -> u64 {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number in {name}: {head}"))
}

/// Reads one chunk of a chunked body; None at the terminating chunk.
pub fn read_chunk(reader: &mut impl BufRead) -> Option<String> {
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

/// Sends `raw` on a new connection and reads one response.
pub fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut stream = connect(addr);
    stream.write_all(raw.as_bytes()).unwrap();
    read_reply(&mut BufReader::new(stream), raw.starts_with("HEAD "))
}

/// Reads one response (its body framed by chunks or by `Content-Length`; none when it answers
/// a HEAD, `to_head`).
pub fn read_reply(reader: &mut impl BufRead, to_head: bool) -> Reply {
    let (status, head) = read_head(reader);
    let body = if to_head {
        String::new()
    } else if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut body = String::new();
        while let Some(chunk) = read_chunk(reader) {
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

pub fn get(addr: SocketAddr, target: &str) -> Reply {
    request(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

pub fn put(addr: SocketAddr, target: &str, form: &str) -> Reply {
    request(
        addr,
        &format!(
            "PUT {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

/// Opens a watch and returns the reader after the response head.
pub fn open_watch(addr: SocketAddr, target: &str) -> (u16, String, BufReader<TcpStream>) {
    let mut stream = connect(addr);
    write!(stream, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let (status, head) = read_head(&mut reader);
    (status, head, reader)
}

/// Sends `raw` on a new connection, shuts the sending side (as a client that dies mid-upload
/// leaves it), and returns all that comes back.
pub fn send_then_stop_sending(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(raw).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The raw PUT of `key` with the given extra header lines (each ending in CRLF), then `body`.
pub fn raw_form_put(key: &str, header_lines: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "PUT /v2/keys/{key} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n{header_lines}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}
