//! [`Command`]: what is replicated through Raft and applied by every replica's store, and its
//! binary codec. Times are absolute (`expire_at`, `Sync::now`): the proposer read the clock, the
//! store never does, so every replica applies the same command to the same result.
//!
//! # Wire format (version 1)
//!
//! Primitives (`u8`, `u64`, `i64`, `bool`, `str`, `opt<T>`) are drawn in the `codec` module:
//! little-endian integers, `str` = u32 length + UTF-8, `opt` = tag byte 0/1 then the value.
//!
//! ```text
//! byte 0        version       u8 = 0x01
//! byte 1        kind          u8: 1 Set, 2 Create, 3 Update, 4 CompareAndSwap,
//!                                 5 Delete, 6 CompareAndDelete, 7 Sync, 8 Internal
//! byte 2..      the fields of that kind, in this order, nothing after them:
//!
//! 1 Set              key:str value:str dir:bool expire_at:opt<i64> refresh:bool
//! 2 Create           key:str value:str dir:bool expire_at:opt<i64> in_order:bool
//! 3 Update           key:str value:str expire_at:opt<i64> refresh:bool
//! 4 CompareAndSwap   key:str value:str prev_value:opt<str> prev_index:u64
//!                    expire_at:opt<i64> refresh:bool
//! 5 Delete           key:str dir:bool recursive:bool
//! 6 CompareAndDelete key:str prev_value:opt<str> prev_index:u64
//! 7 Sync             now:i64
//! 8 Internal         key:str value:str
//!
//! Example: Delete { key: "/a", dir: false, recursive: true }
//!   01 05 02 00 00 00 2f 61 00 01
//! ```
//!
//! [`Command::decode`] never panics: short input, unknown version or kind, bad bool/option tags,
//! invalid UTF-8 and trailing bytes are all [`CommandDecodeError`]s.

use std::fmt;

use super::codec::{self, Reader, WireError};
use super::UnixNanos;

/// The only version this code writes and reads.
pub const COMMAND_FORMAT_VERSION: u8 = 1;

/// One replicated store operation. See the module doc for the mapping from HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// PUT without conditions: create or replace.
    Set {
        key: String,
        value: String,
        dir: bool,
        expire_at: Option<UnixNanos>,
        refresh: bool,
    },
    /// PUT prevExist=false, or POST (`in_order`: child named after the new index).
    Create {
        key: String,
        value: String,
        dir: bool,
        expire_at: Option<UnixNanos>,
        in_order: bool,
    },
    /// PUT prevExist=true without compare.
    Update {
        key: String,
        value: String,
        expire_at: Option<UnixNanos>,
        refresh: bool,
    },
    /// PUT with prevValue and/or prevIndex (prev_value None or "" and prev_index 0 = no test).
    CompareAndSwap {
        key: String,
        value: String,
        prev_value: Option<String>,
        prev_index: u64,
        expire_at: Option<UnixNanos>,
        refresh: bool,
    },
    /// DELETE without conditions (`recursive` implies `dir`).
    Delete {
        key: String,
        dir: bool,
        recursive: bool,
    },
    /// DELETE with prevValue and/or prevIndex.
    CompareAndDelete {
        key: String,
        prev_value: Option<String>,
        prev_index: u64,
    },
    /// Expire every node with expiration <= now.
    Sync { now: UnixNanos },
    /// A write to the internal namespace (membership records etc.): consumes one index, is
    /// recorded in history, and is never visible to key reads or user watches.
    Internal { key: String, value: String },
}

/// Why bytes are not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandDecodeError {
    /// A primitive field is malformed (see [`WireError`]).
    Wire(WireError),
    /// The first byte is not a version this code reads.
    UnknownVersion { expected: u8, found: u8 },
    /// The second byte names no command.
    UnknownKind { expected_max: u8, found: u8 },
}

impl fmt::Display for CommandDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandDecodeError::Wire(error) => write!(f, "command: {error}"),
            CommandDecodeError::UnknownVersion { expected, found } => write!(
                f,
                "command: unknown format version: expected {expected}, found {found}"
            ),
            CommandDecodeError::UnknownKind {
                expected_max,
                found,
            } => write!(
                f,
                "command: unknown kind: expected 1..={expected_max}, found {found}"
            ),
        }
    }
}

impl std::error::Error for CommandDecodeError {}

impl From<WireError> for CommandDecodeError {
    fn from(error: WireError) -> Self {
        CommandDecodeError::Wire(error)
    }
}

const KIND_SET: u8 = 1;
const KIND_CREATE: u8 = 2;
const KIND_UPDATE: u8 = 3;
const KIND_COMPARE_AND_SWAP: u8 = 4;
const KIND_DELETE: u8 = 5;
const KIND_COMPARE_AND_DELETE: u8 = 6;
const KIND_SYNC: u8 = 7;
const KIND_INTERNAL: u8 = 8;

impl Command {
    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use codec::{put_bool, put_i64, put_opt_i64, put_opt_str, put_str, put_u64, put_u8};
        put_u8(out, COMMAND_FORMAT_VERSION);
        match self {
            Command::Set {
                key,
                value,
                dir,
                expire_at,
                refresh,
            } => {
                put_u8(out, KIND_SET);
                put_str(out, key);
                put_str(out, value);
                put_bool(out, *dir);
                put_opt_i64(out, *expire_at);
                put_bool(out, *refresh);
            }
            Command::Create {
                key,
                value,
                dir,
                expire_at,
                in_order,
            } => {
                put_u8(out, KIND_CREATE);
                put_str(out, key);
                put_str(out, value);
                put_bool(out, *dir);
                put_opt_i64(out, *expire_at);
                put_bool(out, *in_order);
            }
            Command::Update {
                key,
                value,
                expire_at,
                refresh,
            } => {
                put_u8(out, KIND_UPDATE);
                put_str(out, key);
                put_str(out, value);
                put_opt_i64(out, *expire_at);
                put_bool(out, *refresh);
            }
            Command::CompareAndSwap {
                key,
                value,
                prev_value,
                prev_index,
                expire_at,
                refresh,
            } => {
                put_u8(out, KIND_COMPARE_AND_SWAP);
                put_str(out, key);
                put_str(out, value);
                put_opt_str(out, prev_value.as_deref());
                put_u64(out, *prev_index);
                put_opt_i64(out, *expire_at);
                put_bool(out, *refresh);
            }
            Command::Delete {
                key,
                dir,
                recursive,
            } => {
                put_u8(out, KIND_DELETE);
                put_str(out, key);
                put_bool(out, *dir);
                put_bool(out, *recursive);
            }
            Command::CompareAndDelete {
                key,
                prev_value,
                prev_index,
            } => {
                put_u8(out, KIND_COMPARE_AND_DELETE);
                put_str(out, key);
                put_opt_str(out, prev_value.as_deref());
                put_u64(out, *prev_index);
            }
            Command::Sync { now } => {
                put_u8(out, KIND_SYNC);
                put_i64(out, *now);
            }
            Command::Internal { key, value } => {
                put_u8(out, KIND_INTERNAL);
                put_str(out, key);
                put_str(out, value);
            }
        }
    }

    /// The encoding of `self` as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one command occupying all of `bytes`. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Command, CommandDecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("version")?;
        if version != COMMAND_FORMAT_VERSION {
            return Err(CommandDecodeError::UnknownVersion {
                expected: COMMAND_FORMAT_VERSION,
                found: version,
            });
        }
        let command = match reader.u8("kind")? {
            KIND_SET => Command::Set {
                key: reader.str("key")?,
                value: reader.str("value")?,
                dir: reader.bool("dir")?,
                expire_at: reader.opt_i64("expire_at")?,
                refresh: reader.bool("refresh")?,
            },
            KIND_CREATE => Command::Create {
                key: reader.str("key")?,
                value: reader.str("value")?,
                dir: reader.bool("dir")?,
                expire_at: reader.opt_i64("expire_at")?,
                in_order: reader.bool("in_order")?,
            },
            KIND_UPDATE => Command::Update {
                key: reader.str("key")?,
                value: reader.str("value")?,
                expire_at: reader.opt_i64("expire_at")?,
                refresh: reader.bool("refresh")?,
            },
            KIND_COMPARE_AND_SWAP => Command::CompareAndSwap {
                key: reader.str("key")?,
                value: reader.str("value")?,
                prev_value: reader.opt_str("prev_value")?,
                prev_index: reader.u64("prev_index")?,
                expire_at: reader.opt_i64("expire_at")?,
                refresh: reader.bool("refresh")?,
            },
            KIND_DELETE => Command::Delete {
                key: reader.str("key")?,
                dir: reader.bool("dir")?,
                recursive: reader.bool("recursive")?,
            },
            KIND_COMPARE_AND_DELETE => Command::CompareAndDelete {
                key: reader.str("key")?,
                prev_value: reader.opt_str("prev_value")?,
                prev_index: reader.u64("prev_index")?,
            },
            KIND_SYNC => Command::Sync {
                now: reader.i64("now")?,
            },
            KIND_INTERNAL => Command::Internal {
                key: reader.str("key")?,
                value: reader.str("value")?,
            },
            found => {
                return Err(CommandDecodeError::UnknownKind {
                    expected_max: KIND_INTERNAL,
                    found,
                })
            }
        };
        reader.finish()?;
        Ok(command)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One command of every kind, with every optional field both present and absent somewhere.
    pub(crate) fn sample_commands() -> Vec<Command> {
        vec![
            Command::Set {
                key: "/a/b".into(),
                value: "v".into(),
                dir: false,
                expire_at: Some(1_700_000_000_000_000_000),
                refresh: false,
            },
            Command::Set {
                key: "/d".into(),
                value: String::new(),
                dir: true,
                expire_at: None,
                refresh: true,
            },
            Command::Create {
                key: "/queue".into(),
                value: "job ✓".into(),
                dir: false,
                expire_at: None,
                in_order: true,
            },
            Command::Update {
                key: "/t".into(),
                value: "u".into(),
                expire_at: Some(-1),
                refresh: true,
            },
            Command::CompareAndSwap {
                key: "/c".into(),
                value: "new".into(),
                prev_value: Some("old".into()),
                prev_index: 42,
                expire_at: None,
                refresh: false,
            },
            Command::CompareAndSwap {
                key: "/c".into(),
                value: String::new(),
                prev_value: None,
                prev_index: u64::MAX,
                expire_at: Some(i64::MAX),
                refresh: true,
            },
            Command::Delete {
                key: "/a".into(),
                dir: false,
                recursive: true,
            },
            Command::CompareAndDelete {
                key: "/c".into(),
                prev_value: None,
                prev_index: 3,
            },
            Command::Sync { now: 123_456_789 },
            Command::Internal {
                key: "/0/members/1".into(),
                value: "{}".into(),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for command in sample_commands() {
            let bytes = command.to_bytes();
            assert_eq!(Command::decode(&bytes), Ok(command.clone()), "{bytes:02x?}");
        }
    }

    #[test]
    fn module_doc_example_is_exact() {
        let command = Command::Delete {
            key: "/a".into(),
            dir: false,
            recursive: true,
        };
        assert_eq!(
            command.to_bytes(),
            [0x01, 0x05, 0x02, 0, 0, 0, 0x2f, 0x61, 0x00, 0x01]
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for command in sample_commands() {
            let bytes = command.to_bytes();
            for cut in 0..bytes.len() {
                let result = Command::decode(&bytes[..cut]);
                assert!(
                    matches!(
                        result,
                        Err(CommandDecodeError::Wire(WireError::Truncated { .. }))
                    ),
                    "{command:?} cut at {cut}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn trailing_byte_version_and_kind_are_errors() {
        let mut bytes = Command::Sync { now: 1 }.to_bytes();
        bytes.push(0);
        assert!(matches!(
            Command::decode(&bytes),
            Err(CommandDecodeError::Wire(WireError::TrailingBytes {
                expected_len: 10,
                found_len: 11
            }))
        ));
        assert_eq!(
            Command::decode(&[2, 7]),
            Err(CommandDecodeError::UnknownVersion {
                expected: 1,
                found: 2
            })
        );
        assert_eq!(
            Command::decode(&[1, 0]),
            Err(CommandDecodeError::UnknownKind {
                expected_max: 8,
                found: 0
            })
        );
        assert_eq!(
            Command::decode(&[1, 9]),
            Err(CommandDecodeError::UnknownKind {
                expected_max: 8,
                found: 9
            })
        );
    }

    #[test]
    fn every_single_byte_corruption_decodes_or_errors_without_panic() {
        for command in sample_commands() {
            let bytes = command.to_bytes();
            for position in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut corrupted = bytes.clone();
                    corrupted[position] ^= flip;
                    if let Ok(decoded) = Command::decode(&corrupted) {
                        assert_eq!(decoded.to_bytes(), corrupted, "re-encoding differs");
                    }
                }
            }
        }
    }
}
