//! What the node puts in a Raft entry's data and in a snapshot's data. Pure encode/decode;
//! decoding never panics on any bytes.
//!
//! Entry data of a normal entry (integers little endian):
//! ```text
//! offset  size  field
//!      0     1  kind: 1 client command, 2 member publish, 3 member peer URLs, 4 cluster version
//!      1     8  proposer member ID (0: nobody waits)
//!      9     8  request ID, unique per proposer process (0: nobody waits)
//!     17     8  proposed at: the proposer's clock, Unix nanoseconds (i64); events of this
//!               entry render their `ttl` as of this time on every member
//!     25     n  body:
//!                 1 -> a store Command (store::command's encoding)
//!                 2 -> member ID u64, name (u32 length + UTF-8), client URLs (list)
//!                 3 -> member ID u64, peer URLs (list)
//!                 4 -> version (u32 length + UTF-8)
//!               list = u32 count, then each as u32 length + UTF-8
//! ```
//! An empty data is the leader's no-op at the start of a term. Configuration-change entries
//! carry the Raft core's own ConfChange encoding.
//!
//! Snapshot data:
//! ```text
//!      0     8  magic "RKVSNAP1"
//!      8     4  member count
//!     12     .  members: ID u64, is_learner u8, removed u8, name, peer URLs, client URLs
//!      .     .  pending peer URLs: count u32, then ID u64 + URL list each
//!      .     .  cluster version (u32 length + UTF-8, empty = not decided)
//!      .     .  applied request windows: count u32, then proposer u64 + count u32 + IDs u64
//!      .     .  store image (store::Store::save), to the end
//! ```

use std::collections::BTreeMap;

use crate::node::Member;
use crate::store::Command;

pub const KIND_COMMAND: u8 = 1;
pub const KIND_PUBLISH: u8 = 2;
pub const KIND_PEER_URLS: u8 = 3;
pub const KIND_CLUSTER_VERSION: u8 = 4;
const SNAPSHOT_MAGIC: &[u8; 8] = b"RKVSNAP1";

/// The decoded body of a normal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Command(Command),
    Publish {
        member_id: u64,
        name: String,
        client_urls: Vec<String>,
    },
    PeerUrls {
        member_id: u64,
        peer_urls: Vec<String>,
    },
    ClusterVersion {
        version: String,
    },
}

/// A normal entry's data, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub proposer: u64,
    pub request_id: u64,
    pub proposed_at_unix_nanos: i64,
    pub payload: Payload,
}

/// Bytes that are not a valid envelope or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    Truncated {
        at: usize,
        needed: usize,
        available: usize,
    },
    UnknownKind {
        found: u8,
    },
    BadCommand {
        reason: String,
    },
    BadText {
        at: usize,
    },
    BadMagic {
        found: Vec<u8>,
    },
    TrailingBytes {
        at: usize,
        count: usize,
    },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_u32(out, text.len() as u32);
    out.extend_from_slice(text.as_bytes());
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    put_u32(out, items.len() as u32);
    for item in items {
        put_text(out, item);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        let available = self.bytes.len() - self.at;
        if n > available {
            return Err(EnvelopeError::Truncated {
                at: self.at,
                needed: n,
                available,
            });
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, EnvelopeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn text(&mut self) -> Result<String, EnvelopeError> {
        let at = self.at;
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| EnvelopeError::BadText { at })
    }

    fn list(&mut self) -> Result<Vec<String>, EnvelopeError> {
        let count = self.u32()? as usize;
        // Each item needs at least 4 bytes: refuse counts the input cannot hold.
        let available = self.bytes.len() - self.at;
        if count > available / 4 {
            return Err(EnvelopeError::Truncated {
                at: self.at,
                needed: count * 4,
                available,
            });
        }
        (0..count).map(|_| self.text()).collect()
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }

    fn finish(&self) -> Result<(), EnvelopeError> {
        if self.at != self.bytes.len() {
            return Err(EnvelopeError::TrailingBytes {
                at: self.at,
                count: self.bytes.len() - self.at,
            });
        }
        Ok(())
    }
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let kind = match &self.payload {
            Payload::Command(_) => KIND_COMMAND,
            Payload::Publish { .. } => KIND_PUBLISH,
            Payload::PeerUrls { .. } => KIND_PEER_URLS,
            Payload::ClusterVersion { .. } => KIND_CLUSTER_VERSION,
        };
        out.push(kind);
        put_u64(&mut out, self.proposer);
        put_u64(&mut out, self.request_id);
        put_u64(&mut out, self.proposed_at_unix_nanos as u64);
        match &self.payload {
            Payload::Command(command) => command.encode(&mut out),
            Payload::Publish {
                member_id,
                name,
                client_urls,
            } => {
                put_u64(&mut out, *member_id);
                put_text(&mut out, name);
                put_list(&mut out, client_urls);
            }
            Payload::PeerUrls {
                member_id,
                peer_urls,
            } => {
                put_u64(&mut out, *member_id);
                put_list(&mut out, peer_urls);
            }
            Payload::ClusterVersion { version } => put_text(&mut out, version),
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let mut reader = Reader { bytes, at: 0 };
        let kind = reader.u8()?;
        let proposer = reader.u64()?;
        let request_id = reader.u64()?;
        let proposed_at_unix_nanos = reader.u64()? as i64;
        let payload = match kind {
            KIND_COMMAND => {
                let command =
                    Command::decode(reader.rest()).map_err(|e| EnvelopeError::BadCommand {
                        reason: format!("{e:?}"),
                    })?;
                Payload::Command(command)
            }
            KIND_PUBLISH => Payload::Publish {
                member_id: reader.u64()?,
                name: reader.text()?,
                client_urls: reader.list()?,
            },
            KIND_PEER_URLS => Payload::PeerUrls {
                member_id: reader.u64()?,
                peer_urls: reader.list()?,
            },
            KIND_CLUSTER_VERSION => Payload::ClusterVersion {
                version: reader.text()?,
            },
            found => return Err(EnvelopeError::UnknownKind { found }),
        };
        reader.finish()?;
        Ok(Envelope {
            proposer,
            request_id,
            proposed_at_unix_nanos,
            payload,
        })
    }
}

/// The replicated cluster state that is not in the store: what a snapshot must carry besides
/// the store image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// Invariant: keyed by member ID; a removed member stays with `removed = true` so that it
    /// can never rejoin under the same ID.
    pub members: BTreeMap<u64, MemberRecord>,
    /// Peer URLs announced for a member whose configuration change has not applied yet.
    pub pending_peer_urls: BTreeMap<u64, Vec<String>>,
    /// Empty until the leader has recorded it.
    pub cluster_version: String,
    /// Per proposer, the request IDs of its most recent applied entries, so that an entry
    /// proposed once but appended twice (a duplicated forward) is applied once.
    /// Invariant: at most [`APPLIED_REQUESTS_WINDOW`] IDs per proposer (the smallest evicted).
    pub applied_requests: BTreeMap<u64, std::collections::BTreeSet<u64>>,
}

/// How many recent request IDs per proposer are remembered to drop duplicated entries.
pub const APPLIED_REQUESTS_WINDOW: usize = 4096;

impl ClusterState {
    /// Records that `proposer`'s request `request_id` is being applied; false when it was
    /// applied before (a duplicate, to be skipped). Request ID 0 (nobody waits) is never
    /// deduplicated.
    pub fn first_application(&mut self, proposer: u64, request_id: u64) -> bool {
        if proposer == 0 || request_id == 0 {
            return true;
        }
        let window = self.applied_requests.entry(proposer).or_default();
        if !window.insert(request_id) {
            return false;
        }
        if window.len() > APPLIED_REQUESTS_WINDOW {
            window.pop_first();
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member: Member,
    pub is_learner: bool,
    pub removed: bool,
}

impl ClusterState {
    /// Members that are part of the cluster now, ordered by ID.
    pub fn active_members(&self) -> Vec<Member> {
        self.members
            .values()
            .filter(|r| !r.removed)
            .map(|r| r.member.clone())
            .collect()
    }

    pub fn encode_snapshot(&self, store_image: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(store_image.len() + 256);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        put_u32(&mut out, self.members.len() as u32);
        for record in self.members.values() {
            put_u64(&mut out, record.member.id);
            out.push(u8::from(record.is_learner));
            out.push(u8::from(record.removed));
            put_text(&mut out, &record.member.name);
            put_list(&mut out, &record.member.peer_urls);
            put_list(&mut out, &record.member.client_urls);
        }
        put_u32(&mut out, self.pending_peer_urls.len() as u32);
        for (id, urls) in &self.pending_peer_urls {
            put_u64(&mut out, *id);
            put_list(&mut out, urls);
        }
        put_text(&mut out, &self.cluster_version);
        put_u32(&mut out, self.applied_requests.len() as u32);
        for (proposer, ids) in &self.applied_requests {
            put_u64(&mut out, *proposer);
            put_u32(&mut out, ids.len() as u32);
            for id in ids {
                put_u64(&mut out, *id);
            }
        }
        out.extend_from_slice(store_image);
        out
    }

    /// Splits snapshot data into the cluster state and the store image.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(ClusterState, &[u8]), EnvelopeError> {
        let mut reader = Reader { bytes, at: 0 };
        let magic = reader.take(8)?;
        if magic != SNAPSHOT_MAGIC {
            return Err(EnvelopeError::BadMagic {
                found: magic.to_vec(),
            });
        }
        let mut state = ClusterState::default();
        let count = reader.u32()?;
        for _ in 0..count {
            let id = reader.u64()?;
            let is_learner = reader.u8()? != 0;
            let removed = reader.u8()? != 0;
            let name = reader.text()?;
            let peer_urls = reader.list()?;
            let client_urls = reader.list()?;
            state.members.insert(
                id,
                MemberRecord {
                    member: Member {
                        id,
                        name,
                        peer_urls,
                        client_urls,
                    },
                    is_learner,
                    removed,
                },
            );
        }
        let pending = reader.u32()?;
        for _ in 0..pending {
            let id = reader.u64()?;
            state.pending_peer_urls.insert(id, reader.list()?);
        }
        state.cluster_version = reader.text()?;
        let proposers = reader.u32()?;
        for _ in 0..proposers {
            let proposer = reader.u64()?;
            let count = reader.u32()? as usize;
            if count > APPLIED_REQUESTS_WINDOW {
                return Err(EnvelopeError::Truncated {
                    at: reader.at,
                    needed: count * 8,
                    available: 0,
                });
            }
            let mut ids = std::collections::BTreeSet::new();
            for _ in 0..count {
                ids.insert(reader.u64()?);
            }
            state.applied_requests.insert(proposer, ids);
        }
        Ok((state, reader.rest()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Envelope> {
        vec![
            Envelope {
                proposer: 7,
                request_id: 9,
                proposed_at_unix_nanos: 7,
                payload: Payload::Command(Command::Delete {
                    key: "/a".into(),
                    dir: true,
                    recursive: false,
                }),
            },
            Envelope {
                proposer: 1,
                request_id: 0,
                proposed_at_unix_nanos: 7,
                payload: Payload::Publish {
                    member_id: 1,
                    name: "n1".into(),
                    client_urls: vec!["http://a:1".into()],
                },
            },
            Envelope {
                proposer: 0,
                request_id: 0,
                proposed_at_unix_nanos: 7,
                payload: Payload::PeerUrls {
                    member_id: 5,
                    peer_urls: vec![],
                },
            },
            Envelope {
                proposer: 0,
                request_id: 0,
                proposed_at_unix_nanos: 7,
                payload: Payload::ClusterVersion {
                    version: "3.4.0".into(),
                },
            },
        ]
    }

    #[test]
    fn envelopes_round_trip_and_every_truncation_is_an_error() {
        for envelope in samples() {
            let bytes = envelope.encode();
            assert_eq!(Envelope::decode(&bytes), Ok(envelope.clone()));
            for len in 0..bytes.len() {
                assert!(
                    Envelope::decode(&bytes[..len]).is_err(),
                    "{envelope:?} cut at {len} decoded"
                );
            }
        }
    }

    #[test]
    fn snapshots_round_trip() {
        let mut state = ClusterState {
            cluster_version: "3.4.0".into(),
            ..Default::default()
        };
        state.members.insert(
            3,
            MemberRecord {
                member: Member {
                    id: 3,
                    name: "n3".into(),
                    peer_urls: vec!["http://p".into()],
                    client_urls: vec![],
                },
                is_learner: true,
                removed: false,
            },
        );
        state.pending_peer_urls.insert(4, vec!["http://q".into()]);
        let bytes = state.encode_snapshot(b"store image");
        let (decoded, image) = ClusterState::decode_snapshot(&bytes).unwrap();
        assert_eq!((decoded, image), (state, &b"store image"[..]));
        for len in 0..bytes.len() - 11 {
            assert!(
                ClusterState::decode_snapshot(&bytes[..len]).is_err(),
                "cut at {len} decoded"
            );
        }
    }
}
