//! The application's handle on the core: inputs as methods, outputs as one [`Ready`].
//!
//! See the contract in the [module doc of `raft`](super): persist, then send, then apply,
//! then [`RawNode::advance`] (a leader may send first when [`Ready::send_before_persist`]).

use super::config::{Config, ConfigError};
use super::core::{ProposeError, Raft, Role};
use super::message::*;
use super::progress::ProgressState;
use super::storage::MemoryStorage;
use std::collections::BTreeMap;

/// Volatile facts worth reporting when they change (not persisted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftState {
    /// Known leader or [`NO_NODE`].
    pub leader_id: NodeId,
    /// This node's role.
    pub role: Role,
}

/// Everything the core wants done, in the order the contract prescribes.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    /// Leader or role changed (informational).
    pub soft_state: Option<SoftState>,
    /// Step 1: persist if present (term, vote or commit changed).
    pub hard_state: Option<HardState>,
    /// Step 1: append to the durable log (replacing any suffix from the first index on).
    pub entries: Vec<Entry>,
    /// Step 1: persist, then install into the state machine.
    pub snapshot: Option<Snapshot>,
    /// Step 2: send, only after step 1 is durable.
    pub messages: Vec<Message>,
    /// Step 3: apply in order (ConfChange entries: call `apply_conf_change`).
    pub committed_entries: Vec<Entry>,
    /// Completed ReadIndex requests: serve once applied up to `index`.
    pub read_states: Vec<ReadState>,
    /// True if step 1 needs an fsync (entries, snapshot, term or vote changed; a
    /// commit-only change does not).
    pub must_sync: bool,
    /// True if step 2 may come before step 1 (the leader's exception in the
    /// [contract](super)): this node leads, the Ready changes neither its term nor its vote
    /// and installs no snapshot, and its commit index covers only entries already durable,
    /// so its messages promise nothing about what this Ready writes.
    pub send_before_persist: bool,
}

impl Ready {
    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }
}

/// What `ready()` handed out, so `advance()` can acknowledge exactly that.
#[derive(Clone, Debug)]
struct HandedOut {
    hard_state: Option<HardState>,
    last_entry: Option<(u64, u64)>,
    snapshot_index: Option<u64>,
    last_committed_index: Option<u64>,
    committed_bytes: u64,
}

/// Per-member replication summary (meaningful on the leader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressStatus {
    /// Highest index known replicated.
    pub match_index: u64,
    /// Next index to send.
    pub next_index: u64,
    /// Replication state.
    pub state: ProgressState,
    /// Learner rather than voter.
    pub is_learner: bool,
}

/// A snapshot of the node's state for status output and tests.
#[derive(Clone, Debug)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Term, vote, commit.
    pub hard_state: HardState,
    /// Leader and role.
    pub soft_state: SoftState,
    /// Applied index.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
    /// Every member's progress.
    pub progress: BTreeMap<NodeId, ProgressStatus>,
    /// Ongoing leadership transfer target or [`NO_NODE`].
    pub lead_transferee: NodeId,
}

/// One Raft node driven by the application.
pub struct RawNode {
    /// The protocol state (public for inspection by tests and the simulator).
    pub raft: Raft,
    prev_hard_state: HardState,
    prev_soft_state: SoftState,
    /// Invariant: Some between `ready()` and `advance()`.
    handed_out: Option<HandedOut>,
}

impl RawNode {
    /// A node over `storage` (fresh: bootstrap ConfState at index 0; restarted: rebuilt
    /// from the WAL). Applied starts at the storage's snapshot index.
    pub fn new(config: &Config, storage: MemoryStorage) -> Result<RawNode, ConfigError> {
        config.validate()?;
        let raft = Raft::new(config, storage);
        let prev_hard_state = raft.hard_state();
        let prev_soft_state = SoftState {
            leader_id: raft.leader_id,
            role: raft.role,
        };
        Ok(RawNode {
            raft,
            prev_hard_state,
            prev_soft_state,
            handed_out: None,
        })
    }

    /// One logical clock tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Start an election now (with pre-vote if configured).
    pub fn campaign(&mut self) {
        self.raft.hup(false);
    }

    /// Propose application data. Ok means accepted locally (appended, or forwarded to the
    /// leader), not committed: the entry may still be lost and must be awaited in apply.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        let mut m = Message::new(MessageKind::Propose, self.raft.id, NO_NODE, 0);
        m.entries.push(Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data,
        });
        self.raft.step(m)
    }

    /// Propose many application entries at once: one append, one broadcast (group commit).
    /// Either all are accepted or none.
    pub fn propose_batch(&mut self, batch: Vec<Vec<u8>>) -> Result<(), ProposeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut m = Message::new(MessageKind::Propose, self.raft.id, NO_NODE, 0);
        m.entries = batch
            .into_iter()
            .map(|data| Entry {
                term: 0,
                index: 0,
                kind: EntryKind::Normal,
                data,
            })
            .collect();
        self.raft.step(m)
    }

    /// Propose a membership change (refused while another is unapplied).
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<(), ProposeError> {
        let mut m = Message::new(MessageKind::Propose, self.raft.id, NO_NODE, 0);
        m.entries.push(Entry {
            term: 0,
            index: 0,
            kind: EntryKind::ConfChange,
            data: super::codec::encode_conf_change(&cc),
        });
        self.raft.step(m)
    }

    /// Apply a committed conf change entry; returns the new membership.
    pub fn apply_conf_change(&mut self, cc: ConfChange) -> ConfState {
        self.raft.apply_conf_change(cc)
    }

    /// Ask for a linearizable read point; the answer arrives as a [`ReadState`] carrying
    /// `context` (which must be non-empty and unique among pending reads).
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), ProposeError> {
        if context.is_empty() {
            return Err(ProposeError::EmptyReadContext);
        }
        let mut m = Message::new(MessageKind::ReadIndex, self.raft.id, NO_NODE, 0);
        m.context = context;
        self.raft.step(m)
    }

    /// Ask the leader to hand leadership to `transferee`.
    pub fn transfer_leader(&mut self, transferee: NodeId) {
        let m = Message::new(MessageKind::TransferLeader, self.raft.id, transferee, 0);
        // Dropped when no leader is known; the caller retries.
        let _ = self.raft.step(m);
    }

    /// Deliver a message from a peer. Errors only concern forwarded proposals and reads,
    /// which the network caller may ignore.
    pub fn step(&mut self, m: Message) -> Result<(), ProposeError> {
        if m.from == NO_NODE {
            return Ok(()); // peers always name themselves; a nameless message is garbage
        }
        self.raft.step(m)
    }

    /// The transport failed to reach `id`.
    pub fn report_unreachable(&mut self, id: NodeId) {
        self.raft.report_unreachable(id);
    }

    /// The transport finished sending a snapshot to `id` (or failed).
    pub fn report_snapshot(&mut self, id: NodeId, succeeded: bool) {
        self.raft.report_snapshot(id, succeeded);
    }

    /// Take a snapshot of the state machine at the applied index and drop the log before it.
    /// `data` must be the state machine image at exactly `applied()`. Compact again after
    /// applying a membership change: a node refuses a snapshot whose configuration does not
    /// include it, so a node added after the latest snapshot needs a newer one.
    pub fn compact(&mut self, data: Vec<u8>) {
        let applied = self.raft.log.applied();
        if applied <= self.raft.log.storage.snapshot().meta.index {
            return;
        }
        assert!(
            applied <= self.raft.log.persisted_last_index(),
            "compact at applied index {applied} past the persisted log ({})",
            self.raft.log.persisted_last_index()
        );
        let conf_state = self.raft.conf_state();
        self.raft.log.storage.compact(applied, conf_state, data);
    }

    /// Drops the in-memory log up to `index` (capped at the applied and persisted index),
    /// keeping the entries after it for followers that are slightly behind. `data` is what the
    /// kept snapshot carries (an application that builds snapshots fresh when it sends them
    /// may pass an empty image). The node's durable log (its WAL) is not affected.
    pub fn compact_to(&mut self, index: u64, data: Vec<u8>) {
        let index = index
            .min(self.raft.log.applied())
            .min(self.raft.log.persisted_last_index());
        if index <= self.raft.log.storage.snapshot().meta.index {
            return;
        }
        let conf_state = self.raft.conf_state();
        self.raft.log.storage.compact(index, conf_state, data);
        self.raft.log.storage.shrink_to_fit();
    }

    /// Index the application has applied.
    pub fn applied(&self) -> u64 {
        self.raft.log.applied()
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.raft.leader_id,
            role: self.raft.role,
        }
    }

    /// True if `ready()` would return something to do.
    pub fn has_ready(&self) -> bool {
        assert!(
            self.handed_out.is_none(),
            "has_ready() between ready() and advance()"
        );
        let log = &self.raft.log;
        !self.raft.msgs.is_empty()
            || !self.raft.read_states.is_empty()
            || !log.unstable_entries().is_empty()
            || log.unstable_snapshot().is_some()
            || log.has_next_committed_entries()
            || self.raft.hard_state() != self.prev_hard_state
            || self.soft_state() != self.prev_soft_state
    }

    /// Everything to persist, send and apply now. Call [`RawNode::advance`] when done.
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.handed_out.is_none(),
            "ready() called twice without advance()"
        );
        let log = &self.raft.log;
        let entries = log.unstable_entries().to_vec();
        let snapshot = log.unstable_snapshot().cloned();
        let committed_entries =
            log.next_committed_entries(self.raft.config().max_apply_bytes_per_ready);
        let hs = self.raft.hard_state();
        let hard_state = (hs != self.prev_hard_state).then_some(hs);
        let must_sync = !entries.is_empty()
            || snapshot.is_some()
            || hs.term != self.prev_hard_state.term
            || hs.vote != self.prev_hard_state.vote;
        // prev_hard_state is what the last advance() recorded, so it is durable. The commit
        // index the messages carry must not count this Ready's own entries: with a single
        // voter it does at once, and a learner told so would apply what a crash may lose.
        let send_before_persist = self.raft.role == Role::Leader
            && snapshot.is_none()
            && hs.term == self.prev_hard_state.term
            && hs.vote == self.prev_hard_state.vote
            && (hs.commit <= log.persisted_last_index()
                || self.raft.config().unsafe_send_first_with_unpersisted_commit);
        let ss = self.soft_state();
        let soft_state = (ss != self.prev_soft_state).then_some(ss);
        self.prev_soft_state = ss;
        self.handed_out = Some(HandedOut {
            hard_state,
            last_entry: entries.last().map(|e| (e.index, e.term)),
            snapshot_index: snapshot.as_ref().map(|s| s.meta.index),
            last_committed_index: committed_entries.last().map(|e| e.index),
            committed_bytes: committed_entries.iter().map(Entry::payload_bytes).sum(),
        });
        Ready {
            soft_state,
            hard_state,
            entries,
            snapshot,
            messages: std::mem::take(&mut self.raft.msgs),
            committed_entries,
            read_states: std::mem::take(&mut self.raft.read_states),
            must_sync,
            send_before_persist,
        }
    }

    /// The last Ready was persisted, sent and applied: move its entries to stable storage,
    /// record the applied index, and allow the next Ready.
    pub fn advance(&mut self) {
        let h = self
            .handed_out
            .take()
            .expect("advance() without a preceding ready()");
        if let Some(hs) = h.hard_state {
            self.prev_hard_state = hs;
            self.raft.log.storage.hard_state = hs;
        }
        if let Some(index) = h.snapshot_index {
            self.raft.log.stable_snapshot_to(index);
        }
        if let Some((index, term)) = h.last_entry {
            self.raft.log.stable_to(index, term);
        }
        if let Some(index) = h.last_committed_index {
            self.raft.log.applied_to(index);
        }
        if self.raft.role == Role::Leader {
            self.raft.reduce_uncommitted_bytes(h.committed_bytes);
        }
    }

    /// Current state, for status output and tests.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: self.soft_state(),
            applied: r.log.applied(),
            last_index: r.log.last_index(),
            progress: r
                .tracker
                .progress
                .iter()
                .map(|(id, p)| {
                    (
                        *id,
                        ProgressStatus {
                            match_index: p.match_index,
                            next_index: p.next_index,
                            state: p.state,
                            is_learner: p.is_learner,
                        },
                    )
                })
                .collect(),
            lead_transferee: r.lead_transferee,
        }
    }
}
