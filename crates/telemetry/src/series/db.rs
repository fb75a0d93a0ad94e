//! The minute rows in SQLite (`DIR/metrics.db`, apart from the configuration store): one row
//! per (metric, load balancer, minute) with its statistic set, latency bucket counts beside
//! them, and which metrics each load balancer has published lately (for ListMetrics).
//!
//! Rows are merged by addition when one is written for a minute that already has one: two
//! processes on the same data dir during an upgrade each count their own traffic, and a
//! process that stops writes the part of the minute it saw, which its successor completes.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::metric::Metric;
use super::minute::Row;
use super::stats::{Stats, OVERFLOW_US};
use super::SeriesError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS minutes (
    metric  TEXT    NOT NULL,
    lb      TEXT    NOT NULL,
    minute  INTEGER NOT NULL,
    sum     REAL    NOT NULL,
    samples REAL    NOT NULL,
    min     REAL    NOT NULL,
    max     REAL    NOT NULL,
    PRIMARY KEY (metric, lb, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latency_buckets (
    lb     TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    le_us  INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (lb, minute, le_us)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS published (
    metric      TEXT    NOT NULL,
    lb          TEXT    NOT NULL,
    last_minute INTEGER NOT NULL,
    PRIMARY KEY (metric, lb)
) WITHOUT ROWID;
";

/// SQLite's INTEGER is signed: the overflow bucket is stored as its largest value.
const OVERFLOW_STORED: i64 = i64::MAX;

pub(crate) struct Db(Connection);

impl Db {
    pub fn open(path: &Path) -> Result<Db, SeriesError> {
        let conn = Connection::open(path).map_err(SeriesError::sql("open the metrics database"))?;
        // Two processes share the file during an upgrade: the other's write is waited for.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(SeriesError::sql("set the busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(SeriesError::sql("turn on WAL"))?;
        // A minute lost to a power cut is acceptable; a sync per minute per write is not needed.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(SeriesError::sql("set synchronous"))?;
        Db::init(conn)
    }

    pub fn in_memory() -> Result<Db, SeriesError> {
        let conn =
            Connection::open_in_memory().map_err(SeriesError::sql("open an in-memory database"))?;
        Db::init(conn)
    }

    fn init(conn: Connection) -> Result<Db, SeriesError> {
        conn.execute_batch(SCHEMA)
            .map_err(SeriesError::sql("create the tables"))?;
        Ok(Db(conn))
    }

    /// Adds rows, and deletes what is older than `cutoff` (seconds since the epoch), in one
    /// transaction.
    pub fn write(&mut self, rows: &[Row], cutoff: i64) -> Result<(), SeriesError> {
        let tx = self
            .0
            .transaction()
            .map_err(SeriesError::sql("begin a write"))?;
        {
            let mut minute = tx
                .prepare_cached(
                    "INSERT INTO minutes (metric, lb, minute, sum, samples, min, max)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (metric, lb, minute) DO UPDATE SET
                        sum = sum + excluded.sum,
                        samples = samples + excluded.samples,
                        min = min(min, excluded.min),
                        max = max(max, excluded.max)",
                )
                .map_err(SeriesError::sql("prepare the minute insert"))?;
            let mut bucket = tx
                .prepare_cached(
                    "INSERT INTO latency_buckets (lb, minute, le_us, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (lb, minute, le_us) DO UPDATE SET count = count + excluded.count",
                )
                .map_err(SeriesError::sql("prepare the bucket insert"))?;
            let mut published = tx
                .prepare_cached(
                    "INSERT INTO published (metric, lb, last_minute) VALUES (?1, ?2, ?3)
                     ON CONFLICT (metric, lb) DO UPDATE SET
                        last_minute = max(last_minute, excluded.last_minute)",
                )
                .map_err(SeriesError::sql("prepare the published insert"))?;
            for r in rows {
                let s = &r.stats;
                minute
                    .execute(params![
                        r.metric.name(),
                        r.lb,
                        r.minute,
                        s.sum,
                        s.samples,
                        s.min,
                        s.max
                    ])
                    .map_err(SeriesError::sql("write a minute"))?;
                for &(le, count) in &s.buckets {
                    bucket
                        .execute(params![r.lb, r.minute, stored_bound(le), count as i64])
                        .map_err(SeriesError::sql("write a latency bucket"))?;
                }
                published
                    .execute(params![r.metric.name(), r.lb, r.minute])
                    .map_err(SeriesError::sql("note a published metric"))?;
            }
            // By (metric, load balancer), so that each delete is a range of the primary key
            // rather than a scan of the table.
            let pairs: Vec<(String, String)> = {
                let mut q = tx
                    .prepare_cached("SELECT metric, lb FROM published")
                    .map_err(SeriesError::sql("prepare the retention read"))?;
                let pairs = q
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(SeriesError::sql("read published metrics"))?
                    .collect::<Result<_, _>>()
                    .map_err(SeriesError::sql("read published metrics"))?;
                pairs
            };
            let mut expire = tx
                .prepare_cached("DELETE FROM minutes WHERE metric = ?1 AND lb = ?2 AND minute < ?3")
                .map_err(SeriesError::sql("prepare the retention delete"))?;
            let mut expire_buckets = tx
                .prepare_cached("DELETE FROM latency_buckets WHERE lb = ?1 AND minute < ?2")
                .map_err(SeriesError::sql("prepare the retention delete"))?;
            for (metric, lb) in &pairs {
                expire
                    .execute(params![metric, lb, cutoff])
                    .map_err(SeriesError::sql("delete old minutes"))?;
                if metric == Metric::Latency.name() {
                    expire_buckets
                        .execute(params![lb, cutoff])
                        .map_err(SeriesError::sql("delete old latency buckets"))?;
                }
            }
            tx.execute("DELETE FROM published WHERE last_minute < ?1", [cutoff])
                .map_err(SeriesError::sql("forget metrics not published lately"))?;
        }
        tx.commit().map_err(SeriesError::sql("commit a write"))
    }

    /// The stored minutes of `metric` in `[start, end)`, of one load balancer or of all, as
    /// (minute, statistics); Latency's come with their buckets.
    pub fn minutes(
        &self,
        metric: Metric,
        lb: Option<&str>,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Stats)>, SeriesError> {
        let lbs = match lb {
            Some(lb) => vec![lb.to_owned()],
            None => self.load_balancers(metric)?,
        };
        let mut out = Vec::new();
        let mut q = self
            .0
            .prepare_cached(
                "SELECT minute, sum, samples, min, max FROM minutes
                 WHERE metric = ?1 AND lb = ?2 AND minute >= ?3 AND minute < ?4",
            )
            .map_err(SeriesError::sql("prepare the minute read"))?;
        let mut b = self
            .0
            .prepare_cached(
                "SELECT minute, le_us, count FROM latency_buckets
                 WHERE lb = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute, le_us",
            )
            .map_err(SeriesError::sql("prepare the bucket read"))?;
        for lb in &lbs {
            let first = out.len();
            let rows = q
                .query_map(params![metric.name(), lb, start, end], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        Stats::new(row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?),
                    ))
                })
                .map_err(SeriesError::sql("read minutes"))?;
            for row in rows {
                out.push(row.map_err(SeriesError::sql("read a minute"))?);
            }
            if metric != Metric::Latency {
                continue;
            }
            let buckets = b
                .query_map(params![lb, start, end], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .map_err(SeriesError::sql("read latency buckets"))?;
            for bucket in buckets {
                let (minute, le, count) = bucket.map_err(SeriesError::sql("read a bucket"))?;
                if let Some((_, stats)) = out[first..].iter_mut().find(|(m, _)| *m == minute) {
                    stats.add_buckets(&[(loaded_bound(le), u64::try_from(count).unwrap_or(0))]);
                }
            }
        }
        Ok(out)
    }

    /// The load balancers that published `metric` within the retention.
    fn load_balancers(&self, metric: Metric) -> Result<Vec<String>, SeriesError> {
        let mut q = self
            .0
            .prepare_cached("SELECT lb FROM published WHERE metric = ?1")
            .map_err(SeriesError::sql("prepare the published read"))?;
        let lbs = q
            .query_map([metric.name()], |row| row.get(0))
            .map_err(SeriesError::sql("read published metrics"))?
            .collect::<Result<_, _>>()
            .map_err(SeriesError::sql("read published metrics"))?;
        Ok(lbs)
    }

    /// Every (load balancer, metric) stored with a minute at or after `since`.
    pub fn published(&self, since: i64) -> Result<Vec<(String, Metric)>, SeriesError> {
        let mut q = self
            .0
            .prepare_cached("SELECT lb, metric FROM published WHERE last_minute >= ?1")
            .map_err(SeriesError::sql("prepare the published read"))?;
        let rows = q
            .query_map([since], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(SeriesError::sql("read published metrics"))?;
        let mut out = Vec::new();
        for row in rows {
            let (lb, name) = row.map_err(SeriesError::sql("read a published metric"))?;
            // A name a later version stopped publishing is skipped, not an error.
            if let Some(metric) = Metric::from_name(&name) {
                out.push((lb, metric));
            }
        }
        Ok(out)
    }

    /// How many minute rows are stored (tests, and a look at the retention).
    pub fn count(&self) -> Result<i64, SeriesError> {
        self.0
            .query_row("SELECT count(*) FROM minutes", [], |row| row.get(0))
            .optional()
            .map_err(SeriesError::sql("count minutes"))
            .map(Option::unwrap_or_default)
    }
}

fn stored_bound(le: u64) -> i64 {
    if le == OVERFLOW_US {
        OVERFLOW_STORED
    } else {
        i64::try_from(le).unwrap_or(OVERFLOW_STORED - 1)
    }
}

fn loaded_bound(le: i64) -> u64 {
    if le == OVERFLOW_STORED {
        OVERFLOW_US
    } else {
        u64::try_from(le).unwrap_or(0)
    }
}
