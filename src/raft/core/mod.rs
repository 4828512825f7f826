//! The Raft state machine: one struct, [`Raft`], whose methods are spread over files by
//! topic. Every input is a call (`tick`, `step`, ...); every output is queued in `msgs` /
//! `read_states` or in the log, and leaves through [`super::RawNode::ready`].
//!
//! | file | owns |
//! |---|---|
//! | `core/mod.rs` | the struct, sending, role changes (`become_*`), and `step`: term rules, then dispatch to `step_leader` / `step_candidate` / `step_follower` |
//! | `core/election.rs` | ticks, pre-vote and vote rounds, vote granting, check-quorum, leadership transfer |
//! | `core/replication.rs` | appends and snapshots out, follower consistency check, backtracking, commit, transport reports |
//! | `core/read_index.rs` | ReadIndex on the leader and the answers to followers |
//! | `core/membership.rs` | applying configuration changes |
//!
//! Where each rule lives (paper = Ongaro & Ousterhout 2014, thesis = Ongaro 2014):
//! - election timeout with jitter: `election.rs` `Raft::tick_election`; `mod.rs` `Raft::reset_randomized_election_timeout`
//! - pre-vote (thesis §9.6) and elections (§5.2): `election.rs` `Raft::hup`, `Raft::campaign`, `Raft::poll`
//! - term rules, stale-term replies, lease-protected votes: `mod.rs`, top of `Raft::step`
//! - vote granting with the log check (§5.4.1): `election.rs` `Raft::handle_vote_request`
//! - check-quorum step-down: `election.rs` `Raft::tick_heartbeat`
//! - no-op at term start: `mod.rs` `Raft::become_leader`
//! - sending appends, batching, flow control, snapshots: `replication.rs` `Raft::maybe_send_append`
//! - follower consistency check and fast backtracking hint: `replication.rs` `Raft::handle_append`
//! - leader backtracking and pipelining: `replication.rs` `Raft::handle_append_response`
//! - commit rule, current-term only (§5.4.2): `replication.rs` `Raft::maybe_commit` -> `log.rs` `RaftLog::maybe_commit`
//! - uncommitted bytes cap: `replication.rs` `Raft::append_entries`
//! - ReadIndex (thesis §6.4): `read_index.rs` `Raft::handle_read_index`; `replication.rs` `Raft::handle_heartbeat_response`
//! - snapshot install on followers: `replication.rs` `Raft::handle_snapshot`, `Raft::restore`
//! - transport reports (failed snapshot, unreachable peer): `replication.rs` `Raft::report_snapshot`, `Raft::report_unreachable`
//! - membership changes, one at a time, effective when applied: `membership.rs` `Raft::apply_conf_change`,
//!   and the pending check in `mod.rs` `Raft::step_leader`
//! - leadership transfer (thesis §3.10): `election.rs` `Raft::handle_transfer_leader`; TimeoutNow in `mod.rs` `Raft::step_follower`

mod election;
mod membership;
mod read_index;
mod replication;

use super::config::Config;
use super::log::RaftLog;
use super::message::*;
use super::progress::{Inflights, Progress, ProgressState, ProgressTracker, VoteResult};
use super::read_only::ReadOnly;
use super::rng::SplitMix64;
use super::storage::MemoryStorage;

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win, without bumping its term.
    PreCandidate,
    /// Asking for votes in its own new term.
    Candidate,
    /// Leads the term.
    Leader,
}

/// Why a proposal or read was not accepted by this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader is known to forward to, or this node is campaigning.
    NoLeader,
    /// The leader is handing over leadership and accepts nothing meanwhile.
    TransferInProgress {
        /// Node receiving leadership.
        transferee: NodeId,
    },
    /// Too many uncommitted bytes on the leader.
    UncommittedLimit {
        /// Configured cap.
        limit_bytes: u64,
        /// Bytes already uncommitted.
        uncommitted_bytes: u64,
        /// Bytes in the refused proposal.
        proposed_bytes: u64,
    },
    /// The leader is not in the configuration any more.
    NotAMember,
    /// A configuration change is still unapplied; only one may be in flight.
    ConfChangePending {
        /// Index of the pending change.
        pending_index: u64,
        /// What the leader has applied.
        applied_index: u64,
    },
    /// Read requests need a non-empty context to match acknowledgements.
    EmptyReadContext,
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proposal dropped: {self:?}")
    }
}

impl std::error::Error for ProposeError {}

/// Whether a campaign runs the pre-vote round first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CampaignKind {
    PreElection,
    Election,
}

/// One Raft node's protocol state. See the module doc for where each rule lives.
pub struct Raft {
    /// This node.
    pub id: NodeId,
    /// Current term. Invariant: never decreases.
    pub term: u64,
    /// Vote cast in `term` ([`NO_NODE`] if none). Invariant: changes only with `term`.
    pub vote: NodeId,
    /// Known leader of `term`, or [`NO_NODE`].
    pub leader_id: NodeId,
    /// Current role.
    pub role: Role,
    /// The log with commit/apply cursors.
    pub log: RaftLog,
    /// Membership, per-member progress (meaningful on the leader) and votes.
    pub tracker: ProgressTracker,
    /// Outgoing messages, drained by `RawNode::ready`.
    pub msgs: Vec<Message>,
    /// Completed reads, drained by `RawNode::ready`.
    pub read_states: Vec<ReadState>,
    /// Leader being handed leadership, or [`NO_NODE`].
    pub lead_transferee: NodeId,
    read_only: ReadOnly,
    /// ReadIndex requests that arrived before the leader committed in its term.
    pending_read_index_messages: Vec<Message>,
    election_elapsed_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    /// Invariant: in `[election_timeout_ticks, 2 * election_timeout_ticks)`.
    randomized_election_timeout_ticks: u64,
    /// Index of the latest conf change the leader appended (or its last index at term start).
    pending_conf_index: u64,
    /// Payload bytes appended by this leader and not yet handed out as committed.
    uncommitted_bytes: u64,
    config: Config,
    rng: SplitMix64,
}

impl Raft {
    /// A node restarted (or started) from `storage`.
    pub fn new(config: &Config, storage: MemoryStorage) -> Raft {
        config
            .validate()
            .unwrap_or_else(|e| panic!("invalid raft config: {e}"));
        let hard_state = storage.hard_state;
        let conf_state = storage.snapshot().meta.conf_state.clone();
        let log = RaftLog::new(storage);
        let mut r = Raft {
            id: config.id,
            term: hard_state.term,
            vote: hard_state.vote,
            leader_id: NO_NODE,
            role: Role::Follower,
            log,
            tracker: ProgressTracker::default(),
            msgs: Vec::new(),
            read_states: Vec::new(),
            lead_transferee: NO_NODE,
            read_only: ReadOnly::default(),
            pending_read_index_messages: Vec::new(),
            election_elapsed_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            randomized_election_timeout_ticks: config.election_timeout_ticks,
            pending_conf_index: 0,
            uncommitted_bytes: 0,
            config: config.clone(),
            rng: SplitMix64::new(config.seed ^ config.id.wrapping_mul(0xA24B_AED4_963E_E407)),
        };
        r.set_conf_state(&conf_state);
        r.become_follower(hard_state.term, NO_NODE);
        r
    }

    /// The configuration this node was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What must be persisted.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// Current membership.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.tracker.voters(),
            learners: self.tracker.learners(),
        }
    }

    /// Payload bytes the leader counts as uncommitted.
    pub fn uncommitted_bytes(&self) -> u64 {
        self.uncommitted_bytes
    }

    /// Number of ReadIndex requests waiting for a quorum or for the first commit of the term.
    pub fn pending_reads(&self) -> usize {
        self.read_only.pending_count() + self.pending_read_index_messages.len()
    }

    fn new_progress(&self, id: NodeId, is_learner: bool) -> Progress {
        let last = self.log.last_index();
        let mut p = Progress::new(
            last + 1,
            Inflights::new(
                self.config.max_inflight_msgs,
                self.config.max_inflight_bytes,
            ),
            is_learner,
        );
        if id == self.id {
            p.match_index = last;
        }
        p
    }

    fn set_conf_state(&mut self, cs: &ConfState) {
        self.tracker.progress.clear();
        for id in &cs.voters {
            let p = self.new_progress(*id, false);
            self.tracker.progress.insert(*id, p);
        }
        for id in &cs.learners {
            let p = self.new_progress(*id, true);
            self.tracker.progress.insert(*id, p);
        }
    }

    /// Only voters may campaign.
    pub fn promotable(&self) -> bool {
        self.tracker.is_voter(self.id)
    }

    // ------------------------------------------------------------ sending

    /// Queues `m` for the next Ready, stamping sender and term. Vote messages carry their
    /// own term; forwarded Propose/ReadIndex carry none (they are not bound to a term).
    fn send(&mut self, mut m: Message) {
        if m.from == NO_NODE {
            m.from = self.id;
        }
        match m.kind {
            MessageKind::Vote
            | MessageKind::VoteResponse
            | MessageKind::PreVote
            | MessageKind::PreVoteResponse => {
                assert!(m.term != 0, "{:?} sent without a term: {m}", m.kind)
            }
            MessageKind::Propose | MessageKind::ReadIndex => {}
            _ => m.term = self.term,
        }
        self.msgs.push(m);
    }

    fn peers(&self) -> Vec<NodeId> {
        self.tracker
            .progress
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect()
    }

    // ------------------------------------------------------------ role changes

    fn reset_randomized_election_timeout(&mut self) {
        let base = self.config.election_timeout_ticks;
        self.randomized_election_timeout_ticks = base + self.rng.below(base);
    }

    fn reset(&mut self, term: u64) {
        if self.term != term {
            assert!(
                term > self.term,
                "term would go back from {} to {term}",
                self.term
            );
            self.term = term;
            self.vote = NO_NODE;
        }
        self.leader_id = NO_NODE;
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = NO_NODE;
        self.tracker.votes.clear();
        let ids: Vec<(NodeId, bool)> = self
            .tracker
            .progress
            .iter()
            .map(|(id, p)| (*id, p.is_learner))
            .collect();
        for (id, is_learner) in ids {
            let p = self.new_progress(id, is_learner);
            self.tracker.progress.insert(id, p);
        }
        self.pending_conf_index = 0;
        self.uncommitted_bytes = 0;
        self.read_only = ReadOnly::default();
        self.pending_read_index_messages.clear();
    }

    /// Follow `leader` (or nobody) in `term`.
    pub fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.leader_id = leader;
        self.role = Role::Follower;
    }

    fn become_pre_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "leader {} cannot become pre-candidate",
            self.id
        );
        // Neither term nor vote changes: a pre-vote round is harmless to lose.
        self.tracker.votes.clear();
        self.leader_id = NO_NODE;
        self.role = Role::PreCandidate;
    }

    fn become_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "leader {} cannot become candidate",
            self.id
        );
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = Role::Candidate;
    }

    /// Take the lead in the current term and append the term's no-op entry, which lets the
    /// leader commit (and so serve ReadIndex) without waiting for a client write.
    pub fn become_leader(&mut self) {
        assert!(
            self.role != Role::Follower,
            "follower {} cannot become leader directly",
            self.id
        );
        self.reset(self.term);
        self.leader_id = self.id;
        self.role = Role::Leader;
        if let Some(pr) = self.tracker.progress.get_mut(&self.id) {
            pr.become_replicate();
        }
        // Any conf change already in the log may be unapplied: wait for it.
        self.pending_conf_index = self.log.last_index();
        let noop = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data: Vec::new(),
        };
        self.append_entries(vec![noop])
            .expect("the empty no-op never exceeds the uncommitted cap");
    }
    // ------------------------------------------------------------ step

    /// Handle one message (from a peer, or a local Propose/ReadIndex with `from == 0`).
    pub fn step(&mut self, m: Message) -> Result<(), ProposeError> {
        if m.term > self.term {
            if matches!(m.kind, MessageKind::Vote | MessageKind::PreVote) {
                let forced = m.context == CAMPAIGN_TRANSFER;
                let in_lease = self.config.check_quorum
                    && self.leader_id != NO_NODE
                    && self.election_elapsed_ticks < self.config.election_timeout_ticks;
                if !forced && in_lease {
                    // We heard from a leader recently: a disruptive candidate is ignored.
                    return Ok(());
                }
            }
            let keeps_term = m.kind == MessageKind::PreVote
                || (m.kind == MessageKind::PreVoteResponse && !m.reject);
            if !keeps_term {
                let leader = match m.kind {
                    MessageKind::Append | MessageKind::Heartbeat | MessageKind::Snapshot => m.from,
                    _ => NO_NODE,
                };
                self.become_follower(m.term, leader);
            }
        } else if m.term < self.term && m.term != 0 {
            if (self.config.check_quorum || self.config.pre_vote)
                && matches!(m.kind, MessageKind::Heartbeat | MessageKind::Append)
            {
                // A stale leader: tell it our term so it steps down (it cannot learn it from
                // our votes, which pre-vote/check-quorum may suppress).
                self.send(Message::new(
                    MessageKind::AppendResponse,
                    m.from,
                    NO_NODE,
                    0,
                ));
            } else if m.kind == MessageKind::PreVote {
                let mut r = Message::new(MessageKind::PreVoteResponse, m.from, NO_NODE, self.term);
                r.reject = true;
                self.send(r);
            }
            return Ok(());
        }
        match m.kind {
            MessageKind::Vote | MessageKind::PreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            _ => match self.role {
                Role::Leader => self.step_leader(m),
                Role::Candidate | Role::PreCandidate => self.step_candidate(m),
                Role::Follower => self.step_follower(m),
            },
        }
    }

    /// Leader: accept proposals (one conf change at a time), serve reads, track followers.
    pub fn step_leader(&mut self, m: Message) -> Result<(), ProposeError> {
        match m.kind {
            MessageKind::Propose => {
                assert!(
                    !m.entries.is_empty(),
                    "proposal from {} without entries",
                    m.from
                );
                if !self.tracker.progress.contains_key(&self.id) {
                    return Err(ProposeError::NotAMember);
                }
                if self.lead_transferee != NO_NODE {
                    return Err(ProposeError::TransferInProgress {
                        transferee: self.lead_transferee,
                    });
                }
                let conf_changes = m
                    .entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::ConfChange)
                    .count();
                if conf_changes > 0 {
                    if conf_changes > 1 || self.pending_conf_index > self.log.applied() {
                        return Err(ProposeError::ConfChangePending {
                            pending_index: self.pending_conf_index,
                            applied_index: self.log.applied(),
                        });
                    }
                    let offset = m
                        .entries
                        .iter()
                        .position(|e| e.kind == EntryKind::ConfChange)
                        .expect("counted");
                    self.pending_conf_index = self.log.last_index() + 1 + offset as u64;
                }
                self.append_entries(m.entries)?;
                self.bcast_append();
                Ok(())
            }
            MessageKind::ReadIndex => self.handle_read_index(m),
            MessageKind::AppendResponse => {
                self.handle_append_response(m);
                Ok(())
            }
            MessageKind::HeartbeatResponse => {
                self.handle_heartbeat_response(m);
                Ok(())
            }
            MessageKind::TransferLeader => {
                self.handle_transfer_leader(m);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Candidates and pre-candidates: count votes; a message from a leader of our term
    /// means we lost.
    fn step_candidate(&mut self, m: Message) -> Result<(), ProposeError> {
        let my_response = if self.role == Role::PreCandidate {
            MessageKind::PreVoteResponse
        } else {
            MessageKind::VoteResponse
        };
        match m.kind {
            MessageKind::Propose | MessageKind::ReadIndex => Err(ProposeError::NoLeader),
            MessageKind::Append => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
                Ok(())
            }
            MessageKind::Heartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
                Ok(())
            }
            MessageKind::Snapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
                Ok(())
            }
            kind if kind == my_response => {
                match self.poll(m.from, !m.reject) {
                    VoteResult::Won => {
                        if self.role == Role::PreCandidate {
                            self.campaign(CampaignKind::Election, false);
                        } else {
                            self.become_leader();
                            self.bcast_append();
                        }
                    }
                    VoteResult::Lost => self.become_follower(self.term, NO_NODE),
                    VoteResult::Pending => {}
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Followers: accept the leader's messages, forward client requests to it.
    pub fn step_follower(&mut self, mut m: Message) -> Result<(), ProposeError> {
        match m.kind {
            MessageKind::Propose | MessageKind::ReadIndex | MessageKind::TransferLeader => {
                if self.leader_id == NO_NODE {
                    return Err(ProposeError::NoLeader);
                }
                m.to = self.leader_id;
                self.send(m);
                Ok(())
            }
            MessageKind::Append => {
                self.election_elapsed_ticks = 0;
                self.leader_id = m.from;
                self.handle_append(m);
                Ok(())
            }
            MessageKind::Heartbeat => {
                self.election_elapsed_ticks = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(m);
                Ok(())
            }
            MessageKind::Snapshot => {
                self.election_elapsed_ticks = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m);
                Ok(())
            }
            MessageKind::TimeoutNow => {
                // Leadership transfer: campaign at once, skipping pre-vote.
                self.hup(true);
                Ok(())
            }
            MessageKind::ReadIndexResponse => {
                self.read_states.push(ReadState {
                    index: m.index,
                    context: m.context,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Ticks since the last election-timer reset (for status output).
    pub fn election_elapsed_ticks(&self) -> u64 {
        self.election_elapsed_ticks
    }
}
