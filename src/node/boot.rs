//! Opening a data directory: lock it, recover the newest snapshot and the WAL after it, or
//! write the bootstrap log of a new cluster. Everything the Raft loop starts from.
//!
//! Layout (as etcd's): `<data-dir>/member/wal/` (segments, see [`crate::wal`]),
//! `<data-dir>/member/snap/` (snapshot files, see [`crate::snap`]), `<data-dir>/LOCK`.
//!
//! A new cluster's log starts with the same entries on every member, at term 1, committed:
//! for each initial member (by ID), its peer URLs and then the configuration change that adds
//! it. So every member applies the same membership at the same indexes, and the first user
//! write of a fresh single-member cluster lands at etcd index 4 as on etcd.

use std::path::{Path, PathBuf};

use crate::node::envelope::{ClusterState, Envelope, Payload};
use crate::raft::codec::encode_conf_change;
use crate::raft::message::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta,
};
use crate::raft::storage::MemoryStorage;
use crate::snap::Snapshotter;
use crate::store::Store;
use crate::wal::{DataDirLock, Wal, WalOptions};

/// What a node starts from.
pub struct Boot {
    pub lock: DataDirLock,
    pub wal: Wal,
    pub snapshotter: Snapshotter,
    pub storage: MemoryStorage,
    pub store: Store,
    pub cluster: ClusterState,
    /// Index and term of the snapshot the store was restored from (0, 0 if none).
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    /// True when this start wrote the bootstrap log of a new cluster.
    pub bootstrapped: bool,
}

/// Why a data directory cannot be used. Each says what to do.
#[derive(Debug)]
pub enum BootError {
    CreateDir {
        dir: PathBuf,
        reason: String,
    },
    Wal(crate::wal::WalError),
    Snap(crate::snap::SnapError),
    SnapshotMissing {
        wal_marker_index: u64,
        newest_snapshot_index: u64,
    },
    BadSnapshot {
        index: u64,
        reason: String,
    },
    BadEntry {
        index: u64,
        reason: String,
    },
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::CreateDir { dir, reason } => write!(f, "cannot create data dir {}: {reason}", dir.display()),
            BootError::Wal(e) => write!(f, "{e}"),
            BootError::Snap(e) => write!(f, "{e}"),
            BootError::SnapshotMissing { wal_marker_index, newest_snapshot_index } => write!(
                f,
                "the WAL says a snapshot at index {wal_marker_index} was taken, but the newest snapshot file is at index {newest_snapshot_index}: the snap/ directory lost files; restore it from a backup or re-add this member"
            ),
            BootError::BadSnapshot { index, reason } => write!(
                f,
                "snapshot at index {index} passes its checksum but does not decode ({reason}); it was written by another program or version"
            ),
            BootError::BadEntry { index, reason } => write!(f, "WAL entry {index} does not decode: {reason}"),
        }
    }
}

fn entry_kind_from_u8(kind: u8) -> EntryKind {
    if kind == EntryKind::ConfChange as u8 {
        EntryKind::ConfChange
    } else {
        EntryKind::Normal
    }
}

pub fn to_wal_entry(entry: &Entry) -> crate::wal::Entry {
    crate::wal::Entry {
        index: entry.index,
        term: entry.term,
        kind: entry.kind as u8,
        data: entry.data.clone(),
    }
}

/// The configuration a cluster state implies (members not removed; learners apart).
pub fn conf_state_of(cluster: &ClusterState) -> ConfState {
    let mut conf = ConfState::default();
    for record in cluster.members.values().filter(|r| !r.removed) {
        if record.is_learner {
            conf.learners.push(record.member.id);
        } else {
            conf.voters.push(record.member.id);
        }
    }
    conf
}

/// The bootstrap log of a new cluster: peer URLs then AddNode for each member, by ID.
pub fn bootstrap_entries(members: &[(u64, Vec<String>)]) -> Vec<Entry> {
    let mut sorted = members.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let mut entries = Vec::new();
    for (id, peer_urls) in sorted {
        let urls = Envelope {
            proposer: 0,
            request_id: 0,
            proposed_at_unix_nanos: 0,
            payload: Payload::PeerUrls {
                member_id: id,
                peer_urls,
            },
        };
        entries.push(Entry {
            term: 1,
            index: entries.len() as u64 + 1,
            kind: EntryKind::Normal,
            data: urls.encode(),
        });
        let add = ConfChange {
            kind: ConfChangeKind::AddNode,
            node_id: id,
        };
        entries.push(Entry {
            term: 1,
            index: entries.len() as u64 + 1,
            kind: EntryKind::ConfChange,
            data: encode_conf_change(&add),
        });
    }
    entries
}

/// Opens (or creates) the data dir. `initial_members` (ID, peer URLs) is used only when the
/// directory is empty and `new_cluster` is true.
pub fn open(
    data_dir: &Path,
    wal_options: WalOptions,
    new_cluster: bool,
    initial_members: &[(u64, Vec<String>)],
) -> Result<Boot, BootError> {
    let member_dir = data_dir.join("member");
    for dir in [
        data_dir.to_path_buf(),
        member_dir.clone(),
        member_dir.join("snap"),
    ] {
        std::fs::create_dir_all(&dir).map_err(|e| BootError::CreateDir {
            dir: dir.clone(),
            reason: e.to_string(),
        })?;
    }
    let lock = DataDirLock::acquire(data_dir).map_err(BootError::Wal)?;
    let snapshotter = Snapshotter::open(&member_dir.join("snap")).map_err(BootError::Snap)?;
    let (mut wal, recovered) =
        Wal::open(&member_dir.join("wal"), wal_options).map_err(BootError::Wal)?;
    if let Some(torn) = &recovered.torn_tail {
        eprintln!(
            "raftkv: cut a torn WAL tail at {} offset {} ({}): a batch that was never acknowledged",
            torn.file.display(),
            torn.offset,
            torn.reason
        );
    }
    let newest = snapshotter.load_newest().map_err(BootError::Snap)?;
    let (snapshot_index, snapshot_term) =
        newest.as_ref().map(|s| (s.index, s.term)).unwrap_or((0, 0));
    if let Some(marker) = recovered.snapshot {
        if marker.index > snapshot_index {
            return Err(BootError::SnapshotMissing {
                wal_marker_index: marker.index,
                newest_snapshot_index: snapshot_index,
            });
        }
    }
    let empty = recovered.hard_state.is_none() && recovered.entries.is_empty() && newest.is_none();
    if empty {
        let mut storage = MemoryStorage::new_with_conf_state(ConfState::default());
        let mut bootstrapped = false;
        if new_cluster {
            let entries = bootstrap_entries(initial_members);
            let hard_state = HardState {
                term: 1,
                vote: 0,
                commit: entries.len() as u64,
            };
            let wal_entries: Vec<_> = entries.iter().map(to_wal_entry).collect();
            wal.append_entries(&wal_entries).map_err(BootError::Wal)?;
            wal.set_hard_state(crate::wal::HardState {
                term: 1,
                vote: 0,
                commit: hard_state.commit,
            })
            .map_err(BootError::Wal)?;
            wal.sync().map_err(BootError::Wal)?;
            storage = MemoryStorage::from_parts(hard_state, Snapshot::default(), entries);
            bootstrapped = true;
        }
        return Ok(Boot {
            lock,
            wal,
            snapshotter,
            storage,
            store: Store::new(),
            cluster: ClusterState::default(),
            snapshot_index: 0,
            snapshot_term: 0,
            bootstrapped,
        });
    }
    let (store, cluster, raft_snapshot) = match newest {
        Some(snapshot) => {
            let (cluster, image) = ClusterState::decode_snapshot(&snapshot.data).map_err(|e| {
                BootError::BadSnapshot {
                    index: snapshot.index,
                    reason: e.to_string(),
                }
            })?;
            let store = Store::restore(image).map_err(|e| BootError::BadSnapshot {
                index: snapshot.index,
                reason: format!("{e:?}"),
            })?;
            let meta = SnapshotMeta {
                index: snapshot.index,
                term: snapshot.term,
                conf_state: conf_state_of(&cluster),
            };
            (
                store,
                cluster,
                Snapshot {
                    meta,
                    data: snapshot.data,
                },
            )
        }
        None => (Store::new(), ClusterState::default(), Snapshot::default()),
    };
    let hard_state = recovered
        .hard_state
        .map(|hs| HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        })
        .unwrap_or_default();
    let entries: Vec<Entry> = recovered
        .entries
        .into_iter()
        .filter(|e| e.index > snapshot_index)
        .map(|e| Entry {
            term: e.term,
            index: e.index,
            kind: entry_kind_from_u8(e.kind),
            data: e.data,
        })
        .collect();
    if let Some(first) = entries.first() {
        if first.index != snapshot_index + 1 {
            return Err(BootError::BadEntry {
                index: first.index,
                reason: format!(
                    "the log resumes at {} but the snapshot ends at {snapshot_index}",
                    first.index
                ),
            });
        }
    }
    let mut hard_state = hard_state;
    hard_state.commit = hard_state.commit.max(snapshot_index);
    let storage = MemoryStorage::from_parts(hard_state, raft_snapshot, entries);
    Ok(Boot {
        lock,
        wal,
        snapshotter,
        storage,
        store,
        cluster,
        snapshot_index,
        snapshot_term,
        bootstrapped: false,
    })
}
