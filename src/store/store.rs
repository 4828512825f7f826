//! [`Store`]: applies commands to the tree, keeps the index, the TTL index, the event history
//! and the watcher hub consistent, and serves reads and watch registrations.
//!
//! Index rule: `current_index` grows by exactly one for every successful write (set, create,
//! update, compareAndSwap, delete, compareAndDelete, refresh, internal write) and for every node
//! a `Sync` expires; failed operations, reads and watches never move it. Every index has exactly
//! one event in the history.

use std::collections::{BTreeMap, BTreeSet};

use super::command::Command;
use super::error::{ErrorCode, V2Error};
use super::event::{Action, Event, NodeExtern};
use super::history::{History, HistoryEntry};
use super::path;
use super::stats::StoreStats;
use super::tree::{StoredNode, Tree};
use super::watch::{Watcher, WatcherHub};
use super::{UnixNanos, WatcherId};

/// Expiration times before 2000-01-01T00:00:00Z mean "no TTL" on set/create, as in etcd.
pub const MIN_EXPIRE_AT_UNIX_NANOS: UnixNanos = 946_684_800_000_000_000;

/// How a watch registration went. (The variants' sizes differ; the shape is the API contract
/// with the node, and a watch registration is not a hot path.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStart {
    /// Satisfied from history right now (the watcher is NOT registered, even for a stream).
    Ready(Event),
    /// Registered; the X-Etcd-Index of the response is `registered_index`.
    Parked { registered_index: u64 },
}

/// The v2 store. See the module docs of `store` for what it owns.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub(crate) tree: Tree,
    /// Invariant: the index of the last successful write; the newest history event has it.
    pub(crate) current_index: u64,
    /// Invariant: exactly the (expire_at, path) pairs of the tree's nodes that have a TTL.
    pub(crate) ttl_index: BTreeSet<(UnixNanos, String)>,
    pub(crate) history: History,
    /// The internal namespace written by `Command::Internal` (invisible to key reads).
    pub(crate) internal: BTreeMap<String, String>,
    pub(crate) hub: WatcherHub,
    pub(crate) stats: StoreStats,
    /// The proposer's clock for the command being applied (see [`Event::at`]); None between
    /// commands.
    pub(crate) event_time: Option<UnixNanos>,
}

/// Where a path lookup ended.
enum Found<'a> {
    Root,
    Node(&'a StoredNode),
}

impl Found<'_> {
    fn is_dir(&self) -> bool {
        match self {
            Found::Root => true,
            Found::Node(node) => node.is_dir(),
        }
    }
}

/// The cause etcd reports for a node path: the root's internal key strips to "".
fn cause_of(path: &str) -> String {
    if path == "/" {
        String::new()
    } else {
        path.to_owned()
    }
}

/// The external view of one stored node without children (etcd's `Repr(false, false)`).
fn extern_of(path: &str, node: &StoredNode) -> NodeExtern {
    NodeExtern {
        key: path.to_owned(),
        value: node.value.clone(),
        dir: node.is_dir(),
        expiration: node.expire_at,
        modified_index: node.modified_index,
        created_index: node.created_index,
        nodes: None,
    }
}

/// etcd's compare: (ok, failure cause).
fn compare(node: &StoredNode, prev_value: Option<&str>, prev_index: u64) -> Result<(), String> {
    let current_value = node.value.as_deref().unwrap_or("");
    let prev_value = prev_value.filter(|value| !value.is_empty());
    let index_ok = prev_index == 0 || prev_index == node.modified_index;
    let value_ok = prev_value.is_none_or(|value| value == current_value);
    let value_text = prev_value.unwrap_or("");
    match (value_ok, index_ok) {
        (true, true) => Ok(()),
        (false, true) => Err(format!("[{value_text} != {current_value}]")),
        (true, false) => Err(format!("[{prev_index} != {}]", node.modified_index)),
        (false, false) => Err(format!(
            "[{value_text} != {current_value}] [{prev_index} != {}]",
            node.modified_index
        )),
    }
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn current_index(&self) -> u64 {
        self.current_index
    }

    pub fn watcher_count(&self) -> usize {
        self.hub.count()
    }

    /// Whether any node has a TTL (the node proposes `Sync` only then).
    pub fn has_ttl_nodes(&self) -> bool {
        !self.ttl_index.is_empty()
    }

    /// The earliest expiration in the tree, if any.
    pub fn next_expiration(&self) -> Option<UnixNanos> {
        self.ttl_index.first().map(|(expire_at, _)| *expire_at)
    }

    /// A value of the internal namespace written by `Command::Internal`.
    pub fn internal_value(&self, key: &str) -> Option<&str> {
        self.internal.get(&path::clean(key)).map(String::as_str)
    }

    /// The internal-namespace entries whose key starts with `prefix`, in key order.
    pub fn internal_entries_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.internal
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// `/v2/stats/store` body: etcd's key order, no newline.
    pub fn stats_json(&self) -> String {
        self.stats.to_json(self.hub.count())
    }

    fn error(&self, code: ErrorCode, cause: impl Into<String>) -> V2Error {
        V2Error::new(code, cause, self.current_index)
    }

    /// etcd's internalGet: 104 if a component on the way is a file, 100 for the first missing one.
    fn lookup(&self, path: &str) -> Result<Found<'_>, V2Error> {
        let mut found = Found::Root;
        let mut previous = "/";
        for prefix in path::prefixes(path) {
            if !found.is_dir() {
                return Err(self.error(ErrorCode::NotDir, previous));
            }
            match self.tree.get(prefix) {
                Some(node) => found = Found::Node(node),
                None => return Err(self.error(ErrorCode::KeyNotFound, prefix)),
            }
            previous = prefix;
        }
        Ok(found)
    }

    fn set_ttl(&mut self, path: &str, expire_at: Option<UnixNanos>) {
        let node = self
            .tree
            .get_mut(path)
            .unwrap_or_else(|| panic!("set_ttl on missing node {path:?}"));
        if let Some(old) = node.expire_at {
            self.ttl_index.remove(&(old, path.to_owned()));
        }
        node.expire_at = expire_at;
        if let Some(new) = expire_at {
            self.ttl_index.insert((new, path.to_owned()));
        }
    }

    /// Removes a subtree and its TTL entries; returns the removed paths.
    fn remove_subtree(&mut self, path: &str) -> Vec<String> {
        let removed = self.tree.remove_subtree(path);
        let mut paths = Vec::with_capacity(removed.len());
        for (removed_path, node) in removed {
            if let Some(expire_at) = node.expire_at {
                self.ttl_index.remove(&(expire_at, removed_path.clone()));
            }
            paths.push(removed_path);
        }
        paths
    }

    /// Records a write's event (refreshes and internal writes are never delivered).
    fn record(
        &mut self,
        event: &Event,
        removed_paths: &[String],
        internal: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) {
        assert_eq!(
            event.index(),
            self.current_index,
            "an event must carry the index its write produced"
        );
        let mut event = event.clone();
        event.at = self.event_time;
        if !internal && !event.refresh {
            self.hub.notify(&event, removed_paths, fired);
        }
        self.history.push(HistoryEntry { event, internal });
    }

    /// [`Store::apply`] for a command proposed at `at` (the proposer's clock, replicated with
    /// the command): its events carry that time, so their `ttl` is rendered as of it.
    pub fn apply_at(
        &mut self,
        cmd: &Command,
        at: Option<UnixNanos>,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Option<Event>, V2Error> {
        self.event_time = match cmd {
            Command::Sync { now } => Some(*now),
            _ => at,
        };
        let result = self.apply(cmd, fired);
        let stamped = self.event_time.take();
        result.map(|event| {
            event.map(|mut event| {
                event.at = stamped;
                event
            })
        })
    }

    /// Apply one replicated command. Matching watch notifications are appended to `fired`.
    /// Returns Ok(Some(event)) for client writes, Ok(None) for Sync/Internal.
    pub fn apply(
        &mut self,
        cmd: &Command,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Option<Event>, V2Error> {
        let result = match cmd {
            Command::Set {
                key,
                value,
                dir,
                expire_at,
                refresh,
            } => {
                let result = self.set(key, value, *dir, *expire_at, *refresh, fired);
                StoreStats::outcome(
                    &self.stats.sets_success,
                    &self.stats.sets_fail,
                    result.is_ok(),
                );
                result
            }
            Command::Create {
                key,
                value,
                dir,
                expire_at,
                in_order,
            } => {
                let result = self.create(key, value, *dir, *expire_at, *in_order, fired);
                StoreStats::outcome(
                    &self.stats.create_success,
                    &self.stats.create_fail,
                    result.is_ok(),
                );
                result
            }
            Command::Update {
                key,
                value,
                expire_at,
                refresh,
            } => {
                let result = self.update(key, value, *expire_at, *refresh, fired);
                StoreStats::outcome(
                    &self.stats.update_success,
                    &self.stats.update_fail,
                    result.is_ok(),
                );
                result
            }
            Command::CompareAndSwap {
                key,
                value,
                prev_value,
                prev_index,
                expire_at,
                refresh,
            } => {
                let result = self.compare_and_swap(
                    key,
                    value,
                    prev_value.as_deref(),
                    *prev_index,
                    *expire_at,
                    *refresh,
                    fired,
                );
                StoreStats::outcome(
                    &self.stats.compare_and_swap_success,
                    &self.stats.compare_and_swap_fail,
                    result.is_ok(),
                );
                result
            }
            Command::Delete {
                key,
                dir,
                recursive,
            } => {
                let result = self.delete(key, *dir, *recursive, fired);
                StoreStats::outcome(
                    &self.stats.delete_success,
                    &self.stats.delete_fail,
                    result.is_ok(),
                );
                result
            }
            Command::CompareAndDelete {
                key,
                prev_value,
                prev_index,
            } => {
                let result =
                    self.compare_and_delete(key, prev_value.as_deref(), *prev_index, fired);
                StoreStats::outcome(
                    &self.stats.compare_and_delete_success,
                    &self.stats.compare_and_delete_fail,
                    result.is_ok(),
                );
                result
            }
            Command::Sync { now } => {
                self.expire(*now, fired);
                return Ok(None);
            }
            Command::Internal { key, value } => {
                self.internal_write(key, value, fired);
                return Ok(None);
            }
        };
        result.map(Some)
    }

    fn set(
        &mut self,
        key: &str,
        value: &str,
        dir: bool,
        expire_at: Option<UnixNanos>,
        refresh: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = path::clean(key);
        let mut value = value.to_owned();
        match self.lookup(&path) {
            Ok(found) => {
                if refresh {
                    value = match found {
                        Found::Node(node) => node.value.clone().unwrap_or_default(),
                        Found::Root => String::new(),
                    };
                }
            }
            Err(error) if error.code == ErrorCode::KeyNotFound && !refresh => {}
            Err(error) => return Err(error),
        }
        let mut event = self.create_node(&path, dir, &value, true, expire_at, Action::Set)?;
        event.refresh = refresh;
        self.record(&event, &[], false, fired);
        Ok(event)
    }

    fn create(
        &mut self,
        key: &str,
        value: &str,
        dir: bool,
        expire_at: Option<UnixNanos>,
        in_order: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = if in_order {
            path::clean(&format!("{key}/{:020}", self.current_index + 1))
        } else {
            path::clean(key)
        };
        let event = self.create_node(&path, dir, value, false, expire_at, Action::Create)?;
        self.record(&event, &[], false, fired);
        Ok(event)
    }

    /// etcd's internalCreate: creates missing parents, then the node (replacing a file if
    /// `replace`). Consumes one index on success.
    fn create_node(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        replace: bool,
        expire_at: Option<UnixNanos>,
        action: Action,
    ) -> Result<Event, V2Error> {
        if path == "/" {
            return Err(self.error(ErrorCode::RootReadOnly, "/"));
        }
        let expire_at = expire_at.filter(|at| *at >= MIN_EXPIRE_AT_UNIX_NANOS);
        let parents = path::prefixes(path::parent(path));
        let mut missing_parents = Vec::new();
        for parent in parents {
            match self.tree.get(parent) {
                Some(node) if node.is_dir() => {}
                Some(_) => {
                    // etcd counts a failed parent walk as a failed set as well.
                    StoreStats::bump(&self.stats.sets_fail);
                    return Err(self.error(ErrorCode::NotDir, parent));
                }
                None => missing_parents.push(parent.to_owned()),
            }
        }
        let mut prev_node = None;
        if let Some(existing) = self.tree.get(path) {
            if !replace {
                return Err(self.error(ErrorCode::NodeExist, path));
            }
            if existing.is_dir() {
                return Err(self.error(ErrorCode::NotFile, path));
            }
            prev_node = Some(extern_of(path, existing));
            self.remove_subtree(path);
        }
        let index = self.current_index + 1;
        for parent in missing_parents {
            self.tree.insert(
                &parent,
                StoredNode {
                    value: None,
                    created_index: index,
                    modified_index: index,
                    expire_at: None,
                },
            );
        }
        let node = StoredNode {
            value: if dir { None } else { Some(value.to_owned()) },
            created_index: index,
            modified_index: index,
            expire_at,
        };
        let node_extern = extern_of(path, &node);
        self.tree.insert(path, node);
        if let Some(at) = expire_at {
            self.ttl_index.insert((at, path.to_owned()));
        }
        self.current_index = index;
        Ok(Event {
            action,
            node: node_extern,
            prev_node,
            etcd_index: index,
            refresh: false,
            at: None,
        })
    }

    fn update(
        &mut self,
        key: &str,
        value: &str,
        expire_at: Option<UnixNanos>,
        refresh: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = path::clean(key);
        if path == "/" {
            return Err(self.error(ErrorCode::RootReadOnly, "/"));
        }
        let Found::Node(node) = self.lookup(&path)? else {
            unreachable!("lookup of a non-root path found the root")
        };
        if node.is_dir() && !value.is_empty() {
            return Err(self.error(ErrorCode::NotFile, path));
        }
        Ok(self.rewrite_and_record(&path, Action::Update, value, expire_at, refresh, fired))
    }

    /// The common end of update and compareAndSwap on an existing node: the new value (the
    /// current one for a refresh) and TTL are written, one index consumed, the event recorded.
    fn rewrite_and_record(
        &mut self,
        path: &str,
        action: Action,
        value: &str,
        expire_at: Option<UnixNanos>,
        refresh: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Event {
        let new_value = if refresh {
            let node = self.tree.get(path);
            node.and_then(|node| node.value.clone()).unwrap_or_default()
        } else {
            value.to_owned()
        };
        let event = self.rewrite(path, action, new_value, expire_at, refresh);
        self.record(&event, &[], false, fired);
        event
    }

    /// Writes a new value (files only: a dir keeps its modifiedIndex) and TTL into an existing
    /// node, consuming one index; returns the update/compareAndSwap event.
    fn rewrite(
        &mut self,
        path: &str,
        action: Action,
        value: String,
        expire_at: Option<UnixNanos>,
        refresh: bool,
    ) -> Event {
        let index = self.current_index + 1;
        let node = self
            .tree
            .get_mut(path)
            .unwrap_or_else(|| panic!("rewrite of missing node {path:?}"));
        let prev_node = extern_of(path, node);
        if !node.is_dir() {
            node.value = Some(value);
            node.modified_index = index;
        }
        self.set_ttl(path, expire_at);
        let node = &self.tree.get(path).expect("node rewritten above");
        let mut node_extern = extern_of(path, node);
        node_extern.modified_index = index;
        self.current_index = index;
        Event {
            action,
            node: node_extern,
            prev_node: Some(prev_node),
            etcd_index: index,
            refresh,
            at: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: &str,
        prev_value: Option<&str>,
        prev_index: u64,
        expire_at: Option<UnixNanos>,
        refresh: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = path::clean(key);
        if path == "/" {
            return Err(self.error(ErrorCode::RootReadOnly, "/"));
        }
        let Found::Node(node) = self.lookup(&path)? else {
            unreachable!("lookup of a non-root path found the root")
        };
        if node.is_dir() {
            return Err(self.error(ErrorCode::NotFile, path));
        }
        if let Err(cause) = compare(node, prev_value, prev_index) {
            return Err(self.error(ErrorCode::TestFailed, cause));
        }
        Ok(self.rewrite_and_record(
            &path,
            Action::CompareAndSwap,
            value,
            expire_at,
            refresh,
            fired,
        ))
    }

    /// Removes an existing node with a delete-like event (delete, compareAndDelete, expire).
    fn remove_with_event(
        &mut self,
        path: &str,
        action: Action,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Event {
        let index = self.current_index + 1;
        let node = self
            .tree
            .get(path)
            .unwrap_or_else(|| panic!("removing missing node {path:?}"));
        let prev_node = extern_of(path, node);
        let event = Event {
            action,
            node: NodeExtern {
                key: path.to_owned(),
                value: None,
                dir: node.is_dir(),
                expiration: None,
                modified_index: index,
                created_index: node.created_index,
                nodes: None,
            },
            prev_node: Some(prev_node),
            etcd_index: index,
            refresh: false,
            at: None,
        };
        let removed_paths = self.remove_subtree(path);
        self.current_index = index;
        self.record(&event, &removed_paths, false, fired);
        event
    }

    fn delete(
        &mut self,
        key: &str,
        dir: bool,
        recursive: bool,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = path::clean(key);
        if path == "/" {
            return Err(self.error(ErrorCode::RootReadOnly, "/"));
        }
        let dir = dir || recursive;
        let Found::Node(node) = self.lookup(&path)? else {
            unreachable!("lookup of a non-root path found the root")
        };
        if node.is_dir() {
            if !dir {
                return Err(self.error(ErrorCode::NotFile, path));
            }
            if !recursive && self.tree.has_children(&path) {
                return Err(self.error(ErrorCode::DirNotEmpty, path));
            }
        }
        Ok(self.remove_with_event(&path, Action::Delete, fired))
    }

    fn compare_and_delete(
        &mut self,
        key: &str,
        prev_value: Option<&str>,
        prev_index: u64,
        fired: &mut Vec<(WatcherId, Event)>,
    ) -> Result<Event, V2Error> {
        let path = path::clean(key);
        let node = match self.lookup(&path)? {
            Found::Root => return Err(self.error(ErrorCode::NotFile, cause_of(&path))),
            Found::Node(node) => node,
        };
        if node.is_dir() {
            return Err(self.error(ErrorCode::NotFile, cause_of(&path)));
        }
        if let Err(cause) = compare(node, prev_value, prev_index) {
            return Err(self.error(ErrorCode::TestFailed, cause));
        }
        Ok(self.remove_with_event(&path, Action::CompareAndDelete, fired))
    }

    /// Expires every node with expiration <= now, oldest first (ties by path), one index and one
    /// `expire` event each. Expiring a directory removes its subtree.
    fn expire(&mut self, now: UnixNanos, fired: &mut Vec<(WatcherId, Event)>) {
        while let Some((expire_at, path)) = self.ttl_index.first().cloned() {
            if expire_at > now {
                break;
            }
            self.remove_with_event(&path, Action::Expire, fired);
            StoreStats::bump(&self.stats.expire_count);
        }
    }

    fn internal_write(&mut self, key: &str, value: &str, fired: &mut Vec<(WatcherId, Event)>) {
        let path = path::clean(key);
        let index = self.current_index + 1;
        self.internal.insert(path.clone(), value.to_owned());
        self.current_index = index;
        let event = Event {
            action: Action::Set,
            node: NodeExtern {
                key: path,
                value: Some(value.to_owned()),
                dir: false,
                expiration: None,
                modified_index: index,
                created_index: index,
                nodes: None,
            },
            prev_node: None,
            etcd_index: index,
            refresh: false,
            at: None,
        };
        self.record(&event, &[], true, fired);
    }

    /// The listing of a directory's visible children (hidden ones left out at every level);
    /// with `recursive`, child directories carry their own listings. Built with an explicit
    /// stack, so a deep tree cannot overflow the thread's stack here.
    fn list(&self, dir: &str, recursive: bool) -> Option<Vec<NodeExtern>> {
        struct Frame<'a> {
            /// The directory being listed (unused for the outermost frame).
            node: Option<NodeExtern>,
            /// Visible children still to visit, last one first.
            pending: Vec<(&'a str, &'a StoredNode)>,
            listed: Vec<NodeExtern>,
        }
        let visible_children = |dir_path: &str| {
            let mut children: Vec<(&str, &StoredNode)> = self
                .tree
                .children(dir_path)
                .into_iter()
                .filter(|(child_path, _)| !path::is_hidden(child_path))
                .collect();
            children.reverse();
            children
        };
        let mut frames = vec![Frame {
            node: None,
            pending: visible_children(dir),
            listed: Vec::new(),
        }];
        loop {
            let top = frames
                .last_mut()
                .expect("the outermost frame is popped last");
            if let Some((child_path, child)) = top.pending.pop() {
                let child_extern = extern_of(child_path, child);
                if recursive && child.is_dir() {
                    frames.push(Frame {
                        node: Some(child_extern),
                        pending: visible_children(child_path),
                        listed: Vec::new(),
                    });
                } else {
                    top.listed.push(child_extern);
                }
                continue;
            }
            let done = frames.pop().expect("a frame was on the stack");
            let nodes = if done.listed.is_empty() {
                None
            } else {
                Some(done.listed)
            };
            match (frames.last_mut(), done.node) {
                (Some(parent), Some(mut node)) => {
                    node.nodes = nodes;
                    parent.listed.push(node);
                }
                _ => return nodes,
            }
        }
    }

    /// Read a key. Children are always sorted by key (so `sorted` changes nothing: output is
    /// deterministic). Counts getsSuccess/getsFail.
    pub fn get(&self, key: &str, recursive: bool, _sorted: bool) -> Result<Event, V2Error> {
        let path = path::clean(key);
        let found = match self.lookup(&path) {
            Ok(found) => found,
            Err(error) => {
                StoreStats::bump(&self.stats.gets_fail);
                return Err(error);
            }
        };
        let node = match found {
            Found::Root => NodeExtern {
                key: String::new(),
                value: None,
                dir: true,
                expiration: None,
                modified_index: 0,
                created_index: 0,
                nodes: self.list("/", recursive),
            },
            Found::Node(node) => {
                let mut node_extern = extern_of(&path, node);
                if node.is_dir() {
                    node_extern.nodes = self.list(&path, recursive);
                }
                node_extern
            }
        };
        StoreStats::bump(&self.stats.gets_success);
        Ok(Event {
            action: Action::Get,
            node,
            prev_node: None,
            etcd_index: self.current_index,
            refresh: false,
            at: None,
        })
    }

    /// Register a watcher. since_index 0 = from the next index. A watch satisfied from history
    /// returns Ready and is not registered (also for streams, like etcd).
    pub fn watch(
        &mut self,
        key: &str,
        recursive: bool,
        stream: bool,
        since_index: u64,
        id: WatcherId,
    ) -> Result<WatchStart, V2Error> {
        let path = path::clean(key);
        let since_index = if since_index == 0 {
            self.current_index + 1
        } else {
            since_index
        };
        match self.history.scan(&path, recursive, since_index) {
            Err(cleared) => Err(self.error(
                ErrorCode::EventIndexCleared,
                format!(
                    "the requested history has been cleared [{}/{}]",
                    cleared.oldest_index, since_index
                ),
            )),
            Ok(Some(event)) => {
                let mut event = event.clone();
                event.etcd_index = self.current_index;
                Ok(WatchStart::Ready(event))
            }
            Ok(None) => {
                self.hub.add(
                    id,
                    Watcher {
                        key: path,
                        recursive,
                        stream,
                        since_index,
                    },
                );
                Ok(WatchStart::Parked {
                    registered_index: self.current_index,
                })
            }
        }
    }

    /// Remove a watcher; no-op if unknown.
    /// Whether a watcher with this ID is registered.
    pub fn has_watcher(&self, id: WatcherId) -> bool {
        self.hub.contains(id)
    }

    pub fn remove_watcher(&mut self, id: WatcherId) {
        self.hub.remove(id);
    }
}
