//! The Ready contract as an API: what a Ready holds, when it needs an fsync, and that
//! advance() is what makes entries stable and moves the applied index.

use raftkv::raft::{ConfState, Config, MemoryStorage, RawNode, Role};

fn node(id: u64, voters: &[u64]) -> RawNode {
    let cs = ConfState {
        voters: voters.to_vec(),
        learners: vec![],
    };
    RawNode::new(&Config::new(id), MemoryStorage::new_with_conf_state(cs)).expect("valid config")
}

#[test]
fn single_node_ready_persists_then_applies() {
    let mut n = node(1, &[1]);
    assert!(!n.has_ready(), "a fresh follower has nothing to do");
    n.campaign();
    let rd = n.ready();
    assert_eq!(rd.soft_state.map(|s| s.role), Some(Role::Leader));
    assert!(
        rd.must_sync,
        "term and vote changed and the no-op must be persisted"
    );
    assert_eq!(rd.entries.len(), 1, "the term's no-op");
    assert_eq!(
        rd.committed_entries.len(),
        1,
        "a single voter commits at once"
    );
    assert_eq!(
        n.raft.log.storage.last_index(),
        0,
        "nothing is stable before advance"
    );
    n.advance();
    assert_eq!(
        n.raft.log.storage.last_index(),
        1,
        "advance moved the entry to storage"
    );
    assert_eq!(n.applied(), 1);
    assert_eq!(n.raft.log.storage.hard_state.term, 1);
    assert!(!n.has_ready());
}

/// One Ready of `from`, persisted (checking must_sync) and delivered to `to`.
fn exchange(from: &mut RawNode, to: &mut RawNode) {
    if !from.has_ready() {
        return;
    }
    let rd = from.ready();
    if !rd.must_sync {
        assert!(
            rd.entries.is_empty() && rd.snapshot.is_none(),
            "a Ready with data claimed no fsync"
        );
    }
    from.advance();
    for m in rd.messages {
        let _ = to.step(m);
    }
}

#[test]
fn commit_only_change_needs_no_fsync() {
    let mut leader = node(1, &[1, 2]);
    let mut follower = node(2, &[1, 2]);
    leader.campaign();
    // Drive the two nodes until quiet.
    for _ in 0..20 {
        exchange(&mut leader, &mut follower);
        exchange(&mut follower, &mut leader);
    }
    assert_eq!(leader.raft.role, Role::Leader);
    assert_eq!(follower.raft.log.committed(), 1);
    // The follower's last Ready only advanced its commit index: no fsync needed.
    leader.propose(b"x".to_vec()).unwrap();
    let rd = leader.ready();
    assert!(rd.must_sync, "new entries need an fsync");
    leader.advance();
    for m in rd.messages {
        follower.step(m).unwrap();
    }
    let rd = follower.ready();
    assert!(rd.must_sync);
    follower.advance();
    for m in rd.messages {
        leader.step(m).unwrap();
    }
    let rd = leader.ready();
    assert!(rd.hard_state.is_some(), "commit moved");
    assert!(!rd.must_sync, "a commit-index-only change needs no fsync");
    leader.advance();
}

#[test]
#[should_panic(expected = "advance() without a preceding ready()")]
fn advance_without_ready_is_a_bug() {
    node(1, &[1]).advance();
}

#[test]
#[should_panic(expected = "ready() called twice without advance()")]
fn ready_twice_is_a_bug() {
    let mut n = node(1, &[1]);
    n.campaign();
    let _ = n.ready();
    let _ = n.ready();
}

#[test]
fn restart_from_storage_keeps_term_vote_and_log() {
    let mut n = node(1, &[1]);
    n.campaign();
    n.ready();
    n.advance();
    n.propose(b"a".to_vec()).unwrap();
    n.ready();
    n.advance();
    let storage = n.raft.log.storage.clone();
    let restarted = RawNode::new(&Config::new(1), storage).unwrap();
    assert_eq!(restarted.raft.term, 1);
    assert_eq!(restarted.raft.vote, 1);
    assert_eq!(restarted.raft.log.last_index(), 2);
    assert_eq!(restarted.raft.log.committed(), 2);
    assert_eq!(
        restarted.applied(),
        0,
        "applied restarts at the snapshot; entries are re-applied"
    );
    assert_eq!(restarted.raft.role, Role::Follower);
}
