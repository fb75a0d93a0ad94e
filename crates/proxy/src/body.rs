//! The response body the balancer sends to clients: an instance's body streamed through (its
//! connection returned to the pool when the body ends), or a short body of the balancer's own.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::conn::OpenRequest;
use crate::upstream::{Outstanding, Sender, Upstream};

pub(crate) struct ProxyBody {
    kind: Kind,
    /// Held for the client connection's watchdog until the body is over (see `conn`).
    open: Option<OpenRequest>,
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
        ProxyBody { kind, open: None }
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
                polled
            }
            Kind::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
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
        if let Kind::Upstream { body, conn, .. } = &mut self.kind {
            if body.is_end_stream() {
                if let Some((upstream, sender)) = conn.take() {
                    upstream.checkin_when_ready(sender);
                }
            }
        }
    }
}
