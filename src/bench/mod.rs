//! The load generator behind `raftkv-bench` (issue 5): workloads against any etcd v2 endpoint
//! (raftkv or etcd, one node or a cluster), and the side-by-side comparison with etcd.
//!
//! - [`histogram`]: latency histogram with bounded relative error (no crates).
//! - [`requests`]: the `/v2/keys` requests, sent through the project's own HTTP/1.1 client
//!   ([`crate::client::http`]) over one keep-alive connection per worker.
//! - [`workload`]: closed-loop workloads (unique-key puts, hot-key puts, gets, quorum gets, a
//!   get/put mix), each bounded by a request count and a time limit.
//! - [`watch`]: the watch fan-out and its exactly-once accounting.
//! - [`report`]: the printed lines and the comparison table.
//! - [`process`]: spawning servers on free ports with fresh data dirs, killed by PID on drop;
//!   resident memory and data-dir size.
//! - [`compare`]: raftkv and etcd side by side, alternating, medians and ratios.
//! - [`cluster`]: the same for 3-member clusters, to the leader and to a follower.
//! - [`disk`]: the raw append + fdatasync latency of the disk, for context.
//! - [`floor`]: null servers (tiny_http, std::net) that do no work, next to etcd: the ceiling
//!   any server reaches on this machine with this load generator; [`null_watch`] does the same
//!   for the watch fan-out, and [`null_cluster`] for writes to a 3-member cluster.
//!
//! It lives in the library (not only in the binary) so `tests/bench_smoke.rs` can drive it.

pub mod cluster;
pub mod compare;
pub mod disk;
pub mod floor;
pub mod histogram;
pub mod null_cluster;
pub mod null_watch;
pub mod process;
pub mod report;
pub mod requests;
pub mod watch;
pub mod workload;

/// A key prefix unique to this process and moment, so repeated runs never share keys.
pub fn unique_key_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "/bench/{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}
