//! The deterministic heart of a member: what applying one committed Raft entry does to the
//! store and to the cluster's membership. No clock, no I/O, no threads: the Raft loop calls it
//! with the store under its write lock, and the simulator calls it directly, so both run the
//! same code.
//!
//! Entries and what they do:
//! - empty normal entry (a leader's no-op): nothing;
//! - a client command: applied to the store as of the proposer's clock (`Store::apply_at`);
//! - a member's published attributes (name, client URLs): recorded, one internal index;
//! - peer URLs: recorded for a member (an update: one internal index), or kept pending until
//!   the configuration change that adds the member applies;
//! - the cluster version, once: one internal index;
//! - a normal entry whose (proposer, request ID) was applied before (a proposal appended
//!   twice): nothing, so every proposal takes effect at most once;
//! - a configuration change: the membership changes (the caller also tells the Raft core);
//!   adding costs one internal index, removing two, as on etcd.

use crate::node::envelope::{ClusterState, Envelope, MemberRecord, Payload};
use crate::node::Member;
use crate::raft::codec::decode_conf_change;
use crate::raft::message::{ConfChange, ConfChangeKind, Entry, EntryKind};
use crate::store::{Command, Event, Store, V2Error, WatcherId};

/// What one applied entry means to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// For a normal entry: who proposed it, its request ID and the store's answer.
    pub answer: Option<(u64, u64, Result<Option<Event>, V2Error>)>,
    /// For a configuration change: the change, to hand to the Raft core.
    pub conf_change: Option<ConfChange>,
    /// A published attribute set: (member, request ID of the publish).
    pub published: Option<(u64, u64)>,
    /// The active membership changed (peers to connect or drop, `/v2/members`).
    pub members_changed: bool,
}

fn internal(
    store: &mut Store,
    key: String,
    value: String,
    fired: &mut Vec<(WatcherId, Event)>,
) -> Result<Option<Event>, V2Error> {
    store.apply(&Command::Internal { key, value }, fired)
}

/// Applies one committed entry. Panics with context on an entry that does not decode: a
/// committed entry was written by a member of this cluster, so that is a broken invariant.
pub fn apply_entry(
    store: &mut Store,
    cluster: &mut ClusterState,
    entry: &Entry,
    fired: &mut Vec<(WatcherId, Event)>,
) -> Effect {
    let mut effect = Effect {
        answer: None,
        conf_change: None,
        published: None,
        members_changed: false,
    };
    match entry.kind {
        EntryKind::ConfChange => {
            let change = decode_conf_change(&entry.data).unwrap_or_else(|e| {
                panic!(
                    "committed conf change at index {} (term {}) does not decode: {e:?}",
                    entry.index, entry.term
                )
            });
            let id = change.node_id;
            match change.kind {
                ConfChangeKind::AddNode | ConfChangeKind::AddLearner => {
                    let learner = change.kind == ConfChangeKind::AddLearner;
                    let urls = cluster.pending_peer_urls.remove(&id);
                    let record = cluster.members.entry(id).or_insert_with(|| MemberRecord {
                        member: Member {
                            id,
                            name: String::new(),
                            peer_urls: Vec::new(),
                            client_urls: Vec::new(),
                        },
                        is_learner: learner,
                        removed: false,
                    });
                    record.is_learner = learner;
                    if let Some(urls) = urls {
                        record.member.peer_urls = urls;
                    }
                    let urls = record.member.peer_urls.join(",");
                    let _ = internal(
                        store,
                        format!("/0/members/{id:x}/raftAttributes"),
                        urls,
                        fired,
                    );
                }
                ConfChangeKind::RemoveNode => {
                    if let Some(record) = cluster.members.get_mut(&id) {
                        record.removed = true;
                    }
                    let _ = internal(store, format!("/0/members/{id:x}"), String::new(), fired);
                    let _ = internal(
                        store,
                        format!("/0/removed_members/{id:x}"),
                        String::new(),
                        fired,
                    );
                }
            }
            effect.conf_change = Some(change);
            effect.members_changed = true;
        }
        EntryKind::Normal if entry.data.is_empty() => {}
        EntryKind::Normal => {
            let envelope = Envelope::decode(&entry.data).unwrap_or_else(|e| {
                panic!(
                    "committed entry {} (term {}) does not decode: {e}",
                    entry.index, entry.term
                )
            });
            if !cluster.first_application(envelope.proposer, envelope.request_id) {
                // The same proposal appended twice: applied once, the copy is a no-op.
                return effect;
            }
            let outcome = match envelope.payload {
                Payload::Command(command) => {
                    store.apply_at(&command, Some(envelope.proposed_at_unix_nanos), fired)
                }
                Payload::Publish {
                    member_id,
                    name,
                    client_urls,
                } => match cluster.members.get_mut(&member_id) {
                    Some(record) if !record.removed => {
                        record.member.name = name.clone();
                        record.member.client_urls = client_urls;
                        effect.members_changed = true;
                        effect.published = Some((member_id, envelope.request_id));
                        internal(
                            store,
                            format!("/0/members/{member_id:x}/attributes"),
                            name,
                            fired,
                        )
                    }
                    _ => Ok(None),
                },
                Payload::PeerUrls {
                    member_id,
                    peer_urls,
                } => match cluster.members.get_mut(&member_id) {
                    Some(record) if !record.removed => {
                        record.member.peer_urls = peer_urls.clone();
                        effect.members_changed = true;
                        internal(
                            store,
                            format!("/0/members/{member_id:x}/raftAttributes"),
                            peer_urls.join(","),
                            fired,
                        )
                    }
                    _ => {
                        cluster.pending_peer_urls.insert(member_id, peer_urls);
                        Ok(None)
                    }
                },
                Payload::ClusterVersion { version } => {
                    if cluster.cluster_version.is_empty() {
                        cluster.cluster_version = version.clone();
                        internal(store, "/0/version".into(), version, fired)
                    } else {
                        Ok(None)
                    }
                }
            };
            effect.answer = Some((envelope.proposer, envelope.request_id, outcome));
        }
    }
    effect
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::boot::bootstrap_entries;
    use crate::raft::codec::encode_conf_change;

    fn command_entry(index: u64, command: Command) -> Entry {
        let envelope = Envelope {
            proposer: 7,
            request_id: index,
            proposed_at_unix_nanos: 0,
            payload: Payload::Command(command),
        };
        Entry {
            term: 2,
            index,
            kind: EntryKind::Normal,
            data: envelope.encode(),
        }
    }

    #[test]
    fn bootstrap_then_a_write_lands_at_etcds_indexes() {
        let mut store = Store::new();
        let mut cluster = ClusterState::default();
        let mut fired = Vec::new();
        let entries = bootstrap_entries(&[(0x11, vec!["http://a:1".into()])]);
        for entry in &entries {
            apply_entry(&mut store, &mut cluster, entry, &mut fired);
        }
        assert_eq!(store.current_index(), 1, "adding a member costs one index");
        assert_eq!(
            cluster.active_members()[0].peer_urls,
            vec!["http://a:1".to_string()]
        );
        let publish = Envelope {
            proposer: 0x11,
            request_id: 5,
            proposed_at_unix_nanos: 0,
            payload: Payload::Publish {
                member_id: 0x11,
                name: "n1".into(),
                client_urls: vec!["http://c:1".into()],
            },
        };
        let effect = apply_entry(
            &mut store,
            &mut cluster,
            &Entry {
                term: 2,
                index: 3,
                kind: EntryKind::Normal,
                data: publish.encode(),
            },
            &mut fired,
        );
        assert_eq!(effect.published, Some((0x11, 5)));
        let version = Envelope {
            proposer: 0,
            request_id: 0,
            proposed_at_unix_nanos: 0,
            payload: Payload::ClusterVersion {
                version: "3.4.0".into(),
            },
        };
        apply_entry(
            &mut store,
            &mut cluster,
            &Entry {
                term: 2,
                index: 4,
                kind: EntryKind::Normal,
                data: version.encode(),
            },
            &mut fired,
        );
        let effect = apply_entry(
            &mut store,
            &mut cluster,
            &command_entry(
                5,
                Command::Set {
                    key: "/k".into(),
                    value: "v".into(),
                    dir: false,
                    expire_at: None,
                    refresh: false,
                },
            ),
            &mut fired,
        );
        let (proposer, request_id, outcome) = effect.answer.expect("an answer");
        assert_eq!((proposer, request_id), (7, 5));
        assert_eq!(
            outcome.unwrap().unwrap().node.modified_index,
            4,
            "first user write at index 4"
        );
    }

    #[test]
    fn removing_a_member_costs_two_indexes_and_it_never_comes_back() {
        let mut store = Store::new();
        let mut cluster = ClusterState::default();
        let mut fired = Vec::new();
        for entry in
            bootstrap_entries(&[(1, vec!["http://a".into()]), (2, vec!["http://b".into()])])
        {
            apply_entry(&mut store, &mut cluster, &entry, &mut fired);
        }
        let before = store.current_index();
        let remove = ConfChange {
            kind: ConfChangeKind::RemoveNode,
            node_id: 2,
        };
        let entry = Entry {
            term: 2,
            index: 9,
            kind: EntryKind::ConfChange,
            data: encode_conf_change(&remove),
        };
        let effect = apply_entry(&mut store, &mut cluster, &entry, &mut fired);
        assert_eq!(effect.conf_change, Some(remove));
        assert_eq!(store.current_index(), before + 2);
        assert_eq!(cluster.active_members().len(), 1);
        let publish = Envelope {
            proposer: 2,
            request_id: 1,
            proposed_at_unix_nanos: 0,
            payload: Payload::Publish {
                member_id: 2,
                name: "b".into(),
                client_urls: vec![],
            },
        };
        let effect = apply_entry(
            &mut store,
            &mut cluster,
            &Entry {
                term: 2,
                index: 10,
                kind: EntryKind::Normal,
                data: publish.encode(),
            },
            &mut fired,
        );
        assert_eq!(effect.published, None, "a removed member cannot publish");
        assert_eq!(cluster.active_members().len(), 1);
    }

    #[test]
    fn a_proposal_appended_twice_takes_effect_once() {
        let mut store = Store::new();
        let mut cluster = ClusterState::default();
        let mut fired = Vec::new();
        let set = |value: &str| Command::Set {
            key: "/k".into(),
            value: value.into(),
            dir: false,
            expire_at: None,
            refresh: false,
        };
        let cas = Command::CompareAndSwap {
            key: "/k".into(),
            value: "new".into(),
            prev_value: Some("old".into()),
            prev_index: 0,
            expire_at: None,
            refresh: false,
        };
        // The CAS is appended at index 1 (fails: no key), the key is then set to "old", and the
        // duplicated copy of the CAS at index 3 must not swap it.
        let first = apply_entry(
            &mut store,
            &mut cluster,
            &command_entry(1, cas.clone()),
            &mut fired,
        );
        assert!(first.answer.unwrap().2.is_err());
        apply_entry(
            &mut store,
            &mut cluster,
            &command_entry(2, set("old")),
            &mut fired,
        );
        let copy = Entry {
            index: 3,
            ..command_entry(1, cas)
        };
        let duplicate = apply_entry(&mut store, &mut cluster, &copy, &mut fired);
        assert_eq!(duplicate.answer, None, "a duplicate answers nobody");
        let value = store.get("/k", false, false).unwrap().node.value;
        assert_eq!(
            value.as_deref(),
            Some("old"),
            "the duplicate CAS was applied"
        );
        // The window survives a snapshot.
        let bytes = cluster.encode_snapshot(&store.save());
        let (restored, _) = ClusterState::decode_snapshot(&bytes).unwrap();
        assert_eq!(restored, cluster);
    }
}
