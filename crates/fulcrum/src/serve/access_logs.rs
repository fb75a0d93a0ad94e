//! `serve`'s access logs: the queue the data plane pushes records on, the writer thread that
//! drains it into `--access-log-dir`, the live tails the API streams, and the settings of every
//! load balancer handed to the writer after each change of the state.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fulcrum_model::Snapshot;
use fulcrum_store::Store;
use fulcrum_telemetry::access_log::{
    self, AccessLogSink, AccessLogWriter, Layout, LogSettings, Tails, WriterConfig,
};

/// Records the writer has not taken yet, at most; more are dropped (counted, and said in the
/// log): about 100 MB of records at worst, several seconds of a busy node's traffic.
const QUEUE_CAPACITY: usize = 256 * 1024;
/// How often the writer takes records off the queue: often enough for a live tail to feel
/// live, rarely enough to cost nothing when idle.
const TICK: Duration = Duration::from_millis(100);
/// What `EmitInterval` counts in, before `--access-log-time-scale`.
const MINUTE: Duration = Duration::from_secs(60);

/// The running access logs of a node.
pub struct AccessLogs {
    pub sink: AccessLogSink,
    pub tails: Arc<Tails>,
    writer: AccessLogWriter,
    settings: tokio::task::JoinHandle<()>,
}

pub struct Options<'a> {
    pub dir: PathBuf,
    pub spool: PathBuf,
    pub account: &'a str,
    pub region: &'a str,
    pub bind: &'a [IpAddr],
    /// Divides the minute of `EmitInterval` (tests).
    pub time_scale: u32,
}

impl AccessLogs {
    /// Starts the writer (after publishing what a dead process left in the spool) and hands it
    /// the settings of every load balancer now and after each change of the state.
    pub fn start(options: Options<'_>, store: &Store) -> anyhow::Result<AccessLogs> {
        let (sink, queue) = access_log::channel(QUEUE_CAPACITY);
        let tails = Tails::new();
        let node_ip = access_log::node_ip(options.bind);
        let dir = options.dir.clone();
        let writer = AccessLogWriter::spawn(
            queue,
            Arc::clone(&tails),
            WriterConfig {
                dir: options.dir,
                spool: options.spool,
                layout: Layout {
                    account: options.account.to_owned(),
                    region: options.region.to_owned(),
                    node_ip,
                },
                minute: MINUTE / options.time_scale.max(1),
                tick: TICK,
            },
        )
        .context("cannot start the access logs")?;
        tracing::info!(dir = %dir.display(), %node_ip, "access logs go to {}", dir.display());
        let handle = writer.settings();
        let mut watch = store.watch();
        handle.configure(settings(&store.snapshot()));
        let settings = tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let snapshot = Arc::clone(&watch.borrow_and_update());
                handle.configure(settings(&snapshot));
            }
        });
        Ok(AccessLogs {
            sink,
            tails,
            writer,
            settings,
        })
    }

    /// After the data plane has drained: takes the last records and publishes every file that
    /// has lines.
    pub async fn stop(self) {
        self.settings.abort();
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
    }
}

/// The `AccessLog` attribute of every load balancer of the state.
fn settings(snapshot: &Snapshot) -> Vec<LogSettings> {
    snapshot
        .state
        .load_balancers
        .values()
        .map(|lb| {
            let a = &lb.attributes.access_log;
            LogSettings {
                load_balancer: lb.name.as_str().to_owned(),
                enabled: a.enabled,
                // ELB's default, as the data plane's targets have it.
                emit_interval_minutes: a.emit_interval.unwrap_or(60),
                s3_bucket_prefix: a.s3_bucket_prefix.clone(),
            }
        })
        .collect()
}
