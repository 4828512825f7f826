//! A simulated raftkv cluster at the level of the member, not only of the consensus core:
//! every member runs the Raft core *and the node's own apply step* ([`crate::node::apply`])
//! into a real v2 [`Store`], with the node's entry envelopes, bootstrap log and snapshot
//! format. Clients issue get (through ReadIndex, as `quorum=true`), put, compare-and-swap and
//! delete against random members; what they saw is checked for linearizability with
//! [`super::linearizability`]. So cluster bugs in the apply path, the store or the read path
//! are found by seed sweeps, deterministically, before the slow process tests.
//!
//! A run has a fault phase (crashes and restarts losing unsynced writes, partitions, a network
//! that drops, duplicates, delays and reorders, snapshots and compaction) and a healed phase
//! that must converge. Checked:
//! - the consensus invariants of [`super::checkers`] on every member after every step;
//! - store-level state machine safety: the same entry index yields the same outcome
//!   (event or error, rendered) on every member that applies it;
//! - after healing, every member's store is identical (same index, same recursive listing);
//! - the client history is linearizable.
//!
//! Everything is a function of the seed; a failure names it.

use std::collections::BTreeMap;

use super::checkers::{fnv, Checkers, Violation};
use super::disk::SimDisk;
use super::linearizability::{check_kv_history, CheckOutcome, KvInput, KvOperation, KvOutput};
use super::network::{Network, NetworkFaults};
use crate::node::apply::apply_entry;
use crate::node::boot::bootstrap_entries;
use crate::node::envelope::{ClusterState, Envelope, Payload};
use crate::raft::rng::SplitMix64;
use crate::raft::{codec, Config, HardState, MemoryStorage, NodeId, RawNode, Snapshot};
use crate::store::{Command, ErrorCode, Store};

/// Knobs of one run.
#[derive(Clone, Debug)]
pub struct KvSimOptions {
    pub nodes: usize,
    /// Ticks with faults, then at most as many again to converge after healing.
    pub fault_ticks: u64,
    pub clients: usize,
    pub keys: usize,
    /// Ticks a client waits for an answer before it records the outcome as unknown.
    pub client_timeout_ticks: u64,
    /// Compact the log after this many applied entries (0: never).
    pub compact_every_entries: u64,
    /// Broken on purpose, to show the checkers catch it: reads are served from the local
    /// store without ReadIndex (stale reads).
    #[doc(hidden)]
    pub unsafe_local_reads: bool,
}

impl Default for KvSimOptions {
    fn default() -> Self {
        KvSimOptions {
            nodes: 3,
            fault_ticks: 400,
            clients: 4,
            keys: 3,
            client_timeout_ticks: 60,
            compact_every_entries: 40,
            unsafe_local_reads: false,
        }
    }
}

/// What a passing run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvSummary {
    pub operations: usize,
    pub unknown_outcomes: usize,
    pub applied_index: u64,
    pub snapshots_installed: u64,
    /// Hash over the whole trace: the same seed must give the same value.
    pub trace_hash: u64,
    /// The checker could not decide within its budget (not a failure).
    pub linearizability_undecided: bool,
}

/// One client operation in flight or done.
struct Op {
    client: u64,
    input: KvInput,
    invoke_tick: u64,
    /// Set when answered (tick, output).
    done: Option<(u64, KvOutput)>,
    /// The member it was sent to.
    member: NodeId,
    /// Refused by the member before it reached the log (no leader): not part of the history.
    refused: bool,
}

struct Member {
    id: NodeId,
    raw: Option<RawNode>,
    disk: SimDisk,
    store: Store,
    cluster: ClusterState,
    applied: u64,
    /// Writes proposed through this member: request ID -> op.
    pending_writes: BTreeMap<u64, usize>,
    /// Reads waiting for their ReadIndex: op -> op (context is the op number).
    pending_reads: BTreeMap<u64, usize>,
    /// Reads whose index is known: (index, op).
    confirmed_reads: Vec<(u64, usize)>,
}

struct Sim {
    seed: u64,
    options: KvSimOptions,
    rng: SplitMix64,
    tick: u64,
    members: Vec<Member>,
    network: Network,
    checkers: Checkers,
    ops: Vec<Op>,
    /// Per client: the op in flight, if any.
    busy: Vec<Option<usize>>,
    /// Entry index -> hash of the outcome the first member to apply it got.
    outcomes: BTreeMap<u64, u64>,
    trace_hash: u64,
    snapshots_installed: u64,
    next_value: u64,
}

fn config_for(id: NodeId, seed: u64) -> Config {
    let mut config = Config::new(id);
    config.seed = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    config
}

fn store_key(key: usize) -> String {
    format!("/k{key}")
}

impl Sim {
    fn violation(&self, rule: &'static str, detail: String) -> Violation {
        Violation {
            seed: self.seed,
            tick: self.tick,
            rule,
            detail,
        }
    }

    fn new(seed: u64, options: KvSimOptions) -> Sim {
        let mut rng = SplitMix64::new(seed);
        let ids: Vec<NodeId> = (1..=options.nodes as u64).collect();
        let initial: Vec<(u64, Vec<String>)> = ids
            .iter()
            .map(|id| (*id, vec![format!("http://sim-{id}:2380")]))
            .collect();
        let entries = bootstrap_entries(&initial);
        let hard_state = HardState {
            term: 1,
            vote: 0,
            commit: entries.len() as u64,
        };
        let members = ids
            .iter()
            .map(|&id| {
                let storage =
                    MemoryStorage::from_parts(hard_state, Snapshot::default(), entries.clone());
                let disk = SimDisk::new(&storage);
                let raw = RawNode::new(&config_for(id, seed), storage).expect("valid sim config");
                Member {
                    id,
                    raw: Some(raw),
                    disk,
                    store: Store::new(),
                    cluster: ClusterState::default(),
                    applied: 0,
                    pending_writes: BTreeMap::new(),
                    pending_reads: BTreeMap::new(),
                    confirmed_reads: Vec::new(),
                }
            })
            .collect();
        let faults = NetworkFaults {
            drop_per_mille: rng.below(100),
            duplicate_per_mille: rng.below(50),
            min_delay_ticks: 1,
            max_delay_ticks: 1 + rng.below(4),
        };
        Sim {
            seed,
            network: Network::new(options.nodes, faults),
            busy: vec![None; options.clients],
            options,
            rng,
            tick: 0,
            members,
            checkers: Checkers::default(),
            ops: Vec::new(),
            outcomes: BTreeMap::new(),
            trace_hash: 0,
            snapshots_installed: 0,
            next_value: 0,
        }
    }

    fn trace(&mut self, bytes: &[u8]) {
        self.trace_hash = fnv(self.trace_hash, bytes);
    }

    /// Runs every member's Ready loop until quiet; delivers nothing.
    fn drain_readies(&mut self) -> Result<(), Violation> {
        for index in 0..self.members.len() {
            loop {
                let member = &mut self.members[index];
                let Some(raw) = member.raw.as_mut() else {
                    break;
                };
                if !raw.has_ready() {
                    break;
                }
                let ready = raw.ready();
                member.disk.write(&ready);
                member.disk.sync();
                for message in &ready.messages {
                    self.checkers
                        .on_send(message.from, member.disk.durable_hard_state());
                }
                let messages = ready.messages.clone();
                let snapshot = ready.snapshot.clone();
                let committed = ready.committed_entries.clone();
                let read_states = ready.read_states.clone();
                if let Some(snapshot) = snapshot {
                    self.install_snapshot(index, &snapshot)?;
                }
                for entry in &committed {
                    self.apply(index, entry)?;
                }
                let member = &mut self.members[index];
                for read in read_states {
                    let op =
                        u64::from_le_bytes(read.context.as_slice().try_into().unwrap_or([0; 8]));
                    if let Some(op) = member.pending_reads.remove(&op) {
                        member.confirmed_reads.push((read.index, op));
                    }
                }
                member.raw.as_mut().expect("alive").advance();
                self.answer_reads(index);
                self.maybe_compact(index);
                for message in messages {
                    // The wire: every message goes through the codec.
                    let bytes = codec::encode_message(&message);
                    let decoded = codec::decode_message(&bytes)
                        .map_err(|e| self.violation("codec", format!("{e:?} for {message:?}")))?;
                    self.trace(&bytes);
                    let (to, is_snapshot) = (
                        decoded.to,
                        decoded.kind == crate::raft::MessageKind::Snapshot,
                    );
                    let sent = self.network.send(decoded, self.tick, &mut self.rng);
                    if is_snapshot {
                        // As the transport does: the leader learns whether the stream went out.
                        if let Some(raw) = self.members[index].raw.as_mut() {
                            raw.report_snapshot(to, sent);
                        }
                    }
                }
                if let Some(raw) = self.members[index].raw.as_ref() {
                    self.checkers
                        .observe(&raw.raft)
                        .map_err(|(rule, detail)| self.violation(rule, detail))?;
                }
            }
        }
        Ok(())
    }

    fn install_snapshot(&mut self, index: usize, snapshot: &Snapshot) -> Result<(), Violation> {
        let (cluster, image) = ClusterState::decode_snapshot(&snapshot.data)
            .map_err(|e| self.violation("snapshot", format!("snapshot does not decode: {e}")))?;
        let store = Store::restore(image).map_err(|e| {
            self.violation("snapshot", format!("store image does not decode: {e:?}"))
        })?;
        let member = &mut self.members[index];
        member.store = store;
        member.cluster = cluster;
        member.applied = snapshot.meta.index;
        self.snapshots_installed += 1;
        Ok(())
    }

    fn apply(&mut self, index: usize, entry: &crate::raft::Entry) -> Result<(), Violation> {
        let tick = self.tick;
        let member = &mut self.members[index];
        let mut fired = Vec::new();
        let effect = apply_entry(&mut member.store, &mut member.cluster, entry, &mut fired);
        member.applied = entry.index;
        if let Some(change) = effect.conf_change {
            member
                .raw
                .as_mut()
                .expect("alive")
                .apply_conf_change(change);
        }
        // Store-level state machine safety: the same entry, the same outcome, everywhere.
        let rendered = match &effect.answer {
            Some((_, _, Ok(Some(event)))) => crate::api::render::event_json(event, 0, false),
            Some((_, _, Ok(None))) | None => String::new(),
            Some((_, _, Err(error))) => crate::api::render::error_json(error),
        };
        let outcome_hash = fnv(
            fnv(entry.term, &entry.index.to_le_bytes()),
            rendered.as_bytes(),
        );
        let id = member.id;
        let mut answered = None;
        if let Some((proposer, request_id, outcome)) = effect.answer {
            if proposer == id {
                if let Some(op) = member.pending_writes.remove(&request_id) {
                    answered = Some((op, outcome));
                }
            }
        }
        match self.outcomes.get(&entry.index) {
            Some(first) if *first != outcome_hash => {
                return Err(self.violation(
                    "store state machine safety",
                    format!(
                        "member {id} applied entry {} with a different outcome: {rendered}",
                        entry.index
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.outcomes.insert(entry.index, outcome_hash);
            }
        }
        if let Some((op, outcome)) = answered {
            let output = match (&self.ops[op].input, outcome) {
                (KvInput::Put { .. }, Ok(_)) => KvOutput::Written,
                (KvInput::CompareAndSwap { .. }, Ok(_)) => KvOutput::Swapped(true),
                (KvInput::CompareAndSwap { .. }, Err(e))
                    if matches!(e.code, ErrorCode::TestFailed | ErrorCode::KeyNotFound) =>
                {
                    KvOutput::Swapped(false)
                }
                (KvInput::Delete { .. }, Ok(_)) => KvOutput::Deleted { existed: true },
                (KvInput::Delete { .. }, Err(e)) if e.code == ErrorCode::KeyNotFound => {
                    KvOutput::Deleted { existed: false }
                }
                (input, outcome) => {
                    return Err(
                        self.violation("client answer", format!("{input:?} got {outcome:?}"))
                    );
                }
            };
            self.finish(op, tick, output);
        }
        Ok(())
    }

    fn answer_reads(&mut self, index: usize) {
        let tick = self.tick;
        let member = &mut self.members[index];
        let applied = member.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut member.confirmed_reads)
            .into_iter()
            .partition(|(at, _)| *at <= applied);
        member.confirmed_reads = waiting;
        let mut answers = Vec::new();
        for (_, op) in ready {
            let KvInput::Get { key } = &self.ops[op].input else {
                continue;
            };
            let value = member
                .store
                .get(key, false, false)
                .ok()
                .and_then(|event| event.node.value);
            answers.push((op, KvOutput::Value(value)));
        }
        for (op, output) in answers {
            self.finish(op, tick, output);
        }
    }

    fn finish(&mut self, op: usize, tick: u64, output: KvOutput) {
        let entry = &mut self.ops[op];
        if entry.done.is_some() {
            return;
        }
        entry.done = Some((tick, output));
        let client = entry.client as usize;
        if self.busy[client] == Some(op) {
            self.busy[client] = None;
        }
        let text = format!("{op}@{tick}");
        self.trace(text.as_bytes());
    }

    fn maybe_compact(&mut self, index: usize) {
        let every = self.options.compact_every_entries;
        let member = &mut self.members[index];
        let Some(raw) = member.raw.as_mut() else {
            return;
        };
        let snapshot_index = raw.raft.log.storage.snapshot().meta.index;
        if every == 0 || member.applied < snapshot_index + every || raw.applied() != member.applied
        {
            return;
        }
        let data = member.cluster.encode_snapshot(&member.store.save());
        raw.compact(data);
        let snapshot = raw.raft.log.storage.snapshot().clone();
        member.disk.compact(&snapshot);
    }

    /// A client starts an operation against a random live member.
    fn client_step(&mut self) {
        for client in 0..self.options.clients {
            if self.busy[client].is_some() || self.rng.below(100) >= 30 {
                continue;
            }
            let alive: Vec<usize> = (0..self.members.len())
                .filter(|i| self.members[*i].raw.is_some())
                .collect();
            if alive.is_empty() {
                return;
            }
            let index = alive[self.rng.below(alive.len() as u64) as usize];
            let key = store_key(self.rng.below(self.options.keys as u64) as usize);
            self.next_value += 1;
            let value = format!("v{}", self.next_value);
            let input = match self.rng.below(10) {
                0..=3 => KvInput::Get { key },
                4..=6 => KvInput::Put { key, value },
                7..=8 => {
                    let expected = format!("v{}", self.rng.below(self.next_value) + 1);
                    KvInput::CompareAndSwap {
                        key,
                        expected,
                        new_value: value,
                    }
                }
                _ => KvInput::Delete { key },
            };
            let op = self.ops.len();
            let member_id = self.members[index].id;
            self.ops.push(Op {
                client: client as u64,
                input: input.clone(),
                invoke_tick: self.tick,
                done: None,
                member: member_id,
                refused: false,
            });
            self.busy[client] = Some(op);
            let member = &mut self.members[index];
            let raw = member.raw.as_mut().expect("alive");
            let accepted = match &input {
                KvInput::Get { key } if self.options.unsafe_local_reads => {
                    let value = member
                        .store
                        .get(key, false, false)
                        .ok()
                        .and_then(|e| e.node.value);
                    let tick = self.tick;
                    self.finish(op, tick, KvOutput::Value(value));
                    continue;
                }
                KvInput::Get { .. } => {
                    let accepted = raw.read_index((op as u64).to_le_bytes().to_vec()).is_ok();
                    if accepted {
                        member.pending_reads.insert(op as u64, op);
                    }
                    accepted
                }
                write => {
                    let command = match write.clone() {
                        KvInput::Put { key, value } => Command::Set {
                            key,
                            value,
                            dir: false,
                            expire_at: None,
                            refresh: false,
                        },
                        KvInput::CompareAndSwap {
                            key,
                            expected,
                            new_value,
                        } => Command::CompareAndSwap {
                            key,
                            value: new_value,
                            prev_value: Some(expected),
                            prev_index: 0,
                            expire_at: None,
                            refresh: false,
                        },
                        KvInput::Delete { key } => Command::Delete {
                            key,
                            dir: false,
                            recursive: false,
                        },
                        KvInput::Get { .. } => unreachable!("gets are handled above"),
                    };
                    let request_id = op as u64 + 1;
                    let envelope = Envelope {
                        proposer: member.id,
                        request_id,
                        proposed_at_unix_nanos: self.tick as i64,
                        payload: Payload::Command(command),
                    };
                    let accepted = raw.propose(envelope.encode()).is_ok();
                    if accepted {
                        member.pending_writes.insert(request_id, op);
                    }
                    accepted
                }
            };
            if !accepted {
                // Refused before it was appended anywhere: it never happened.
                self.ops[op].refused = true;
                self.ops[op].done = Some((self.tick, KvOutput::Unknown));
                self.busy[client] = None;
            }
        }
        // Clients give up on old requests: the outcome is unknown.
        let timeout = self.options.client_timeout_ticks;
        for op in 0..self.ops.len() {
            if self.ops[op].done.is_none() && self.tick >= self.ops[op].invoke_tick + timeout {
                let tick = self.tick;
                self.finish(op, tick, KvOutput::Unknown);
            }
        }
    }

    fn crash(&mut self, index: usize) {
        let member = &mut self.members[index];
        if member.raw.take().is_none() {
            return;
        }
        member.disk.crash();
        member.pending_writes.clear();
        member.pending_reads.clear();
        member.confirmed_reads.clear();
        let id = member.id;
        let lost: Vec<usize> = (0..self.ops.len())
            .filter(|op| self.ops[*op].member == id && self.ops[*op].done.is_none())
            .collect();
        for op in lost {
            let tick = self.tick;
            self.finish(op, tick, KvOutput::Unknown);
        }
        self.trace(format!("crash {id}").as_bytes());
    }

    fn restart(&mut self, index: usize) -> Result<(), Violation> {
        if self.members[index].raw.is_some() {
            return Ok(());
        }
        let storage = self.members[index].disk.recover();
        let snapshot = storage.snapshot().clone();
        let id = self.members[index].id;
        self.checkers
            .on_restart(id, storage.hard_state)
            .map_err(|(rule, detail)| self.violation(rule, detail))?;
        if snapshot.data.is_empty() {
            self.members[index].store = Store::new();
            self.members[index].cluster = ClusterState::default();
            self.members[index].applied = 0;
        } else {
            self.install_snapshot(index, &snapshot)?;
        }
        let raw = RawNode::new(&config_for(id, self.seed ^ self.tick), storage)
            .expect("valid sim config");
        self.members[index].raw = Some(raw);
        self.trace(format!("restart {id}").as_bytes());
        Ok(())
    }

    fn deliver(&mut self) {
        for in_flight in self.network.take_due(self.tick) {
            let to = in_flight.msg.to;
            if !self.network.connected(in_flight.msg.from, to) {
                continue;
            }
            if let Some(member) = self.members.iter_mut().find(|m| m.id == to) {
                if let Some(raw) = member.raw.as_mut() {
                    let _ = raw.step(in_flight.msg);
                }
            }
        }
    }

    fn fault_step(&mut self) -> Result<(), Violation> {
        let roll = self.rng.below(1000);
        let n = self.members.len() as u64;
        match roll {
            0..=4 => {
                let index = self.rng.below(n) as usize;
                self.crash(index);
            }
            5..=19 => {
                let index = self.rng.below(n) as usize;
                self.restart(index)?;
            }
            20..=24 => {
                for side in self.network.partition.iter_mut() {
                    *side = 0;
                }
                let cut = 1 + self.rng.below(n - 1) as usize;
                for position in 0..cut {
                    let index = self.rng.below(n) as usize;
                    self.network.partition[index] = (position % 2) as u8 + 1;
                }
                self.trace(b"partition");
            }
            25..=34 => {
                self.network.heal();
                self.trace(b"heal");
            }
            _ => {}
        }
        Ok(())
    }

    fn step(&mut self, faults: bool) -> Result<(), Violation> {
        self.tick += 1;
        if faults {
            self.fault_step()?;
        }
        for member in self.members.iter_mut() {
            if let Some(raw) = member.raw.as_mut() {
                raw.tick();
            }
        }
        self.deliver();
        self.drain_readies()?;
        if faults {
            self.client_step();
            self.drain_readies()?;
        }
        Ok(())
    }

    fn converged(&mut self) -> bool {
        let indexes: Vec<u64> = self.members.iter().map(|m| m.applied).collect();
        let leader = self.members.iter().any(|m| {
            m.raw
                .as_ref()
                .is_some_and(|r| r.raft.role == crate::raft::Role::Leader)
        });
        leader
            && indexes.iter().all(|i| *i == indexes[0])
            && self.ops.iter().all(|op| op.done.is_some())
    }

    fn run(mut self) -> Result<KvSummary, Violation> {
        self.drain_readies()?;
        for _ in 0..self.options.fault_ticks {
            self.step(true)?;
        }
        // Healed phase: everyone up, the network whole and lossless; clients stop.
        self.network.heal();
        self.network.faults = NetworkFaults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            min_delay_ticks: 1,
            max_delay_ticks: 1,
        };
        for index in 0..self.members.len() {
            self.restart(index)?;
        }
        let mut converged = false;
        for _ in 0..self.options.fault_ticks.max(500) {
            self.step(false)?;
            let tick = self.tick;
            let stale: Vec<usize> = (0..self.ops.len())
                .filter(|op| {
                    self.ops[*op].done.is_none()
                        && tick >= self.ops[*op].invoke_tick + self.options.client_timeout_ticks
                })
                .collect();
            for op in stale {
                self.finish(op, tick, KvOutput::Unknown);
            }
            if self.converged() && self.tick.is_multiple_of(10) {
                converged = true;
                break;
            }
        }
        if !converged {
            let indexes: Vec<u64> = self.members.iter().map(|m| m.applied).collect();
            let states: Vec<String> = self
                .members
                .iter()
                .map(|m| match &m.raw {
                    Some(raw) => {
                        let status = raw.status();
                        format!(
                            "{}: {:?} term {} commit {} last {} snapshot {} progress {:?}",
                            m.id,
                            status.soft_state.role,
                            status.hard_state.term,
                            status.hard_state.commit,
                            status.last_index,
                            raw.raft.log.storage.snapshot().meta.index,
                            status.progress
                        )
                    }
                    None => format!("{}: down", m.id),
                })
                .collect();
            return Err(self.violation(
                "liveness",
                format!(
                    "members did not converge after healing: applied {indexes:?}; {}",
                    states.join("; ")
                ),
            ));
        }
        // Every member's store is the same.
        let images: Vec<(u64, String)> = self
            .members
            .iter()
            .map(|m| {
                let listing = m
                    .store
                    .get("/", true, true)
                    .map(|e| crate::api::render::event_json(&e, 0, false));
                (m.store.current_index(), format!("{listing:?}"))
            })
            .collect();
        if images.iter().any(|image| *image != images[0]) {
            return Err(self.violation(
                "store convergence",
                format!("stores differ after healing: {images:?}"),
            ));
        }
        // The clients' history is linearizable.
        let history: Vec<KvOperation> = self
            .ops
            .iter()
            .filter(|op| !op.refused)
            .map(|op| {
                let (return_tick, output) = op
                    .done
                    .clone()
                    .unwrap_or((op.invoke_tick, KvOutput::Unknown));
                KvOperation {
                    client_id: op.client,
                    invoke_time: op.invoke_tick * 2,
                    // Answers given during a tick come after requests sent in it.
                    return_time: return_tick * 2 + 1,
                    input: op.input.clone(),
                    output,
                }
            })
            .collect();
        let verdict = check_kv_history(&history, 1_000_000)
            .map_err(|e| self.violation("history", format!("malformed history: {e:?}")))?;
        let undecided = match verdict {
            CheckOutcome::Linearizable => false,
            CheckOutcome::Unknown { .. } => true,
            CheckOutcome::NotLinearizable(violation) => {
                return Err(self.violation("linearizability", violation.describe(&history)));
            }
        };
        Ok(KvSummary {
            operations: self.ops.iter().filter(|op| !op.refused).count(),
            unknown_outcomes: self
                .ops
                .iter()
                .filter(|op| !op.refused && matches!(op.done, Some((_, KvOutput::Unknown))))
                .count(),
            applied_index: self.members[0].applied,
            snapshots_installed: self.snapshots_installed,
            trace_hash: self.trace_hash,
            linearizability_undecided: undecided,
        })
    }
}

/// Runs one seed. On failure the violation names the seed; run it again to replay.
pub fn run_kv_seed(seed: u64, options: &KvSimOptions) -> Result<KvSummary, Violation> {
    let sim = Sim::new(seed, options.clone());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run())) {
        Ok(result) => result,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".to_string());
            Err(Violation {
                seed,
                tick: 0,
                rule: "panic",
                detail,
            })
        }
    }
}
