//! Safety checkers, run by the simulator after every step. Kept apart from the simulator
//! so that what is checked can be read on its own.
//!
//! | property | how it is checked |
//! |---|---|
//! | election safety: at most one leader per term | `leaders`: term -> the first node seen leading it |
//! | log matching | every persisted entry (index, term) must always come with the same payload and the same previous term; by induction equal (index, term) means equal prefixes |
//! | leader completeness | a new leader's log holds every entry seen committed in an earlier term |
//! | committed entries never change | every node's committed prefix agrees with `committed` |
//! | state machine safety | every apply at an index has the same entry and the same state hash |
//! | term and vote never regress, even across crashes | per node, the hard state promised in sent messages is a floor for everything after, restarts included |
//! | read index safety | a ReadIndex answer is at or after every write acknowledged before the read began |
//!
//! Liveness (every acknowledged proposal applied everywhere once the network heals) is checked
//! by the simulator at the end of its healed phase, see `Simulation::check_liveness`.

use crate::raft::{Entry, EntryKind, HardState, NodeId, Raft, Role};
use std::collections::BTreeMap;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Seed that replays it.
    pub seed: u64,
    /// Simulated tick.
    pub tick: u64,
    /// Which property.
    pub rule: &'static str,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} tick {}: {} violated: {} (replay with SIM_SEED={})",
            self.seed, self.tick, self.rule, self.detail, self.seed
        )
    }
}

/// A failed check before seed and tick are attached.
pub type Check = Result<(), (&'static str, String)>;

/// FNV-1a over bytes: a stable, dependency-free hash for payloads and state.
pub fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hash of an entry's kind and payload.
pub fn entry_hash(e: &Entry) -> u64 {
    fnv(e.kind as u64, &e.data)
}

#[derive(Clone, Debug, Default)]
struct NodeWatch {
    /// Hard state last seen in memory.
    seen: HardState,
    /// Hard state that messages already sent depend on (must survive crashes).
    promised: HardState,
    /// Commit index up to which this node's log was compared with `committed`.
    commit_checked: u64,
}

/// All checker state of one simulation.
#[derive(Clone, Debug, Default)]
pub struct Checkers {
    /// term -> leader.
    leaders: BTreeMap<u64, NodeId>,
    /// (index, term) -> (payload hash, previous entry's term).
    entries: BTreeMap<(u64, u64), (u64, u64)>,
    /// index -> (term, payload hash) of entries seen committed.
    committed: BTreeMap<u64, (u64, u64)>,
    /// index -> (term, payload hash, state hash after applying it).
    applied: BTreeMap<u64, (u64, u64, u64)>,
    nodes: BTreeMap<NodeId, NodeWatch>,
}

impl Checkers {
    /// Election safety, leader completeness, committed-prefix agreement, term monotonicity.
    pub fn observe(&mut self, r: &Raft) -> Check {
        let watch = self.nodes.entry(r.id).or_default();
        if r.term < watch.seen.term
            || (r.term == watch.seen.term && watch.seen.vote != 0 && r.vote != watch.seen.vote)
        {
            return Err((
                "term and vote never regress",
                format!(
                    "node {} went from term {} vote {} to term {} vote {}",
                    r.id, watch.seen.term, watch.seen.vote, r.term, r.vote
                ),
            ));
        }
        watch.seen = r.hard_state();
        // An index counts as committed once the node's commit covers it and the node holds it
        // durably: a single voter commits an entry as it appends it, before the sync a crash
        // may prevent, and nothing of that commit leaves the node before the sync.
        let commit = r.log.committed().min(r.log.persisted_last_index());
        let from = (watch.commit_checked + 1).max(r.log.first_index());
        watch.commit_checked = watch.commit_checked.max(commit);
        if from <= commit {
            let entries = r
                .log
                .slice(from, commit + 1, u64::MAX)
                .expect("committed entries after the snapshot are held");
            for e in &entries {
                let got = (e.term, entry_hash(e));
                match self.committed.get(&e.index) {
                    Some(want) if *want != got => {
                        return Err((
                            "committed entries never change",
                            format!(
                                "node {} has {}/{} committed, earlier {}/{} was",
                                r.id, e.term, e.index, want.0, e.index
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        self.committed.insert(e.index, got);
                    }
                }
            }
        }
        if r.role == Role::Leader {
            match self.leaders.get(&r.term) {
                Some(other) if *other != r.id => {
                    return Err((
                        "at most one leader per term",
                        format!("nodes {other} and {} both lead term {}", r.id, r.term),
                    ))
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(r.term, r.id);
                    for (index, (term, hash)) in &self.committed {
                        if *term >= r.term || *index < r.log.first_index().saturating_sub(1) {
                            continue;
                        }
                        let present = r.log.term(*index) == Ok(*term)
                            && (*index < r.log.first_index()
                                || r.log
                                    .slice(*index, index + 1, u64::MAX)
                                    .map(|v| entry_hash(&v[0]))
                                    == Ok(*hash));
                        if !present {
                            return Err((
                                "leader completeness",
                                format!(
                                    "node {} leads term {} without committed entry {}/{} (has term {:?})",
                                    r.id,
                                    r.term,
                                    term,
                                    index,
                                    r.log.term(*index)
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Log matching: `entries` were just persisted by `node`; `prev_term` is its term at the
    /// index before the first of them.
    pub fn on_persist(&mut self, node: NodeId, entries: &[Entry], mut prev_term: u64) -> Check {
        for e in entries {
            let got = (entry_hash(e), prev_term);
            match self.entries.get(&(e.index, e.term)) {
                Some(want) if *want != got => {
                    return Err((
                        "log matching",
                        format!(
                            "node {node} persisted {}/{} with (hash {:x}, previous term {}), elsewhere (hash {:x}, previous term {})",
                            e.term, e.index, got.0, got.1, want.0, want.1
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    self.entries.insert((e.index, e.term), got);
                }
            }
            prev_term = e.term;
        }
        Ok(())
    }

    /// State machine safety: `node` applied `e`, reaching `state_hash`.
    pub fn on_apply(&mut self, node: NodeId, e: &Entry, state_hash: u64) -> Check {
        let got = (e.term, entry_hash(e), state_hash);
        match self.applied.get(&e.index) {
            Some(want) if *want != got => Err((
                "state machine safety",
                format!("node {node} applied {}/{} (state {:x}); another node applied term {} there (state {:x})", e.term, e.index, state_hash, want.0, want.2),
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(e.index, got);
                Ok(())
            }
        }
    }

    /// State machine safety for snapshots: installing one at `index` gives the same state
    /// as applying entries up to `index` did elsewhere.
    pub fn on_install_snapshot(&mut self, node: NodeId, index: u64, state_hash: u64) -> Check {
        match self.applied.get(&index) {
            Some(want) if want.2 != state_hash => Err((
                "state machine safety",
                format!("node {node} installed a snapshot at {index} with state {state_hash:x}, applying reached {:x}", want.2),
            )),
            _ => Ok(()),
        }
    }

    /// `node` is about to send messages that depend on hard state `hs` (already durable).
    pub fn on_send(&mut self, node: NodeId, hs: HardState) {
        self.nodes.entry(node).or_default().promised = hs;
    }

    /// `node` restarted with `hs` from its disk: it must not have forgotten a term or vote
    /// that it told others about.
    pub fn on_restart(&mut self, node: NodeId, hs: HardState) -> Check {
        let watch = self.nodes.entry(node).or_default();
        let p = watch.promised;
        if hs.term < p.term || (hs.term == p.term && p.vote != 0 && hs.vote != p.vote) {
            return Err((
                "term and vote never regress",
                format!(
                    "node {node} restarted at term {} vote {} after sending at term {} vote {}",
                    hs.term, hs.vote, p.term, p.vote
                ),
            ));
        }
        // Volatile state may legitimately go back to the durable one.
        watch.seen = hs;
        watch.commit_checked = 0;
        Ok(())
    }

    /// Number of terms that had a leader.
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }

    /// Number of distinct committed indexes seen.
    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }
}

/// True for a ConfChange entry.
pub fn is_conf_change(e: &Entry) -> bool {
    e.kind == EntryKind::ConfChange
}
