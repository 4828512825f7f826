//! Pure encode/decode of the fixed-size on-disk headers: the segment header and the
//! clean-shutdown marker file. No I/O, never panics on any input. Layouts are drawn in the
//! `wal` module doc; all integers little endian; CRCs are CRC-32/IEEE (crc32fast).

/// Size of the segment header; the first frame starts at this offset.
pub const SEGMENT_HEADER_BYTES: usize = 64;
pub const SEGMENT_MAGIC: [u8; 8] = *b"RKVWAL\r\n";
pub const FORMAT_VERSION: u32 = 1;

pub const CLEAN_MARKER_BYTES: usize = 48;
pub const CLEAN_MARKER_MAGIC: [u8; 8] = *b"RKVCLEAN";

/// What every segment file starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Random at WAL creation, the same in every segment of one log: a segment from another log
    /// (another node, an older incarnation of this data dir) is refused.
    pub log_id: u64,
    /// Invariant: consecutive segments have consecutive ids.
    pub segment_id: u64,
    /// The log's last index + 1 when this segment was started.
    pub first_index: u64,
    /// The preallocated file size: a shorter file was truncated (damage).
    pub segment_size_bytes: u64,
    /// The last batch sequence number committed before this segment; its first batch is +1.
    pub prev_batch_seq: u64,
    /// The chained CRC at the end of the previous segment (0 for the first segment).
    pub prev_chain: u32,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.log_id.to_le_bytes());
        out[24..32].copy_from_slice(&self.segment_id.to_le_bytes());
        out[32..40].copy_from_slice(&self.first_index.to_le_bytes());
        out[40..48].copy_from_slice(&self.segment_size_bytes.to_le_bytes());
        out[48..56].copy_from_slice(&self.prev_batch_seq.to_le_bytes());
        out[56..60].copy_from_slice(&self.prev_chain.to_le_bytes());
        let crc = crc32fast::hash(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The chain seed of the segment's first record: the header CRC, which covers the log id,
    /// segment id and previous chain, so a record copied from any other segment fails.
    pub fn chain_seed(&self) -> u32 {
        let bytes = self.encode();
        u32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]])
    }

    /// Decodes and checks a header; the error says what was expected and found.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err(HeaderError {
                field: "header length",
                expected: format!("{SEGMENT_HEADER_BYTES} bytes"),
                found: format!("{} bytes", bytes.len()),
            });
        }
        check_magic_version_crc(&bytes[..SEGMENT_HEADER_BYTES], &SEGMENT_MAGIC, 60)?;
        Ok(SegmentHeader {
            log_id: u64_at(bytes, 16),
            segment_id: u64_at(bytes, 24),
            first_index: u64_at(bytes, 32),
            segment_size_bytes: u64_at(bytes, 40),
            prev_batch_seq: u64_at(bytes, 48),
            prev_chain: u32_at(bytes, 56),
        })
    }
}

/// The content of the clean-shutdown marker file: where the log ended when it was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanMarker {
    pub log_id: u64,
    pub last_segment_id: u64,
    /// Offset just past the last committed frame in the last segment.
    pub end_offset: u64,
    pub last_index: u64,
}

impl CleanMarker {
    pub fn encode(&self) -> [u8; CLEAN_MARKER_BYTES] {
        let mut out = [0u8; CLEAN_MARKER_BYTES];
        out[0..8].copy_from_slice(&CLEAN_MARKER_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.log_id.to_le_bytes());
        out[24..32].copy_from_slice(&self.last_segment_id.to_le_bytes());
        out[32..40].copy_from_slice(&self.end_offset.to_le_bytes());
        out[40..48].copy_from_slice(&self.last_index.to_le_bytes());
        let crc = crc32fast::hash(&out[..12]);
        let crc = crc32fast::hash(&[&crc.to_le_bytes()[..], &out[16..48]].concat());
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<CleanMarker, HeaderError> {
        if bytes.len() != CLEAN_MARKER_BYTES {
            return Err(HeaderError {
                field: "marker length",
                expected: format!("{CLEAN_MARKER_BYTES} bytes"),
                found: format!("{} bytes", bytes.len()),
            });
        }
        if bytes[0..8] != CLEAN_MARKER_MAGIC {
            return Err(HeaderError {
                field: "magic",
                expected: format!("{CLEAN_MARKER_MAGIC:?}"),
                found: format!("{:?}", &bytes[0..8]),
            });
        }
        let version = u32_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError {
                field: "format version",
                expected: FORMAT_VERSION.to_string(),
                found: version.to_string(),
            });
        }
        let crc = crc32fast::hash(&bytes[..12]);
        let crc = crc32fast::hash(&[&crc.to_le_bytes()[..], &bytes[16..48]].concat());
        let stored = u32_at(bytes, 12);
        if crc != stored {
            return Err(HeaderError {
                field: "marker CRC",
                expected: format!("{stored:#010x}"),
                found: format!("{crc:#010x}"),
            });
        }
        Ok(CleanMarker {
            log_id: u64_at(bytes, 16),
            last_segment_id: u64_at(bytes, 24),
            end_offset: u64_at(bytes, 32),
            last_index: u64_at(bytes, 40),
        })
    }
}

/// A header that failed a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError {
    pub field: &'static str,
    pub expected: String,
    pub found: String,
}

fn check_magic_version_crc(
    bytes: &[u8],
    magic: &[u8; 8],
    crc_at: usize,
) -> Result<(), HeaderError> {
    if bytes[0..8] != magic[..] {
        return Err(HeaderError {
            field: "magic",
            expected: format!("{magic:?}"),
            found: format!("{:?}", &bytes[0..8]),
        });
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderError {
            field: "format version",
            expected: FORMAT_VERSION.to_string(),
            found: version.to_string(),
        });
    }
    let stored = u32_at(bytes, crc_at);
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if stored != computed {
        return Err(HeaderError {
            field: "header CRC",
            expected: format!("{stored:#010x}"),
            found: format!("{computed:#010x}"),
        });
    }
    if bytes[12..16] != [0, 0, 0, 0] {
        return Err(HeaderError {
            field: "reserved bytes 12..16",
            expected: "zero".to_string(),
            found: format!("{:?}", &bytes[12..16]),
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trip_and_every_flip_detected() {
        let header = SegmentHeader {
            log_id: 0x0102_0304_0506_0708,
            segment_id: 3,
            first_index: 99,
            segment_size_bytes: 1 << 20,
            prev_batch_seq: 17,
            prev_chain: 0xCAFE_F00D,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for at in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(
                SegmentHeader::decode(&damaged).is_err(),
                "flip at {at} not detected"
            );
        }
        for cut in 0..bytes.len() {
            assert!(SegmentHeader::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn clean_marker_round_trip_and_every_flip_detected() {
        let marker = CleanMarker {
            log_id: 5,
            last_segment_id: 2,
            end_offset: 4096,
            last_index: 10,
        };
        let bytes = marker.encode();
        assert_eq!(CleanMarker::decode(&bytes), Ok(marker));
        for at in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[at] ^= 0x01;
            assert!(
                CleanMarker::decode(&damaged).is_err(),
                "flip at {at} not detected"
            );
        }
    }
}
