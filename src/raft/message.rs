//! The plain data that crosses the core's boundary: log entries, messages, hard state,
//! snapshots, configuration changes and read states.
//!
//! Every type here is a plain struct or enum with public fields, so that the transport can
//! send it (see [`super::codec`] for the byte layout) and the WAL can store it. Node id 0
//! means "nobody" (no vote, no leader); real node ids are never 0.

use std::fmt;

/// A node's identity inside one cluster. 0 is reserved for "none".
pub type NodeId = u64;

/// The reserved id meaning "no node" (no vote cast, no leader known).
pub const NO_NODE: NodeId = 0;

/// What an entry's payload means to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// Opaque application data (empty data is the leader's no-op at term start).
    Normal = 0,
    /// An encoded [`ConfChange`]; the application applies it with `apply_conf_change`.
    ConfChange = 1,
}

/// One slot of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The leader's term when the entry was created.
    pub term: u64,
    /// Position in the log, starting at 1.
    pub index: u64,
    /// How to interpret `data`.
    pub kind: EntryKind,
    /// The payload.
    pub data: Vec<u8>,
}

impl Entry {
    /// Bytes this entry counts for flow control and the uncommitted cap: its payload.
    pub fn payload_bytes(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The state a node must persist before it sends any message that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Latest term this node has seen. Invariant: never decreases, even across crashes.
    pub term: u64,
    /// Candidate voted for in `term`, or [`NO_NODE`]. Invariant: set at most once per term.
    pub vote: NodeId,
    /// Highest log index known committed. Persisting it is an optimisation, not a safety need.
    pub commit: u64,
}

/// Who votes and who only replicates. Invariant: no id is in both lists; lists are sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    /// Members whose acknowledgements count towards quorums and who may become leader.
    pub voters: Vec<NodeId>,
    /// Members that receive the log but neither vote nor count towards quorums.
    pub learners: Vec<NodeId>,
}

/// Describes the log prefix a snapshot replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// The configuration in force at `index`.
    pub conf_state: ConfState,
}

/// A state machine image plus where it sits in the log. Sent whole in one message (not chunked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Position and configuration.
    pub meta: SnapshotMeta,
    /// The application's state machine image (opaque to the core).
    pub data: Vec<u8>,
}

/// One membership change, applied one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeKind {
    /// Add a voter, or promote a learner to voter.
    AddNode = 0,
    /// Remove a voter or learner.
    RemoveNode = 1,
    /// Add a learner (a no-op if the node is already a voter).
    AddLearner = 2,
}

/// A membership change as carried in the data of an [`EntryKind::ConfChange`] entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfChange {
    /// What to do.
    pub kind: ConfChangeKind,
    /// To whom.
    pub node_id: NodeId,
}

/// A completed ReadIndex request: once the application has applied up to `index`, a read
/// that asked with `context` may be served linearizably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The leader's commit index when leadership was confirmed.
    pub index: u64,
    /// The caller's request context, returned unchanged.
    pub context: Vec<u8>,
}

/// The kinds of message nodes exchange. Local inputs (tick, propose, ...) are methods of
/// [`super::RawNode`], except the two that may also arrive from peers: `Propose` and
/// `ReadIndex` are forwarded by followers to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageKind {
    /// A follower forwards client entries to the leader (term 0: not bound to a term).
    Propose = 0,
    /// Leader -> follower: entries after (`index`, `log_term`), plus the commit index.
    Append = 1,
    /// Follower -> leader: accepted up to `index`, or rejected with a conflict hint.
    AppendResponse = 2,
    /// Candidate -> voter: vote for me in `term`; my log ends at (`index`, `log_term`).
    Vote = 3,
    /// Voter -> candidate: granted unless `reject`.
    VoteResponse = 4,
    /// Pre-candidate -> voter: would you vote for me in `term` (not yet my term)?
    PreVote = 5,
    /// Voter -> pre-candidate.
    PreVoteResponse = 6,
    /// Leader -> follower: a whole snapshot to install.
    Snapshot = 7,
    /// Leader -> follower: I am still leader; you may commit up to `commit`.
    Heartbeat = 8,
    /// Follower -> leader: heartbeat acknowledged (echoes `context` for ReadIndex).
    HeartbeatResponse = 9,
    /// Ask the leader to hand leadership to `from` (the transferee).
    TransferLeader = 10,
    /// Leader -> transferee: campaign now, skipping pre-vote and leases.
    TimeoutNow = 11,
    /// Follower -> leader: forwarded ReadIndex request carrying `context`.
    ReadIndex = 12,
    /// Leader -> follower: the read index for `context`.
    ReadIndexResponse = 13,
}

impl MessageKind {
    /// Every kind, in code order; used by the codec and by tests.
    pub const ALL: [MessageKind; 14] = [
        MessageKind::Propose,
        MessageKind::Append,
        MessageKind::AppendResponse,
        MessageKind::Vote,
        MessageKind::VoteResponse,
        MessageKind::PreVote,
        MessageKind::PreVoteResponse,
        MessageKind::Snapshot,
        MessageKind::Heartbeat,
        MessageKind::HeartbeatResponse,
        MessageKind::TransferLeader,
        MessageKind::TimeoutNow,
        MessageKind::ReadIndex,
        MessageKind::ReadIndexResponse,
    ];

    /// True for the responses to votes (their term may be the asked-for future term).
    pub fn is_vote_response(self) -> bool {
        matches!(
            self,
            MessageKind::VoteResponse | MessageKind::PreVoteResponse
        )
    }
}

/// One message between nodes. Fields unused by a kind are zero or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What the message asks or answers.
    pub kind: MessageKind,
    /// Recipient.
    pub to: NodeId,
    /// Sender (for `TransferLeader`: the transferee).
    pub from: NodeId,
    /// Sender's term (0 for forwarded `Propose`/`ReadIndex`).
    pub term: u64,
    /// Term of the entry at `index` (Append: the previous entry; votes: last entry;
    /// rejected AppendResponse: the term at `reject_hint`).
    pub log_term: u64,
    /// A log index whose meaning depends on `kind` (see [`MessageKind`]).
    pub index: u64,
    /// Entries carried (Append, Propose).
    pub entries: Vec<Entry>,
    /// The sender's commit index (Append, Heartbeat).
    pub commit: u64,
    /// The snapshot carried by `Snapshot` messages.
    pub snapshot: Option<Snapshot>,
    /// True when a response refuses the request.
    pub reject: bool,
    /// Rejected AppendResponse: the follower's guess of where the logs may match.
    pub reject_hint: u64,
    /// Opaque bytes: a ReadIndex context, or [`CAMPAIGN_TRANSFER`] on votes forced by TimeoutNow.
    pub context: Vec<u8>,
}

/// Context marking a vote request caused by leadership transfer: voters grant it even while
/// they believe a leader is alive.
pub const CAMPAIGN_TRANSFER: &[u8] = b"transfer";

impl Message {
    /// A message with every optional field empty.
    pub fn new(kind: MessageKind, to: NodeId, from: NodeId, term: u64) -> Message {
        Message {
            kind,
            to,
            from,
            term,
            log_term: 0,
            index: 0,
            entries: Vec::new(),
            commit: 0,
            snapshot: None,
            reject: false,
            reject_hint: 0,
            context: Vec::new(),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EntryKind::Normal => {
                write!(f, "{}/{} {}", self.term, self.index, show_bytes(&self.data))
            }
            EntryKind::ConfChange => match super::codec::decode_conf_change(&self.data) {
                Ok(cc) => write!(
                    f,
                    "{}/{} {:?} {}",
                    self.term, self.index, cc.kind, cc.node_id
                ),
                Err(_) => write!(f, "{}/{} ConfChange(undecodable)", self.term, self.index),
            },
        }
    }
}

/// Printable form of a payload: UTF-8 text in quotes, otherwise hex.
pub fn show_bytes(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => data.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

impl fmt::Display for Message {
    /// One line: `from->to Kind Term:t Log:lt/i Commit:c ...`, only fields that matter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} {:?} Term:{}",
            self.from, self.to, self.kind, self.term
        )?;
        match self.kind {
            MessageKind::Append => write!(
                f,
                " Log:{}/{} Commit:{}",
                self.log_term, self.index, self.commit
            )?,
            MessageKind::AppendResponse => {
                write!(f, " Index:{}", self.index)?;
                if self.reject {
                    write!(
                        f,
                        " Rejected (Hint: {} Term: {})",
                        self.reject_hint, self.log_term
                    )?;
                }
            }
            MessageKind::Vote | MessageKind::PreVote => {
                write!(f, " Log:{}/{}", self.log_term, self.index)?
            }
            MessageKind::VoteResponse | MessageKind::PreVoteResponse if self.reject => {
                write!(f, " Rejected")?
            }
            MessageKind::Heartbeat => write!(f, " Commit:{}", self.commit)?,
            MessageKind::ReadIndexResponse => write!(f, " Index:{}", self.index)?,
            _ => {}
        }
        if !self.context.is_empty() {
            write!(f, " Context:{}", show_bytes(&self.context))?;
        }
        if !self.entries.is_empty() {
            write!(f, " Entries:[")?;
            for (i, e) in self.entries.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{e}")?;
            }
            write!(f, "]")?;
        }
        if let Some(s) = &self.snapshot {
            write!(
                f,
                " Snapshot: Index:{} Term:{} Voters:{:?} Learners:{:?}",
                s.meta.index, s.meta.term, s.meta.conf_state.voters, s.meta.conf_state.learners
            )?;
        }
        Ok(())
    }
}
