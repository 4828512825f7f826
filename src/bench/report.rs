//! How results are printed: one line per workload run, and the comparison table.

use std::fmt::Write as _;

use crate::bench::histogram::Histogram;
use crate::bench::watch::FanOutResult;
use crate::bench::workload::WorkloadResult;

/// Nanoseconds as milliseconds with three decimals.
pub fn millis(nanos: u64) -> String {
    format!("{:.3}", nanos as f64 / 1e6)
}

/// `p50 … p99 … max …` in milliseconds.
pub fn latency_summary(latency: &Histogram) -> String {
    format!(
        "p50 {} ms  p99 {} ms  max {} ms",
        millis(latency.quantile_nanos(0.5)),
        millis(latency.quantile_nanos(0.99)),
        millis(latency.max_nanos())
    )
}

/// One line for a closed-loop workload.
pub fn workload_line(result: &WorkloadResult) -> String {
    let mut line = format!(
        "{:<18} {:>9.0} req/s  {}  ({} ok, {} failed, {:.2} s)",
        result.name,
        result.throughput_per_second(),
        latency_summary(&result.latency),
        result.succeeded,
        result.failed_requests,
        result.elapsed.as_secs_f64()
    );
    if result.failed_workers > 0 || result.stalled_connections > 0 {
        let _ = write!(
            line,
            "\n    {} connections accepted but unanswered (re-dialled), {} workers never connected",
            result.stalled_connections, result.failed_workers
        );
    }
    if let Some(error) = &result.first_error {
        let _ = write!(line, "\n    first error: {error}");
    }
    line
}

/// One line for a watch fan-out run.
pub fn fan_out_line(result: &FanOutResult) -> String {
    let mut line = format!(
        "{:<18} {:>9.0} events/s delivered  {} writes x {} watchers: {} delivered, {} missed, \
         {} undelivered at the time limit, {} duplicated, {} unexpected, {} history-cleared, \
         {} watch errors, {} timed out ({:.2} s); writer {}",
        format!("watch fan-out W={}", result.watchers),
        result.delivery_rate_per_second(),
        result.writes_acknowledged,
        result.watchers,
        result.delivered,
        result.missed,
        result.undelivered,
        result.duplicated,
        result.unexpected,
        result.history_cleared,
        result.watch_errors,
        result.timed_out_watchers,
        result.elapsed.as_secs_f64(),
        latency_summary(&result.write_latency)
    );
    if result.stalled_connections > 0 {
        let _ = write!(
            line,
            "\n    {} connections accepted but unanswered (re-dialled)",
            result.stalled_connections
        );
    }
    if let Some(error) = &result.first_error {
        let _ = write!(line, "\n    first error: {error}");
    }
    line
}

/// The median of `values` (mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// `a / b` as text, or `-` when `b` is absent or zero.
pub fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// A plain text table with right-aligned columns (the first column left-aligned).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<String>| {
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i == 0 {
                let _ = write!(out, "{cell:<width$}");
            } else {
                let _ = write!(out, "  {cell:>width$}");
            }
        }
        out.push('\n');
    };
    push_row(header.iter().map(|h| h.to_string()).collect());
    push_row(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        push_row(row.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn ratio_skips_missing_and_zero() {
        assert_eq!(ratio(3.0, Some(2.0)), "1.50");
        assert_eq!(ratio(3.0, Some(0.0)), "-");
        assert_eq!(ratio(3.0, None), "-");
    }

    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["name", "n"],
            &[
                vec!["a".into(), "100".into()],
                vec!["long name".into(), "1".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name         n");
        assert_eq!(lines[2], "a          100");
        assert_eq!(lines[3], "long name    1");
    }
}
