//! What the leader knows about each follower, and flow control.
//!
//! ```text
//!                 +-----------------------------------------------+
//!                 |   reject / unreachable                        |
//!                 v                                               |
//!   +---------+  accepted append  +-------------+  snapshot    +--+--------+
//!   |  Probe  | ----------------> |  Replicate  | -----------> | Snapshot  |
//!   | 1 msg / |                   | pipelined,  |  (needed     | paused    |
//!   | beat    | <---------------- | inflights   |   entries    | until ack |
//!   +---------+   reject/unreach. +-------------+   compacted) +-----------+
//!        ^                                                          |
//!        +------------------ snapshot acked or failed --------------+
//! ```
//! *Probe*: one append per heartbeat interval until the follower's match is found (fast
//! backtracking moves `next_index` a term at a time). *Replicate*: appends are sent
//! optimistically (pipelining), bounded by [`Inflights`] in messages and bytes.
//! *Snapshot*: nothing is sent until the snapshot is acknowledged or reported failed.

use super::message::NodeId;
use std::collections::{BTreeMap, VecDeque};

/// Flow-control window: appends sent but not yet acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Inflights {
    /// (last index of an append, payload bytes it carried), oldest first.
    /// Invariant: indexes strictly increase; `len() <= max_count`.
    window: VecDeque<(u64, u64)>,
    bytes: u64,
    max_count: usize,
    /// 0 means no byte limit.
    max_bytes: u64,
}

impl Inflights {
    /// An empty window allowing `max_count` messages and `max_bytes` payload (0 = no limit).
    pub fn new(max_count: usize, max_bytes: u64) -> Inflights {
        assert!(max_count > 0, "max_inflight_msgs must be positive");
        Inflights {
            window: VecDeque::new(),
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    /// Records an append ending at `last_index` carrying `bytes`.
    pub fn add(&mut self, last_index: u64, bytes: u64) {
        assert!(
            !self.full(),
            "inflights add while full ({} msgs, {} bytes)",
            self.window.len(),
            self.bytes
        );
        if let Some((prev, _)) = self.window.back() {
            assert!(
                last_index > *prev,
                "inflight index {last_index} not after {prev}"
            );
        }
        self.window.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    /// Frees every append ending at or before `index` (acknowledged).
    pub fn free_le(&mut self, index: u64) {
        while let Some((i, b)) = self.window.front() {
            if *i > index {
                break;
            }
            self.bytes -= b;
            self.window.pop_front();
        }
    }

    /// Frees the oldest append: used when a heartbeat response shows the follower is alive
    /// but acknowledgements were lost, so a full window does not stall replication forever.
    pub fn free_first_one(&mut self) {
        if let Some((_, b)) = self.window.pop_front() {
            self.bytes -= b;
        }
    }

    /// True when no more appends may be sent.
    pub fn full(&self) -> bool {
        self.window.len() >= self.max_count || (self.max_bytes > 0 && self.bytes >= self.max_bytes)
    }

    /// Number of appends in flight.
    pub fn count(&self) -> usize {
        self.window.len()
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }
}

/// Replication state of one follower (see the module doc diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Looking for the match point; one append at a time.
    Probe,
    /// Streaming appends, bounded by inflights.
    Replicate,
    /// Waiting for a snapshot to be installed.
    Snapshot,
}

/// The leader's view of one member.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known replicated on the member. Invariant: `match_index < next_index`.
    pub match_index: u64,
    /// Next index to send.
    pub next_index: u64,
    /// See [`ProgressState`].
    pub state: ProgressState,
    /// In Snapshot state: the index of the snapshot sent.
    pub pending_snapshot: u64,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// In Probe state: an append was sent and no answer arrived yet.
    pub probe_sent: bool,
    /// Appends in flight (Replicate state).
    pub inflights: Inflights,
    /// Learners replicate but do not vote.
    pub is_learner: bool,
}

impl Progress {
    /// A member about to be probed from `next_index`.
    pub fn new(next_index: u64, inflights: Inflights, is_learner: bool) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: true,
            probe_sent: false,
            inflights,
            is_learner,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    /// Back to probing (after a reject, an unreachable report, or a snapshot).
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next_index = (self.match_index + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next_index = self.match_index + 1;
        }
    }

    /// Start streaming after the match point is known.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_index = self.match_index + 1;
    }

    /// Stop sending until the snapshot at `snapshot_index` is acknowledged.
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// The member acknowledged up to `index`. Returns false if that was old news.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = self.match_index < index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// The member rejected an append at `rejected`, hinting its log may match at
    /// `match_hint`. Returns false if the rejection is stale.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.next_index = self.match_index + 1;
            return true;
        }
        if self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = rejected.min(match_hint + 1).max(self.match_index + 1);
        self.probe_sent = false;
        true
    }

    /// An append with `entries` entries ending at `last_index`, `bytes` of payload, was sent.
    pub fn sent_entries(&mut self, entries: usize, last_index: u64, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if entries > 0 {
                    self.next_index = last_index + 1;
                    self.inflights.add(last_index, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => panic!("sending entries to a member in Snapshot state"),
        }
    }

    /// True when nothing may be sent now.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }
}

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer grant.
    Lost,
    /// Still waiting.
    Pending,
}

/// Progress of every member, the votes of the current election, and quorum arithmetic.
#[derive(Clone, Debug, Default)]
pub struct ProgressTracker {
    /// Every member (voters and learners), keyed by id.
    pub progress: BTreeMap<NodeId, Progress>,
    /// Votes received in the current election: id -> granted.
    pub votes: BTreeMap<NodeId, bool>,
}

impl ProgressTracker {
    /// Voter ids in ascending order.
    pub fn voters(&self) -> Vec<NodeId> {
        self.progress
            .iter()
            .filter(|(_, p)| !p.is_learner)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Learner ids in ascending order.
    pub fn learners(&self) -> Vec<NodeId> {
        self.progress
            .iter()
            .filter(|(_, p)| p.is_learner)
            .map(|(id, _)| *id)
            .collect()
    }

    /// True if `id` is a voter.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.progress.get(&id).is_some_and(|p| !p.is_learner)
    }

    /// Smallest number of voters that forms a majority.
    pub fn quorum(&self) -> usize {
        self.voters().len() / 2 + 1
    }

    /// The highest index replicated on a majority of voters.
    pub fn committed_index(&self) -> u64 {
        let mut matched: Vec<u64> = self
            .progress
            .values()
            .filter(|p| !p.is_learner)
            .map(|p| p.match_index)
            .collect();
        if matched.is_empty() {
            return 0;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[self.quorum() - 1]
    }

    /// Records a vote (the first one from each voter counts) and tallies.
    pub fn record_vote(&mut self, id: NodeId, granted: bool) -> VoteResult {
        if self.is_voter(id) {
            self.votes.entry(id).or_insert(granted);
        }
        self.tally()
    }

    /// Counts the recorded votes.
    pub fn tally(&self) -> VoteResult {
        let voters = self.voters().len();
        let granted = self
            .votes
            .iter()
            .filter(|(id, g)| **g && self.is_voter(**id))
            .count();
        let rejected = self
            .votes
            .iter()
            .filter(|(id, g)| !**g && self.is_voter(**id))
            .count();
        if granted >= self.quorum() {
            VoteResult::Won
        } else if rejected > voters - self.quorum() {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    /// True if a quorum of voters counts as active (`self_id` always does), then clears the
    /// flags for the next round.
    pub fn quorum_active_and_reset(&mut self, self_id: NodeId) -> bool {
        let quorum = self.quorum();
        let active = self
            .progress
            .iter()
            .filter(|(id, p)| !p.is_learner && (p.recent_active || **id == self_id))
            .count();
        for (id, p) in self.progress.iter_mut() {
            p.recent_active = *id == self_id;
        }
        active >= quorum
    }

    /// True if `acks` contains a majority of voters.
    pub fn has_quorum(&self, acks: &std::collections::BTreeSet<NodeId>) -> bool {
        acks.iter().filter(|id| self.is_voter(**id)).count() >= self.quorum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_limit_by_count_and_bytes() {
        let mut f = Inflights::new(3, 100);
        f.add(1, 10);
        f.add(2, 10);
        assert!(!f.full());
        f.add(3, 10);
        assert!(f.full(), "count limit");
        f.free_le(2);
        assert_eq!(f.count(), 1);
        f.add(4, 95);
        assert!(f.full(), "byte limit");
        f.free_le(4);
        assert_eq!(f.count(), 0);
    }

    #[test]
    fn committed_index_is_the_majority_match() {
        let mut t = ProgressTracker::default();
        for (id, m) in [(1, 5), (2, 3), (3, 9)] {
            let mut p = Progress::new(1, Inflights::new(1, 0), false);
            p.match_index = m;
            t.progress.insert(id, p);
        }
        let mut learner = Progress::new(1, Inflights::new(1, 0), true);
        learner.match_index = 100;
        t.progress.insert(4, learner);
        assert_eq!(t.committed_index(), 5);
    }

    #[test]
    fn committed_index_matches_a_naive_oracle() {
        // Oracle: the largest index that at least a quorum of voters holds.
        let mut rng = crate::raft::rng::SplitMix64::new(5);
        for _ in 0..5000 {
            let voters = 1 + rng.below(7) as usize;
            let learners = rng.below(3) as usize;
            let mut t = ProgressTracker::default();
            let mut matches = Vec::new();
            for id in 0..(voters + learners) as u64 {
                let mut p = Progress::new(1, Inflights::new(1, 0), id as usize >= voters);
                p.match_index = rng.below(20);
                if (id as usize) < voters {
                    matches.push(p.match_index);
                }
                t.progress.insert(id + 1, p);
            }
            let quorum = voters / 2 + 1;
            let oracle = (0..=20u64)
                .filter(|i| matches.iter().filter(|m| *m >= i).count() >= quorum)
                .max()
                .unwrap();
            assert_eq!(t.committed_index(), oracle, "matches {matches:?}");
        }
    }

    #[test]
    fn probe_backtracks_only_on_the_outstanding_rejection() {
        let mut p = Progress::new(10, Inflights::new(4, 0), false);
        assert!(!p.maybe_decr_to(5, 2), "stale rejection ignored");
        assert!(p.maybe_decr_to(9, 4));
        assert_eq!(p.next_index, 5);
    }
}
