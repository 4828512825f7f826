//! Proxy mode (`--proxy on`, as etcd v2 calls it): a member that joins no quorum and forwards
//! client requests to the cluster, so application hosts can talk to localhost.
//!
//! The proxy learns the cluster's client URLs by asking the peers named in
//! `--initial-cluster` for `GET /members` on their peer port (etcd's peer API, which raftkv's
//! peer listener also answers), at start and every [`REFRESH_INTERVAL`]. Each request is sent
//! to one member, then the next on a connection failure; answers are passed back unchanged.
//! Watches and other chunked answers are streamed through as they arrive, each on a thread of
//! its own (it holds a connection to a member for as long as the watch lasts), so a parked
//! watch holds no worker; at most `--max-parked-watches` are streamed at once, and a watch
//! beyond that is answered 503. A connection's requests are forwarded one after another, in
//! the order they came, as a member runs them ([`super::sequencer`]): a GET pipelined behind a
//! PUT reaches a member only once the PUT is answered. `--proxy readonly` refuses every
//! method but GET and HEAD with 501.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tiny_http::{Header, Request, Response};

use crate::api::form::unescape;
use crate::api::http::{http_date, status_text};
use crate::api::render::message_json;
use crate::api::server::TurnGuard;
use crate::api::thread_quota::{Refused, ThreadQuota};
use crate::client::http::{Deadlines, HttpClient, Request as OutRequest, Url};
use crate::node::config::{host_port, Config};

/// How often the member list is refreshed.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How long a forwarded non-watch request may take to answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY_BYTES: u64 = 10 << 20;
/// Workers a proxy starts at least, whatever `--max-client-workers` says: a forwarded request
/// holds its worker until the member answers.
const PROXY_MIN_WORKERS: usize = 64;

/// A running proxy.
pub struct Proxy {
    /// Client URLs of the cluster's members, as last learned.
    endpoints: RwLock<Vec<String>>,
    peer_urls: Vec<String>,
    readonly: bool,
    next: AtomicUsize,
    /// Set by tests that name the members themselves: the refresher leaves the list alone.
    pinned: std::sync::atomic::AtomicBool,
    /// Threads streaming chunked answers (watches) through, one each, at most
    /// `--max-parked-watches`.
    streams: ThreadQuota,
    pub local_addr: std::net::SocketAddr,
}

/// Stack of a thread that streams a watch through (it only copies bytes).
const STREAM_STACK_BYTES: usize = 256 << 10;

/// Fetches the members' client URLs from any peer that answers.
pub fn discover_client_urls(peer_urls: &[String]) -> Option<Vec<String>> {
    for peer in peer_urls {
        let Ok(mut url) = Url::parse(peer) else {
            continue;
        };
        url.path = "/members".to_string();
        let request = OutRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: None,
        };
        let deadline = Some(Instant::now() + Duration::from_secs(2));
        let mut client = HttpClient::new(Some(Duration::from_secs(1)));
        let Ok(response) = client.send(
            &request,
            Deadlines {
                headers: deadline,
                body: deadline,
            },
        ) else {
            continue;
        };
        if response.status != 200 {
            continue;
        }
        let Ok(members) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
            continue;
        };
        let mut urls: Vec<String> = members
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["clientURLs"].as_array().cloned().unwrap_or_default())
            .filter_map(|u| u.as_str().map(String::from))
            .collect();
        urls.sort();
        urls.dedup();
        if !urls.is_empty() {
            return Some(urls);
        }
    }
    None
}

/// Starts a proxy on each `--listen-client-urls` address.
pub fn start(config: &Config) -> Result<Arc<Proxy>, String> {
    let listen = config
        .listen_client_urls
        .first()
        .cloned()
        .unwrap_or_default();
    let address =
        host_port(&listen).ok_or_else(|| format!("bad --listen-client-urls {listen:?}"))?;
    let server = crate::api::server::http_server(&address)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let local_addr = server.server_addr().to_ip().ok_or("not an IP listener")?;
    let peer_urls: Vec<String> = config
        .initial_cluster
        .iter()
        .map(|(_, url)| url.clone())
        .collect();
    let proxy = Arc::new(Proxy {
        endpoints: RwLock::new(discover_client_urls(&peer_urls).unwrap_or_default()),
        peer_urls,
        readonly: config.proxy == "readonly",
        next: AtomicUsize::new(0),
        pinned: std::sync::atomic::AtomicBool::new(false),
        streams: ThreadQuota::new(
            "proxy-stream".into(),
            config.max_parked_watches,
            Some(STREAM_STACK_BYTES),
        ),
        local_addr,
    });
    let refresher = Arc::downgrade(&proxy);
    std::thread::Builder::new()
        .name("proxy-refresh".into())
        .spawn(move || loop {
            let Some(proxy) = refresher.upgrade() else {
                return;
            };
            let empty = proxy.endpoints.read().is_empty();
            if !proxy.pinned.load(Ordering::SeqCst) {
                if let Some(urls) = discover_client_urls(&proxy.peer_urls) {
                    // Checked again under the lock set_endpoints_for_test takes.
                    let mut endpoints = proxy.endpoints.write();
                    if !proxy.pinned.load(Ordering::SeqCst) {
                        *endpoints = urls;
                    }
                }
            }
            drop(proxy);
            std::thread::sleep(if empty {
                Duration::from_secs(1)
            } else {
                REFRESH_INTERVAL
            });
        })
        .map_err(|e| e.to_string())?;
    let server = Arc::new(server);
    // A connection's requests are forwarded one after another, as a member runs them
    // ([`super::sequencer`]): a GET pipelined behind a PUT must not reach a member first. Each
    // forwarded request holds its worker for the round trip to the member.
    // The proxy forwards a request's body to a member, so it accepts what a member accepts.
    let forwarder = proxy.clone();
    crate::api::server::serve_in_order(
        &server,
        local_addr,
        config.max_client_workers.max(PROXY_MIN_WORKERS),
        "proxy",
        MAX_BODY_BYTES as usize,
        |_: &Request| {
            let body = message_json("proxy: request body too large");
            format!(
                "HTTP/1.1 413 {}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                status_text(413),
                body.len()
            )
            .into_bytes()
        },
        move |request, turn| forwarder.forward(request, turn),
    );
    Ok(proxy)
}

fn reply(request: Request, status: u16, content_type: &str, body: String) {
    let header = Header::from_bytes("Content-Type", content_type).expect("static header");
    let _ = request.respond(
        Response::from_string(body)
            .with_status_code(status)
            .with_header(header),
    );
}

/// Headers that describe one hop, not the message.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "upgrade",
        "te",
        "trailer",
    ]
    .contains(&name.to_ascii_lowercase().as_str())
}

impl Proxy {
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.read().clone()
    }

    /// Replaces the member list for good (tests whose members advertise unreachable URLs;
    /// the refresher would otherwise put those back, at once or every 30 s).
    #[doc(hidden)]
    pub fn set_endpoints_for_test(&self, endpoints: Vec<String>) {
        let mut current = self.endpoints.write();
        self.pinned.store(true, Ordering::SeqCst);
        *current = endpoints;
    }

    /// Forwards `request` in its connection's `turn`, which ends when the answer is written
    /// (for a streamed answer, when the stream ends).
    fn forward(&self, mut request: Request, turn: TurnGuard) {
        let method = request.method().as_str().to_string();
        if self.readonly && !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            return reply(
                request,
                501,
                "application/json",
                message_json("Not Implemented"),
            );
        }
        let target = request.url().to_string();
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
        let Ok(path) = unescape(raw_path.as_bytes(), false) else {
            return reply(
                request,
                400,
                "text/plain; charset=utf-8",
                "400 Bad Request".into(),
            );
        };
        let mut body = Vec::new();
        if request.body_length().unwrap_or(0) > 0 || matches!(method.as_str(), "PUT" | "POST") {
            // A body cut short must not be forwarded as if whole: the member would apply it.
            match crate::api::request_body::read_whole_body(
                &mut request,
                MAX_BODY_BYTES as usize - 1,
            ) {
                Ok(whole) => body = whole,
                Err(error) => {
                    let message = format!("httpproxy: failed to read request body: {error}");
                    return reply(
                        request,
                        500,
                        "application/json",
                        crate::api::render::message_json(&message),
                    );
                }
            }
        }
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter(|h| !hop_by_hop(h.field.as_str().as_str()) && !h.field.equiv("Host"))
            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
            .collect();
        let is_watch = raw_query
            .split('&')
            .any(|pair| pair.starts_with("wait=") && pair != "wait=false");
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return reply(
                request,
                503,
                "application/json",
                message_json("proxy: no endpoints available"),
            );
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..endpoints.len() {
            let endpoint = &endpoints[(start + attempt) % endpoints.len()];
            let Ok(mut url) = Url::parse(endpoint) else {
                continue;
            };
            url.path = path.clone();
            url.raw_query = raw_query.to_string();
            let out = OutRequest {
                method: method.clone(),
                url,
                headers: headers.clone(),
                body: (!body.is_empty() || matches!(method.as_str(), "PUT" | "POST"))
                    .then(|| body.clone()),
            };
            let header_deadline = (!is_watch).then(|| Instant::now() + FORWARD_TIMEOUT);
            let mut client = HttpClient::new(Some(Duration::from_secs(2)));
            let response = match client.open(
                &out,
                Deadlines {
                    headers: header_deadline,
                    body: None,
                },
            ) {
                Ok(response) => response,
                Err(error) if error.is_connection_error() => continue,
                Err(_) => continue,
            };
            let chunked = response
                .header("Transfer-Encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            let status = response.status;
            let passed: Vec<(String, String)> = response
                .headers
                .iter()
                .filter(|(name, _)| !hop_by_hop(name))
                .cloned()
                .collect();
            if chunked && method != "HEAD" {
                return self.stream_on_own_thread(request, status, passed, response, turn);
            }
            let body_deadline = Some(Instant::now() + FORWARD_TIMEOUT);
            let Ok(full) = response.finish(&mut client, body_deadline) else {
                continue;
            };
            let mut answer = Response::from_data(full.body).with_status_code(status);
            for (name, value) in passed {
                if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                    answer.add_header(header);
                }
            }
            let _ = request.respond(answer);
            return;
        }
        reply(
            request,
            503,
            "application/json",
            message_json(&format!(
                "proxy: unable to get response from {} endpoint(s)",
                endpoints.len()
            )),
        );
    }

    /// Streams a chunked answer through on a thread of its own, or answers 503 when
    /// `--max-parked-watches` are streaming already (or no thread can be started).
    fn stream_on_own_thread(
        &self,
        request: Request,
        status: u16,
        headers: Vec<(String, String)>,
        response: crate::client::http::StreamingResponse,
        turn: TurnGuard,
    ) {
        let stream = (request, status, headers, response, turn);
        let spawned =
            self.streams
                .try_spawn(stream, |(request, status, headers, response, turn)| {
                    stream_through(request, status, headers, response);
                    drop(turn);
                });
        let Err(refused) = spawned else { return };
        let message = match &refused {
            Refused::AtLimit { max_threads, .. } => {
                format!("proxy: too many watches at once (at most {max_threads})")
            }
            Refused::CannotStart { error, .. } => {
                format!("proxy: cannot stream the watch: {error}")
            }
        };
        let (request, ..) = refused.into_payload();
        reply(request, 503, "application/json", message_json(&message));
    }
}

/// Copies a chunked answer (a watch) through as it arrives.
fn stream_through(
    request: Request,
    status: u16,
    headers: Vec<(String, String)>,
    mut response: crate::client::http::StreamingResponse,
) {
    let mut writer = request.into_writer();
    let mut head = format!("HTTP/1.1 {status} {}\r\n", status_text(status));
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Date: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        http_date(crate::node::now_unix_nanos() / 1_000_000_000)
    ));
    if writer
        .write_all(head.as_bytes())
        .and_then(|_| writer.flush())
        .is_err()
    {
        return;
    }
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match response.body.read_body(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = [format!("{n:x}\r\n").as_bytes(), &buffer[..n], b"\r\n"].concat();
                if writer
                    .write_all(&chunk)
                    .and_then(|_| writer.flush())
                    .is_err()
                {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    let _ = writer.write_all(b"0\r\n\r\n").and_then(|_| writer.flush());
}
