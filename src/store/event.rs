//! What the store returns and what watchers receive: [`Event`] (one write, read or expiry) and
//! [`NodeExtern`] (the external view of one node). These are plain data; the HTTP layer renders
//! them as etcd's JSON (it computes `ttl` from `expiration` at response time).

use super::UnixNanos;

/// The `action` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    Set,
    Create,
    Update,
    CompareAndSwap,
    Delete,
    CompareAndDelete,
    Expire,
}

impl Action {
    /// Every action, in the order of its wire tag (see the snapshot format).
    pub const ALL: [Action; 8] = [
        Action::Get,
        Action::Set,
        Action::Create,
        Action::Update,
        Action::CompareAndSwap,
        Action::Delete,
        Action::CompareAndDelete,
        Action::Expire,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Set => "set",
            Action::Create => "create",
            Action::Update => "update",
            Action::CompareAndSwap => "compareAndSwap",
            Action::Delete => "delete",
            Action::CompareAndDelete => "compareAndDelete",
            Action::Expire => "expire",
        }
    }

    /// Whether this action removes the node it names (its watchers see descendants go too).
    pub fn removes_node(self) -> bool {
        matches!(
            self,
            Action::Delete | Action::CompareAndDelete | Action::Expire
        )
    }
}

/// The external representation of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExtern {
    /// User-visible key; "" for the root.
    pub key: String,
    /// None for dirs and for the `node` of delete/compareAndDelete/expire events.
    pub value: Option<String>,
    pub dir: bool,
    /// Some when the node has a TTL: the absolute expiry time.
    pub expiration: Option<UnixNanos>,
    /// 0 only for the root.
    pub modified_index: u64,
    pub created_index: u64,
    /// Invariant: Some only for dir listings with at least one visible child, sorted by key.
    pub nodes: Option<Vec<NodeExtern>>,
}

/// One event: the result of a write or read, and what watchers are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    pub node: NodeExtern,
    /// Invariant: never has `nodes`.
    pub prev_node: Option<NodeExtern>,
    /// For a write: the index it produced. For a get or a watch answered from history: the
    /// store's current index.
    pub etcd_index: u64,
    /// True for refresh writes (recorded in history, never delivered to watchers).
    pub refresh: bool,
    /// When the write happened, by the clock of the member that proposed it (replicated with
    /// the command, so every member agrees). `ttl` fields are rendered as of this time, so an
    /// event served later from the history shows the TTL it had then, as etcd's does. None for
    /// reads (rendered as of the response).
    pub at: Option<UnixNanos>,
}

impl Event {
    /// The index of the event (= `node.modified_index`; for a get, the node's).
    pub fn index(&self) -> u64 {
        self.node.modified_index
    }

    /// Whether a client would see this as a creation (HTTP 201).
    pub fn is_created(&self) -> bool {
        self.action == Action::Create || (self.action == Action::Set && self.prev_node.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_match_etcd() {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "get",
                "set",
                "create",
                "update",
                "compareAndSwap",
                "delete",
                "compareAndDelete",
                "expire"
            ]
        );
    }

    #[test]
    fn created_means_create_or_set_without_prev_node() {
        let node = NodeExtern {
            key: "/a".into(),
            value: Some("v".into()),
            dir: false,
            expiration: None,
            modified_index: 1,
            created_index: 1,
            nodes: None,
        };
        let mut event = Event {
            action: Action::Set,
            node: node.clone(),
            prev_node: None,
            etcd_index: 1,
            refresh: false,
            at: None,
        };
        assert!(event.is_created());
        event.prev_node = Some(node);
        assert!(!event.is_created());
        event.action = Action::Create;
        assert!(event.is_created());
        event.action = Action::Update;
        assert!(!event.is_created());
    }
}
