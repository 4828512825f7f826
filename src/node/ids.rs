//! Member and cluster IDs, derived exactly as etcd derives them, so that a raftkv member started
//! with the same flags as an etcd member reports the same hex IDs.
//!
//! - member ID: the first 8 bytes (big endian) of SHA-1 over the member's peer URLs sorted as
//!   strings and concatenated, followed by the cluster token (`--initial-cluster-token`), and, for
//!   members added at run time, the decimal Unix time in seconds of the add.
//! - cluster ID: the first 8 bytes (big endian) of SHA-1 over the sorted member IDs, each as
//!   8 big-endian bytes.
//!
//! IDs are printed as lowercase hex without zero padding (Go's `types.ID.String`).

/// The member ID etcd gives a member with these peer URLs in a cluster with this token.
pub fn member_id(
    peer_urls: &[String],
    cluster_token: &str,
    added_at_unix_secs: Option<i64>,
) -> u64 {
    let mut sorted: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut bytes = Vec::new();
    for url in sorted {
        bytes.extend_from_slice(url.as_bytes());
    }
    bytes.extend_from_slice(cluster_token.as_bytes());
    if let Some(secs) = added_at_unix_secs {
        bytes.extend_from_slice(secs.to_string().as_bytes());
    }
    first_u64(&sha1(&bytes))
}

/// The cluster ID etcd derives from the IDs of the initial members.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut sorted = member_ids.to_vec();
    sorted.sort_unstable();
    let bytes: Vec<u8> = sorted.iter().flat_map(|id| id.to_be_bytes()).collect();
    first_u64(&sha1(&bytes))
}

/// Go's `types.ID.String()`: lowercase hex, no padding.
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

fn first_u64(digest: &[u8; 20]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// SHA-1 (FIPS 180-4). Used only to derive IDs, never for security.
pub fn sha1(message: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (message.len() as u64).wrapping_mul(8);
    let mut padded = message.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_len.to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut words = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            words[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            words[i] = (words[i - 3] ^ words[i - 8] ^ words[i - 14] ^ words[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (i, word) in words.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = next;
        }
        for (slot, add) in state.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 20];
    for (i, word) in state.iter().enumerate() {
        digest[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_matches_the_standard_test_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn ids_match_what_etcd_derives_for_the_same_flags() {
        // Observed on etcd 3.4.23: peer URL http://127.0.0.1:2480, default token.
        let member = member_id(&["http://127.0.0.1:2480".to_string()], "etcd-cluster", None);
        assert_eq!(format_id(member), "11bff47b8baf3ee9");
        assert_eq!(format_id(cluster_id(&[member])), "80d54574493dd420");
    }
}
