//! Single-server membership changes, applied when their entry is applied.

use super::*;

impl Raft {
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
}
