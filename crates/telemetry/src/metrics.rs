//! ELB's metrics for each load balancer, as atomics the data plane bumps per request and
//! connection. Nothing here takes a lock on the request path: a load balancer's `LbMetrics` is
//! looked up once, when a snapshot is compiled, and held by its routes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The default latency buckets, in seconds: from a fast instance on the same host to ELB's
/// largest idle timeout's neighbourhood.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open connections).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed).max(0)
    }
}

/// A latency histogram with fixed upper bounds (Prometheus' cumulative `le` buckets are
/// computed when read), its sum and count, and the extremes since they were last taken (for
/// CloudWatch's per-minute Minimum and Maximum).
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in microseconds, ascending.
    bounds_us: Arc<[u64]>,
    /// One count per bound, and one more for values above the last bound.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    count: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds in seconds.
    pub bounds: Vec<f64>,
    /// Non-cumulative counts: one per bound, then the overflow.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    fn new(bounds_us: Arc<[u64]>) -> Self {
        let counts = (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds_us,
            counts,
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds_us.partition_point(|&b| b < us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds_us.iter().map(|&b| b as f64 / 1e6).collect(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }

    /// The smallest and largest values observed since the last call (in seconds), and resets
    /// them; `None` when nothing was observed.
    pub fn take_extremes(&self) -> Option<(f64, f64)> {
        let min = self.min_us.swap(u64::MAX, Ordering::Relaxed);
        let max = self.max_us.swap(0, Ordering::Relaxed);
        (min != u64::MAX).then(|| (min as f64 / 1e6, max as f64 / 1e6))
    }
}

/// Handshakes of one TLS version.
#[derive(Debug, Default)]
pub struct HandshakeCounts {
    pub full: Counter,
    pub resumed: Counter,
}

/// TLS protocol versions a handshake is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 2] = [TlsVersion::Tls12, TlsVersion::Tls13];

    /// As ELB's access logs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

/// The metrics of one load balancer, named as in CloudWatch's `AWS/ELB` namespace where ELB has
/// the metric.
#[derive(Debug)]
pub struct LbMetrics {
    /// RequestCount: HTTP requests completed or attempted (and, for TCP/SSL listeners,
    /// connections made to an instance).
    pub requests: Counter,
    /// HTTPCode_ELB_4XX / HTTPCode_ELB_5XX: answers of the balancer's own.
    pub elb_4xx: Counter,
    pub elb_5xx: Counter,
    /// HTTPCode_Backend_2XX … 5XX: answers of the instances, by class.
    pub backend_2xx: Counter,
    pub backend_3xx: Counter,
    pub backend_4xx: Counter,
    pub backend_5xx: Counter,
    /// BackendConnectionErrors: connections to instances that failed.
    pub backend_connection_errors: Counter,
    /// SpilloverCount: requests refused because an instance's surge queue was full.
    pub spillover: Counter,
    /// Latency: from sending the request to an instance until its response head arrived (for
    /// TCP/SSL listeners, until the connection to the instance was made).
    pub latency: Histogram,
    /// Client connections open now (ALB's ActiveConnectionCount) and made in all (its
    /// NewConnectionCount).
    pub active_connections: Gauge,
    pub new_connections: Counter,
    /// Full and resumed handshakes by version, and handshakes that failed (ALB's
    /// ClientTLSNegotiationErrorCount).
    pub tls12: HandshakeCounts,
    pub tls13: HandshakeCounts,
    pub tls_failed: Counter,
}

impl LbMetrics {
    fn new(bounds_us: Arc<[u64]>) -> Self {
        LbMetrics {
            requests: Counter::default(),
            elb_4xx: Counter::default(),
            elb_5xx: Counter::default(),
            backend_2xx: Counter::default(),
            backend_3xx: Counter::default(),
            backend_4xx: Counter::default(),
            backend_5xx: Counter::default(),
            backend_connection_errors: Counter::default(),
            spillover: Counter::default(),
            latency: Histogram::new(bounds_us),
            active_connections: Gauge::default(),
            new_connections: Counter::default(),
            tls12: HandshakeCounts::default(),
            tls13: HandshakeCounts::default(),
            tls_failed: Counter::default(),
        }
    }

    /// Counts an answer the balancer made itself.
    #[inline]
    pub fn elb_status(&self, status: u16) {
        match status {
            400..=499 => self.elb_4xx.inc(),
            500..=599 => self.elb_5xx.inc(),
            _ => {}
        }
    }

    /// Counts an instance's answer.
    #[inline]
    pub fn backend_status(&self, status: u16) {
        match status {
            200..=299 => self.backend_2xx.inc(),
            300..=399 => self.backend_3xx.inc(),
            400..=499 => self.backend_4xx.inc(),
            500..=599 => self.backend_5xx.inc(),
            _ => {}
        }
    }

    /// Counts a completed TLS handshake.
    #[inline]
    pub fn handshake(&self, version: TlsVersion, resumed: bool) {
        let counts = match version {
            TlsVersion::Tls12 => &self.tls12,
            TlsVersion::Tls13 => &self.tls13,
        };
        if resumed {
            counts.resumed.inc()
        } else {
            counts.full.inc()
        }
    }

    pub fn handshakes(&self, version: TlsVersion) -> &HandshakeCounts {
        match version {
            TlsVersion::Tls12 => &self.tls12,
            TlsVersion::Tls13 => &self.tls13,
        }
    }
}

/// What is sampled rather than counted, per load balancer: read from the data plane when the
/// metrics are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbGauges {
    pub load_balancer: String,
    /// HealthyHostCount / UnHealthyHostCount.
    pub healthy_hosts: u64,
    pub unhealthy_hosts: u64,
    /// SurgeQueueLength: requests waiting for an instance connection now.
    pub surge_queue_length: u64,
}

/// Where gauges come from (the data plane).
pub trait GaugeSource: Send + Sync {
    fn gauges(&self) -> Vec<LbGauges>;
}

/// Every load balancer's metrics on this node.
pub struct Registry {
    bounds_us: Arc<[u64]>,
    lbs: Mutex<BTreeMap<String, Arc<LbMetrics>>>,
    gauges: OnceLock<Arc<dyn GaugeSource>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("bounds_us", &self.bounds_us)
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(DEFAULT_BUCKETS).expect("the default buckets are valid")
    }
}

/// Latency bucket bounds that cannot make a histogram.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadBuckets(pub String);

impl Registry {
    /// A registry whose latency histograms have these upper bounds (seconds, ascending,
    /// positive, at least 1 µs apart).
    pub fn new(buckets: &[f64]) -> Result<Registry, BadBuckets> {
        if buckets.is_empty() || buckets.len() > 64 {
            return Err(BadBuckets(
                "between 1 and 64 latency buckets are needed".into(),
            ));
        }
        let mut bounds = Vec::with_capacity(buckets.len());
        for &b in buckets {
            if !(b.is_finite() && b > 0.0) {
                return Err(BadBuckets(format!(
                    "latency bucket {b} is not a positive number of seconds"
                )));
            }
            let us = (b * 1e6).round() as u64;
            if bounds.last().is_some_and(|&last| us <= last) {
                return Err(BadBuckets(format!(
                    "latency buckets must ascend: {b} does not"
                )));
            }
            bounds.push(us);
        }
        Ok(Registry {
            bounds_us: bounds.into(),
            lbs: Mutex::new(BTreeMap::new()),
            gauges: OnceLock::new(),
        })
    }

    /// The metrics of load balancer `name`, created at zero the first time. Called when a
    /// snapshot is compiled, never per request.
    pub fn lb(&self, name: &str) -> Arc<LbMetrics> {
        let mut lbs = self.lbs.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            lbs.entry(name.to_owned())
                .or_insert_with(|| Arc::new(LbMetrics::new(Arc::clone(&self.bounds_us)))),
        )
    }

    /// Forgets the load balancers `keep` says no to (deleted ones).
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        let mut lbs = self.lbs.lock().unwrap_or_else(|e| e.into_inner());
        lbs.retain(|name, _| keep(name));
    }

    /// Every load balancer's metrics, by name.
    pub fn all(&self) -> Vec<(String, Arc<LbMetrics>)> {
        let lbs = self.lbs.lock().unwrap_or_else(|e| e.into_inner());
        lbs.iter()
            .map(|(name, m)| (name.clone(), Arc::clone(m)))
            .collect()
    }

    /// Says where gauges are read from; the first call wins.
    pub fn set_gauge_source(&self, source: Arc<dyn GaugeSource>) {
        let _ = self.gauges.set(source);
    }

    /// The gauges of every load balancer, now.
    pub fn gauges(&self) -> Vec<LbGauges> {
        self.gauges.get().map(|g| g.gauges()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_puts_values_in_the_first_bucket_that_holds_them() {
        let registry = Registry::new(&[0.001, 0.01]).unwrap();
        let m = registry.lb("web");
        m.latency.observe(Duration::from_micros(1000)); // on the bound: in it
        m.latency.observe(Duration::from_micros(1001));
        m.latency.observe(Duration::from_secs(1));
        let s = m.latency.snapshot();
        assert_eq!(s.counts, vec![1, 1, 1]);
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 1.002001).abs() < 1e-9);
        assert_eq!(m.latency.take_extremes(), Some((0.001, 1.0)));
        assert_eq!(m.latency.take_extremes(), None);
    }

    #[test]
    fn bad_buckets_are_refused() {
        assert!(Registry::new(&[]).is_err());
        assert!(Registry::new(&[0.1, 0.1]).is_err());
        assert!(Registry::new(&[0.2, 0.1]).is_err());
        assert!(Registry::new(&[-1.0]).is_err());
        assert!(Registry::new(&[f64::NAN]).is_err());
    }

    #[test]
    fn one_lb_one_set_of_metrics() {
        let registry = Registry::default();
        registry.lb("a").requests.inc();
        assert_eq!(registry.lb("a").requests.get(), 1);
        registry.retain(|n| n != "a");
        assert_eq!(registry.lb("a").requests.get(), 0);
    }
}
