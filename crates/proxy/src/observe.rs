//! What the data plane tells about each request and connection: the access-log record it
//! drafts while a request is under way (only when its load balancer wants one), and the
//! connection-level metrics (open connections, TLS handshakes). Counters are atomics and the
//! finished record goes on a lock-free queue: nothing here waits or writes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fulcrum_telemetry::access_log::{AccessLogSink, HttpFields, Record, RequestLine, TlsFields};
use fulcrum_telemetry::metrics::TlsVersion;
use fulcrum_telemetry::LbMetrics;
use http::{header, HeaderMap, HeaderValue, Request, Version};

use crate::forward::ConnInfo;
use crate::runtime::Route;
use crate::Shared;

/// What one exchange with an instance came to, filled in as it goes.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// The instance the request was last tried on.
    pub(crate) instance: Option<SocketAddr>,
    /// When the request started to go to it.
    pub(crate) sent: Option<Instant>,
    /// When its response head arrived.
    pub(crate) head: Option<Instant>,
}

impl Exchange {
    /// ELB's Latency: from sending the request until the response head.
    pub(crate) fn latency(&self) -> Option<std::time::Duration> {
        Some(self.head?.duration_since(self.sent?))
    }
}

/// An access-log record in the making: boxed as it will be queued, the request's text inside it
/// (one allocation, unless the text is long), the rest small enough to travel with the
/// response body.
pub(crate) struct Draft {
    record: Box<Record>,
    /// The request body's bytes, counted as they go to the instance; `None` when the body was
    /// over before it started (most requests: GET, HEAD), which leaves nothing to count.
    received: Option<Arc<AtomicU64>>,
    sink: AccessLogSink,
}

/// A draft for this request, if its load balancer's log wants one (files on, or a live tail).
pub(crate) fn draft<B: http_body::Body>(
    shared: &Shared,
    route: &Route,
    conn: &ConnInfo,
    req: &Request<B>,
) -> Option<Draft> {
    if !route.log.wanted() {
        return None;
    }
    let sink = shared.config.access_log.clone()?;
    let (host, user_agent) = host_and_user_agent(req.headers());
    let authority = host
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("-");
    let line = RequestLine {
        method: req.method().as_str(),
        scheme: conn.proto,
        host: strip_port(authority),
        port: conn.port,
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        version: match req.version() {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        },
    };
    Some(Draft {
        record: Record::boxed_http(
            Arc::clone(&route.log),
            conn.client,
            conn.tls,
            Some(&line),
            user_agent.map(HeaderValue::as_bytes),
        ),
        received: (!req.body().is_end_stream()).then(|| Arc::new(AtomicU64::new(0))),
        sink,
    })
}

/// The first Host and User-Agent fields: in one pass over a small header map (most requests
/// have a few fields), by two lookups in a larger one.
fn host_and_user_agent(headers: &HeaderMap) -> (Option<&HeaderValue>, Option<&HeaderValue>) {
    if headers.len() > 8 {
        return (headers.get(header::HOST), headers.get(header::USER_AGENT));
    }
    let (mut host, mut user_agent) = (None, None);
    for (name, value) in headers {
        if *name == header::HOST {
            host = host.or(Some(value));
        } else if *name == header::USER_AGENT {
            user_agent = user_agent.or(Some(value));
        }
        if host.is_some() && user_agent.is_some() {
            break;
        }
    }
    (host, user_agent)
}

/// `host` of `host:port` and `[v6]` of `[v6]:port`: one pass from the end (a port is a few
/// bytes), no search calls.
fn strip_port(authority: &str) -> &str {
    for (i, &b) in authority.as_bytes().iter().enumerate().rev() {
        match b {
            b':' => return &authority[..i],
            b']' => return authority,
            _ => {}
        }
    }
    authority
}

impl Draft {
    /// What the request body's bytes are counted in, if it has any.
    pub(crate) fn received_counter(&self) -> Option<Arc<AtomicU64>> {
        self.received.clone()
    }

    /// Records how the exchange went and what the client is answered. `backend_status` is the
    /// instance's, when it answered; `received_at`, when the request was.
    pub(crate) fn answered(
        &mut self,
        exchange: &Exchange,
        received_at: Instant,
        elb_status: u16,
        backend_status: Option<u16>,
    ) {
        let now = Instant::now();
        let r = &mut self.record;
        if let Some(sent) = exchange.sent {
            r.backend = exchange.instance;
            r.request_processing = Some(sent.saturating_duration_since(received_at));
            if let Some(head) = exchange.head {
                r.backend_processing = Some(head.saturating_duration_since(sent));
                r.response_processing = Some(now.saturating_duration_since(head));
            }
        }
        if let Some(http) = &mut r.http {
            http.elb_status = elb_status;
            http.backend_status = backend_status;
        }
    }

    /// Hands the finished record to the writer.
    pub(crate) fn finish(mut self, sent_bytes: u64) {
        self.record.sent_bytes = sent_bytes;
        self.record.received_bytes = self
            .received
            .as_ref()
            .map_or(0, |r| r.load(Ordering::Relaxed));
        self.sink.push(self.record);
    }
}

/// A record for a request hyper could not read (its head was malformed or too large), which
/// hyper answered itself before any route saw it.
pub(crate) fn malformed(shared: &Shared, route: &Route, conn: &ConnInfo, status: u16) {
    route.metrics.requests.inc();
    route.metrics.elb_status(status);
    if !route.log.wanted() {
        return;
    }
    let Some(sink) = &shared.config.access_log else {
        return;
    };
    let mut http = HttpFields::new(None, None);
    http.elb_status = status;
    sink.push(Box::new(Record::arrived(
        Arc::clone(&route.log),
        conn.client,
        Some(http),
        conn.tls,
    )));
}

/// The negotiated suite and version of a server connection, as ELB logs them.
pub(crate) fn tls_fields(conn: &rustls::ServerConnection) -> Option<TlsFields> {
    let suite = conn.negotiated_cipher_suite()?;
    Some(TlsFields {
        cipher: fulcrum_tls::cipher_suite_name(suite.suite()),
        protocol: match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            _ => "TLSv1.2",
        },
    })
}

/// Counts a finished handshake as full or resumed, by version.
pub(crate) fn handshake(metrics: &LbMetrics, conn: &rustls::ServerConnection) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        _ => TlsVersion::Tls12,
    };
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    metrics.handshake(version, resumed);
}

/// Counts a client connection as open until dropped.
pub(crate) struct Active(Option<Arc<LbMetrics>>);

impl Active {
    pub(crate) fn enter(metrics: Option<Arc<LbMetrics>>) -> Active {
        if let Some(m) = &metrics {
            m.new_connections.inc();
            m.active_connections.inc();
        }
        Active(metrics)
    }

    pub(crate) fn metrics(&self) -> Option<&LbMetrics> {
        self.0.as_deref()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.active_connections.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{header, HeaderMap, HeaderValue};

    /// The first of each field, as `HeaderMap::get` finds it, in small maps and large.
    #[test]
    fn host_and_user_agent_are_the_first_ones() {
        for extra in [0, 3, 12] {
            let mut headers = HeaderMap::new();
            for i in 0..extra {
                headers.append(
                    http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                    HeaderValue::from_static("x"),
                );
            }
            let (host, ua) = super::host_and_user_agent(&headers);
            assert!(host.is_none() && ua.is_none());
            headers.append(header::USER_AGENT, HeaderValue::from_static("ua1"));
            headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
            headers.append(header::USER_AGENT, HeaderValue::from_static("ua2"));
            let (host, ua) = super::host_and_user_agent(&headers);
            assert_eq!(
                (host, ua.unwrap()),
                (None, &HeaderValue::from_static("ua1"))
            );
            headers.append(header::HOST, HeaderValue::from_static("h1"));
            headers.append(header::HOST, HeaderValue::from_static("h2"));
            let (host, ua) = super::host_and_user_agent(&headers);
            assert_eq!(host, headers.get(header::HOST));
            assert_eq!(ua, headers.get(header::USER_AGENT));
            assert_eq!(host.unwrap(), "h1");
        }
    }

    #[test]
    fn ports_come_off_hosts() {
        assert_eq!(super::strip_port("example.com:8080"), "example.com");
        assert_eq!(super::strip_port("example.com"), "example.com");
        assert_eq!(super::strip_port("[::1]:80"), "[::1]");
        assert_eq!(super::strip_port("[::1]"), "[::1]");
        assert_eq!(super::strip_port("::1"), ":");
        assert_eq!(super::strip_port(""), "");
        assert_eq!(super::strip_port(":80"), "");
    }
}
