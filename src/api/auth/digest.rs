//! SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and PBKDF2-HMAC-SHA-256 (RFC 8018), written
//! here because the dependency list has no hashing crate. They exist only to hash v2 auth
//! passwords (see [`super::password`]); nothing here is constant-time except
//! [`equal_in_constant_time`], which is what compares secrets.

/// SHA-256 round constants: the first 32 bits of the fractional parts of the cube roots of
/// the first 64 primes.
const ROUND_CONSTANTS: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial state: the first 32 bits of the fractional parts of the square roots of the
/// first 8 primes.
const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK_BYTES: usize = 64;

/// Length of a SHA-256 digest.
pub const DIGEST_BYTES: usize = 32;

/// An incremental SHA-256 computation.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    /// Invariant: `pending_len < BLOCK_BYTES` between calls.
    pending: [u8; BLOCK_BYTES],
    pending_len: usize,
    total_len_bytes: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl Sha256 {
    pub fn new() -> Sha256 {
        Sha256 {
            state: INITIAL_STATE,
            pending: [0; BLOCK_BYTES],
            pending_len: 0,
            total_len_bytes: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total_len_bytes = self.total_len_bytes.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (BLOCK_BYTES - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < BLOCK_BYTES {
                return;
            }
            let block = self.pending;
            compress(&mut self.state, &block);
            self.pending_len = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK_BYTES);
        for block in &mut blocks {
            compress(&mut self.state, block.try_into().expect("64-byte chunk"));
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; DIGEST_BYTES] {
        let bit_len = self.total_len_bytes.wrapping_mul(8);
        let mut padding = [0u8; BLOCK_BYTES + 8];
        padding[0] = 0x80;
        // One 0x80 byte, zeros up to 56 mod 64, then the length.
        let zeros = (BLOCK_BYTES + BLOCK_BYTES - 8 - 1 - self.pending_len) % BLOCK_BYTES;
        self.update(&padding[..1 + zeros]);
        self.update(&bit_len.to_be_bytes());
        assert_eq!(self.pending_len, 0, "SHA-256 padding must end on a block");
        state_bytes(&self.state)
    }
}

fn state_bytes(state: &[u32; 8]) -> [u8; DIGEST_BYTES] {
    let mut out = [0u8; DIGEST_BYTES];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK_BYTES]) {
    let mut schedule = [0u32; 64];
    for (word, bytes) in schedule.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes(bytes.try_into().expect("4-byte chunk"));
    }
    for t in 16..64 {
        let s0 = schedule[t - 15].rotate_right(7)
            ^ schedule[t - 15].rotate_right(18)
            ^ (schedule[t - 15] >> 3);
        let s1 = schedule[t - 2].rotate_right(17)
            ^ schedule[t - 2].rotate_right(19)
            ^ (schedule[t - 2] >> 10);
        schedule[t] = schedule[t - 16]
            .wrapping_add(s0)
            .wrapping_add(schedule[t - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let sum1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let choose = (e & f) ^ (!e & g);
        let temp1 = h
            .wrapping_add(sum1)
            .wrapping_add(choose)
            .wrapping_add(ROUND_CONSTANTS[t])
            .wrapping_add(schedule[t]);
        let sum0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let majority = (a & b) ^ (a & c) ^ (b & c);
        let temp2 = sum0.wrapping_add(majority);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(temp1);
        d = c;
        c = b;
        b = a;
        a = temp1.wrapping_add(temp2);
    }
    for (word, add) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *word = word.wrapping_add(add);
    }
}

/// SHA-256 of one message.
pub fn sha256(message: &[u8]) -> [u8; DIGEST_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(message);
    hasher.finish()
}

/// HMAC-SHA-256 with the inner and outer hash states precomputed for one key, so that PBKDF2's
/// thousands of MACs under the same key each cost two compressions of fresh data.
#[derive(Clone)]
pub struct HmacSha256 {
    inner: Sha256,
    outer: Sha256,
}

impl HmacSha256 {
    pub fn new(key: &[u8]) -> HmacSha256 {
        let mut block = [0u8; BLOCK_BYTES];
        if key.len() > BLOCK_BYTES {
            block[..DIGEST_BYTES].copy_from_slice(&sha256(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(&block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(&block.map(|b| b ^ 0x5c));
        HmacSha256 { inner, outer }
    }

    /// The MAC of a 32-byte message (PBKDF2's inner loop): exactly one padded block through
    /// each precomputed state, with no buffering.
    pub fn mac_of_digest(&self, message: &[u8; DIGEST_BYTES]) -> [u8; DIGEST_BYTES] {
        assert!(
            self.inner.pending_len == 0 && self.outer.pending_len == 0,
            "HMAC states hold exactly one key block"
        );
        // Both hashes see 64 key bytes + 32 message bytes = 768 bits.
        let mut block = [0u8; BLOCK_BYTES];
        block[DIGEST_BYTES] = 0x80;
        block[BLOCK_BYTES - 8..].copy_from_slice(&(768u64).to_be_bytes());
        block[..DIGEST_BYTES].copy_from_slice(message);
        let mut inner = self.inner.state;
        compress(&mut inner, &block);
        block[..DIGEST_BYTES].copy_from_slice(&state_bytes(&inner));
        let mut outer = self.outer.state;
        compress(&mut outer, &block);
        state_bytes(&outer)
    }

    /// The MAC of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; DIGEST_BYTES] {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(&inner.finish());
        outer.finish()
    }
}

/// PBKDF2-HMAC-SHA-256 (RFC 8018 §5.2) filling `out` (any length).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    assert!(iterations >= 1, "PBKDF2 needs at least one iteration");
    let prf = HmacSha256::new(password);
    for (block_number, chunk) in out.chunks_mut(DIGEST_BYTES).enumerate() {
        let counter = (block_number as u32 + 1).to_be_bytes();
        let mut u = prf.mac(&[salt, &counter]);
        let mut t = u;
        for _ in 1..iterations {
            u = prf.mac_of_digest(&u);
            for (acc, byte) in t.iter_mut().zip(u) {
                *acc ^= byte;
            }
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of lowercase or uppercase hex; None on odd length or a non-hex character.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_fips_vectors() {
        assert_eq!(
            to_hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            to_hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn sha256_is_the_same_fed_in_pieces() {
        let message: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = sha256(&message);
        for split in [0, 1, 55, 56, 63, 64, 65, 128, 999] {
            let mut hasher = Sha256::new();
            hasher.update(&message[..split]);
            hasher.update(&message[split..]);
            assert_eq!(hasher.finish(), whole, "split at {split}");
        }
        assert_eq!(
            to_hex(&sha256(&[b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // Test case 2 and test case 6 (a key longer than one block).
        let mac = HmacSha256::new(b"Jefe").mac(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mac = HmacSha256::new(&[0xaa; 131])
            .mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(
            to_hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pbkdf2_matches_rfc7914_vectors() {
        let mut out = [0u8; 64];
        pbkdf2_sha256(b"passwd", b"salt", 1, &mut out);
        assert_eq!(
            to_hex(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        // 1000 iterations and a length that is not a whole number of blocks (Python's
        // hashlib.pbkdf2_hmac gives the same bytes; RFC 7914's 80 000-iteration vector is
        // too slow for a debug test).
        let mut out = [0u8; 40];
        pbkdf2_sha256(b"Password", b"NaCl", 1000, &mut out);
        assert_eq!(
            to_hex(&out),
            "c27dad0abae39af4ebb9965719d584e8b4eb2ee69e1fc9f8f4784d1ca68696e2\
             8ffbab5f75a7f35d"
        );
    }

    #[test]
    fn the_digest_shortcut_equals_the_general_mac() {
        let hmac = HmacSha256::new(b"key");
        let message = sha256(b"message");
        assert_eq!(hmac.mac_of_digest(&message), hmac.mac(&[&message]));
    }

    #[test]
    fn constant_time_comparison_and_hex() {
        assert!(equal_in_constant_time(b"abc", b"abc"));
        assert!(!equal_in_constant_time(b"abc", b"abd"));
        assert!(!equal_in_constant_time(b"abc", b"ab"));
        assert_eq!(from_hex(&to_hex(&[0, 15, 255])), Some(vec![0, 15, 255]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
    }
}
