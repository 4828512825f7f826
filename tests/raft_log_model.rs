//! Differential test of the core's log (`RaftLog`: stable storage + unstable tail + cursors)
//! against a naive model: one plain vector of entries after a snapshot index. Random
//! follower appends (with conflicts), persistence, commits, applies, compactions and
//! snapshot restores; after every step both must agree on every index and term.

use raftkv::raft::log::RaftLog;
use raftkv::raft::rng::SplitMix64;
use raftkv::raft::{ConfState, Entry, EntryKind, MemoryStorage, Snapshot, SnapshotMeta};

/// The obviously-correct log: entries after `snap_index`, nothing else.
#[derive(Clone, Debug)]
struct Model {
    snap_index: u64,
    snap_term: u64,
    entries: Vec<Entry>,
    committed: u64,
}

impl Model {
    fn last(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }
    fn term(&self, i: u64) -> Option<u64> {
        if i == self.snap_index {
            Some(self.snap_term)
        } else if i > self.snap_index && i <= self.last() {
            Some(self.entries[(i - self.snap_index - 1) as usize].term)
        } else {
            None
        }
    }
    fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        commit: u64,
        ents: &[Entry],
    ) -> Option<u64> {
        if self.term(index) != Some(log_term) {
            return None;
        }
        for e in ents {
            if self.term(e.index) != Some(e.term) {
                if e.index <= self.snap_index {
                    continue;
                }
                self.entries
                    .truncate((e.index - self.snap_index - 1) as usize);
                let from = (e.index - ents[0].index) as usize;
                self.entries.extend_from_slice(&ents[from..]);
                break;
            }
        }
        let last_new = index + ents.len() as u64;
        self.committed = self.committed.max(commit.min(last_new));
        Some(last_new)
    }
}

fn entry(term: u64, index: u64, rng: &mut SplitMix64) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: vec![rng.below(256) as u8; rng.below(4) as usize],
    }
}

fn check(seed: u64, step: usize, log: &RaftLog, model: &Model) {
    let ctx = || format!("seed {seed} step {step}: model {model:?}");
    assert_eq!(log.last_index(), model.last(), "last index; {}", ctx());
    assert_eq!(log.committed(), model.committed, "committed; {}", ctx());
    assert_eq!(
        log.first_index(),
        model.snap_index + 1,
        "first index; {}",
        ctx()
    );
    for i in model.snap_index..=model.last() {
        assert_eq!(log.term(i).ok(), model.term(i), "term at {i}; {}", ctx());
    }
    assert!(
        log.term(model.last() + 1).is_err(),
        "past the end; {}",
        ctx()
    );
    let all = log
        .slice(model.snap_index + 1, model.last() + 1, u64::MAX)
        .expect("held entries");
    assert_eq!(all, model.entries, "entries; {}", ctx());
}

#[test]
fn raft_log_agrees_with_a_naive_model() {
    let seeds: u64 = std::env::var("LOG_MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed);
        let mut log = RaftLog::new(MemoryStorage::new_with_conf_state(ConfState {
            voters: vec![1],
            learners: vec![],
        }));
        let mut model = Model {
            snap_index: 0,
            snap_term: 0,
            entries: Vec::new(),
            committed: 0,
        };
        let mut term = 1;
        for step in 0..200 {
            match rng.below(6) {
                0 | 1 => {
                    // A leader's append: keep our log up to some point at or after the commit
                    // index, then new entries of a term at least as new as any we hold.
                    term += rng.below(2);
                    let keep = model.committed.max(model.snap_index)
                        + rng.below(model.last() - model.committed.max(model.snap_index) + 1);
                    let prev_term = model.term(keep).expect("kept index is held");
                    let n = rng.below(5);
                    let mut ents: Vec<Entry> = Vec::new();
                    for k in 0..n {
                        let i = keep + 1 + k;
                        // Sometimes resend an entry we already hold (no conflict).
                        match model.term(i) {
                            Some(t) if rng.chance(1, 2) && ents.is_empty() => ents.push(Entry {
                                term: t,
                                ..model.entries[(i - model.snap_index - 1) as usize].clone()
                            }),
                            _ => ents.push(entry(term.max(prev_term), i, &mut rng)),
                        }
                    }
                    // Entries must have non-decreasing terms.
                    for k in 1..ents.len() {
                        if ents[k].term < ents[k - 1].term {
                            ents[k].term = ents[k - 1].term;
                        }
                    }
                    let commit = rng.below(keep + n + 2);
                    // Sometimes the consistency check must fail.
                    let log_term = if rng.chance(1, 8) {
                        prev_term + 1
                    } else {
                        prev_term
                    };
                    let want = model.maybe_append(keep, log_term, commit, &ents);
                    let got = log.maybe_append(keep, log_term, commit, &ents);
                    assert_eq!(got, want, "maybe_append result, seed {seed} step {step}");
                }
                2 => {
                    // Persist everything unstable, snapshot first (the Ready/advance path).
                    if let Some(s) = log.unstable_snapshot().cloned() {
                        log.stable_snapshot_to(s.meta.index);
                    }
                    if let Some(e) = log.unstable_entries().last().cloned() {
                        log.stable_to(e.index, e.term);
                    }
                }
                3 => {
                    let lo = log.applied();
                    let hi = log.committed();
                    if hi > lo && log.unstable_snapshot().is_none() {
                        log.applied_to(lo + rng.below(hi - lo + 1));
                    }
                }
                4 => {
                    // Compact at the applied index if it is persisted.
                    let applied = log.applied();
                    if applied > log.storage.snapshot().meta.index
                        && applied <= log.persisted_last_index()
                        && log.unstable_snapshot().is_none()
                        && applied >= log.first_index()
                    {
                        log.storage
                            .compact(applied, ConfState::default(), Vec::new());
                        model.snap_term = model.term(applied).expect("held");
                        let drop = (applied - model.snap_index) as usize;
                        model.entries.drain(..drop);
                        model.snap_index = applied;
                    }
                }
                _ => {
                    // Rarely, a snapshot from the leader replaces everything.
                    if rng.chance(1, 4) && log.unstable_snapshot().is_none() {
                        let index = model.last() + 1 + rng.below(3);
                        term += 1;
                        let snap = Snapshot {
                            meta: SnapshotMeta {
                                index,
                                term,
                                conf_state: ConfState::default(),
                            },
                            data: Vec::new(),
                        };
                        log.restore(snap);
                        model = Model {
                            snap_index: index,
                            snap_term: term,
                            entries: Vec::new(),
                            committed: index,
                        };
                    }
                }
            }
            check(seed, step, &log, &model);
        }
    }
}
