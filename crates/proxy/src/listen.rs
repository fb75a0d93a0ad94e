//! Listening sockets and the connections they accept: bind, accept, TLS handshake, then HTTP/1.1
//! or HTTP/2 served by hyper, with the idle timeout and graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_model::Protocol;
use http::HeaderValue;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::coalesce::Coalesce;
use crate::conn::{idle_expired, ConnCount, Tracked};
use crate::forward::{self, ConnInfo};
use crate::tls::ListenerTls;
use crate::Shared;

/// How long an idle connection stays open when its listener has gone from the state.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// While draining, how long a connection without a request in flight may stay quiet.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// One bound port and its accept loop.
pub(crate) struct RunningListener {
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<Arc<ListenerTls>>,
    accept: JoinHandle<()>,
    /// Set to true to ask this listener's connections to finish their requests and close.
    drain: watch::Sender<bool>,
    pub(crate) conns: Arc<ConnCount>,
}

impl RunningListener {
    /// Binds `addr` and starts accepting; with `tls` for HTTPS listeners.
    pub(crate) fn start(
        shared: Arc<Shared>,
        addr: SocketAddr,
        protocol: Protocol,
        tls: Option<Arc<ListenerTls>>,
    ) -> std::io::Result<RunningListener> {
        let listener = bind(addr)?;
        let (drain, drain_rx) = watch::channel(false);
        let conns = Arc::new(ConnCount::default());
        let accept = tokio::spawn(accept_loop(
            shared,
            listener,
            addr.port(),
            protocol.is_http(),
            tls.clone(),
            drain_rx,
            Arc::clone(&conns),
        ));
        Ok(RunningListener {
            protocol,
            tls,
            accept,
            drain,
            conns,
        })
    }

    /// Stops accepting at once (the port is released) and asks open connections to finish what
    /// they are doing and close. Returns a handle to wait for them.
    pub(crate) fn stop(self) -> Arc<ConnCount> {
        self.accept.abort();
        let _ = self.drain.send(true);
        self.conns
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // A restarted node must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    port: u16,
    http: bool,
    tls: Option<Arc<ListenerTls>>,
    drain: watch::Receiver<bool>,
    conns: Arc<ConnCount>,
) {
    let port_header = HeaderValue::from(port);
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!(port, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            client_value: crate::headers::client_value(client.ip()),
            port,
            port_header: port_header.clone(),
            proto: if tls.is_some() { "https" } else { "http" },
        };
        let guard = conns.enter();
        let shared = Arc::clone(&shared);
        // The config in force when the connection arrived: a policy change applies to new ones.
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.config()));
        let drain = drain.clone();
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(shared.config.bind, port));
        tokio::spawn(async move {
            let _guard = guard;
            match acceptor {
                None if http => {
                    if first_bytes(&shared, &stream, 0, &drain).await {
                        // Boxed: an idle connection's task stays small until a request comes.
                        Box::pin(serve(shared, stream, info, false, drain)).await
                    }
                }
                None => crate::stream::serve(shared, stream, client, local, port).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        shared.config.handshake_timeout,
                        acceptor.accept(stream),
                    );
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(mut tls)) if http => {
                                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                let buffered = tls
                                    .get_mut()
                                    .1
                                    .process_new_packets()
                                    .map_or(1, |s| s.plaintext_bytes_to_read());
                                if first_bytes(&shared, tls.get_ref().0, buffered, &drain).await {
                                    Box::pin(serve(shared, tls, info, h2, drain)).await
                                }
                            }
                            Ok(Ok(tls)) => crate::stream::serve(shared, tls, client, local, port).await,
                            Ok(Err(e)) => tracing::debug!(%client, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                        },
                        // Nothing was asked of an instance yet: a drain need not wait for it.
                        () = draining(drain.clone()) => {}
                    }
                }
            }
        });
    }
}

/// Serves HTTP on one accepted connection until it closes, idles out or is drained.
async fn serve<IO>(
    shared: Arc<Shared>,
    io: IO,
    info: ConnInfo,
    h2: bool,
    drain: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle_timeout = shared
        .runtime
        .load()
        .routes
        .get(&info.port)
        .map_or(DEFAULT_IDLE, |r| r.idle_timeout);
    let (io, activity) = Tracked::new(io);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let info = Arc::new(info);
    let service = {
        let shared = Arc::clone(&shared);
        let in_flight = Arc::clone(&in_flight);
        service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let info = Arc::clone(&info);
            let in_flight = Arc::clone(&in_flight);
            async move {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let resp = forward::serve(shared, info, req).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                resp
            }
        })
    };
    // The protocol is known (ALPN, or HTTP/1.1 on a plain listener): no sniffing of the first
    // bytes, which would run before the header read timeout starts and would let a plain
    // listener speak HTTP/2 with settings that are not fulcrum's.
    if h2 {
        // Responses of concurrent streams leave together (see `coalesce`).
        let io = TokioIo::new(Coalesce::new(io));
        let conn = shared.h2.serve_connection(io, service);
        drive(conn, drain, &activity, &in_flight, idle_timeout).await
    } else {
        let io = TokioIo::new(io);
        let conn = shared.h1.serve_connection(io, service).with_upgrades();
        drive(conn, drain, &activity, &in_flight, idle_timeout).await
    }
}

/// A served connection that can be asked to finish its requests and close.
trait Drainable: Future<Output = hyper::Result<()>> {
    fn start_drain(self: Pin<&mut Self>);
}

impl<I, S, B> Drainable for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn start_drain(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

impl<I, S, B, E> Drainable for http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn start_drain(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

/// Runs a connection until it closes, idles out or is drained.
async fn drive<C: Drainable>(
    conn: C,
    mut drain: watch::Receiver<bool>,
    activity: &AtomicU64,
    in_flight: &AtomicUsize,
    idle_timeout: Duration,
) {
    tokio::pin!(conn);
    let mut draining = *drain.borrow();
    if draining {
        conn.as_mut().start_drain();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                return;
            }
            changed = drain.changed(), if !draining => {
                // A dropped sender means the listener is gone: drain as well.
                let _ = changed;
                draining = true;
                conn.as_mut().start_drain();
            }
            () = idle_expired(activity, in_flight, idle_timeout) => return,
            // While draining, a connection with no request in flight (say, one that sent half a
            // request head) is closed after a short grace instead of holding the drain.
            () = idle_expired(activity, in_flight, DRAIN_GRACE), if draining => return,
        }
    }
}

/// Waits for a connection's first request bytes before any HTTP state (and its buffers) exists
/// for it, so that an idle connection costs little memory. Returns false when the connection
/// should be closed instead: nothing came within the header read timeout, or the listener is
/// draining. `buffered` is what the TLS layer already holds.
async fn first_bytes(
    shared: &Shared,
    tcp: &TcpStream,
    buffered: usize,
    drain: &watch::Receiver<bool>,
) -> bool {
    if buffered > 0 {
        return true;
    }
    tokio::select! {
        readable = tcp.readable() => readable.is_ok(),
        () = tokio::time::sleep(shared.config.header_read_timeout) => false,
        () = draining(drain.clone()) => false,
    }
}

/// Resolves once the listener asks its connections to drain (or is gone).
async fn draining(mut drain: watch::Receiver<bool>) {
    while !*drain.borrow_and_update() {
        if drain.changed().await.is_err() {
            return;
        }
    }
}
