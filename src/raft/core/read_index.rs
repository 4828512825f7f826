//! Linearizable reads by ReadIndex (thesis §6.4), on the leader and forwarded from followers.

use super::*;

impl Raft {
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

    pub(super) fn start_read(&mut self, m: Message) {
        let ctx = m.context.clone();
        self.read_only.add_request(self.log.committed(), m);
        self.read_only.recv_ack(self.id, &ctx);
        for id in self.peers() {
            self.send_heartbeat(id, ctx.clone());
        }
    }

    pub(super) fn release_pending_reads(&mut self) {
        if self.pending_read_index_messages.is_empty() || !self.committed_entry_in_current_term() {
            return;
        }
        for m in std::mem::take(&mut self.pending_read_index_messages) {
            self.start_read(m);
        }
    }

    pub(super) fn respond_to_read(&mut self, request: Message, index: u64) {
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
}
