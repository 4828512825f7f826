//! The client side of the etcd v2 API, as used by `raftkvctl` (our etcdctl v2 clone) and by
//! the differential tests.
//!
//! - [`http`]: a small HTTP/1.1 client on `std::net` (keep-alive, chunked bodies, deadlines,
//!   Go-compatible percent-encoding) — the product has no HTTP client crate by design.
//! - [`keys`]: the `/v2/keys` requests exactly as etcdctl puts them on the wire, decoding of
//!   responses and of the v2 error JSON, and the endpoint list with failover and sync.
//! - [`members`]: `/v2/members` list/leader/add/remove/update.
//! - [`auth`]: `/v2/auth` enable/disable, users and roles.
//! - [`mod@format`]: etcdctl's `simple`, `extended` and `json` output, byte for byte.
//! - [`gojson`]: Go's JSON decode error texts, printed by etcdctl for non-JSON replies.
//! - [`args`]: etcdctl's command-line grammar (Go `flag` package plus urfave/cli reordering).

pub mod args;
pub mod auth;
pub mod format;
pub mod gojson;
pub mod http;
pub mod keys;
pub mod members;
