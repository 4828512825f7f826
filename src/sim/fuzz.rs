//! Bytes -> simulator schedule (for cargo-fuzz and corpus replay).

/// Placeholder replaced below.
#[doc(hidden)]
pub fn fuzz_sim_schedule(_data: &[u8]) {}
