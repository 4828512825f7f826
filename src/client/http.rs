//! A small HTTP/1.1 client on `std::net`, just enough for the etcd v2 API.
//!
//! It owns: URL parsing for `http://host:port/path` endpoints, Go-compatible percent-encoding
//! (etcdctl's `--debug` lines and request targets must match byte for byte), one idle keep-alive
//! connection per `host:port`, `Content-Length`, chunked and until-close response bodies, a
//! streaming body reader (a watch stream can be consumed one line at a time), deadlines for the
//! connect, header and body phases, and redirect following.
//!
//! It never panics on what a server sends: every malformed status line, header, chunk size or
//! early end of stream is an [`HttpError`]. Error texts follow Go's `net/http` wording where
//! etcdctl prints them (`dial tcp 127.0.0.1:1: connect: connection refused`).
//!
//! Chunked framing as read by [`BodyReader`] (RFC 9112 §7.1):
//! ```text
//! <hex size>[;ext]\r\n <size bytes> \r\n   ... repeated ...
//! 0[;ext]\r\n [trailer-line\r\n]* \r\n
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

pub use super::url::{encode_form, encode_path, encode_query_component, percent_decode, Url};
use std::time::{Duration, Instant};

/// Longest status line or header line accepted, in bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most header lines accepted in one response.
const MAX_HEADER_COUNT: usize = 256;
/// Largest body `read_to_end` accepts, in bytes.
const MAX_BODY_BYTES: u64 = 512 * 1024 * 1024;
/// Redirects followed before giving up (etcd's client allows 10).
pub const MAX_REDIRECTS: usize = 10;

/// Everything that can go wrong between a request and its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL could not be parsed; `reason` is Go's wording.
    BadUrl { url: String, reason: String },
    /// The URL scheme is not `http`.
    UnsupportedScheme { scheme: String },
    /// Name resolution failed.
    Lookup { host: String },
    /// The TCP connect failed (`reason` like `connect: connection refused`).
    Connect { addr: String, reason: String },
    /// A deadline passed; `phase` says which (`dial`, `headers`, `body`).
    Timeout { phase: &'static str, addr: String },
    /// A read or write on an open connection failed.
    Io { addr: String, reason: String },
    /// The connection closed before the response was complete.
    UnexpectedEof { expected: &'static str },
    /// The status line is not `HTTP/1.x NNN reason`.
    MalformedStatusLine { found: String },
    /// A header line has no colon or is not valid text.
    MalformedHeader { found: String },
    /// A line was longer than 64 KiB, or there were too many headers.
    TooLarge { what: &'static str, limit: u64 },
    /// A chunk-size line is not a hexadecimal number that fits in 64 bits.
    BadChunkSize { found: String },
    /// A chunk's data was not followed by CRLF.
    BadChunkTerminator { found: Vec<u8> },
    /// `Content-Length` is not a decimal number.
    BadContentLength { found: String },
    /// A 3xx response without a `Location` header.
    MissingLocation,
    /// The `Location` header is not a usable URL.
    BadLocation { found: String },
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects { limit: usize },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl { url, reason } => write!(f, "parse {:?}: {}", url, reason),
            HttpError::UnsupportedScheme { scheme } => {
                write!(f, "unsupported protocol scheme {:?}", scheme)
            }
            HttpError::Lookup { host } => match first_nameserver() {
                Some(server) => {
                    write!(
                        f,
                        "dial tcp: lookup {} on {}:53: no such host",
                        host, server
                    )
                }
                None => write!(f, "dial tcp: lookup {}: no such host", host),
            },
            HttpError::Connect { addr, reason } => write!(f, "dial tcp {}: {}", addr, reason),
            HttpError::Timeout {
                phase: "dial",
                addr,
            } => {
                write!(f, "dial tcp {}: i/o timeout", addr)
            }
            HttpError::Timeout { phase, addr } => {
                write!(f, "read tcp {}: i/o timeout (waiting for {})", addr, phase)
            }
            HttpError::Io { addr, reason } => write!(f, "read tcp {}: {}", addr, reason),
            HttpError::UnexpectedEof { expected } => {
                write!(f, "unexpected EOF (expected {})", expected)
            }
            HttpError::MalformedStatusLine { found } => {
                write!(f, "malformed HTTP status code {:?}", found)
            }
            HttpError::MalformedHeader { found } => {
                write!(f, "malformed MIME header line: {}", found)
            }
            HttpError::TooLarge { what, limit } => {
                write!(f, "{} larger than {} bytes", what, limit)
            }
            HttpError::BadChunkSize { found } => {
                write!(f, "invalid byte in chunk length: {:?}", found)
            }
            HttpError::BadChunkTerminator { found } => {
                write!(
                    f,
                    "malformed chunked encoding: expected CRLF, found {:?}",
                    found
                )
            }
            HttpError::BadContentLength { found } => {
                write!(f, "bad Content-Length {:?}", found)
            }
            HttpError::MissingLocation => write!(f, "location header not set"),
            HttpError::BadLocation { found } => {
                write!(f, "location header not valid URL: {}", found)
            }
            HttpError::TooManyRedirects { .. } => write!(f, "client: too many redirects"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The first `nameserver` of /etc/resolv.conf: Go names it in lookup errors.
fn first_nameserver() -> Option<String> {
    let config = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    config.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next().map(str::to_string))?
    })
}

impl HttpError {
    /// True for errors etcdctl treats as "could not reach the server" (exit code 2 on sync).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. }
                | HttpError::Timeout { .. }
                | HttpError::Io { .. }
                | HttpError::Lookup { .. }
        )
    }
}

/// One request. Bodies are small (forms and JSON), so they are held in memory.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: Url,
    /// Extra headers; `Host`, `Content-Length` and `User-Agent` are added by the client.
    pub headers: Vec<(String, String)>,
    /// `None`: no body and no `Content-Length` (GET, DELETE).
    pub body: Option<Vec<u8>>,
}

/// Deadlines for one exchange. `None` means no limit for that phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines {
    /// Until the status line and headers have arrived (also bounds the connect).
    pub headers: Option<Instant>,
    /// Until the whole body has arrived.
    pub body: Option<Instant>,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names as sent; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A socket whose reads honour a deadline that can be moved between phases.
#[derive(Debug)]
pub struct DeadlineStream {
    stream: TcpStream,
    /// The peer, for error texts.
    addr: String,
    deadline: Option<Instant>,
    phase: &'static str,
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
                }
                Some(deadline - now)
            }
            None => None,
        };
        self.stream.set_read_timeout(timeout)?;
        match self.stream.read(buf) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
            }
            other => other,
        }
    }
}

impl DeadlineStream {
    fn map_error(&self, error: io::Error) -> HttpError {
        match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpError::Timeout {
                phase: self.phase,
                addr: self.addr.clone(),
            },
            io::ErrorKind::UnexpectedEof => HttpError::UnexpectedEof {
                expected: self.phase,
            },
            _ => HttpError::Io {
                addr: self.addr.clone(),
                reason: go_error_text(&error),
            },
        }
    }
}

/// Go-style text of an OS error: `connection refused`, not `Connection refused (os error 111)`.
fn go_error_text(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// How the rest of a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Invariant: `remaining` bytes of the body have not been read yet.
    Length { remaining: u64 },
    /// `in_chunk`: bytes left in the current chunk; `None` before the next size line.
    Chunked { in_chunk: Option<u64> },
    /// Body runs until the server closes the connection.
    UntilClose,
    /// The body has been read completely.
    Done,
}

/// Reads a response body incrementally; works on any `BufRead` so it can be tested with
/// readers that return one byte at a time.
#[derive(Debug)]
pub struct BodyReader<R> {
    reader: R,
    framing: Framing,
    /// Set when the connection can carry another request once the body is done.
    keep_alive: bool,
}

impl<R: BufRead> BodyReader<R> {
    fn new(reader: R, framing: Framing, keep_alive: bool) -> Self {
        BodyReader {
            reader,
            framing,
            keep_alive,
        }
    }

    /// A chunked body reader over `reader` (for tests and for callers that framed the
    /// headers themselves).
    pub fn chunked(reader: R) -> Self {
        BodyReader::new(reader, Framing::Chunked { in_chunk: None }, true)
    }

    /// True once the whole body has been consumed.
    pub fn is_done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// Reads up to `buf.len()` body bytes; `Ok(0)` means the body is complete.
    pub fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length { remaining: 0 } => {
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                Framing::Length { remaining } => {
                    let want = buf
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "body shorter than Content-Length",
                        ));
                    }
                    self.framing = Framing::Length {
                        remaining: remaining - got as u64,
                    };
                    return Ok(got);
                }
                Framing::UntilClose => {
                    let got = self.reader.read(buf)?;
                    if got == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(got);
                }
                Framing::Chunked { in_chunk: None } => {
                    let size = read_chunk_size(&mut self.reader)?;
                    if size == 0 {
                        skip_trailers(&mut self.reader)?;
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked {
                        in_chunk: Some(size),
                    };
                }
                Framing::Chunked {
                    in_chunk: Some(remaining),
                } => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream ended inside a chunk",
                        ));
                    }
                    let left = remaining - got as u64;
                    if left == 0 {
                        expect_crlf(&mut self.reader)?;
                        self.framing = Framing::Chunked { in_chunk: None };
                    } else {
                        self.framing = Framing::Chunked {
                            in_chunk: Some(left),
                        };
                    }
                    return Ok(got);
                }
            }
        }
    }

    /// Reads body bytes up to and including the next `\n` (or the end of the body).
    /// `Ok(None)` once the body is complete. A watch stream yields one event per line.
    pub fn read_line(&mut self) -> Result<Option<Vec<u8>>, io::Error> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if line.len() > MAX_BODY_BYTES as usize {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            match self.read_body(&mut byte)? {
                0 if line.is_empty() => return Ok(None),
                0 => return Ok(Some(line)),
                _ => {
                    line.push(byte[0]);
                    if byte[0] == b'\n' {
                        return Ok(Some(line));
                    }
                }
            }
        }
    }

    /// Reads the rest of the body.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>, io::Error> {
        let mut body = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let got = self.read_body(&mut buf)?;
            if got == 0 {
                return Ok(body);
            }
            if body.len() as u64 + got as u64 > MAX_BODY_BYTES {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
            }
            body.extend_from_slice(&buf[..got]);
        }
    }
}

/// An I/O error carrying an [`HttpError`] so framing problems survive `io::Error` plumbing.
fn framing_error(error: HttpError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// Turns an `io::Error` from a body read back into an [`HttpError`].
fn body_error(stream: &DeadlineStream, error: io::Error) -> HttpError {
    if error.kind() == io::ErrorKind::InvalidData {
        if let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<HttpError>()) {
            return inner.clone();
        }
    }
    stream.map_error(error)
}

fn read_limited_line<R: BufRead>(reader: &mut R, what: &'static str) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 1;
    reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.len() as u64 >= limit {
        return Err(framing_error(HttpError::TooLarge {
            what,
            limit: MAX_LINE_BYTES as u64,
        }));
    }
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn read_chunk_size<R: BufRead>(reader: &mut R) -> io::Result<u64> {
    let line = read_limited_line(reader, "chunk size line")?;
    let text = String::from_utf8_lossy(&line).to_string();
    let digits = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', '\t']);
    let bad = || {
        framing_error(HttpError::BadChunkSize {
            found: text.clone(),
        })
    };
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

fn expect_crlf<R: BufRead>(reader: &mut R) -> io::Result<()> {
    let mut pair = [0u8; 2];
    reader.read_exact(&mut pair)?;
    if &pair != b"\r\n" {
        return Err(framing_error(HttpError::BadChunkTerminator {
            found: pair.to_vec(),
        }));
    }
    Ok(())
}

fn skip_trailers<R: BufRead>(reader: &mut R) -> io::Result<()> {
    for _ in 0..MAX_HEADER_COUNT {
        if read_limited_line(reader, "chunked trailer")?.is_empty() {
            return Ok(());
        }
    }
    Err(framing_error(HttpError::TooLarge {
        what: "chunked trailer",
        limit: MAX_HEADER_COUNT as u64,
    }))
}

/// Status line and headers of a response whose body has not been read yet.
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// The body, read from the connection.
    pub body: BodyReader<BufReader<DeadlineStream>>,
    /// Pool key of the connection, to hand it back when the body is done.
    authority: String,
}

impl StreamingResponse {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Next line of the body (a watch stream's next event); `Ok(None)` at the end.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        self.body
            .read_line()
            .map_err(|e| body_error(self.body.reader.get_ref(), e))
    }

    /// Reads the rest of the body within `deadline` and returns the connection to `client`.
    pub fn finish(
        mut self,
        client: &mut HttpClient,
        deadline: Option<Instant>,
    ) -> Result<Response, HttpError> {
        {
            let stream = self.body.reader.get_mut();
            stream.deadline = deadline;
            stream.phase = "body";
        }
        let body = self
            .body
            .read_to_end()
            .map_err(|e| body_error(self.body.reader.get_ref(), e))?;
        if self.body.keep_alive && self.body.reader.buffer().is_empty() {
            let stream = self.body.reader.into_inner().stream;
            client.idle.insert(self.authority, stream);
        }
        Ok(Response {
            status: self.status,
            reason: self.reason,
            headers: self.headers,
            body,
        })
    }
}

/// An HTTP/1.1 client with one idle keep-alive connection per `host:port`.
#[derive(Debug, Default)]
pub struct HttpClient {
    idle: BTreeMap<String, TcpStream>,
    /// Longest a TCP connect may take (also capped by the header deadline).
    pub connect_timeout: Option<Duration>,
    /// How many connections were opened (observable by tests of keep-alive).
    pub connections_opened: u64,
}

impl HttpClient {
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        HttpClient {
            idle: BTreeMap::new(),
            connect_timeout,
            connections_opened: 0,
        }
    }

    /// Sends `request` and reads the whole response. Does not follow redirects.
    pub fn send(&mut self, request: &Request, deadlines: Deadlines) -> Result<Response, HttpError> {
        let streaming = self.open(request, deadlines)?;
        streaming.finish(self, deadlines.body)
    }

    /// Sends `request`, following up to [`MAX_REDIRECTS`] 3xx responses with the same method
    /// and body, and reads the whole final response.
    pub fn send_following_redirects(
        &mut self,
        request: &Request,
        deadlines: Deadlines,
    ) -> Result<Response, HttpError> {
        let mut current = request.clone();
        for hop in 0..=MAX_REDIRECTS + 1 {
            if hop > MAX_REDIRECTS {
                break;
            }
            let response = self.send(&current, deadlines)?;
            if response.status / 100 != 3 {
                return Ok(response);
            }
            let location = response
                .header("Location")
                .ok_or(HttpError::MissingLocation)?;
            current.url = current.url.join(location)?;
        }
        Err(HttpError::TooManyRedirects {
            limit: MAX_REDIRECTS,
        })
    }

    /// Sends `request` and returns once the status line and headers are in; the body is
    /// read by the caller (a streaming watch) through [`StreamingResponse`].
    pub fn open(
        &mut self,
        request: &Request,
        deadlines: Deadlines,
    ) -> Result<StreamingResponse, HttpError> {
        if request.url.scheme != "http" {
            return Err(HttpError::UnsupportedScheme {
                scheme: request.url.scheme.clone(),
            });
        }
        let authority = request.url.authority();
        let head = encode_request_head(request, &authority);
        if let Some(stream) = self.idle.remove(&authority) {
            // A reused connection may have been closed by the server meanwhile: if nothing at
            // all comes back, retry once on a fresh connection.
            match self.exchange(stream, request, &head, &authority, deadlines) {
                Ok(response) => return Ok(response),
                Err(HttpError::UnexpectedEof { .. }) | Err(HttpError::Io { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        let stream = self.connect(&request.url, deadlines.headers)?;
        self.exchange(stream, request, &head, &authority, deadlines)
    }

    fn connect(&mut self, url: &Url, deadline: Option<Instant>) -> Result<TcpStream, HttpError> {
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|_| HttpError::Lookup {
                host: url.host.clone(),
            })?
            .collect();
        let mut last_error = HttpError::Lookup {
            host: url.host.clone(),
        };
        for addr in addrs {
            let mut timeout = self.connect_timeout.unwrap_or(Duration::from_secs(30));
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HttpError::Timeout {
                        phase: "dial",
                        addr: addr.to_string(),
                    });
                }
                timeout = timeout.min(left);
            }
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    self.connections_opened += 1;
                    return Ok(stream);
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                    last_error = HttpError::Timeout {
                        phase: "dial",
                        addr: addr.to_string(),
                    };
                }
                Err(error) => {
                    last_error = HttpError::Connect {
                        addr: addr.to_string(),
                        reason: format!("connect: {}", go_error_text(&error)),
                    };
                }
            }
        }
        Err(last_error)
    }

    fn exchange(
        &mut self,
        mut stream: TcpStream,
        request: &Request,
        head: &[u8],
        authority: &str,
        deadlines: Deadlines,
    ) -> Result<StreamingResponse, HttpError> {
        let addr = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| authority.to_string());
        let write_error = |e: io::Error| HttpError::Io {
            addr: addr.clone(),
            reason: go_error_text(&e),
        };
        if let Some(deadline) = deadlines.headers {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = stream.set_write_timeout(Some(left.max(Duration::from_millis(1))));
        }
        let mut message = head.to_vec();
        if let Some(body) = &request.body {
            message.extend_from_slice(body);
        }
        stream.write_all(&message).map_err(write_error)?;
        let mut reader = BufReader::new(DeadlineStream {
            stream,
            addr: addr.clone(),
            deadline: deadlines.headers,
            phase: "headers",
        });
        let Head {
            status,
            reason,
            headers,
            is_http10,
        } = read_head(&mut reader).map_err(|e| body_error(reader.get_ref(), e))?;
        let framing = framing_for(&request.method, status, &headers)?;
        let connection = find_header(&headers, "Connection").unwrap_or("");
        let reusable = if is_http10 {
            connection.eq_ignore_ascii_case("keep-alive")
        } else {
            !connection.eq_ignore_ascii_case("close")
        };
        let keep_alive = reusable && framing != Framing::UntilClose;
        {
            let stream = reader.get_mut();
            stream.deadline = deadlines.body;
            stream.phase = "body";
        }
        Ok(StreamingResponse {
            status,
            reason,
            headers,
            body: BodyReader::new(reader, framing, keep_alive),
            authority: authority.to_string(),
        })
    }
}

/// Decodes a complete response held in memory (the answer to a request with `method`).
/// Used by tests and fuzzing; never panics on any bytes.
pub fn decode_response_bytes(method: &str, bytes: &[u8]) -> Result<Response, HttpError> {
    let mut reader = io::Cursor::new(bytes);
    let as_http = |error: io::Error| -> HttpError {
        if let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<HttpError>()) {
            return inner.clone();
        }
        match error.kind() {
            io::ErrorKind::UnexpectedEof => HttpError::UnexpectedEof {
                expected: "response",
            },
            _ => HttpError::Io {
                addr: "memory".to_string(),
                reason: error.to_string(),
            },
        }
    };
    let Head {
        status,
        reason,
        headers,
        ..
    } = read_head(&mut reader).map_err(as_http)?;
    let framing = framing_for(method, status, &headers)?;
    let body = BodyReader::new(reader, framing, false)
        .read_to_end()
        .map_err(as_http)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

fn encode_request_head(request: &Request, authority: &str) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: raftkvctl\r\n",
        request.method,
        request.url.request_target(),
        authority
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{}: {}\r\n", name, value));
    }
    if let Some(body) = &request.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A parsed status line and header section.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    /// `HTTP/1.0`: the connection closes after the response unless it says keep-alive.
    is_http10: bool,
}

fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Head> {
    // Skip 1xx interim responses (100 Continue).
    loop {
        let line = read_limited_line(reader, "status line")?;
        let text = String::from_utf8_lossy(&line).to_string();
        let malformed = || {
            framing_error(HttpError::MalformedStatusLine {
                found: text.clone(),
            })
        };
        let mut parts = text.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("").to_string();
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return Err(malformed());
        }
        let status: u16 = code.parse().map_err(|_| malformed())?;
        if !(100..=999).contains(&status) {
            return Err(malformed());
        }
        let mut headers = Vec::new();
        loop {
            let line = read_limited_line(reader, "header line")?;
            if line.is_empty() {
                break;
            }
            if headers.len() >= MAX_HEADER_COUNT {
                return Err(framing_error(HttpError::TooLarge {
                    what: "header section",
                    limit: MAX_HEADER_COUNT as u64,
                }));
            }
            let text = String::from_utf8(line).map_err(|e| {
                framing_error(HttpError::MalformedHeader {
                    found: String::from_utf8_lossy(e.as_bytes()).to_string(),
                })
            })?;
            let Some((name, value)) = text.split_once(':') else {
                return Err(framing_error(HttpError::MalformedHeader { found: text }));
            };
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(framing_error(HttpError::MalformedHeader {
                    found: text.clone(),
                }));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        return Ok(Head {
            status,
            reason,
            headers,
            is_http10: version == "HTTP/1.0",
        });
    }
}

fn framing_for(
    method: &str,
    status: u16,
    headers: &[(String, String)],
) -> Result<Framing, HttpError> {
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Framing::Done);
    }
    let chunked = find_header(headers, "Transfer-Encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    if chunked {
        return Ok(Framing::Chunked { in_chunk: None });
    }
    match find_header(headers, "Content-Length") {
        Some(text) => {
            let remaining = text
                .parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HttpError::BadContentLength {
                    found: text.to_string(),
                })?;
            Ok(if remaining == 0 {
                Framing::Done
            } else {
                Framing::Length { remaining }
            })
        }
        None => Ok(Framing::UntilClose),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A reader that hands out one byte per `read`, so chunk boundaries never line up with
    /// read boundaries.
    struct OneByteReader {
        data: Vec<u8>,
        at: usize,
    }

    impl Read for OneByteReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at >= self.data.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[self.at];
            self.at += 1;
            Ok(1)
        }
    }

    fn chunked_of(data: &[u8]) -> BodyReader<BufReader<OneByteReader>> {
        BodyReader::chunked(BufReader::with_capacity(
            1,
            OneByteReader {
                data: data.to_vec(),
                at: 0,
            },
        ))
    }

    fn inner_error(error: io::Error) -> Option<HttpError> {
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<HttpError>())
            .cloned()
    }

    #[test]
    fn chunked_body_is_reassembled_across_one_byte_reads() {
        let wire = b"4\r\nWiki\r\n5;name=ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut body = chunked_of(wire);
        assert_eq!(body.read_to_end().unwrap(), b"Wikipedia in\r\n\r\nchunks.");
        assert!(body.is_done());
    }

    #[test]
    fn chunked_lines_are_yielded_one_at_a_time_even_when_split_over_chunks() {
        let wire = b"3\r\n{\"a\r\n5\r\n\":1}\n\r\n8\r\n{\"b\":2}\n\r\n0\r\n\r\n";
        let mut body = chunked_of(wire);
        assert_eq!(body.read_line().unwrap().unwrap(), b"{\"a\":1}\n");
        assert_eq!(body.read_line().unwrap().unwrap(), b"{\"b\":2}\n");
        assert_eq!(body.read_line().unwrap(), None);
    }

    #[test]
    fn bad_chunk_sizes_are_errors_not_panics() {
        for wire in [
            &b"zz\r\nabc\r\n0\r\n\r\n"[..],
            b"\r\nabc\r\n",
            b"-1\r\n",
            b"1FFFFFFFFFFFFFFFF\r\n",
            b"0x10\r\n",
        ] {
            let error = chunked_of(wire).read_to_end().unwrap_err();
            assert!(
                matches!(inner_error(error), Some(HttpError::BadChunkSize { .. })),
                "wire {:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn truncated_and_unterminated_chunks_are_errors() {
        let error = chunked_of(b"5\r\nab").read_to_end().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let error = chunked_of(b"2\r\nabXY0\r\n\r\n").read_to_end().unwrap_err();
        assert_eq!(
            inner_error(error),
            Some(HttpError::BadChunkTerminator {
                found: b"XY".to_vec()
            })
        );
        let error = chunked_of(b"2\r\nab\r\n").read_to_end().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_decoder_never_panics_on_arbitrary_bytes() {
        // A fixed-seed xorshift generator: the failing seed and input are printed on panic.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for case in 0..2000 {
            let mut data = Vec::new();
            let len = (state % 40) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let alphabet = b"0123456789aAfF\r\n;xz ";
                data.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let result = std::panic::catch_unwind(|| {
                let _ = chunked_of(&data).read_to_end();
            });
            assert!(result.is_ok(), "case {} panicked on {:?}", case, data);
        }
    }

    #[test]
    fn response_decoder_never_panics_on_arbitrary_bytes() {
        let pieces: [&[u8]; 14] = [
            b"HTTP/1.1 ",
            b"200 OK",
            b"\r\n",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked",
            b"5",
            b"ff",
            b":",
            b"abc",
            b"\n",
            b"0\r\n\r\n",
            b"HTTP/1.0 100 Continue\r\n\r\n",
            b"\xff\xfe",
            b"-1",
        ];
        let seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut state = seed;
        for case in 0..5000 {
            let mut data = Vec::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                data.extend_from_slice(pieces[(state % pieces.len() as u64) as usize]);
            }
            let result = std::panic::catch_unwind(|| decode_response_bytes("GET", &data));
            assert!(
                result.is_ok(),
                "seed {:#x} case {} panicked on {:?}",
                seed,
                case,
                data
            );
        }
        let ok = decode_response_bytes(
            "GET",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        )
        .unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (201, &b"ok"[..]));
        assert_eq!(
            decode_response_bytes("GET", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(HttpError::BadContentLength { found: "x".into() })
        );
        assert_eq!(
            decode_response_bytes("GET", b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            Err(HttpError::MalformedHeader {
                found: "bad header".into()
            })
        );
        let head = decode_response_bytes("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(head.unwrap().body, b"");
    }

    /// Serves `responses` in order on one listener, counting accepted connections.
    fn serve(responses: Vec<Vec<u8>>) -> (Url, thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let mut accepted = 0;
            let mut pending = responses.into_iter();
            while let Some(first) = pending.next() {
                let (stream, _) = listener.accept().unwrap();
                accepted += 1;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut next = Some(first);
                while let Some(response) = next.take() {
                    // Read one request head (our requests in these tests have no body).
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    writer.write_all(&response).unwrap();
                    let closes = String::from_utf8_lossy(&response).contains("Connection: close");
                    if !closes {
                        next = pending.next();
                    }
                }
            }
            accepted
        });
        (
            Url::parse(&format!("http://127.0.0.1:{}/x", port)).unwrap(),
            handle,
        )
    }

    fn get(url: &Url) -> Request {
        Request {
            method: "GET".into(),
            url: url.clone(),
            headers: vec![],
            body: None,
        }
    }

    #[test]
    fn keep_alive_reuses_one_connection() {
        let (url, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree"
                .to_vec(),
        ]);
        let mut client = HttpClient::new(Some(Duration::from_secs(2)));
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let deadlines = Deadlines {
            headers: deadline,
            body: deadline,
        };
        let first = client.send(&get(&url), deadlines).unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"one"[..]));
        let second = client.send(&get(&url), deadlines).unwrap();
        assert_eq!(second.body, b"two");
        let third = client.send(&get(&url), deadlines).unwrap();
        assert_eq!((third.status, third.reason.as_str()), (404, "Not Found"));
        assert_eq!(third.body, b"three");
        assert_eq!(client.connections_opened, 1);
        assert_eq!(server.join().unwrap(), 1);
        assert!(
            client.idle.is_empty(),
            "a Connection: close response must not be pooled"
        );
    }

    #[test]
    fn streaming_body_yields_each_event_before_the_stream_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!(
            "http://{}/v2/keys/w",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let (go_on, wait_for_go) = std::sync::mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let mut writer = stream;
            writer
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"e\":1}\n\r\n",
                )
                .unwrap();
            // The second event is only sent once the client has read the first one.
            wait_for_go.recv().unwrap();
            writer
                .write_all(b"4\r\n{\"e\"\r\n4\r\n:2}\n\r\n0\r\n\r\n")
                .unwrap();
        });
        let mut client = HttpClient::new(None);
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        let deadlines = Deadlines {
            headers: deadline,
            body: deadline,
        };
        let mut stream = client.open(&get(&url), deadlines).unwrap();
        assert_eq!(stream.status, 200);
        assert_eq!(stream.next_line().unwrap().unwrap(), b"{\"e\":1}\n");
        go_on.send(()).unwrap();
        assert_eq!(stream.next_line().unwrap().unwrap(), b"{\"e\":2}\n");
        assert_eq!(stream.next_line().unwrap(), None);
        let rest = stream.finish(&mut client, deadline).unwrap();
        assert!(rest.body.is_empty());
        server.join().unwrap();
        assert_eq!(
            client.idle.len(),
            1,
            "a fully read chunked body leaves a reusable connection"
        );
    }

    #[test]
    fn http10_responses_are_not_pooled() {
        let (url, server) = serve(vec![
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nv1".to_vec()
        ]);
        let mut client = HttpClient::new(None);
        assert_eq!(
            client.send(&get(&url), Deadlines::default()).unwrap().body,
            b"v1"
        );
        assert!(
            client.idle.is_empty(),
            "HTTP/1.0 without keep-alive closes the connection"
        );
        server.join().unwrap();
    }

    #[test]
    fn redirects_are_followed() {
        let (url, server) = serve(vec![
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /y\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ]);
        let mut client = HttpClient::new(None);
        let response = client
            .send_following_redirects(&get(&url), Deadlines::default())
            .unwrap();
        assert_eq!(response.body, b"ok");
        assert_eq!(server.join().unwrap(), 1);
    }

    #[test]
    fn header_deadline_gives_a_timeout_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let mut client = HttpClient::new(None);
        let deadlines = Deadlines {
            headers: Some(Instant::now() + Duration::from_millis(200)),
            body: None,
        };
        let error = client.send(&get(&url), deadlines).unwrap_err();
        assert!(
            matches!(
                error,
                HttpError::Timeout {
                    phase: "headers",
                    ..
                }
            ),
            "{:?}",
            error
        );
        drop(listener);
    }

    #[test]
    fn refused_connection_reads_like_go() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{}", addr)).unwrap();
        let error = HttpClient::new(None)
            .send(&get(&url), Deadlines::default())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("dial tcp {}: connect: connection refused", addr)
        );
        assert!(error.is_connection_error());
    }

    #[test]
    fn malformed_status_lines_are_errors() {
        let (url, _server) = serve(vec![b"HTTP/1.1 abc OK\r\n\r\n".to_vec()]);
        let error = HttpClient::new(None)
            .send(&get(&url), Deadlines::default())
            .unwrap_err();
        assert!(
            matches!(error, HttpError::MalformedStatusLine { .. }),
            "{:?}",
            error
        );
    }
}
