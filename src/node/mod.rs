//! The node: the only place where threads, channels, disk and the clock meet.
//!
//! One thread, the Raft loop (`raft_loop`), owns ordering: client workers hand it proposals
//! and reads over a bounded channel; it runs the Raft core, persists each Ready to the WAL with
//! one sync (group commit), sends to peers, applies committed entries to the store under its
//! write lock and answers each client once its entry is applied, through a [`Completion`] (the
//! client API's completions queue the response for a responder thread, so no worker waits for
//! Raft). Reads take the store's read lock on the worker thread; `quorum=true` reads go
//! through ReadIndex first. Parked watches hold no worker: they wait in the
//! [`watch::WatchHub`] and are answered by delivery threads fed from the apply step. The
//! leader proposes `Sync{now}` every 500 ms while the store holds TTLs, so expiry is a
//! replicated command and never a clock read inside the store.
//!
//! A single member is a cluster of one: the same loop, the same WAL, no peers.

pub mod apply;
pub mod boot;
pub mod closed;
pub mod completion;
pub mod config;
pub mod envelope;
pub mod ids;
pub mod join;
pub(crate) mod raft_loop;
pub mod sock_diag;
pub mod stats;
pub mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{RecvTimeoutError, Sender};

pub use completion::Completion;
use parking_lot::RwLock;

use crate::node::envelope::Payload;
use crate::raft::message::{ConfChange, ConfChangeKind};
use crate::raft::Role;
use crate::store::{Command, Event, Store, UnixNanos, V2Error};
pub use config::Config;

/// How long a client waits for its proposal to be applied (etcd: 5 s + 2 × election timeout).
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(7);
/// The TTL ticker's period (etcd's SYNC cadence).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// Requests waiting for the Raft loop; a full queue makes proposers wait (back-pressure).
const REQUEST_QUEUE_CAPACITY: usize = 8192;
/// Messages from peers waiting for the Raft loop; beyond this they are dropped (Raft retries).
const INBOUND_QUEUE_CAPACITY: usize = 16 * 1024;

/// The wall clock, as Unix nanoseconds.
pub fn now_unix_nanos() -> UnixNanos {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

/// One member of the cluster, as `/v2/members` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Empty until the member has published itself.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// The result of a proposal once applied.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The store's answer: an event for client writes, None for reads and internal entries.
    pub outcome: Result<Option<Event>, V2Error>,
    pub raft_index: u64,
    pub raft_term: u64,
}

/// Why a proposal got no answer from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// Not applied within [`PROPOSAL_TIMEOUT`].
    TimedOut,
    /// The node is stopping or its Raft loop has stopped.
    Stopped,
    /// The node refuses writes (WAL failure, disk full); says why.
    WritesStopped(String),
    /// The Raft core refused it (e.g. a configuration change while another is pending).
    Rejected(String),
}

impl ProposeError {
    /// The error etcd reports for it (code 300, index 0).
    pub fn to_v2_error(&self) -> V2Error {
        let cause = match self {
            ProposeError::TimedOut => "etcdserver: request timed out".to_string(),
            ProposeError::Stopped => "etcdserver: server stopped".to_string(),
            ProposeError::WritesStopped(why) => why.clone(),
            ProposeError::Rejected(why) => format!("raftkv: proposal rejected: {why}"),
        };
        V2Error::new(crate::store::ErrorCode::RaftInternal, cause, 0)
    }
}

pub(crate) enum LoopRequest {
    Propose {
        payload: Payload,
        request_id: u64,
        reply: Option<Completion>,
        deadline: Instant,
    },
    Read {
        request_id: u64,
        reply: Completion,
        deadline: Instant,
    },
    ConfChange {
        change: ConfChange,
        reply: Completion,
        deadline: Instant,
    },
    TransferLeadership {
        to: u64,
    },
    /// Stop: close the WAL cleanly, then answer on `done`.
    Shutdown {
        done: Sender<()>,
    },
}

/// What the Raft loop last told the API about itself.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub role: Role,
    /// 0 while no leader is known.
    pub leader_id: u64,
    pub term: u64,
    /// Invariant: never decreases.
    pub applied_index: u64,
    pub leader_since_unix_nanos: UnixNanos,
    /// Why writes are refused, if they are.
    pub failure: Option<String>,
    /// The failure clears by itself (disk full) rather than being permanent.
    pub failure_is_transient: bool,
    /// This start's member attributes have been applied (etcd's "ready to serve").
    pub published: bool,
}

/// Why a node could not start.
#[derive(Debug)]
pub enum StartError {
    Boot(boot::BootError),
    Transport(crate::transport::TransportError),
    BadPeerUrl {
        url: String,
    },
    Raft(crate::raft::ConfigError),
    /// Joining an existing cluster failed (no member lists us, identity not kept).
    Join(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Boot(e) => write!(f, "{e}"),
            StartError::Transport(e) => write!(f, "{e}"),
            StartError::BadPeerUrl { url } => write!(
                f,
                "bad --listen-peer-urls {url:?}: expected http://host:port"
            ),
            StartError::Raft(e) => write!(f, "bad Raft settings: {e:?}"),
            StartError::Join(why) => write!(f, "{why}"),
        }
    }
}

/// A running node.
pub struct Node {
    pub config: Config,
    /// Invariant: commands are applied only by the Raft loop; workers only register and
    /// remove watchers under the write lock.
    pub store: Arc<RwLock<Store>>,
    pub watches: Arc<watch::WatchHub>,
    pub member_id: u64,
    pub cluster_id: u64,
    /// Active members by ID, as last applied.
    pub members: RwLock<Vec<Member>>,
    /// IDs removed from the cluster; they can never come back.
    pub removed_members: RwLock<Vec<u64>>,
    pub status: RwLock<NodeStatus>,
    requests: Sender<LoopRequest>,
    next_request_id: AtomicU64,
    pub start_time_unix_nanos: UnixNanos,
    pub transport: Option<Arc<crate::transport::Transport>>,
    /// Follower latencies (while leader) and append counters, kept by the Raft loop.
    pub peer_stats: parking_lot::Mutex<stats::PeerStats>,
    /// Latency of every WAL sync the Raft loop made (one per Ready that must be durable).
    pub wal_sync_latency: stats::SyncHistogram,
    /// Whether v2 auth is enabled, read by every request's access check without the store lock.
    /// Invariant: equals `store`'s auth-enabled record as of the store's last change; it is set
    /// by whoever changed the store, before releasing its write lock ([`Node::note_store_changed`]).
    auth_enabled: AtomicBool,
}

impl Node {
    /// Opens the data dir, recovers or bootstraps, starts the peer transport and the Raft loop.
    pub fn start(config: Config) -> Result<Arc<Node>, StartError> {
        let own_peer_urls = config.own_peer_urls();
        let mut member_id = ids::member_id(&own_peer_urls, &config.initial_cluster_token, None);
        let mut initial: Vec<(u64, String, Vec<String>)> = Vec::new();
        for (name, url) in &config.initial_cluster {
            match initial.iter_mut().find(|(_, n, _)| n == name) {
                Some((_, _, urls)) => urls.push(url.clone()),
                None => initial.push((0, name.clone(), vec![url.clone()])),
            }
        }
        for (id, _, urls) in &mut initial {
            *id = ids::member_id(urls, &config.initial_cluster_token, None);
        }
        let mut initial_members: Vec<(u64, Vec<String>)> = initial
            .iter()
            .map(|(id, _, urls)| (*id, urls.clone()))
            .collect();
        let mut cluster_id = ids::cluster_id(
            &initial_members
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
        );

        let new_cluster = config.initial_cluster_state == "new";
        // A member added at run time learns its IDs from the running cluster (see `join`).
        let data_dir = std::path::Path::new(&config.data_dir);
        if let Some((member, cluster)) = join::read_identity(data_dir) {
            member_id = member;
            cluster_id = cluster;
        } else if !new_cluster && !join::has_wal(data_dir) {
            let others: Vec<String> = config
                .initial_cluster
                .iter()
                .filter(|(name, _)| *name != config.name)
                .map(|(_, url)| url.clone())
                .collect();
            let identity =
                join::identity_from_peers(&others, &own_peer_urls).map_err(StartError::Join)?;
            join::write_identity(data_dir, identity.member_id, identity.cluster_id)
                .map_err(StartError::Join)?;
            member_id = identity.member_id;
            cluster_id = identity.cluster_id;
            initial_members = identity.members;
        }
        let boot = boot::open(
            std::path::Path::new(&config.data_dir),
            crate::wal::WalOptions {
                segment_size_bytes: (config.wal_segment_bytes & !7)
                    .max(crate::wal::MIN_SEGMENT_SIZE_BYTES),
                max_total_bytes: (config.wal_max_bytes > 0).then_some(config.wal_max_bytes),
                ..Default::default()
            },
            new_cluster,
            &initial_members,
        )
        .map_err(StartError::Boot)?;

        let tick = Duration::from_millis(config.heartbeat_interval_ms.max(1));
        let mut raft_config = crate::raft::Config::new(member_id);
        raft_config.election_timeout_ticks =
            (config.election_timeout_ms / config.heartbeat_interval_ms.max(1)).max(2);
        raft_config.heartbeat_interval_ticks = 1;
        raft_config.seed = member_id ^ now_unix_nanos() as u64;
        let boot::Boot {
            lock,
            wal,
            snapshotter,
            storage,
            store,
            cluster,
            snapshot_index,
            snapshot_term,
            ..
        } = boot;
        let initial_term = storage.hard_state.term;
        let raw = crate::raft::RawNode::new(&raft_config, storage).map_err(StartError::Raft)?;

        let (inbound_tx, inbound_rx) = crossbeam_channel::bounded(INBOUND_QUEUE_CAPACITY);
        let peer_listen = config.listen_peer_urls.first().cloned().unwrap_or_default();
        let listen_addr = config::host_port(&peer_listen).ok_or(StartError::BadPeerUrl {
            url: peer_listen.clone(),
        })?;
        let transport = crate::transport::Transport::start(
            crate::transport::TransportConfig {
                cluster_id,
                local_id: member_id,
                listen_addr,
                queue_capacity: 4096,
                max_inbound_connections: 64,
                max_snapshot_bytes: 8 << 30,
            },
            inbound_tx,
        )
        .map_err(StartError::Transport)?;

        let store = Arc::new(RwLock::new(store));
        let watches = watch::WatchHub::start(store.clone(), config.max_parked_watches, 2);
        let (requests, request_rx) = crossbeam_channel::bounded(REQUEST_QUEUE_CAPACITY);
        let now = now_unix_nanos();
        let node = Arc::new(Node {
            members: RwLock::new(cluster.active_members()),
            removed_members: RwLock::new(
                cluster
                    .members
                    .values()
                    .filter(|r| r.removed)
                    .map(|r| r.member.id)
                    .collect(),
            ),
            config,
            store,
            watches,
            member_id,
            cluster_id,
            status: RwLock::new(NodeStatus {
                role: Role::Follower,
                leader_id: 0,
                term: initial_term,
                applied_index: snapshot_index,
                leader_since_unix_nanos: now,
                failure: None,
                failure_is_transient: false,
                published: false,
            }),
            requests,
            next_request_id: AtomicU64::new((now as u64) << 8),
            start_time_unix_nanos: now,
            transport: Some(transport.clone()),
            peer_stats: parking_lot::Mutex::new(stats::PeerStats::default()),
            wal_sync_latency: stats::SyncHistogram::default(),
            auth_enabled: AtomicBool::new(false),
        });
        node.note_store_changed(&node.store.read());
        let durable = raft_loop::Durable {
            lock,
            wal,
            snapshotter,
            cluster,
            snapshot_index,
            snapshot_term,
        };
        let weak = Arc::downgrade(&node);
        transport.set_members_json(Arc::new(move || match weak.upgrade() {
            Some(node) => {
                let members = node.members.read();
                let list: Vec<String> = members
                    .iter()
                    .map(crate::api::cluster::member_json)
                    .collect();
                format!("[{}]", list.join(","))
            }
            None => "[]".to_string(),
        }));
        let mut raft_loop = raft_loop::RaftLoop::new(node.clone(), durable, raw, Some(transport));
        raft_loop.connect_peers(&initial_members);
        std::thread::Builder::new()
            .name("raft-loop".into())
            .spawn(move || raft_loop.run(request_rx, inbound_rx, tick))
            .expect("spawning the Raft loop");
        Ok(node)
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    fn wait(
        &self,
        answer: crossbeam_channel::Receiver<completion::Outcome>,
        deadline: Instant,
    ) -> Result<Applied, ProposeError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match answer.recv_timeout(left) {
            Ok(outcome) => outcome,
            Err(RecvTimeoutError::Timeout) => Err(ProposeError::TimedOut),
            Err(RecvTimeoutError::Disconnected) => Err(ProposeError::Stopped),
        }
    }

    fn check_writable(&self) -> Result<(), ProposeError> {
        match &self.status.read().failure {
            Some(why) => Err(ProposeError::WritesStopped(why.clone())),
            None => Ok(()),
        }
    }

    /// Proposes a store command and waits until it is applied on this member.
    pub fn propose(&self, command: Command) -> Result<Applied, ProposeError> {
        self.propose_payload(Payload::Command(command))
    }

    pub(crate) fn propose_payload(&self, payload: Payload) -> Result<Applied, ProposeError> {
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        let (reply, answer) = Completion::channel();
        self.propose_payload_then(payload, reply, deadline);
        self.wait(answer, deadline)
    }

    /// Proposes a store command and returns at once; `reply` is completed (exactly once) when
    /// the command is applied on this member, refused, or timed out.
    pub fn propose_then(&self, command: Command, reply: Completion) {
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        self.propose_payload_then(Payload::Command(command), reply, deadline);
    }

    fn propose_payload_then(&self, payload: Payload, reply: Completion, deadline: Instant) {
        if let Err(error) = self.check_writable() {
            return reply.complete(Err(error));
        }
        let request_id = self.next_request_id();
        let request = LoopRequest::Propose {
            payload,
            request_id,
            reply: Some(reply),
            deadline,
        };
        self.submit_or_complete(request, deadline);
    }

    /// Hands `request` to the Raft loop; if the queue stays full until `deadline` or the loop
    /// has stopped, completes the request's reply with that error instead.
    fn submit_or_complete(&self, request: LoopRequest, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (request, error) = match self.requests.send_timeout(request, left) {
            Ok(()) => return,
            Err(crossbeam_channel::SendTimeoutError::Timeout(r)) => (r, ProposeError::TimedOut),
            Err(crossbeam_channel::SendTimeoutError::Disconnected(r)) => (r, ProposeError::Stopped),
        };
        match request {
            LoopRequest::Propose {
                reply: Some(reply), ..
            }
            | LoopRequest::Read { reply, .. }
            | LoopRequest::ConfChange { reply, .. } => reply.complete(Err(error)),
            _ => {}
        }
    }

    /// A linearizable read point: returns once this member has applied everything committed
    /// when the leader confirmed its leadership (ReadIndex).
    pub fn read_barrier(&self, timeout: Duration) -> Result<Applied, ProposeError> {
        let deadline = Instant::now() + timeout;
        let (reply, answer) = Completion::channel();
        self.read_barrier_then(reply, deadline);
        self.wait(answer, deadline)
    }

    /// [`Node::read_barrier`] without waiting: `reply` is completed once the read point is
    /// reached (or with the error that prevented it).
    pub fn read_barrier_then(&self, reply: Completion, deadline: Instant) {
        let request_id = self.next_request_id();
        let request = LoopRequest::Read {
            request_id,
            reply,
            deadline,
        };
        self.submit_or_complete(request, deadline);
    }

    /// [`Node::read_barrier`] with the proposal timeout.
    pub fn barrier(&self) -> Result<Applied, ProposeError> {
        self.read_barrier(PROPOSAL_TIMEOUT)
    }

    /// Adds a member with these peer URLs; returns it (unstarted) once the change is applied.
    pub fn add_member(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<Member, ProposeError> {
        let now_secs = now_unix_nanos() / 1_000_000_000;
        let id = ids::member_id(&peer_urls, "", Some(now_secs));
        self.propose_payload(Payload::PeerUrls {
            member_id: id,
            peer_urls: peer_urls.clone(),
        })?;
        let kind = if learner {
            ConfChangeKind::AddLearner
        } else {
            ConfChangeKind::AddNode
        };
        self.change_membership(ConfChange { kind, node_id: id })?;
        Ok(Member {
            id,
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
        })
    }

    /// Removes a member once the change is applied.
    pub fn remove_member(&self, id: u64) -> Result<(), ProposeError> {
        self.change_membership(ConfChange {
            kind: ConfChangeKind::RemoveNode,
            node_id: id,
        })
        .map(|_| ())
    }

    /// Replaces a member's peer URLs.
    pub fn update_member(&self, id: u64, peer_urls: Vec<String>) -> Result<(), ProposeError> {
        self.propose_payload(Payload::PeerUrls {
            member_id: id,
            peer_urls,
        })
        .map(|_| ())
    }

    fn change_membership(&self, change: ConfChange) -> Result<Applied, ProposeError> {
        self.check_writable()?;
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        let (reply, answer) = Completion::channel();
        self.submit_or_complete(
            LoopRequest::ConfChange {
                change,
                reply,
                deadline,
            },
            deadline,
        );
        let applied = self.wait(answer, deadline)?;
        if let Err(error) = &applied.outcome {
            return Err(ProposeError::Rejected(error.cause.clone()));
        }
        Ok(applied)
    }

    /// Asks the leader to hand leadership to `to`.
    pub fn transfer_leadership(&self, to: u64) {
        let _ = self
            .requests
            .try_send(LoopRequest::TransferLeadership { to });
    }

    /// Stops the Raft loop (closing the WAL cleanly) and the transport.
    pub fn shutdown(&self) {
        let (done, finished) = crossbeam_channel::bounded(1);
        if self
            .requests
            .send_timeout(LoopRequest::Shutdown { done }, Duration::from_secs(5))
            .is_ok()
        {
            let _ = finished.recv_timeout(Duration::from_secs(10));
        }
    }

    /// Waits until this member has published itself through the log (so the membership
    /// records are applied and a leader exists), at most `timeout`. True when ready.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.status.read().published {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    pub fn raft_index(&self) -> u64 {
        self.status.read().applied_index
    }

    pub fn raft_term(&self) -> u64 {
        self.status.read().term
    }

    /// The leader's member ID (0 while there is none).
    pub fn leader_id(&self) -> u64 {
        self.status.read().leader_id
    }

    pub fn is_leader(&self) -> bool {
        self.status.read().role == Role::Leader
    }

    /// Whether v2 auth is enabled (as of the last applied entry).
    pub fn auth_enabled(&self) -> bool {
        self.auth_enabled.load(Ordering::Acquire)
    }

    /// Records what request checks read from the store without its lock; called after every
    /// change to the store, while its write lock is still held.
    pub(crate) fn note_store_changed(&self, store: &Store) {
        let enabled = store.internal_value(crate::api::auth::ENABLED_KEY) == Some("true");
        self.auth_enabled.store(enabled, Ordering::Release);
    }

    /// Whether a `quorum=true` read may be answered from the local store at once, without a
    /// ReadIndex round through the Raft loop: this member leads a cluster whose only member
    /// (voter or learner) it is. No other member can commit anything, and every acknowledged
    /// write was applied here before its answer went out, so the local store is as new as any
    /// answer a client has seen (the core's ReadIndex answers a single voter at once, too;
    /// this also skips the two thread hand-offs).
    pub fn serves_quorum_reads_locally(&self) -> bool {
        // Only a cluster of exactly one member qualifies: no list is built for the others.
        let only_member = match self.members.read().as_slice() {
            [only] => Some(only.id),
            _ => None,
        };
        let role = self.status.read().role;
        only_member.is_some_and(|id| sole_member_leads(role, &[id], self.member_id))
    }
}

/// The rule of [`Node::serves_quorum_reads_locally`].
fn sole_member_leads(role: Role, member_ids: &[u64], this_member: u64) -> bool {
    role == Role::Leader && member_ids == [this_member]
}

#[cfg(test)]
mod quorum_read_tests {
    use super::*;

    #[test]
    fn only_the_leader_of_a_one_member_cluster_reads_locally() {
        assert!(sole_member_leads(Role::Leader, &[7], 7));
        assert!(!sole_member_leads(Role::Follower, &[7], 7));
        assert!(!sole_member_leads(Role::Candidate, &[7], 7));
        assert!(
            !sole_member_leads(Role::Leader, &[7, 9], 7),
            "a second member"
        );
        assert!(!sole_member_leads(Role::Leader, &[9], 7), "not this member");
        assert!(
            !sole_member_leads(Role::Leader, &[], 7),
            "no members known yet"
        );
    }
}
