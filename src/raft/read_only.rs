//! ReadIndex bookkeeping on the leader (Raft thesis §6.4).
//!
//! A read request records the commit index at arrival; the leader then broadcasts a heartbeat
//! carrying the request's context. Once a quorum echoes that context, the leader knows it was
//! still leader when the request arrived, so every read queued up to that context may be
//! served once the reader has applied the recorded index.

use super::message::{Message, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// One pending read.
#[derive(Clone, Debug)]
pub struct ReadIndexStatus {
    /// The request (its `from` says who to answer; 0 or the leader itself means local).
    pub request: Message,
    /// Commit index when the request arrived.
    pub index: u64,
    /// Members that echoed the context.
    pub acks: BTreeSet<NodeId>,
}

/// Pending reads in arrival order.
#[derive(Clone, Debug, Default)]
pub struct ReadOnly {
    /// Context -> status. Invariant: same keys as `queue`.
    pending: BTreeMap<Vec<u8>, ReadIndexStatus>,
    /// Contexts oldest first.
    queue: Vec<Vec<u8>>,
}

impl ReadOnly {
    /// Queues a read; a context already pending is ignored.
    pub fn add_request(&mut self, index: u64, request: Message) {
        let ctx = request.context.clone();
        if self.pending.contains_key(&ctx) {
            return;
        }
        self.pending.insert(
            ctx.clone(),
            ReadIndexStatus {
                request,
                index,
                acks: BTreeSet::new(),
            },
        );
        self.queue.push(ctx);
    }

    /// Records that `id` echoed `ctx`; returns the acks so far (None for an unknown context).
    pub fn recv_ack(&mut self, id: NodeId, ctx: &[u8]) -> Option<&BTreeSet<NodeId>> {
        let status = self.pending.get_mut(ctx)?;
        status.acks.insert(id);
        Some(&status.acks)
    }

    /// Removes and returns every read queued up to and including `ctx`.
    pub fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let Some(pos) = self.queue.iter().position(|c| c.as_slice() == ctx) else {
            return Vec::new();
        };
        self.queue
            .drain(..=pos)
            .map(|c| {
                self.pending
                    .remove(&c)
                    .expect("queue and pending hold the same contexts")
            })
            .collect()
    }

    /// Context of the newest pending read (sent with heartbeats).
    pub fn last_pending_context(&self) -> Option<&[u8]> {
        self.queue.last().map(|c| c.as_slice())
    }

    /// Number of pending reads.
    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }
}
