//! Binary codec for [`Message`], [`Entry`], [`HardState`], [`Snapshot`] and [`ConfChange`].
//!
//! The transport frames and checksums whole messages; this module only lays out the fields.
//! All integers are little-endian; `u64` is 8 bytes, `u32` 4, `u8` 1. Lengths and counts are
//! `u32`. Decoding never panics: every read is bounds-checked, every enum byte validated, and
//! counts are checked against the bytes left before anything is allocated.
//!
//! ```text
//! Message:
//!   +------+----+------+------+----------+-------+--------+--------+-------------+
//!   | kind | to | from | term | log_term | index | commit | reject | reject_hint |
//!   |  u8  |u64 | u64  | u64  |   u64    |  u64  |  u64   |   u8   |     u64     |
//!   +------+----+------+------+----------+-------+--------+--------+-------------+
//!   | context_len u32 | context bytes | entry_count u32 | entries... | has_snapshot u8 | [Snapshot] |
//!
//! Entry:      | term u64 | index u64 | kind u8 (0 Normal, 1 ConfChange) | data_len u32 | data |
//! Snapshot:   | index u64 | term u64 | voter_count u32 | voters u64... |
//!             | learner_count u32 | learners u64... | data_len u32 | data |
//! HardState:  | term u64 | vote u64 | commit u64 |                       (24 bytes)
//! ConfChange: | kind u8 (0 AddNode, 1 RemoveNode, 2 AddLearner) | node_id u64 |  (9 bytes)
//! ```
//! `kind` of a message is the numeric value of [`MessageKind`] (0 Propose ... 13 ReadIndexResponse).
//! Trailing bytes after a complete value are an error.

use super::message::*;

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended early.
    Truncated {
        /// Bytes the next field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// An enum byte held no known variant.
    UnknownTag {
        /// Which field.
        field: &'static str,
        /// The byte found.
        found: u8,
    },
    /// A count promised more items than the remaining bytes can hold.
    CountTooLarge {
        /// Which field.
        field: &'static str,
        /// The count found.
        found: u32,
        /// Bytes left to hold it.
        remaining: usize,
    },
    /// Bytes were left after the value ended.
    TrailingBytes {
        /// How many.
        found: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} remaining")
            }
            DecodeError::UnknownTag { field, found } => write!(f, "unknown {field} tag {found}"),
            DecodeError::CountTooLarge {
                field,
                found,
                remaining,
            } => {
                write!(f, "{field} count {found} cannot fit in {remaining} bytes")
            }
            DecodeError::TrailingBytes { found } => write!(f, "{found} trailing bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------- writing

fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("a field longer than 4 GiB cannot be encoded");
    put_u32(out, len);
    out.extend_from_slice(b);
}
fn put_ids(out: &mut Vec<u8>, ids: &[NodeId]) {
    put_u32(out, ids.len() as u32);
    for id in ids {
        put_u64(out, *id);
    }
}

/// Appends the encoding of `e` to `out`.
pub fn encode_entry_into(e: &Entry, out: &mut Vec<u8>) {
    put_u64(out, e.term);
    put_u64(out, e.index);
    put_u8(out, e.kind as u8);
    put_bytes(out, &e.data);
}

/// Appends the encoding of `s` to `out`.
pub fn encode_snapshot_into(s: &Snapshot, out: &mut Vec<u8>) {
    put_u64(out, s.meta.index);
    put_u64(out, s.meta.term);
    put_ids(out, &s.meta.conf_state.voters);
    put_ids(out, &s.meta.conf_state.learners);
    put_bytes(out, &s.data);
}

/// The bytes of one message.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(64 + m.entries.iter().map(|e| 21 + e.data.len()).sum::<usize>());
    put_u8(&mut out, m.kind as u8);
    put_u64(&mut out, m.to);
    put_u64(&mut out, m.from);
    put_u64(&mut out, m.term);
    put_u64(&mut out, m.log_term);
    put_u64(&mut out, m.index);
    put_u64(&mut out, m.commit);
    put_u8(&mut out, m.reject as u8);
    put_u64(&mut out, m.reject_hint);
    put_bytes(&mut out, &m.context);
    put_u32(&mut out, m.entries.len() as u32);
    for e in &m.entries {
        encode_entry_into(e, &mut out);
    }
    match &m.snapshot {
        None => put_u8(&mut out, 0),
        Some(s) => {
            put_u8(&mut out, 1);
            encode_snapshot_into(s, &mut out);
        }
    }
    out
}

/// The bytes of one entry.
pub fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(21 + e.data.len());
    encode_entry_into(e, &mut out);
    out
}

/// The bytes of a snapshot.
pub fn encode_snapshot(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    encode_snapshot_into(s, &mut out);
    out
}

/// The 24 bytes of a hard state.
pub fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    put_u64(&mut out, hs.term);
    put_u64(&mut out, hs.vote);
    put_u64(&mut out, hs.commit);
    out
}

/// The 9 bytes of a configuration change (the data of a ConfChange entry).
pub fn encode_conf_change(cc: &ConfChange) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    put_u8(&mut out, cc.kind as u8);
    put_u64(&mut out, cc.node_id);
    out
}

// ---------------------------------------------------------------- reading

/// A bounds-checked cursor over input bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items each at least `min_item_bytes` long, checked against what is left.
    fn count(&mut self, field: &'static str, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        let remaining = self.bytes.len();
        if (n as usize).saturating_mul(min_item_bytes) > remaining {
            return Err(DecodeError::CountTooLarge {
                field,
                found: n,
                remaining,
            });
        }
        Ok(n as usize)
    }
    fn ids(&mut self, field: &'static str) -> Result<Vec<NodeId>, DecodeError> {
        let n = self.count(field, 8)?;
        (0..n).map(|_| self.u64()).collect()
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                found: self.bytes.len(),
            })
        }
    }
    fn entry(&mut self) -> Result<Entry, DecodeError> {
        let term = self.u64()?;
        let index = self.u64()?;
        let kind = match self.u8()? {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            found => {
                return Err(DecodeError::UnknownTag {
                    field: "entry kind",
                    found,
                })
            }
        };
        let data = self.bytes()?;
        Ok(Entry {
            term,
            index,
            kind,
            data,
        })
    }
    fn snapshot(&mut self) -> Result<Snapshot, DecodeError> {
        let index = self.u64()?;
        let term = self.u64()?;
        let voters = self.ids("voters")?;
        let learners = self.ids("learners")?;
        let data = self.bytes()?;
        Ok(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf_state: ConfState { voters, learners },
            },
            data,
        })
    }
}

/// Decodes one message; never panics.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes };
    let tag = r.u8()?;
    let kind = *MessageKind::ALL
        .get(tag as usize)
        .ok_or(DecodeError::UnknownTag {
            field: "message kind",
            found: tag,
        })?;
    let to = r.u64()?;
    let from = r.u64()?;
    let term = r.u64()?;
    let log_term = r.u64()?;
    let index = r.u64()?;
    let commit = r.u64()?;
    let reject = match r.u8()? {
        0 => false,
        1 => true,
        found => {
            return Err(DecodeError::UnknownTag {
                field: "reject",
                found,
            })
        }
    };
    let reject_hint = r.u64()?;
    let context = r.bytes()?;
    let n = r.count("entries", 21)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(r.entry()?);
    }
    let snapshot = match r.u8()? {
        0 => None,
        1 => Some(r.snapshot()?),
        found => {
            return Err(DecodeError::UnknownTag {
                field: "has_snapshot",
                found,
            })
        }
    };
    r.finish()?;
    Ok(Message {
        kind,
        to,
        from,
        term,
        log_term,
        index,
        entries,
        commit,
        snapshot,
        reject,
        reject_hint,
        context,
    })
}

/// Decodes one entry; never panics.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader { bytes };
    let e = r.entry()?;
    r.finish()?;
    Ok(e)
}

/// Decodes a snapshot; never panics.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let mut r = Reader { bytes };
    let s = r.snapshot()?;
    r.finish()?;
    Ok(s)
}

/// Decodes a hard state; never panics.
pub fn decode_hard_state(bytes: &[u8]) -> Result<HardState, DecodeError> {
    let mut r = Reader { bytes };
    let hs = HardState {
        term: r.u64()?,
        vote: r.u64()?,
        commit: r.u64()?,
    };
    r.finish()?;
    Ok(hs)
}

/// Decodes a configuration change; never panics.
pub fn decode_conf_change(bytes: &[u8]) -> Result<ConfChange, DecodeError> {
    let mut r = Reader { bytes };
    let kind = match r.u8()? {
        0 => ConfChangeKind::AddNode,
        1 => ConfChangeKind::RemoveNode,
        2 => ConfChangeKind::AddLearner,
        found => {
            return Err(DecodeError::UnknownTag {
                field: "conf change kind",
                found,
            })
        }
    };
    let node_id = r.u64()?;
    r.finish()?;
    Ok(ConfChange { kind, node_id })
}

/// Fuzz entry point: any bytes decode to a message or an error, never a panic, and a message
/// that decodes re-encodes to bytes that decode to the same message.
#[doc(hidden)]
pub fn fuzz_raft_codec(data: &[u8]) {
    if let Ok(message) = decode_message(data) {
        let again =
            decode_message(&encode_message(&message)).expect("a re-encoded message decodes");
        assert_eq!(again, message, "message codec round trip");
    }
    if let Ok(entry) = decode_entry(data) {
        assert_eq!(
            decode_entry(&encode_entry(&entry)).as_ref(),
            Ok(&entry),
            "entry codec round trip"
        );
    }
    let _ = decode_snapshot(data);
    let _ = decode_conf_change(data);
    let _ = crate::node::envelope::Envelope::decode(data);
    let _ = crate::node::envelope::ClusterState::decode_snapshot(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::rng::SplitMix64;

    fn sample_message(rng: &mut SplitMix64) -> Message {
        let kind = MessageKind::ALL[rng.below(14) as usize];
        let mut m = Message::new(kind, rng.below(5) + 1, rng.below(5) + 1, rng.below(100));
        m.log_term = rng.next_u64();
        m.index = rng.next_u64();
        m.commit = rng.below(1000);
        m.reject = rng.chance(1, 2);
        m.reject_hint = rng.below(1000);
        m.context = (0..rng.below(5)).map(|i| i as u8).collect();
        for i in 0..rng.below(4) {
            m.entries.push(Entry {
                term: rng.below(9),
                index: i + 1,
                kind: if rng.chance(1, 3) {
                    EntryKind::ConfChange
                } else {
                    EntryKind::Normal
                },
                data: vec![7; rng.below(6) as usize],
            });
        }
        if rng.chance(1, 3) {
            m.snapshot = Some(Snapshot {
                meta: SnapshotMeta {
                    index: 9,
                    term: 2,
                    conf_state: ConfState {
                        voters: vec![1, 2, 3],
                        learners: vec![4],
                    },
                },
                data: b"image".to_vec(),
            });
        }
        m
    }

    #[test]
    fn messages_round_trip() {
        let mut rng = SplitMix64::new(42);
        for _ in 0..500 {
            let m = sample_message(&mut rng);
            let bytes = encode_message(&m);
            assert_eq!(decode_message(&bytes), Ok(m));
        }
    }

    #[test]
    fn small_values_round_trip() {
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 9,
        };
        assert_eq!(decode_hard_state(&encode_hard_state(&hs)), Ok(hs));
        let cc = ConfChange {
            kind: ConfChangeKind::AddLearner,
            node_id: 4,
        };
        assert_eq!(decode_conf_change(&encode_conf_change(&cc)), Ok(cc));
        let e = Entry {
            term: 1,
            index: 2,
            kind: EntryKind::Normal,
            data: b"x".to_vec(),
        };
        assert_eq!(decode_entry(&encode_entry(&e)), Ok(e));
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let mut rng = SplitMix64::new(77);
        for _ in 0..20_000 {
            let len = rng.below(120) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = decode_message(&bytes);
            let _ = decode_entry(&bytes);
            let _ = decode_snapshot(&bytes);
            let _ = decode_hard_state(&bytes);
            let _ = decode_conf_change(&bytes);
        }
    }

    #[test]
    fn every_truncation_and_many_corruptions_are_errors_not_panics() {
        let mut rng = SplitMix64::new(9);
        for _ in 0..50 {
            let bytes = encode_message(&sample_message(&mut rng));
            for cut in 0..bytes.len() {
                assert!(
                    decode_message(&bytes[..cut]).is_err(),
                    "prefix of {cut} bytes decoded"
                );
            }
            for _ in 0..50 {
                let mut b = bytes.clone();
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 << rng.below(8);
                let _ = decode_message(&b);
            }
        }
        let mut junk = vec![1u8; 64];
        junk[57..61].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_message(&junk).is_err());
    }
}
