//! The HTTP server on the API address: `GET /healthz`, and the Query API on `/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::{Api, ApiBody};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds on what the API server takes on, apart from the data plane's.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// A request head must be complete this long after the client connected (or, on a
    /// keep-alive connection, after the previous response).
    pub header_read_timeout: Duration,
    /// API connections open at once; more are refused (reset) at accept.
    pub max_connections: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            header_read_timeout: Duration::from_secs(20),
            max_connections: 256,
        }
    }
}

/// A client that has not finished its TLS handshake with the API by then is disconnected.
const API_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until the task is dropped; over TLS with `tls`.
pub async fn serve_api(
    listener: Arc<TcpListener>,
    ctx: Arc<Api>,
    limits: ApiLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(%client, max = limits.max_connections, "API connection limit reached: connection refused");
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            continue;
        };
        let ctx = Arc::clone(&ctx);
        let header_read_timeout = limits.header_read_timeout;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                let peer = Peer { client, tls: false };
                return serve_connection(TokioIo::new(stream), ctx, peer, header_read_timeout)
                    .await;
            };
            match tokio::time::timeout(API_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let peer = Peer { client, tls: true };
                    serve_connection(TokioIo::new(tls), ctx, peer, header_read_timeout).await
                }
                Ok(Err(e)) => tracing::debug!(%client, error = %e, "API TLS handshake failed"),
                Err(_) => tracing::debug!(%client, "API TLS handshake timed out"),
            }
        });
    }
}

/// Who is on the other end of an API connection, and whether it came over TLS.
#[derive(Debug, Clone, Copy)]
struct Peer {
    client: std::net::SocketAddr,
    tls: bool,
}

/// Serves one API connection (HTTP/1.1 or HTTP/2).
async fn serve_connection<IO>(
    io: TokioIo<IO>,
    ctx: Arc<Api>,
    peer: Peer,
    header_read_timeout: Duration,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&ctx), peer, req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Between keep-alive requests too: the API has no long-lived clients to keep.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(32);
    // A client that never sends anything is cut as well.
    let serve = builder.serve_connection(io, service);
    match tokio::time::timeout(API_CONNECTION_LIMIT, serve).await {
        Ok(Err(e)) => tracing::debug!(error = %e, "API connection ended"),
        Err(_) => tracing::debug!("API connection open too long: closed"),
        Ok(Ok(())) => {}
    }
}

/// No API exchange takes this long; a connection kept open longer (idle keep-alive included)
/// is closed, so that idle clients cannot hold the connection limit.
const API_CONNECTION_LIMIT: Duration = Duration::from_secs(300);

async fn handle(
    ctx: Arc<Api>,
    peer: Peer,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>, Infallible> {
    let http1 = req.version() < http::Version::HTTP_2;
    let path = req.uri().path();
    let console = ctx
        .console
        .as_ref()
        .filter(|_| path == "/console" || path.starts_with("/console/"));
    let mut resp = match (req.method(), path) {
        (&Method::GET, "/healthz") => healthz(&ctx),
        (&Method::GET, "/console") if console.is_some() => console_redirect(),
        _ => match console {
            Some(console) => console.handle(req, peer.client, peer.tls).await,
            None => ctx.handle(req).await,
        },
    };
    if http1 && ctx.control.pause.is_paused() {
        // Handing over: the next request on a new connection reaches the process taking over.
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

fn console_redirect() -> Response<ApiBody> {
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    resp.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_static("/console/"),
    );
    resp
}

/// 200 once the node can serve (state applied, every listener open, the health of every
/// instance known); 503 with what it is waiting for otherwise.
fn healthz(ctx: &Api) -> Response<ApiBody> {
    let waiting = ctx.control.data_plane.waiting_for();
    if !waiting.is_empty() {
        let lines: String = waiting
            .iter()
            .map(|why| format!("waiting: {why}\n"))
            .collect();
        return text(StatusCode::SERVICE_UNAVAILABLE, lines);
    }
    let revision = ctx.control.data_plane.applied_revision();
    // Degraded, not down: the node serves what it has, so load-balancer health checks (which
    // look at the status) keep it in rotation; the body says why for people and scripts.
    if let fulcrum_store::StoreHealth::Degraded { reason, since } = ctx.control.store.health() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(since);
        return text(
            StatusCode::OK,
            format!(
                "degraded revision {revision}: the store has been unreachable for {secs}s \
                 ({reason}); serving the last snapshot, changes are refused\n"
            ),
        );
    }
    text(StatusCode::OK, format!("ok revision {revision}\n"))
}

fn text(status: StatusCode, body: String) -> Response<ApiBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
