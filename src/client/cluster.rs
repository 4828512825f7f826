//! The v2 cluster client: an endpoint list with etcd's pinning and failover, endpoint sync
//! from `/v2/members`, per-request header timeouts and the whole-command deadline, redirect
//! following, basic auth, and the watch loop.
//!
//! Rules (etcd's Go client, embedded in etcdctl): one request is tried on each endpoint in
//! turn starting at the pinned one; 500/503 mean "has no leader", other 5xx "returns server
//! error"; create (`prevExist=false`) and delete are one-shot and are not retried elsewhere;
//! 3xx responses are followed; neither timeout applies to `wait=true`.

use std::time::{Duration, Instant};

use super::errors::{AttemptError, ClientError};
use super::http::{Deadlines, HttpClient, HttpError, Response, Url, MAX_REDIRECTS};
use super::keys::{curl_line, decode_keys_response, Action, KeysResponse};

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
    /// Tried in order starting at `pinned`, wrapping around.
    endpoints: Vec<Url>,
    /// The endpoint that answered last. Invariant: `pinned < endpoints.len()` whenever
    /// `endpoints` is not empty.
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
        let wait = action.is_wait();
        let deadline = if wait { None } else { deadline };
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
            // Each hop gets its own header timeout, capped by the command's deadline.
            let header_timeout = (!wait && !self.config.header_timeout.is_zero())
                .then(|| Instant::now() + self.config.header_timeout);
            let deadlines = Deadlines {
                headers: match (header_timeout, deadline) {
                    (Some(h), Some(d)) => Some(h.min(d)),
                    (h, d) => h.or(d),
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a free port answering every request with the next canned response;
    /// returns its URL and a handle yielding the request lines it saw.
    fn scripted_server(
        responses: Vec<(&'static str, &'static str)>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in responses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut content_length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        content_length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut request_body = vec![0; content_length];
                std::io::Read::read_exact(&mut reader, &mut request_body).unwrap();
                seen.push(request_line.trim_end().to_string());
                let mut stream = stream;
                let reply = format!(
                    "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    status,
                    body.len(),
                    body
                );
                stream.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (url, handle)
    }

    fn client_for(endpoints: &[String]) -> ClusterClient {
        let config = ClientConfig {
            header_timeout: Duration::from_secs(2),
            dial_timeout: Duration::from_secs(2),
            debug: false,
            credentials: None,
        };
        let mut client = ClusterClient::new(endpoints, config).unwrap();
        // Fixed order for the test: undo the shuffle.
        client.endpoints = endpoints.iter().map(|e| Url::parse(e).unwrap()).collect();
        client
    }

    const NOT_FOUND: (&str, &str) = (
        "404 Not Found",
        "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/k\",\"index\":3}",
    );
    const NO_LEADER: (&str, &str) = ("503 Service Unavailable", "");

    #[test]
    fn a_5xx_endpoint_is_skipped_and_the_next_one_pinned() {
        let (first, first_seen) = scripted_server(vec![NO_LEADER]);
        let (second, second_seen) = scripted_server(vec![NOT_FOUND, NOT_FOUND]);
        let mut client = client_for(&[first.clone(), second]);
        let get = Action::Get {
            key: "/k".into(),
            recursive: false,
            sorted: false,
            quorum: false,
        };
        let error = client.keys(&get, None).unwrap_err();
        assert_eq!(error.to_string(), "100: Key not found (/k) [3]");
        assert_eq!(client.pinned, 1, "the endpoint that answered is pinned");
        // The next request goes straight to the pinned endpoint.
        assert!(matches!(client.keys(&get, None), Err(ClientError::V2(_))));
        assert_eq!(first_seen.join().unwrap().len(), 1);
        assert_eq!(
            second_seen.join().unwrap(),
            vec![
                "GET /v2/keys/k?quorum=false&recursive=false&sorted=false HTTP/1.1".to_string(),
                "GET /v2/keys/k?quorum=false&recursive=false&sorted=false HTTP/1.1".to_string()
            ]
        );
    }

    #[test]
    fn one_shot_requests_are_not_retried_elsewhere() {
        let (first, first_seen) = scripted_server(vec![NO_LEADER]);
        let (second, _second_seen) = scripted_server(vec![]);
        let mut client = client_for(&[first.clone(), second]);
        let delete = Action::Delete {
            key: "/k".into(),
            prev_value: String::new(),
            prev_index: 0,
            dir: false,
            recursive: false,
        };
        let error = client.keys(&delete, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("client: etcd member {} has no leader", first)
        );
        assert_eq!(
            client.pinned, 1,
            "a failed one-shot moves the pin past the endpoint"
        );
        assert_eq!(
            first_seen.join().unwrap(),
            vec!["DELETE /v2/keys/k HTTP/1.1".to_string()]
        );
    }

    #[test]
    fn sync_replaces_endpoints_with_client_urls() {
        let (server, seen) = scripted_server(vec![(
            "200 OK",
            "{\"members\":[{\"id\":\"a\",\"name\":\"n1\",\"peerURLs\":[],\"clientURLs\":\
             [\"http://127.0.0.1:1\",\"http://127.0.0.1:2\"]},{\"id\":\"b\",\"name\":\"\",\
             \"peerURLs\":[],\"clientURLs\":[]}]}",
        )]);
        let mut client = client_for(std::slice::from_ref(&server));
        client.sync(None).unwrap();
        let mut endpoints = client.endpoints();
        endpoints.sort();
        assert_eq!(endpoints, vec!["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        assert_eq!(
            seen.join().unwrap(),
            vec!["GET /v2/members HTTP/1.1".to_string()]
        );
    }

    #[test]
    fn unreachable_endpoints_make_a_connection_cluster_error() {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let mut client = client_for(std::slice::from_ref(&dead));
        let error = client.sync(None).unwrap_err();
        assert!(error.is_connection_error(), "{:?}", error);
        assert_eq!(
            error.detail().unwrap(),
            format!(
                "error #0: dial tcp {}: connect: connection refused\n",
                dead.trim_start_matches("http://")
            )
        );
    }
    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b"root:pw"), "cm9vdDpwdw==");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
