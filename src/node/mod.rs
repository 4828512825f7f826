//! The node: the only place where threads, channels, disk and the clock meet.
//!
//! One apply thread owns ordering. Client workers hand it proposals over a bounded channel; it
//! takes every proposal waiting (a batch), makes the batch durable in one write, applies it to
//! the store under the write lock, answers each proposer, and hands the watch notifications the
//! batch fired to the [`watch::WatchHub`]. Reads take the store's read lock on the worker
//! thread. A ticker thread proposes `Sync{now}` every 500 ms while the store holds TTLs, so
//! expiry is a replicated command and never a clock read inside the store.
//!
//! This thread is where the Raft loop runs once the cluster lands: the batch becomes a Raft
//! proposal, and "applied" means committed by a quorum and applied locally.

pub mod config;
pub mod ids;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::RwLock;

use crate::store::{Command, Event, Store, UnixNanos, V2Error};
pub use config::Config;

/// How long a client waits for its proposal to be applied (etcd: 5 s + 2 × election timeout).
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(7);
/// The TTL ticker's period (etcd's SYNC cadence).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// Proposals waiting for the apply thread; a full queue makes proposers wait (back-pressure).
const PROPOSAL_QUEUE_CAPACITY: usize = 4096;
/// Most proposals applied as one batch (one durable write).
const MAX_BATCH: usize = 1024;

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
    /// The store's answer: an event for client writes, None for barriers and internal commands.
    pub outcome: Result<Option<Event>, V2Error>,
    pub raft_index: u64,
    pub raft_term: u64,
}

/// Why a proposal got no answer from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// Not applied within [`PROPOSAL_TIMEOUT`].
    TimedOut,
    /// The node is stopping or its apply thread has stopped.
    Stopped,
}

impl ProposeError {
    /// The error etcd reports for it (code 300, index 0).
    pub fn to_v2_error(&self) -> V2Error {
        let cause = match self {
            ProposeError::TimedOut => "etcdserver: request timed out",
            ProposeError::Stopped => "etcdserver: server stopped",
        };
        V2Error::new(crate::store::ErrorCode::RaftInternal, cause, 0)
    }
}

enum ProposalKind {
    /// A replicated command.
    Command(Command),
    /// An ordering point with no effect on the store (quorum reads): answered once every
    /// earlier proposal is applied.
    Barrier,
}

struct Proposal {
    kind: ProposalKind,
    reply: Option<Sender<Applied>>,
}

/// A running node.
pub struct Node {
    pub config: Config,
    /// Invariant: written only by the apply thread (commands) and by workers registering or
    /// removing watchers; everything else reads.
    pub store: Arc<RwLock<Store>>,
    pub watches: Arc<watch::WatchHub>,
    pub member_id: u64,
    pub cluster_id: u64,
    pub members: RwLock<Vec<Member>>,
    /// Invariant: the index of the last applied entry; never decreases.
    raft_index: AtomicU64,
    raft_term: AtomicU64,
    proposals: Sender<Proposal>,
    pub start_time_unix_nanos: UnixNanos,
    pub leader_since_unix_nanos: UnixNanos,
}

impl Node {
    /// Starts the apply thread, the watch delivery threads and the TTL ticker, and bootstraps
    /// the store (membership records consume indexes as they do on etcd: a fresh single-member
    /// cluster serves its first user write at index 4).
    pub fn start(config: Config) -> Arc<Node> {
        let own_peer_urls = config.own_peer_urls();
        let member_id = ids::member_id(&own_peer_urls, &config.initial_cluster_token, None);
        let mut members: Vec<Member> = Vec::new();
        for (name, url) in &config.initial_cluster {
            if let Some(existing) = members.iter_mut().find(|m| m.name == *name) {
                existing.peer_urls.push(url.clone());
                continue;
            }
            members.push(Member {
                id: 0,
                name: name.clone(),
                peer_urls: vec![url.clone()],
                client_urls: Vec::new(),
            });
        }
        for member in &mut members {
            member.id = ids::member_id(&member.peer_urls, &config.initial_cluster_token, None);
            if member.name == config.name {
                member.client_urls = config.advertise_client_urls.clone();
            } else {
                // Peers publish their own name and client URLs once the cluster runs.
                member.name.clear();
            }
        }
        members.sort_by_key(|m| m.id);
        let cluster_id = ids::cluster_id(&members.iter().map(|m| m.id).collect::<Vec<_>>());

        let store = Arc::new(RwLock::new(Store::new()));
        let watches = watch::WatchHub::start(store.clone(), config.max_parked_watches, 2);
        let (proposals, queue) = crossbeam_channel::bounded(PROPOSAL_QUEUE_CAPACITY);
        let now = now_unix_nanos();
        let node = Arc::new(Node {
            config,
            store,
            watches,
            member_id,
            cluster_id,
            members: RwLock::new(members.clone()),
            raft_index: AtomicU64::new(0),
            raft_term: AtomicU64::new(2),
            proposals,
            start_time_unix_nanos: now,
            leader_since_unix_nanos: now,
        });
        let apply_node = node.clone();
        std::thread::Builder::new()
            .name("apply".into())
            .spawn(move || apply_loop(&apply_node, queue))
            .expect("spawning the apply thread");
        // Bootstrap records, as etcd writes them: the member (conf change), its published
        // attributes, and the cluster version.
        let id_hex = ids::format_id(member_id);
        for (key, value) in [
            (
                format!("/0/members/{id_hex}/raftAttributes"),
                own_peer_urls.join(","),
            ),
            (
                format!("/0/members/{id_hex}/attributes"),
                node.config.name.clone(),
            ),
            ("/0/version".to_string(), "3.4.0".to_string()),
        ] {
            let _ = node.propose(Command::Internal { key, value });
        }
        let ticker_node = Arc::downgrade(&node);
        std::thread::Builder::new()
            .name("ttl-sync".into())
            .spawn(move || loop {
                std::thread::sleep(SYNC_INTERVAL);
                let Some(node) = ticker_node.upgrade() else {
                    return;
                };
                if node.store.read().has_ttl_nodes() {
                    node.propose_without_reply(Command::Sync {
                        now: now_unix_nanos(),
                    });
                }
            })
            .expect("spawning the TTL ticker");
        node
    }

    /// Proposes a command and waits until it is applied.
    pub fn propose(&self, command: Command) -> Result<Applied, ProposeError> {
        self.submit(ProposalKind::Command(command))
    }

    /// Waits until everything proposed before is applied (the single-node form of a quorum
    /// read's ReadIndex); consumes a raft index as etcd's quorum GET does.
    pub fn barrier(&self) -> Result<Applied, ProposeError> {
        self.submit(ProposalKind::Barrier)
    }

    fn submit(&self, kind: ProposalKind) -> Result<Applied, ProposeError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.proposals
            .send_timeout(
                Proposal {
                    kind,
                    reply: Some(reply),
                },
                PROPOSAL_TIMEOUT,
            )
            .map_err(|_| ProposeError::TimedOut)?;
        answer.recv_timeout(PROPOSAL_TIMEOUT).map_err(|e| match e {
            RecvTimeoutError::Timeout => ProposeError::TimedOut,
            RecvTimeoutError::Disconnected => ProposeError::Stopped,
        })
    }

    fn propose_without_reply(&self, command: Command) {
        let _ = self.proposals.try_send(Proposal {
            kind: ProposalKind::Command(command),
            reply: None,
        });
    }

    pub fn raft_index(&self) -> u64 {
        self.raft_index.load(Ordering::Acquire)
    }

    pub fn raft_term(&self) -> u64 {
        self.raft_term.load(Ordering::Acquire)
    }

    /// The leader's member ID (0 while there is none).
    pub fn leader_id(&self) -> u64 {
        self.member_id
    }
}

fn apply_loop(node: &Node, queue: Receiver<Proposal>) {
    let mut batch: Vec<Proposal> = Vec::with_capacity(MAX_BATCH);
    let mut fired = Vec::new();
    let mut answers = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        {
            let mut store = node.store.write();
            for proposal in batch.drain(..) {
                let index = node.raft_index.fetch_add(1, Ordering::AcqRel) + 1;
                let outcome = match &proposal.kind {
                    ProposalKind::Command(command) => store.apply(command, &mut fired),
                    ProposalKind::Barrier => Ok(None),
                };
                if let Some(reply) = proposal.reply {
                    answers.push((
                        reply,
                        Applied {
                            outcome,
                            raft_index: index,
                            raft_term: node.raft_term(),
                        },
                    ));
                }
            }
        }
        for (reply, applied) in answers.drain(..) {
            let _ = reply.send(applied);
        }
        if !fired.is_empty() {
            let now = now_unix_nanos();
            let rendered = fired
                .drain(..)
                .map(|(id, event)| {
                    (
                        id,
                        crate::api::render::event_json(&event, now, false).into_bytes(),
                    )
                })
                .collect();
            node.watches.fire(rendered);
        }
    }
}
