//! The client side of the etcd v2 API, as used by `raftkvctl` (our etcdctl v2 clone) and by
//! the differential tests.
//!
//! - [`http`]: a small HTTP/1.1 client on `std::net` (keep-alive, chunked bodies, deadlines,
//!   Go-compatible percent-encoding) — the product has no HTTP client crate by design.
//! - [`url`]: URLs and Go-compatible percent-encoding.
//! - [`wire`]: the HTTP/1.1 response format (heads, chunked bodies) on any reader.
//! - [`keys`]: the `/v2/keys` requests exactly as etcdctl puts them on the wire, decoding of
//!   responses and of the v2 error JSON.
//! - [`cluster`]: the endpoint list with etcd's failover, sync and timeouts.
//! - [`errors`]: the client errors and etcdctl's text for them.
//! - [`members`]: `/v2/members` list/leader/add/remove/update.
//! - [`auth`]: `/v2/auth` enable/disable, users and roles.
//! - [`srv`]: DNS SRV discovery of client endpoints (`--discovery-srv`).
//! - [`mod@format`]: etcdctl's `simple`, `extended` and `json` output, byte for byte.
//! - [`gojson`]: Go's JSON decode error texts, printed by etcdctl for non-JSON replies.
//! - [`args`]: etcdctl's command-line grammar (Go `flag` package plus urfave/cli reordering).

pub mod args;
pub mod auth;
pub mod cluster;
pub mod errors;
pub mod format;
pub mod gojson;
pub mod http;
pub mod keys;
pub mod members;
pub mod srv;
pub mod url;
pub mod wire;
