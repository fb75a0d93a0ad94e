//! A CloudWatch statistic set (Sum, SampleCount, Minimum, Maximum) of one minute or one
//! period, and the percentiles that can be told from it.

/// The upper bound that stands for "above the last bucket" in [`Stats::buckets`].
pub const OVERFLOW_US: u64 = u64::MAX;

/// The statistics of a metric over some minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub sum: f64,
    pub samples: f64,
    pub min: f64,
    pub max: f64,
    /// Latency only: requests per histogram bucket, as (upper bound in microseconds, count),
    /// ascending; the last bound may be [`OVERFLOW_US`].
    pub buckets: Vec<(u64, u64)>,
    /// Every sample as (value, how many times), when the rows merged so far tell them exactly
    /// (a row whose Minimum equals its Maximum, or that has one sample); `None` otherwise.
    pub(crate) values: Option<Vec<(f64, f64)>>,
}

impl Stats {
    /// A statistic set as published or stored, without buckets.
    pub fn new(sum: f64, samples: f64, min: f64, max: f64) -> Stats {
        let values = if min == max {
            Some(vec![(min, samples)])
        } else if samples == 1.0 {
            Some(vec![(sum, 1.0)])
        } else {
            None
        };
        Stats {
            sum,
            samples,
            min,
            max,
            buckets: Vec::new(),
            values,
        }
    }

    /// One gauge reading.
    pub fn sample(value: f64) -> Stats {
        Stats::new(value, 1.0, value, value)
    }

    pub fn average(&self) -> f64 {
        if self.samples > 0.0 {
            self.sum / self.samples
        } else {
            0.0
        }
    }

    /// Adds the samples of `other`.
    pub fn merge(&mut self, other: &Stats) {
        self.sum += other.sum;
        self.samples += other.samples;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.add_buckets(&other.buckets);
        self.values = match (self.values.take(), &other.values) {
            (Some(mut mine), Some(theirs)) => {
                mine.extend_from_slice(theirs);
                Some(mine)
            }
            _ => None,
        };
    }

    /// Adds histogram counts (ascending bounds, as in [`Stats::buckets`]).
    pub fn add_buckets(&mut self, more: &[(u64, u64)]) {
        for &(le, count) in more {
            match self.buckets.binary_search_by_key(&le, |&(b, _)| b) {
                Ok(i) => self.buckets[i].1 += count,
                Err(i) => self.buckets.insert(i, (le, count)),
            }
        }
    }

    /// The `p`th percentile (0 to 100): exact when every sample is known, estimated from the
    /// histogram otherwise (linear within the bucket that holds it, kept within Minimum and
    /// Maximum), and `None` when neither is there (a gauge whose readings varied).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if !(0.0..=100.0).contains(&p) || self.samples <= 0.0 {
            return None;
        }
        if let Some(values) = &self.values {
            return Some(exact_percentile(values, p));
        }
        if self.buckets.is_empty() {
            return None;
        }
        let total: u64 = self.buckets.iter().map(|&(_, c)| c).sum();
        if total == 0 {
            return None;
        }
        let rank = p / 100.0 * total as f64;
        let mut below = 0u64;
        let mut lower = 0.0;
        for &(le, count) in &self.buckets {
            let upper = if le == OVERFLOW_US {
                self.max
            } else {
                le as f64 / 1e6
            };
            if count > 0 && (below + count) as f64 >= rank {
                let within = (rank - below as f64) / count as f64;
                let estimate = lower + (upper - lower) * within;
                return Some(estimate.clamp(self.min, self.max));
            }
            below += count;
            lower = upper;
        }
        Some(self.max)
    }
}

/// The smallest value with at least `p`% of the samples at or below it (nearest rank).
fn exact_percentile(values: &[(f64, f64)], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = sorted.iter().map(|&(_, n)| n).sum();
    let rank = p / 100.0 * total;
    let mut seen = 0.0;
    for &(value, n) in &sorted {
        seen += n;
        if seen >= rank && n > 0.0 {
            return value;
        }
    }
    sorted.last().map_or(0.0, |&(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_sums_and_keeps_extremes() {
        let mut a = Stats::new(3.0, 3.0, 1.0, 1.0);
        a.merge(&Stats::new(5.0, 2.0, 0.5, 4.5));
        assert_eq!((a.sum, a.samples, a.min, a.max), (8.0, 5.0, 0.5, 4.5));
        assert_eq!(a.average(), 1.6);
        assert_eq!(
            a.values, None,
            "the second row's samples are not known one by one"
        );
    }

    #[test]
    fn exact_percentiles_of_known_samples() {
        // A count that is one sample a minute: 1, 2, ... 100 over 100 minutes.
        let mut s = Stats::sample(1.0);
        for v in 2..=100 {
            s.merge(&Stats::new(f64::from(v), 1.0, f64::from(v), f64::from(v)));
        }
        assert_eq!(s.percentile(50.0), Some(50.0));
        assert_eq!(s.percentile(99.0), Some(99.0));
        assert_eq!(s.percentile(100.0), Some(100.0));
        assert_eq!(s.percentile(0.0), Some(1.0));
        assert_eq!(s.percentile(101.0), None);
        // Events are samples of 1: every percentile is 1.
        assert_eq!(Stats::new(7.0, 7.0, 1.0, 1.0).percentile(99.0), Some(1.0));
    }

    #[test]
    fn estimated_percentiles_from_buckets() {
        // 100 requests: 90 at or under 10 ms, 10 between 10 and 100 ms.
        let mut s = Stats::new(1.5, 100.0, 0.002, 0.08);
        s.add_buckets(&[(10_000, 90), (100_000, 10)]);
        let p50 = s.percentile(50.0).unwrap();
        assert!(p50 > 0.002 && p50 <= 0.01, "{p50}");
        let p95 = s.percentile(95.0).unwrap();
        assert!(
            (p95 - 0.055).abs() < 1e-9,
            "halfway into the second bucket: {p95}"
        );
        assert_eq!(s.percentile(100.0), Some(0.08), "never above Maximum");
        // Requests above the last bound are estimated up to Maximum.
        let mut over = Stats::new(20.0, 2.0, 5.0, 15.0);
        over.add_buckets(&[(1_000_000, 0), (OVERFLOW_US, 2)]);
        assert_eq!(over.percentile(100.0), Some(15.0));
    }

    #[test]
    fn a_gauge_that_varied_has_no_percentile() {
        let mut s = Stats::sample(1.0);
        s.merge(&Stats::new(5.0, 2.0, 2.0, 3.0));
        assert_eq!(s.percentile(50.0), None);
    }

    #[test]
    fn buckets_merge_by_bound() {
        let mut s = Stats::new(0.0, 0.0, 0.0, 0.0);
        s.add_buckets(&[(10, 1), (100, 2)]);
        s.add_buckets(&[(50, 1), (100, 1), (OVERFLOW_US, 3)]);
        assert_eq!(
            s.buckets,
            vec![(10, 1), (50, 1), (100, 3), (OVERFLOW_US, 3)]
        );
    }
}
