//! The client listener: tiny_http, a bounded pool of worker threads, and the router.
//!
//! Routing follows Go's `ServeMux` as etcd registers it: a path that is not canonical (`//`,
//! `/./`, `/../`) is redirected (301) to its cleaned form with the query kept; `OPTIONS` on any
//! path is 200 with an empty body; every reply carries the CORS headers when the origin is
//! allowed (by default: every origin).

use std::io::Write;
use std::sync::Arc;

use tiny_http::{Method, Request};

use crate::api::body_threads::{body_may_wait, MAX_BODY_THREADS};
use crate::api::form::{parse_go_bool, unescape, Form};
use crate::api::http::{cached_http_date, escape_path, mux_clean_path, status_text, Reply};
use crate::api::keys::{parse_key_request, KeyOp};
use crate::api::render::{error_json, event_json};
use crate::api::request_body::read_whole_body;
use crate::api::responders::Responders;
use crate::api::sequencer::{Admission, ConnectionSequencer, MAX_DEFERRED_PER_CONNECTION};
use crate::api::thread_quota::{Refused, ThreadQuota};
use crate::api::{auth, cluster};
use crate::node::watch::WatchSink;
use crate::node::{ids::format_id, now_unix_nanos, Completion, Node};
use crate::store::{ErrorCode, Event, V2Error, WatchStart};

/// A request's turn in its connection's order ([`super::sequencer`]).
pub(crate) type TurnGuard = crate::api::sequencer::TurnGuard<Request>;

/// Threads that run requests whose turn came after they arrived (pipelined behind another
/// request of their connection, typically a long poll).
const DEFERRED_RUNNERS: usize = 2;

/// Serves the requests `server` (listening on `local_addr`) receives, for the member and the
/// proxy alike, within the limits tiny_http leaves to its user:
/// - in their connections' order ([`super::sequencer`]): `workers` threads
///   (`{name}-worker-N`) receive requests and take their tickets under one lock, so tickets
///   follow arrival order, and run with `run` each request whose turn has come; a request
///   whose turn has not come waits with its connection, holding no thread, and
///   [`DEFERRED_RUNNERS`] threads (`{name}-in-turn-N`) run it when it comes; a connection
///   with more than [`MAX_DEFERRED_PER_CONNECTION`] requests waiting is ended;
/// - a request declaring a body beyond `max_body_bytes` + [`DRAINABLE_EXCESS_BYTES`] is
///   answered `refusal(request)` and abandoned ([`abandon`]) instead of run;
/// - a request whose body tiny_http has not read yet runs on a thread of its own, so a slow
///   upload holds no worker ([`super::body_threads`], [`super::thread_quota`]);
/// - a connection watch nudges tiny_http's pool and bounds request heads
///   ([`super::pool_nudge`], [`super::head_guard`]), asking the sequencer which connections
///   are being answered.
pub(crate) fn serve_in_order(
    server: &Arc<tiny_http::Server>,
    local_addr: std::net::SocketAddr,
    workers: usize,
    name: &str,
    max_body_bytes: usize,
    refusal: impl Fn(&Request) -> Vec<u8> + Clone + Send + 'static,
    run: impl Fn(Request, TurnGuard) + Clone + Send + 'static,
) {
    let port = local_addr.port();
    let body_threads = ThreadQuota::new(format!("{name}-body"), MAX_BODY_THREADS, None);
    let run = move |request: Request, turn: TurnGuard| {
        if declares_undrainable_body(&request, max_body_bytes) {
            let response = refusal(&request);
            abandon(request, &response, port);
            drop(turn);
        } else if body_may_wait(&request) {
            let on_thread = run.clone();
            let spawned = body_threads.try_spawn((request, turn), move |(request, turn)| {
                on_thread(request, turn)
            });
            if let Err(refused) = spawned {
                if let Refused::CannotStart { error, .. } = &refused {
                    eprintln!("raftkv: cannot start a thread for a request body: {error}");
                }
                let (request, turn) = refused.into_payload();
                run(request, turn);
            }
        } else {
            run(request, turn);
        }
    };
    let receive_lock = Arc::new(parking_lot::Mutex::new(()));
    let (ready_tx, ready) = crossbeam_channel::unbounded::<(Request, TurnGuard)>();
    let sequencer = Arc::new(ConnectionSequencer::new(ready_tx));
    for n in 0..DEFERRED_RUNNERS {
        let ready = ready.clone();
        let run = run.clone();
        std::thread::Builder::new()
            .name(format!("{name}-in-turn-{n}"))
            .spawn(move || {
                for (request, turn) in ready.iter() {
                    run(request, turn);
                }
            })
            .expect("spawning a request runner");
    }
    for n in 0..workers.max(1) {
        let server = server.clone();
        let receive_lock = receive_lock.clone();
        let sequencer = sequencer.clone();
        let run = run.clone();
        std::thread::Builder::new()
            .name(format!("{name}-worker-{n}"))
            .spawn(move || loop {
                let (request, ticket) = {
                    let _receiving = receive_lock.lock();
                    let Ok(request) = server.recv() else { break };
                    let ticket = sequencer.ticket(request.remote_addr().copied());
                    (request, ticket)
                };
                match sequencer.admit(ticket, request) {
                    Admission::Run(request, turn) => run(request, turn),
                    Admission::Deferred {
                        waiting,
                        connection,
                    } => {
                        if waiting > MAX_DEFERRED_PER_CONNECTION {
                            end_connection(port, connection, waiting);
                        }
                    }
                }
            })
            .expect("spawning a request worker");
    }
    let head_limit = super::pool_nudge::HeadLimit {
        guard: super::head_guard::HeadGuard::new(max_body_bytes as u64),
        answering: Box::new(move |client| sequencer.is_busy(client)),
    };
    super::pool_nudge::spawn_connection_watch(server, local_addr, Some(head_limit));
}

/// Ends the connection from `client` on local port `port`, which pipelined more requests
/// behind an unanswered one than the sequencer keeps (`waiting`): tiny_http reads ahead
/// without a limit, so its requests would pile up in memory. Its requests already kept are
/// answered into the closed connection, in turn, as the ones before them finish.
fn end_connection(port: u16, client: std::net::SocketAddr, waiting: usize) {
    if let Some(key) = crate::api::socket_scan::find_client_socket(port, client) {
        eprintln!(
            "raftkv: ending connection from {client}: {waiting} requests pipelined behind an unanswered one (at most {MAX_DEFERRED_PER_CONNECTION} wait)"
        );
        crate::api::head_guard::take_step(key, crate::api::head_guard::Step::Abort, port, true);
    }
}

/// A running client listener.
pub struct ClientServer {
    pub server: Arc<tiny_http::Server>,
    pub local_addr: std::net::SocketAddr,
}

/// Why the listener could not start.
#[derive(Debug)]
pub enum ServeError {
    BadListenUrl { url: String },
    Bind { address: String, reason: String },
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::BadListenUrl { url } => {
                write!(f, "cannot listen on {url:?}: expected http://host:port")
            }
            ServeError::Bind { address, reason } => {
                write!(f, "cannot listen on {address}: {reason}")
            }
        }
    }
}

/// Binds `listen_url` and starts `workers` worker threads serving it.
pub fn serve(
    node: Arc<Node>,
    listen_url: &str,
    workers: usize,
) -> Result<ClientServer, ServeError> {
    let address =
        crate::node::config::host_port(listen_url).ok_or_else(|| ServeError::BadListenUrl {
            url: listen_url.to_string(),
        })?;
    let server = http_server(&address).map_err(|e| ServeError::Bind {
        address: address.clone(),
        reason: e.to_string(),
    })?;
    let local_addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ServeError::Bind {
            address: address.clone(),
            reason: "not an IP listener".into(),
        })?;
    let server = Arc::new(server);
    node.watches.add_listener(local_addr);
    let responders = Responders::start(responder_threads(workers));
    let run_node = node.clone();
    let run = move |request: Request, turn: TurnGuard| {
        let context = Context {
            node: &run_node,
            responders: &responders,
            turn,
        };
        handle(context, request);
    };
    let refusal_node = node.clone();
    // etcd answers a body over its limit this way (and closes the connection).
    let refusal = move |request: &Request| {
        let error = V2Error::new(ErrorCode::InvalidForm, "http: POST too large", 0);
        let reply = key_error(&refusal_node, &error).header("Connection", "close");
        response_bytes(request, &reply, &Cors::for_request(&refusal_node, request))
    };
    let max_body_bytes = node.config.max_request_body_bytes;
    serve_in_order(
        &server,
        local_addr,
        workers,
        "client",
        max_body_bytes,
        refusal,
        run,
    );
    Ok(ClientServer { server, local_addr })
}

/// Connections the kernel completes and queues for the accept thread. The kernel caps it at
/// `net.core.somaxconn` (4096 by default), which is what Go's listeners, and so etcd's, ask
/// for. std's `TcpListener::bind`, and so tiny_http's `Server::http`, asks for 128: a burst of
/// more new connections than that lost handshakes and waited for the client's retransmission
/// (1 s, then 3 s; found by raftkv-bench at 256 clients).
pub const LISTEN_BACKLOG: i32 = 4096;

/// Binds `address` and listens with [`LISTEN_BACKLOG`].
pub fn bind_listener(address: &str) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind(address)?;
    // Listening again on a listening socket sets its backlog anew.
    // SAFETY: listen(2) on a descriptor the listener owns and keeps open.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(listener)
}

/// How long a write to a client connection may make no progress before it fails.
///
/// Responses are written by threads that many clients share (workers, responders, watch
/// delivery threads), and a client that stops reading would otherwise hold one for good once
/// the socket's buffers are full (found by hand: one stream watcher that read nothing held its
/// delivery thread, and through it the apply thread, so every later write timed out). Go
/// waits for ever, holding only that connection's goroutine. Set on the listening socket, it
/// is inherited by every connection accepted from it (Linux copies `SO_SNDTIMEO` to accepted
/// sockets); a client that reads slowly but steadily is not affected, since the limit applies
/// to each send that makes no progress.
pub const CLIENT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A tiny_http server listening on `address` with [`LISTEN_BACKLOG`], whose connections'
/// writes fail after [`CLIENT_SEND_TIMEOUT`] without progress.
pub fn http_server(address: &str) -> std::io::Result<tiny_http::Server> {
    let listener = bind_listener(address)?;
    set_send_timeout(&listener, CLIENT_SEND_TIMEOUT)?;
    tiny_http::Server::from_listener(listener, None)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Sets `SO_SNDTIMEO` on `listener` (inherited by the connections it accepts).
fn set_send_timeout(
    listener: &std::net::TcpListener,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt(2) on a descriptor the listener owns, with a timeval that outlives
    // the call and its exact size.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&value as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Responder threads for `workers` workers: writes and quorum reads are answered there.
fn responder_threads(workers: usize) -> usize {
    (workers / 4).clamp(1, 4)
}

/// What a request's handler works with.
struct Context<'a> {
    node: &'a Arc<Node>,
    responders: &'a Responders,
    /// This request's place in its connection's order; finished when it is dropped, so it
    /// goes with the request wherever its response is written.
    turn: TurnGuard,
}

/// The CORS headers a response carries: none, or etcd's three with the allowed origin.
struct Cors {
    /// None when the request's origin is not allowed (no CORS headers are sent).
    allowed_origin: Option<std::borrow::Cow<'static, str>>,
}

impl Cors {
    /// Without `--cors` every origin is allowed (`*`); with it, only a listed `Origin`.
    fn for_request(node: &Node, request: &Request) -> Cors {
        let origins = &node.config.cors_origins;
        let allowed_origin = if origins.is_empty() {
            Some(std::borrow::Cow::Borrowed("*"))
        } else {
            request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Origin"))
                .map(|h| h.value.as_str())
                .filter(|origin| origins.iter().any(|o| o == origin))
                .map(|origin| std::borrow::Cow::Owned(origin.to_string()))
        };
        Cors { allowed_origin }
    }

    /// No CORS headers (Go's server-level refusals are sent before etcd's handler adds them).
    fn none() -> Cors {
        Cors {
            allowed_origin: None,
        }
    }

    /// Appends the header lines, each ending in CRLF.
    fn push_headers(&self, out: &mut Vec<u8>) {
        if let Some(origin) = &self.allowed_origin {
            out.extend_from_slice(b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: ");
            out.extend_from_slice(origin.as_bytes());
            out.extend_from_slice(
                b"\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n",
            );
        }
    }
}

/// Writes the whole response with one write on the connection's raw writer: the status line,
/// `Date`, the reply's and the CORS headers, `Content-Length`, and the body (not for HEAD).
/// Formatting it here instead of through tiny_http's `Response` saves a third of the CPU of a
/// GET (tiny_http formats and allocates per header), and sends no `Server` header, as etcd.
fn respond(request: Request, reply: Reply, cors: Cors) {
    let out = response_bytes(&request, &reply, &cors);
    let mut writer = request.into_writer();
    let _ = writer.write_all(&out).and_then(|_| writer.flush());
}

/// The whole response to `request`: status line, headers, body.
fn response_bytes(request: &Request, reply: &Reply, cors: &Cors) -> Vec<u8> {
    let version = request.http_version().clone();
    let head_only = request.method() == &Method::Head;
    let mut out = Vec::with_capacity(320 + reply.body.len());
    out.extend_from_slice(
        format!(
            "HTTP/{}.{} {} {}\r\nDate: ",
            version.0,
            version.1,
            reply.status,
            status_text(reply.status)
        )
        .as_bytes(),
    );
    out.extend_from_slice(cached_http_date().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in reply.headers.iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    cors.push_headers(&mut out);
    let bodyless = reply.status == 204 || reply.status == 304 || reply.status < 200;
    if !bodyless {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(reply.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && !bodyless {
        out.extend_from_slice(&reply.body);
    }
    out
}

/// How much more than the body limit a request may declare and still be dropped normally.
///
/// tiny_http 0.12 drops a request whose body was not read to its end by reading the rest into
/// one buffer as large as what is left: a request that declared 100 GB in `Content-Length`
/// made the server allocate that and abort ("memory allocation failed"), whatever its method.
/// Such a request must never be dropped; see [`abandon`].
const DRAINABLE_EXCESS_BYTES: usize = 64 << 20;

/// True if `request` declares a body so large that dropping it would allocate beyond
/// `max_body_bytes` + [`DRAINABLE_EXCESS_BYTES`].
fn declares_undrainable_body(request: &Request, max_body_bytes: usize) -> bool {
    request
        .body_length()
        .is_some_and(|declared| declared > max_body_bytes.saturating_add(DRAINABLE_EXCESS_BYTES))
}

/// Requests given up on by [`abandon`] since start.
static ABANDONED_REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Answers `response` on `request`'s connection (local port `port`) and resets it, without
/// dropping the request, which would allocate as much as its declared body (see
/// [`DRAINABLE_EXCESS_BYTES`]). The request is leaked, and so is tiny_http's thread for that
/// connection, which waits for the request's reader to come back: about one blocked thread
/// and one descriptor per such request, instead of the whole server.
fn abandon(request: Request, response: &[u8], port: u16) {
    let client = request.remote_addr().copied();
    std::mem::forget(request);
    let count = ABANDONED_REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    eprintln!(
        "raftkv: refusing a request from {client:?} that declares a body beyond the limit; its connection is reset ({count} so far)"
    );
    let Some(key) =
        client.and_then(|client| crate::api::socket_scan::find_client_socket(port, client))
    else {
        return;
    };
    // The scan just read this socket's addresses; the leaked request keeps it open.
    crate::api::head_guard::close_sending(key.0, Some(response));
    // Give the client a moment to read the answer, then drop the connection's buffers.
    std::thread::sleep(std::time::Duration::from_millis(50));
    crate::api::head_guard::take_step(key, crate::api::head_guard::Step::Abort, port, true);
}

fn handle(context: Context<'_>, mut request: Request) {
    let node: &Node = context.node;
    let cors = Cors::for_request(node, &request);
    // Case-sensitive, as in Go: "get" is not GET (diff scenario bad-lowercase-method).
    let method = request.method().as_str().to_string();
    // Go's HTTP server rejects these before any handler (and before CORS) runs (diff scenarios
    // bad-malformed-request-lines, bad-content-length-mismatch-short).
    if let Some(reason) = go_server_rejection(&request) {
        let reply = Reply::new(
            400,
            "text/plain; charset=utf-8",
            format!("400 Bad Request: {reason}"),
        );
        return respond(request, reply, Cors::none());
    }
    if let Some(host) = refused_host(node, &request) {
        let text = HOST_NOT_ALLOWED.replace("<host>", &host);
        return respond(request, Reply::go_error(421, &text), Cors::none());
    }
    if request.method() == &Method::Options {
        return respond(request, Reply::empty(200), cors);
    }
    let url = origin_form(request.url());
    let (raw_path, raw_query) = match url.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (url.clone(), String::new()),
    };
    let path = match unescape(raw_path.as_bytes(), false) {
        Ok(path) => path,
        Err(_) => return respond(request, Reply::go_error(400, "400 Bad Request"), cors),
    };
    let cleaned = mux_clean_path(&path);
    if cleaned != path {
        let mut location = escape_path(&cleaned);
        if !raw_query.is_empty() {
            location.push('?');
            location.push_str(&raw_query);
        }
        let mut reply = Reply::empty(301).header("Location", location.clone());
        if method == "GET" || method == "HEAD" {
            reply = Reply::new(301, "text/html; charset=utf-8", Vec::new())
                .header("Location", location.clone());
            if method == "GET" {
                reply.body = format!(
                    "<a href=\"{}\">Moved Permanently</a>.\n\n",
                    html_escape(&location)
                )
                .into_bytes();
            }
        }
        return respond(request, reply, cors);
    }
    let reply = match path.as_str() {
        p if p == "/v2/keys" || p.starts_with("/v2/keys/") => {
            let after_keys = p["/v2/keys".len()..].to_string();
            return keys(context, request, &method, &after_keys, &raw_query, cors);
        }
        p if p.starts_with("/v2/auth/") => auth::serve(node, &mut request, &method, p),
        p if p == "/v2/members" || p.starts_with("/v2/members/") => 'members: {
            if let Some(refusal) = auth::check_members_write(node, &request, &method) {
                break 'members refusal;
            }
            let content_type = header_value(&request, "Content-Type");
            let body = if matches!(method.as_str(), "POST" | "PUT") {
                read_whole_body(&mut request, MAX_MEMBERS_BODY_BYTES)
            } else {
                Ok(Vec::new())
            };
            let members_request = cluster::MembersRequest {
                method: &method,
                path: &path,
                content_type: content_type.as_deref(),
                body: body.as_deref(),
            };
            cluster::members(node, members_request)
        }
        "/v2/machines" => cluster::machines(node, &method),
        "/v2/stats/self" => cluster::stats(node, &method, "self"),
        "/v2/stats/leader" => cluster::stats(node, &method, "leader"),
        "/v2/stats/store" => cluster::stats(node, &method, "store"),
        "/version" => cluster::version(&method),
        "/health" => cluster::health(node, &method),
        "/metrics" => cluster::metrics(node),
        "/debug/vars" => cluster::debug_vars(node, &method),
        "/config/local/log" => {
            // A body cut short is no JSON object, so it is refused as any bad body is.
            let body = if method == "PUT" {
                read_whole_body(&mut request, MAX_MEMBERS_BODY_BYTES).unwrap_or_default()
            } else {
                Vec::new()
            };
            cluster::log_level(&method, &body)
        }
        _ => Reply::not_found(),
    };
    respond(request, reply, cors)
}

/// etcd's answer to a request whose Host is not in `--host-whitelist` (status 421).
const HOST_NOT_ALLOWED: &str = "\netcd received your request, but the Host header was unrecognized.\n\nTo fix this, choose one of the following options:\n- Enable TLS, then any HTTPS request will be allowed.\n- Add the hostname you want to use to the whitelist in settings.\n  - e.g. etcd --host-whitelist \"<host>\"\n\nThis requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n";

/// `--host-whitelist`: the request's Host name (port ignored) must be listed, unless the list
/// is empty (`*`, the default). Returns the refused host name.
fn refused_host(node: &Node, request: &Request) -> Option<String> {
    let allowed = &node.config.host_whitelist;
    if allowed.is_empty() {
        return None;
    }
    let host = header_value(request, "Host").unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or("").to_string(),
        None => host
            .rsplit_once(':')
            .map(|(name, _)| name.to_string())
            .unwrap_or(host.clone()),
    };
    (!allowed.contains(&name)).then_some(name)
}

/// Largest `/v2/members` body read (a list of peer URLs).
const MAX_MEMBERS_BODY_BYTES: usize = 64 * 1024;

fn header_value(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// What Go's server says about a request it refuses before routing, if it does.
fn go_server_rejection(request: &Request) -> Option<&'static str> {
    let has_host = request.headers().iter().any(|h| h.field.equiv("Host"));
    if *request.http_version() == tiny_http::HTTPVersion(1, 1) && !has_host {
        return Some("missing required Host header");
    }
    let bad_length = request.headers().iter().any(|h| {
        h.field.equiv("Content-Length") && {
            let value = h.value.as_str().trim();
            value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit())
        }
    });
    bad_length.then_some("bad Content-Length")
}

/// The path and query of a request target; an absolute-form target (`http://host/path?q`)
/// is reduced to its path and query, as Go does (diff scenario bad-absolute-form-target).
fn origin_form(target: &str) -> String {
    for scheme in ["http://", "https://"] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let after_scheme = &target[scheme.len()..];
            return match after_scheme.find(['/', '?']) {
                Some(start) if after_scheme[start..].starts_with('/') => {
                    after_scheme[start..].to_string()
                }
                Some(start) => format!("/{}", &after_scheme[start..]),
                None => "/".to_string(),
            };
        }
    }
    target.to_string()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn is_form_content_type(request: &Request) -> bool {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| {
            let media_type = h.value.as_str().split(';').next().unwrap_or("").trim();
            media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

fn key_error(node: &Node, error: &V2Error) -> Reply {
    Reply::json(error.code.http_status(), error_json(error))
        .header("X-Etcd-Cluster-Id", format_id(node.cluster_id))
        .header("X-Etcd-Index", error.index.to_string())
}

fn key_event(node: &Node, event: &Event, raft_index: u64, raft_term: u64, no_value: bool) -> Reply {
    use crate::store::Action;
    let created = event.action == Action::Create
        || (event.action == Action::Set && event.prev_node.is_none());
    Reply::json(
        if created { 201 } else { 200 },
        event_json(event, now_unix_nanos(), no_value),
    )
    .header("X-Etcd-Cluster-Id", format_id(node.cluster_id))
    .header("X-Etcd-Index", event.etcd_index.to_string())
    .header("X-Raft-Index", raft_index.to_string())
    .header("X-Raft-Term", raft_term.to_string())
}

fn keys(
    context: Context<'_>,
    mut request: Request,
    method: &str,
    after_keys: &str,
    raw_query: &str,
    cors: Cors,
) {
    let node: &Node = context.node;
    // after_keys is "/a/b" for /v2/keys/a/b and "" for /v2/keys itself; below is "a/b".
    let below = after_keys.strip_prefix('/').unwrap_or("");
    if !matches!(method, "HEAD" | "GET" | "PUT" | "POST" | "DELETE") {
        return respond(
            request,
            Reply::method_not_allowed(&["HEAD", "GET", "PUT", "POST", "DELETE"]),
            cors,
        );
    }
    let body = if matches!(method, "PUT" | "POST") && is_form_content_type(&request) {
        match read_whole_body(&mut request, node.config.max_request_body_bytes) {
            Ok(body) => Some(body),
            Err(error) => {
                // As etcd: error 210 with Go's cause, and nothing written.
                let error = V2Error::new(ErrorCode::InvalidForm, error.to_string(), 0);
                return respond(request, key_error(node, &error), cors);
            }
        }
    } else {
        None
    };
    let (form, form_error) = Form::parse_with_limit(
        raw_query,
        body.as_deref(),
        node.config.max_request_body_bytes,
    );
    if let Some(error) = form_error {
        let error = V2Error::new(ErrorCode::InvalidForm, error.to_string(), 0);
        return respond(request, key_error(node, &error), cors);
    }
    let op = match parse_key_request(method, below, &form, now_unix_nanos()) {
        Ok(op) => op,
        Err(error) => return respond(request, key_error(node, &error), cors),
    };
    // etcd checks access after validation, on the decoded path as sent (not cleaned).
    let recursive = form.get("recursive").and_then(parse_go_bool) == Some(true);
    if let Err(error) = auth::check_key_access(node, &request, method, after_keys, recursive) {
        return respond(request, key_error(node, &error), cors);
    }
    let reply = match op {
        KeyOp::Get {
            key,
            recursive,
            sorted,
            quorum,
        } => {
            if quorum && !node.serves_quorum_reads_locally() {
                // Answered by a responder once the read point is applied (no worker waits).
                let answer =
                    in_responder(context, request, cors, move |node, outcome| match outcome {
                        Ok(applied) => read_reply(
                            node,
                            &key,
                            recursive,
                            sorted,
                            (applied.raft_index, applied.raft_term),
                        ),
                        Err(e) => key_error(node, &e.to_v2_error()),
                    });
                let deadline = std::time::Instant::now() + crate::node::PROPOSAL_TIMEOUT;
                return node.read_barrier_then(answer, deadline);
            }
            let raft_position = (node.raft_index(), node.raft_term());
            read_reply(node, &key, recursive, sorted, raft_position)
        }
        KeyOp::Write {
            command,
            no_value_on_success,
        } => {
            // Answered by a responder once applied (no worker waits for replication and sync).
            let answer = in_responder(context, request, cors, move |node, outcome| match outcome {
                Ok(applied) => match applied.outcome {
                    Ok(Some(event)) => key_event(
                        node,
                        &event,
                        applied.raft_index,
                        applied.raft_term,
                        no_value_on_success,
                    ),
                    Ok(None) => panic!("a client write was applied without an event"),
                    Err(error) => key_error(node, &error),
                },
                Err(e) => key_error(node, &e.to_v2_error()),
            });
            return node.propose_then(command, answer);
        }
        KeyOp::Watch {
            key,
            recursive,
            stream,
            since_index,
        } => {
            let watch_request = WatchRequest {
                key: &key,
                recursive,
                stream,
                since_index,
            };
            return watch(context, request, watch_request, cors);
        }
    };
    respond(request, reply, cors)
}

/// A GET's answer from the local store at the given Raft position.
fn read_reply(
    node: &Node,
    key: &str,
    recursive: bool,
    sorted: bool,
    (raft_index, raft_term): (u64, u64),
) -> Reply {
    let result = node.store.read().get(key, recursive, sorted);
    match result {
        Ok(event) => key_event(node, &event, raft_index, raft_term, false),
        Err(error) => key_error(node, &error),
    }
}

/// A completion that, when the Raft loop answers, has a responder build the reply with
/// `reply_for` and write it; the request's turn ends after the write.
fn in_responder(
    context: Context<'_>,
    request: Request,
    cors: Cors,
    reply_for: impl FnOnce(&Node, crate::node::completion::Outcome) -> Reply + Send + 'static,
) -> Completion {
    let node = context.node.clone();
    let responders = context.responders.clone();
    let turn = context.turn;
    Completion::callback(move |outcome| {
        responders.queue(Box::new(move || {
            let reply = reply_for(&node, outcome);
            respond(request, reply, cors);
            drop(turn);
        }))
    })
}

/// A response writer that holds its request's turn until the response ends: the inner writer
/// is dropped first (tiny_http then lets the connection's next response through), then the
/// turn, which lets the connection's next request run.
struct TurnHoldingWriter {
    inner: Box<dyn std::io::Write + Send>,
    _turn: TurnGuard,
}

impl std::io::Write for TurnHoldingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A watch's parameters.
struct WatchRequest<'a> {
    key: &'a str,
    recursive: bool,
    stream: bool,
    since_index: u64,
}

fn watch_head(node: &Node, etcd_index: u64, cors: &Cors) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 200 {}\r\nContent-Type: application/json\r\nDate: {}\r\nTransfer-Encoding: chunked\r\n\
         X-Etcd-Cluster-Id: {}\r\nX-Etcd-Index: {}\r\nX-Raft-Index: {}\r\nX-Raft-Term: {}\r\n",
        status_text(200),
        cached_http_date(),
        format_id(node.cluster_id),
        etcd_index,
        node.raft_index(),
        node.raft_term(),
    );
    let mut head = head.into_bytes();
    cors.push_headers(&mut head);
    head.extend_from_slice(b"\r\n");
    head
}

fn watch(context: Context<'_>, request: Request, watch_request: WatchRequest<'_>, cors: Cors) {
    let node: &Node = context.node;
    let WatchRequest {
        key,
        recursive,
        stream,
        since_index,
    } = watch_request;
    let turn = context.turn;
    let writer = |request: Request| -> Box<dyn std::io::Write + Send> {
        Box::new(TurnHoldingWriter {
            inner: request.into_writer(),
            _turn: turn,
        })
    };
    if node.watches.check_capacity().is_err() {
        let error = V2Error::new(
            ErrorCode::RaftInternal,
            format!(
                "raftkv: too many parked watches (limit {})",
                node.config.max_parked_watches
            ),
            0,
        );
        return respond(request, key_error(node, &error), cors);
    }
    let client = request.remote_addr().copied();
    let id = node.watches.next_id();
    let mut store = node.store.write();
    match store.watch(key, recursive, stream, since_index, id) {
        Err(error) => {
            drop(store);
            respond(request, key_error(node, &error), cors)
        }
        Ok(WatchStart::Ready(event)) if !stream => {
            let current_index = store.current_index();
            drop(store);
            // Satisfied from history (a watcher re-armed with waitIndex behind the writes):
            // the head, the event and the end of the response in one write, from this worker.
            let mut message = watch_head(node, current_index, &cors);
            let body = event_json(&event, now_unix_nanos(), false);
            crate::node::watch::push_chunk(&mut message, body.as_bytes(), true);
            let mut out = writer(request);
            let _ = out.write_all(&message).and_then(|_| out.flush());
        }
        Ok(WatchStart::Ready(event)) => {
            let current_index = store.current_index();
            drop(store);
            // A stream watch answered from history gets that one event and then nothing
            // more, its response left open, as on etcd (the watcher is never registered for live events); the hub
            // keeps such responses as inert sinks and closes the oldest when it needs room.
            let head = watch_head(node, current_index, &cors);
            let sink = Arc::new(WatchSink::new(id, stream, writer(request), head, client));
            let body = Arc::new(event_json(&event, now_unix_nanos(), false).into_bytes());
            node.watches.park(sink);
            node.watches.fire(vec![(id, body)]);
        }
        Ok(WatchStart::Parked { registered_index }) => {
            let head = watch_head(node, registered_index, &cors);
            let sink = Arc::new(WatchSink::new(id, stream, writer(request), head, client));
            node.watches.park(sink.clone());
            drop(store);
            let _ = sink.send_head();
        }
    }
}
