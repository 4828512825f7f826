//! Password hashing for v2 auth users, and the cache that keeps per-request checks cheap.
//!
//! etcd stores bcrypt hashes (cost 10). We have no bcrypt crate and may not add one, so a
//! password is stored as PBKDF2-HMAC-SHA-256 (RFC 8018; SHA-256 and HMAC written in
//! [`super::digest`]) with a random 16-byte salt, as one string:
//!
//! ```text
//! pbkdf2-sha256$<iterations, decimal>$<salt, 32 hex digits>$<derived key, 64 hex digits>
//! ```
//!
//! The iteration count is part of the string, so it can be raised later without breaking stored
//! users. [`HASH_ITERATIONS`] costs about as much CPU as bcrypt's default cost in a release
//! build (tens of milliseconds), so offline guessing from a stolen store is slow in the same
//! way (debug builds use fewer iterations; see the constant). The salt comes from
//! `/dev/urandom` (falling back to a hash of the clock, the process ID and a counter where that
//! device is missing), so the same password hashes differently for every user and every
//! change, as with bcrypt.
//!
//! Checking a password compares derived keys in constant time. Because HTTP Basic auth sends
//! the password with every `/v2/keys` request, a successful check is remembered: the cache maps
//! a stored hash string (unique: it contains its salt) to HMAC-SHA-256 of the accepted password
//! under a key drawn at process start, at most [`VERIFIED_CACHE_ENTRIES`] entries, oldest
//! evicted first. A later request with the same password then costs one HMAC and a
//! constant-time comparison. Failed checks are never cached and never answered from the
//! cache, so guessing online pays the full PBKDF2 cost every time (as every etcd v2 request
//! pays bcrypt). A password change writes a new hash string, so old entries simply stop
//! matching. The cache lives only in memory and never leaves the process.
//!
//! Measured (release build, one node, sequential keep-alive GETs from Python on the shared
//! 2-core machine): p50 156 µs without auth, 161 µs with auth enabled and alice's Basic
//! credentials checked on every request; creating a user (one hash and its writes) 93 ms.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::digest::{
    equal_in_constant_time, from_hex, pbkdf2_sha256, sha256, to_hex, HmacSha256, DIGEST_BYTES,
};

/// PBKDF2 iterations for newly hashed passwords: about 80 ms of one core on the reference
/// machine in a release build (bcrypt cost 10 is 50-80 ms). Debug builds, which run the test
/// suites and are 30-40 times slower at this loop, use 1 000 so that a test creating a few
/// users stays fast; the count travels with each hash, so either build checks the other's.
pub const HASH_ITERATIONS: u32 = if cfg!(debug_assertions) {
    1_000
} else {
    60_000
};

/// The most stored hashes whose accepted password is remembered.
pub const VERIFIED_CACHE_ENTRIES: usize = 1024;

const SCHEME: &str = "pbkdf2-sha256";
const SALT_BYTES: usize = 16;

/// Hashes `password` with a fresh salt and [`HASH_ITERATIONS`].
pub fn hash_password(password: &str) -> String {
    hash_password_with(password, &random_bytes::<SALT_BYTES>(), HASH_ITERATIONS)
}

/// Hashes `password` with this salt and iteration count (the stored format above).
pub fn hash_password_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut derived = [0u8; DIGEST_BYTES];
    pbkdf2_sha256(password.as_bytes(), salt, iterations, &mut derived);
    format!(
        "{SCHEME}${iterations}${}${}",
        to_hex(salt),
        to_hex(&derived)
    )
}

/// A stored hash string, split into its parts.
struct StoredHash {
    iterations: u32,
    salt: Vec<u8>,
    derived: Vec<u8>,
}

fn parse_stored_hash(stored: &str) -> Option<StoredHash> {
    let mut parts = stored.split('$');
    if parts.next()? != SCHEME {
        return None;
    }
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = from_hex(parts.next()?)?;
    let derived = from_hex(parts.next()?)?;
    if parts.next().is_some() || iterations == 0 || derived.len() != DIGEST_BYTES {
        return None;
    }
    Some(StoredHash {
        iterations,
        salt,
        derived,
    })
}

/// Whether `password` is the one `stored` was made from. A malformed stored string matches
/// nothing.
pub fn check_password(stored: &str, password: &str) -> bool {
    check_with_cache(verified_cache(), stored, password)
}

fn check_with_cache(cache: &VerifiedCache, stored: &str, password: &str) -> bool {
    let fingerprint = cache.fingerprint_key.mac(&[password.as_bytes()]);
    // A remembered fingerprint answers "yes" cheaply. A mismatch is not answered from the
    // cache: it falls through to the full derivation, so a wrong guess always costs PBKDF2.
    if let Some(known) = cache.lookup(stored) {
        if equal_in_constant_time(&known, &fingerprint) {
            return true;
        }
    }
    let Some(parsed) = parse_stored_hash(stored) else {
        return false;
    };
    #[cfg(test)]
    tests::FULL_CHECKS.with(|count| count.set(count.get() + 1));
    let mut derived = [0u8; DIGEST_BYTES];
    pbkdf2_sha256(
        password.as_bytes(),
        &parsed.salt,
        parsed.iterations,
        &mut derived,
    );
    let matches = equal_in_constant_time(&derived, &parsed.derived);
    if matches {
        cache.remember(stored, fingerprint);
    }
    matches
}

/// Stored hash strings whose accepted password is known, as a keyed fingerprint.
struct VerifiedCache {
    /// Keyed with a per-process random key, so the fingerprints are useless outside it.
    fingerprint_key: HmacSha256,
    /// Invariant: `entries` and `order` hold the same keys, at most `capacity` of them.
    state: Mutex<CacheState>,
    capacity: usize,
}

#[derive(Default)]
struct CacheState {
    entries: std::collections::BTreeMap<String, [u8; DIGEST_BYTES]>,
    /// Insertion order, oldest first.
    order: VecDeque<String>,
}

impl VerifiedCache {
    fn new(capacity: usize) -> VerifiedCache {
        VerifiedCache {
            fingerprint_key: HmacSha256::new(&random_bytes::<32>()),
            state: Mutex::new(CacheState::default()),
            capacity,
        }
    }

    fn lookup(&self, stored: &str) -> Option<[u8; DIGEST_BYTES]> {
        self.state.lock().entries.get(stored).copied()
    }

    fn remember(&self, stored: &str, fingerprint: [u8; DIGEST_BYTES]) {
        let mut state = self.state.lock();
        if state
            .entries
            .insert(stored.to_string(), fingerprint)
            .is_some()
        {
            return;
        }
        state.order.push_back(stored.to_string());
        while state.order.len() > self.capacity {
            let oldest = state.order.pop_front().expect("order is not empty");
            state.entries.remove(&oldest);
        }
        assert_eq!(
            state.entries.len(),
            state.order.len(),
            "verified-password cache: map and eviction order disagree"
        );
    }
}

fn verified_cache() -> &'static VerifiedCache {
    static CACHE: OnceLock<VerifiedCache> = OnceLock::new();
    CACHE.get_or_init(|| VerifiedCache::new(VERIFIED_CACHE_ENTRIES))
}

/// `N` unpredictable bytes: from `/dev/urandom`, or, where that cannot be read, a SHA-256 of
/// the clock, the process ID, a counter and a stack address.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out));
    if read.is_ok() {
        return out;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut filled = 0;
    while filled < N {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let local = 0u8;
        let seed = format!(
            "{nanos}/{}/{}/{:p}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &local
        );
        let block = sha256(seed.as_bytes());
        let take = (N - filled).min(block.len());
        out[filled..filled + take].copy_from_slice(&block[..take]);
        filled += take;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// PBKDF2 derivations run by `check_password` on this thread.
        pub static FULL_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn full_checks() -> u64 {
        FULL_CHECKS.with(|count| count.get())
    }

    #[test]
    fn only_the_right_password_is_answered_from_the_cache() {
        let cache = VerifiedCache::new(8);
        let stored = hash_password_with("right", b"only-right-salt!", 5);
        let start = full_checks();
        assert!(!check_with_cache(&cache, &stored, "guess"));
        assert_eq!(full_checks(), start + 1);
        assert!(
            cache.lookup(&stored).is_none(),
            "failures are not remembered"
        );
        assert!(check_with_cache(&cache, &stored, "right"));
        assert_eq!(full_checks(), start + 2, "first success derives");
        assert!(check_with_cache(&cache, &stored, "right"));
        assert_eq!(
            full_checks(),
            start + 2,
            "a second success is served by the cache"
        );
        assert!(!check_with_cache(&cache, &stored, "guess"));
        assert_eq!(
            full_checks(),
            start + 3,
            "a wrong guess still pays a derivation"
        );
    }

    #[test]
    fn hashes_are_salted_and_check() {
        let a = hash_password_with("secret", b"0123456789abcdef", 10);
        assert!(a.starts_with("pbkdf2-sha256$10$30313233343536373839616263646566$"));
        assert!(check_password(&a, "secret"));
        assert!(!check_password(&a, "Secret"));
        assert!(!check_password(&a, ""));
        let b = hash_password_with("secret", b"fedcba9876543210", 10);
        assert_ne!(a, b, "a different salt must give a different hash");
        assert!(check_password(&b, "secret"));
    }

    #[test]
    fn fresh_hashes_use_random_salts() {
        let a = hash_password("pw");
        let b = hash_password("pw");
        assert_ne!(a, b);
        assert!(check_password(&a, "pw") && check_password(&b, "pw"));
        assert!(a.starts_with(&format!("pbkdf2-sha256${HASH_ITERATIONS}$")));
    }

    #[test]
    fn malformed_stored_hashes_match_nothing() {
        for stored in [
            "",
            "pbkdf2-sha256",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$10$zz$00",
            "bcrypt$10$00$00",
            "pbkdf2-sha256$10$00$0000",
            "$2a$10$abcdefghijklmnopqrstuv",
        ] {
            assert!(!check_password(stored, ""), "{stored:?}");
            assert!(!check_password(stored, "x"), "{stored:?}");
        }
    }

    #[test]
    fn the_cache_stays_bounded_and_evicts_the_oldest() {
        let cache = VerifiedCache::new(4);
        let stored: Vec<String> = (0..6)
            .map(|n| hash_password_with("p", format!("salt-{n}").as_bytes(), 1))
            .collect();
        for hash in &stored {
            assert!(check_with_cache(&cache, hash, "p"));
        }
        assert_eq!(cache.state.lock().entries.len(), 4);
        assert!(cache.lookup(&stored[0]).is_none() && cache.lookup(&stored[1]).is_none());
        assert!(stored[2..].iter().all(|hash| cache.lookup(hash).is_some()));
        let start = full_checks();
        assert!(
            check_with_cache(&cache, &stored[0], "p"),
            "evicted entries recheck"
        );
        assert_eq!(full_checks(), start + 1);
        assert!(!check_with_cache(&cache, &stored[5], "q"));
    }

    #[test]
    fn the_process_cache_serves_check_password() {
        let stored = hash_password_with("pw", b"process-cache-ok", 3);
        assert!(check_password(&stored, "pw"));
        assert!(verified_cache().lookup(&stored).is_some());
        assert!(check_password(&stored, "pw"));
        assert!(!check_password(&stored, "nope"));
    }
}
