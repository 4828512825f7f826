//! The watcher hub: parked watchers by key, and which of them an applied event wakes.
//!
//! Live rules (etcd 3.4): for an event on key E with index I, a watcher on K with since-index S
//! fires when I >= S and
//! 1. E == K; or
//! 2. the watcher is recursive, E is below K, and no segment of E below K starts with `_`; or
//! 3. the event deletes/expires K or an ancestor of K (every removed path is checked).
//!
//! One-shot watchers are removed when they fire; stream watchers stay.
//!
//! Like etcd 3.4 (verified live), a *stream* watcher placed exactly on a deleted, CAD-ed or
//! expired key receives that event twice: once as a watcher on a removed path (rule 3) and once
//! as a watcher on the event key (rule 1). Watchers anywhere else receive each event once.

use std::collections::BTreeMap;

use super::event::Event;
use super::path;
use super::WatcherId;

/// One parked watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    /// Canonical path watched.
    pub key: String,
    pub recursive: bool,
    pub stream: bool,
    /// Invariant: >= 1; events with a lower index never fire this watcher.
    pub since_index: u64,
}

/// Invariant: `by_key` lists each id of `by_id` exactly once, under its watcher's key, in
/// registration order, and holds no empty lists.
#[derive(Debug, Clone, Default)]
pub struct WatcherHub {
    by_id: BTreeMap<WatcherId, Watcher>,
    by_key: BTreeMap<String, Vec<WatcherId>>,
}

impl WatcherHub {
    pub fn count(&self) -> usize {
        self.by_id.len()
    }

    pub fn contains(&self, id: WatcherId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Registers a watcher (an id already in use is replaced).
    pub fn add(&mut self, id: WatcherId, watcher: Watcher) {
        self.remove(id);
        self.by_key.entry(watcher.key.clone()).or_default().push(id);
        self.by_id.insert(id, watcher);
    }

    /// Removes a watcher; no-op if unknown.
    pub fn remove(&mut self, id: WatcherId) {
        let Some(watcher) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(ids) = self.by_key.get_mut(&watcher.key) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_key.remove(&watcher.key);
            }
        }
    }

    /// Delivers `event` to every watcher it wakes, appending to `fired`. `removed_paths` are the
    /// paths the event removed from the tree (empty for non-removing events).
    pub fn notify(
        &mut self,
        event: &Event,
        removed_paths: &[String],
        fired: &mut Vec<(WatcherId, Event)>,
    ) {
        if self.by_id.is_empty() {
            return;
        }
        let event_key = event.node.key.as_str();
        // Pass 1, rule 3: watchers on removed paths (the node itself and its descendants).
        for removed in removed_paths {
            self.fire_at(removed, event, fired, |_| true);
        }
        // Pass 2, rules 1 and 2: watchers on the event key and its ancestors, root first.
        let mut watch_paths = vec!["/"];
        watch_paths.extend(path::prefixes(event_key));
        for watch_path in watch_paths {
            let exact = watch_path == event_key;
            if !exact && path::hidden_below(watch_path, event_key) {
                continue;
            }
            self.fire_at(watch_path, event, fired, |watcher| {
                exact || watcher.recursive
            });
        }
    }

    /// Fires every watcher registered on `watch_path` that `wants` the event and whose
    /// since-index it reaches; one-shot watchers are removed at once (so a later pass cannot
    /// fire them again).
    fn fire_at(
        &mut self,
        watch_path: &str,
        event: &Event,
        fired: &mut Vec<(WatcherId, Event)>,
        wants: impl Fn(&Watcher) -> bool,
    ) {
        let Some(ids) = self.by_key.get(watch_path) else {
            return;
        };
        let woken: Vec<WatcherId> = ids
            .iter()
            .copied()
            .filter(|id| {
                let watcher = &self.by_id[id];
                event.index() >= watcher.since_index && wants(watcher)
            })
            .collect();
        for id in woken {
            fired.push((id, event.clone()));
            if !self.by_id[&id].stream {
                self.remove(id);
            }
        }
    }
}
