//! Client connections: what a connection's watchdog needs to know (bytes moving, requests open,
//! a request head being read), and the counts of open connections that limits and drains use.
//!
//! ELB's idle timeout is "no byte either way for `IdleTimeout`". The I/O wrapper [`Tracked`]
//! bumps a counter whenever a read or write moves bytes, and the watchdog ([`expired`]) looks at
//! the counter a few times per period: no clock is read on the I/O path. On HTTP/2 the PING
//! frames are not activity (the balancer's keep-alive pings and their answers would otherwise
//! keep every connection open forever), so there the wrapper follows the frame headers and
//! counts only the bytes of other frames.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What one client connection's watchdog reads. Every field is written on the connection's own
/// task (or its streams'), so relaxed atomics are enough.
#[derive(Default)]
pub(crate) struct ConnState {
    /// Bumped by every read or write that moved bytes (on HTTP/2: bytes of frames other than PING).
    activity: AtomicU64,
    /// Requests waiting for their response head: the instance side's own timeout covers them.
    in_flight: AtomicUsize,
    /// Requests whose response has not been sent in full.
    open: AtomicUsize,
    /// Bytes arrived while no request was open: a request head is being read.
    head_pending: AtomicBool,
    /// Request heads read so far, so that the watchdog can tell one pending head from the next.
    heads: AtomicU64,
}

impl ConnState {
    pub(crate) fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    fn touch_read(&self) {
        self.touch();
        if self.open.load(Ordering::Relaxed) == 0 {
            self.head_pending.store(true, Ordering::Relaxed);
        }
    }

    /// A request head has been read in full and the request starts.
    pub(crate) fn request_started(self: &Arc<Self>) -> (InFlight, OpenRequest) {
        self.heads.fetch_add(1, Ordering::Relaxed);
        self.head_pending.store(false, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        (InFlight(Arc::clone(self)), OpenRequest(Arc::clone(self)))
    }
}

/// A request waiting for its response head; dropped when the head is ready.
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request whose response is not over; the response body holds it until it ends.
pub(crate) struct OpenRequest(Arc<ConnState>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How activity is counted.
enum Framing {
    /// Every byte counts.
    Bytes,
    /// HTTP/2: bytes of PING frames do not count, either way.
    Http2 { read: FrameScan, write: FrameScan },
}

/// Follows HTTP/2 frame boundaries in one direction of a byte stream by their 9-byte headers.
struct FrameScan {
    header: [u8; 9],
    have: u8,
    /// Payload bytes left in the current frame (or of the client's connection preface).
    left: u32,
    ping: bool,
}

/// The frame type of PING (RFC 9113 §6.7).
const PING: u8 = 0x6;
/// What a client sends before its first frame (RFC 9113 §3.4).
const CLIENT_PREFACE_LEN: u32 = 24;

impl FrameScan {
    fn new(preface: u32) -> Self {
        FrameScan {
            header: [0; 9],
            have: 0,
            left: preface,
            ping: false,
        }
    }

    /// Consumes the next bytes of the stream; true when any belong to a frame other than PING.
    fn scan(&mut self, mut bytes: &[u8]) -> bool {
        let mut active = false;
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = bytes.len().min(self.left as usize);
                active |= !self.ping;
                self.left -= n as u32;
                bytes = &bytes[n..];
                continue;
            }
            let have = usize::from(self.have);
            let n = bytes.len().min(9 - have);
            self.header[have..have + n].copy_from_slice(&bytes[..n]);
            self.have += n as u8;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.header;
                self.left = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                self.ping = h[3] == PING;
                active |= !self.ping;
            }
        }
        active
    }
}

/// An I/O stream that reports its activity to a [`ConnState`].
pub(crate) struct Tracked<T> {
    inner: T,
    state: Arc<ConnState>,
    framing: Framing,
}

impl<T> Tracked<T> {
    /// Every byte either way is activity.
    pub(crate) fn new(inner: T) -> (Self, Arc<ConnState>) {
        Self::with(inner, Framing::Bytes)
    }

    /// A server's HTTP/2 connection: everything but PING frames is activity.
    pub(crate) fn http2_server(inner: T) -> (Self, Arc<ConnState>) {
        Self::with(
            inner,
            Framing::Http2 {
                read: FrameScan::new(CLIENT_PREFACE_LEN),
                write: FrameScan::new(0),
            },
        )
    }

    fn with(inner: T, framing: Framing) -> (Self, Arc<ConnState>) {
        let state = Arc::new(ConnState::default());
        let tracked = Tracked {
            inner,
            state: Arc::clone(&state),
            framing,
        };
        (tracked, state)
    }

    fn wrote(&mut self, bufs: &[std::io::IoSlice<'_>], mut n: usize) {
        let active = match &mut self.framing {
            Framing::Bytes => n > 0,
            Framing::Http2 { write, .. } => {
                let mut active = false;
                for buf in bufs {
                    if n == 0 {
                        break;
                    }
                    let take = n.min(buf.len());
                    active |= write.scan(&buf[..take]);
                    n -= take;
                }
                active
            }
        };
        if active {
            self.state.touch();
        }
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
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let active = match &mut self.framing {
                Framing::Bytes => true,
                Framing::Http2 { read, .. } => read.scan(new),
            };
            if active {
                self.state.touch_read();
            }
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
        if let Poll::Ready(Ok(n)) = r {
            self.wrote(&[std::io::IoSlice::new(data)], n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.wrote(bufs, n);
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

/// Why a connection's watchdog ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No byte either way for the idle timeout, and no request waiting for its response head.
    Idle,
    /// A request head began and was not complete within the header read timeout.
    HeaderRead,
}

/// Resolves when the connection has been idle for `idle`, or (with `header_read`) when a request
/// head has been pending for that long.
pub(crate) async fn expired(
    state: &ConnState,
    idle: Duration,
    header_read: Option<Duration>,
) -> Expiry {
    // Looking four times per period ends a connection within 1.25 periods of its deadline.
    let shortest = header_read.map_or(idle, |h| h.min(idle));
    let step = (shortest / 4).max(Duration::from_millis(10));
    let mut last = state.activity.load(Ordering::Relaxed);
    let mut quiet = Duration::ZERO;
    let mut last_heads = state.heads.load(Ordering::Relaxed);
    let mut pending_for = Duration::ZERO;
    let mut pending_since_look = None;
    loop {
        tokio::time::sleep(step).await;
        let now = state.activity.load(Ordering::Relaxed);
        if now != last || state.in_flight.load(Ordering::Relaxed) > 0 {
            last = now;
            quiet = Duration::ZERO;
        } else {
            quiet += step;
            if quiet >= idle {
                return Expiry::Idle;
            }
        }
        if let Some(limit) = header_read {
            // Counted from the first look that sees the head pending, as the idle time is from
            // the first look that sees no activity: a connection is never cut early.
            let heads = state.heads.load(Ordering::Relaxed);
            let pending = state.head_pending.load(Ordering::Relaxed);
            match pending_since_look {
                Some(_) if pending && heads == last_heads => {
                    pending_for += step;
                    if pending_for >= limit {
                        return Expiry::HeaderRead;
                    }
                }
                _ => pending_for = Duration::ZERO,
            }
            pending_since_look = pending.then_some(());
            last_heads = heads;
        }
    }
}

/// Counts open client connections, for the connection limits and so that a drain can wait for
/// the last one.
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

#[cfg(test)]
mod tests {
    use super::FrameScan;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn pings_are_not_activity_whatever_the_split() {
        let ping = frame(0x6, &[7; 8]);
        let data = frame(0x0, b"hello");
        let mut stream = ping.clone();
        stream.extend_from_slice(&ping);
        stream.extend_from_slice(&data);
        // One byte at a time: only the DATA frame's bytes are activity.
        let mut scan = FrameScan::new(0);
        let active: Vec<bool> = stream.iter().map(|b| scan.scan(&[*b])).collect();
        let first_active = active.iter().position(|a| *a).unwrap();
        assert_eq!(
            first_active,
            2 * ping.len() + 8,
            "the DATA header completes"
        );
        assert!(active[first_active..].iter().all(|a| *a));
        // All at once, and pings alone.
        assert!(FrameScan::new(0).scan(&stream));
        assert!(!FrameScan::new(0).scan(&[ping.clone(), ping].concat()));
    }

    #[test]
    fn the_client_preface_is_activity_and_is_skipped() {
        let mut scan = FrameScan::new(24);
        assert!(scan.scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(!scan.scan(&frame(0x6, &[0; 8])));
        assert!(scan.scan(&frame(0x4, &[])), "SETTINGS");
    }
}
