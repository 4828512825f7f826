//! The Raft loop: the one thread that owns the Raft core, the WAL, the snapshotter and the
//! order in which the store changes.
//!
//! Each turn it takes whatever arrived (client proposals and reads, peer messages, a clock
//! tick), feeds it to the core, and then drains the core's Ready: persist (one WAL append and
//! one sync per Ready: group commit), send, apply committed entries to the store and answer
//! the clients waiting for them, serve ReadIndex reads that are now applied, advance. A
//! leader sends its appends before it persists them when the core says that is safe (the
//! leader's exception of the Ready contract, [`crate::raft`]): its sync then overlaps the
//! followers' instead of preceding it. The loop takes no new Ready until the one before is
//! durable, which is what makes the exception safe; a Ready whose persistence failed is
//! parked, and nothing after it is sent or applied. When
//! `--snapshot-count` entries have been applied since the last snapshot it writes one and
//! releases the WAL segments and snapshot files it covers.
//!
//! A WAL that cannot write stops writes, never acknowledges them: on ENOSPC the Ready is kept
//! and retried every tick (writes resume when space returns), on any other failure the node
//! refuses writes for good and says why. Reads go on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use crate::node::apply;
use crate::node::boot::to_wal_entry;
use crate::node::envelope::{ClusterState, Envelope, Payload};
use crate::node::{
    now_unix_nanos, Applied, Completion, LoopRequest, Member, Node, NodeStatus, ProposeError,
    SYNC_INTERVAL,
};
use crate::raft::codec::{decode_message, encode_message};
use crate::raft::message::{Entry, MessageKind};
use crate::raft::raw_node::{RawNode, Ready};
use crate::raft::Role;
use crate::snap::Snapshotter;
use crate::store::{Command, Event, UnixNanos, WatcherId};
use crate::transport::{Inbound, Transport};
use crate::wal::{Wal, WalError};

/// Requests taken from the queue per turn before the Ready is processed (bounds latency).
const MAX_REQUESTS_PER_TURN: usize = 4096;
/// Applied entries kept in the in-memory Raft log for followers slightly behind (etcd's
/// catch-up entries).
const MEMORY_LOG_ENTRIES: u64 = 5000;
/// Ticks between the first campaigns of booting voters, by rank of their IDs.
const BOOT_CAMPAIGN_STAGGER_TICKS: u64 = 2;
/// How long a member waits before proposing its attributes again if they did not apply.
const PUBLISH_RETRY: Duration = Duration::from_secs(2);

/// The store's answer to one applied command.
type StoreOutcome = Result<Option<crate::store::Event>, crate::store::V2Error>;

struct Waiter {
    reply: Completion,
    deadline: Instant,
}

/// The durable state a loop starts from (see [`crate::node::boot`]).
pub(crate) struct Durable {
    pub lock: crate::wal::DataDirLock,
    pub wal: Wal,
    pub snapshotter: Snapshotter,
    pub cluster: ClusterState,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
}

pub(crate) struct RaftLoop {
    node: Arc<Node>,
    raw: RawNode,
    wal: Wal,
    snapshotter: Snapshotter,
    transport: Option<Arc<Transport>>,
    /// Peers the transport knows. Invariant: never contains this member.
    peers: BTreeSet<u64>,
    cluster: ClusterState,
    /// Clients waiting for their entry (by request ID) to apply.
    waiters: BTreeMap<u64, Waiter>,
    /// Clients waiting for a configuration change (by the member it changes) to apply.
    conf_waiters: BTreeMap<u64, Waiter>,
    /// ReadIndex requests sent to the core, by request ID.
    pending_reads: BTreeMap<u64, Waiter>,
    /// Reads whose index is known, waiting until it is applied: (index, waiter).
    confirmed_reads: Vec<(u64, Waiter)>,
    /// Proposals the core refused for want of a leader; retried every tick until their deadline.
    stalled: VecDeque<(Vec<u8>, Instant)>,
    stalled_reads: VecDeque<(u64, Instant)>,
    applied_index: u64,
    applied_term: u64,
    snapshot_index: u64,
    /// Entries proposed this turn, not yet handed to the core.
    batch: Vec<(Vec<u8>, Instant)>,
    /// A Ready whose persistence failed with ENOSPC, to retry.
    unpersisted: Option<Ready>,
    published: bool,
    /// Request ID of this start's latest publish proposal (0: none yet). Only that entry
    /// marks this member published: replayed publishes of earlier starts do not.
    publish_request_id: u64,
    last_publish_attempt: Option<Instant>,
    last_version_attempt: Option<Instant>,
    last_sync: Instant,
    snapshot_count: u64,
    /// The snapshot a `snapshot-save` thread is writing, if any.
    /// Invariant: at most one save at a time; its index is <= `applied_index`.
    snapshot_in_flight: Option<u64>,
    /// Where the save threads report (the loop waits on `snapshot_saved`).
    snapshot_saved_tx: Sender<SnapshotSaved>,
    snapshot_saved: Receiver<SnapshotSaved>,
    /// When (in ticks since boot) this member starts its first campaign, if it still has no
    /// leader then; None once done or when not a voter.
    boot_campaign_tick: Option<u64>,
    ticks_since_boot: u64,
    _lock: crate::wal::DataDirLock,
}

impl RaftLoop {
    pub(crate) fn new(
        node: Arc<Node>,
        boot: Durable,
        raw: RawNode,
        transport: Option<Arc<Transport>>,
    ) -> RaftLoop {
        let snapshot_count = node.config.snapshot_count.max(1);
        let (snapshot_saved_tx, snapshot_saved) = crossbeam_channel::bounded(1);
        RaftLoop {
            snapshot_in_flight: None,
            snapshot_saved_tx,
            snapshot_saved,
            node,
            raw,
            wal: boot.wal,
            snapshotter: boot.snapshotter,
            transport,
            peers: BTreeSet::new(),
            cluster: boot.cluster,
            waiters: BTreeMap::new(),
            conf_waiters: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
            confirmed_reads: Vec::new(),
            stalled: VecDeque::new(),
            stalled_reads: VecDeque::new(),
            applied_index: boot.snapshot_index,
            applied_term: boot.snapshot_term,
            snapshot_index: boot.snapshot_index,
            batch: Vec::new(),
            unpersisted: None,
            published: false,
            publish_request_id: 0,
            last_publish_attempt: None,
            last_version_attempt: None,
            last_sync: Instant::now(),
            snapshot_count,
            boot_campaign_tick: None,
            ticks_since_boot: 0,
            _lock: boot.lock,
        }
    }

    /// Adds every member we know of (and the initial cluster's peers) to the transport.
    pub(crate) fn connect_peers(&mut self, initial: &[(u64, Vec<String>)]) {
        for (id, urls) in initial {
            self.ensure_peer(*id, urls);
        }
        let members: Vec<Member> = self.cluster.active_members();
        for member in members {
            self.ensure_peer(member.id, &member.peer_urls);
        }
    }

    fn ensure_peer(&mut self, id: u64, urls: &[String]) {
        if id == self.node.member_id || self.peers.contains(&id) {
            return;
        }
        let (Some(transport), Some(url)) = (&self.transport, urls.first()) else {
            return;
        };
        match transport.add_peer(id, url) {
            Ok(()) => {
                self.peers.insert(id);
            }
            Err(e) => eprintln!("raftkv: cannot add peer {id:x}: {e}"),
        }
    }

    fn drop_peer(&mut self, id: u64) {
        if self.peers.remove(&id) {
            if let Some(transport) = &self.transport {
                transport.remove_peer(id);
            }
        }
    }

    pub(crate) fn run(
        mut self,
        requests: Receiver<LoopRequest>,
        inbound: Receiver<Inbound>,
        tick: Duration,
    ) {
        let ticker = crossbeam_channel::tick(tick);
        // A member alone in its configuration need not wait an election timeout.
        self.process_ready();
        // Recovery decoded the snapshot and replayed the log: give the buffers back.
        return_freed_memory();
        if self.raw.status().progress.len() <= 1 && self.raw.raft.promotable() {
            self.raw.campaign();
        } else {
            // A booting voter campaigns (pre-vote first) after a delay set by its rank among
            // the voters' IDs instead of a whole randomized election timeout, so a cluster
            // whose quorum has just come up elects in a round trip, and members that start
            // together do not split the first vote. A member that hears from a leader by then
            // does not campaign; a running cluster refuses its pre-vote anyway.
            let voters: Vec<u64> = self.raw.status().progress.keys().copied().collect();
            if let Some(rank) = voters.iter().position(|id| *id == self.node.member_id) {
                self.boot_campaign_tick = Some(rank as u64 * BOOT_CAMPAIGN_STAGGER_TICKS);
            }
        }
        let snapshot_saved = self.snapshot_saved.clone();
        loop {
            self.process_ready();
            select! {
                recv(snapshot_saved) -> saved => {
                    if let Ok(saved) = saved {
                        self.on_snapshot_saved(saved);
                    }
                },
                recv(requests) -> request => match request {
                    Ok(LoopRequest::Shutdown { done }) => return self.shutdown(Some(done)),
                    Err(_) => break,
                    Ok(request) => self.handle_request(request),
                },
                recv(inbound) -> item => {
                    if let Ok(item) = item {
                        self.handle_inbound(item);
                    }
                },
                recv(ticker) -> _ => self.on_tick(),
            }
            for _ in 0..MAX_REQUESTS_PER_TURN {
                match requests.try_recv() {
                    Ok(LoopRequest::Shutdown { done }) => return self.shutdown(Some(done)),
                    Ok(request) => self.handle_request(request),
                    Err(_) => break,
                }
            }
            while let Ok(item) = inbound.try_recv() {
                self.handle_inbound(item);
            }
        }
        self.shutdown(None);
    }

    fn shutdown(self, done: Option<Sender<()>>) {
        if let Some(transport) = &self.transport {
            transport.shutdown();
        }
        if self.node.status.read().failure.is_none() {
            if let Err(e) = self.wal.close_clean() {
                eprintln!("raftkv: closing the WAL: {e}");
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn handle_request(&mut self, request: LoopRequest) {
        match request {
            LoopRequest::Propose {
                payload,
                request_id,
                reply,
                deadline,
            } => {
                let data = self.own_entry(request_id, payload);
                // An entry the WAL cannot hold would stop every later write once committed:
                // refuse it here, before it enters the log.
                let max_bytes = self.wal.max_entry_data_bytes();
                if data.len() > max_bytes {
                    if let Some(reply) = reply {
                        let error = ProposeError::Rejected(format!(
                            "request of {} bytes exceeds the largest WAL entry ({max_bytes} bytes; see --wal-segment-bytes)",
                            data.len()
                        ));
                        reply.complete(Ok(self.failed(error)));
                    }
                    return;
                }
                if let Some(reply) = reply {
                    self.waiters.insert(request_id, Waiter { reply, deadline });
                }
                self.propose_data(data, deadline);
            }
            LoopRequest::Read {
                request_id,
                reply,
                deadline,
            } => {
                self.pending_reads
                    .insert(request_id, Waiter { reply, deadline });
                if self
                    .raw
                    .read_index(request_id.to_le_bytes().to_vec())
                    .is_err()
                {
                    self.stalled_reads.push_back((request_id, deadline));
                }
            }
            LoopRequest::ConfChange {
                change,
                reply,
                deadline,
            } => {
                self.conf_waiters
                    .insert(change.node_id, Waiter { reply, deadline });
                if let Err(error) = self.raw.propose_conf_change(change) {
                    if let Some(waiter) = self.conf_waiters.remove(&change.node_id) {
                        let failed = self.failed(ProposeError::Rejected(format!("{error:?}")));
                        waiter.reply.complete(Ok(failed));
                    }
                }
            }
            LoopRequest::TransferLeadership { to } => self.raw.transfer_leader(to),
            LoopRequest::Shutdown { .. } => {}
        }
    }

    /// The entry data of a proposal this member makes now.
    fn own_entry(&self, request_id: u64, payload: Payload) -> Vec<u8> {
        Envelope {
            proposer: self.node.member_id,
            request_id,
            proposed_at_unix_nanos: now_unix_nanos(),
            payload,
        }
        .encode()
    }

    fn failed(&self, error: ProposeError) -> Applied {
        Applied {
            outcome: Err(error.to_v2_error()),
            raft_index: self.applied_index,
            raft_term: self.raw.raft.term,
        }
    }

    /// Queues an entry; [`RaftLoop::flush_proposals`] hands the turn's entries to the core
    /// as one batch (one append, one broadcast).
    fn propose_data(&mut self, data: Vec<u8>, deadline: Instant) {
        self.batch.push((data, deadline));
    }

    fn flush_proposals(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if self.raw.raft.leader_id == 0 {
            // No leader to take them: retried every tick until their deadline.
            self.stalled.extend(batch);
            return;
        }
        // Refused only during a leadership transfer or past the uncommitted cap: the waiting
        // clients then time out, as on etcd.
        let entries: Vec<Vec<u8>> = batch.into_iter().map(|(data, _)| data).collect();
        let _ = self.raw.propose_batch(entries);
    }

    /// The size of the first entry of a forwarded proposal that this member's WAL could not
    /// hold. Such an entry must not reach the log: a committed entry that cannot be persisted
    /// stops every later write. (The proposer checked it against its own WAL, which may allow
    /// larger entries: members can run with different `--wal-segment-bytes`.)
    fn oversized_forwarded_entry(&self, message: &crate::raft::message::Message) -> Option<usize> {
        let max_bytes = self.wal.max_entry_data_bytes();
        message
            .entries
            .iter()
            .map(|entry| entry.data.len())
            .find(|bytes| *bytes > max_bytes)
    }

    fn handle_inbound(&mut self, item: Inbound) {
        match item {
            Inbound::Message { from, payload } => match decode_message(&payload) {
                Ok(message) if message.from == from => {
                    match message.kind {
                        MessageKind::Append => self.node.peer_stats.lock().recv_append_requests += 1,
                        MessageKind::AppendResponse | MessageKind::HeartbeatResponse => {
                            self.node.peer_stats.lock().answered_by(from, Instant::now())
                        }
                        MessageKind::Propose => {
                            if let Some(refused) = self.oversized_forwarded_entry(&message) {
                                eprintln!(
                                    "raftkv: dropped a proposal forwarded by {from:x}: an entry of {refused} bytes exceeds the largest WAL entry ({} bytes; see --wal-segment-bytes); the proposer's client gets a timeout",
                                    self.wal.max_entry_data_bytes()
                                );
                                return;
                            }
                        }
                        _ => {}
                    }
                    let _ = self.raw.step(message);
                }
                Ok(message) => eprintln!(
                    "raftkv: dropped a message claiming to be from {:x} on the connection of {from:x}",
                    message.from
                ),
                Err(e) => eprintln!("raftkv: dropped an undecodable message from {from:x}: {e:?}"),
            },
            Inbound::Snapshot { from, message, data } => match decode_message(&message) {
                Ok(mut message) if message.kind == MessageKind::Snapshot => {
                    if let Some(snapshot) = message.snapshot.as_mut() {
                        snapshot.data = data;
                    }
                    let _ = self.raw.step(message);
                }
                _ => eprintln!("raftkv: dropped a malformed snapshot from {from:x}"),
            },
            Inbound::Unreachable { peer } => {
                if self.raw.raft.role == Role::Leader {
                    self.node.peer_stats.lock().unreachable(peer);
                }
                self.raw.report_unreachable(peer)
            }
            Inbound::SnapshotSent { peer, ok } => self.raw.report_snapshot(peer, ok),
        }
    }

    fn on_tick(&mut self) {
        self.raw.tick();
        self.ticks_since_boot += 1;
        if let Some(at) = self.boot_campaign_tick {
            if self.ticks_since_boot >= at {
                self.boot_campaign_tick = None;
                if self.raw.raft.role == Role::Follower && self.raw.raft.leader_id == 0 {
                    self.raw.campaign();
                }
            }
        }
        let now = Instant::now();
        if let Some(ready) = self.unpersisted.take() {
            self.persist_and_continue(ready);
        }
        // Retry what waited for a leader.
        if self.raw.raft.leader_id != 0 {
            for (data, deadline) in std::mem::take(&mut self.stalled) {
                if deadline > now {
                    self.propose_data(data, deadline);
                }
            }
            for (request_id, deadline) in std::mem::take(&mut self.stalled_reads) {
                if deadline > now
                    && self
                        .raw
                        .read_index(request_id.to_le_bytes().to_vec())
                        .is_err()
                {
                    self.stalled_reads.push_back((request_id, deadline));
                }
            }
        }
        self.stalled.retain(|(_, deadline)| *deadline > now);
        self.stalled_reads.retain(|(_, deadline)| *deadline > now);
        time_out(&mut self.waiters, now);
        time_out(&mut self.conf_waiters, now);
        time_out(&mut self.pending_reads, now);
        let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed_reads)
            .into_iter()
            .partition(|(_, w)| w.deadline <= now);
        self.confirmed_reads = live;
        for (_, waiter) in expired {
            waiter.reply.complete(Err(ProposeError::TimedOut));
        }

        let is_leader = self.raw.raft.role == Role::Leader;
        // Publish this member's name and client URLs once per start.
        if !self.published && self.raw.raft.leader_id != 0 && self.member_is_active() {
            let due = self
                .last_publish_attempt
                .is_none_or(|at| now.duration_since(at) >= PUBLISH_RETRY);
            if due {
                self.last_publish_attempt = Some(now);
                let payload = Payload::Publish {
                    member_id: self.node.member_id,
                    name: self.node.config.name.clone(),
                    client_urls: self.node.config.advertise_client_urls.clone(),
                };
                self.publish_request_id = self.node.next_request_id();
                let request_id = self.publish_request_id;
                let data = self.own_entry(request_id, payload);
                self.propose_data(data, now + PUBLISH_RETRY);
            }
        }
        if is_leader && self.cluster.cluster_version.is_empty() {
            let due = self
                .last_version_attempt
                .is_none_or(|at| now.duration_since(at) >= PUBLISH_RETRY);
            if due {
                self.last_version_attempt = Some(now);
                let payload = Payload::ClusterVersion {
                    version: crate::api::cluster::ETCD_CLUSTER_VERSION.into(),
                };
                let data = self.own_entry(0, payload);
                self.propose_data(data, now + PUBLISH_RETRY);
            }
        }
        // Expiry is a replicated command proposed by the leader only.
        if is_leader && now.duration_since(self.last_sync) >= SYNC_INTERVAL {
            self.last_sync = now;
            if self.node.store.read().has_ttl_nodes() {
                let payload = Payload::Command(Command::Sync {
                    now: now_unix_nanos(),
                });
                let data = self.own_entry(0, payload);
                self.propose_data(data, now + SYNC_INTERVAL);
            }
        }
    }

    fn member_is_active(&self) -> bool {
        self.cluster
            .members
            .get(&self.node.member_id)
            .is_some_and(|r| !r.removed)
    }

    fn process_ready(&mut self) {
        self.flush_proposals();
        if self.unpersisted.is_some() {
            return;
        }
        while self.raw.has_ready() {
            let ready = self.raw.ready();
            if !self.persist_and_continue(ready) {
                return;
            }
        }
        self.publish_status();
    }

    /// Persists a Ready and, if that worked, sends, applies and advances. False when the Ready
    /// could not be persisted (then nothing after it may happen). A leader's Ready that may
    /// be sent first ([`Ready::send_before_persist`]) is sent before the WAL append and sync,
    /// so followers store its entries while this member syncs them.
    fn persist_and_continue(&mut self, mut ready: Ready) -> bool {
        if ready.send_before_persist {
            self.send(std::mem::take(&mut ready.messages));
        }
        if let Err(error) = self.persist(&ready) {
            match error {
                WalError::NoSpace { .. } => {
                    self.set_failure(Some(format!("raftkv: no space left for the WAL ({error}); writes resume when space is freed")), true);
                    self.unpersisted = Some(ready);
                }
                other => {
                    self.set_failure(
                        Some(format!(
                            "raftkv: the WAL failed and writes are stopped: {other}"
                        )),
                        false,
                    );
                    // Never advance past what is not durable: park this Ready forever.
                    self.unpersisted = Some(ready);
                }
            }
            return false;
        }
        if self.node.status.read().failure_is_transient {
            self.set_failure(None, false);
        }
        self.send(std::mem::take(&mut ready.messages));
        if let Some(snapshot) = &ready.snapshot {
            self.apply_snapshot(snapshot.meta.index, snapshot.meta.term, &snapshot.data);
        }
        let committed = std::mem::take(&mut ready.committed_entries);
        self.apply_entries(committed);
        for read in std::mem::take(&mut ready.read_states) {
            let request_id = read
                .context
                .as_slice()
                .try_into()
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            if let Some(waiter) = self.pending_reads.remove(&request_id) {
                self.confirmed_reads.push((read.index, waiter));
            }
        }
        self.answer_reads();
        if let Some(soft) = ready.soft_state {
            let mut status = self.node.status.write();
            status.role = soft.role;
            status.leader_id = soft.leader_id;
            if soft.role == Role::Leader {
                status.leader_since_unix_nanos = now_unix_nanos();
                self.node.peer_stats.lock().reset_followers();
            }
        }
        self.raw.advance();
        self.maybe_snapshot();
        true
    }

    fn set_failure(&self, failure: Option<String>, transient: bool) {
        let mut status = self.node.status.write();
        if let Some(reason) = &failure {
            if status.failure.as_ref() != Some(reason) {
                eprintln!("{reason}");
            }
        }
        status.failure = failure;
        status.failure_is_transient = transient;
    }

    fn persist(&mut self, ready: &Ready) -> Result<(), WalError> {
        if let Some(snapshot) = &ready.snapshot {
            let file = crate::snap::Snapshot {
                index: snapshot.meta.index,
                term: snapshot.meta.term,
                data: snapshot.data.clone(),
            };
            self.snapshotter.save(&file).map_err(|e| WalError::Io {
                path: std::path::PathBuf::from("snap"),
                operation: "save snapshot",
                kind: std::io::ErrorKind::Other,
                detail: format!("{e}"),
            })?;
            self.wal.mark_snapshot(crate::wal::SnapshotMarker {
                index: snapshot.meta.index,
                term: snapshot.meta.term,
            })?;
        }
        if !ready.entries.is_empty() {
            let entries: Vec<_> = ready.entries.iter().map(to_wal_entry).collect();
            self.wal.append_entries(&entries)?;
        }
        if let Some(hs) = ready.hard_state {
            self.wal.set_hard_state(crate::wal::HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            })?;
        }
        if ready.must_sync || ready.snapshot.is_some() {
            let started = Instant::now();
            self.wal.sync()?;
            self.node.wal_sync_latency.observe(started.elapsed());
        }
        Ok(())
    }

    fn send(&mut self, messages: Vec<crate::raft::message::Message>) {
        let Some(transport) = self.transport.clone() else {
            return;
        };
        let now = Instant::now();
        {
            let mut stats = self.node.peer_stats.lock();
            for message in &messages {
                if matches!(message.kind, MessageKind::Append | MessageKind::Heartbeat) {
                    stats.sent_to(message.to, now, message.kind == MessageKind::Append);
                }
            }
        }
        for mut message in messages {
            if message.kind == MessageKind::Snapshot {
                // As etcd does, send the state applied now rather than the last snapshot kept:
                // a member added since that snapshot is not in its configuration and would
                // refuse it until the next one.
                let data = {
                    let store = self.node.store.read();
                    self.cluster.encode_snapshot(&store.save())
                };
                if let Some(snapshot) = message.snapshot.as_mut() {
                    snapshot.data = Vec::new();
                    snapshot.meta.index = self.applied_index;
                    snapshot.meta.term = self.applied_term;
                    snapshot.meta.conf_state = self.raw.raft.conf_state();
                }
                transport.send_snapshot(message.to, encode_message(&message), Arc::new(data));
            } else if !transport.send(message.to, encode_message(&message)) {
                // Dropped: Raft retries; tell it the peer is slow so it probes.
                self.raw.report_unreachable(message.to);
            }
        }
    }

    fn apply_snapshot(&mut self, index: u64, term: u64, data: &[u8]) {
        let (cluster, image) = ClusterState::decode_snapshot(data).unwrap_or_else(|e| {
            panic!("snapshot at index {index} from the leader does not decode: {e}")
        });
        let store = crate::store::Store::restore(image)
            .unwrap_or_else(|e| panic!("store image in snapshot {index} does not decode: {e:?}"));
        {
            let mut installed = self.node.store.write();
            *installed = store;
            self.node.note_store_changed(&installed);
        }
        self.cluster = cluster;
        let members = self.cluster.active_members();
        for member in &members {
            self.ensure_peer(member.id, &member.peer_urls);
        }
        *self.node.members.write() = members;
        self.applied_index = index;
        self.applied_term = term;
        self.snapshot_index = index;
        // A snapshot can cover this start's publish entry, which is then never applied here as
        // an entry: when it already records our attributes there is nothing left to publish.
        let config = &self.node.config;
        let attributes_recorded = self
            .cluster
            .members
            .get(&self.node.member_id)
            .is_some_and(|r| {
                !r.removed
                    && r.member.name == config.name
                    && r.member.client_urls == config.advertise_client_urls
            });
        if attributes_recorded && !self.published {
            self.published = true;
            self.node.status.write().published = true;
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut fired = Vec::new();
        let mut replies: Vec<(Completion, StoreOutcome, u64)> = Vec::new();
        let mut members_changed = false;
        {
            let mut store = self.node.store.write();
            for entry in entries {
                self.applied_index = entry.index;
                self.applied_term = entry.term;
                let effect = apply::apply_entry(&mut store, &mut self.cluster, &entry, &mut fired);
                members_changed |= effect.members_changed;
                if let Some(change) = effect.conf_change {
                    self.raw.apply_conf_change(change);
                    if let Some(waiter) = self.conf_waiters.remove(&change.node_id) {
                        replies.push((waiter.reply, Ok(None), entry.index));
                    }
                }
                if let Some((member, request_id)) = effect.published {
                    if member == self.node.member_id
                        && request_id == self.publish_request_id
                        && self.publish_request_id != 0
                    {
                        self.published = true;
                        self.node.status.write().published = true;
                    }
                }
                if let Some((proposer, request_id, outcome)) = effect.answer {
                    if proposer == self.node.member_id {
                        if let Some(waiter) = self.waiters.remove(&request_id) {
                            replies.push((waiter.reply, outcome, entry.index));
                        }
                    }
                }
            }
            self.node.note_store_changed(&store);
        }
        if members_changed {
            let members = self.cluster.active_members();
            for member in &members {
                self.ensure_peer(member.id, &member.peer_urls);
            }
            let removed: Vec<u64> = self
                .cluster
                .members
                .values()
                .filter(|r| r.removed)
                .map(|r| r.member.id)
                .collect();
            for id in &removed {
                self.drop_peer(*id);
            }
            *self.node.members.write() = members;
            *self.node.removed_members.write() = removed;
        }
        self.publish_status();
        let term = self.raw.raft.term;
        for (reply, outcome, index) in replies {
            reply.complete(Ok(Applied {
                outcome,
                raft_index: index,
                raft_term: term,
            }));
        }
        if !fired.is_empty() {
            self.node
                .watches
                .fire(render_fired(fired, now_unix_nanos()));
        }
    }

    fn answer_reads(&mut self) {
        let applied = self.applied_index;
        let term = self.raw.raft.term;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed_reads)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.confirmed_reads = waiting;
        for (_, waiter) in ready {
            waiter.reply.complete(Ok(Applied {
                outcome: Ok(None),
                raft_index: applied,
                raft_term: term,
            }));
        }
    }

    fn publish_status(&self) {
        let mut status = self.node.status.write();
        status.applied_index = self.applied_index;
        status.term = self.raw.raft.term;
        status.role = self.raw.raft.role;
        status.leader_id = self.raw.raft.leader_id;
    }

    fn maybe_snapshot(&mut self) {
        // The in-memory Raft log keeps only the last MEMORY_LOG_ENTRIES applied entries (for
        // followers slightly behind; others get a snapshot, built fresh when sent): the WAL
        // holds the rest until the next snapshot file.
        let first_in_memory = self.raw.raft.log.storage.snapshot().meta.index;
        if self.applied_index > first_in_memory + 2 * MEMORY_LOG_ENTRIES {
            self.raw
                .compact_to(self.applied_index - MEMORY_LOG_ENTRIES, Vec::new());
            return_freed_memory();
        }
        if self.snapshot_in_flight.is_some()
            || self.applied_index < self.snapshot_index + self.snapshot_count
        {
            return;
        }
        // The image is taken here, at the applied index; writing and syncing the file (the
        // slow part: hundreds of milliseconds with 100k keys) happens on a thread of its own,
        // and the loop finishes the snapshot when it reports (`on_snapshot_saved`).
        let data = {
            let store = self.node.store.read();
            self.cluster.encode_snapshot(&store.save())
        };
        let file = crate::snap::Snapshot {
            index: self.applied_index,
            term: self.applied_term,
            data,
        };
        self.snapshot_in_flight = Some(file.index);
        let snapshotter = self.snapshotter.clone();
        let report = self.snapshot_saved_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-save".into())
            .spawn(move || {
                let result = snapshotter
                    .save(&file)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = report.send(SnapshotSaved {
                    index: file.index,
                    term: file.term,
                    result,
                });
            });
        if let Err(error) = spawned {
            eprintln!("raftkv: cannot start a snapshot-save thread (will retry): {error}");
            self.snapshot_in_flight = None;
            self.snapshot_index = self.applied_index;
        }
    }

    /// Finishes a snapshot whose file is durable: records it in the WAL, then releases the
    /// log and the files it replaces. A failed save is retried after another
    /// `snapshot_count` entries.
    fn on_snapshot_saved(&mut self, saved: SnapshotSaved) {
        assert_eq!(
            self.snapshot_in_flight,
            Some(saved.index),
            "snapshot: a save of index {} reported, but the loop was waiting for {:?}",
            saved.index,
            self.snapshot_in_flight
        );
        self.snapshot_in_flight = None;
        let result = saved.result.and_then(|()| {
            self.wal
                .mark_snapshot(crate::wal::SnapshotMarker {
                    index: saved.index,
                    term: saved.term,
                })
                .and_then(|_| self.wal.sync())
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => {
                // Snapshots are built fresh when sent, so the in-memory one needs no image.
                self.raw
                    .compact_to(saved.index.saturating_sub(MEMORY_LOG_ENTRIES), Vec::new());
                self.snapshot_index = saved.index;
                if let Err(e) = self.wal.release_before(saved.index) {
                    eprintln!("raftkv: releasing WAL segments before {}: {e}", saved.index);
                }
                if let Err(e) = self.snapshotter.release_older_than(saved.index) {
                    eprintln!("raftkv: releasing old snapshots: {e}");
                }
                return_freed_memory();
            }
            Err(e) => {
                eprintln!(
                    "raftkv: snapshot at index {} failed (will retry): {e}",
                    saved.index
                );
                // Try again after another snapshot_count entries rather than every Ready.
                self.snapshot_index = self.applied_index;
            }
        }
    }
}

/// What a `snapshot-save` thread reports.
struct SnapshotSaved {
    index: u64,
    term: u64,
    result: Result<(), String>,
}

/// The status the loop publishes for the API (cheap to read under a lock).
impl NodeStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}

/// Hands memory freed by a compaction back to the operating system (glibc keeps freed heap
/// otherwise, and resident memory would only grow).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Completes every waiter of `waiters` whose deadline has passed with
/// [`ProposeError::TimedOut`] and forgets it.
fn time_out<K: Ord + Copy>(waiters: &mut BTreeMap<K, Waiter>, now: Instant) {
    let expired: Vec<K> = waiters
        .iter()
        .filter(|(_, w)| w.deadline <= now)
        .map(|(key, _)| *key)
        .collect();
    for key in expired {
        if let Some(waiter) = waiters.remove(&key) {
            waiter.reply.complete(Err(ProposeError::TimedOut));
        }
    }
}

/// Renders the events that fired watchers. The store reports one copy of an event per watcher
/// it fired, one after another; consecutive equal events share one rendering (a hundred
/// watchers of a directory cost one JSON body, not a hundred).
fn render_fired(fired: Vec<(WatcherId, Event)>, now: UnixNanos) -> Vec<(WatcherId, Arc<Vec<u8>>)> {
    let mut previous: Option<(Event, Arc<Vec<u8>>)> = None;
    let mut rendered = Vec::with_capacity(fired.len());
    for (id, event) in fired {
        let body = match &previous {
            Some((last, body)) if *last == event => body.clone(),
            _ => {
                let body =
                    Arc::new(crate::api::render::event_json(&event, now, false).into_bytes());
                previous = Some((event, body.clone()));
                body
            }
        };
        rendered.push((id, body));
    }
    rendered
}
