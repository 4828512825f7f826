//! Elections: the election timer, pre-vote and vote rounds, granting votes, check-quorum,
//! and leadership transfer.

use super::*;

impl Raft {
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

    pub(super) fn has_unapplied_conf_change(&self) -> bool {
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

    pub(super) fn campaign(&mut self, kind: CampaignKind, transfer: bool) {
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

    pub(super) fn poll(&mut self, from: NodeId, granted: bool) -> VoteResult {
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
}
