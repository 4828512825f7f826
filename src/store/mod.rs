//! The etcd v2 store: the deterministic in-memory key tree that every replica applies committed
//! commands to, with its event history, watcher hub, TTL index and statistics.
//!
//! It owns etcd v2 semantics (what set/create/update/compareAndSwap/delete/compareAndDelete do to
//! the tree, which indexes they produce, which error codes and causes they return, which watchers
//! an event wakes) and nothing else: no clock, no I/O, no threads, no hash maps. Time arrives in
//! commands as absolute Unix nanoseconds (TTLs as `expire_at`, expiry as a leader-proposed
//! `Sync { now }`), so every replica expires the same keys at the same indexes. A test
//! (`tests/store_determinism.rs`) scans this directory's source to keep it that way.
//!
//! Files, one job each: `error` (the v2 error table), `event` (what reads/writes/watches
//! return), `command` (what is replicated, and its codec), `codec` (byte primitives), `path`
//! (key normalisation), `tree` (the flat ordered node map), `history` (the last 1000 events),
//! `watch` (the watcher hub), `stats` (counters), `store` (the operations), `snapshot`
//! (save/restore), `fuzz` (the fuzz entry point).
//!
//! How the node uses it: every committed entry goes through [`Store::apply`], which returns the
//! client's event (or error) and appends `(watcher id, event)` pairs for parked watchers to wake;
//! reads call [`Store::get`] under a read lock; watch requests call [`Store::watch`] and either
//! answer at once from history or stay parked until an `apply` fires them; the leader proposes
//! `Command::Sync { now }` while [`Store::has_ttl_nodes`]; Raft snapshots use [`Store::save`] and
//! [`Store::restore`].
//!
//! Where this differs from etcd 3.4.23 on purpose (everything else was compared op by op against
//! a live etcd, errors and causes included):
//! - listings are always sorted by key (etcd's unsorted order is random; `sorted` is accepted);
//! - a history scan matches a delete/expire of directory D for a watch on K only when K is D or
//!   below it (etcd compares strings, so deleting `/foo` also answered a past watch on `/foobar`).
//!
//! etcd quirks kept on purpose: a stream watcher placed exactly on a removed key gets the event
//! twice; a stream watch answered from history is not registered; a create that fails on a file
//! in its path counts in both `createFail` and `setsFail`; an empty `prev_value` is "no test".

mod codec;
pub mod command;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzz;
mod history;
mod path;
mod snapshot;
mod stats;
#[allow(clippy::module_inception)]
mod store;
mod tree;
mod watch;

pub use codec::WireError;
pub use command::{Command, CommandDecodeError};
pub use error::{ErrorCode, V2Error};
pub use event::{Action, Event, NodeExtern};
#[doc(hidden)]
pub use fuzz::fuzz_store;
pub use history::HISTORY_CAPACITY;
pub use path::clean as clean_key;
pub use snapshot::{SnapshotDecodeError, SNAPSHOT_FORMAT_VERSION};
pub use store::{Store, WatchStart, MIN_EXPIRE_AT_UNIX_NANOS};

/// Wall-clock time as Unix nanoseconds (UTC).
pub type UnixNanos = i64;

/// Chosen by the caller (the node), unique per live watcher.
pub type WatcherId = u64;

#[cfg(test)]
mod tests;
