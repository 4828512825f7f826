//! Pure encode/decode of a snapshot file's bytes (layout in the `snap` module doc). No I/O,
//! never panics on any input.

pub const SNAP_MAGIC: [u8; 8] = *b"RKVSNAP\n";
pub const SNAP_FORMAT_VERSION: u32 = 1;
pub const SNAP_HEADER_BYTES: usize = 48;

/// A snapshot: the state machine's bytes (opaque here) and the log position they cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    pub data: Vec<u8>,
}

/// Why bytes are not a valid snapshot file: the offset of the failed check, what was expected
/// and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapDecodeError {
    pub offset: u64,
    pub expected: String,
    pub found: String,
}

pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAP_HEADER_BYTES + snapshot.data.len());
    out.extend_from_slice(&SNAP_MAGIC);
    out.extend_from_slice(&SNAP_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&snapshot.index.to_le_bytes());
    out.extend_from_slice(&snapshot.term.to_le_bytes());
    out.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&snapshot.data).to_le_bytes());
    let header_crc = crc32fast::hash(&out[..44]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&snapshot.data);
    out
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn fail(offset: usize, expected: impl Into<String>, found: impl Into<String>) -> SnapDecodeError {
    SnapDecodeError {
        offset: offset as u64,
        expected: expected.into(),
        found: found.into(),
    }
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, SnapDecodeError> {
    if bytes.len() < SNAP_HEADER_BYTES {
        return Err(fail(
            bytes.len(),
            format!("a {SNAP_HEADER_BYTES}-byte header"),
            format!("a {}-byte file", bytes.len()),
        ));
    }
    if bytes[0..8] != SNAP_MAGIC {
        return Err(fail(
            0,
            format!("magic {SNAP_MAGIC:?}"),
            format!("{:?}", &bytes[0..8]),
        ));
    }
    let version = u32_at(bytes, 8);
    if version != SNAP_FORMAT_VERSION {
        return Err(fail(
            8,
            format!("format version {SNAP_FORMAT_VERSION}"),
            version.to_string(),
        ));
    }
    let stored_header_crc = u32_at(bytes, 44);
    let header_crc = crc32fast::hash(&bytes[..44]);
    if header_crc != stored_header_crc {
        return Err(fail(
            44,
            format!("header CRC {stored_header_crc:#010x}"),
            format!("{header_crc:#010x}"),
        ));
    }
    if bytes[12..16] != [0, 0, 0, 0] {
        return Err(fail(
            12,
            "zero reserved bytes",
            format!("{:?}", &bytes[12..16]),
        ));
    }
    let data_len = u64_at(bytes, 32);
    let available = (bytes.len() - SNAP_HEADER_BYTES) as u64;
    if data_len != available {
        return Err(fail(
            32,
            format!("{data_len} data bytes (the header's length)"),
            format!("{available} bytes after the header"),
        ));
    }
    let data = &bytes[SNAP_HEADER_BYTES..];
    let stored_data_crc = u32_at(bytes, 40);
    let data_crc = crc32fast::hash(data);
    if data_crc != stored_data_crc {
        return Err(fail(
            SNAP_HEADER_BYTES,
            format!("data CRC {stored_data_crc:#010x}"),
            format!("{data_crc:#010x}"),
        ));
    }
    Ok(Snapshot {
        index: u64_at(bytes, 16),
        term: u64_at(bytes, 24),
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_and_truncation_detected() {
        let snapshot = Snapshot {
            index: 1234,
            term: 7,
            data: b"the store, serialized".to_vec(),
        };
        let bytes = encode_snapshot(&snapshot);
        assert_eq!(decode_snapshot(&bytes), Ok(snapshot));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x04;
            assert!(
                decode_snapshot(&damaged).is_err(),
                "flip at {at} not detected"
            );
        }
        for cut in 0..bytes.len() {
            assert!(
                decode_snapshot(&bytes[..cut]).is_err(),
                "truncation to {cut} not detected"
            );
        }
    }
}
