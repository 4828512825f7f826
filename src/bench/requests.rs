//! The `/v2/keys` requests the load generator sends, and how it judges their answers.
//!
//! Requests are built once per worker from a parsed endpoint and only their path changes per
//! call, so the generator spends its time waiting on the server, not formatting. Success is
//! judged from the status line alone (200 or 201) on the hot path; the watch fan-out decodes
//! its events with the project's client decoder ([`crate::client::keys::decode_keys_response`]).

use std::fmt;
use std::time::{Duration, Instant};

use crate::client::http::{Deadlines, HttpClient, HttpError, Request, Response, Url};

/// Size of every value written, in bytes (the "100-byte values").
pub const VALUE_BYTES: usize = 100;

/// How long a fresh connection may wait for its first answer before it is dialled again.
pub const CONNECTION_STALL_LIMIT: Duration = Duration::from_secs(2);
/// Dials per worker connection at most (see [`Session::connect_with_retries`]).
pub const CONNECTION_ATTEMPTS: u64 = 4;

/// Why one benchmark request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The exchange failed (connect, timeout, malformed response).
    Http { endpoint: String, error: HttpError },
    /// The server answered, but not with a success status.
    Status {
        endpoint: String,
        expected: &'static str,
        found: u16,
        body: String,
    },
    /// A response body that is not the JSON expected.
    Decode { endpoint: String, reason: String },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Http { endpoint, error } => write!(f, "{endpoint}: {error}"),
            RequestError::Status {
                endpoint,
                expected,
                found,
                body,
            } => write!(
                f,
                "{endpoint}: expected status {expected}, found {found}: {}",
                body.trim()
            ),
            RequestError::Decode { endpoint, reason } => {
                write!(f, "{endpoint}: undecodable response: {reason}")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// The form body of a PUT with a [`VALUE_BYTES`]-byte value.
pub fn put_body() -> Vec<u8> {
    let mut body = b"value=".to_vec();
    body.extend((0..VALUE_BYTES).map(|i| b'a' + (i % 26) as u8));
    body
}

/// One worker's connection to one endpoint.
#[derive(Debug)]
pub struct Session {
    pub client: HttpClient,
    /// The endpoint as given, for error texts.
    pub endpoint: String,
    base: Url,
    put_template: Request,
    get_template: Request,
    /// Bounds each request's header and body phases.
    pub request_timeout: Duration,
}

impl Session {
    pub fn new(endpoint: &str, request_timeout: Duration) -> Result<Session, RequestError> {
        let base = Url::parse(endpoint).map_err(|error| RequestError::Http {
            endpoint: endpoint.to_string(),
            error,
        })?;
        let put_template = Request {
            method: "PUT".into(),
            url: base.clone(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(put_body()),
        };
        let get_template = Request {
            method: "GET".into(),
            url: base.clone(),
            headers: Vec::new(),
            body: None,
        };
        Ok(Session {
            client: HttpClient::new(Some(request_timeout)),
            endpoint: endpoint.to_string(),
            base,
            put_template,
            get_template,
            request_timeout,
        })
    }

    fn deadlines(&self) -> Deadlines {
        let deadline = Instant::now() + self.request_timeout;
        Deadlines {
            headers: Some(deadline),
            body: Some(deadline),
        }
    }

    fn exchange(
        &mut self,
        request: &Request,
        deadlines: Deadlines,
    ) -> Result<Response, RequestError> {
        self.client
            .send_following_redirects(request, deadlines)
            .map_err(|error| RequestError::Http {
                endpoint: self.endpoint.clone(),
                error,
            })
    }

    fn expect_success(&self, response: Response) -> Result<Response, RequestError> {
        if response.status == 200 || response.status == 201 {
            Ok(response)
        } else {
            Err(RequestError::Status {
                endpoint: self.endpoint.clone(),
                expected: "200 or 201",
                found: response.status,
                body: String::from_utf8_lossy(&response.body).into_owned(),
            })
        }
    }

    /// `GET /version`: opens the connection before measuring starts.
    pub fn warm_up(&mut self) -> Result<(), RequestError> {
        self.version_within(self.request_timeout)
    }

    fn version_within(&mut self, timeout: Duration) -> Result<(), RequestError> {
        let mut request = self.get_template.clone();
        request.url.path = "/version".into();
        let deadline = Instant::now() + timeout;
        let deadlines = Deadlines {
            headers: Some(deadline),
            body: Some(deadline),
        };
        let response = self.exchange(&request, deadlines)?;
        self.expect_success(response).map(|_| ())
    }

    /// Opens the connection with `GET /version`. A new connection that the server accepted but
    /// never answers within [`CONNECTION_STALL_LIMIT`] is dropped and dialled again, up to
    /// [`CONNECTION_ATTEMPTS`] times; returns how many connections stalled so (the report
    /// prints it: it is a server defect, not something to hide).
    pub fn connect_with_retries(&mut self) -> Result<u64, RequestError> {
        let mut stalled = 0;
        let limit = self.request_timeout.min(CONNECTION_STALL_LIMIT);
        loop {
            match self.version_within(limit) {
                Ok(()) => return Ok(stalled),
                Err(RequestError::Http {
                    error: HttpError::Timeout { .. },
                    ..
                }) if stalled + 1 < CONNECTION_ATTEMPTS => stalled += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// `PUT /v2/keys<key>` with a [`VALUE_BYTES`]-byte value.
    pub fn put(&mut self, key: &str) -> Result<Response, RequestError> {
        self.put_template.url.path = format!("/v2/keys{key}");
        let deadlines = self.deadlines();
        let response = self
            .client
            .send_following_redirects(&self.put_template, deadlines)
            .map_err(|error| RequestError::Http {
                endpoint: self.endpoint.clone(),
                error,
            })?;
        self.expect_success(response)
    }

    /// `GET /v2/keys<key>`, with `quorum=true` when asked.
    pub fn get(&mut self, key: &str, quorum: bool) -> Result<Response, RequestError> {
        self.get_template.url.path = format!("/v2/keys{key}");
        self.get_template.url.raw_query = if quorum {
            "quorum=true".into()
        } else {
            String::new()
        };
        let deadlines = self.deadlines();
        let response = self
            .client
            .send_following_redirects(&self.get_template, deadlines)
            .map_err(|error| RequestError::Http {
                endpoint: self.endpoint.clone(),
                error,
            })?;
        self.expect_success(response)
    }

    /// `GET <path>` (no query), for the stats and version endpoints.
    pub fn get_path(&mut self, path: &str) -> Result<Response, RequestError> {
        let request = Request {
            method: "GET".into(),
            url: Url {
                path: path.into(),
                raw_query: String::new(),
                ..self.base.clone()
            },
            headers: Vec::new(),
            body: None,
        };
        let deadlines = self.deadlines();
        let response = self.exchange(&request, deadlines)?;
        self.expect_success(response)
    }

    /// `PUT /v2/keys<dir>?dir=true`; returns the directory's modifiedIndex.
    pub fn make_dir(&mut self, dir: &str) -> Result<u64, RequestError> {
        let request = Request {
            method: "PUT".into(),
            url: Url {
                path: format!("/v2/keys{dir}"),
                raw_query: "dir=true".into(),
                ..self.base.clone()
            },
            headers: Vec::new(),
            body: None,
        };
        let deadlines = self.deadlines();
        let response = self.exchange(&request, deadlines)?;
        let response = self.expect_success(response)?;
        self.modified_index(&response)
    }

    /// The `node.modifiedIndex` of a successful `/v2/keys` response.
    pub fn modified_index(&self, response: &Response) -> Result<u64, RequestError> {
        crate::client::keys::decode_keys_response(response)
            .map_err(|error| RequestError::Decode {
                endpoint: self.endpoint.clone(),
                reason: error.to_string(),
            })?
            .node
            .map(|node| node.modified_index)
            .ok_or_else(|| RequestError::Decode {
                endpoint: self.endpoint.clone(),
                reason: "no node in the response".into(),
            })
    }

    /// `GET /v2/keys<dir>?wait=true&recursive=true&waitIndex=N` with its own deadline.
    pub fn watch_once(
        &mut self,
        dir: &str,
        wait_index: u64,
        deadline: Instant,
    ) -> Result<Response, RequestError> {
        let request = Request {
            method: "GET".into(),
            url: Url {
                path: format!("/v2/keys{dir}"),
                raw_query: format!("wait=true&recursive=true&waitIndex={wait_index}"),
                ..self.base.clone()
            },
            headers: Vec::new(),
            body: None,
        };
        let deadlines = Deadlines {
            headers: Some(deadline),
            body: Some(deadline),
        };
        self.exchange(&request, deadlines)
    }
}

/// A small xorshift generator: key choice needs speed and spread, not quality.
#[derive(Debug, Clone)]
pub struct KeyPicker {
    /// Invariant: never 0 (xorshift's fixed point).
    state: u64,
}

impl KeyPicker {
    pub fn new(seed: u64) -> KeyPicker {
        KeyPicker {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// A number in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "KeyPicker::below needs a positive bound");
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % bound
    }
}
