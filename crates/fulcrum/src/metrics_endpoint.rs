//! `--metrics ADDR`: the Prometheus endpoint, on a listener of its own, off the data path and
//! without authentication, so that it can be bound to a private address and scraped by a
//! Prometheus that holds no fulcrum credentials. It serves `GET /metrics` and nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fulcrum_proxy::DataPlane;
use fulcrum_telemetry::access_log::AccessLogSink;
use fulcrum_telemetry::prometheus::{self, NodeStats};
use fulcrum_telemetry::Registry;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the endpoint reads.
pub struct Sources {
    pub registry: Arc<Registry>,
    pub data_plane: DataPlane,
    pub access_log: Option<AccessLogSink>,
}

/// Serves the endpoint until the task is aborted. While the address is taken (the process
/// this one replaces still holds it during an upgrade), binding is retried.
pub fn spawn(addr: SocketAddr, sources: Sources) -> tokio::task::JoinHandle<()> {
    let sources = Arc::new(sources);
    tokio::spawn(async move {
        let listener = bind(addr).await;
        tracing::info!(%addr, "metrics endpoint open");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let sources = Arc::clone(&sources);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let sources = Arc::clone(&sources);
                    async move { Ok::<_, Infallible>(answer(&sources, &req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let _ = conn.await;
            });
        }
    })
}

async fn bind(addr: SocketAddr) -> TcpListener {
    let mut warned = false;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => {
                if !warned {
                    tracing::warn!(%addr, error = %e, "metrics endpoint: cannot listen yet; retrying");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn answer(sources: &Sources, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let (open, refused) = sources.data_plane.connection_counts();
    let node = NodeStats {
        open_connections: open as u64,
        refused_connections: refused,
        access_log_dropped: sources.access_log.as_ref().map_or(0, |s| s.dropped()),
    };
    let text = prometheus::encode(&sources.registry, &node);
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(prometheus::CONTENT_TYPE),
    );
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp
}
