//! fulcrum's own action `GetAccessLogTail` (ELB's service, version `2012-06-01`), behind
//! `fulcrum lb logs`: the last access-log lines of a load balancer, and with `Follow` the new
//! ones as the writer takes them in, for as long as the client keeps the answer open.
//!
//! - `LoadBalancerName` (required); an unknown one is `LoadBalancerNotFound`.
//! - `Lines`: at most this many recent lines first (default and most: the ring's size).
//! - `Follow`: `true` keeps the answer open; the load balancer makes records while it is,
//!   even with `AccessLog.Enabled` false.
//!
//! The answer is `text/plain` lines in Classic ELB's format, not XML: a stream cannot be one
//! XML document, and lines are what the caller prints. Errors are XML as for every action. A
//! `Get` action: read-only keys may call it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fulcrum_telemetry::access_log::{Tail, RECENT_LINES};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};

use crate::error::ApiError;
use crate::{ApiBody, Call};

pub(crate) const ACTION: &str = "GetAccessLogTail";

pub(crate) fn start(call: &Call<'_>) -> Result<ApiBody, ApiError> {
    let p = call.params;
    if let Some(v) = p.get("Version") {
        if v != crate::elb::VERSION {
            return Err(ApiError::new(
                "InvalidAction",
                format!(
                    "Elastic Load Balancing (classic) speaks version {}, not {v}",
                    crate::elb::VERSION
                ),
            ));
        }
    }
    let name = p.required("LoadBalancerName")?;
    let follow = p.bool("Follow")?.unwrap_or(false);
    let lines = p
        .number::<usize>("Lines")?
        .unwrap_or(RECENT_LINES)
        .min(RECENT_LINES);
    if !follow {
        return Ok(Full::new(Bytes::from(call.ctl.recent_log(name, lines)?)).boxed());
    }
    let mut tail = call.ctl.follow_log(name, lines)?;
    let recent = Bytes::from(std::mem::take(&mut tail.recent));
    Ok(Followed {
        recent: Some(recent).filter(|b| !b.is_empty()),
        tail,
    }
    .boxed())
}

/// A followed tail's answer: the recent lines, then each batch as the writer takes it in. It
/// ends when the load balancer is deleted; dropping it (the client hung up, noticed at the
/// latest when the next batch cannot be written) ends the following.
struct Followed {
    recent: Option<Bytes>,
    tail: Tail,
}

impl Body for Followed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(recent) = self.recent.take() {
            return Poll::Ready(Some(Ok(Frame::data(recent))));
        }
        self.tail
            .lines
            .poll_recv(cx)
            .map(|chunk| chunk.map(|lines| Ok(Frame::data(Bytes::from(lines)))))
    }
}
