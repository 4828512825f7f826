//! The simulated network: every message waits in one queue with a delivery tick.
//!
//! Faults: a message may be dropped, duplicated (delivered twice, at different ticks) or
//! delayed by a random number of ticks, which also reorders messages. A partition assigns
//! every node a group; a message is delivered only if sender and receiver share a group
//! when it arrives. All choices come from the simulation's seeded generator.

use crate::raft::rng::SplitMix64;
use crate::raft::{Message, NodeId};

/// Fault rates, in parts per thousand, and the delay range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Probability that a message is lost.
    pub drop_per_mille: u64,
    /// Probability that a message is delivered twice.
    pub duplicate_per_mille: u64,
    /// Minimum delay. Invariant: at least 1 (nothing arrives in the tick it was sent).
    pub min_delay_ticks: u64,
    /// Maximum delay. Invariant: `>= min_delay_ticks`.
    pub max_delay_ticks: u64,
}

/// One message on the wire.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// Tick at which it arrives.
    pub deliver_at_tick: u64,
    /// Send order; breaks ties between messages arriving in the same tick.
    pub seq: u64,
    /// The message.
    pub msg: Message,
}

/// The wire between simulated nodes.
#[derive(Clone, Debug)]
pub struct Network {
    /// Messages not yet delivered, in send order.
    pub queue: Vec<InFlight>,
    /// Current fault rates.
    pub faults: NetworkFaults,
    /// Group of each node (index = id - 1). Invariant: one entry per node.
    pub partition: Vec<u8>,
    next_seq: u64,
}

impl Network {
    /// A network between `nodes` nodes with the given faults and no partition.
    pub fn new(nodes: usize, faults: NetworkFaults) -> Network {
        assert!(
            faults.min_delay_ticks >= 1 && faults.max_delay_ticks >= faults.min_delay_ticks,
            "bad delay range {faults:?}"
        );
        Network {
            queue: Vec::new(),
            faults,
            partition: vec![0; nodes],
            next_seq: 0,
        }
    }

    /// True if `a` and `b` can talk now.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        let group = |id: NodeId| self.partition.get((id - 1) as usize).copied().unwrap_or(0);
        group(a) == group(b)
    }

    /// Puts `msg` on the wire (maybe twice, maybe not at all). Returns false if dropped.
    pub fn send(&mut self, msg: Message, now_tick: u64, rng: &mut SplitMix64) -> bool {
        if rng.chance(self.faults.drop_per_mille, 1000) {
            return false;
        }
        let copies = if rng.chance(self.faults.duplicate_per_mille, 1000) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let span = self.faults.max_delay_ticks - self.faults.min_delay_ticks + 1;
            let delay = self.faults.min_delay_ticks + rng.below(span);
            self.queue.push(InFlight {
                deliver_at_tick: now_tick + delay,
                seq: self.next_seq,
                msg: msg.clone(),
            });
            self.next_seq += 1;
        }
        true
    }

    /// Removes and returns the messages due by `now_tick`, in (tick, send order) order.
    pub fn take_due(&mut self, now_tick: u64) -> Vec<InFlight> {
        let (mut due, rest): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|f| f.deliver_at_tick <= now_tick);
        self.queue = rest;
        due.sort_by_key(|f| (f.deliver_at_tick, f.seq));
        due
    }

    /// Removes and returns the queued message at `position` (schedule-driven delivery).
    pub fn take_at(&mut self, position: usize) -> Option<InFlight> {
        if self.queue.is_empty() {
            return None;
        }
        let i = position % self.queue.len();
        Some(self.queue.remove(i))
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.partition.iter_mut().for_each(|g| *g = 0);
    }
}
