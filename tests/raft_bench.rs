//! Throughput of the consensus core: proposals per second through a 3-node cluster with an
//! in-memory network and no disk (so it measures the core alone). Run with
//! `cargo test --release --test raft_bench -- --ignored --nocapture`.

use raftkv::raft::{ConfState, Config, MemoryStorage, Message, RawNode, Role};
use std::time::Instant;

struct Cluster {
    nodes: Vec<RawNode>,
    inbox: Vec<Message>,
    applied_entries: u64,
}

impl Cluster {
    fn new() -> Cluster {
        let cs = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![],
        };
        let nodes = (1..=3)
            .map(|id| {
                let mut c = Config::new(id);
                c.max_inflight_msgs = 4096;
                RawNode::new(&c, MemoryStorage::new_with_conf_state(cs.clone())).unwrap()
            })
            .collect();
        Cluster {
            nodes,
            inbox: Vec::new(),
            applied_entries: 0,
        }
    }

    /// Ready loop on every node, then deliver; until quiet.
    fn settle(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.nodes.len() {
                while self.nodes[i].has_ready() {
                    progressed = true;
                    let rd = self.nodes[i].ready();
                    if i == 0 {
                        self.applied_entries += rd.committed_entries.len() as u64;
                    }
                    self.inbox.extend(rd.messages);
                    self.nodes[i].advance();
                }
            }
            for m in std::mem::take(&mut self.inbox) {
                progressed = true;
                let _ = self.nodes[(m.to - 1) as usize].step(m);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Keep the log short, as a real node would by snapshotting.
    fn compact_all(&mut self) {
        for n in &mut self.nodes {
            n.compact(Vec::new());
        }
    }
}

fn run(total: u64, batch: u64) -> f64 {
    let mut c = Cluster::new();
    c.nodes[0].campaign();
    c.settle();
    assert_eq!(c.nodes[0].raft.role, Role::Leader);
    let before = c.applied_entries;
    let payload = vec![7u8; 64];
    let start = Instant::now();
    let mut proposed = 0;
    while proposed < total {
        if batch == 1 {
            c.nodes[0].propose(payload.clone()).expect("leader accepts");
        } else {
            let entries = (0..batch).map(|_| payload.clone()).collect();
            c.nodes[0].propose_batch(entries).expect("leader accepts");
        }
        proposed += batch;
        c.settle();
        if proposed % 10_000 < batch {
            c.compact_all();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(
        c.applied_entries - before,
        total,
        "every proposal applied on the leader"
    );
    total as f64 / elapsed
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn proposals_per_second_three_nodes() {
    for (total, batch) in [(100_000, 1), (500_000, 10), (1_000_000, 100)] {
        let per_sec = run(total, batch);
        println!(
            "3 nodes, in-memory network, {total} proposals of 64 bytes, {batch} per round: {per_sec:.0} proposals/s ({:.2} us/proposal)",
            1e6 / per_sec
        );
    }
}
