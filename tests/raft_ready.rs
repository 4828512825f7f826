//! The Ready contract as an API: what a Ready holds, when it needs an fsync, and that
//! advance() is what makes entries stable and moves the applied index.

use raftkv::raft::{ConfState, Config, MemoryStorage, MessageKind, RawNode, Role};

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

fn node_with_learners(id: u64, voters: &[u64], learners: &[u64]) -> RawNode {
    let cs = ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
    };
    RawNode::new(&Config::new(id), MemoryStorage::new_with_conf_state(cs)).expect("valid config")
}

/// Runs every node's Ready loop and delivers the messages until nothing moves.
fn settle(nodes: &mut [RawNode]) {
    for _ in 0..50 {
        let mut messages = Vec::new();
        for n in nodes.iter_mut() {
            while n.has_ready() {
                let rd = n.ready();
                n.advance();
                messages.extend(rd.messages);
            }
        }
        if messages.is_empty() {
            return;
        }
        for m in messages {
            nodes_step(nodes, m);
        }
    }
    panic!("the nodes did not settle in 50 rounds");
}

#[test]
fn only_a_leader_whose_term_and_vote_are_durable_may_send_before_persisting() {
    let mut nodes = vec![
        node(1, &[1, 2, 3]),
        node(2, &[1, 2, 3]),
        node(3, &[1, 2, 3]),
    ];
    nodes[0].campaign();
    // The election, Ready by Ready: pre-votes, the campaign (term and vote change), votes,
    // the new leader's first appends and their acknowledgements.
    let mut vote_requests_flagged = Vec::new();
    let mut others_flagged = Vec::new();
    for _ in 0..50 {
        let mut messages = Vec::new();
        for n in nodes.iter_mut() {
            while n.has_ready() {
                let rd = n.ready();
                let asks_votes = rd.messages.iter().any(|m| m.kind == MessageKind::Vote);
                if asks_votes {
                    vote_requests_flagged.push(rd.send_before_persist);
                } else if n.raft.role != Role::Leader && !rd.messages.is_empty() {
                    others_flagged.push(rd.send_before_persist);
                }
                n.advance();
                messages.extend(rd.messages);
            }
        }
        if messages.is_empty() {
            break;
        }
        for m in messages {
            nodes_step(&mut nodes, m);
        }
    }
    assert_eq!(nodes[0].raft.role, Role::Leader);
    assert_eq!(
        vote_requests_flagged,
        vec![false],
        "a candidate's vote requests wait until its term and vote are durable"
    );
    assert!(
        !others_flagged.is_empty() && others_flagged.iter().all(|f| !f),
        "votes and acknowledgements are only true once durable: {others_flagged:?}"
    );

    nodes[0].propose(b"x".to_vec()).unwrap();
    let rd = nodes[0].ready();
    assert_eq!(rd.entries.len(), 1);
    assert!(
        rd.messages.iter().any(|m| !m.entries.is_empty()),
        "the leader replicates the new entry"
    );
    assert!(
        rd.send_before_persist,
        "a leader's appends may leave while it syncs them"
    );
    nodes[0].advance();
}

/// Delivers `m` to its addressee among `nodes` (refusals of forwarded requests ignored).
fn nodes_step(nodes: &mut [RawNode], m: raftkv::raft::Message) {
    if let Some(to) = nodes.iter_mut().find(|n| n.raft.id == m.to) {
        let _ = to.step(m);
    }
}

#[test]
fn a_single_voter_with_a_learner_persists_before_telling_it_a_commit() {
    let mut nodes = vec![
        node_with_learners(1, &[1], &[2]),
        node_with_learners(2, &[1], &[2]),
    ];
    nodes[0].campaign();
    settle(&mut nodes);
    assert_eq!(nodes[0].raft.role, Role::Leader);
    nodes[0].propose(b"x".to_vec()).unwrap();
    let rd = nodes[0].ready();
    let new_index = rd.entries[0].index;
    assert!(
        rd.committed_entries.iter().any(|e| e.index == new_index),
        "a single voter commits its entry as it appends it"
    );
    assert!(
        rd.messages.iter().any(|m| m.commit >= new_index),
        "and tells the learner so in the same Ready"
    );
    assert!(
        !rd.send_before_persist,
        "so the learner must not hear of that commit before the entry is durable"
    );
    nodes[0].advance();
}
