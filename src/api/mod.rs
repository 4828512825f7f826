//! The client API: etcd's v2 HTTP surface on tiny_http.
//!
//! `api` parses and formats; it never touches the store's internals. A request is routed
//! ([`server`]), its parameters parsed by Go's rules ([`form`]), validated and dispatched to a
//! key-space operation ([`keys`]), executed through the [`crate::node::Node`], and the answer
//! rendered as etcd renders it ([`render`], [`json`]). The other endpoints (members, machines,
//! stats, version, health) live in [`cluster`]; v2 auth (`/v2/auth/*` and the access
//! checks on keys and members) in [`auth`].
//!
//! Bounds: a fixed pool of worker threads takes requests (`--max-client-workers`), form bodies
//! are refused over `--max-request-bytes` (etcd's 10 MiB), and parked watches hold no worker
//! (`--max-parked-watches`). Writes and `quorum=true` reads hold no worker either while Raft
//! works on them: the Raft loop completes them and a fixed pool of responder threads writes
//! their answers ([`responders`]). What a connection may send without an answer (a request
//! head, which tiny_http buffers without a limit) is bounded by [`head_guard`], which the
//! pool nudger's thread runs ([`pool_nudge`]) on what the kernel says of each connection
//! ([`socket_scan`]).

pub mod auth;
pub mod body_threads;
pub mod cluster;
pub mod form;
pub mod fuzz;
pub mod gojson;
pub mod head_guard;
pub mod http;
pub mod json;
pub mod keys;
pub mod pool_nudge;
pub mod proxy;
pub mod render;
pub mod request_body;
pub mod responders;
pub mod sequencer;
pub mod server;
pub mod socket_scan;
pub mod thread_quota;
