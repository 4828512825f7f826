//! The Raft state machine: roles, elections, replication, commit, reads, membership and
//! leadership transfer. Every input is a call (`tick`, `step`, ...); every output is queued
//! in `msgs` / `read_states` or in the log, and leaves through [`super::RawNode::ready`].
//!
//! Where each rule lives (paper = Ongaro & Ousterhout 2014, thesis = Ongaro 2014):
//! - election timeout with jitter: `Raft::tick_election`, `Raft::reset_randomized_election_timeout`
//! - pre-vote (thesis §9.6) and elections (§5.2): `Raft::hup`, `Raft::campaign`, `Raft::poll`
//! - term rules, stale-term replies, lease-protected votes: top of `Raft::step`
//! - vote granting with the log check (§5.4.1): `Raft::handle_vote_request`
//! - check-quorum step-down: `Raft::tick_heartbeat`
//! - no-op at term start: `Raft::become_leader`
//! - sending appends, batching, flow control, snapshots: `Raft::maybe_send_append`
//! - follower consistency check and fast backtracking hint: `Raft::handle_append`
//! - leader backtracking and pipelining: `Raft::handle_append_response`
//! - commit rule, current-term only (§5.4.2): `Raft::maybe_commit` -> `RaftLog::maybe_commit`
//! - uncommitted bytes cap: `Raft::append_entries`
//! - ReadIndex (thesis §6.4): `Raft::handle_read_index`, `Raft::handle_heartbeat_response`
//! - snapshot install on followers: `Raft::handle_snapshot`, `Raft::restore`
//! - membership changes, one at a time, effective when applied: `Raft::apply_conf_change`
//!   and the pending check in `Raft::step_leader`
//! - leadership transfer (thesis §3.10): `Raft::handle_transfer_leader`, TimeoutNow in `Raft::step_follower`

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

    /// Sends appends (or heartbeats' worth of nothing) to every member that is not paused.
    pub fn bcast_append(&mut self) {
        for id in self.peers() {
            self.maybe_send_append(id, true);
        }
    }

    /// Sends the next batch of entries to `to` if flow control allows, or a snapshot when the
    /// entries it needs were compacted. Batching: up to `max_entries_bytes_per_msg` per
    /// message. Pipelining: in Replicate state, `next_index` moves ahead optimistically and
    /// the window is bounded by inflights (count and bytes). Returns true if a message was sent.
    pub fn maybe_send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev_index = pr.next_index - 1;
        let recent_active = pr.recent_active;
        let prev_term = self.log.term(prev_index);
        let entries = self
            .log
            .entries(pr.next_index, self.config.max_entries_bytes_per_msg);
        match (prev_term, entries) {
            (Ok(log_term), Ok(entries)) => {
                if entries.is_empty() && !send_if_empty {
                    return false;
                }
                let n = entries.len();
                let last = entries.last().map_or(prev_index, |e| e.index);
                let bytes = entries.iter().map(Entry::payload_bytes).sum();
                let mut m = Message::new(MessageKind::Append, to, NO_NODE, 0);
                m.index = prev_index;
                m.log_term = log_term;
                m.entries = entries;
                m.commit = self.log.committed();
                self.tracker
                    .progress
                    .get_mut(&to)
                    .expect("checked above")
                    .sent_entries(n, last, bytes);
                self.send(m);
                true
            }
            _ => {
                // The entries `to` needs are compacted: send the snapshot instead.
                if !recent_active {
                    return false;
                }
                let snapshot = self.log.snapshot().clone();
                assert!(
                    snapshot.meta.index > 0,
                    "entries compacted but the snapshot is the bootstrap one"
                );
                let pr = self.tracker.progress.get_mut(&to).expect("checked above");
                pr.become_snapshot(snapshot.meta.index);
                let mut m = Message::new(MessageKind::Snapshot, to, NO_NODE, 0);
                m.snapshot = Some(snapshot);
                self.send(m);
                true
            }
        }
    }

    fn send_heartbeat(&mut self, to: NodeId, context: Vec<u8>) {
        let matched = self.tracker.progress.get(&to).map_or(0, |p| p.match_index);
        // Never tell a follower to commit past what it is known to hold.
        let mut m = Message::new(MessageKind::Heartbeat, to, NO_NODE, 0);
        m.commit = matched.min(self.log.committed());
        m.context = context;
        self.send(m);
    }

    fn bcast_heartbeat(&mut self) {
        let ctx = self
            .read_only
            .last_pending_context()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        for id in self.peers() {
            self.send_heartbeat(id, ctx.clone());
        }
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

    // ------------------------------------------------------------ elections

    /// Advance one tick: followers and candidates count toward an election, leaders toward
    /// heartbeats and check-quorum.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Non-leaders campaign after a randomized timeout without hearing from a leader.
    pub fn tick_election(&mut self) {
        self.election_elapsed_ticks += 1;
        if self.promotable()
            && self.election_elapsed_ticks >= self.randomized_election_timeout_ticks
        {
            self.election_elapsed_ticks = 0;
            self.hup(false);
        }
    }

    /// Leaders heartbeat every interval; with check-quorum, a leader that has not heard from
    /// a quorum within an election timeout steps down, so a partitioned leader stops serving.
    pub fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.config.election_timeout_ticks {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum && !self.tracker.quorum_active_and_reset(self.id) {
                self.become_follower(self.term, NO_NODE);
                return;
            }
            // A transfer that did not finish within an election timeout is abandoned.
            self.lead_transferee = NO_NODE;
        }
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.bcast_heartbeat();
        }
    }

    fn has_unapplied_conf_change(&self) -> bool {
        let lo = (self.log.applied() + 1).max(self.log.first_index());
        let hi = self.log.committed() + 1;
        if lo >= hi || self.log.unstable_snapshot().is_some() {
            return false;
        }
        let entries = self
            .log
            .slice(lo, hi, u64::MAX)
            .expect("unapplied entries are held");
        entries.iter().any(|e| e.kind == EntryKind::ConfChange)
    }

    /// Start an election if allowed. `transfer` skips pre-vote and marks the requests so
    /// voters grant them despite their lease (TimeoutNow).
    pub fn hup(&mut self, transfer: bool) {
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        // A committed but unapplied conf change could make this node's idea of the voters
        // wrong; campaigning then can elect two leaders (etcd-io/raft PR #469).
        if self.has_unapplied_conf_change() {
            return;
        }
        if self.config.pre_vote && !transfer {
            self.campaign(CampaignKind::PreElection, false);
        } else {
            self.campaign(CampaignKind::Election, transfer);
        }
    }

    fn campaign(&mut self, kind: CampaignKind, transfer: bool) {
        let (request, term) = match kind {
            CampaignKind::PreElection => {
                self.become_pre_candidate();
                (MessageKind::PreVote, self.term + 1)
            }
            CampaignKind::Election => {
                self.become_candidate();
                (MessageKind::Vote, self.term)
            }
        };
        if self.poll(self.id, true) == VoteResult::Won {
            // Single voter: won outright.
            match kind {
                CampaignKind::PreElection => self.campaign(CampaignKind::Election, transfer),
                CampaignKind::Election => self.become_leader(),
            }
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for id in self.tracker.voters() {
            if id == self.id {
                continue;
            }
            let mut m = Message::new(request, id, NO_NODE, term);
            m.index = last_index;
            m.log_term = last_term;
            if transfer {
                m.context = CAMPAIGN_TRANSFER.to_vec();
            }
            self.send(m);
        }
    }

    fn poll(&mut self, from: NodeId, granted: bool) -> VoteResult {
        self.tracker.record_vote(from, granted)
    }

    /// Answer a (pre-)vote request. Grant only if we have not voted for someone else in this
    /// term and the candidate's log is at least as up to date as ours (§5.4.1).
    pub fn handle_vote_request(&mut self, m: Message) {
        let response = if m.kind == MessageKind::Vote {
            MessageKind::VoteResponse
        } else {
            MessageKind::PreVoteResponse
        };
        let can_vote = self.vote == m.from
            || (self.vote == NO_NODE && self.leader_id == NO_NODE)
            || (m.kind == MessageKind::PreVote && m.term > self.term);
        let log_ok =
            self.config.unsafe_skip_vote_log_check || self.log.is_up_to_date(m.index, m.log_term);
        if can_vote && log_ok {
            self.send(Message::new(response, m.from, NO_NODE, m.term));
            if m.kind == MessageKind::Vote {
                self.election_elapsed_ticks = 0;
                self.vote = m.from;
            }
        } else {
            let mut r = Message::new(response, m.from, NO_NODE, self.term);
            r.reject = true;
            self.send(r);
        }
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

    // ------------------------------------------------------------ replication (follower)

    /// AppendEntries consistency check. On mismatch, reply with a hint for fast
    /// backtracking: the largest index `<= min(m.index, last)` whose term is `<= m.log_term`,
    /// and its term, so the leader can skip every entry of a conflicting term at once.
    pub fn handle_append(&mut self, m: Message) {
        let mut r = Message::new(MessageKind::AppendResponse, m.from, NO_NODE, 0);
        if m.index < self.log.committed() {
            r.index = self.log.committed();
            self.send(r);
            return;
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, &m.entries)
        {
            Some(last_new) => r.index = last_new,
            None => {
                let probe = m.index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(probe, m.log_term);
                r.index = m.index;
                r.reject = true;
                r.reject_hint = hint_index;
                r.log_term = hint_term;
            }
        }
        self.send(r);
    }

    fn handle_heartbeat(&mut self, m: Message) {
        self.log.commit_to(m.commit);
        let mut r = Message::new(MessageKind::HeartbeatResponse, m.from, NO_NODE, 0);
        r.context = m.context;
        self.send(r);
    }

    /// Install a snapshot from the leader (whole, one message), then report our last index.
    pub fn handle_snapshot(&mut self, m: Message) {
        let Some(snapshot) = m.snapshot else { return };
        let mut r = Message::new(MessageKind::AppendResponse, m.from, NO_NODE, 0);
        r.index = if self.restore(snapshot) {
            self.log.last_index()
        } else {
            self.log.committed()
        };
        self.send(r);
    }

    /// Replace the log by `snapshot` unless it is old news. Returns true if restored.
    pub fn restore(&mut self, snapshot: Snapshot) -> bool {
        let meta = &snapshot.meta;
        if meta.index <= self.log.committed() {
            return false;
        }
        let cs = &meta.conf_state;
        if !cs.voters.contains(&self.id) && !cs.learners.contains(&self.id) {
            return false; // a snapshot that would remove us: ignore (etcd does the same)
        }
        if self.log.match_term(meta.index, meta.term) {
            // We already hold the entry: just fast-forward the commit index.
            self.log.commit_to(meta.index);
            return false;
        }
        let cs = cs.clone();
        self.log.restore(snapshot);
        self.set_conf_state(&cs);
        true
    }

    // ------------------------------------------------------------ replication (leader)

    /// Assign terms and indexes to `entries` and append them, unless the uncommitted cap
    /// would be exceeded (the no-op and empty entries always fit).
    pub fn append_entries(&mut self, mut entries: Vec<Entry>) -> Result<(), ProposeError> {
        let last = self.log.last_index();
        for (i, e) in entries.iter_mut().enumerate() {
            e.term = self.term;
            e.index = last + 1 + i as u64;
        }
        let proposed: u64 = entries.iter().map(Entry::payload_bytes).sum();
        let limit = self.config.max_uncommitted_entries_bytes;
        if limit > 0
            && self.uncommitted_bytes > 0
            && proposed > 0
            && self.uncommitted_bytes + proposed > limit
        {
            return Err(ProposeError::UncommittedLimit {
                limit_bytes: limit,
                uncommitted_bytes: self.uncommitted_bytes,
                proposed_bytes: proposed,
            });
        }
        self.uncommitted_bytes += proposed;
        let new_last = self.log.append(&entries);
        if let Some(pr) = self.tracker.progress.get_mut(&self.id) {
            pr.maybe_update(new_last);
        }
        self.maybe_commit();
        Ok(())
    }

    /// Entries handed to the application as committed no longer count as uncommitted.
    pub fn reduce_uncommitted_bytes(&mut self, bytes: u64) {
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(bytes);
    }

    /// Commit the highest index a majority of voters holds, if it is from the current term.
    /// Returns true if the commit index moved.
    pub fn maybe_commit(&mut self) -> bool {
        let quorum_index = self.tracker.committed_index();
        let term = if self.config.unsafe_commit_any_term {
            self.log.term(quorum_index).unwrap_or(self.term)
        } else {
            self.term
        };
        let moved = self.log.maybe_commit(quorum_index, term);
        if moved && self.role == Role::Leader {
            self.release_pending_reads();
        }
        moved
    }

    fn committed_entry_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Ok(self.term)
    }

    /// Leader: a follower accepted or rejected an append.
    pub fn handle_append_response(&mut self, m: Message) {
        let first_index = self.log.first_index();
        let last_index = self.log.last_index();
        let next_probe = if m.reject && m.log_term > 0 {
            self.log.find_conflict_by_term(m.reject_hint, m.log_term).0
        } else {
            m.reject_hint
        };
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        if m.reject {
            if pr.maybe_decr_to(m.index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.maybe_send_append(m.from, true);
            }
            return;
        }
        let was_paused = pr.is_paused();
        if !pr.maybe_update(m.index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.match_index + 1 >= first_index => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Replicate => pr.inflights.free_le(m.index),
            ProgressState::Snapshot => {}
        }
        let matched = pr.match_index;
        if self.maybe_commit() {
            self.bcast_append();
        } else if was_paused {
            self.maybe_send_append(m.from, true);
        }
        while self.maybe_send_append(m.from, false) {}
        if m.from == self.lead_transferee && matched == last_index {
            self.send(Message::new(MessageKind::TimeoutNow, m.from, NO_NODE, 0));
        }
    }

    fn handle_heartbeat_response(&mut self, m: Message) {
        let last = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            pr.inflights.free_first_one();
        }
        if pr.match_index < last {
            self.maybe_send_append(m.from, true);
        }
        if m.context.is_empty() {
            return;
        }
        let Some(acks) = self.read_only.recv_ack(m.from, &m.context) else {
            return;
        };
        if !self.tracker.has_quorum(acks) {
            return;
        }
        for status in self.read_only.advance(&m.context) {
            self.respond_to_read(status.request, status.index);
        }
    }

    // ------------------------------------------------------------ reads

    /// Leader: ReadIndex (thesis §6.4). The read index is the commit index at arrival, but
    /// only once this leader committed an entry of its own term (etcd-io/etcd #7331);
    /// earlier requests wait. Leadership is then confirmed by a heartbeat round whose
    /// context is echoed by a quorum (see `handle_heartbeat_response`).
    pub fn handle_read_index(&mut self, m: Message) -> Result<(), ProposeError> {
        if m.context.is_empty() {
            return Err(ProposeError::EmptyReadContext);
        }
        if self.tracker.voters() == [self.id] || self.config.unsafe_read_without_quorum {
            let index = self.log.committed();
            self.respond_to_read(m, index);
        } else if !self.committed_entry_in_current_term() {
            self.pending_read_index_messages.push(m);
        } else {
            self.start_read(m);
        }
        Ok(())
    }

    fn start_read(&mut self, m: Message) {
        let ctx = m.context.clone();
        self.read_only.add_request(self.log.committed(), m);
        self.read_only.recv_ack(self.id, &ctx);
        for id in self.peers() {
            self.send_heartbeat(id, ctx.clone());
        }
    }

    fn release_pending_reads(&mut self) {
        if self.pending_read_index_messages.is_empty() || !self.committed_entry_in_current_term() {
            return;
        }
        for m in std::mem::take(&mut self.pending_read_index_messages) {
            self.start_read(m);
        }
    }

    fn respond_to_read(&mut self, request: Message, index: u64) {
        if request.from == NO_NODE || request.from == self.id {
            self.read_states.push(ReadState {
                index,
                context: request.context,
            });
        } else {
            let mut r = Message::new(MessageKind::ReadIndexResponse, request.from, NO_NODE, 0);
            r.index = index;
            r.context = request.context;
            self.send(r);
        }
    }

    // ------------------------------------------------------------ transfer, reports

    /// Leader: hand leadership to `m.from` once it has the whole log (then TimeoutNow).
    /// Proposals are refused meanwhile; the transfer is abandoned after an election timeout.
    pub fn handle_transfer_leader(&mut self, m: Message) {
        let transferee = m.from;
        if !self.tracker.is_voter(transferee) {
            return;
        }
        if self.lead_transferee != NO_NODE {
            if self.lead_transferee == transferee {
                return;
            }
            self.lead_transferee = NO_NODE;
        }
        if transferee == self.id {
            return;
        }
        self.election_elapsed_ticks = 0;
        self.lead_transferee = transferee;
        let matched = self.tracker.progress[&transferee].match_index;
        if matched == self.log.last_index() {
            self.send(Message::new(
                MessageKind::TimeoutNow,
                transferee,
                NO_NODE,
                0,
            ));
        } else {
            self.maybe_send_append(transferee, true);
        }
    }

    /// The transport could not reach `id`: stop pipelining to it and probe instead.
    pub fn report_unreachable(&mut self, id: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.tracker.progress.get_mut(&id) {
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    /// The transport finished (or failed) sending a snapshot to `id`. Either way the leader
    /// goes back to probing; after a failure it will send a fresh snapshot when probed.
    pub fn report_snapshot(&mut self, id: NodeId, succeeded: bool) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.tracker.progress.get_mut(&id) {
            if pr.state == ProgressState::Snapshot {
                if !succeeded {
                    pr.pending_snapshot = 0;
                }
                pr.become_probe();
                // Wait for a heartbeat response before probing again.
                pr.probe_sent = true;
            }
        }
    }

    // ------------------------------------------------------------ membership

    /// Apply a committed configuration change (call when applying its entry). Changes take
    /// effect when applied, one at a time, as in etcd-io/raft. A leader that removed itself
    /// steps down; a removal that would leave no voter is ignored.
    pub fn apply_conf_change(&mut self, cc: ConfChange) -> ConfState {
        let id = cc.node_id;
        match cc.kind {
            ConfChangeKind::AddNode => match self.tracker.progress.get_mut(&id) {
                Some(p) => p.is_learner = false,
                None => {
                    let p = self.new_progress(id, false);
                    self.tracker.progress.insert(id, p);
                }
            },
            ConfChangeKind::AddLearner => {
                if !self.tracker.progress.contains_key(&id) {
                    let p = self.new_progress(id, true);
                    self.tracker.progress.insert(id, p);
                }
            }
            ConfChangeKind::RemoveNode => {
                if self.tracker.voters() != [id] {
                    self.tracker.progress.remove(&id);
                    self.tracker.votes.remove(&id);
                }
            }
        }
        if self.role == Role::Leader {
            let is_new_member = cc.kind != ConfChangeKind::RemoveNode
                && self
                    .tracker
                    .progress
                    .get(&id)
                    .is_some_and(|p| p.match_index == 0 && !p.probe_sent);
            if is_new_member && id != self.id {
                // Start replicating to the new member now rather than at the next heartbeat.
                self.maybe_send_append(id, true);
            }
            if !self.tracker.progress.contains_key(&self.id) {
                self.become_follower(self.term, NO_NODE);
            } else {
                if self.lead_transferee != NO_NODE
                    && !self.tracker.progress.contains_key(&self.lead_transferee)
                {
                    self.lead_transferee = NO_NODE;
                }
                // The quorum may have shrunk.
                if self.maybe_commit() {
                    self.bcast_append();
                }
            }
        }
        self.conf_state()
    }

    /// Ticks since the last election-timer reset (for status output).
    pub fn election_elapsed_ticks(&self) -> u64 {
        self.election_elapsed_ticks
    }
}
