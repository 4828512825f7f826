//! A latency histogram with bounded relative error, written for the load generator.
//!
//! Values are nanoseconds. A value `v` falls in a bucket chosen by its binary magnitude
//! (`floor(log2 v)`) and, within that magnitude, by the next [`SUB_BUCKET_BITS`] bits below the
//! leading one: every power-of-two range is cut into [`SUB_BUCKETS`] equal slices, so a bucket's
//! width is at most 1/[`SUB_BUCKETS`] of its lower bound (≈3 % relative error). Values below
//! [`SUB_BUCKETS`] ns get a bucket each. A percentile is reported as the upper bound of its
//! bucket, clamped to the largest value recorded, so `p50 <= p99 <= max` always holds.
//!
//! Recording is one array increment, so every worker thread keeps its own histogram and the
//! runner merges them at the end.

use std::time::Duration;

/// Bits of precision kept below a value's leading one.
pub const SUB_BUCKET_BITS: u32 = 5;
/// Slices per power-of-two range.
pub const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Buckets needed to cover every `u64` value.
const BUCKET_COUNT: usize = ((64 - SUB_BUCKET_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// Counts of recorded latencies by bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Invariant: `counts.len() == BUCKET_COUNT` and the counts sum to `total_count`.
    counts: Vec<u64>,
    /// Number of values recorded.
    total_count: u64,
    /// Invariant: the largest value recorded (0 when empty).
    max_nanos: u64,
    /// Invariant: the smallest value recorded (`u64::MAX` when empty).
    min_nanos: u64,
    /// Sum of all values, saturating.
    sum_nanos: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The bucket a value falls in.
fn bucket_of(value_nanos: u64) -> usize {
    if value_nanos < SUB_BUCKETS {
        return value_nanos as usize;
    }
    let magnitude = 63 - value_nanos.leading_zeros(); // >= SUB_BUCKET_BITS
    let shift = magnitude - SUB_BUCKET_BITS;
    let slice = (value_nanos >> shift) - SUB_BUCKETS; // 0..SUB_BUCKETS
    ((shift as u64 + 1) * SUB_BUCKETS + slice) as usize
}

/// The largest value that falls in `bucket`.
fn bucket_upper_bound(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let slice = bucket % SUB_BUCKETS;
    let lower = (SUB_BUCKETS + slice) << shift;
    lower.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKET_COUNT],
            total_count: 0,
            max_nanos: 0,
            min_nanos: u64::MAX,
            sum_nanos: 0,
        }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.record_nanos(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one value in nanoseconds.
    pub fn record_nanos(&mut self, value_nanos: u64) {
        self.counts[bucket_of(value_nanos)] += 1;
        self.total_count += 1;
        self.max_nanos = self.max_nanos.max(value_nanos);
        self.min_nanos = self.min_nanos.min(value_nanos);
        self.sum_nanos = self.sum_nanos.saturating_add(value_nanos);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total_count += other.total_count;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
        self.min_nanos = self.min_nanos.min(other.min_nanos);
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }

    pub fn count(&self) -> u64 {
        self.total_count
    }

    /// Largest value recorded, 0 when empty.
    pub fn max_nanos(&self) -> u64 {
        self.max_nanos
    }

    /// Smallest value recorded, 0 when empty.
    pub fn min_nanos(&self) -> u64 {
        if self.total_count == 0 {
            0
        } else {
            self.min_nanos
        }
    }

    /// Mean of the values recorded, 0 when empty.
    pub fn mean_nanos(&self) -> u64 {
        self.sum_nanos.checked_div(self.total_count).unwrap_or(0)
    }

    /// The value at `quantile` (0.0..=1.0): the upper bound of the bucket holding the
    /// `ceil(quantile * count)`-th smallest value, clamped to `[min, max]`; exactly the minimum
    /// for the first value. 0 when empty.
    pub fn quantile_nanos(&self, quantile: f64) -> u64 {
        assert!(
            (0.0..=1.0).contains(&quantile),
            "quantile must be within 0..=1, found {quantile}"
        );
        if self.total_count == 0 {
            return 0;
        }
        let rank = ((quantile * self.total_count as f64).ceil() as u64).clamp(1, self.total_count);
        if rank == 1 {
            return self.min_nanos;
        }
        let mut seen = 0u64;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper_bound(bucket).clamp(self.min_nanos, self.max_nanos);
            }
        }
        panic!(
            "histogram counts sum to {seen}, below total_count {}",
            self.total_count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lies_within_its_bucket_and_the_error_is_bounded() {
        let mut value = 0u64;
        while value < u64::MAX / 3 {
            let bucket = bucket_of(value);
            let upper = bucket_upper_bound(bucket);
            assert!(
                upper >= value,
                "value {value} above its bucket bound {upper}"
            );
            if bucket > 0 {
                assert!(
                    bucket_upper_bound(bucket - 1) < value,
                    "value {value} also fits bucket {}",
                    bucket - 1
                );
            }
            assert!(
                (upper - value) as f64 <= value as f64 / SUB_BUCKETS as f64,
                "bucket bound {upper} too far from {value}"
            );
            value = value.saturating_add(value / 8 + 1);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKET_COUNT - 1);
        assert_eq!(bucket_upper_bound(BUCKET_COUNT - 1), u64::MAX);
    }

    #[test]
    fn quantiles_of_a_uniform_range_are_close_and_ordered() {
        let mut histogram = Histogram::new();
        for micros in 1..=10_000u64 {
            histogram.record_nanos(micros * 1000);
        }
        let p50 = histogram.quantile_nanos(0.5);
        let p99 = histogram.quantile_nanos(0.99);
        assert!((5_000_000..=5_160_000).contains(&p50), "p50 {p50}");
        assert!((9_900_000..=10_000_000).contains(&p99), "p99 {p99}");
        assert!(p50 <= p99 && p99 <= histogram.max_nanos());
        assert_eq!(histogram.max_nanos(), 10_000_000);
        assert_eq!(histogram.min_nanos(), 1000);
        assert_eq!(histogram.quantile_nanos(1.0), 10_000_000);
        assert_eq!(histogram.quantile_nanos(0.0), 1000);
        assert_eq!(histogram.mean_nanos(), 5_000_500);
    }

    #[test]
    fn merging_equals_recording_into_one() {
        let mut one = Histogram::new();
        let mut left = Histogram::new();
        let mut right = Histogram::new();
        for i in 0..1000u64 {
            let value = i * i * 37 % 1_000_003;
            one.record_nanos(value);
            if i % 3 == 0 {
                left.record_nanos(value);
            } else {
                right.record_nanos(value);
            }
        }
        left.merge(&right);
        assert_eq!(left, one);
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let histogram = Histogram::new();
        assert_eq!(histogram.count(), 0);
        assert_eq!(histogram.quantile_nanos(0.99), 0);
        assert_eq!(histogram.max_nanos(), 0);
        assert_eq!(histogram.min_nanos(), 0);
    }
}
