//! The response body the balancer sends to clients: an instance's body streamed through (its
//! connection returned to the pool when the body ends), or a short body of the balancer's own.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::conn::OpenRequest;
use crate::observe::Draft;
use crate::upstream::{Outstanding, Sender, Upstream};

pub(crate) struct ProxyBody {
    kind: Kind,
    /// Held for the client connection's watchdog until the body is over (see `conn`).
    open: Option<OpenRequest>,
    /// The request's access-log record, finished with the bytes sent when the body is dropped.
    log: Option<(Draft, u64)>,
}

enum Kind {
    Upstream {
        body: Incoming,
        /// Some until the exchange is over; then the connection goes back to its pool.
        conn: Option<(Arc<Upstream>, Sender)>,
        outstanding: Option<Outstanding>,
    },
    Local(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn upstream(
        body: Incoming,
        conn: Option<(Arc<Upstream>, Sender)>,
        outstanding: Outstanding,
    ) -> Self {
        ProxyBody::of(Kind::Upstream {
            body,
            conn,
            outstanding: Some(outstanding),
        })
    }

    pub(crate) fn local(data: impl Into<Bytes>) -> Self {
        ProxyBody::of(Kind::Local(Some(data.into())))
    }

    pub(crate) fn empty() -> Self {
        ProxyBody::of(Kind::Local(None))
    }

    fn of(kind: Kind) -> Self {
        ProxyBody {
            kind,
            open: None,
            log: None,
        }
    }

    /// The same body, finishing `draft` with the bytes it sends.
    pub(crate) fn logged(mut self, draft: Option<Draft>) -> Self {
        self.log = draft.map(|d| (d, 0));
        self
    }

    /// The same body, telling the client connection that its request is open until it ends.
    pub(crate) fn holding(mut self, open: OpenRequest) -> Self {
        self.open = Some(open);
        self
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.kind {
            Kind::Upstream {
                body,
                conn,
                outstanding,
            } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                let ended = match &polled {
                    Poll::Ready(None) => true,
                    // The server may stop polling once it has written as many bytes as the
                    // length announced, so the end is also seen with the last frame.
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(Some(Err(_))) => {
                        // A broken exchange: the connection is not reusable.
                        conn.take();
                        outstanding.take();
                        false
                    }
                    Poll::Pending => false,
                };
                if ended {
                    if let Some((upstream, sender)) = conn.take() {
                        upstream.checkin_when_ready(sender);
                    }
                    outstanding.take();
                }
                if let (Some((_, sent)), Poll::Ready(Some(Ok(frame)))) = (&mut self.log, &polled) {
                    *sent += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                polled
            }
            Kind::Local(data) => {
                let frame = data.take();
                if let (Some((_, sent)), Some(d)) = (&mut self.log, &frame) {
                    *sent += d.len() as u64;
                }
                Poll::Ready(frame.map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream { body, .. } => body.is_end_stream(),
            Kind::Local(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { body, .. } => body.size_hint(),
            Kind::Local(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

impl Drop for ProxyBody {
    /// A server does not poll a body it knows is over (empty, `HEAD`, `204`, or its announced
    /// length written): the connection is returned here if the exchange is complete.
    fn drop(&mut self) {
        if let Some((draft, sent)) = self.log.take() {
            draft.finish(sent);
        }
        if let Kind::Upstream { body, conn, .. } = &mut self.kind {
            if body.is_end_stream() {
                if let Some((upstream, sender)) = conn.take() {
                    upstream.checkin_when_ready(sender);
                }
            }
        }
    }
}

/// The client's request body on its way to an instance, its bytes counted when an access-log
/// record wants them (ELB's `received_bytes`).
pub(crate) struct RequestBody {
    inner: Incoming,
    received: Option<Arc<AtomicU64>>,
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        RequestBody { inner, received }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Some(received), Poll::Ready(Some(Ok(frame)))) = (&self.received, &polled) {
            if let Some(data) = frame.data_ref() {
                received.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
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
