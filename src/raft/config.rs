//! Tunables of one Raft node, with defaults that suit a LAN cluster ticking every 100 ms.

use super::message::{NodeId, NO_NODE};

/// Configuration of one node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id. Invariant: not 0.
    pub id: NodeId,
    /// Ticks without hearing from a leader before campaigning; the actual timeout is drawn
    /// uniformly from `[election_timeout_ticks, 2 * election_timeout_ticks)`.
    pub election_timeout_ticks: u64,
    /// Ticks between leader heartbeats. Invariant: `< election_timeout_ticks`.
    pub heartbeat_interval_ticks: u64,
    /// Upper bound on the payload bytes of one append message (one entry always fits).
    pub max_entries_bytes_per_msg: u64,
    /// Appends in flight per follower in Replicate state.
    pub max_inflight_msgs: usize,
    /// Payload bytes in flight per follower (0 = no byte limit).
    pub max_inflight_bytes: u64,
    /// Leader refuses proposals once this many payload bytes are uncommitted (0 = no limit).
    pub max_uncommitted_entries_bytes: u64,
    /// Upper bound on the payload bytes of committed entries handed out in one Ready.
    pub max_apply_bytes_per_ready: u64,
    /// Run a pre-vote round before a real election (thesis §9.6).
    pub pre_vote: bool,
    /// Leader steps down after an election timeout without hearing from a quorum, and
    /// followers ignore vote requests while they hear from a leader.
    pub check_quorum: bool,
    /// Seed of the election-jitter generator (mixed with `id`).
    pub seed: u64,
    /// BROKEN ON PURPOSE when true: grant votes without the up-to-date log check (§5.4.1).
    /// Exists only so tests can show the simulator catches the resulting safety violation.
    #[doc(hidden)]
    pub unsafe_skip_vote_log_check: bool,
    /// BROKEN ON PURPOSE when true: commit any entry stored on a quorum, whatever its term
    /// (the mistake Figure 8 of the Raft paper warns about). For harness tests only.
    #[doc(hidden)]
    pub unsafe_commit_any_term: bool,
    /// BROKEN ON PURPOSE when true: answer ReadIndex at once with the local commit index,
    /// without confirming leadership with a quorum. For harness tests only.
    #[doc(hidden)]
    pub unsafe_read_without_quorum: bool,
    /// BROKEN ON PURPOSE when true: let a leader send before it persists even when its commit
    /// index counts the entries it has not persisted yet (a single voter's does), so a learner
    /// may apply what a crash loses. For harness tests only.
    #[doc(hidden)]
    pub unsafe_send_first_with_unpersisted_commit: bool,
}

impl Config {
    /// Defaults for node `id`: election 10 ticks, heartbeat 1, pre-vote and check-quorum on.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 1,
            max_entries_bytes_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            max_inflight_bytes: 0,
            max_uncommitted_entries_bytes: 0,
            max_apply_bytes_per_ready: 64 * 1024 * 1024,
            pre_vote: true,
            check_quorum: true,
            seed: id,
            unsafe_skip_vote_log_check: false,
            unsafe_commit_any_term: false,
            unsafe_read_without_quorum: false,
            unsafe_send_first_with_unpersisted_commit: false,
        }
    }

    /// Checks the invariants above.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NO_NODE {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_interval_ticks == 0
            || self.heartbeat_interval_ticks >= self.election_timeout_ticks
        {
            return Err(ConfigError::HeartbeatNotBelowElection {
                heartbeat_interval_ticks: self.heartbeat_interval_ticks,
                election_timeout_ticks: self.election_timeout_ticks,
            });
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        Ok(())
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Node id 0 is reserved for "none".
    ZeroId,
    /// Heartbeats must come more often than elections, and at least every tick count > 0.
    HeartbeatNotBelowElection {
        /// Configured heartbeat interval.
        heartbeat_interval_ticks: u64,
        /// Configured election timeout.
        election_timeout_ticks: u64,
    },
    /// At least one append must be allowed in flight.
    ZeroInflight,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::ZeroId => write!(f, "node id must not be 0"),
            ConfigError::HeartbeatNotBelowElection { heartbeat_interval_ticks, election_timeout_ticks } => write!(
                f,
                "heartbeat interval ({heartbeat_interval_ticks} ticks) must be in [1, election timeout {election_timeout_ticks} ticks)"
            ),
            ConfigError::ZeroInflight => write!(f, "max_inflight_msgs must be positive"),
        }
    }
}

impl std::error::Error for ConfigError {}
