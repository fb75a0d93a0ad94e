//! The life of one HTTP request through the balancer, as phases: route, check, pick an
//! instance, forward (with one retry when nothing was sent), respond.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use fulcrum_telemetry::access_log::TlsFields;

use crate::body::{ProxyBody, RequestBody};
use crate::conn::{expired, Tracked};
use crate::headers::{self, Refused};
use crate::observe::{self, Exchange};
use crate::runtime::{Route, Stickiness};
use crate::sticky;
use crate::upstream::{ConnectError, Outstanding, Overloaded, Sender, Upstream};
use crate::Shared;

/// What a connection knows about itself, shared by its requests.
pub(crate) struct ConnInfo {
    pub(crate) client: SocketAddr,
    /// The client's address, ready to append to `X-Forwarded-For`.
    pub(crate) client_value: HeaderValue,
    /// The connection's cipher suite and version (HTTPS listeners), for access logs.
    pub(crate) tls: Option<TlsFields>,
    pub(crate) port: u16,
    pub(crate) port_header: HeaderValue,
    pub(crate) proto: &'static str,
}

/// Why a request got an answer from the balancer rather than an instance. Each maps to the
/// status ELB answers with.
#[derive(Debug)]
enum Failure {
    NoListener,
    NoInstance,
    Overloaded(Overloaded),
    Connect(ConnectError),
    Instance(hyper::Error),
    Timeout,
    Refused(Refused),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoListener => f.write_str("no listener on this port"),
            Failure::NoInstance => f.write_str("no instance in service"),
            Failure::Overloaded(e) => write!(f, "{e}"),
            Failure::Connect(e) => write!(f, "{e}"),
            Failure::Instance(e) => write!(f, "instance exchange failed: {e}"),
            Failure::Timeout => f.write_str("the instance did not answer within the idle timeout"),
            Failure::Refused(r) => f.write_str(r.why),
        }
    }
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::NoListener | Failure::NoInstance | Failure::Overloaded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::Connect(_) | Failure::Instance(_) => StatusCode::BAD_GATEWAY,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Refused(r) => {
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    fn into_response(self) -> Response<ProxyBody> {
        let status = self.status();
        let detail = match &self {
            Failure::Refused(r) => r.why,
            _ => status.canonical_reason().unwrap_or(""),
        };
        match &self {
            Failure::Refused(_)
            | Failure::NoListener
            | Failure::NoInstance
            | Failure::Overloaded(_) => {
                tracing::debug!(status = status.as_u16(), reason = %self, "request answered by the balancer")
            }
            _ => {
                tracing::info!(status = status.as_u16(), error = %self, "request failed at the instance")
            }
        }
        let mut resp = Response::new(ProxyBody::local(format!("{} {detail}\n", status.as_u16())));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if matches!(self, Failure::Refused(_)) {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// Serves one request of a client connection, and counts it (and logs it, when its load
/// balancer's access log wants it).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let received_at = Instant::now();
    // Route: the current runtime's listener on this port.
    let Some(route) = shared.runtime.load().routes.get(&conn.port).cloned() else {
        return Ok(Failure::NoListener.into_response());
    };
    route.metrics.requests.inc();
    let mut draft = observe::draft(&shared, &route, &conn, &req);
    let received = draft.as_ref().and_then(|d| d.received_counter());
    let req = req.map(|body| RequestBody::new(body, received));
    let mut exchange = Exchange::default();
    let result = proxy(&route, &conn, req, &mut exchange).await;
    let metrics = &route.metrics;
    Ok(match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            metrics.backend_status(status);
            if let Some(latency) = exchange.latency() {
                metrics.latency.observe(latency);
            }
            if let Some(d) = &mut draft {
                d.answered(&exchange, received_at, status, Some(status));
            }
            resp.map(|body| body.logged(draft))
        }
        Err(failure) => {
            match &failure {
                Failure::Connect(_) => metrics.backend_connection_errors.inc(),
                Failure::Overloaded(_) => metrics.spillover.inc(),
                _ => {}
            }
            let resp = failure.into_response();
            metrics.elb_status(resp.status().as_u16());
            if let Some(d) = &mut draft {
                d.answered(&exchange, received_at, resp.status().as_u16(), None);
            }
            resp.map(|body| body.logged(draft))
        }
    })
}

async fn proxy(
    route: &Route,
    conn: &ConnInfo,
    mut req: Request<RequestBody>,
    exchange: &mut Exchange,
) -> Result<Response<ProxyBody>, Failure> {
    // Check.
    headers::check_request(&req).map_err(Failure::Refused)?;
    let upgrade = headers::is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // Pick.
    let sticky = sticky_target(route, &req);
    let first = sticky
        .or_else(|| route.targets.pick(route.balancing, None))
        .ok_or(Failure::NoInstance)?;

    headers::rewrite_request(
        &mut req,
        &conn.client_value,
        conn.proto,
        &conn.port_header,
        upgrade,
    );

    // Forward.
    let forwarded = forward(route, first, req, exchange).await?;

    // Respond.
    respond(route, forwarded, sticky.is_some(), client_upgrade)
}

/// The instance a stickiness cookie names, if it is still in service.
fn sticky_target<B>(route: &Route, req: &Request<B>) -> Option<usize> {
    let headers = req.headers();
    match &route.stickiness {
        Stickiness::None => None,
        Stickiness::LbCookie { .. } => route
            .targets
            .by_cookie(sticky::request_cookie(headers, sticky::COOKIE_NAME)?),
        // Application stickiness lasts as long as the application's own cookie.
        Stickiness::AppCookie { name } => {
            sticky::request_cookie(headers, name)?;
            route
                .targets
                .by_cookie(sticky::request_cookie(headers, sticky::COOKIE_NAME)?)
        }
    }
}

struct Forwarded {
    resp: Response<Incoming>,
    target: usize,
    /// The connection, when it can serve another request after this response.
    conn: Option<(Arc<Upstream>, Sender)>,
    outstanding: Outstanding,
}

/// Sends the request to instance `first`. When no connection could be made, or the connection
/// failed before the request was written, the request is still unsent and is tried once more on
/// another instance (or the same one, when it is the only one in service).
async fn forward(
    route: &Route,
    first: usize,
    mut req: Request<RequestBody>,
    exchange: &mut Exchange,
) -> Result<Forwarded, Failure> {
    let mut target = first;
    let mut retried = false;
    loop {
        let upstream = &route.targets.all[target].upstream;
        exchange.instance = Some(upstream.addr());
        let failure = match upstream.begin_request().await {
            Err(e) => Failure::Overloaded(e),
            Ok(outstanding) => match upstream.checkout().await {
                Err(e) => Failure::Connect(e),
                Ok(mut sender) => {
                    // 504 only after the idle timeout without a byte either way: an upload that
                    // keeps moving is not cut, however long it takes.
                    let activity = sender.activity();
                    exchange.sent = Some(Instant::now());
                    let sent = tokio::select! {
                        sent = sender.try_send_request(req) => sent,
                        _ = expired(&activity, route.idle_timeout, None) => return Err(Failure::Timeout),
                    };
                    match sent {
                        Ok(resp) => {
                            exchange.head = Some(Instant::now());
                            let reusable = !asks_to_close(&resp);
                            let conn = reusable.then(|| (Arc::clone(upstream), sender));
                            return Ok(Forwarded {
                                resp,
                                target,
                                conn,
                                outstanding,
                            });
                        }
                        Err(mut e) => match e.take_message() {
                            Some(unsent) => {
                                req = unsent;
                                exchange.sent = None;
                                Failure::Instance(e.into_error())
                            }
                            // Reading the client's body failed (bad chunk framing, a client
                            // gone): the fault is the client's, not the instance's.
                            None if client_body_failed(e.error()) => {
                                return Err(Failure::Refused(Refused {
                                    status: 400,
                                    why: "the request body is malformed or was cut short",
                                }))
                            }
                            None => return Err(Failure::Instance(e.into_error())),
                        },
                    }
                }
            },
        };
        if retried {
            return Err(failure);
        }
        retried = true;
        tracing::debug!(instance = %upstream.addr(), error = %failure, "retrying");
        target = match route.targets.pick(route.balancing, Some(target)) {
            Some(other) => other,
            // The same busy instance again would only queue twice.
            None if matches!(failure, Failure::Overloaded(_)) => return Err(failure),
            None => target,
        };
    }
}

/// Whether a failed exchange failed while reading the client's request body (the error hyper
/// reports then wraps the client connection's own error).
fn client_body_failed(e: &hyper::Error) -> bool {
    use std::error::Error;
    e.is_user()
        && e.source()
            .is_some_and(|s| s.downcast_ref::<hyper::Error>().is_some())
}

fn asks_to_close<B>(resp: &Response<B>) -> bool {
    resp.headers()
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

fn respond(
    route: &Route,
    forwarded: Forwarded,
    was_sticky: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<ProxyBody>, Failure> {
    let Forwarded {
        mut resp,
        target,
        conn,
        outstanding,
    } = forwarded;
    let target = &route.targets.all[target];

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            // An instance may not switch protocols unasked.
            return Err(Failure::Refused(Refused {
                status: 502,
                why: "the instance switched protocols without being asked",
            }));
        };
        let instance_upgrade = hyper::upgrade::on(&mut resp);
        let upstream = Arc::clone(&target.upstream);
        let splice = tokio::spawn(splice_upgraded(
            client_upgrade,
            instance_upgrade,
            outstanding,
            route.idle_timeout,
        ));
        upstream.track(splice.abort_handle());
        let (mut parts, _) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        return Ok(Response::from_parts(parts, ProxyBody::empty()));
    }

    let (mut parts, body) = resp.into_parts();
    // The balancer answers in its own version (RFC 9110 7.6): an HTTP/1.0 instance's status line
    // must not reach an HTTP/1.1 client.
    parts.version = http::Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers, false);
    match &route.stickiness {
        Stickiness::LbCookie { max_age } if !was_sticky => {
            parts.headers.append(
                header::SET_COOKIE,
                sticky::set_cookie(&target.cookie, *max_age),
            );
        }
        Stickiness::AppCookie { name } if sticky::response_sets_cookie(&parts.headers, name) => {
            parts
                .headers
                .append(header::SET_COOKIE, sticky::set_cookie(&target.cookie, None));
        }
        _ => {}
    }
    Ok(Response::from_parts(
        parts,
        ProxyBody::upstream(body, conn, outstanding),
    ))
}

/// Copies bytes both ways between a client and an instance once both switched protocols, until
/// both are done or the idle timeout passes without a byte either way.
async fn splice_upgraded(
    client: hyper::upgrade::OnUpgrade,
    instance: hyper::upgrade::OnUpgrade,
    _outstanding: Outstanding,
    idle_timeout: std::time::Duration,
) {
    let (client, instance) = match tokio::try_join!(client, instance) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let (mut client, activity) = Tracked::new(hyper_util::rt::TokioIo::new(client));
    let mut instance = hyper_util::rt::TokioIo::new(instance);
    tokio::select! {
        done = tokio::io::copy_bidirectional(&mut client, &mut instance) => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "upgraded connection ended");
            }
        }
        _ = expired(&activity, idle_timeout, None) => {
            tracing::debug!("upgraded connection idle: closed");
        }
    }
}

#[cfg(test)]
mod tests {
    fn future_size<A, B, C, F>(_: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request's future is allocated and moved (into hyper's dispatcher, into an HTTP/2
    /// stream's task): a cold path held inline in it, such as the connect step, is a copy of
    /// kilobytes per request. It measured 5 KiB with the connect step inline, 1.7 KiB without,
    /// 2.6 KiB with the exchange's timings and the access-log draft (issue 12).
    #[test]
    fn request_future_stays_small() {
        let size = future_size(super::serve);
        assert!(size <= 2688, "the request future grew to {size} bytes");
    }
}
