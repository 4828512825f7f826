//! [`Store::save`] and [`Store::restore`]: the store as bytes, for Raft snapshots.
//!
//! Saved: the tree, the current index, the TTLs (inside the nodes), the internal namespace, the
//! event history and the counters. Not saved: watchers (clients re-watch after a restart, as
//! with etcd). Integrity (checksums) is the snapshot file's job; this decoder still never
//! panics and checks every structural invariant it relies on.
//!
//! # Format (version 2)
//!
//! Primitives as in the `codec` module (little-endian, `str` = u32 length + UTF-8,
//! `opt` = tag byte 0/1 then the value, `bool` = 0/1).
//!
//! ```text
//! offset size  field
//! 0      4     magic "RKV2" = 52 4b 56 32
//! 4      1     version = 01
//! 5      8     current_index             u64
//! 13     8     node_count                u64
//!        ...   node_count nodes, in strictly increasing path order (parents first):
//!                path:str is_dir:bool [value:str, files only]
//!                created_index:u64 modified_index:u64 expire_at:opt<i64>
//!        8     internal_count            u64
//!        ...   internal_count × (key:str value:str), increasing key order
//!        8     history_count             u64 (<= 1000)
//!        ...   history_count events, oldest first, contiguous indexes:
//!                internal:bool refresh:bool action:u8 etcd_index:u64
//!                at: u8 0 (none) | u8 1 + i64 (proposer's clock, Unix ns)
//!                node:node_extern prev_node:opt<node_extern>
//!              action: 0 get 1 set 2 create 3 update 4 compareAndSwap 5 delete
//!                      6 compareAndDelete 7 expire
//!              node_extern: key:str value:opt<str> dir:bool expiration:opt<i64>
//!                           modified_index:u64 created_index:u64
//!        120   15 counters u64, in /v2/stats/store key order (getsSuccess .. expireCount)
//!              end of input (no trailing bytes)
//! ```

use std::fmt;

use super::codec::{self, Reader, WireError};
use super::event::{Action, Event, NodeExtern};
use super::history::{HistoryEntry, HISTORY_CAPACITY};
use super::path;
use super::stats::StoreStats;
use super::store::Store;
use super::tree::StoredNode;

const MAGIC: [u8; 4] = *b"RKV2";
/// The only snapshot version this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 2;

/// Why bytes are not a store snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDecodeError {
    /// A primitive field is malformed (see [`WireError`]).
    Wire(WireError),
    BadMagic {
        expected: [u8; 4],
        found: [u8; 4],
    },
    UnknownVersion {
        expected: u8,
        found: u8,
    },
    /// A node path that is not canonical (or is the root).
    NonCanonicalPath {
        found: String,
    },
    /// Node paths must strictly increase.
    PathOutOfOrder {
        previous: String,
        found: String,
    },
    /// A node whose parent is missing or is a file.
    ParentNotDir {
        path: String,
        parent: String,
    },
    /// created_index <= modified_index <= current_index must hold (and equality for dirs).
    BadNodeIndexes {
        path: String,
        created_index: u64,
        modified_index: u64,
        current_index: u64,
    },
    InternalKeyOutOfOrder {
        previous: String,
        found: String,
    },
    /// No further write could get an index.
    IndexExhausted {
        max: u64,
        found: u64,
    },
    HistoryTooLong {
        max: usize,
        found: u64,
    },
    UnknownAction {
        expected_max: u8,
        found: u8,
    },
    /// History event indexes must be contiguous.
    HistoryGap {
        expected: u64,
        found: u64,
    },
    /// The newest history event must have the current index.
    HistoryEnd {
        expected: u64,
        found: u64,
    },
}

impl fmt::Display for SnapshotDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SnapshotDecodeError::*;
        match self {
            Wire(error) => write!(f, "store snapshot: {error}"),
            BadMagic { expected, found } => write!(
                f,
                "store snapshot: bad magic: expected {expected:02x?}, found {found:02x?}"
            ),
            UnknownVersion { expected, found } => write!(
                f,
                "store snapshot: unknown version: expected {expected}, found {found}"
            ),
            NonCanonicalPath { found } => write!(
                f,
                "store snapshot: expected a canonical non-root node path, found {found:?}"
            ),
            PathOutOfOrder { previous, found } => write!(
                f,
                "store snapshot: expected a node path after {previous:?}, found {found:?}"
            ),
            ParentNotDir { path, parent } => write!(
                f,
                "store snapshot: node {path:?}: expected parent directory {parent:?}, found none"
            ),
            BadNodeIndexes {
                path,
                created_index,
                modified_index,
                current_index,
            } => write!(
                f,
                "store snapshot: node {path:?}: expected created <= modified <= current \
                 (equal for dirs), found {created_index}, {modified_index}, {current_index}"
            ),
            InternalKeyOutOfOrder { previous, found } => write!(
                f,
                "store snapshot: expected an internal key after {previous:?}, found {found:?}"
            ),
            IndexExhausted { max, found } => write!(
                f,
                "store snapshot: expected a current index below {max}, found {found}"
            ),
            HistoryTooLong { max, found } => write!(
                f,
                "store snapshot: expected at most {max} history events, found {found}"
            ),
            UnknownAction {
                expected_max,
                found,
            } => write!(
                f,
                "store snapshot: expected an action 0..={expected_max}, found {found}"
            ),
            HistoryGap { expected, found } => write!(
                f,
                "store snapshot: expected history index {expected}, found {found}"
            ),
            HistoryEnd { expected, found } => write!(
                f,
                "store snapshot: expected the newest history index {expected}, found {found}"
            ),
        }
    }
}

impl std::error::Error for SnapshotDecodeError {}

impl From<WireError> for SnapshotDecodeError {
    fn from(error: WireError) -> Self {
        SnapshotDecodeError::Wire(error)
    }
}

fn put_node_extern(out: &mut Vec<u8>, node: &NodeExtern) {
    assert!(
        node.nodes.is_none(),
        "history events never carry children ({:?})",
        node.key
    );
    codec::put_str(out, &node.key);
    codec::put_opt_str(out, node.value.as_deref());
    codec::put_bool(out, node.dir);
    codec::put_opt_i64(out, node.expiration);
    codec::put_u64(out, node.modified_index);
    codec::put_u64(out, node.created_index);
}

fn read_node_extern(reader: &mut Reader<'_>) -> Result<NodeExtern, WireError> {
    Ok(NodeExtern {
        key: reader.str("event key")?,
        value: reader.opt_str("event value")?,
        dir: reader.bool("event dir")?,
        expiration: reader.opt_i64("event expiration")?,
        modified_index: reader.u64("event modified_index")?,
        created_index: reader.u64("event created_index")?,
        nodes: None,
    })
}

fn action_tag(action: Action) -> u8 {
    Action::ALL
        .iter()
        .position(|candidate| *candidate == action)
        .expect("every action is in Action::ALL") as u8
}

impl Store {
    /// The snapshot bytes (format in the `snapshot` module doc).
    pub fn save(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        codec::put_u8(&mut out, SNAPSHOT_FORMAT_VERSION);
        codec::put_u64(&mut out, self.current_index);
        codec::put_u64(&mut out, self.tree.len() as u64);
        for (node_path, node) in self.tree.iter() {
            codec::put_str(&mut out, node_path);
            codec::put_bool(&mut out, node.is_dir());
            if let Some(value) = &node.value {
                codec::put_str(&mut out, value);
            }
            codec::put_u64(&mut out, node.created_index);
            codec::put_u64(&mut out, node.modified_index);
            codec::put_opt_i64(&mut out, node.expire_at);
        }
        codec::put_u64(&mut out, self.internal.len() as u64);
        for (key, value) in &self.internal {
            codec::put_str(&mut out, key);
            codec::put_str(&mut out, value);
        }
        codec::put_u64(&mut out, self.history.len() as u64);
        for entry in self.history.entries() {
            let event = &entry.event;
            codec::put_bool(&mut out, entry.internal);
            codec::put_bool(&mut out, event.refresh);
            codec::put_u8(&mut out, action_tag(event.action));
            codec::put_u64(&mut out, event.etcd_index);
            match event.at {
                None => codec::put_u8(&mut out, 0),
                Some(at) => {
                    codec::put_u8(&mut out, 1);
                    codec::put_i64(&mut out, at);
                }
            }
            put_node_extern(&mut out, &event.node);
            match &event.prev_node {
                None => codec::put_u8(&mut out, 0),
                Some(prev) => {
                    codec::put_u8(&mut out, 1);
                    put_node_extern(&mut out, prev);
                }
            }
        }
        for value in self.stats.values() {
            codec::put_u64(&mut out, value);
        }
        out
    }

    /// Rebuilds a store from [`Store::save`] bytes. Never panics; no watchers are registered.
    pub fn restore(bytes: &[u8]) -> Result<Store, SnapshotDecodeError> {
        let mut reader = Reader::new(bytes);
        let mut magic = [0u8; 4];
        for byte in magic.iter_mut() {
            *byte = reader.u8("magic")?;
        }
        if magic != MAGIC {
            return Err(SnapshotDecodeError::BadMagic {
                expected: MAGIC,
                found: magic,
            });
        }
        let version = reader.u8("version")?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotDecodeError::UnknownVersion {
                expected: SNAPSHOT_FORMAT_VERSION,
                found: version,
            });
        }
        let mut store = Store::new();
        store.current_index = reader.u64("current_index")?;
        if store.current_index == u64::MAX {
            return Err(SnapshotDecodeError::IndexExhausted {
                max: u64::MAX,
                found: store.current_index,
            });
        }
        let node_count = reader.u64("node_count")?;
        let mut previous_path = String::new();
        for _ in 0..node_count {
            let node_path = reader.str("node path")?;
            let is_dir = reader.bool("node is_dir")?;
            let value = if is_dir {
                None
            } else {
                Some(reader.str("node value")?)
            };
            let node = StoredNode {
                value,
                created_index: reader.u64("node created_index")?,
                modified_index: reader.u64("node modified_index")?,
                expire_at: reader.opt_i64("node expire_at")?,
            };
            if node_path == "/" || !path::is_canonical(&node_path) {
                return Err(SnapshotDecodeError::NonCanonicalPath { found: node_path });
            }
            if node_path <= previous_path {
                return Err(SnapshotDecodeError::PathOutOfOrder {
                    previous: previous_path,
                    found: node_path,
                });
            }
            let parent = path::parent(&node_path);
            if parent != "/" && !store.tree.get(parent).is_some_and(StoredNode::is_dir) {
                return Err(SnapshotDecodeError::ParentNotDir {
                    parent: parent.to_owned(),
                    path: node_path,
                });
            }
            let indexes_ok = node.created_index <= node.modified_index
                && node.modified_index <= store.current_index
                && (!is_dir || node.created_index == node.modified_index);
            if !indexes_ok {
                return Err(SnapshotDecodeError::BadNodeIndexes {
                    path: node_path,
                    created_index: node.created_index,
                    modified_index: node.modified_index,
                    current_index: store.current_index,
                });
            }
            if let Some(expire_at) = node.expire_at {
                store.ttl_index.insert((expire_at, node_path.clone()));
            }
            store.tree.insert(&node_path, node);
            previous_path = node_path;
        }
        let internal_count = reader.u64("internal_count")?;
        let mut previous_key: Option<String> = None;
        for _ in 0..internal_count {
            let key = reader.str("internal key")?;
            let value = reader.str("internal value")?;
            if let Some(previous) = previous_key.take() {
                if key <= previous {
                    return Err(SnapshotDecodeError::InternalKeyOutOfOrder {
                        previous,
                        found: key,
                    });
                }
            }
            previous_key = Some(key.clone());
            store.internal.insert(key, value);
        }
        let history_count = reader.u64("history_count")?;
        if history_count > HISTORY_CAPACITY as u64 {
            return Err(SnapshotDecodeError::HistoryTooLong {
                max: HISTORY_CAPACITY,
                found: history_count,
            });
        }
        let mut expected_index: Option<u64> = None;
        for _ in 0..history_count {
            let internal = reader.bool("event internal")?;
            let refresh = reader.bool("event refresh")?;
            let tag = reader.u8("event action")?;
            let action =
                *Action::ALL
                    .get(usize::from(tag))
                    .ok_or(SnapshotDecodeError::UnknownAction {
                        expected_max: Action::ALL.len() as u8 - 1,
                        found: tag,
                    })?;
            let etcd_index = reader.u64("event etcd_index")?;
            let at = match reader.u8("event at")? {
                0 => None,
                1 => Some(reader.i64("event at")?),
                found => {
                    return Err(WireError::InvalidOptionTag {
                        field: "event at",
                        offset: reader.offset() - 1,
                        found,
                    }
                    .into())
                }
            };
            let node = read_node_extern(&mut reader)?;
            let prev_node = match reader.u8("event prev_node tag")? {
                0 => None,
                1 => Some(read_node_extern(&mut reader)?),
                found => {
                    return Err(WireError::InvalidOptionTag {
                        field: "event prev_node",
                        offset: reader.offset() - 1,
                        found,
                    }
                    .into())
                }
            };
            let event = Event {
                action,
                node,
                prev_node,
                etcd_index,
                refresh,
                at,
            };
            if let Some(expected) = expected_index {
                if event.index() != expected {
                    return Err(SnapshotDecodeError::HistoryGap {
                        expected,
                        found: event.index(),
                    });
                }
            }
            if event.index() > store.current_index {
                return Err(SnapshotDecodeError::HistoryEnd {
                    expected: store.current_index,
                    found: event.index(),
                });
            }
            expected_index = Some(event.index() + 1);
            store.history.push(HistoryEntry { event, internal });
        }
        if history_count > 0 && store.history.newest_index() != store.current_index {
            return Err(SnapshotDecodeError::HistoryEnd {
                expected: store.current_index,
                found: store.history.newest_index(),
            });
        }
        let mut counters = [0u64; 15];
        for counter in counters.iter_mut() {
            *counter = reader.u64("stats counter")?;
        }
        store.stats = StoreStats::from_values(counters);
        reader.finish()?;
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Store, WatchStart};
    use super::*;

    const T0: i64 = 1_800_000_000_000_000_000;

    pub(crate) fn sample_store() -> Store {
        let mut store = Store::new();
        let mut fired = Vec::new();
        let commands = [
            Command::Set {
                key: "/a/b".into(),
                value: "v".into(),
                dir: false,
                expire_at: Some(T0),
                refresh: false,
            },
            Command::Set {
                key: "/d".into(),
                value: String::new(),
                dir: true,
                expire_at: Some(T0 + 5),
                refresh: false,
            },
            Command::Internal {
                key: "/0/version".into(),
                value: "3.4.0".into(),
            },
            Command::Update {
                key: "/a/b".into(),
                value: String::new(),
                expire_at: Some(T0 + 1),
                refresh: true,
            },
            Command::Create {
                key: "/q".into(),
                value: "job".into(),
                dir: false,
                expire_at: None,
                in_order: true,
            },
            Command::Set {
                key: "/_hidden".into(),
                value: "h".into(),
                dir: false,
                expire_at: None,
                refresh: false,
            },
            Command::Delete {
                key: "/d".into(),
                dir: true,
                recursive: false,
            },
        ];
        for command in &commands {
            store.apply(command, &mut fired).unwrap();
        }
        store.get("/nope", false, false).unwrap_err();
        store
    }

    #[test]
    fn save_restore_round_trip() {
        let store = sample_store();
        let bytes = store.save();
        let restored = Store::restore(&bytes).unwrap();
        assert_eq!(restored.save(), bytes);
        assert_eq!(restored.current_index(), 7);
        assert_eq!(restored.get("/", true, true), store.get("/", true, true));
        assert_eq!(restored.internal_value("/0/version"), Some("3.4.0"));
        assert!(restored.has_ttl_nodes());
        assert_eq!(restored.stats_json(), store.stats_json());
        // The history came along: a past waitIndex is answered from it.
        let mut restored = restored;
        match restored.watch("/d", false, false, 2, 1).unwrap() {
            WatchStart::Ready(event) => assert_eq!(event.node.modified_index, 2),
            other => panic!("expected history hit, got {other:?}"),
        }
        let empty = Store::new().save();
        assert_eq!(Store::restore(&empty).unwrap().save(), empty);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_store().save();
        for cut in 0..bytes.len() {
            assert!(
                Store::restore(&bytes[..cut]).is_err(),
                "a snapshot cut at {cut} of {} decoded",
                bytes.len()
            );
        }
    }

    #[test]
    fn every_byte_flip_restores_or_errors_without_panic() {
        let bytes = sample_store().save();
        for position in 0..bytes.len() {
            let mut corrupted = bytes.clone();
            corrupted[position] ^= 0x41;
            if let Ok(store) = Store::restore(&corrupted) {
                assert_eq!(store.save(), corrupted, "flip at {position}");
            }
        }
    }

    #[test]
    fn structural_errors_name_expected_and_found() {
        assert!(matches!(
            Store::restore(b"XXXX\x01"),
            Err(SnapshotDecodeError::BadMagic { found, .. }) if &found == b"XXXX"
        ));
        assert_eq!(
            Store::restore(b"RKV2\x09").err(),
            Some(SnapshotDecodeError::UnknownVersion {
                expected: SNAPSHOT_FORMAT_VERSION,
                found: 9
            })
        );
        // A node whose parent is a file.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RKV2");
        bytes.push(SNAPSHOT_FORMAT_VERSION);
        codec::put_u64(&mut bytes, 2);
        codec::put_u64(&mut bytes, 2);
        for node_path in ["/f", "/f/x"] {
            codec::put_str(&mut bytes, node_path);
            codec::put_bool(&mut bytes, false);
            codec::put_str(&mut bytes, "v");
            codec::put_u64(&mut bytes, 1);
            codec::put_u64(&mut bytes, 1);
            codec::put_opt_i64(&mut bytes, None);
        }
        assert_eq!(
            Store::restore(&bytes).err(),
            Some(SnapshotDecodeError::ParentNotDir {
                path: "/f/x".into(),
                parent: "/f".into()
            })
        );
    }
}
