//! Leader and server statistics for `/v2/stats/leader` and `/v2/stats/self`, computed the way
//! etcd computes them: per follower, the round-trip latency of heartbeats and appends (current,
//! average, standard deviation, minimum, maximum, in milliseconds) and counts of successful and
//! failed exchanges; per member, the append requests sent and received; the WAL's sync
//! latencies for `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::api::json::push_string;
use crate::node::ids::format_id;

/// Upper bounds of the WAL sync latency buckets, in microseconds: etcd's
/// `etcd_disk_wal_fsync_duration_seconds` buckets (1 ms doubling up to 8.192 s).
pub const SYNC_BUCKET_BOUNDS_US: [u64; 14] = [
    1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000, 1_024_000,
    2_048_000, 4_096_000, 8_192_000,
];

/// A latency histogram the Raft loop writes and `/metrics` reads without a lock.
#[derive(Debug, Default)]
pub struct SyncHistogram {
    /// Invariant: `bucket_counts[i]` counts observations <= `SYNC_BUCKET_BOUNDS_US[i]` and
    /// > the previous bound (not cumulative; `/metrics` sums them up).
    bucket_counts: [AtomicU64; SYNC_BUCKET_BOUNDS_US.len()],
    /// Observations above the last bound.
    overflow_count: AtomicU64,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl SyncHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        match SYNC_BUCKET_BOUNDS_US
            .iter()
            .position(|bound| elapsed_us <= *bound)
        {
            Some(bucket) => self.bucket_counts[bucket].fetch_add(1, Ordering::Relaxed),
            None => self.overflow_count.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_us.fetch_add(elapsed_us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the Prometheus text form of the histogram named `name` to `out`.
    pub fn render_prometheus(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (bound_us, count) in SYNC_BUCKET_BOUNDS_US.iter().zip(&self.bucket_counts) {
            cumulative += count.load(Ordering::Relaxed);
            let le = *bound_us as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.overflow_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum_seconds = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum_seconds}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// Latency and counts for one follower, as the leader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerStats {
    pub current_ms: f64,
    pub average_ms: f64,
    /// Invariant: the mean of the squared latencies, so the deviation needs no history.
    average_square_ms: f64,
    pub standard_deviation_ms: f64,
    /// 2^63 until the first success (etcd's initial value).
    pub minimum_ms: f64,
    pub maximum_ms: f64,
    pub fail: u64,
    pub success: u64,
}

impl Default for FollowerStats {
    fn default() -> Self {
        FollowerStats {
            current_ms: 0.0,
            average_ms: 0.0,
            average_square_ms: 0.0,
            standard_deviation_ms: 0.0,
            minimum_ms: (1u64 << 63) as f64,
            maximum_ms: 0.0,
            fail: 0,
            success: 0,
        }
    }
}

impl FollowerStats {
    /// Records one successful round trip.
    pub fn success(&mut self, latency_ms: f64) {
        let count = self.success as f64;
        let total = count * self.average_ms;
        let total_square = count * self.average_square_ms;
        self.success += 1;
        self.current_ms = latency_ms;
        self.maximum_ms = self.maximum_ms.max(latency_ms);
        self.minimum_ms = self.minimum_ms.min(latency_ms);
        let n = self.success as f64;
        self.average_ms = (total + latency_ms) / n;
        self.average_square_ms = (total_square + latency_ms * latency_ms) / n;
        self.standard_deviation_ms = (self.average_square_ms - self.average_ms * self.average_ms)
            .max(0.0)
            .sqrt();
    }

    pub fn failure(&mut self) {
        self.fail += 1;
    }
}

/// What the leader tracks about its followers, plus this member's append counters.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Invariant: only members that are followers of this leader; cleared on leader change.
    pub followers: BTreeMap<u64, FollowerStats>,
    /// When the oldest unanswered heartbeat or append to each follower was sent.
    outstanding: BTreeMap<u64, Instant>,
    pub send_append_requests: u64,
    pub recv_append_requests: u64,
}

impl PeerStats {
    /// A new term of leadership starts with fresh follower statistics.
    pub fn reset_followers(&mut self) {
        self.followers.clear();
        self.outstanding.clear();
    }

    pub fn sent_to(&mut self, follower: u64, at: Instant, is_append: bool) {
        if is_append {
            self.send_append_requests += 1;
        }
        self.followers.entry(follower).or_default();
        self.outstanding.entry(follower).or_insert(at);
    }

    pub fn answered_by(&mut self, follower: u64, at: Instant) {
        if let Some(sent) = self.outstanding.remove(&follower) {
            let latency_ms = at.duration_since(sent).as_secs_f64() * 1000.0;
            self.followers
                .entry(follower)
                .or_default()
                .success(latency_ms);
        }
    }

    pub fn unreachable(&mut self, follower: u64) {
        self.outstanding.remove(&follower);
        self.followers.entry(follower).or_default().failure();
    }

    /// `/v2/stats/leader`'s body (no newline).
    pub fn leader_json(&self, leader_id: u64, members: &[u64]) -> String {
        let mut out = String::from("{\"leader\":");
        push_string(&mut out, &format_id(leader_id));
        out.push_str(",\"followers\":{");
        let default = FollowerStats::default();
        let mut first = true;
        for id in members.iter().filter(|id| **id != leader_id) {
            let stats = self.followers.get(id).unwrap_or(&default);
            if !first {
                out.push(',');
            }
            first = false;
            push_string(&mut out, &format_id(*id));
            out.push_str(&format!(
                ":{{\"latency\":{{\"current\":{},\"average\":{},\"standardDeviation\":{},\"minimum\":{},\"maximum\":{}}},\"counts\":{{\"fail\":{},\"success\":{}}}}}",
                go_float(stats.current_ms),
                go_float(stats.average_ms),
                go_float(stats.standard_deviation_ms),
                go_float(stats.minimum_ms),
                go_float(stats.maximum_ms),
                stats.fail,
                stats.success
            ));
        }
        out.push_str("}}");
        out
    }
}

/// A float as Go's JSON encoder writes one of ordinary size (shortest round-trip digits, no
/// exponent below 1e21).
fn go_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e21 {
        // Integral values print every digit (Go: 9223372036854775808, not ...776000).
        format!("{}", value as i128)
    } else if value.is_finite() {
        format!("{value}")
    } else {
        "0".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_statistics_follow_etcds_formulas() {
        let mut stats = FollowerStats::default();
        assert_eq!(go_float(stats.minimum_ms), "9223372036854775808");
        for latency in [1.0, 2.0, 3.0, 4.0] {
            stats.success(latency);
        }
        assert_eq!(
            (
                stats.success,
                stats.current_ms,
                stats.minimum_ms,
                stats.maximum_ms
            ),
            (4, 4.0, 1.0, 4.0)
        );
        assert!((stats.average_ms - 2.5).abs() < 1e-12);
        assert!((stats.standard_deviation_ms - 1.25f64.sqrt()).abs() < 1e-12);
        stats.failure();
        assert_eq!(stats.fail, 1);
    }

    #[test]
    fn leader_json_lists_every_follower_with_defaults_before_any_answer() {
        let mut peers = PeerStats::default();
        let start = Instant::now();
        peers.sent_to(2, start, true);
        peers.answered_by(2, start + std::time::Duration::from_millis(3));
        let json = peers.leader_json(1, &[1, 2, 3]);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["leader"], "1");
        assert_eq!(parsed["followers"]["2"]["counts"]["success"], 1);
        assert!(
            parsed["followers"]["2"]["latency"]["current"]
                .as_f64()
                .unwrap()
                >= 3.0
        );
        assert_eq!(parsed["followers"]["3"]["counts"]["success"], 0);
        assert_eq!(peers.send_append_requests, 1);
    }

    #[test]
    fn sync_histogram_renders_cumulative_buckets_sum_and_count() {
        let histogram = SyncHistogram::default();
        histogram.observe(Duration::from_micros(150));
        histogram.observe(Duration::from_micros(1_500));
        histogram.observe(Duration::from_secs(20));
        let mut out = String::new();
        histogram.render_prometheus("wal_sync_seconds", "help text", &mut out);
        assert!(out
            .starts_with("# HELP wal_sync_seconds help text\n# TYPE wal_sync_seconds histogram\n"));
        assert!(
            out.contains("wal_sync_seconds_bucket{le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("wal_sync_seconds_bucket{le=\"0.002\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("wal_sync_seconds_bucket{le=\"8.192\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("wal_sync_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("wal_sync_seconds_sum 20.00165\n"), "{out}");
        assert!(out.ends_with("wal_sync_seconds_count 3\n"), "{out}");
    }
}
