//! A small HTTP/1.1 client on `std::net`, just enough for the etcd v2 API.
//!
//! It owns the connections: one idle keep-alive connection per `host:port` (a stale one is
//! retried once on a fresh connection), deadlines for the connect, header and body phases,
//! request encoding, streaming responses (a watch stream can be consumed one line at a time)
//! and redirect following. URLs and escaping live in [`super::url`], the response format in
//! [`super::wire`].
//!
//! It never panics on what a server sends: every malformed status line, header, chunk size or
//! early end of stream is an [`HttpError`]. Error texts follow Go's `net/http` wording where
//! etcdctl prints them (`dial tcp 127.0.0.1:1: connect: connection refused`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

use std::time::{Duration, Instant};

pub use super::url::{encode_form, encode_path, encode_query_component, percent_decode, Url};
pub use super::wire::{decode_response_bytes, BodyReader, Response};
use super::wire::{find_header, framing_for, read_head, Framing, Head};

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

/// Turns an `io::Error` from a body read back into an [`HttpError`].
fn body_error(stream: &DeadlineStream, error: io::Error) -> HttpError {
    if error.kind() == io::ErrorKind::InvalidData {
        if let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<HttpError>()) {
            return inner.clone();
        }
    }
    stream.map_error(error)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::thread;

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
