//! The Raft consensus core: deterministic, with no clock, no I/O, no threads.
//!
//! `raft` decides, `node` does. This module owns the protocol: who leads, what is committed,
//! what to send. It never reads a clock (time is [`RawNode::tick`]), never touches a disk or
//! socket (it returns a [`Ready`] describing what to persist and send), never spawns threads,
//! and draws randomness (election jitter only) from a seeded [`rng::SplitMix64`]. Collections
//! are `BTreeMap`/`Vec`, so iteration order, and therefore every output, is a function of
//! the inputs and the seed. `tests/raft_determinism.rs` enforces this on the source text.
//!
//! # The contract: persist, then send, then apply, then advance
//!
//! Inputs are method calls on [`RawNode`]: `tick()`, `step(message)`, `propose(data)`,
//! `propose_conf_change(cc)`, `read_index(context)`, `transfer_leader(id)`,
//! `report_unreachable(id)`, `report_snapshot(id, ok)`. After any of them, while
//! [`RawNode::has_ready`] is true, the application must:
//!
//! 1. **Persist** `ready.hard_state`, `ready.entries` (replacing the log from the first new
//!    index on) and `ready.snapshot`, and fsync when `ready.must_sync`. Votes and
//!    acknowledgements in the messages are only true once this is durable: a crash that loses
//!    them after sending could let a node vote twice in one term or forget an entry a leader
//!    counted toward commit.
//! 2. **Send** `ready.messages` (loss, duplication and reordering are all tolerated).
//!    *The leader's exception*: when `ready.send_before_persist` is true, the messages may be
//!    sent before step 1, so the leader's fsync overlaps the followers' (the Raft thesis,
//!    §10.2.1; etcd's server does the same). It is true only for a leader whose term and
//!    vote are already durable, which installs no snapshot and whose commit index covers only
//!    entries already durable: its messages carry entries, commit indexes and refusals, none
//!    of which depends on what this Ready writes. (A single voter commits its entries as it
//!    appends them; a learner told that commit index before they are durable would apply
//!    what a crash may lose, so such a Ready persists first.) The leader counts its new
//!    entries toward commit as it appends them (`core/replication.rs`:
//!    `Raft::append_entries`), before they are durable. That is safe because a commit
//!    decision reaches the world only through a later Ready (its committed entries, and the
//!    commit index in its messages), and the application takes the next Ready only after
//!    step 1 of this one has finished: by then the leader's count of itself is true. A crash
//!    before step 1 loses the entries on the leader alone; whatever followers stored is an
//!    ordinary suffix of their logs, committed only if a quorum of them holds it durably.
//! 3. **Apply** `ready.snapshot` (if any) and then `ready.committed_entries` in order; for a
//!    [`EntryKind::ConfChange`] entry call [`RawNode::apply_conf_change`]. Serve
//!    `ready.read_states` once applied up to their index.
//! 4. **Advance**: call [`RawNode::advance`], which moves the persisted entries into the
//!    in-memory [`MemoryStorage`] and records the applied index. Only then ask for the next Ready.
//!
//! On restart, rebuild a [`MemoryStorage`] from the WAL (hard state, snapshot, entries) and
//! pass it to [`RawNode::new`]; applied restarts at the snapshot index and committed entries
//! after it are handed out again.
//!
//! # Files
//!
//! | file | owns |
//! |---|---|
//! | [`core`] | roles and every protocol rule, split by topic into `core/{mod,election,replication,read_index,membership}.rs` |
//! | [`raw_node`] | the application API, `Ready` and `advance` |
//! | [`log`] | stable + unstable log, commit/apply cursors, log matching, conflict search |
//! | [`storage`] | [`MemoryStorage`], the persisted log the node backs with its WAL |
//! | [`progress`] | per-follower Probe/Replicate/Snapshot states, inflights, quorum arithmetic |
//! | [`read_only`] | pending ReadIndex requests and their heartbeat acknowledgements |
//! | [`message`] | plain data: `Message`, `Entry`, `HardState`, `Snapshot`, `ConfChange` |
//! | [`codec`] | byte layout of the plain data; decoders never panic |
//! | [`config`] | tunables and their validation |
//! | [`rng`] | the seeded generator |
//!
//! # Rules and where they live
//!
//! | rule | file: function |
//! |---|---|
//! | randomized election timeout in `[ET, 2ET)` ticks | `core/election.rs`: `Raft::tick_election`; `core/mod.rs`: `Raft::reset_randomized_election_timeout` |
//! | pre-vote: campaign at term+1 without bumping the term | `core/election.rs`: `Raft::hup`, `Raft::campaign` |
//! | higher term: step down; lower term: reply so stale leaders learn | `core/mod.rs`: top of `Raft::step` |
//! | votes ignored while a leader is heard from (check-quorum lease) | `core/mod.rs`: top of `Raft::step` |
//! | one vote per term, only for an up-to-date log (§5.4.1) | `core/election.rs`: `Raft::handle_vote_request`; `log.rs`: `RaftLog::is_up_to_date` |
//! | check-quorum: leader steps down without a quorum | `core/election.rs`: `Raft::tick_heartbeat`; `progress.rs`: `ProgressTracker::quorum_active_and_reset` |
//! | no-op entry at term start | `core/mod.rs`: `Raft::become_leader` |
//! | AppendEntries consistency check, truncate conflicts, never committed ones | `core/replication.rs`: `Raft::handle_append`; `log.rs`: `RaftLog::maybe_append` |
//! | fast backtracking by conflict term and index | `log.rs`: `RaftLog::find_conflict_by_term`; `core/replication.rs`: `Raft::handle_append_response`; `progress.rs`: `Progress::maybe_decr_to` |
//! | batching (bytes per message), pipelining, inflights by count and bytes | `core/replication.rs`: `Raft::maybe_send_append`; `progress.rs`: `Inflights`, `Progress::sent_entries` |
//! | cap on uncommitted bytes | `core/replication.rs`: `Raft::append_entries` |
//! | commit only current-term entries by counting (§5.4.2, Figure 8) | `core/replication.rs`: `Raft::maybe_commit`; `log.rs`: `RaftLog::maybe_commit` |
//! | ReadIndex only after committing in the term; quorum heartbeat confirms | `core/read_index.rs`: `Raft::handle_read_index`; `core/replication.rs`: `Raft::handle_heartbeat_response` |
//! | follower ReadIndex forwarded to the leader | `core/mod.rs`: `Raft::step_follower` |
//! | snapshot instead of compacted entries; whole snapshot in one message | `core/replication.rs`: `Raft::maybe_send_append` |
//! | follower installs a snapshot | `core/replication.rs`: `Raft::handle_snapshot`, `Raft::restore`; `log.rs`: `RaftLog::restore` |
//! | resume after failed snapshot / unreachable peer | `core/replication.rs`: `Raft::report_snapshot`, `Raft::report_unreachable` |
//! | one membership change at a time, effective when applied | `core/mod.rs`: `Raft::step_leader` (pending check); `core/membership.rs`: `Raft::apply_conf_change` |
//! | leader removed by a conf change steps down | `core/membership.rs`: `Raft::apply_conf_change` |
//! | no campaign with a committed, unapplied conf change | `core/election.rs`: `Raft::hup` |
//! | leadership transfer with TimeoutNow | `core/election.rs`: `Raft::handle_transfer_leader`; `core/mod.rs`: `Raft::step_follower` |
//! | persist before send (the Ready contract), except a leader's entries | this doc; `raw_node.rs`: `RawNode::ready` (`send_before_persist`), `RawNode::advance`; checked by `sim::cluster::Simulation::handle_ready` and the sim checkers, and by `raft-spec/log.pml` |
//!
//! Snapshots are sent **whole** in one [`MessageKind::Snapshot`] message; chunking is left
//! to the transport. Membership changes are single-server (no joint consensus). Leases
//! (reads without a quorum round) are not offered: ReadIndex is the only read path.
//!
//! # How it is tested
//!
//! | test | what it pins down |
//! |---|---|
//! | `tests/testdata/raft/*.txt` via `tests/raft_interaction.rs` | message-by-message scenarios, one feature each (Figure 8, pre-vote, check-quorum, backtracking, ReadIndex, snapshots, membership, transfer); `RAFT_REWRITE=1` regenerates |
//! | `tests/raft_log_model.rs` | [`log::RaftLog`] against a naive vector model under random appends, conflicts, persistence, compaction and restores |
//! | `tests/raft_ready.rs` | the Ready contract as an API (`must_sync`, advance, restart) |
//! | `tests/sim_sweep.rs`, `tests/sim_harness.rs` | seeded whole-cluster simulation with safety and liveness checkers ([`crate::sim`]), and proof that broken variants are caught |
//! | `tests/raft_determinism.rs` | no clock, I/O, threads or hash collections in `src/raft` and `src/sim` |
//! | unit tests in [`codec`], [`progress`], [`storage`], [`rng`] | round trips, decoders never panic, quorum arithmetic against an oracle |

pub mod codec;
pub mod config;
pub mod core;
pub mod log;
pub mod message;
pub mod progress;
pub mod raw_node;
pub mod read_only;
pub mod rng;
pub mod storage;

pub use self::config::{Config, ConfigError};
pub use self::core::{ProposeError, Raft, Role};
pub use self::message::*;
pub use self::raw_node::{ProgressStatus, RawNode, Ready, SoftState, Status};
pub use self::storage::{LogError, MemoryStorage};
