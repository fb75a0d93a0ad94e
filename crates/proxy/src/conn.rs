//! Client connections: activity tracking for the idle timeout, and the count of open
//! connections that a drain waits for.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// An I/O stream that counts reads and writes that moved bytes, so that a watchdog can tell an
/// idle connection from a busy one without reading a clock on every call.
pub(crate) struct Tracked<T> {
    inner: T,
    activity: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    pub(crate) fn new(inner: T) -> (Self, Arc<AtomicU64>) {
        let activity = Arc::new(AtomicU64::new(0));
        (
            Tracked {
                inner,
                activity: Arc::clone(&activity),
            },
            activity,
        )
    }

    fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once `activity` has not moved for `timeout` while no request is in flight.
pub(crate) async fn idle_expired(activity: &AtomicU64, in_flight: &AtomicUsize, timeout: Duration) {
    // Checking four times per period closes an idle connection within 1.25 timeouts.
    let step = (timeout / 4).max(Duration::from_millis(10));
    let mut last = activity.load(Ordering::Relaxed);
    let mut quiet = Duration::ZERO;
    loop {
        tokio::time::sleep(step).await;
        let now = activity.load(Ordering::Relaxed);
        if now != last || in_flight.load(Ordering::Relaxed) > 0 {
            last = now;
            quiet = Duration::ZERO;
            continue;
        }
        quiet += step;
        if quiet >= timeout {
            return;
        }
    }
}

/// Counts open client connections so that a drain can wait for the last one.
#[derive(Default)]
pub(crate) struct ConnCount {
    open: AtomicUsize,
    closed: Notify,
}

/// Held by a connection's task while the connection is open.
pub(crate) struct ConnGuard(Arc<ConnCount>);

impl ConnCount {
    pub(crate) fn enter(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnGuard(Arc::clone(self))
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until no connection is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}
