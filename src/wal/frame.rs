//! Pure record framing: encode and decode one WAL frame on a byte slice.
//!
//! No I/O and no panics on any input: `decode_frame` checks every length before slicing and
//! reports what it expected and what it found. The byte layout is drawn in the `wal` module doc.
//! The CRC is CRC-32/IEEE (crc32fast; polynomial 0x04C11DB7 reflected, the zlib/Ethernet CRC),
//! not CRC-32C.

/// Bytes before the payload: length, type, reserved, batch sequence, two CRCs.
pub const FRAME_HEADER_BYTES: usize = 24;
/// Every frame starts and ends on a multiple of this.
pub const FRAME_ALIGN_BYTES: usize = 8;
/// An entry record's payload before its data: index (8), term (8), kind (1).
pub const ENTRY_FIXED_PAYLOAD_BYTES: usize = 17;
/// Largest payload a frame may carry (the segment size bounds it further).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

const TYPE_ENTRY: u8 = 1;
const TYPE_HARD_STATE: u8 = 2;
const TYPE_SNAPSHOT_MARKER: u8 = 3;
const TYPE_CLEAN_SHUTDOWN: u8 = 4;
const TYPE_COMMIT: u8 = 5;

/// One log entry. `data` is opaque to the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Invariant: >= 1 (Raft indexes start at 1).
    pub index: u64,
    pub term: u64,
    /// Opaque to the WAL (the node's entry kind: normal, config change, ...).
    pub kind: u8,
    pub data: Vec<u8>,
}

/// Raft's persistent state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    /// 0 = voted for nobody.
    pub vote: u64,
    pub commit: u64,
}

/// "A snapshot covering the log up to `index` (at `term`) is durable."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotMarker {
    pub index: u64,
    pub term: u64,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Entry(Entry),
    HardState(HardState),
    SnapshotMarker(SnapshotMarker),
    /// Written by a clean shutdown: the log's last index at that moment.
    CleanShutdown {
        last_index: u64,
    },
    /// Ends a group-commit batch: every record of the batch precedes it. Written by `sync`.
    Commit,
}

impl Record {
    fn type_byte(&self) -> u8 {
        match self {
            Record::Entry(_) => TYPE_ENTRY,
            Record::HardState(_) => TYPE_HARD_STATE,
            Record::SnapshotMarker(_) => TYPE_SNAPSHOT_MARKER,
            Record::CleanShutdown { .. } => TYPE_CLEAN_SHUTDOWN,
            Record::Commit => TYPE_COMMIT,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Record::Entry(entry) => ENTRY_FIXED_PAYLOAD_BYTES + entry.data.len(),
            Record::HardState(_) => 24,
            Record::SnapshotMarker(_) => 16,
            Record::CleanShutdown { .. } => 8,
            Record::Commit => 0,
        }
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        match self {
            Record::Entry(entry) => {
                out.extend_from_slice(&entry.index.to_le_bytes());
                out.extend_from_slice(&entry.term.to_le_bytes());
                out.push(entry.kind);
                out.extend_from_slice(&entry.data);
            }
            Record::HardState(hs) => {
                out.extend_from_slice(&hs.term.to_le_bytes());
                out.extend_from_slice(&hs.vote.to_le_bytes());
                out.extend_from_slice(&hs.commit.to_le_bytes());
            }
            Record::SnapshotMarker(marker) => {
                out.extend_from_slice(&marker.index.to_le_bytes());
                out.extend_from_slice(&marker.term.to_le_bytes());
            }
            Record::CleanShutdown { last_index } => {
                out.extend_from_slice(&last_index.to_le_bytes())
            }
            Record::Commit => {}
        }
    }
}

/// Size on disk of a frame whose payload is `payload_len` bytes (header + payload + padding).
pub fn frame_len_bytes(payload_len: usize) -> usize {
    (FRAME_HEADER_BYTES + payload_len).div_ceil(FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES
}

/// Size on disk of `record`'s frame.
pub fn encoded_len_bytes(record: &Record) -> usize {
    frame_len_bytes(record.payload_len())
}

/// The chained CRC of a record: CRC-32/IEEE over the previous chain value and the record's
/// content CRC (of frame bytes 0..16 and the payload), both little endian. A record moved to
/// another place in any log fails this check.
pub fn chain_crc(prev_chain: u32, content_crc: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&prev_chain.to_le_bytes());
    hasher.update(&content_crc.to_le_bytes());
    hasher.finalize()
}

/// (content CRC, record CRC) of a frame: the content CRC covers header bytes 0..16 and the
/// payload; the record CRC continues it over the stored chain value (bytes 20..24), so that a
/// frame torn anywhere, its chain field included, fails its own check.
fn frame_crcs(header16: &[u8], payload: &[u8], chain: u32) -> (u32, u32) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header16);
    hasher.update(payload);
    let content_crc = hasher.clone().finalize();
    hasher.update(&chain.to_le_bytes());
    (content_crc, hasher.finalize())
}

/// Appends `record`'s frame to `out` and returns its chained CRC (the `prev_chain` of the next
/// record). The frame's length is `encoded_len_bytes(record)`.
pub fn encode_frame(record: &Record, batch_seq: u64, prev_chain: u32, out: &mut Vec<u8>) -> u32 {
    let payload_len = record.payload_len();
    assert!(
        payload_len <= MAX_PAYLOAD_BYTES,
        "record payload of {payload_len} bytes exceeds the frame limit of {MAX_PAYLOAD_BYTES}"
    );
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.push(record.type_byte());
    out.extend_from_slice(&[0u8; 3]);
    out.extend_from_slice(&batch_seq.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // CRCs, filled below
    record.write_payload(out);
    let (content_crc, _) = frame_crcs(
        &out[start..start + 16],
        &out[start + FRAME_HEADER_BYTES..],
        0,
    );
    let chain = chain_crc(prev_chain, content_crc);
    let (_, record_crc) = frame_crcs(
        &out[start..start + 16],
        &out[start + FRAME_HEADER_BYTES..],
        chain,
    );
    out[start + 16..start + 20].copy_from_slice(&record_crc.to_le_bytes());
    out[start + 20..start + 24].copy_from_slice(&chain.to_le_bytes());
    out.resize(start + frame_len_bytes(payload_len), 0);
    chain
}

/// A frame that decoded and whose own CRC matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFrame {
    pub record: Record,
    pub batch_seq: u64,
    /// Bytes the frame occupies, padding included (a multiple of 8).
    pub frame_len: usize,
    /// The chain value stored in the frame (checked against `prev_chain` when one was given).
    pub chain: u32,
}

/// Why bytes are not a valid frame. Carries what was expected and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The 24 header bytes are all zero: unwritten (preallocated) space, the end of the log.
    Unwritten,
    /// Fewer bytes than the frame needs.
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    UnknownType {
        found: u8,
    },
    NonZeroReserved {
        found: [u8; 3],
    },
    PayloadTooLarge {
        max_bytes: usize,
        found_bytes: usize,
    },
    /// The payload length does not fit the record type.
    BadPayloadLength {
        record_type: u8,
        expected: &'static str,
        found_bytes: usize,
    },
    RecordCrcMismatch {
        expected: u32,
        found: u32,
    },
    ChainCrcMismatch {
        expected: u32,
        found: u32,
    },
    NonZeroPadding {
        offset_in_frame: usize,
        found: u8,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Unwritten => write!(f, "unwritten (all-zero) frame header"),
            FrameError::Truncated {
                needed_bytes,
                available_bytes,
            } => {
                write!(
                    f,
                    "frame needs {needed_bytes} bytes, only {available_bytes} remain"
                )
            }
            FrameError::UnknownType { found } => {
                write!(f, "record type 1..=5 expected, found {found}")
            }
            FrameError::NonZeroReserved { found } => {
                write!(f, "reserved header bytes 0 expected, found {found:?}")
            }
            FrameError::PayloadTooLarge {
                max_bytes,
                found_bytes,
            } => {
                write!(
                    f,
                    "payload <= {max_bytes} bytes expected, found {found_bytes}"
                )
            }
            FrameError::BadPayloadLength {
                record_type,
                expected,
                found_bytes,
            } => write!(
                f,
                "record type {record_type} payload {expected} bytes expected, found {found_bytes}"
            ),
            FrameError::RecordCrcMismatch { expected, found } => {
                write!(
                    f,
                    "record CRC {expected:#010x} expected, found {found:#010x}"
                )
            }
            FrameError::ChainCrcMismatch { expected, found } => write!(
                f,
                "chained CRC {expected:#010x} expected, found {found:#010x} (record from another \
                 place or log)"
            ),
            FrameError::NonZeroPadding {
                offset_in_frame,
                found,
            } => {
                write!(
                    f,
                    "zero padding expected at frame byte {offset_in_frame}, found {found:#04x}"
                )
            }
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes the frame at the start of `bytes`. With `prev_chain = Some(c)` the chained CRC must
/// continue from `c`; with `None` only the record's own CRC is checked (used to look for valid
/// records past a damaged one). Never panics.
pub fn decode_frame(bytes: &[u8], prev_chain: Option<u32>) -> Result<DecodedFrame, FrameError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        if !bytes.is_empty() && bytes.iter().all(|b| *b == 0) {
            return Err(FrameError::Unwritten);
        }
        return Err(FrameError::Truncated {
            needed_bytes: FRAME_HEADER_BYTES,
            available_bytes: bytes.len(),
        });
    }
    let header = &bytes[..FRAME_HEADER_BYTES];
    if header.iter().all(|b| *b == 0) {
        return Err(FrameError::Unwritten);
    }
    let payload_len = u32_at(header, 0) as usize;
    let record_type = header[4];
    if !(TYPE_ENTRY..=TYPE_COMMIT).contains(&record_type) {
        return Err(FrameError::UnknownType { found: record_type });
    }
    if header[5..8] != [0, 0, 0] {
        return Err(FrameError::NonZeroReserved {
            found: [header[5], header[6], header[7]],
        });
    }
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::PayloadTooLarge {
            max_bytes: MAX_PAYLOAD_BYTES,
            found_bytes: payload_len,
        });
    }
    let frame_len = frame_len_bytes(payload_len);
    if bytes.len() < frame_len {
        return Err(FrameError::Truncated {
            needed_bytes: frame_len,
            available_bytes: bytes.len(),
        });
    }
    let payload = &bytes[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + payload_len];
    let stored_record_crc = u32_at(header, 16);
    let stored_chain = u32_at(header, 20);
    let (content_crc, computed) = frame_crcs(&header[..16], payload, stored_chain);
    if computed != stored_record_crc {
        return Err(FrameError::RecordCrcMismatch {
            expected: stored_record_crc,
            found: computed,
        });
    }
    if let Some(prev) = prev_chain {
        let expected = chain_crc(prev, content_crc);
        if expected != stored_chain {
            return Err(FrameError::ChainCrcMismatch {
                expected,
                found: stored_chain,
            });
        }
    }
    for (at, byte) in bytes[FRAME_HEADER_BYTES + payload_len..frame_len]
        .iter()
        .enumerate()
    {
        if *byte != 0 {
            return Err(FrameError::NonZeroPadding {
                offset_in_frame: FRAME_HEADER_BYTES + payload_len + at,
                found: *byte,
            });
        }
    }
    let exact = |expected_len: usize, label: &'static str| {
        if payload_len == expected_len {
            Ok(())
        } else {
            Err(FrameError::BadPayloadLength {
                record_type,
                expected: label,
                found_bytes: payload_len,
            })
        }
    };
    let record = match record_type {
        TYPE_ENTRY => {
            if payload_len < 17 {
                return Err(FrameError::BadPayloadLength {
                    record_type,
                    expected: ">= 17",
                    found_bytes: payload_len,
                });
            }
            Record::Entry(Entry {
                index: u64_at(payload, 0),
                term: u64_at(payload, 8),
                kind: payload[16],
                data: payload[17..].to_vec(),
            })
        }
        TYPE_HARD_STATE => {
            exact(24, "24")?;
            Record::HardState(HardState {
                term: u64_at(payload, 0),
                vote: u64_at(payload, 8),
                commit: u64_at(payload, 16),
            })
        }
        TYPE_SNAPSHOT_MARKER => {
            exact(16, "16")?;
            Record::SnapshotMarker(SnapshotMarker {
                index: u64_at(payload, 0),
                term: u64_at(payload, 8),
            })
        }
        TYPE_CLEAN_SHUTDOWN => {
            exact(8, "8")?;
            Record::CleanShutdown {
                last_index: u64_at(payload, 0),
            }
        }
        _ => {
            exact(0, "0")?;
            Record::Commit
        }
    };
    Ok(DecodedFrame {
        record,
        batch_seq: u64_at(header, 8),
        frame_len,
        chain: stored_chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        vec![
            Record::Entry(Entry {
                index: 7,
                term: 3,
                kind: 2,
                data: b"hello".to_vec(),
            }),
            Record::Entry(Entry {
                index: 1,
                term: 1,
                kind: 0,
                data: Vec::new(),
            }),
            Record::Entry(Entry {
                index: u64::MAX,
                term: 9,
                kind: 255,
                data: vec![0xAB; 300],
            }),
            Record::HardState(HardState {
                term: 5,
                vote: 2,
                commit: 40,
            }),
            Record::SnapshotMarker(SnapshotMarker {
                index: 100,
                term: 4,
            }),
            Record::CleanShutdown { last_index: 77 },
            Record::Commit,
        ]
    }

    #[test]
    fn round_trip_every_record_type() {
        for record in samples() {
            let mut buf = Vec::new();
            let chain = encode_frame(&record, 42, 0xDEAD_BEEF, &mut buf);
            assert_eq!(buf.len(), encoded_len_bytes(&record));
            assert_eq!(buf.len() % FRAME_ALIGN_BYTES, 0);
            let decoded = decode_frame(&buf, Some(0xDEAD_BEEF)).expect("valid frame decodes");
            assert_eq!(decoded.record, record);
            assert_eq!(decoded.batch_seq, 42);
            assert_eq!(decoded.frame_len, buf.len());
            assert_eq!(decoded.chain, chain);
        }
    }

    #[test]
    fn every_byte_flip_and_truncation_is_detected() {
        for record in samples() {
            let mut buf = Vec::new();
            encode_frame(&record, 9, 0x1234_5678, &mut buf);
            for at in 0..buf.len() {
                for flip in [0x01u8, 0x80, 0xFF] {
                    let mut damaged = buf.clone();
                    damaged[at] ^= flip;
                    let result = decode_frame(&damaged, Some(0x1234_5678));
                    assert!(
                        result.is_err(),
                        "flip {flip:#x} at byte {at} of {record:?} not detected"
                    );
                }
            }
            for cut in 0..buf.len() {
                let result = decode_frame(&buf[..cut], Some(0x1234_5678));
                assert!(
                    result.is_err(),
                    "truncation to {cut} bytes of {record:?} not detected"
                );
            }
        }
    }

    #[test]
    fn wrong_chain_is_detected_but_self_check_passes() {
        let mut buf = Vec::new();
        encode_frame(&Record::Commit, 1, 11, &mut buf);
        assert!(matches!(
            decode_frame(&buf, Some(12)),
            Err(FrameError::ChainCrcMismatch { .. })
        ));
        assert!(decode_frame(&buf, None).is_ok());
    }

    #[test]
    fn zero_bytes_are_unwritten() {
        assert_eq!(
            decode_frame(&[0u8; 64], Some(0)),
            Err(FrameError::Unwritten)
        );
    }
}
