//! The minute under way: where every load balancer's counters stood when it began, the latency
//! extremes taken so far, and the gauge readings. Its statistics are the counters' deltas
//! from that baseline, so they can be read at any time (a query sees the minute so far) and
//! are final when the minute closes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::metrics::{HistogramSnapshot, LbMetrics, Registry};

use super::metric::{Kind, Metric};
use super::stats::{Stats, OVERFLOW_US};

/// One load balancer's statistics of one metric over one minute (or the part of it so far).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub lb: String,
    pub metric: Metric,
    /// Seconds since the Unix epoch at the start of the minute.
    pub minute: i64,
    pub stats: Stats,
}

/// The metrics that are counters in [`LbMetrics`], in the order of [`Counters`].
const COUNTED: [Metric; 12] = [
    Metric::RequestCount,
    Metric::HttpCodeElb4xx,
    Metric::HttpCodeElb5xx,
    Metric::HttpCodeBackend2xx,
    Metric::HttpCodeBackend3xx,
    Metric::HttpCodeBackend4xx,
    Metric::HttpCodeBackend5xx,
    Metric::BackendConnectionErrors,
    Metric::SpilloverCount,
    Metric::NewConnectionCount,
    Metric::ClientTlsNegotiationErrorCount,
    // Latency's SampleCount, kept with the others so that one read takes them all.
    Metric::Latency,
];

/// The counters of one load balancer at one moment.
#[derive(Debug, Clone)]
struct Reading {
    counters: [u64; COUNTED.len()],
    latency: HistogramSnapshot,
}

impl Reading {
    fn of(m: &LbMetrics) -> Reading {
        let latency = m.latency.snapshot();
        let counters = COUNTED.map(|metric| match metric {
            Metric::RequestCount => m.requests.get(),
            Metric::HttpCodeElb4xx => m.elb_4xx.get(),
            Metric::HttpCodeElb5xx => m.elb_5xx.get(),
            Metric::HttpCodeBackend2xx => m.backend_2xx.get(),
            Metric::HttpCodeBackend3xx => m.backend_3xx.get(),
            Metric::HttpCodeBackend4xx => m.backend_4xx.get(),
            Metric::HttpCodeBackend5xx => m.backend_5xx.get(),
            Metric::BackendConnectionErrors => m.backend_connection_errors.get(),
            Metric::SpilloverCount => m.spillover.get(),
            Metric::NewConnectionCount => m.new_connections.get(),
            Metric::ClientTlsNegotiationErrorCount => m.tls_failed.get(),
            _ => latency.count,
        });
        Reading { counters, latency }
    }
}

/// Where one load balancer's counters stood when the minute began. The `Arc` tells a load
/// balancer's metrics from those of a new one of the same name (deleted and created again),
/// which start at zero.
#[derive(Debug)]
struct Baseline {
    metrics: Arc<LbMetrics>,
    at: Reading,
}

#[derive(Debug)]
pub(crate) struct OpenMinute {
    /// Seconds since the Unix epoch at the start of the minute.
    pub start: i64,
    baselines: BTreeMap<String, Baseline>,
    /// Latency extremes taken from the histograms so far (taking them resets them).
    extremes: BTreeMap<String, (f64, f64)>,
    gauges: BTreeMap<(String, Metric), Stats>,
}

impl OpenMinute {
    /// A minute whose baseline is the counters now: what was counted before is not in it (at
    /// start, nothing that a previous process may already have recorded is counted twice).
    pub fn new(start: i64, registry: &Registry) -> OpenMinute {
        let baselines = registry
            .all()
            .into_iter()
            .map(|(name, metrics)| {
                let at = Reading::of(&metrics);
                // Extremes of what happened before belong to no minute of this series.
                metrics.latency.take_extremes();
                (name, Baseline { metrics, at })
            })
            .collect();
        OpenMinute {
            start,
            baselines,
            extremes: BTreeMap::new(),
            gauges: BTreeMap::new(),
        }
    }

    /// Reads every gauge once.
    pub fn sample_gauges(&mut self, registry: &Registry) {
        let mut add = |lb: &str, metric: Metric, value: u64| {
            let reading = Stats::sample(value as f64);
            self.gauges
                .entry((lb.to_owned(), metric))
                .and_modify(|s| s.merge(&reading))
                .or_insert(reading);
        };
        for g in registry.gauges() {
            add(&g.load_balancer, Metric::HealthyHostCount, g.healthy_hosts);
            add(
                &g.load_balancer,
                Metric::UnHealthyHostCount,
                g.unhealthy_hosts,
            );
            add(
                &g.load_balancer,
                Metric::SurgeQueueLength,
                g.surge_queue_length,
            );
        }
        for (lb, m) in registry.all() {
            add(
                &lb,
                Metric::ActiveConnectionCount,
                m.active_connections.get() as u64,
            );
        }
    }

    /// The statistics of the minute so far. The baseline stays: the minute goes on.
    pub fn rows(&mut self, registry: &Registry) -> Vec<Row> {
        self.read(registry).0
    }

    /// Ends the minute: its statistics; the minute under way is then the one starting at
    /// `next`, whose baseline is where the counters stood when these were read.
    pub fn close(&mut self, registry: &Registry, next: i64) -> Vec<Row> {
        let (rows, readings) = self.read(registry);
        self.baselines = readings
            .into_iter()
            .map(|(name, (metrics, at))| (name, Baseline { metrics, at }))
            .collect();
        self.extremes.clear();
        self.gauges.clear();
        self.start = next;
        rows
    }

    /// The rows from the baseline to now, and what was read now, per load balancer.
    #[allow(clippy::type_complexity)]
    fn read(
        &mut self,
        registry: &Registry,
    ) -> (Vec<Row>, BTreeMap<String, (Arc<LbMetrics>, Reading)>) {
        let mut rows = Vec::new();
        let mut readings = BTreeMap::new();
        let current = registry.all();
        // A load balancer deleted during the minute is gone from the registry; its metrics
        // are still here, with what it counted before it went.
        let gone = self
            .baselines
            .iter()
            .filter(|(name, _)| !current.iter().any(|(n, _)| n == *name))
            .map(|(name, b)| (name.clone(), Arc::clone(&b.metrics)));
        let all: Vec<(String, Arc<LbMetrics>)> = current.iter().cloned().chain(gone).collect();
        for (name, metrics) in all {
            let now = Reading::of(&metrics);
            let base = self
                .baselines
                .get(&name)
                .filter(|b| Arc::ptr_eq(&b.metrics, &metrics))
                .map(|b| &b.at);
            if let Some(taken) = metrics.latency.take_extremes() {
                self.extremes
                    .entry(name.clone())
                    .and_modify(|(lo, hi)| {
                        *lo = lo.min(taken.0);
                        *hi = hi.max(taken.1);
                    })
                    .or_insert(taken);
            }
            rows.extend(self.counter_rows(&name, &now, base));
            if current.iter().any(|(n, _)| *n == name) {
                readings.insert(name, (metrics, now));
            }
        }
        for ((lb, metric), stats) in &self.gauges {
            rows.push(Row {
                lb: lb.clone(),
                metric: *metric,
                minute: self.start,
                stats: stats.clone(),
            });
        }
        (rows, readings)
    }

    /// The rows of one load balancer's counters: none for a counter that did not move.
    fn counter_rows(&self, lb: &str, now: &Reading, base: Option<&Reading>) -> Vec<Row> {
        let mut rows = Vec::new();
        for (i, metric) in COUNTED.into_iter().enumerate() {
            let delta = now.counters[i].saturating_sub(base.map_or(0, |b| b.counters[i]));
            if delta == 0 {
                continue;
            }
            let n = delta as f64;
            let stats = match metric.kind() {
                Kind::Events => Stats::new(n, n, 1.0, 1.0),
                Kind::Latency => self.latency_stats(lb, delta, &now.latency, base),
                _ => Stats::new(n, 1.0, n, n),
            };
            rows.push(Row {
                lb: lb.to_owned(),
                metric,
                minute: self.start,
                stats,
            });
        }
        rows
    }

    fn latency_stats(
        &self,
        lb: &str,
        count: u64,
        now: &HistogramSnapshot,
        base: Option<&Reading>,
    ) -> Stats {
        let base = base.map(|b| &b.latency);
        let sum = (now.sum_seconds - base.map_or(0.0, |b| b.sum_seconds)).max(0.0);
        let average = sum / count as f64;
        // Extremes are taken when rows are read; had they been taken elsewhere, the average
        // is the one value known to lie between them.
        let (min, max) = self.extremes.get(lb).copied().unwrap_or((average, average));
        let mut stats = Stats::new(sum, count as f64, min, max);
        let buckets: Vec<(u64, u64)> = now
            .counts
            .iter()
            .enumerate()
            .filter_map(|(i, &c)| {
                let before = base.and_then(|b| b.counts.get(i)).copied().unwrap_or(0);
                let delta = c.saturating_sub(before);
                let le = now
                    .bounds
                    .get(i)
                    .map_or(OVERFLOW_US, |s| (s * 1e6).round() as u64);
                (delta > 0).then_some((le, delta))
            })
            .collect();
        stats.add_buckets(&buckets);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn find(rows: &[Row], lb: &str, metric: Metric) -> Option<Stats> {
        rows.iter()
            .find(|r| r.lb == lb && r.metric == metric)
            .map(|r| r.stats.clone())
    }

    #[test]
    fn the_first_minute_starts_from_the_counters_as_they_are() {
        let registry = Registry::default();
        let web = registry.lb("web");
        web.requests.add(1000);
        web.latency.observe(Duration::from_secs(9));
        let mut open = OpenMinute::new(0, &registry);
        assert!(open.rows(&registry).is_empty(), "no bogus delta at start");
        web.requests.add(3);
        web.latency.observe(Duration::from_millis(20));
        let rows = open.rows(&registry);
        assert_eq!(
            find(&rows, "web", Metric::RequestCount),
            Some(Stats::new(3.0, 3.0, 1.0, 1.0))
        );
        let latency = find(&rows, "web", Metric::Latency).unwrap();
        assert_eq!(
            (latency.samples, latency.min, latency.max),
            (1.0, 0.02, 0.02)
        );
        assert_eq!(latency.buckets, vec![(25_000, 1)]);
    }

    #[test]
    fn closing_moves_the_baseline() {
        let registry = Registry::default();
        let web = registry.lb("web");
        let mut open = OpenMinute::new(60, &registry);
        web.backend_5xx.add(2);
        web.backend_connection_errors.add(4);
        let rows = open.close(&registry, 120);
        let mut next = open;
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.minute == 60));
        assert_eq!(
            find(&rows, "web", Metric::BackendConnectionErrors),
            Some(Stats::new(4.0, 1.0, 4.0, 4.0)),
            "one sample of the node's count"
        );
        assert!(next.rows(&registry).is_empty());
        web.backend_5xx.inc();
        assert_eq!(
            find(&next.rows(&registry), "web", Metric::HttpCodeBackend5xx).map(|s| s.sum),
            Some(1.0)
        );
    }

    #[test]
    fn a_load_balancer_made_again_starts_at_zero_and_a_deleted_one_keeps_its_last_counts() {
        let registry = Registry::default();
        registry.lb("old").requests.add(10);
        registry.lb("again").requests.add(10);
        let mut open = OpenMinute::new(0, &registry);
        registry.lb("old").requests.add(2);
        registry.retain(|n| n != "old" && n != "again");
        registry.lb("again").requests.add(5);
        let rows = open.close(&registry, 60);
        let mut next = open;
        assert_eq!(
            find(&rows, "old", Metric::RequestCount).map(|s| s.sum),
            Some(2.0)
        );
        assert_eq!(
            find(&rows, "again", Metric::RequestCount).map(|s| s.sum),
            Some(5.0)
        );
        registry.lb("again").requests.add(1);
        let rows = next.rows(&registry);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            find(&rows, "again", Metric::RequestCount).map(|s| s.sum),
            Some(1.0)
        );
    }

    #[test]
    fn extremes_taken_for_a_query_stay_in_the_minute() {
        let registry = Registry::default();
        let web = registry.lb("web");
        let mut open = OpenMinute::new(0, &registry);
        web.latency.observe(Duration::from_millis(300));
        let _ = open.rows(&registry);
        web.latency.observe(Duration::from_millis(100));
        let rows = open.close(&registry, 60);
        let latency = find(&rows, "web", Metric::Latency).unwrap();
        assert_eq!((latency.min, latency.max, latency.samples), (0.1, 0.3, 2.0));
        assert!((latency.average() - 0.2).abs() < 1e-9);
    }
}
