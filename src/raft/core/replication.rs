//! Log replication: sending appends and snapshots under flow control, the follower's
//! consistency check and snapshot install, the leader's backtracking, pipelining and commit
//! rule, and the transport's reports.

use super::*;

impl Raft {
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

    pub(super) fn send_heartbeat(&mut self, to: NodeId, context: Vec<u8>) {
        let matched = self.tracker.progress.get(&to).map_or(0, |p| p.match_index);
        // Never tell a follower to commit past what it is known to hold.
        let mut m = Message::new(MessageKind::Heartbeat, to, NO_NODE, 0);
        m.commit = matched.min(self.log.committed());
        m.context = context;
        self.send(m);
    }

    pub(super) fn bcast_heartbeat(&mut self) {
        let ctx = self
            .read_only
            .last_pending_context()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        for id in self.peers() {
            self.send_heartbeat(id, ctx.clone());
        }
    }

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

    pub(super) fn handle_heartbeat(&mut self, m: Message) {
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
        // The leader counts itself at once, before the entries are durable: the Ready
        // contract keeps any commit this allows from leaving the node before they are (see
        // "The leader's exception" in the module doc of `raft`).
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

    pub(super) fn committed_entry_in_current_term(&self) -> bool {
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

    pub(super) fn handle_heartbeat_response(&mut self, m: Message) {
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
}
