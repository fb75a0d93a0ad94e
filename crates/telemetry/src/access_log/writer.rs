//! The writer: a thread of its own that takes records off the queue a few times a second,
//! formats each once, hands the lines to the live tails, and appends those of load balancers
//! with `AccessLog.Enabled` to the file of the current interval. It takes them in slices of
//! `SLICE` records and lets other threads run between two slices: on a node of one core, the
//! workers' requests wait behind one slice of a drain, not a whole one (bench/RESULTS.md).
//!
//! A file is written under a spool directory outside the published tree (one directory per
//! process, `SPOOL/<pid>/`, so that two processes of an upgrade never share a file), one write
//! per slice of a drain, and renamed into the tree when its interval ends: the tree only ever
//! holds complete files, so that `aws s3 sync` never uploads half of one. Intervals end on ELB's
//! boundaries (every 5 or 60 minutes from the hour) and every interval of a load balancer with
//! logging on publishes a file, an empty one when no request came, as ELB publishes one per node
//! per interval. On stop, what is there is published at once. Files a process left in the
//! spool when it died are published by the next one to start.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::layout::{self, Layout};
use super::record::Lines;
use super::tail::Tails;
use super::{AccessLogQueue, LineCache, LogTarget, Record};

/// Records formatted and written per slice of a drain, between which other threads run: a few
/// tens of microseconds of work.
const SLICE: usize = 256;
/// A drain's text of one log target is kept for the next drain up to this size (a burst's
/// larger buffer is given back).
const KEPT_TEXT: usize = 1024 * 1024;
/// Dropped records are reported at most this often.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Where and how the writer writes.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The published tree (`--access-log-dir`).
    pub dir: PathBuf,
    /// Where files are written until they are complete; outside `dir`.
    pub spool: PathBuf,
    pub layout: Layout,
    /// How long one minute of `EmitInterval` lasts: a minute, shorter in tests.
    pub minute: Duration,
    /// How often the queue is drained.
    pub tick: Duration,
}

/// One load balancer's `AccessLog` settings as the state has them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub load_balancer: String,
    pub enabled: bool,
    /// 5 or 60.
    pub emit_interval_minutes: u32,
    pub s3_bucket_prefix: Option<String>,
}

impl From<&LogTarget> for LogSettings {
    fn from(t: &LogTarget) -> Self {
        LogSettings {
            load_balancer: t.load_balancer.to_string(),
            enabled: t.enabled,
            emit_interval_minutes: t.emit_interval_minutes,
            s3_bucket_prefix: t.s3_bucket_prefix.clone(),
        }
    }
}

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create the access-log directory {}: {source}", path.display())]
    Directory { path: PathBuf, source: io::Error },
    #[error("cannot start the access-log writer thread: {0}")]
    Thread(io::Error),
}

enum Control {
    Configure(Vec<LogSettings>),
    Stop,
}

/// The running writer. `stop` publishes what is there and waits for the thread; dropping the
/// handle without it lets the thread do the same on its own.
#[derive(Debug)]
pub struct AccessLogWriter {
    control: mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl AccessLogWriter {
    /// Publishes what dead processes left in the spool, then starts the thread.
    pub fn spawn(
        queue: AccessLogQueue,
        tails: Arc<Tails>,
        config: WriterConfig,
    ) -> Result<AccessLogWriter, WriterError> {
        for path in [&config.dir, &config.spool] {
            std::fs::create_dir_all(path).map_err(|source| WriterError::Directory {
                path: path.clone(),
                source,
            })?;
        }
        let mut writer = Writer::new(queue, tails, config);
        writer.files.publish_leftovers();
        let (control, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("access-log-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(WriterError::Thread)?;
        Ok(AccessLogWriter {
            control,
            thread: Some(thread),
        })
    }

    /// A handle to tell the writer the settings of load balancers, from wherever they change.
    pub fn settings(&self) -> SettingsHandle {
        SettingsHandle(self.control.clone())
    }

    /// Takes what is queued, publishes every file with lines in it and waits for the thread.
    /// Blocks: from async code, run it on the blocking pool.
    pub fn stop(mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the access-log writer panicked");
            }
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
    }
}

/// Tells the writer the settings of load balancers.
#[derive(Debug, Clone)]
pub struct SettingsHandle(mpsc::Sender<Control>);

impl SettingsHandle {
    /// The settings of every load balancer in the state, after each change: logging turned on
    /// writes the test file; intervals of load balancers with logging on publish files even
    /// when no request came; deleted load balancers' tails end.
    pub fn configure(&self, settings: Vec<LogSettings>) {
        let _ = self.0.send(Control::Configure(settings));
    }
}

/// The writer's state, on its thread.
struct Writer {
    queue: AccessLogQueue,
    tails: Arc<Tails>,
    files: Files,
    drained: Drained,
    /// The settings last configured; `None` before the first time.
    settings: Option<HashMap<String, LogSettings>>,
    dropped_reported: u64,
    dropped_reported_at: Option<Instant>,
}

/// The files being written, apart from the queue they are fed from.
struct Files {
    config: WriterConfig,
    /// `SPOOL/<pid>`: this process's files until they are published.
    session: PathBuf,
    lbs: HashMap<Arc<str>, LbFiles>,
}

/// What one slice of a drain took, formatted: the lines of each log target (a load balancer's
/// settings as a snapshot compiled them) appended to one buffer, which its file and its live
/// tails then take whole. Each line is formatted once, straight into that buffer.
#[derive(Default)]
struct Drained {
    cache: LineCache,
    targets: Vec<Drain>,
    /// Where each target is in `targets`, for records whose target is not the last one's.
    index: HashMap<usize, usize>,
    /// The target of the last record: consecutive records mostly share it.
    last: usize,
}

struct Drain {
    /// Held while in `targets`: its address is its key.
    target: Arc<LogTarget>,
    /// Whole lines, each with its newline.
    lines: Lines,
    /// A record of this target came in this drain.
    used: bool,
}

/// One load balancer's files.
struct LbFiles {
    name: Arc<str>,
    /// Whether a new interval opens when one ends.
    enabled: bool,
    emit_interval_minutes: u32,
    prefix: Option<String>,
    open: Option<OpenInterval>,
    /// The prefix was refused (said once, not per line).
    refused_prefix: Option<String>,
}

/// The interval being written.
struct OpenInterval {
    end: SystemTime,
    /// Relative to the tree, and to the session directory while spooled.
    key: PathBuf,
    /// Created with the first line. Written once per slice of a drain, with no buffer of its
    /// own: a slice's lines are already one buffer.
    file: Option<File>,
    /// A write failed: the rest of the interval is not written (said once).
    failed: bool,
}

impl Writer {
    fn new(queue: AccessLogQueue, tails: Arc<Tails>, config: WriterConfig) -> Writer {
        let session = config.spool.join(std::process::id().to_string());
        Writer {
            queue,
            tails,
            files: Files {
                config,
                session,
                lbs: HashMap::new(),
            },
            drained: Drained::default(),
            settings: None,
            dropped_reported: 0,
            dropped_reported_at: None,
        }
    }

    fn run(&mut self, control: &mpsc::Receiver<Control>) {
        let tick = self.files.config.tick;
        let mut next = Instant::now() + tick;
        loop {
            match control.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(Control::Configure(settings)) => {
                    self.configure(settings, SystemTime::now());
                    continue;
                }
                Ok(Control::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            next = Instant::now() + tick;
            self.tick(SystemTime::now());
        }
        let now = SystemTime::now();
        self.drain(now);
        self.files.publish_all();
    }

    /// One turn: the queue drained, then the files whose interval has ended published.
    fn tick(&mut self, now: SystemTime) {
        self.drain(now);
        self.files.publish_due(now);
        self.report_dropped();
    }

    /// Takes what is queued, a slice at a time.
    fn drain(&mut self, now: SystemTime) {
        loop {
            let drained = &mut self.drained;
            let taken = self.queue.drain(SLICE, |record| drained.take(&record));
            if taken > 0 {
                for d in &drained.targets {
                    // Otherwise made for a live tail only.
                    if d.target.enabled && !d.lines.is_empty() {
                        self.files.write(&d.target, d.lines.as_bytes(), now);
                    }
                }
                self.tails.publish(
                    drained
                        .targets
                        .iter_mut()
                        .map(|d| (&d.target.load_balancer, &mut d.lines)),
                );
                drained.clear_lines();
            }
            if taken < SLICE {
                break;
            }
            // More is queued: the workers first (on a node of one core they wait otherwise).
            std::thread::yield_now();
        }
        self.drained.forget_unused();
    }

    fn configure(&mut self, settings: Vec<LogSettings>, now: SystemTime) {
        let before = self.settings.take();
        let mut by_name = HashMap::with_capacity(settings.len());
        for s in settings {
            let turned_on = s.enabled
                && before.as_ref().is_some_and(|before| {
                    before
                        .get(&s.load_balancer)
                        .is_none_or(|b| !b.enabled || b.s3_bucket_prefix != s.s3_bucket_prefix)
                });
            // At start, only where there is none yet: a restart does not turn logging on.
            let first_seen_on = s.enabled && before.is_none();
            if turned_on || first_seen_on {
                self.files.write_test_file(&s, now, turned_on);
            }
            self.files.update(&s);
            by_name.insert(s.load_balancer.clone(), s);
        }
        // Deleted load balancers log nothing more; what they wrote is published at its end.
        for (name, lb) in &mut self.files.lbs {
            if !by_name.contains_key(&**name) {
                lb.enabled = false;
            }
        }
        let existing: HashSet<&str> = by_name.keys().map(String::as_str).collect();
        self.tails.forget_except(&existing);
        self.settings = Some(by_name);
    }

    fn report_dropped(&mut self) {
        let dropped = self.queue.dropped();
        if dropped == self.dropped_reported {
            return;
        }
        if self
            .dropped_reported_at
            .is_some_and(|at| at.elapsed() < DROP_REPORT_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            dropped = dropped - self.dropped_reported,
            total = dropped,
            "access-log records dropped: the writer fell behind"
        );
        self.dropped_reported = dropped;
        self.dropped_reported_at = Some(Instant::now());
    }
}

impl Files {
    /// Appends whole lines of `target` to its current file.
    fn write(&mut self, target: &LogTarget, text: &[u8], now: SystemTime) {
        let lb = match self.lbs.get_mut(&target.load_balancer) {
            Some(lb) => lb,
            // A load balancer turned on since the last settings: its record says how.
            None => self
                .lbs
                .entry(Arc::clone(&target.load_balancer))
                .or_insert_with(|| LbFiles::new(&LogSettings::from(target))),
        };
        lb.write(text, now, &self.config, &self.session);
    }

    fn update(&mut self, s: &LogSettings) {
        match self.lbs.get_mut(s.load_balancer.as_str()) {
            Some(lb) => lb.update(s),
            None if s.enabled => {
                let lb = LbFiles::new(s);
                self.lbs.insert(Arc::clone(&lb.name), lb);
            }
            None => {}
        }
    }

    /// `[prefix/]AWSLogs/<account>/ELBAccessLogTestFile`, as ELB writes it when logging is
    /// turned on; `replace`: also when one is there.
    fn write_test_file(&self, s: &LogSettings, now: SystemTime, replace: bool) {
        let Ok(prefix) = layout::prefix_dir(s.s3_bucket_prefix.as_deref()) else {
            return;
        };
        let key = self.config.layout.test_file(&prefix);
        if !replace && self.config.dir.join(&key).exists() {
            return;
        }
        let spooled = self.session.join(&key);
        let written = create_parent(&spooled)
            .and_then(|()| std::fs::write(&spooled, layout::test_file_text(&s.load_balancer, now)))
            .and_then(|()| publish(&spooled, &self.config.dir.join(&key)));
        if let Err(e) = written {
            tracing::warn!(
                load_balancer = %s.load_balancer,
                path = %self.config.dir.join(&key).display(),
                error = %e,
                "cannot write the access-log test file"
            );
        }
    }

    fn publish_due(&mut self, now: SystemTime) {
        for lb in self.lbs.values_mut() {
            if lb.open.as_ref().is_some_and(|o| o.end <= now) {
                let open = lb.open.take().expect("checked");
                open.publish(&self.config, &self.session, &lb.name, true);
            }
            if lb.enabled && lb.open.is_none() {
                lb.open_interval(now, &self.config);
            }
        }
        self.lbs.retain(|_, lb| lb.enabled || lb.open.is_some());
    }

    /// Stopping: every file with lines is published now, before its interval ends.
    fn publish_all(&mut self) {
        for (_, mut lb) in self.lbs.drain() {
            if let Some(open) = lb.open.take() {
                open.publish(&self.config, &self.session, &lb.name, false);
            }
        }
        let _ = std::fs::remove_dir_all(&self.session);
    }

    /// Files that processes which are gone left in the spool (a crash, a kill -9): published
    /// as they are, under the names they were given.
    fn publish_leftovers(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.config.spool) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && process_alive(pid) {
                continue;
            }
            let mut files = Vec::new();
            collect_files(&dir, &mut files);
            for spooled in files {
                let Ok(key) = spooled.strip_prefix(&dir) else {
                    continue;
                };
                let to = self.config.dir.join(key);
                match publish(&spooled, &to) {
                    Ok(()) => {
                        tracing::info!(path = %to.display(), "published an access-log file a previous process left")
                    }
                    Err(e) => {
                        tracing::warn!(path = %spooled.display(), error = %e, "cannot publish an access-log file a previous process left")
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

impl Drained {
    fn take(&mut self, record: &Record) {
        let i = match self.targets.get(self.last) {
            Some(d) if Arc::ptr_eq(&d.target, &record.target) => self.last,
            _ => *self
                .index
                .entry(Arc::as_ptr(&record.target) as usize)
                .or_insert_with(|| {
                    self.targets.push(Drain {
                        target: Arc::clone(&record.target),
                        lines: Lines::new(),
                        used: false,
                    });
                    self.targets.len() - 1
                }),
        };
        self.last = i;
        let d = &mut self.targets[i];
        d.used = true;
        record.write_line(&mut d.lines, &mut self.cache);
    }

    /// Ready for the next slice: every target keeps a buffer (its own, or the one its tail's
    /// ring gave back), up to `KEPT_TEXT`.
    fn clear_lines(&mut self) {
        for d in &mut self.targets {
            if d.lines.capacity() > KEPT_TEXT {
                d.lines = Lines::new();
            } else {
                d.lines.clear();
            }
        }
    }

    /// Ready for the next drain: targets that brought nothing this time are let go (a snapshot
    /// replaced them, or their load balancer is quiet).
    fn forget_unused(&mut self) {
        let before = self.targets.len();
        self.targets.retain_mut(|d| std::mem::take(&mut d.used));
        if self.targets.len() != before {
            self.index = (self.targets.iter().enumerate())
                .map(|(i, d)| (Arc::as_ptr(&d.target) as usize, i))
                .collect();
        }
        self.last = 0;
    }
}

impl LbFiles {
    fn new(s: &LogSettings) -> LbFiles {
        let mut lb = LbFiles {
            name: Arc::from(s.load_balancer.as_str()),
            enabled: false,
            emit_interval_minutes: 60,
            prefix: None,
            open: None,
            refused_prefix: None,
        };
        lb.update(s);
        lb
    }

    /// New settings apply from the next interval on.
    fn update(&mut self, s: &LogSettings) {
        self.enabled = s.enabled;
        self.emit_interval_minutes = s.emit_interval_minutes;
        self.prefix = s.s3_bucket_prefix.clone();
    }

    fn write(&mut self, text: &[u8], now: SystemTime, config: &WriterConfig, session: &Path) {
        if self.open.as_ref().is_some_and(|o| o.end <= now) {
            // Due, and the tick has not come round yet.
            let open = self.open.take().expect("checked");
            open.publish(config, session, &self.name, true);
        }
        if self.open.is_none() {
            self.open_interval(now, config);
        }
        let Some(open) = &mut self.open else {
            return;
        };
        if open.failed {
            return;
        }
        if let Err(e) = open.append(text, session) {
            open.failed = true;
            tracing::warn!(
                load_balancer = %self.name,
                path = %session.join(&open.key).display(),
                error = %e,
                "cannot write the access log: lines of this interval are lost"
            );
        }
    }

    fn open_interval(&mut self, now: SystemTime, config: &WriterConfig) {
        let prefix = match layout::prefix_dir(self.prefix.as_deref()) {
            Ok(prefix) => prefix,
            Err(e) => {
                if self.refused_prefix.as_ref() != self.prefix.as_ref() {
                    tracing::warn!(load_balancer = %self.name, error = %e, "access log not written");
                    self.refused_prefix = self.prefix.clone();
                }
                return;
            }
        };
        let length = config.minute * self.emit_interval_minutes.max(1);
        let end = interval_end(now, length);
        self.open = Some(OpenInterval {
            end,
            key: config
                .layout
                .log_file(&prefix, &self.name, end, &layout::random_string()),
            file: None,
            failed: false,
        });
    }
}

impl OpenInterval {
    fn append(&mut self, text: &[u8], session: &Path) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let path = session.join(&self.key);
                create_parent(&path)?;
                self.file.insert(File::create_new(&path)?)
            }
        };
        file.write_all(text)
    }

    /// Moves the file into the tree. `ended`: its interval is over, and an interval without a
    /// line publishes an empty file; otherwise (stopping early) it publishes nothing.
    fn publish(self, config: &WriterConfig, session: &Path, lb: &str, ended: bool) {
        let to = config.dir.join(&self.key);
        let spooled = session.join(&self.key);
        let done = match self.file {
            Some(file) => finish(file).and_then(|()| publish(&spooled, &to)),
            None if ended && !self.failed => create_parent(&spooled)
                .and_then(|()| File::create_new(&spooled).map(drop))
                .and_then(|()| publish(&spooled, &to)),
            None => Ok(()),
        };
        if let Err(e) = done {
            tracing::warn!(
                load_balancer = lb,
                path = %to.display(),
                error = %e,
                "cannot publish an access-log file; it stays in the spool and the next start publishes it"
            );
        }
    }
}

/// The end of the interval of `length` that `now` is in: intervals start at multiples of their
/// length from the epoch (so on the hour and every 5 minutes after it, for ELB's lengths).
fn interval_end(now: SystemTime, length: Duration) -> SystemTime {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let length = length.as_nanos().max(1);
    let end = (since / length + 1) * length;
    let secs = u64::try_from(end / 1_000_000_000).unwrap_or(u64::MAX);
    let nanos = u32::try_from(end % 1_000_000_000).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
}

/// On disk before it is published: a crash after the rename leaves a whole file.
fn finish(file: File) -> io::Result<()> {
    file.sync_data()
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Renames `from` (complete) to `to` in the tree. Across file systems, a copy to a hidden
/// `.NAME.partial` beside `to`, then a rename: `to` itself never exists half-written.
fn publish(from: &Path, to: &Path) -> io::Result<()> {
    create_parent(to)?;
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let name = to.file_name().unwrap_or_default().to_string_lossy();
            let partial = to.with_file_name(format!(".{name}.partial"));
            std::fs::copy(from, &partial)?;
            File::open(&partial)?.sync_data()?;
            std::fs::rename(&partial, to)?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Whether a process with this id runs (Linux's /proc; without it, every process is taken to
/// run, and nothing is published that might be another's).
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::{channel, AccessLogSink, HttpFields};

    /// 2014-02-15T23:37:00Z: in the interval that ends at 23:40.
    fn at_2337() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_392_507_420)
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        sink: AccessLogSink,
        writer: Writer,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("access-logs");
        let (sink, queue) = channel(1000);
        let config = WriterConfig {
            dir: root.clone(),
            spool: dir.path().join("spool"),
            layout: Layout {
                account: "000000000000".into(),
                region: "us-east-1".into(),
                node_ip: "10.0.0.7".parse().unwrap(),
            },
            minute: Duration::from_secs(60),
            tick: Duration::from_millis(10),
        };
        Fixture {
            _dir: dir,
            root,
            sink,
            writer: Writer::new(queue, Tails::new(), config),
        }
    }

    fn settings(lb: &str, enabled: bool, interval: u32, prefix: Option<&str>) -> LogSettings {
        LogSettings {
            load_balancer: lb.into(),
            enabled,
            emit_interval_minutes: interval,
            s3_bucket_prefix: prefix.map(str::to_owned),
        }
    }

    fn record(target: &Arc<LogTarget>, path: &str) -> Record {
        Record {
            target: Arc::clone(target),
            time: at_2337(),
            client: "192.0.2.1:4000".parse().unwrap(),
            backend: Some("10.0.0.1:80".parse().unwrap()),
            request_processing: Some(Duration::from_micros(10)),
            backend_processing: Some(Duration::from_micros(20)),
            response_processing: Some(Duration::from_micros(30)),
            received_bytes: 0,
            sent_bytes: 2,
            http: Some(HttpFields::new(
                Some(&crate::access_log::RequestLine {
                    method: "GET",
                    scheme: "http",
                    host: "example.com",
                    port: 80,
                    path,
                    version: "HTTP/1.1",
                }),
                Some(b"t"),
            ))
            .map(|mut fields| {
                fields.elb_status = 200;
                fields.backend_status = Some(200);
                fields
            }),
            tls: None,
        }
    }

    /// Every file in the tree, relative, with its text.
    fn tree(root: &Path) -> Vec<(String, String)> {
        let mut files = Vec::new();
        collect_files(root, &mut files);
        let mut out: Vec<_> = files
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p.strip_prefix(root).unwrap().display().to_string(), text)
            })
            .collect();
        out.sort();
        out
    }

    /// The log files in the tree (not the test file).
    fn logs(root: &Path) -> Vec<(String, String)> {
        tree(root)
            .into_iter()
            .filter(|(key, _)| key.ends_with(".log"))
            .collect()
    }

    #[test]
    fn intervals_end_on_elbs_boundaries() {
        let five = Duration::from_secs(300);
        let end = interval_end(at_2337(), five);
        assert_eq!(time::OffsetDateTime::from(end).minute(), 40);
        assert_eq!(
            interval_end(end, five),
            end + five,
            "a boundary starts the next one"
        );
        let hour = interval_end(at_2337(), Duration::from_secs(3600));
        assert_eq!(
            hour.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                % 3600,
            0
        );
    }

    #[test]
    fn a_file_appears_complete_when_its_interval_ends() {
        let mut f = fixture();
        f.writer
            .configure(vec![settings("web", true, 5, Some("p"))], at_2337());
        let target = Arc::new(LogTarget::new(
            "web",
            true,
            Some(5),
            Some("logs".into()),
            Some("p".into()),
        ));
        f.sink.push(Box::new(record(&target, "/1")));
        f.sink.push(Box::new(record(&target, "/2")));
        f.writer.tick(at_2337());
        assert_eq!(
            logs(&f.root).len(),
            0,
            "nothing is published before the end"
        );

        f.writer.tick(at_2337() + Duration::from_secs(180));
        let files = logs(&f.root);
        assert_eq!(files.len(), 1, "{files:?}");
        let (key, text) = &files[0];
        let name = key.rsplit('/').next().unwrap();
        assert!(
            key.starts_with("p/AWSLogs/000000000000/elasticloadbalancing/us-east-1/2014/02/15/"),
            "{key}"
        );
        let random = name
            .strip_prefix(
                "000000000000_elasticloadbalancing_us-east-1_web_20140215T2340Z_10.0.0.7_",
            )
            .and_then(|rest| rest.strip_suffix(".log"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(random.len(), 8);
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.contains("\"GET http://example.com:80/1 HTTP/1.1\""),
            "{text}"
        );
        assert!(text.contains("/2 HTTP/1.1"), "{text}");
    }

    /// A drain of several slices, with records of two load balancers mixed and a follower:
    /// every line in its file and its tail, in order, and the ring keeps the last ones.
    #[test]
    fn a_drain_of_many_slices_writes_every_line_in_order() {
        let mut f = fixture();
        f.writer.configure(
            vec![
                settings("web", true, 5, None),
                settings("api", true, 5, None),
            ],
            at_2337(),
        );
        let web = Arc::new(LogTarget::new("web", true, Some(5), None, None));
        let api = Arc::new(LogTarget::new("api", true, Some(5), None, None));
        let mut tail = f.writer.tails.follow("web", 10, web.follow());
        let n = 3 * SLICE + 7;
        for i in 0..n {
            let target = if i % 3 == 0 { &api } else { &web };
            f.sink.push(Box::new(record(target, &format!("/{i}"))));
        }
        f.writer.tick(at_2337());
        f.writer.tick(at_2337() + Duration::from_secs(180));
        let files = logs(&f.root);
        assert_eq!(files.len(), 2, "{files:?}");
        let mut followed = String::new();
        while let Ok(batch) = tail.lines.try_recv() {
            followed.push_str(&batch);
        }
        for (key, text) in files {
            let wanted: Vec<usize> = (0..n)
                .filter(|i| (i % 3 == 0) == key.contains("_api_"))
                .collect();
            let paths: Vec<usize> = text
                .lines()
                .map(|l| {
                    let path = l.split(' ').nth(12).unwrap();
                    path.strip_prefix("http://example.com:80/")
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(paths, wanted, "{key}");
            if key.contains("_web_") {
                assert_eq!(followed, text);
                let last: String = text.split_inclusive('\n').skip(wanted.len() - 10).collect();
                assert_eq!(f.writer.tails.recent("web", 10), last);
            }
        }
    }

    #[test]
    fn quiet_intervals_publish_empty_files_and_turned_off_stops_them() {
        let mut f = fixture();
        f.writer
            .configure(vec![settings("web", true, 5, None)], at_2337());
        f.writer.tick(at_2337());
        f.writer.tick(at_2337() + Duration::from_secs(180)); // 23:40
        f.writer.tick(at_2337() + Duration::from_secs(480)); // 23:45
        let published = logs(&f.root);
        assert_eq!(published.len(), 2, "{published:?}");
        assert!(published.iter().all(|(_, text)| text.is_empty()));
        assert!(published
            .iter()
            .any(|(k, _)| k.contains("_20140215T2345Z_")));

        f.writer
            .configure(vec![settings("web", false, 5, None)], at_2337());
        f.writer.tick(at_2337() + Duration::from_secs(780)); // 23:50: the last one
        f.writer.tick(at_2337() + Duration::from_secs(1080)); // 23:55: none
        assert_eq!(logs(&f.root).len(), 3);
    }

    #[test]
    fn turning_logging_on_writes_the_test_file() {
        let mut f = fixture();
        f.writer
            .configure(vec![settings("web", false, 5, Some("p"))], at_2337());
        assert!(tree(&f.root).is_empty());
        f.writer
            .configure(vec![settings("web", true, 5, Some("p"))], at_2337());
        assert_eq!(
            tree(&f.root),
            vec![(
                "p/AWSLogs/000000000000/ELBAccessLogTestFile".to_owned(),
                "Enable AccessLog for ELB: web at 2014-02-15T23:37:00.000Z".to_owned()
            )]
        );
    }

    #[test]
    fn stopping_publishes_what_is_there_and_a_crash_is_published_by_the_next_start() {
        let mut f = fixture();
        let target = Arc::new(LogTarget::new("web", true, Some(60), None, None));
        f.sink.push(Box::new(record(&target, "/a")));
        f.writer.tick(at_2337());
        // A process that died: its session directory is not this process's and its pid is
        // not running (pid numbers stop well below u32::MAX).
        let dead = f.writer.files.config.spool.join(u32::MAX.to_string());
        std::fs::rename(&f.writer.files.session, &dead).unwrap();
        let target2 = Arc::new(LogTarget::new("api", true, Some(60), None, None));
        f.sink.push(Box::new(record(&target2, "/b")));
        f.writer.files.lbs.get_mut("web").unwrap().open = None; // lost with the process
        f.writer.tick(at_2337());
        f.writer.files.publish_all();
        let files = tree(&f.root);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].0.contains("_api_20140216T0000Z_"), "{files:?}");

        f.writer.files.publish_leftovers();
        let files = tree(&f.root);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files
            .iter()
            .any(|(k, t)| k.contains("_web_") && t.contains("/a ")));
        assert!(!dead.exists());
    }

    #[test]
    fn followed_records_reach_the_tail_and_no_file() {
        let mut f = fixture();
        let target = Arc::new(LogTarget::new("web", false, None, None, None));
        let mut tail = f.writer.tails.follow("web", 10, target.follow());
        f.sink.push(Box::new(record(&target, "/t")));
        f.writer.tick(at_2337());
        assert!(tail.lines.try_recv().unwrap().contains("/t HTTP/1.1"));
        f.writer.tick(at_2337() + Duration::from_secs(7200));
        assert!(tree(&f.root).is_empty());
    }

    #[test]
    fn a_prefix_outside_the_tree_writes_nothing() {
        let mut f = fixture();
        let target = Arc::new(LogTarget::new(
            "web",
            true,
            Some(5),
            None,
            Some("../x".into()),
        ));
        f.sink.push(Box::new(record(&target, "/1")));
        f.writer.tick(at_2337());
        f.writer.tick(at_2337() + Duration::from_secs(600));
        f.writer.files.publish_all();
        assert!(tree(f.root.parent().unwrap()).is_empty());
    }
}
