//! Figures from samples: percentiles (nearest rank), medians, and how they are printed.

use std::time::Duration;

/// Latency samples of one tool in one scenario.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new() -> Samples {
        Samples(Vec::new())
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0 < p <= 100) by nearest rank; `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        percentile_sorted(&sorted, p)
    }
}

/// Nearest-rank percentile of an ascending slice: the smallest value with at least `p`
/// percent of the samples at or below it.
pub fn percentile_sorted<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of `values` (the lower one of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

/// `12.3 µs`, `1.25 ms`, `2.10 s`: three significant figures or so.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// `x` over `floor`, as `1.23x`.
pub fn fmt_ratio(x: Duration, floor: Duration) -> String {
    if floor.is_zero() {
        return "?".into();
    }
    format!("{:.2}x", x.as_secs_f64() / floor.as_secs_f64())
}

/// Bytes as `812 B`, `15.2 KB`, `3.40 MB` (powers of 1024).
pub fn fmt_bytes(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs < 1024.0 {
        format!("{bytes:.0} B")
    } else if abs < 1024.0 * 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{:.2} MB", bytes / (1024.0 * 1024.0))
    }
}

/// A rate as `123,456/s`.
pub fn fmt_rate(per_second: f64) -> String {
    format!("{}/s", group_thousands(per_second.round() as u64))
}

/// `1234567` as `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::new();
        assert_eq!(s.percentile(50.0), None);
        for n in (1..=100).rev() {
            s.push(us(n));
        }
        assert_eq!(s.percentile(50.0), Some(us(50)));
        assert_eq!(s.percentile(99.0), Some(us(99)));
        assert_eq!(s.percentile(100.0), Some(us(100)));
        assert_eq!(s.percentile(0.0), Some(us(1)));
        assert_eq!(s.percentile(0.5), Some(us(1)));
        assert_eq!(s.percentile(99.9), Some(us(100)));
    }

    #[test]
    fn percentile_of_a_few() {
        assert_eq!(percentile_sorted(&[7], 99.0), Some(7));
        assert_eq!(percentile_sorted(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile_sorted(&[1, 2], 51.0), Some(2));
        assert_eq!(percentile_sorted(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile_sorted::<u8>(&[], 50.0), None);
    }

    #[test]
    fn medians_skip_non_finite() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_duration(Duration::from_nanos(12_345)), "12.3 µs");
        assert_eq!(fmt_duration(us(1_250)), "1.25 ms");
        assert_eq!(fmt_duration(Duration::from_millis(2_100)), "2.10 s");
        assert_eq!(fmt_ratio(us(30), us(20)), "1.50x");
        assert_eq!(fmt_ratio(us(30), Duration::ZERO), "?");
        assert_eq!(fmt_bytes(812.0), "812 B");
        assert_eq!(fmt_bytes(15.0 * 1024.0 + 205.0), "15.2 KB");
        assert_eq!(fmt_bytes(3.4 * 1024.0 * 1024.0), "3.40 MB");
        assert_eq!(fmt_rate(1234567.4), "1,234,567/s");
        assert_eq!(fmt_rate(999.0), "999/s");
        assert_eq!(fmt_rate(1000.0), "1,000/s");
    }
}
