//! raftkv: an etcd v2-compatible, Raft-replicated key-value store.
//!
//! `raft` decides, `node` does: the consensus core ([`raft`]) and the v2 tree ([`store`]) are
//! deterministic libraries; [`node`] is the only place where threads, channels, disk and the
//! clock meet. [`api`] parses HTTP requests into store commands and renders etcd's JSON.

pub mod api;
pub mod bench;
pub mod client;
pub mod node;
pub mod raft;
pub mod sim;
pub mod snap;
pub mod store;
pub mod transport;
pub mod wal;
