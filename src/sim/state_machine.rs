//! The simulation's replicated state machine: the ordered ids of applied proposals and a
//! hash chained over every applied entry, so two replicas at the same index can be compared
//! in O(1) and a snapshot can be checked against the replicas that applied entries instead.

use super::checkers::fnv;
use crate::raft::EntryKind;

/// The replicated state machine of the simulation: the ordered list of applied proposal ids
/// and a running hash of everything applied.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    /// Index of the last applied entry.
    pub applied_index: u64,
    /// Hash chained over every applied (index, term, kind, data).
    pub state_hash: u64,
    /// Proposal ids in apply order.
    pub proposal_ids: Vec<u64>,
}

impl StateMachine {
    /// Applies one committed entry.
    pub fn apply(&mut self, index: u64, term: u64, kind: EntryKind, data: &[u8]) {
        let mut buf = Vec::with_capacity(24 + data.len());
        buf.extend_from_slice(&self.state_hash.to_le_bytes());
        buf.extend_from_slice(&index.to_le_bytes());
        buf.extend_from_slice(&term.to_le_bytes());
        buf.push(kind as u8);
        buf.extend_from_slice(data);
        self.state_hash = fnv(0, &buf);
        self.applied_index = index;
        if kind == EntryKind::Normal && data.len() >= 8 {
            self.proposal_ids
                .push(u64::from_le_bytes(data[..8].try_into().expect("8 bytes")));
        }
    }

    /// The snapshot image: applied index, state hash, then the ids, all u64 little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.applied_index.to_le_bytes());
        out.extend_from_slice(&self.state_hash.to_le_bytes());
        for id in &self.proposal_ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// The state an image describes (the empty bootstrap snapshot gives the empty state).
    pub fn decode(bytes: &[u8]) -> StateMachine {
        if bytes.len() < 16 {
            return StateMachine::default(); // the empty bootstrap snapshot
        }
        let word =
            |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        StateMachine {
            applied_index: word(0),
            state_hash: word(1),
            proposal_ids: (2..bytes.len() / 8).map(word).collect(),
        }
    }
}
