//! The one-minute time series behind the CloudWatch API: once a minute, aligned on the wall
//! clock's minute, every load balancer's counters are read from the [`Registry`] and the
//! minute's statistics (Sum, SampleCount, Minimum, Maximum, and latency bucket counts for
//! percentiles) are stored from their deltas; gauges are read every [`GAUGE_INTERVAL`].
//! Queries see the stored minutes and the minute under way, as CloudWatch shows partial data.
//!
//! Minutes are kept for [`RETENTION`] (CloudWatch's 15 days at one-minute resolution); older
//! ones are deleted as each minute closes, so storage is bounded by the number of load
//! balancers. A counter that did not move in a minute stores nothing, as CloudWatch has no
//! datapoint for it either; gauges have a row every minute.

mod db;
mod metric;
mod minute;
mod stats;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use metric::{Metric, Unit};
pub use stats::{Stats, OVERFLOW_US};

use crate::metrics::Registry;
use db::Db;
use minute::{OpenMinute, Row};

/// One-minute rows older than this are deleted.
pub const RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);
/// How often gauges are read (six samples a minute, so that Maximum sees short peaks).
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(10);
/// The file in the data dir.
pub const FILE: &str = "metrics.db";

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("metrics database: cannot {what}: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the period must be a positive multiple of 60 seconds, not {0}")]
    Period(i64),
}

impl SeriesError {
    fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> SeriesError {
        move |source| SeriesError::Sql { what, source }
    }
}

/// What to aggregate: one metric of one load balancer (or of all of them added up, as ELB
/// publishes each metric without dimensions too), in periods from `start`.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub metric: Metric,
    /// `None`: every load balancer.
    pub load_balancer: Option<&'a str>,
    /// Seconds since the epoch; rounded down to the minute, inclusive.
    pub start: i64,
    /// Seconds since the epoch, exclusive.
    pub end: i64,
    /// Seconds, a multiple of 60.
    pub period: i64,
}

/// Every load balancer's one-minute series on this node.
pub struct Series {
    registry: Arc<Registry>,
    /// Locked before `db` when both are held: a minute that closes is written before the next
    /// query can miss it.
    open: Mutex<OpenMinute>,
    db: Mutex<Db>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn minute_of(t: i64) -> i64 {
    t.div_euclid(60) * 60
}

impl Series {
    /// The series stored in `path` (created if missing), counting from the registry's
    /// counters as they are now.
    pub fn open(path: &Path, registry: Arc<Registry>) -> Result<Series, SeriesError> {
        Series::open_at(path, registry, now())
    }

    /// [`Series::open`] whose first minute is the one holding `now`.
    pub fn open_at(path: &Path, registry: Arc<Registry>, now: i64) -> Result<Series, SeriesError> {
        Ok(Series::with(Db::open(path)?, registry, now))
    }

    /// A series kept in memory only (tests; a node whose metrics file cannot be opened).
    pub fn in_memory(registry: Arc<Registry>) -> Result<Series, SeriesError> {
        Ok(Series::with(Db::in_memory()?, registry, now()))
    }

    /// [`Series::in_memory`] whose first minute is the one holding `now`.
    pub fn in_memory_at(registry: Arc<Registry>, now: i64) -> Result<Series, SeriesError> {
        Ok(Series::with(Db::in_memory()?, registry, now))
    }

    fn with(db: Db, registry: Arc<Registry>, now: i64) -> Series {
        let open = OpenMinute::new(minute_of(now), &registry);
        Series {
            registry,
            open: Mutex::new(open),
            db: Mutex::new(db),
        }
    }

    fn open_minute(&self) -> MutexGuard<'_, OpenMinute> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the sampler does at `now`: closes the minute under way if `now` is past it
    /// (writing it and deleting what the retention lets go), then reads the gauges.
    pub fn tick_at(&self, now: i64) -> Result<(), SeriesError> {
        let mut open = self.open_minute();
        let minute = minute_of(now);
        let mut result = Ok(());
        if minute > open.start {
            let rows = open.close(&self.registry, minute);
            result = self.write(&rows, minute);
        }
        open.sample_gauges(&self.registry);
        result
    }

    /// Writes the minute so far (a node that stops: its successor adds the rest of the
    /// minute to the same rows) and goes on counting from here.
    pub fn flush_at(&self, now: i64) -> Result<(), SeriesError> {
        let mut open = self.open_minute();
        let start = open.start;
        let rows = open.close(&self.registry, start);
        self.write(&rows, minute_of(now))
    }

    fn write(&self, rows: &[Row], now_minute: i64) -> Result<(), SeriesError> {
        let cutoff = now_minute - RETENTION.as_secs() as i64;
        self.db().write(rows, cutoff)
    }

    /// The statistics of each period of `q` that has data, by the period's start, ascending.
    pub fn statistics(&self, q: &Query<'_>) -> Result<Vec<(i64, Stats)>, SeriesError> {
        if q.period <= 0 || q.period % 60 != 0 {
            return Err(SeriesError::Period(q.period));
        }
        // Nothing is stored before the epoch; clamping keeps the arithmetic in range.
        let start = minute_of(q.start.max(0));
        let mut open = self.open_minute();
        let live: Vec<Row> = if open.start >= start && open.start < q.end {
            open.rows(&self.registry)
                .into_iter()
                .filter(|r| r.metric == q.metric)
                .filter(|r| q.load_balancer.is_none_or(|lb| r.lb == lb))
                .collect()
        } else {
            Vec::new()
        };
        let stored = self.db().minutes(q.metric, q.load_balancer, start, q.end)?;
        drop(open);
        let mut periods: BTreeMap<i64, Stats> = BTreeMap::new();
        let minutes = stored
            .into_iter()
            .chain(live.into_iter().map(|r| (r.minute, r.stats)));
        for (minute, stats) in minutes {
            let period_start = start + (minute - start) / q.period * q.period;
            periods
                .entry(period_start)
                .and_modify(|s| s.merge(&stats))
                .or_insert(stats);
        }
        Ok(periods.into_iter().collect())
    }

    /// Every (load balancer, metric) with data at or after `since` (seconds since the epoch),
    /// the minute under way included.
    pub fn published(&self, since: i64) -> Result<Vec<(String, Metric)>, SeriesError> {
        let mut open = self.open_minute();
        let mut all: Vec<(String, Metric)> = open
            .rows(&self.registry)
            .into_iter()
            .map(|r| (r.lb, r.metric))
            .collect();
        all.extend(self.db().published(since)?);
        drop(open);
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// How many one-minute rows are stored.
    pub fn stored_rows(&self) -> Result<i64, SeriesError> {
        self.db().count()
    }

    /// Runs the sampler on a thread of its own (SQLite blocks) until [`Sampler::stop`]: a tick
    /// at every [`GAUGE_INTERVAL`] of the wall clock, so that minutes close on the minute.
    pub fn start(self: &Arc<Self>) -> Sampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let series = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("fulcrum-metrics".into())
            .spawn(move || series.run(&stopped))
            .map_err(|e| tracing::error!(error = %e, "cannot start the metrics sampler"))
            .ok();
        Sampler {
            stop: Some(stop),
            thread,
        }
    }

    fn run(&self, stopped: &mpsc::Receiver<()>) {
        let every = GAUGE_INTERVAL.as_millis() as u64;
        loop {
            if let Err(e) = self.tick_at(now()) {
                tracing::warn!(error = %e, "metrics: a minute could not be stored");
            }
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let wait = Duration::from_millis(every - since_epoch % every);
            match stopped.recv_timeout(wait) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Err(e) = self.flush_at(now()) {
            tracing::warn!(error = %e, "metrics: the last minute could not be stored");
        }
    }
}

/// The sampler's thread; stopping it stores the minute so far.
#[derive(Debug)]
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Stops the sampler and waits for it to store the minute so far. Blocks briefly (one
    /// SQLite write).
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(test)]
mod tests;
