//! Write coalescing for HTTP/2 client connections.
//!
//! An HTTP/2 connection carries many streams whose responses complete one by one, each from its
//! own task. hyper's HTTP/2 connection flushes after every poll, so without help every response
//! became its own TLS record and its own `writev` to the client. [`Coalesce`] holds written
//! bytes until a flush, and lets a flush wait for a turn of the scheduler: the stream tasks
//! already queued run first and add their frames, and the batch leaves as one record and one
//! system call. It waits again, a few times at most, while each turn brings more bytes. The
//! wait is a re-queue of the task, not a timer: nothing is delayed once a turn brings nothing.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held before a write goes through without waiting for a flush.
const HOLD_LIMIT: usize = 64 * 1024;
/// A buffer grown past this by a burst is released once flushed, so an idle connection does not
/// keep it.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Turns of the scheduler a flush may wait while each turn brings more bytes.
const MAX_YIELDS: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// No flush asked since the last one completed.
    Idle,
    /// A flush was asked and the task re-queued `yields` times; `held` bytes were held at the
    /// last ask. The next ask writes unless more bytes came meanwhile.
    Yielded { yields: u8, held: usize },
    /// Writing the held bytes; asks go straight through until they are all written.
    Writing,
}

/// An I/O stream whose writes are held and sent as one on flush (see the module's comment).
pub(crate) struct Coalesce<T> {
    inner: T,
    held: Vec<u8>,
    /// How much of `held` has been written to `inner`.
    written: usize,
    flush: Flush,
}

impl<T> Coalesce<T> {
    pub(crate) fn new(inner: T) -> Self {
        Coalesce {
            inner,
            held: Vec::new(),
            written: 0,
            flush: Flush::Idle,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out everything held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.written = 0;
        if self.held.capacity() > KEEP_CAPACITY {
            self.held = Vec::new();
        } else {
            self.held.clear();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.held.len() >= HOLD_LIMIT {
            ready!(this.poll_drain(cx))?;
        }
        let room = HOLD_LIMIT - this.held.len();
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(room - taken);
            this.held.extend_from_slice(&buf[..n]);
            taken += n;
            if taken == room {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let held = this.held.len();
        let wait = match this.flush {
            Flush::Idle if held == 0 => return Pin::new(&mut this.inner).poll_flush(cx),
            Flush::Idle => Some(1),
            // Another stream added its frames during the last turn: more may be on the way
            // (a response's head and its body come from separate wake-ups).
            Flush::Yielded {
                yields,
                held: before,
            } if held > before && yields < MAX_YIELDS => Some(yields + 1),
            Flush::Yielded { .. } | Flush::Writing => None,
        };
        if let Some(yields) = wait {
            this.flush = Flush::Yielded { yields, held };
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.flush = Flush::Writing;
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.flush = Flush::Idle;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_leave_as_one_on_flush() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = Coalesce::new(a);
        w.write_all(b"one ").await.unwrap();
        w.write_all(b"two").await.unwrap();
        // Nothing reached the peer before the flush.
        let mut probe = [0u8; 16];
        let nothing_yet = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut probe);
            Poll::Ready(Pin::new(&mut b).poll_read(cx, &mut buf).is_pending())
        })
        .await;
        assert!(nothing_yet);
        w.flush().await.unwrap();
        let mut got = vec![0u8; 7];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one two");
    }

    #[tokio::test]
    async fn large_writes_pass_through_in_order_with_a_slow_peer() {
        // A peer buffer far smaller than what is written forces partial writes and waits.
        let (a, mut b) = tokio::io::duplex(1024);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let mut w = Coalesce::new(a);
            for chunk in data.chunks(7_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, expected);
    }
}
