//! The peer protocol's bytes: a handshake that opens every connection and the frames that
//! follow it. Pure functions on byte slices; decoding never panics on any input.
//!
//! Handshake, sent once by the dialing side (36 bytes, integers little endian):
//! ```text
//! offset  size  field
//!      0     4  magic "RKVP"
//!      4     2  protocol version (1)
//!      6     1  stream kind: 0 = raft messages, 1 = one snapshot
//!      7     1  reserved, 0
//!      8     8  cluster ID of the dialer
//!     16     8  member ID of the dialer (from)
//!     24     8  member ID the dialer wants (to)
//!     32     4  CRC-32 (IEEE, crc32fast) of bytes 0..32
//! ```
//! Answer from the accepting side (16 bytes):
//! ```text
//!      0     1  status: 0 accepted, 1 other cluster, 2 not that member, 3 bad version
//!      1     3  reserved, 0
//!      4     8  cluster ID of the acceptor
//!     12     4  CRC-32 of bytes 0..12
//! ```
//! Then, from dialer to acceptor only, frames:
//! ```text
//!      0     4  payload length in bytes (at most MAX_FRAME_BYTES)
//!      4     4  CRC-32 of the payload
//!      8     n  payload
//! ```
//! On a snapshot stream the payloads are: the raft message, then data chunks, then an empty
//! payload that ends the snapshot.

use crc32fast::hash as crc32;

pub const MAGIC: [u8; 4] = *b"RKVP";
pub const PROTOCOL_VERSION: u16 = 1;
pub const HANDSHAKE_BYTES: usize = 36;
pub const ANSWER_BYTES: usize = 16;
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest frame payload accepted (snapshots are chunked well below this).
pub const MAX_FRAME_BYTES: u32 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Messages,
    Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub kind: StreamKind,
    pub cluster_id: u64,
    pub from: u64,
    pub to: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerStatus {
    Accepted,
    OtherCluster,
    NotThatMember,
    BadVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: AnswerStatus,
    pub cluster_id: u64,
}

/// Why bytes are not a valid handshake, answer or frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Truncated {
        expected_bytes: usize,
        found_bytes: usize,
    },
    BadMagic {
        found: [u8; 4],
    },
    BadVersion {
        expected: u16,
        found: u16,
    },
    BadKind {
        found: u8,
    },
    BadStatus {
        found: u8,
    },
    ChecksumMismatch {
        expected: u32,
        found: u32,
    },
    FrameTooLarge {
        limit_bytes: u32,
        found_bytes: u32,
    },
    /// Bytes the format reserves (must be zero) are not.
    ReservedNotZero {
        offset: usize,
        found: u8,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated {
                expected_bytes,
                found_bytes,
            } => {
                write!(
                    f,
                    "truncated: expected {expected_bytes} bytes, found {found_bytes}"
                )
            }
            FrameError::BadMagic { found } => write!(f, "not a raftkv peer (magic {found:02x?})"),
            FrameError::BadVersion { expected, found } => {
                write!(f, "protocol version {found}, expected {expected}")
            }
            FrameError::BadKind { found } => write!(f, "unknown stream kind {found}"),
            FrameError::BadStatus { found } => write!(f, "unknown answer status {found}"),
            FrameError::ChecksumMismatch { expected, found } => {
                write!(
                    f,
                    "checksum mismatch: expected {expected:08x}, found {found:08x}"
                )
            }
            FrameError::ReservedNotZero { offset, found } => {
                write!(f, "reserved byte {offset} is {found:#04x}, expected 0")
            }
            FrameError::FrameTooLarge {
                limit_bytes,
                found_bytes,
            } => {
                write!(
                    f,
                    "frame of {found_bytes} bytes exceeds the limit of {limit_bytes}"
                )
            }
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte slice"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8-byte slice"))
}

fn need(bytes: &[u8], expected_bytes: usize) -> Result<(), FrameError> {
    if bytes.len() < expected_bytes {
        return Err(FrameError::Truncated {
            expected_bytes,
            found_bytes: bytes.len(),
        });
    }
    Ok(())
}

impl Handshake {
    pub fn encode(&self) -> [u8; HANDSHAKE_BYTES] {
        let mut out = [0u8; HANDSHAKE_BYTES];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out[6] = match self.kind {
            StreamKind::Messages => 0,
            StreamKind::Snapshot => 1,
        };
        out[8..16].copy_from_slice(&self.cluster_id.to_le_bytes());
        out[16..24].copy_from_slice(&self.from.to_le_bytes());
        out[24..32].copy_from_slice(&self.to.to_le_bytes());
        let checksum = crc32(&out[0..32]);
        out[32..36].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Handshake, FrameError> {
        need(bytes, HANDSHAKE_BYTES)?;
        let magic: [u8; 4] = bytes[0..4].try_into().expect("4-byte slice");
        if magic != MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        let expected = crc32(&bytes[0..32]);
        let found = u32_at(bytes, 32);
        if expected != found {
            return Err(FrameError::ChecksumMismatch { expected, found });
        }
        let version = u16_at(bytes, 4);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::BadVersion {
                expected: PROTOCOL_VERSION,
                found: version,
            });
        }
        if bytes[7] != 0 {
            return Err(FrameError::ReservedNotZero {
                offset: 7,
                found: bytes[7],
            });
        }
        let kind = match bytes[6] {
            0 => StreamKind::Messages,
            1 => StreamKind::Snapshot,
            other => return Err(FrameError::BadKind { found: other }),
        };
        Ok(Handshake {
            kind,
            cluster_id: u64_at(bytes, 8),
            from: u64_at(bytes, 16),
            to: u64_at(bytes, 24),
        })
    }
}

impl Answer {
    pub fn encode(&self) -> [u8; ANSWER_BYTES] {
        let mut out = [0u8; ANSWER_BYTES];
        out[0] = match self.status {
            AnswerStatus::Accepted => 0,
            AnswerStatus::OtherCluster => 1,
            AnswerStatus::NotThatMember => 2,
            AnswerStatus::BadVersion => 3,
        };
        out[4..12].copy_from_slice(&self.cluster_id.to_le_bytes());
        let checksum = crc32(&out[0..12]);
        out[12..16].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Answer, FrameError> {
        need(bytes, ANSWER_BYTES)?;
        let expected = crc32(&bytes[0..12]);
        let found = u32_at(bytes, 12);
        if expected != found {
            return Err(FrameError::ChecksumMismatch { expected, found });
        }
        if let Some(offset) = (1..4).find(|at| bytes[*at] != 0) {
            return Err(FrameError::ReservedNotZero {
                offset,
                found: bytes[offset],
            });
        }
        let status = match bytes[0] {
            0 => AnswerStatus::Accepted,
            1 => AnswerStatus::OtherCluster,
            2 => AnswerStatus::NotThatMember,
            3 => AnswerStatus::BadVersion,
            other => return Err(FrameError::BadStatus { found: other }),
        };
        Ok(Answer {
            status,
            cluster_id: u64_at(bytes, 4),
        })
    }
}

/// Appends one frame carrying `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_FRAME_BYTES as usize,
        "frame payload of {} bytes exceeds MAX_FRAME_BYTES; the sender must chunk it",
        payload.len()
    );
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Validates a frame header; returns the payload length and its expected checksum.
pub fn decode_frame_header(header: &[u8]) -> Result<(u32, u32), FrameError> {
    need(header, FRAME_HEADER_BYTES)?;
    let length = u32_at(header, 0);
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::FrameTooLarge {
            limit_bytes: MAX_FRAME_BYTES,
            found_bytes: length,
        });
    }
    Ok((length, u32_at(header, 4)))
}

/// Checks a payload against the checksum from its header.
pub fn check_payload(payload: &[u8], expected: u32) -> Result<(), FrameError> {
    let found = crc32(payload);
    if found != expected {
        return Err(FrameError::ChecksumMismatch { expected, found });
    }
    Ok(())
}

/// Splits a buffer into frames; returns the payloads and the bytes consumed. Stops at the first
/// incomplete frame; errors on the first bad one.
pub fn decode_frames(bytes: &[u8]) -> Result<(Vec<&[u8]>, usize), FrameError> {
    let mut payloads = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= FRAME_HEADER_BYTES {
        let (length, checksum) = decode_frame_header(&bytes[at..])?;
        let end = at + FRAME_HEADER_BYTES + length as usize;
        if end > bytes.len() {
            break;
        }
        let payload = &bytes[at + FRAME_HEADER_BYTES..end];
        check_payload(payload, checksum)?;
        payloads.push(payload);
        at = end;
    }
    Ok((payloads, at))
}

/// Fuzz entry point: handshakes, answers and frame streams decode to values or errors, never
/// panics, and what decodes re-encodes to the same bytes.
#[doc(hidden)]
pub fn fuzz_peer_frames(data: &[u8]) {
    if let Ok(handshake) = Handshake::decode(data) {
        assert_eq!(&handshake.encode()[..], &data[..HANDSHAKE_BYTES]);
    }
    if let Ok(answer) = Answer::decode(data) {
        let encoded = answer.encode();
        assert_eq!(encoded[0], data[0]);
        assert_eq!(encoded[4..], data[4..ANSWER_BYTES]);
    }
    if let Ok((payloads, consumed)) = decode_frames(data) {
        let mut again = Vec::new();
        for payload in &payloads {
            encode_frame(payload, &mut again);
        }
        assert_eq!(&again[..], &data[..consumed]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_and_answer_round_trip() {
        let handshake = Handshake {
            kind: StreamKind::Snapshot,
            cluster_id: 7,
            from: 1,
            to: 2,
        };
        assert_eq!(Handshake::decode(&handshake.encode()), Ok(handshake));
        let answer = Answer {
            status: AnswerStatus::OtherCluster,
            cluster_id: 9,
        };
        assert_eq!(Answer::decode(&answer.encode()), Ok(answer));
    }

    #[test]
    fn every_flipped_byte_of_a_handshake_is_rejected() {
        let bytes = Handshake {
            kind: StreamKind::Messages,
            cluster_id: 7,
            from: 1,
            to: 2,
        }
        .encode();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes;
                damaged[at] ^= 1 << bit;
                assert!(
                    Handshake::decode(&damaged).is_err(),
                    "flip at byte {at} bit {bit} accepted"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(Handshake::decode(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn frames_round_trip_and_damage_is_detected() {
        let mut stream = Vec::new();
        encode_frame(b"hello", &mut stream);
        encode_frame(b"", &mut stream);
        encode_frame(&[7u8; 300], &mut stream);
        let (payloads, consumed) = decode_frames(&stream).unwrap();
        assert_eq!(payloads.len(), 3);
        assert_eq!(consumed, stream.len());
        for cut in 0..stream.len() {
            let (partial, consumed) = decode_frames(&stream[..cut]).unwrap();
            assert!(consumed <= cut && partial.len() <= 3);
        }
        for at in 0..stream.len() {
            let mut damaged = stream.clone();
            damaged[at] ^= 0x10;
            match decode_frames(&damaged) {
                Err(_) => {}
                Ok((payloads, _)) => assert!(
                    payloads.len() < 3 || payloads != decode_frames(&stream).unwrap().0,
                    "damage at {at} went unnoticed"
                ),
            }
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&(MAX_FRAME_BYTES + 1).to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            decode_frames(&huge),
            Err(FrameError::FrameTooLarge { .. })
        ));
    }
}
