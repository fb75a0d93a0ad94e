//! The response body the balancer sends to clients: an instance's body streamed through (its
//! connection returned to the pool when the body ends), or a short body of the balancer's own.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::upstream::{Outstanding, Sender, Upstream};

pin_project_lite::pin_project! {
    #[project = ProxyBodyProj]
    pub(crate) enum ProxyBody {
        Upstream {
            #[pin]
            body: Incoming,
            // Some until the body ends; then the connection goes back to its pool.
            conn: Option<(Arc<Upstream>, Sender)>,
            outstanding: Option<Outstanding>,
        },
        Local { data: Option<Bytes> },
    }
}

impl ProxyBody {
    pub(crate) fn upstream(
        body: Incoming,
        conn: Option<(Arc<Upstream>, Sender)>,
        outstanding: Outstanding,
    ) -> Self {
        ProxyBody::Upstream {
            body,
            conn,
            outstanding: Some(outstanding),
        }
    }

    pub(crate) fn local(data: impl Into<Bytes>) -> Self {
        ProxyBody::Local {
            data: Some(data.into()),
        }
    }

    pub(crate) fn empty() -> Self {
        ProxyBody::Local { data: None }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.project() {
            ProxyBodyProj::Upstream {
                body,
                conn,
                outstanding,
            } => {
                let polled = body.poll_frame(cx);
                let ended = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => false,
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
                        upstream.checkin_when_ready(sender, cx);
                    }
                    outstanding.take();
                }
                polled
            }
            ProxyBodyProj::Local { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            // Reporting the end early would let the server stop polling before the connection
            // is returned; the final poll costs nothing.
            ProxyBody::Upstream { body, conn, .. } => body.is_end_stream() && conn.is_none(),
            ProxyBody::Local { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
