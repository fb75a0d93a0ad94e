//! Response bodies used by the test backend.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;

use crate::BoxError;

/// Size of the chunks `/bytes/<n>` is streamed in.
pub const CHUNK: usize = 16 * 1024;
static FILLER: [u8; CHUNK] = [b'x'; CHUNK];

/// A body of `remaining` bytes of `b'x'`, produced in chunks of [`CHUNK`] bytes.
pub struct RepeatBody {
    remaining: u64,
}

impl RepeatBody {
    /// A body of `len` bytes.
    pub fn new(len: u64) -> RepeatBody {
        RepeatBody { remaining: len }
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A boxed body that holds a guard until the body ends (or is dropped).
pub struct GuardedBody<G> {
    inner: BoxBody<Bytes, BoxError>,
    guard: Option<G>,
}

impl<G> GuardedBody<G> {
    /// Wraps `inner`, keeping `guard` alive while the body streams.
    pub fn new(inner: BoxBody<Bytes, BoxError>, guard: Option<G>) -> Self {
        GuardedBody { inner, guard }
    }
}

impl<G: Unpin> Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
