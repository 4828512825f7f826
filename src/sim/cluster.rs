//! The simulation: N nodes running the real core over a simulated network and disks, driven
//! by one seed (or by a byte schedule, see [`super::fuzz`]).
//!
//! Each node follows the Ready contract exactly, as the node's Raft loop does: write the
//! Ready to its disk, sync, and only then send messages, apply committed entries and
//! advance; a leader's Ready marked `send_before_persist` is sent before the sync. A crash
//! may strike between the write and the sync; the node then loses that Ready (volatile disk
//! state, and the messages it had not sent yet).
//!
//! A random run has two phases. The *fault phase* draws, per tick, client proposals and
//! reads, crashes and restarts, partitions and heals, membership changes (learners added
//! and promoted, voters removed, the leader included),
//! leadership transfers and compactions, over a network that drops, duplicates, delays and
//! reorders (rates drawn per seed). The *liveness phase* heals everything, restarts every
//! node, and then requires every acknowledged proposal to be applied by every member.
//! Checkers (see [`super::checkers`]) run after every message, tick and Ready.

use super::checkers::{Check, Checkers, Violation};
use super::disk::SimDisk;
use super::network::{InFlight, Network, NetworkFaults};
use super::state_machine::StateMachine;
use crate::raft::rng::SplitMix64;
use crate::raft::{
    codec, ConfChange, ConfChangeKind, ConfState, Config, EntryKind, MemoryStorage, Message,
    MessageKind, NodeId, RawNode, Role,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One simulated server.
pub struct SimNode {
    /// Its id (1-based; index in `Simulation::nodes` is id - 1).
    pub id: NodeId,
    /// The running core, or None while crashed.
    pub raw: Option<RawNode>,
    /// Its disk.
    pub disk: SimDisk,
    /// Its state machine (rebuilt from the snapshot on restart).
    pub sm: StateMachine,
    config: Config,
}

/// Per-tick probabilities of the fault phase, in parts per thousand.
#[derive(Clone, Copy, Debug)]
pub struct FaultRates {
    /// A client proposal.
    pub propose: u64,
    /// A client ReadIndex.
    pub read: u64,
    /// A crash of a running node.
    pub crash: u64,
    /// A crash between a Ready's write and its sync.
    pub crash_before_sync: u64,
    /// A restart of a crashed node.
    pub restart: u64,
    /// A new random partition.
    pub partition: u64,
    /// Healing all partitions.
    pub heal: u64,
    /// A membership change (learner added, learner promoted, or voter removed).
    pub conf_change: u64,
    /// A leadership transfer.
    pub transfer: u64,
}

/// What a simulation is made of.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Initial voters (ids 1..=voters).
    pub voters: usize,
    /// Extra nodes that start outside the configuration and may be added (as learner, then
    /// voter); any voter may be removed and added back the same way.
    pub spares: usize,
    /// Ticks with faults.
    pub fault_ticks: u64,
    /// Upper bound on the healed ticks at the end (the phase stops once liveness holds).
    pub liveness_ticks: u64,
    /// Network faults during the fault phase.
    pub network: NetworkFaults,
    /// Event rates during the fault phase.
    pub rates: FaultRates,
    /// Flow-control window per follower (messages).
    pub max_inflight_msgs: usize,
    /// Batching limit per append (payload bytes; proposals carry 8-31 bytes).
    pub max_entries_bytes_per_msg: u64,
    /// Compact a node's log when it has applied this many entries past its snapshot.
    pub compact_after_entries: u64,
    /// Keep a full text trace (for the determinism test and debugging).
    pub record_trace: bool,
    /// Break the core on purpose (see `Config::unsafe_skip_vote_log_check`).
    pub unsafe_skip_vote_log_check: bool,
    /// Break the core on purpose (see `Config::unsafe_commit_any_term`).
    pub unsafe_commit_any_term: bool,
    /// Break the Ready contract on purpose: send messages before the Ready is synced.
    pub unsafe_send_before_sync: bool,
    /// Break the core on purpose (see `Config::unsafe_read_without_quorum`).
    pub unsafe_read_without_quorum: bool,
    /// Break the core on purpose (see `Config::unsafe_send_first_with_unpersisted_commit`).
    pub unsafe_send_first_with_unpersisted_commit: bool,
}

impl SimOptions {
    /// Options drawn from `seed`: cluster size, fault rates and timings vary per seed.
    pub fn from_seed(seed: u64) -> SimOptions {
        let mut r = SplitMix64::new(seed ^ 0x5EED_0F0F_7E57_0001);
        let min_delay = 1 + r.below(2);
        SimOptions {
            voters: if r.chance(1, 3) { 5 } else { 3 },
            spares: 1,
            fault_ticks: 600,
            liveness_ticks: 1000,
            network: NetworkFaults {
                drop_per_mille: r.below(200),
                duplicate_per_mille: r.below(100),
                min_delay_ticks: min_delay,
                max_delay_ticks: min_delay + r.below(6),
            },
            rates: FaultRates {
                propose: 100 + r.below(400),
                read: r.below(100),
                crash: r.below(25),
                crash_before_sync: r.below(20),
                restart: 50 + r.below(200),
                partition: r.below(30),
                heal: 10 + r.below(50),
                conf_change: r.below(40),
                transfer: r.below(10),
            },
            max_inflight_msgs: [1, 2, 4, 64][r.below(4) as usize],
            max_entries_bytes_per_msg: [8, 32, 64, 1024][r.below(4) as usize],
            compact_after_entries: 5 + r.below(30),
            record_trace: false,
            unsafe_skip_vote_log_check: false,
            unsafe_commit_any_term: false,
            unsafe_send_before_sync: false,
            unsafe_read_without_quorum: false,
            unsafe_send_first_with_unpersisted_commit: false,
        }
    }

    /// Options drawn from `seed` for a cluster of one voter and two spares that come and go
    /// as learners (and may be promoted), with more crashes between a Ready's write and its
    /// sync: where a commit exists before it is durable.
    pub fn single_voter_from_seed(seed: u64) -> SimOptions {
        let mut options = SimOptions::from_seed(seed);
        options.voters = 1;
        options.spares = 2;
        options.rates.crash_before_sync = 100;
        options
    }
}

/// What a finished run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimSummary {
    /// Proposals acknowledged to clients.
    pub acknowledged: usize,
    /// Distinct committed indexes.
    pub committed: usize,
    /// Terms that had a leader.
    pub leader_terms: usize,
    /// Messages delivered.
    pub delivered: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// ReadIndex answers checked.
    pub reads_answered: u64,
    /// Crashes of a leader between sending entries and syncing them (the leader's exception
    /// of the Ready contract at its riskiest).
    pub leader_crashes_after_sending_entries: u64,
}

#[derive(Clone, Copy, Debug)]
struct Proposal {
    proposer: NodeId,
    acked_index: Option<u64>,
}

/// A deterministic cluster simulation.
pub struct Simulation {
    /// The seed everything derives from.
    pub seed: u64,
    /// Simulated time.
    pub tick: u64,
    /// Nodes; index = id - 1.
    pub nodes: Vec<SimNode>,
    /// The wire.
    pub network: Network,
    /// Safety checkers.
    pub checkers: Checkers,
    /// Full text trace when `record_trace` was set.
    pub trace: Option<String>,
    /// Counters.
    pub summary: SimSummary,
    options: SimOptions,
    rng: SplitMix64,
    next_proposal_id: u64,
    proposals: BTreeMap<u64, Proposal>,
    /// Read context -> highest acknowledged index when the read began.
    reads: BTreeMap<Vec<u8>, u64>,
    next_read_id: u64,
    highest_acked_index: u64,
}

impl Simulation {
    /// A cluster of `options.voters` voters plus spares, all fresh.
    pub fn new(seed: u64, options: SimOptions) -> Simulation {
        let total = options.voters + options.spares;
        let bootstrap = ConfState {
            voters: (1..=options.voters as u64).collect(),
            learners: Vec::new(),
        };
        let nodes = (1..=total as u64)
            .map(|id| {
                let mut config = Config::new(id);
                config.seed = seed;
                config.max_inflight_msgs = options.max_inflight_msgs;
                config.max_entries_bytes_per_msg = options.max_entries_bytes_per_msg;
                config.max_uncommitted_entries_bytes = 4096;
                config.unsafe_skip_vote_log_check = options.unsafe_skip_vote_log_check;
                config.unsafe_commit_any_term = options.unsafe_commit_any_term;
                config.unsafe_read_without_quorum = options.unsafe_read_without_quorum;
                config.unsafe_send_first_with_unpersisted_commit =
                    options.unsafe_send_first_with_unpersisted_commit;
                let storage = MemoryStorage::new_with_conf_state(bootstrap.clone());
                let disk = SimDisk::new(&storage);
                let raw = RawNode::new(&config, storage).expect("valid simulation config");
                SimNode {
                    id,
                    raw: Some(raw),
                    disk,
                    sm: StateMachine::default(),
                    config,
                }
            })
            .collect();
        Simulation {
            seed,
            tick: 0,
            nodes,
            network: Network::new(total, options.network),
            checkers: Checkers::default(),
            trace: options.record_trace.then(String::new),
            summary: SimSummary::default(),
            rng: SplitMix64::new(seed),
            options,
            next_proposal_id: 1,
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read_id: 1,
            highest_acked_index: 0,
        }
    }

    fn violation(&self, (rule, detail): (&'static str, String)) -> Violation {
        Violation {
            seed: self.seed,
            tick: self.tick,
            rule,
            detail,
        }
    }

    fn lift(&self, check: Check) -> Result<(), Violation> {
        check.map_err(|e| self.violation(e))
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let _ = writeln!(t, "{:>5} {}", self.tick, line());
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the cluster has no nodes (never, in practice).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn node(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// True if `id` is running.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[(id - 1) as usize].raw.is_some()
    }

    fn observe(&mut self, id: NodeId) -> Result<(), Violation> {
        let check = match &self.nodes[(id - 1) as usize].raw {
            Some(raw) => self.checkers.observe(&raw.raft),
            None => Ok(()),
        };
        self.lift(check)
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.raw.as_ref())
            .filter(|r| r.raft.role == Role::Leader)
            .max_by_key(|r| r.raft.term)
            .map(|r| r.raft.id)
    }

    // ------------------------------------------------------------ the node loop

    /// Runs `id`'s Ready loop until it has nothing to do (persist, sync, send, apply, advance).
    pub fn handle_ready(&mut self, id: NodeId) -> Result<(), Violation> {
        for _ in 0..16 {
            let Some(raw) = self.node(id).raw.as_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                break;
            }
            let rd = raw.ready();
            let prev_term = match rd.entries.first() {
                Some(e) => raw.raft.log.term(e.index - 1).unwrap_or(0),
                None => 0,
            };
            // 1. persist
            self.node(id).disk.write(&rd);
            let check = self.checkers.on_persist(id, &rd.entries, prev_term);
            self.lift(check)?;
            let mut messages = rd.messages;
            // The leader's exception, taken as the node takes it (these messages leave before
            // the sync, and a crash below loses the entries they carry on this node only),
            // or, on purpose, the broken contract: everything promised before it is durable.
            let sent_first = rd.send_before_persist || self.options.unsafe_send_before_sync;
            if sent_first {
                let hs = rd
                    .hard_state
                    .unwrap_or(self.node(id).disk.durable_hard_state());
                self.checkers.on_send(id, hs);
                for m in std::mem::take(&mut messages) {
                    self.send(m);
                }
            }
            if self.options.rates.crash_before_sync > 0
                && self.rng.chance(self.options.rates.crash_before_sync, 1000)
            {
                self.log(|| {
                    format!(
                        "node {id} crashes before sync, losing {} entries",
                        rd.entries.len()
                    )
                });
                if sent_first && !rd.entries.is_empty() {
                    self.summary.leader_crashes_after_sending_entries += 1;
                }
                self.crash(id);
                return Ok(());
            }
            self.node(id).disk.sync();
            // 2. send
            if !messages.is_empty() {
                let hs = self.node(id).disk.durable_hard_state();
                self.checkers.on_send(id, hs);
                for m in messages {
                    self.send(m);
                }
            }
            // 3. apply
            if let Some(snapshot) = &rd.snapshot {
                let sm = StateMachine::decode(&snapshot.data);
                self.log(|| format!("node {id} installs snapshot at {}", snapshot.meta.index));
                let check =
                    self.checkers
                        .on_install_snapshot(id, snapshot.meta.index, sm.state_hash);
                self.lift(check)?;
                self.node(id).sm = sm;
            }
            for e in &rd.committed_entries {
                let node = self.node(id);
                node.sm.apply(e.index, e.term, e.kind, &e.data);
                let state_hash = node.sm.state_hash;
                let check = self.checkers.on_apply(id, e, state_hash);
                self.lift(check)?;
                match e.kind {
                    EntryKind::ConfChange => {
                        if let Ok(cc) = codec::decode_conf_change(&e.data) {
                            let raw = self.node(id).raw.as_mut().expect("running");
                            let cs = raw.apply_conf_change(cc);
                            self.log(|| format!("node {id} applies {cc:?} at {}: {cs:?}", e.index));
                        }
                    }
                    EntryKind::Normal if e.data.len() >= 8 => {
                        let pid = u64::from_le_bytes(e.data[..8].try_into().expect("8 bytes"));
                        if let Some(p) = self.proposals.get_mut(&pid) {
                            if p.proposer == id && p.acked_index.is_none() {
                                p.acked_index = Some(e.index);
                                self.summary.acknowledged += 1;
                                self.highest_acked_index = self.highest_acked_index.max(e.index);
                            }
                        }
                    }
                    EntryKind::Normal => {}
                }
            }
            for rs in &rd.read_states {
                if let Some(floor) = self.reads.remove(&rs.context) {
                    self.summary.reads_answered += 1;
                    if rs.index < floor {
                        return Err(self.violation((
                            "read index safety",
                            format!(
                                "node {id} got read index {} below acknowledged write at {floor}",
                                rs.index
                            ),
                        )));
                    }
                }
            }
            // 4. advance
            let raw = self.node(id).raw.as_mut().expect("running");
            raw.advance();
            let applied = raw.applied();
            let sm_applied = self.node(id).sm.applied_index;
            assert!(
                sm_applied == applied || applied == 0,
                "seed {}: node {id} state machine at {sm_applied}, core applied {applied}",
                self.seed
            );
            self.observe(id)?;
            self.maybe_compact(id);
        }
        Ok(())
    }

    fn maybe_compact(&mut self, id: NodeId) {
        let threshold = self.options.compact_after_entries;
        let node = self.node(id);
        let Some(raw) = node.raw.as_mut() else { return };
        let snapshot_meta = &raw.raft.log.storage.snapshot().meta;
        let snap_index = snapshot_meta.index;
        // Policy: compact every `threshold` entries, and after a membership change (a
        // snapshot from before a node was added would be refused by that node).
        let stale_conf = snap_index > 0 && snapshot_meta.conf_state != raw.raft.conf_state();
        if raw.applied() >= snap_index + threshold || (stale_conf && raw.applied() > snap_index) {
            raw.compact(node.sm.encode());
            let snapshot = raw.raft.log.storage.snapshot().clone();
            node.disk.compact(&snapshot);
        }
    }

    fn send(&mut self, m: Message) {
        self.log(|| format!("send {m}"));
        if m.kind == MessageKind::Snapshot {
            self.summary.snapshots_sent += 1;
        }
        let (from, to, kind) = (m.from, m.to, m.kind);
        let sent = self.network.send(m, self.tick, &mut self.rng);
        if !sent && kind == MessageKind::Snapshot {
            if let Some(raw) = self.node(from).raw.as_mut() {
                raw.report_snapshot(to, false);
            }
        }
    }

    /// Delivers one message (dropped if the receiver is down or partitioned away).
    pub fn deliver(&mut self, f: InFlight) -> Result<(), Violation> {
        let m = f.msg;
        let (from, to, kind) = (m.from, m.to, m.kind);
        let valid_target = to >= 1 && (to as usize) <= self.nodes.len();
        let reachable = valid_target && self.is_up(to) && self.network.connected(from, to);
        if kind == MessageKind::Snapshot && from >= 1 && (from as usize) <= self.nodes.len() {
            if let Some(raw) = self.node(from).raw.as_mut() {
                raw.report_snapshot(to, reachable);
            }
        }
        if !reachable {
            if valid_target && !self.network.connected(from, to) && kind == MessageKind::Append {
                if let Some(raw) = self.node(from).raw.as_mut() {
                    raw.report_unreachable(to);
                }
            }
            return Ok(());
        }
        self.log(|| format!("deliver {m}"));
        self.summary.delivered += 1;
        let raw = self.node(to).raw.as_mut().expect("checked up");
        let _ = raw.step(m);
        self.observe(to)?;
        self.handle_ready(to)?;
        if from != to && (from as usize) <= self.nodes.len() {
            self.handle_ready(from)?; // reports may have produced work
        }
        Ok(())
    }

    /// Advances time by one tick on every running node.
    pub fn tick_all(&mut self) -> Result<(), Violation> {
        self.tick += 1;
        for id in 1..=self.nodes.len() as NodeId {
            if let Some(raw) = self.node(id).raw.as_mut() {
                raw.tick();
                self.observe(id)?;
                self.handle_ready(id)?;
            }
        }
        Ok(())
    }

    /// Delivers every message due by now.
    pub fn deliver_due(&mut self) -> Result<(), Violation> {
        for f in self.network.take_due(self.tick) {
            self.deliver(f)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ faults and clients

    /// Crashes `id`: its volatile disk state and in-memory state are lost.
    pub fn crash(&mut self, id: NodeId) {
        if self.node(id).raw.take().is_some() {
            self.summary.crashes += 1;
            self.node(id).disk.crash();
            self.log(|| format!("node {id} crashes"));
        }
    }

    /// Restarts `id` from its durable disk image.
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.is_up(id) {
            return Ok(());
        }
        let node = self.node(id);
        let storage = node.disk.recover();
        let hs = storage.hard_state;
        node.sm = StateMachine::decode(&storage.snapshot().data);
        node.raw = Some(RawNode::new(&node.config, storage).expect("valid simulation config"));
        self.log(|| {
            format!(
                "node {id} restarts at term {} vote {} commit {}",
                hs.term, hs.vote, hs.commit
            )
        });
        let check = self.checkers.on_restart(id, hs);
        self.lift(check)?;
        self.observe(id)?;
        self.handle_ready(id)
    }

    /// A client proposes a fresh value at `id`; returns true if the node accepted it.
    pub fn propose(&mut self, id: NodeId) -> Result<bool, Violation> {
        let pid = self.next_proposal_id;
        let Some(raw) = self.node(id).raw.as_mut() else {
            return Ok(false);
        };
        let mut data = pid.to_le_bytes().to_vec();
        data.extend(std::iter::repeat_n(0xAB, (pid % 24) as usize));
        let accepted = raw.propose(data).is_ok();
        if accepted {
            self.next_proposal_id += 1;
            self.proposals.insert(
                pid,
                Proposal {
                    proposer: id,
                    acked_index: None,
                },
            );
            self.log(|| format!("client proposes #{pid} at node {id}"));
        }
        self.handle_ready(id)?;
        Ok(accepted)
    }

    /// A client asks `id` for a linearizable read point.
    pub fn read(&mut self, id: NodeId) -> Result<(), Violation> {
        let ctx = format!("read-{}", self.next_read_id).into_bytes();
        let floor = self.highest_acked_index;
        let Some(raw) = self.node(id).raw.as_mut() else {
            return Ok(());
        };
        if raw.read_index(ctx.clone()).is_ok() {
            self.next_read_id += 1;
            self.reads.insert(ctx, floor);
        }
        self.handle_ready(id)
    }

    /// The leader proposes the next membership step of a random node: a non-member becomes
    /// a learner, a learner becomes a voter, and a voter (possibly the leader itself) is
    /// removed while more than three voters remain. Removed nodes keep running, so they
    /// can be added back later with whatever log they kept.
    pub fn change_membership(&mut self) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let target = 1 + self.rng.below(self.nodes.len() as u64);
        let raw = self.node(leader).raw.as_mut().expect("leader runs");
        let status = raw.status();
        let voters = status.progress.values().filter(|p| !p.is_learner).count();
        let kind = match status.progress.get(&target) {
            None => ConfChangeKind::AddLearner,
            Some(p) if p.is_learner => ConfChangeKind::AddNode,
            Some(_) if voters > 3 => ConfChangeKind::RemoveNode,
            Some(_) => return Ok(()),
        };
        let cc = ConfChange {
            kind,
            node_id: target,
        };
        if raw.propose_conf_change(cc).is_ok() {
            self.log(|| format!("leader {leader} proposes {cc:?}"));
        }
        self.handle_ready(leader)
    }

    /// The leader hands leadership to a random other voter.
    pub fn transfer_leadership(&mut self) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let voters = self
            .node(leader)
            .raw
            .as_ref()
            .expect("leader runs")
            .raft
            .tracker
            .voters();
        let target = voters[self.rng.below(voters.len() as u64) as usize];
        self.log(|| format!("transfer leadership {leader} -> {target}"));
        self.node(leader)
            .raw
            .as_mut()
            .expect("leader runs")
            .transfer_leader(target);
        self.handle_ready(leader)
    }

    fn random_node(&mut self) -> NodeId {
        1 + self.rng.below(self.nodes.len() as u64)
    }

    /// One tick of the fault phase: random events, then time, then deliveries.
    pub fn random_step(&mut self) -> Result<(), Violation> {
        let rates = self.options.rates;
        if self.rng.chance(rates.propose, 1000) {
            let id = self.random_node();
            self.propose(id)?;
        }
        if self.rng.chance(rates.read, 1000) {
            let id = self.random_node();
            self.read(id)?;
        }
        if self.rng.chance(rates.crash, 1000) {
            let id = self.random_node();
            self.crash(id);
        }
        for id in 1..=self.nodes.len() as NodeId {
            if !self.is_up(id) && self.rng.chance(rates.restart, 1000) {
                self.restart(id)?;
            }
        }
        if self.rng.chance(rates.partition, 1000) {
            let groups = 2 + self.rng.below(2);
            for g in 0..self.network.partition.len() {
                self.network.partition[g] = self.rng.below(groups) as u8;
            }
            let p = self.network.partition.clone();
            self.log(|| format!("partition {p:?}"));
        }
        if self.rng.chance(rates.heal, 1000) {
            self.network.heal();
            self.log(|| "heal".to_string());
        }
        if self.rng.chance(rates.conf_change, 1000) {
            self.change_membership()?;
        }
        if self.rng.chance(rates.transfer, 1000) {
            self.transfer_leadership()?;
        }
        self.tick_all()?;
        self.deliver_due()
    }

    /// Ends all faults: heal partitions, stop drops and duplicates, restart every node.
    pub fn heal_everything(&mut self) -> Result<(), Violation> {
        self.network.heal();
        self.network.faults.drop_per_mille = 0;
        self.network.faults.duplicate_per_mille = 0;
        self.options.rates.crash_before_sync = 0;
        self.log(|| "liveness phase: all faults healed".to_string());
        for id in 1..=self.nodes.len() as NodeId {
            self.restart(id)?;
        }
        Ok(())
    }

    /// Liveness: there is a leader, and every member of its configuration has applied every
    /// acknowledged proposal and the healed phase's marker proposal. Returns the unmet
    /// condition as a violation.
    pub fn check_liveness(&mut self, marker_index: Option<u64>) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Err(
                self.violation(("liveness", "no leader after the healed phase".to_string()))
            );
        };
        let Some(marker) = marker_index else {
            return Err(self.violation((
                "liveness",
                "no proposal was acknowledged in the healed phase".to_string(),
            )));
        };
        let need = self.highest_acked_index.max(marker);
        let members = self
            .node(leader)
            .raw
            .as_ref()
            .expect("leader runs")
            .raft
            .conf_state();
        for id in members.voters.iter().chain(members.learners.iter()) {
            let applied = self.nodes[(*id - 1) as usize]
                .raw
                .as_ref()
                .map_or(0, |r| r.applied());
            if applied < need {
                return Err(self.violation((
                    "liveness",
                    format!("member {id} applied only up to {applied}; acknowledged writes reach {need}"),
                )));
            }
        }
        Ok(())
    }

    /// The whole random run: fault phase, then the healed phase, which ends as soon as
    /// liveness holds and fails if it still does not after `liveness_ticks`.
    pub fn run(&mut self) -> Result<SimSummary, Violation> {
        for _ in 0..self.options.fault_ticks {
            self.random_step()?;
        }
        self.heal_everything()?;
        let mut marker: Option<u64> = None;
        let mut marker_id = 0;
        let mut outcome = Ok(());
        for t in 0..self.options.liveness_ticks {
            if marker.is_none() && t % 10 == 5 {
                if let Some(leader) = self.leader() {
                    let pid = self.next_proposal_id;
                    if self.propose(leader)? {
                        marker_id = pid;
                    }
                }
            }
            self.tick_all()?;
            self.deliver_due()?;
            if marker.is_none() && marker_id != 0 {
                marker = self.proposals.get(&marker_id).and_then(|p| p.acked_index);
            }
            outcome = self.check_liveness(marker);
            if outcome.is_ok() {
                break;
            }
        }
        outcome?;
        self.summary.committed = self.checkers.committed_count();
        self.summary.leader_terms = self.checkers.leader_terms();
        Ok(self.summary.clone())
    }
}

/// Runs seed `seed` with options drawn from it.
pub fn run_seed(seed: u64) -> Result<SimSummary, Violation> {
    run_with_options(seed, SimOptions::from_seed(seed))
}

/// Runs one simulation; a panic inside the core (a broken internal invariant) is returned
/// as a violation too, so that it also names its seed.
pub fn run_with_options(seed: u64, options: SimOptions) -> Result<SimSummary, Violation> {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Simulation::new(seed, options).run()
    }));
    match run {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string());
            Err(Violation {
                seed,
                tick: 0,
                rule: "core invariant (panic)",
                detail,
            })
        }
    }
}
