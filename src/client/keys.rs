//! The etcd v2 cluster client: endpoint list, failover, sync, and the `/v2/keys` requests.
//!
//! It owns what etcd's Go client (the one embedded in etcdctl) does between a command and the
//! wire, because users compare `--debug` output and error texts:
//! - requests are built per endpoint with query and form keys in alphabetical order, `ttl` only
//!   when > 0, `prevValue` only when non-empty, `prevIndex` only when non-zero;
//! - one request is tried on each endpoint in turn starting at the pinned one; 500/503 mean
//!   "has no leader", other 5xx "returns server error"; create (`prevExist=false`) and delete
//!   are one-shot and are not retried elsewhere; 3xx responses are followed;
//! - a per-request header timeout (`--timeout`) and a whole-command deadline
//!   (`--total-timeout`), neither applied to `wait=true`;
//! - success bodies decode into [`KeysResponse`]; any other status is the v2 error JSON.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::http::{
    encode_form, encode_query_component, Deadlines, HttpClient, HttpError, Request, Response, Url,
    MAX_REDIRECTS,
};

/// One failed attempt on one endpoint, inside a [`ClientError::Cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// The transport failed (connect, read, framing).
    Http(HttpError),
    /// HTTP 500 or 503 from the endpoint.
    NoLeader { endpoint: String },
    /// Another 5xx; `status_text` is the standard reason phrase.
    ServerError {
        endpoint: String,
        status_text: String,
    },
    /// No response headers within `--timeout`.
    HeaderTimeout { endpoint: String },
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Http(error) => write!(f, "{}", error),
            AttemptError::NoLeader { endpoint } => {
                write!(f, "client: etcd member {} has no leader", endpoint)
            }
            AttemptError::ServerError {
                endpoint,
                status_text,
            } => write!(
                f,
                "client: etcd member {} returns server error [{}]",
                endpoint, status_text
            ),
            AttemptError::HeaderTimeout { endpoint } => {
                write!(f, "client: endpoint {} exceeded header timeout", endpoint)
            }
        }
    }
}

impl AttemptError {
    fn is_connection_error(&self) -> bool {
        match self {
            AttemptError::Http(error) => error.is_connection_error(),
            _ => false,
        }
    }
}

/// The v2 error JSON: `{"errorCode":N,"message":"…","cause":"…","index":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct V2Error {
    #[serde(rename = "errorCode", default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: u64,
}

/// Everything a client call can fail with; `Display` is etcdctl's text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Every endpoint failed; one entry per attempt.
    Cluster { errors: Vec<AttemptError> },
    /// A one-shot request failed on its only attempt.
    Attempt(AttemptError),
    /// The `--total-timeout` deadline passed.
    DeadlineExceeded,
    /// The endpoint list is empty.
    NoEndpoints,
    /// The server answered with the v2 error JSON.
    V2(V2Error),
    /// A 200/201 with an empty body.
    EmptyBody,
    /// A body that is not the JSON expected.
    InvalidJson,
    /// `X-Etcd-Index` is not a number.
    BadIndexHeader { found: String },
    /// Members API: a status outside the accepted set.
    UnexpectedStatus { found: u16 },
    /// Members API: the server's `{"message":…}`.
    Message { message: String },
    /// Members API: a response that is not the JSON expected (Go's decoder text).
    Decode { reason: String },
    /// Bad arguments detected client-side (peer URLs).
    Invalid { reason: String },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Cluster { errors } => {
                write!(f, "client: etcd cluster is unavailable or misconfigured")?;
                for (i, error) in errors.iter().enumerate() {
                    writeln!(f, "; error #{}: {}", i, error)?;
                }
                Ok(())
            }
            ClientError::Attempt(error) => write!(f, "{}", error),
            ClientError::DeadlineExceeded => write!(f, "context deadline exceeded"),
            ClientError::NoEndpoints => write!(f, "client: no endpoints available"),
            ClientError::V2(error) => write!(
                f,
                "{}: {} ({}) [{}]",
                error.code, error.message, error.cause, error.index
            ),
            ClientError::EmptyBody => write!(f, "client: response body is empty"),
            ClientError::InvalidJson => write!(
                f,
                "client: response is invalid json. The endpoint is probably not valid etcd \
                 cluster endpoint"
            ),
            ClientError::BadIndexHeader { found } => {
                write!(f, "strconv.ParseUint: parsing {:?}: invalid syntax", found)
            }
            ClientError::UnexpectedStatus { found } => {
                write!(f, "unexpected status code {}", found)
            }
            ClientError::Message { message } => write!(f, "{}", message),
            ClientError::Decode { reason } => write!(f, "{}", reason),
            ClientError::Invalid { reason } => write!(f, "{}", reason),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The extra lines etcdctl prints after a cluster error (`error #0: …`).
    pub fn detail(&self) -> Option<String> {
        match self {
            ClientError::Cluster { errors } => Some(
                errors
                    .iter()
                    .enumerate()
                    .map(|(i, e)| format!("error #{}: {}\n", i, e))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// etcdctl's `isConnectionError`: every attempt failed to reach its endpoint, or the
    /// deadline passed.
    pub fn is_connection_error(&self) -> bool {
        match self {
            ClientError::Cluster { errors } => errors.iter().all(AttemptError::is_connection_error),
            ClientError::Attempt(error) => error.is_connection_error(),
            ClientError::DeadlineExceeded => true,
            _ => false,
        }
    }
}

/// A node as etcd's Go client decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Node {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub dir: bool,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub nodes: Option<Vec<Node>>,
    #[serde(rename = "createdIndex", default)]
    pub created_index: u64,
    #[serde(rename = "modifiedIndex", default)]
    pub modified_index: u64,
    /// RFC 3339 text as the server sent it.
    #[serde(default)]
    pub expiration: Option<String>,
    #[serde(default)]
    pub ttl: i64,
}

/// A decoded `/v2/keys` success response plus its headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysResponse {
    pub action: String,
    pub node: Option<Node>,
    pub prev_node: Option<Node>,
    /// `X-Etcd-Index`, 0 when absent.
    pub index: u64,
    /// `X-Etcd-Cluster-Id`, empty when absent.
    pub cluster_id: String,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    action: String,
    #[serde(default)]
    node: Option<Node>,
    #[serde(rename = "prevNode", default)]
    prev_node: Option<Node>,
}

/// Decodes a `/v2/keys` reply the way the Go client does.
pub fn decode_keys_response(response: &Response) -> Result<KeysResponse, ClientError> {
    match response.status {
        200 | 201 => {
            if response.body.is_empty() {
                return Err(ClientError::EmptyBody);
            }
            let wire: WireResponse =
                serde_json::from_slice(&response.body).map_err(|_| ClientError::InvalidJson)?;
            let index = match response.header("X-Etcd-Index") {
                Some(text) if !text.is_empty() => {
                    text.parse::<u64>()
                        .map_err(|_| ClientError::BadIndexHeader {
                            found: text.to_string(),
                        })?
                }
                _ => 0,
            };
            Ok(KeysResponse {
                action: wire.action,
                node: wire.node,
                prev_node: wire.prev_node,
                index,
                cluster_id: response
                    .header("X-Etcd-Cluster-Id")
                    .unwrap_or("")
                    .to_string(),
            })
        }
        _ => match serde_json::from_slice::<V2Error>(&response.body) {
            Ok(error) => Err(ClientError::V2(error)),
            Err(_) => Err(ClientError::InvalidJson),
        },
    }
}

/// Go's `strconv.Quote` for the `-d "<body>"` part of a `cURL Command:` line.
pub fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `path.Clean` followed by etcd's "keep the trailing slash" rule
/// (`pkg/pathutil.CanonicalURLPath`).
pub fn canonical_url_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let rooted = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{}", path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rooted.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if rooted.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Go's `path.Join(base, elem)` for the members URLs.
fn join_path(base: &str, elem: &str) -> String {
    let joined = format!("{}/{}", base, elem);
    let cleaned = canonical_url_path(&joined);
    match cleaned.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// What a request does; turned into a [`Request`] per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `GET /v2/keys/<key>?quorum=&recursive=&sorted=`
    Get {
        key: String,
        recursive: bool,
        sorted: bool,
        quorum: bool,
    },
    /// `GET /v2/keys/<key>?recursive=&wait=true&waitIndex=`
    Wait {
        key: String,
        wait_index: u64,
        recursive: bool,
    },
    /// `PUT /v2/keys/<key>` with a form body.
    Set {
        key: String,
        value: String,
        prev_value: String,
        prev_index: u64,
        /// `None`: no `prevExist`; `Some(b)`: `prevExist=b`.
        prev_exist: Option<bool>,
        ttl_seconds: u64,
        dir: bool,
    },
    /// `DELETE /v2/keys/<key>`.
    Delete {
        key: String,
        prev_value: String,
        prev_index: u64,
        dir: bool,
        recursive: bool,
    },
    /// `POST /v2/keys/<dir>` with a form body.
    CreateInOrder {
        dir: String,
        value: String,
        ttl_seconds: u64,
    },
    /// `GET /v2/members`.
    MembersList,
    /// `GET /v2/members/leader`.
    MembersLeader,
    /// `POST /v2/members` with `{"peerURLs":[…]}`.
    MembersAdd { peer_urls: Vec<String> },
    /// `PUT /v2/members/<id>` with `{"peerURLs":[…]}`.
    MembersUpdate { id: String, peer_urls: Vec<String> },
    /// `DELETE /v2/members/<id>`.
    MembersRemove { id: String },
}

fn bool_text(value: bool) -> String {
    if value { "true" } else { "false" }.to_string()
}

fn keys_url(endpoint: &Url, key: &str) -> Url {
    let mut url = endpoint.clone();
    let key = if !key.is_empty() && !key.starts_with('/') {
        format!("/{}", key)
    } else {
        key.to_string()
    };
    url.path = canonical_url_path(&format!("{}/v2/keys{}", endpoint.path, key));
    url
}

fn query(pairs: &[(&str, String)]) -> String {
    encode_form(pairs)
}

fn members_body(peer_urls: &[String]) -> Vec<u8> {
    let quoted: Vec<String> = peer_urls
        .iter()
        .map(|u| serde_json::to_string(u).unwrap_or_else(|_| "\"\"".to_string()))
        .collect();
    format!("{{\"peerURLs\":[{}]}}", quoted.join(",")).into_bytes()
}

impl Action {
    /// Is this the one-shot kind (not retried on another endpoint)?
    pub fn is_one_shot(&self) -> bool {
        matches!(
            self,
            Action::Set {
                prev_exist: Some(false),
                ..
            } | Action::Delete { .. }
        )
    }

    /// Is this a long poll (no header timeout, no total deadline)?
    pub fn is_wait(&self) -> bool {
        matches!(self, Action::Wait { .. })
    }

    /// The request for one endpoint.
    pub fn request(&self, endpoint: &Url) -> Request {
        let form_header = || {
            vec![(
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            )]
        };
        let json_header = || vec![("Content-Type".to_string(), "application/json".to_string())];
        match self {
            Action::Get {
                key,
                recursive,
                sorted,
                quorum,
            } => {
                let mut url = keys_url(endpoint, key);
                url.raw_query = query(&[
                    ("recursive", bool_text(*recursive)),
                    ("sorted", bool_text(*sorted)),
                    ("quorum", bool_text(*quorum)),
                ]);
                Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::Wait {
                key,
                wait_index,
                recursive,
            } => {
                let mut url = keys_url(endpoint, key);
                url.raw_query = query(&[
                    ("wait", "true".to_string()),
                    ("waitIndex", wait_index.to_string()),
                    ("recursive", bool_text(*recursive)),
                ]);
                Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::Set {
                key,
                value,
                prev_value,
                prev_index,
                prev_exist,
                ttl_seconds,
                dir,
            } => {
                let mut url = keys_url(endpoint, key);
                let mut params = Vec::new();
                let mut form = Vec::new();
                if *dir {
                    params.push(("dir", "true".to_string()));
                } else {
                    if !prev_value.is_empty() {
                        params.push(("prevValue", prev_value.clone()));
                    }
                    form.push(("value", value.clone()));
                }
                if *prev_index != 0 {
                    params.push(("prevIndex", prev_index.to_string()));
                }
                if let Some(exist) = prev_exist {
                    params.push(("prevExist", bool_text(*exist)));
                }
                if *ttl_seconds > 0 {
                    form.push(("ttl", ttl_seconds.to_string()));
                }
                url.raw_query = query(&params);
                Request {
                    method: "PUT".into(),
                    url,
                    headers: form_header(),
                    body: Some(encode_form(&form).into_bytes()),
                }
            }
            Action::Delete {
                key,
                prev_value,
                prev_index,
                dir,
                recursive,
            } => {
                let mut url = keys_url(endpoint, key);
                let mut params = Vec::new();
                if !prev_value.is_empty() {
                    params.push(("prevValue", prev_value.clone()));
                }
                if *prev_index != 0 {
                    params.push(("prevIndex", prev_index.to_string()));
                }
                if *dir {
                    params.push(("dir", "true".to_string()));
                }
                if *recursive {
                    params.push(("recursive", "true".to_string()));
                }
                url.raw_query = query(&params);
                Request {
                    method: "DELETE".into(),
                    url,
                    headers: form_header(),
                    body: None,
                }
            }
            Action::CreateInOrder {
                dir,
                value,
                ttl_seconds,
            } => {
                let url = keys_url(endpoint, dir);
                let mut form = vec![("value", value.clone())];
                if *ttl_seconds > 0 {
                    form.push(("ttl", ttl_seconds.to_string()));
                }
                Request {
                    method: "POST".into(),
                    url,
                    headers: form_header(),
                    body: Some(encode_form(&form).into_bytes()),
                }
            }
            Action::MembersList | Action::MembersLeader | Action::MembersRemove { .. } => {
                let mut url = endpoint.clone();
                url.raw_query = String::new();
                url.path = join_path(&endpoint.path, "/v2/members");
                let method = match self {
                    Action::MembersLeader => {
                        url.path = join_path(&url.path, "leader");
                        "GET"
                    }
                    Action::MembersRemove { id } => {
                        url.path = join_path(&url.path, id);
                        "DELETE"
                    }
                    _ => "GET",
                };
                Request {
                    method: method.into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::MembersAdd { peer_urls } | Action::MembersUpdate { peer_urls, .. } => {
                let mut url = endpoint.clone();
                url.raw_query = String::new();
                url.path = join_path(&endpoint.path, "/v2/members");
                let method = if let Action::MembersUpdate { id, .. } = self {
                    url.path = join_path(&url.path, id);
                    "PUT"
                } else {
                    "POST"
                };
                Request {
                    method: method.into(),
                    url,
                    headers: json_header(),
                    body: Some(members_body(peer_urls)),
                }
            }
        }
    }
}

/// The `cURL Command:` line etcdctl's `--debug` prints for a request.
pub fn curl_line(request: &Request) -> String {
    let mut line = format!("cURL Command: curl -X {} {}", request.method, request.url);
    if let Some(body) = &request.body {
        line.push_str(&format!(" -d {}", go_quote(&String::from_utf8_lossy(body))));
    }
    line
}

/// Settings of a [`ClusterClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Per-request header timeout; zero disables it.
    pub header_timeout: Duration,
    /// Longest TCP connect.
    pub dial_timeout: Duration,
    /// Print `cURL Command:` lines on stderr.
    pub debug: bool,
    /// `(user, password)` for basic auth.
    pub credentials: Option<(String, String)>,
}

/// A client over a list of endpoints with etcd's pinning and failover.
#[derive(Debug)]
pub struct ClusterClient {
    http: HttpClient,
    /// Invariant: `pinned < endpoints.len()` whenever `endpoints` is not empty.
    endpoints: Vec<Url>,
    pinned: usize,
    config: ClientConfig,
    /// xorshift state for endpoint shuffling (spreads load like etcd's client).
    shuffle_state: u64,
}

impl ClusterClient {
    /// Parses the endpoint URLs (an error is the Go parse error text) and shuffles them.
    pub fn new(endpoints: &[String], config: ClientConfig) -> Result<ClusterClient, HttpError> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(1)
            | 1;
        let mut client = ClusterClient {
            http: HttpClient::new(Some(config.dial_timeout)),
            endpoints: Vec::new(),
            pinned: 0,
            config,
            shuffle_state: seed,
        };
        let parsed = endpoints
            .iter()
            .map(|e| Url::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        client.set_endpoints(parsed);
        Ok(client)
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.shuffle_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.shuffle_state = x;
        x
    }

    fn set_endpoints(&mut self, mut endpoints: Vec<Url>) {
        for i in (1..endpoints.len()).rev() {
            let j = (self.next_random() % (i as u64 + 1)) as usize;
            endpoints.swap(i, j);
        }
        self.endpoints = endpoints;
        self.pinned = 0;
    }

    /// Turns the `cURL Command:` lines on stderr on or off.
    pub fn set_debug(&mut self, debug: bool) {
        self.config.debug = debug;
    }

    /// The current endpoints, as strings, in try order from the start of the list.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.to_string()).collect()
    }

    /// Sends `action` to the endpoints in turn, like etcd's `httpClusterClient.Do`.
    pub fn execute(
        &mut self,
        action: &Action,
        deadline: Option<Instant>,
    ) -> Result<Response, ClientError> {
        if self.endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let count = self.endpoints.len();
        let one_shot = action.is_one_shot();
        let mut errors: Vec<AttemptError> = Vec::new();
        for i in self.pinned..self.pinned + count {
            let k = i % count;
            let endpoint = self.endpoints[k].clone();
            let failure = match self.attempt(action, &endpoint, deadline) {
                Ok(response) if response.status / 100 == 5 => {
                    let attempt = match response.status {
                        500 | 503 => AttemptError::NoLeader {
                            endpoint: endpoint.to_string(),
                        },
                        status => AttemptError::ServerError {
                            endpoint: endpoint.to_string(),
                            status_text: status_text(status).to_string(),
                        },
                    };
                    errors.push(attempt);
                    errors[0].clone()
                }
                Ok(response) => {
                    self.pinned = k;
                    return Ok(response);
                }
                Err(AttemptOutcome::Deadline) => return Err(ClientError::DeadlineExceeded),
                Err(AttemptOutcome::Failed(attempt)) => {
                    errors.push(attempt.clone());
                    attempt
                }
            };
            if one_shot {
                self.pinned = (k + 1) % count;
                return Err(ClientError::Attempt(failure));
            }
        }
        Err(ClientError::Cluster { errors })
    }

    fn attempt(
        &mut self,
        action: &Action,
        endpoint: &Url,
        deadline: Option<Instant>,
    ) -> Result<Response, AttemptOutcome> {
        let (deadline, header_timeout) = if action.is_wait() {
            (None, None)
        } else {
            let header = (!self.config.header_timeout.is_zero())
                .then(|| Instant::now() + self.config.header_timeout);
            (deadline, header)
        };
        let headers_deadline = match (header_timeout, deadline) {
            (Some(h), Some(d)) => Some(h.min(d)),
            (h, d) => h.or(d),
        };
        let mut request = action.request(endpoint);
        if let Some((user, password)) = &self.config.credentials {
            request.headers.push((
                "Authorization".to_string(),
                format!(
                    "Basic {}",
                    base64(format!("{}:{}", user, password).as_bytes())
                ),
            ));
        }
        for _hop in 0..=MAX_REDIRECTS {
            if self.config.debug {
                eprintln!("{}", curl_line(&request));
            }
            let deadlines = Deadlines {
                headers: headers_deadline,
                body: deadline,
            };
            let response = match self.http.send(&request, deadlines) {
                Ok(response) => response,
                Err(HttpError::Timeout { phase, addr }) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(AttemptOutcome::Deadline);
                    }
                    if phase == "body" {
                        return Err(AttemptOutcome::Failed(AttemptError::Http(
                            HttpError::Timeout { phase, addr },
                        )));
                    }
                    return Err(AttemptOutcome::Failed(AttemptError::HeaderTimeout {
                        endpoint: endpoint.to_string(),
                    }));
                }
                Err(other) => return Err(AttemptOutcome::Failed(AttemptError::Http(other))),
            };
            if response.status / 100 != 3 {
                return Ok(response);
            }
            let location =
                response
                    .header("Location")
                    .ok_or(AttemptOutcome::Failed(AttemptError::Http(
                        HttpError::MissingLocation,
                    )))?;
            request.url = request
                .url
                .join(location)
                .map_err(|e| AttemptOutcome::Failed(AttemptError::Http(e)))?;
        }
        Err(AttemptOutcome::Failed(AttemptError::Http(
            HttpError::TooManyRedirects {
                limit: MAX_REDIRECTS,
            },
        )))
    }

    /// Replaces the endpoint list with the members' client URLs (etcd's `Sync`).
    pub fn sync(&mut self, deadline: Option<Instant>) -> Result<(), ClientError> {
        let members = super::members::list(self, deadline)?;
        let urls: Vec<String> = members.iter().flat_map(|m| m.client_urls.clone()).collect();
        if urls.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let parsed = urls
            .iter()
            .map(|u| Url::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Invalid {
                reason: e.to_string(),
            })?;
        let mut current = self.endpoints();
        let mut fresh: Vec<String> = parsed.iter().map(|u| u.to_string()).collect();
        current.sort();
        fresh.sort();
        if current == fresh {
            return Ok(());
        }
        self.set_endpoints(parsed);
        Ok(())
    }

    /// Sends a keys action and decodes the reply.
    pub fn keys(
        &mut self,
        action: &Action,
        deadline: Option<Instant>,
    ) -> Result<KeysResponse, ClientError> {
        let response = self.execute(action, deadline)?;
        decode_keys_response(&response)
    }

    /// Waits for the next event after `*wait_index - 1` and advances `*wait_index` past it,
    /// re-issuing the long poll on empty bodies (etcd's `httpWatcher.Next`).
    pub fn next_event(
        &mut self,
        key: &str,
        recursive: bool,
        wait_index: &mut u64,
    ) -> Result<KeysResponse, ClientError> {
        loop {
            let action = Action::Wait {
                key: key.to_string(),
                wait_index: *wait_index,
                recursive,
            };
            match self.keys(&action, None) {
                Err(ClientError::EmptyBody) => continue,
                Err(other) => return Err(other),
                Ok(event) => {
                    let node = event.node.as_ref().ok_or(ClientError::InvalidJson)?;
                    *wait_index = node.modified_index + 1;
                    return Ok(event);
                }
            }
        }
    }
}

enum AttemptOutcome {
    Deadline,
    Failed(AttemptError),
}

/// Standard reason phrase for a status code (Go's `http.StatusText`).
pub fn status_text(status: u16) -> &'static str {
    match status {
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Standard base64 (for the basic-auth header).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Query-escapes a single value (exposed for callers composing URLs by hand).
pub fn escape(value: &str) -> String {
    encode_query_component(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Url {
        Url::parse("http://127.0.0.1:2379").unwrap()
    }

    fn set(key: &str, value: &str) -> Action {
        set_full(key, value, "", None, 0, false)
    }

    fn set_full(
        key: &str,
        value: &str,
        prev_value: &str,
        prev_exist: Option<bool>,
        ttl_seconds: u64,
        dir: bool,
    ) -> Action {
        Action::Set {
            key: key.into(),
            value: value.into(),
            prev_value: prev_value.into(),
            prev_index: 0,
            prev_exist,
            ttl_seconds,
            dir,
        }
    }

    #[test]
    fn wire_requests_match_etcdctl_debug_lines() {
        let ep = endpoint();
        assert_eq!(
            curl_line(&set("/a/b", "hello").request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/a/b -d \"value=hello\""
        );
        let swap = set_full("/a/b", "x y&z", "hello", None, 5, false);
        assert_eq!(
            curl_line(&swap.request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/a/b?prevValue=hello \
             -d \"ttl=5&value=x+y%26z\""
        );
        let mkdir = set_full("/d", "", "", Some(false), 0, true);
        assert_eq!(
            curl_line(&mkdir.request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/d?dir=true&prevExist=false \
             -d \"\""
        );
        let ls = Action::Get {
            key: "/".into(),
            recursive: true,
            sorted: true,
            quorum: false,
        };
        assert_eq!(
            curl_line(&ls.request(&ep)),
            "cURL Command: curl -X GET \
             http://127.0.0.1:2379/v2/keys/?quorum=false&recursive=true&sorted=true"
        );
        let rm = Action::Delete {
            key: "a b?".into(),
            prev_value: String::new(),
            prev_index: 3,
            dir: false,
            recursive: true,
        };
        assert_eq!(
            curl_line(&rm.request(&ep)),
            "cURL Command: curl -X DELETE \
             http://127.0.0.1:2379/v2/keys/a%20b%3F?prevIndex=3&recursive=true"
        );
        let watch = Action::Wait {
            key: "/w".into(),
            wait_index: 0,
            recursive: false,
        };
        assert_eq!(
            watch.request(&ep).url.to_string(),
            "http://127.0.0.1:2379/v2/keys/w?recursive=false&wait=true&waitIndex=0"
        );
        assert_eq!(
            Action::MembersLeader.request(&ep).url.to_string(),
            "http://127.0.0.1:2379/v2/members/leader"
        );
        let add = Action::MembersAdd {
            peer_urls: vec!["http://127.0.0.1:2381".into()],
        };
        assert_eq!(
            curl_line(&add.request(&ep)),
            "cURL Command: curl -X POST http://127.0.0.1:2379/v2/members \
             -d \"{\\\"peerURLs\\\":[\\\"http://127.0.0.1:2381\\\"]}\""
        );
    }

    #[test]
    fn one_shot_and_wait_classification() {
        assert!(!set("/a", "b").is_one_shot());
        assert!(set_full("/a", "b", "", Some(false), 0, false).is_one_shot());
        assert!(Action::Delete {
            key: "/a".into(),
            prev_value: String::new(),
            prev_index: 0,
            dir: false,
            recursive: false
        }
        .is_one_shot());
    }

    #[test]
    fn canonical_paths_keep_trailing_slash() {
        assert_eq!(canonical_url_path("/v2/keys//a/../b/"), "/v2/keys/b/");
        assert_eq!(canonical_url_path("/v2/keys/"), "/v2/keys/");
        assert_eq!(canonical_url_path(""), "/");
        assert_eq!(join_path("/", "/v2/members"), "/v2/members");
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn decodes_success_and_error_bodies() {
        let ok = response(
            201,
            &[("X-Etcd-Index", "7"), ("X-Etcd-Cluster-Id", "abc")],
            r#"{"action":"set","node":{"key":"/a","value":"b","modifiedIndex":7,"createdIndex":7}}"#,
        );
        let decoded = decode_keys_response(&ok).unwrap();
        assert_eq!(decoded.index, 7);
        assert_eq!(decoded.node.unwrap().value, "b");
        let error = response(
            404,
            &[],
            r#"{"errorCode":100,"message":"Key not found","cause":"/nokey","index":6}"#,
        );
        assert_eq!(
            decode_keys_response(&error).unwrap_err().to_string(),
            "100: Key not found (/nokey) [6]"
        );
        let garbage = response(404, &[], "404 page not found\n");
        assert_eq!(
            decode_keys_response(&garbage).unwrap_err(),
            ClientError::InvalidJson
        );
        assert_eq!(
            decode_keys_response(&response(200, &[], "")).unwrap_err(),
            ClientError::EmptyBody
        );
    }

    #[test]
    fn cluster_error_text_matches_etcdctl() {
        let error = ClientError::Cluster {
            errors: vec![
                AttemptError::NoLeader {
                    endpoint: "http://a:1".into(),
                },
                AttemptError::HeaderTimeout {
                    endpoint: "http://b:2".into(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "client: etcd cluster is unavailable or misconfigured; error #0: client: etcd member \
             http://a:1 has no leader\n; error #1: client: endpoint http://b:2 exceeded header \
             timeout\n"
        );
        assert_eq!(
            error.detail().unwrap(),
            "error #0: client: etcd member http://a:1 has no leader\nerror #1: client: endpoint \
             http://b:2 exceeded header timeout\n"
        );
        assert!(!error.is_connection_error());
    }

    #[test]
    fn base64_and_quote() {
        assert_eq!(base64(b"root:pw"), "cm9vdDpwdw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(go_quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\x01\"");
    }
}
