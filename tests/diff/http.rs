//! A tiny raw HTTP/1.1 client on `std::net` for the differential suite.
//!
//! The caller gives the exact request bytes (so unclean paths, bad escapes, raw non-UTF-8 bytes
//! and malformed request lines reach the server untouched); this module sends them and parses
//! the response: status line, headers in wire order and spelling, and a body framed by
//! `Content-Length`, `Transfer-Encoding: chunked` or connection close. Every read is bounded by
//! a deadline, so a server that never answers (or a watch that never fires) yields a response
//! marked incomplete instead of a hung test.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One parsed (possibly partial) HTTP response.
#[derive(Clone, Debug, Default)]
pub struct RawResponse {
    /// Status code from the status line; 0 when no status line arrived.
    pub status: u16,
    /// Headers as sent: (name in wire spelling, value).
    pub headers: Vec<(String, String)>,
    /// The body with chunked framing removed.
    pub body: Vec<u8>,
    /// True when the body was received completely (false: deadline hit or connection cut).
    pub complete: bool,
    /// Set when something went wrong at the transport level (connect, write, framing).
    pub transport_error: Option<String>,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive), as (wire name, value).
    pub fn header(&self, name: &str) -> Option<(&str, &str)> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A connection with a request already written, waiting to be read.
pub struct PendingResponse {
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    is_head: bool,
    response: RawResponse,
    headers_done: bool,
    write_error: Option<String>,
}

/// Opens a connection to 127.0.0.1:`port` and writes `request` (all of it, bounded by 10 s).
pub fn send(port: u16, request: &[u8], is_head: bool) -> PendingResponse {
    let mut pending = PendingResponse {
        stream: None,
        buffer: Vec::new(),
        is_head,
        response: RawResponse::default(),
        headers_done: false,
        write_error: None,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(mut stream) => {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
            if let Err(e) = stream.write_all(request) {
                // The server may answer and close before reading everything (oversized
                // bodies); the answer can still be read, so only remember the error.
                pending.write_error = Some(format!("write: {e}"));
            }
            pending.stream = Some(stream);
        }
        Err(e) => pending.response.transport_error = Some(format!("connect: {e}")),
    }
    pending
}

impl PendingResponse {
    /// Reads until the status line and headers are in, or `deadline` passes.
    /// Interim `1xx` responses (e.g. `100 Continue`) are skipped.
    pub fn read_headers(&mut self, deadline: Instant) {
        while !self.headers_done {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                self.parse_head(end);
                if (100..200).contains(&self.response.status) && self.response.status != 101 {
                    self.response = RawResponse::default();
                    self.headers_done = false;
                    continue;
                }
                return;
            }
            if !self.fill(deadline) {
                return;
            }
        }
    }

    /// Reads the whole response, or as much as arrives before `deadline`, and closes.
    pub fn finish(mut self, deadline: Instant) -> RawResponse {
        let response = self.finish_one(deadline);
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        response
    }

    /// Reads one response and keeps the connection and any bytes after that response, so
    /// the next pipelined response can be read with the next call. `is_head` is the method
    /// of the request whose response comes next.
    pub fn finish_one(&mut self, deadline: Instant) -> RawResponse {
        self.read_headers(deadline);
        if self.headers_done {
            self.read_body(deadline);
        } else if self.response.transport_error.is_none() {
            self.response.transport_error = Some(match &self.write_error {
                Some(e) => format!("no response head ({e})"),
                None => "no response head before deadline or close".to_string(),
            });
        }
        self.headers_done = false;
        std::mem::take(&mut self.response)
    }

    /// Sets whether the next response read answers a HEAD request.
    pub fn expect_head(&mut self, is_head: bool) {
        self.is_head = is_head;
    }

    /// Reads more bytes into the buffer. False on EOF, error or deadline.
    fn fill(&mut self, deadline: Instant) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        let mut chunk = [0u8; 16384];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let _ = stream.set_read_timeout(Some(wait));
            match stream.read(&mut chunk) {
                Ok(0) => {
                    self.stream = None;
                    return false;
                }
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(e) => {
                    if self.response.transport_error.is_none() && !self.headers_done {
                        self.response.transport_error = Some(format!("read: {e}"));
                    }
                    self.stream = None;
                    return false;
                }
            }
        }
    }

    fn parse_head(&mut self, end: usize) {
        let head = String::from_utf8_lossy(&self.buffer[..end]).to_string();
        self.buffer.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        self.response.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                self.response
                    .headers
                    .push((name.to_string(), value.trim().to_string()));
            }
        }
        self.headers_done = true;
    }

    fn read_body(&mut self, deadline: Instant) {
        let status = self.response.status;
        if self.is_head || status == 204 || status == 304 || (100..200).contains(&status) {
            self.response.complete = true;
            return;
        }
        let chunked = self
            .response
            .header("Transfer-Encoding")
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("chunked"));
        let length = self
            .response
            .header("Content-Length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        if chunked {
            self.read_chunked(deadline);
        } else if let Some(length) = length {
            while self.buffer.len() < length {
                if !self.fill(deadline) {
                    break;
                }
            }
            let take = length.min(self.buffer.len());
            self.response.body = self.buffer.drain(..take).collect();
            self.response.complete = take == length;
        } else {
            while self.fill(deadline) {}
            self.response.body = std::mem::take(&mut self.buffer);
            self.response.complete = self.stream.is_none();
        }
    }

    fn read_chunked(&mut self, deadline: Instant) {
        loop {
            // Chunk size line.
            let line_end = loop {
                if let Some(pos) = find(&self.buffer, b"\r\n") {
                    break Some(pos);
                }
                if !self.fill(deadline) {
                    break None;
                }
            };
            let Some(line_end) = line_end else { return };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).to_string();
            let size_text = size_text.split(';').next().unwrap_or("").trim().to_string();
            let Ok(size) = usize::from_str_radix(&size_text, 16) else {
                self.response.transport_error = Some(format!("bad chunk size line {size_text:?}"));
                return;
            };
            while self.buffer.len() < line_end + 2 + size + 2 {
                if !self.fill(deadline) {
                    // Keep what arrived of a partial chunk out of the body: only whole chunks count.
                    return;
                }
            }
            let data = self.buffer[line_end + 2..line_end + 2 + size].to_vec();
            self.buffer.drain(..line_end + 2 + size + 2);
            if size == 0 {
                self.response.complete = true;
                return;
            }
            self.response.body.extend_from_slice(&data);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
