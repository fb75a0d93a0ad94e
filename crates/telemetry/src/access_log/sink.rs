//! The hand-off from the request path to the writer: an unbounded lock-free queue (std's mpsc,
//! whose `send` takes no lock and makes no system call while the receiver is not blocked in
//! `recv`, which the writer never is: it drains on a timer), bounded by a count so that a
//! writer that falls behind costs dropped lines, counted, not the node's memory. Records go
//! boxed: the data plane drafts them in a box already, and the queue's blocks (which std
//! zeroes when it makes them) hold a pointer each rather than a whole record.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use super::Record;

/// What the data plane knows of one load balancer's access log, compiled from its `AccessLog`
/// attribute with the snapshot.
#[derive(Debug)]
pub struct LogTarget {
    pub load_balancer: Arc<str>,
    /// `AccessLog.Enabled`: files are written.
    pub enabled: bool,
    /// `AccessLog.EmitInterval`, in minutes: 5 or 60.
    pub emit_interval_minutes: u32,
    pub s3_bucket_name: Option<String>,
    pub s3_bucket_prefix: Option<String>,
    /// Live tails following this load balancer (`fulcrum lb logs --follow`); records are made
    /// while this is non-zero even when files are off. Shared with the targets that replace
    /// this one when snapshots are applied, so that a tail outlives a change of settings.
    followers: Arc<AtomicUsize>,
}

/// A live tail's hold on a load balancer: records are made while it lives.
#[derive(Debug)]
pub struct Following(Arc<AtomicUsize>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LogTarget {
    pub fn new(
        load_balancer: &str,
        enabled: bool,
        emit_interval_minutes: Option<u32>,
        s3_bucket_name: Option<String>,
        s3_bucket_prefix: Option<String>,
    ) -> Self {
        LogTarget {
            load_balancer: load_balancer.into(),
            enabled,
            emit_interval_minutes: emit_interval_minutes.unwrap_or(60),
            s3_bucket_name,
            s3_bucket_prefix,
            followers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether a request of this load balancer needs a record: one relaxed load per request.
    #[inline]
    pub fn wanted(&self) -> bool {
        self.enabled || self.followers.load(Ordering::Relaxed) > 0
    }

    /// Makes records wanted until the returned hold is dropped.
    pub fn follow(&self) -> Following {
        self.followers.fetch_add(1, Ordering::Relaxed);
        Following(Arc::clone(&self.followers))
    }

    /// Shares the followers of the target this one replaces (a snapshot was applied).
    pub fn with_followers_of(mut self, old: &LogTarget) -> Self {
        self.followers = Arc::clone(&old.followers);
        self
    }
}

/// The data plane's end of the queue.
#[derive(Debug, Clone)]
pub struct AccessLogSink {
    tx: mpsc::Sender<Box<Record>>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queued: AtomicUsize,
    capacity: usize,
    dropped: AtomicU64,
    /// Set by the writer while it is alive.
    open: AtomicBool,
}

/// The writer's end.
#[derive(Debug)]
pub struct AccessLogQueue {
    rx: mpsc::Receiver<Box<Record>>,
    shared: Arc<Shared>,
}

/// A queue holding at most `capacity` records not yet taken by the writer.
pub fn channel(capacity: usize) -> (AccessLogSink, AccessLogQueue) {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        capacity,
        dropped: AtomicU64::new(0),
        open: AtomicBool::new(true),
    });
    (
        AccessLogSink {
            tx,
            shared: Arc::clone(&shared),
        },
        AccessLogQueue { rx, shared },
    )
}

impl AccessLogSink {
    /// Queues a record, or drops it (counted) when the writer is that far behind or gone.
    #[inline]
    pub fn push(&self, record: Box<Record>) {
        let s = &self.shared;
        if !s.open.load(Ordering::Relaxed) {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if s.queued.fetch_add(1, Ordering::Relaxed) >= s.capacity {
            s.queued.fetch_sub(1, Ordering::Relaxed);
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(record).is_err() {
            s.queued.fetch_sub(1, Ordering::Relaxed);
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl AccessLogQueue {
    /// Takes up to `max` of the records queued now, without waiting; says how many.
    pub fn drain(&self, max: usize, mut each: impl FnMut(Box<Record>)) -> usize {
        let mut taken = 0;
        while taken < max {
            let Ok(record) = self.rx.try_recv() else {
                break;
            };
            taken += 1;
            each(record);
        }
        // Counted off once per slice, not per record.
        if taken > 0 {
            self.shared.queued.fetch_sub(taken, Ordering::Relaxed);
        }
        taken
    }

    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for AccessLogQueue {
    fn drop(&mut self) {
        self.shared.open.store(false, Ordering::Relaxed);
    }
}
