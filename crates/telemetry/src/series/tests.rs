//! The series driven by hand: counters bumped in a registry, minutes closed at chosen instants.

use super::*;
use crate::metrics::{GaugeSource, LbGauges};
use std::time::Duration;

/// 2026-12-01T00:00:00Z: a whole hour, so that periods of 3600 s start on it.
const T0: i64 = 1_796_083_200;

fn series_at(now: i64) -> (Arc<Registry>, Series) {
    let registry = Arc::new(Registry::default());
    let series = Series::in_memory_at(Arc::clone(&registry), now).unwrap();
    (registry, series)
}

fn query(metric: Metric, lb: Option<&str>, start: i64, end: i64, period: i64) -> Query<'_> {
    Query {
        metric,
        load_balancer: lb,
        start,
        end,
        period,
    }
}

/// The Sum of each period, by the period's start relative to T0.
fn sums(series: &Series, q: &Query<'_>) -> Vec<(i64, f64)> {
    series
        .statistics(q)
        .unwrap()
        .into_iter()
        .map(|(t, s)| (t - T0, s.sum))
        .collect()
}

/// `n` requests in each of the first `minutes` minutes after T0 (minute k gets k + 1
/// requests), each minute closed by a tick in the next.
fn traffic(registry: &Registry, series: &Series, minutes: i64) {
    let web = registry.lb("web");
    for k in 0..minutes {
        web.requests.add(k as u64 + 1);
        series.tick_at(T0 + (k + 1) * 60 + 1).unwrap();
    }
}

#[test]
fn periods_of_one_five_and_sixty_minutes() {
    let (registry, series) = series_at(T0);
    traffic(&registry, &series, 120);
    let web = Some("web");
    let by_minute = sums(&series, &query(Metric::RequestCount, web, T0, T0 + 180, 60));
    assert_eq!(by_minute, vec![(0, 1.0), (60, 2.0), (120, 3.0)]);
    let by_five = sums(
        &series,
        &query(Metric::RequestCount, web, T0, T0 + 600, 300),
    );
    assert_eq!(by_five, vec![(0, 15.0), (300, 40.0)]);
    let by_hour = sums(
        &series,
        &query(Metric::RequestCount, web, T0, T0 + 7200, 3600),
    );
    // 1 + ... + 60, then 61 + ... + 120.
    assert_eq!(by_hour, vec![(0, 1830.0), (3600, 5430.0)]);
}

#[test]
fn start_is_rounded_down_to_the_minute_and_end_is_exclusive() {
    let (registry, series) = series_at(T0);
    traffic(&registry, &series, 5);
    let web = Some("web");
    // 00:01:30 starts at 00:01:00; 00:04:00 leaves out the minute that starts there.
    let got = sums(
        &series,
        &query(Metric::RequestCount, web, T0 + 90, T0 + 240, 60),
    );
    assert_eq!(got, vec![(60, 2.0), (120, 3.0), (180, 4.0)]);
    // An end within a minute takes that minute in.
    let got = sums(
        &series,
        &query(Metric::RequestCount, web, T0 + 60, T0 + 61, 60),
    );
    assert_eq!(got, vec![(60, 2.0)]);
    // Periods start at the rounded start, not at the top of the hour.
    let got = sums(
        &series,
        &query(Metric::RequestCount, web, T0 + 60, T0 + 300, 120),
    );
    assert_eq!(got, vec![(60, 5.0), (180, 9.0)]);
    assert!(matches!(
        series.statistics(&query(Metric::RequestCount, web, T0, T0 + 60, 61)),
        Err(SeriesError::Period(61))
    ));
}

#[test]
fn minutes_without_traffic_have_no_datapoint() {
    let (registry, series) = series_at(T0);
    let web = registry.lb("web");
    web.requests.add(2);
    series.tick_at(T0 + 60).unwrap();
    series.tick_at(T0 + 120).unwrap();
    web.requests.add(3);
    series.tick_at(T0 + 180).unwrap();
    let got = sums(
        &series,
        &query(Metric::RequestCount, Some("web"), T0, T0 + 180, 60),
    );
    assert_eq!(got, vec![(0, 2.0), (120, 3.0)]);
}

#[test]
fn the_statistics_of_each_kind_of_metric() {
    let (registry, series) = series_at(T0);
    let web = registry.lb("web");
    for ms in [10, 20, 30, 40] {
        web.latency.observe(Duration::from_millis(ms));
    }
    web.requests.add(4);
    web.backend_connection_errors.add(3);
    series.tick_at(T0 + 60).unwrap();
    web.latency.observe(Duration::from_millis(200));
    web.requests.add(1);
    web.backend_connection_errors.add(1);
    series.tick_at(T0 + 120).unwrap();
    let one = |metric| {
        let mut got = series
            .statistics(&query(metric, Some("web"), T0, T0 + 120, 120))
            .unwrap();
        assert_eq!(got.len(), 1);
        got.remove(0).1
    };
    let latency = one(Metric::Latency);
    assert_eq!(latency.samples, 5.0);
    assert!((latency.sum - 0.3).abs() < 1e-9);
    assert!((latency.average() - 0.06).abs() < 1e-9);
    assert_eq!((latency.min, latency.max), (0.01, 0.2));
    let p50 = latency.percentile(50.0).unwrap();
    assert!((0.01..=0.05).contains(&p50), "{p50}");
    assert_eq!(latency.percentile(100.0), Some(0.2));

    let requests = one(Metric::RequestCount);
    assert_eq!(
        (requests.sum, requests.samples, requests.min, requests.max),
        (5.0, 5.0, 1.0, 1.0)
    );
    let errors = one(Metric::BackendConnectionErrors);
    assert_eq!(
        (errors.sum, errors.samples, errors.min, errors.max),
        (4.0, 2.0, 1.0, 3.0),
        "one sample per minute"
    );
    assert_eq!(errors.percentile(100.0), Some(3.0));
}

struct FixedGauges(Mutex<Vec<LbGauges>>);

impl GaugeSource for FixedGauges {
    fn gauges(&self) -> Vec<LbGauges> {
        self.0.lock().unwrap().clone()
    }
}

fn gauges(healthy: u64, unhealthy: u64) -> Vec<LbGauges> {
    vec![LbGauges {
        load_balancer: "web".into(),
        healthy_hosts: healthy,
        unhealthy_hosts: unhealthy,
        surge_queue_length: 0,
    }]
}

#[test]
fn gauges_are_sampled_every_tick_and_stored_every_minute() {
    let (registry, series) = series_at(T0);
    let source = Arc::new(FixedGauges(Mutex::new(gauges(2, 0))));
    registry.set_gauge_source(Arc::clone(&source) as Arc<dyn GaugeSource>);
    series.tick_at(T0).unwrap();
    series.tick_at(T0 + 10).unwrap();
    *source.0.lock().unwrap() = gauges(1, 1);
    series.tick_at(T0 + 20).unwrap();
    series.tick_at(T0 + 60).unwrap(); // closes 00:00; first reading of 00:01
    series.tick_at(T0 + 120).unwrap(); // closes 00:01
    let got = series
        .statistics(&query(
            Metric::HealthyHostCount,
            Some("web"),
            T0,
            T0 + 120,
            60,
        ))
        .unwrap();
    assert_eq!(got.len(), 2, "a datapoint every minute: {got:?}");
    let first = &got[0].1;
    assert_eq!((first.samples, first.min, first.max), (3.0, 1.0, 2.0));
    assert!((first.average() - 5.0 / 3.0).abs() < 1e-9);
    assert_eq!(got[1].1.samples, 1.0);
    let unhealthy = series
        .statistics(&query(
            Metric::UnHealthyHostCount,
            Some("web"),
            T0,
            T0 + 60,
            60,
        ))
        .unwrap();
    assert_eq!(unhealthy[0].1.max, 1.0);
}

#[test]
fn the_minute_under_way_is_seen_at_once() {
    let (registry, series) = series_at(T0 + 5);
    let web = registry.lb("web");
    web.requests.add(7);
    web.latency.observe(Duration::from_millis(50));
    let got = sums(
        &series,
        &query(Metric::RequestCount, Some("web"), T0, T0 + 3600, 60),
    );
    assert_eq!(got, vec![(0, 7.0)]);
    let latency = series
        .statistics(&query(Metric::Latency, Some("web"), T0, T0 + 60, 60))
        .unwrap();
    assert_eq!(latency[0].1.max, 0.05);
    // The query did not move the baseline nor lose the extremes: the minute closes whole.
    web.requests.add(1);
    series.tick_at(T0 + 61).unwrap();
    let got = sums(
        &series,
        &query(Metric::RequestCount, Some("web"), T0, T0 + 120, 60),
    );
    assert_eq!(got, vec![(0, 8.0)]);
    let latency = series
        .statistics(&query(Metric::Latency, Some("web"), T0, T0 + 60, 60))
        .unwrap();
    assert_eq!((latency[0].1.min, latency[0].1.max), (0.05, 0.05));
}

#[test]
fn without_a_load_balancer_every_one_is_added_up() {
    let (registry, series) = series_at(T0);
    registry.lb("a").requests.add(2);
    registry.lb("b").requests.add(5);
    series.tick_at(T0 + 60).unwrap();
    registry.lb("b").requests.add(1);
    let got = sums(
        &series,
        &query(Metric::RequestCount, None, T0, T0 + 120, 60),
    );
    assert_eq!(got, vec![(0, 7.0), (60, 1.0)]);
    let mut published = series.published(T0).unwrap();
    published.retain(|(_, m)| *m == Metric::RequestCount);
    assert_eq!(
        published,
        vec![
            ("a".to_owned(), Metric::RequestCount),
            ("b".to_owned(), Metric::RequestCount)
        ]
    );
}

#[test]
fn minutes_older_than_the_retention_are_deleted() {
    let (registry, series) = series_at(T0);
    let web = registry.lb("web");
    web.requests.inc();
    web.latency.observe(Duration::from_millis(1));
    series.tick_at(T0 + 60).unwrap();
    assert_eq!(series.stored_rows().unwrap(), 2);
    let retention = RETENTION.as_secs() as i64;
    // Still there 15 days after its minute (the tick then closes 00:01, which has one)...
    web.requests.inc();
    series.tick_at(T0 + retention).unwrap();
    let all = query(
        Metric::RequestCount,
        Some("web"),
        T0,
        T0 + retention + 60,
        60,
    );
    assert_eq!(series.statistics(&all).unwrap().len(), 2);
    // ... gone a minute later; the metric is no longer listed once nothing is left of it.
    series.tick_at(T0 + retention + 60).unwrap();
    let got = sums(&series, &all);
    assert_eq!(got, vec![(60, 1.0)]);
    // That one, and the gauge ActiveConnectionCount of the two minutes that had a tick.
    assert_eq!(series.stored_rows().unwrap(), 3);
    assert!(series
        .statistics(&query(Metric::Latency, Some("web"), T0, T0 + 60, 60))
        .unwrap()
        .is_empty());
    // Long after, only the gauge's last two minutes are left (15 days back from now, and
    // the minute after).
    series.tick_at(T0 + 2 * retention).unwrap();
    assert_eq!(series.stored_rows().unwrap(), 2);
    assert_eq!(
        series.published(0).unwrap(),
        vec![("web".to_owned(), Metric::ActiveConnectionCount)]
    );
}

#[test]
fn a_restart_adds_to_the_minute_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let first = Arc::new(Registry::default());
    let series = Series::open_at(&path, Arc::clone(&first), T0 + 5).unwrap();
    first.lb("web").requests.add(4);
    series.flush_at(T0 + 30).unwrap();
    drop(series);
    // What a registry counted before the series opened is not this series' to count (the
    // new process's starts at zero; this one has counted already).
    let second = Arc::new(Registry::default());
    second.lb("web").requests.add(100);
    let series = Series::open_at(&path, Arc::clone(&second), T0 + 31).unwrap();
    second.lb("web").requests.add(3);
    let minute = query(Metric::RequestCount, Some("web"), T0, T0 + 60, 60);
    assert_eq!(
        sums(&series, &minute),
        vec![(0, 7.0)],
        "stored part and live part"
    );
    series.tick_at(T0 + 61).unwrap();
    assert_eq!(sums(&series, &minute), vec![(0, 7.0)]);
    drop(series);
    let series = Series::open_at(&path, Arc::new(Registry::default()), T0 + 62).unwrap();
    assert_eq!(sums(&series, &minute), vec![(0, 7.0)], "kept in the file");
}
